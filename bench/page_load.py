"""How heavy the page is: time to the first drawn values with 100 units, server CPU under 5 pages.

Starts ``python -m apis_emulator serve 100`` on a free loopback port with a synthetic data set,
then with Debian's chromium (Playwright):

1. loads the page cold several times and reports the time from navigation until the cards and
   details show their first values (``body[data-ready]``, set by the page);
2. keeps 5 pages open with Auto Refresh (every 5 s, the specification's default, or
   ``--every``) for ``--seconds`` and reports the server's CPU share over that time, read from
   /proc/<pid>/stat (utime + stime), against the same server with no page open.

Usage: ``.venv/bin/python bench/page_load.py [--units 100] [--seconds 30] [--every 5]
[--acceleration 60]``; a town: ``--units 10000 --acceleration 10`` (the data set keeps 100
households, reused in turn).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def write_dataset(directory: Path, households: int) -> Path:
    """PV: a bell from 6 h to 18 h [W]; load: a base with morning and evening peaks [kW]."""
    directory.mkdir(parents=True, exist_ok=True)
    day = [max(0.0, 1500.0 * math.sin(math.pi * (h - 6) / 12)) if 6 <= h <= 18 else 0.0
           for h in range(24)]
    (directory / "solar.csv").write_text(
        "\n".join(",".join(f"{v:.1f}" for v in day) for _ in range(365)) + "\n")
    lines = ["date,house,a,b,c,d," + ",".join(f"v{k}" for k in range(48))]
    for house in range(1, households + 1):
        shift = house % 3
        values = []
        for k in range(48):
            hour = k / 2
            kw = 0.18 + 0.03 * (house % 4)
            kw += 0.45 * math.exp(-((hour - 7.5 - shift / 2) ** 2) / 1.5)
            kw += 0.7 * math.exp(-((hour - 19.5 + shift / 2) ** 2) / 3.0)
            values.append(f"{kw:.3f}")
        row = ",".join(values)
        lines += [f"{20190101 + d},{house},0,0,0,0,{row}" for d in range(365)]
    (directory / "load.csv").write_text("\n".join(lines) + "\n")
    (directory / "dataset.json").write_text(json.dumps(
        {"name": "page-bench", "solar": {"file": "solar.csv", "unit": "W"},
         "load": {"file": "load.csv", "layout": "rows"}}))
    return directory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(cwd: Path, data: Path, units: int, acceleration: float,
                 start: str | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A server process and its URL, once it answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIS_EMULATOR_")}
    command = [sys.executable, "-m", "apis_emulator", "serve", str(units), "--port", str(port),
               "--data", str(data), "--acceleration", str(acceleration)]
    if start:
        command += ["--start", start]
    out = open(cwd / "server.out", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {(cwd / 'server.out').read_text()}")
        try:
            if httpx.get(url + "/api/status", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not answer")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process [s] from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_share(pid: int, seconds: float, pump: Any = None) -> float:
    """The process's CPU time over ``seconds`` of wall time, as a share of one core [%]."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    if pump is None:
        time.sleep(seconds)
    else:
        pump(seconds)
    return 100.0 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def exchange(url: str) -> None:
    """One voltage reference, one giving unit, one taking unit (as apis-main would set them)."""
    for path in ("/set/dcdc/E001?mode=0x0014&dvg=350&dig=2.3&drg=0",
                 "/set/dcdc/E002?mode=0x0002&dvg=350&dig=1",
                 "/set/dcdc/E003?mode=0x0041&dvg=350&dig=1"):
        httpx.get(url + path, timeout=10).raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--every", type=int, default=5, help="Auto Refresh interval [s]")
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--loads", type=int, default=5, help="cold page loads to time")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="longest wait for a page's first values [s]")
    parser.add_argument("--acceleration", type=float, default=60.0,
                        help="emulated s per wall s of the server (Δt 1 s)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="page-bench-") as tmp:
        root = Path(tmp)
        data = write_dataset(root / "data", households=min(args.units, 100))
        process, url = start_server(root, data, args.units, acceleration=args.acceleration,
                                    start="2019-05-01T08:00:00")
        try:
            exchange(url)
            with sync_playwright() as p:
                browser = launch(p)
                loads = []
                for _ in range(args.loads):
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    t0 = time.perf_counter()
                    page.goto(f"{url}/?auto=0")
                    page.wait_for_selector("body[data-ready]", timeout=1e3 * args.timeout)
                    loads.append(time.perf_counter() - t0)
                    first = page.evaluate(
                        "performance.getEntriesByName('apis-first-values')[0].startTime")
                    cards = int(page.inner_text("#unit-count"))
                    in_page = page.locator("#cards .card").count()  # what a refresh re-fills
                    context.close()
                assert cards == args.units, cards
                idle = cpu_share(process.pid, min(10.0, args.seconds))
                contexts, pages = [], []
                for _ in range(args.pages):
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    page.goto(f"{url}/?every={args.every}")
                    page.wait_for_selector("body[data-ready]", timeout=1e3 * args.timeout)
                    contexts.append(context)
                    pages.append(page)
                requests = {"n": 0}
                for page in pages:
                    page.on("request", lambda r: requests.__setitem__("n", requests["n"] + 1))

                def pump(seconds: float) -> None:
                    # let Playwright deliver events while the pages refresh on their own
                    end = time.monotonic() + seconds
                    while time.monotonic() < end:
                        pages[0].wait_for_timeout(250)

                busy = cpu_share(process.pid, args.seconds, pump)
                for context in contexts:
                    context.close()
                browser.close()
        finally:
            stop(process)
    print(f"page with {args.units} units, server at acceleration {args.acceleration:g}, Δt 1 s")
    print(f"  cards in the page (each refresh re-fills them): {in_page} of {cards}")
    print(f"  first values drawn after navigation: median {statistics.median(loads):.2f} s "
          f"(min {min(loads):.2f}, max {max(loads):.2f}, {len(loads)} cold loads; "
          f"last one in-page mark {first / 1000:.2f} s)")
    print(f"  server CPU, no page open:             {idle:5.1f} % of one core")
    print(f"  server CPU, {args.pages} pages, Auto Refresh {args.every} s: {busy:5.1f} % of one "
          f"core over {args.seconds:.0f} s ({requests['n'] / args.seconds:.1f} requests/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
