"""Make docs/page-exchange.png (4 units during an energy exchange), with ``--sharing``
docs/page-sharing.png (100 units sharing under apis-main's deal rules), or with ``--town``
docs/page-town.png (10,000 units at acceleration 10, Δt 1 s).

Exchange: E001 holds the DC grid voltage (0x0014, dvg 350 V, dig 2.3 A), E002 gives (0x0002,
dig 1 A), E003 takes (0x0041, dig 1 A), E004 waits.  The emulation starts on a May morning and
runs fast for a while so that the plots show some hours, then slows to acceleration 60 for the
picture.

Sharing: ``serve 100 --controller apis`` on the embedded data set from a June morning at
acceleration 60; the picture is taken once several deals run, with the details of a unit that
takes in one of them.  Also prints the size of ``/get/deals`` with 100 units.

Town: ``serve 10000 --acceleration 10 --step 1`` on a synthetic data set of 100 households,
run fast through a May morning; E001 holds the grid, ten units give and ten take; the picture
shows the cards of the window scrolled to E4997 (only those are in the page) and E5001's details.

Usage: ``.venv/bin/python bench/page_screenshot.py [--out docs/page-exchange.png]``
       ``.venv/bin/python bench/page_screenshot.py --sharing [--out docs/page-sharing.png]``
       ``.venv/bin/python bench/page_screenshot.py --town [--out docs/page-town.png]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from page_load import exchange, free_port, launch, start_server, stop, write_dataset


def run_until(url: str, elapsed: float) -> None:
    """Wait until the emulated clock has run ``elapsed`` seconds since the start."""
    while httpx.get(url + "/api/status").json()["emulated_s"] < elapsed:
        time.sleep(0.25)


def start_sharing(cwd: Path, units: int, start: str,
                  acceleration: float) -> tuple[subprocess.Popen[bytes], str]:
    """``serve N --controller apis`` on the embedded data set, once it answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIS_EMULATOR_")}
    command = [sys.executable, "-m", "apis_emulator", "serve", str(units), "--port", str(port),
               "--acceleration", str(acceleration), "--start", start, "--controller", "apis"]
    out = open(cwd / "server.out", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {(cwd / 'server.out').read_text()}")
        try:
            if httpx.get(url + "/get/deals", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not answer")


def sharing_shot(root: Path, out: str, units: int, start: str) -> None:
    """The page once several deals run, with a taking unit's details open."""
    process, url = start_sharing(root, units, start, acceleration=60)
    try:
        deadline = time.monotonic() + 300
        while True:
            response = httpx.get(url + "/get/deals")
            deals: dict[str, Any] = response.json()
            started = [d for d in deals["active"] if d["state"] == "started"]
            if len(started) >= 3 and deals["finished"]:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"no deals after 300 s: {deals['active']}")
            time.sleep(1)
        print(f"/get/deals with {units} units: {len(response.content)} bytes, "
              f"{len(deals['active'])} active deals")
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1440, "height": 1280},
                                    device_scale_factor=1)
            page.goto(f"{url}/?every=1&details=0")
            page.wait_for_selector("body[data-ready]")
            for _ in range(20):  # deals last a few wall seconds: open a unit taking in one now
                page.locator("#deals tr.st-started .taker a").first.click()
                page.wait_for_timeout(1200)
                if "takes from" in page.inner_text("#d-sharing"):
                    break
            page.mouse.move(0, 0)
            page.screenshot(path=out)
    finally:
        stop(process)


def town_shot(root: Path, out: str, units: int) -> None:
    """The page with ``units`` units, scrolled into the middle of the town, a unit open."""
    data = write_dataset(root / "data", households=100)
    process, url = start_server(root, data, units, acceleration=1200,
                                start="2019-05-01T06:00:00")  # Δt 1 s, serve's default
    try:
        httpx.get(url + "/set/dcdc/E001?mode=0x0014&dvg=350&dig=2.3&drg=0").raise_for_status()
        for k in range(10):  # givers E4991…, takers E5001… (the cards on screen)
            dig = 0.5 + 0.1 * k
            httpx.get(f"{url}/set/dcdc/E{4991 + k}?mode=0x0002&dvg=350&dig={dig:.1f}")
            httpx.get(f"{url}/set/dcdc/E{5001 + k}?mode=0x0041&dvg=350&dig={dig:.1f}")
        run_until(url, 3 * 3600)
        httpx.get(url + "/set/acc/10").raise_for_status()
        time.sleep(11)  # the pace shown covers the last 10 s
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1440, "height": 1300},
                                    device_scale_factor=1)
            page.goto(f"{url}/?every=1#E5001")
            page.wait_for_selector("body[data-ready]")
            page.wait_for_function("apisPage.state.hist.unit && "
                                   "apisPage.state.hist.unit.t.length > 10")
            page.locator('#cards').evaluate(  # the row of E4997 just under the top bar
                "(box) => window.scrollTo(0, box.getBoundingClientRect().top + window.scrollY"
                " + 4996 / 3 * apisPage.state.pitch - 330)")
            page.wait_for_selector('#cards .card[data-unit="E5001"]')
            page.wait_for_timeout(2500)
            page.mouse.move(0, 0)
            cards = page.locator("#cards .card").count()
            page.screenshot(path=out)
        print(f"{cards} cards in the page of {units} units")
    finally:
        stop(process)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's chromium through Playwright, closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        try:
            yield browser
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="default docs/page-exchange.png, or docs/page-sharing.png")
    parser.add_argument("--sharing", action="store_true",
                        help="100 units under the built-in controller (serve --controller apis)")
    parser.add_argument("--town", action="store_true",
                        help="10,000 units at acceleration 10 (serve --step 1)")
    parser.add_argument("--units", type=int, default=None,
                        help="units of --sharing (100) or --town (10000)")
    parser.add_argument("--start", default="2019-06-01T09:00:00", help="start of --sharing")
    parser.add_argument("--hours", type=float, default=6.5,
                        help="emulated hours before the picture")
    parser.add_argument("--quiet", type=float, default=2.0,
                        help="emulated hours before the exchange starts")
    args = parser.parse_args(argv)
    if args.town:
        out = args.out or "docs/page-town.png"
        with tempfile.TemporaryDirectory(prefix="page-shot-") as tmp:
            town_shot(Path(tmp), out, args.units or 10_000)
        print(f"wrote {out}")
        return 0
    if args.sharing:
        out = args.out or "docs/page-sharing.png"
        with tempfile.TemporaryDirectory(prefix="page-shot-") as tmp:
            sharing_shot(Path(tmp), out, args.units or 100, args.start)
        print(f"wrote {out}")
        return 0
    args.out = args.out or "docs/page-exchange.png"
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
