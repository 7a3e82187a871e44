"""Make docs/page-exchange.png: the page with 4 units during an energy exchange.

E001 holds the DC grid voltage (0x0014, dvg 350 V, dig 2.3 A), E002 gives (0x0002, dig 1 A),
E003 takes (0x0041, dig 1 A), E004 waits.  The emulation starts on a May morning and runs fast
for a while so that the plots show some hours, then slows to acceleration 60 for the picture.

Usage: ``.venv/bin/python bench/page_screenshot.py [--out docs/page-exchange.png]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx

from page_load import exchange, launch, start_server, stop, write_dataset


def run_until(url: str, elapsed: float) -> None:
    """Wait until the emulated clock has run ``elapsed`` seconds since the start."""
    while httpx.get(url + "/api/status").json()["emulated_s"] < elapsed:
        time.sleep(0.25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/page-exchange.png")
    parser.add_argument("--hours", type=float, default=6.5,
                        help="emulated hours before the picture")
    parser.add_argument("--quiet", type=float, default=2.0,
                        help="emulated hours before the exchange starts")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="page-shot-") as tmp:
        root = Path(tmp)
        data = write_dataset(root / "data", households=4)
        process, url = start_server(root, data, 4, acceleration=1200,
                                    start="2019-05-01T04:00:00")
        try:
            run_until(url, args.quiet * 3600)
            exchange(url)
            run_until(url, args.hours * 3600)
            httpx.get(url + "/set/acc/60").raise_for_status()
            time.sleep(11)  # the pace shown covers the last 10 s
            with sync_playwright() as p:
                browser = launch(p)
                page = browser.new_page(viewport={"width": 1440, "height": 1300},
                                        device_scale_factor=1)
                page.goto(f"{url}/?every=1#E002")
                page.wait_for_selector("body[data-ready]")
                page.wait_for_function("apisPage.state.hist.unit && "
                                       "apisPage.state.hist.unit.t.length > 10")
                page.wait_for_timeout(2500)
                page.mouse.move(0, 0)
                page.screenshot(path=args.out, full_page=True)
                browser.close()
        finally:
            stop(process)
            lag = [line for line in (root / "server.out").read_text().splitlines()
                   if "behind" in line]
            if lag:
                print("\n".join(lag))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
