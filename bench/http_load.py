"""HTTP load on a real server: requests/s and latency per endpoint, clients and units.

Uses wrk (Debian package `wrk`; keep-alive connections, as apis-main's Vert.x client) as the
bounded load generator: every run lasts DURATION seconds and stops by itself, loopback only.
Also measures the emulated clock's pace during the load and the cost of one /set/dcdc.

    .venv/bin/python bench/http_load.py [--duration 5] [--units 4 100]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from serving import start_server, stop_server

ENDPOINTS = ("/get/unit/E001", "/get/dcdc/status/E001", "/get/log")
CLIENTS = (1, 8, 64)


def start(units: int, cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A server of ``units`` units on a free loopback port; (process, base URL) once it answers."""
    return start_server(["-m", "apis_emulator", "serve", str(units)], cwd)


def _seconds(text: str) -> float:
    return time.mktime(time.strptime(text, "%Y/%m/%d-%H:%M:%S"))


def clock_edge(url: str) -> tuple[float, float]:
    """(emulated s, wall s) at the moment the emulated clock ticks."""
    with httpx.Client(base_url=url, timeout=5) as c:
        first = c.get("/get/unit/E001").json()["time"]
        while True:
            now = c.get("/get/unit/E001").json()["time"]
            if now != first:
                return _seconds(now), time.monotonic()
            time.sleep(0.002)


def wrk(url: str, clients: int, duration: float) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{duration:g}s", "--timeout", "5s",
                          "--latency", url], capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Socket errors:.*|Non-2xx.*", out)
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%"), "errors": bool(errors)}


def set_dcdc_cost(url: str, n: int = 200) -> float:
    """Median wall time of one /set/dcdc round trip [ms] (sequential, keep-alive)."""
    times = []
    with httpx.Client(base_url=url, timeout=5) as c:
        for k in range(n):
            dig = "1.0" if k % 2 else "2.0"
            t = time.perf_counter()
            c.get(f"/set/dcdc/E002?mode=0x0002&dvg=380.0&dig={dig}&drg=0")
            times.append((time.perf_counter() - t) * 1e3)
        c.get("/set/dcdc/E002?mode=0x0000&dvg=350.0&dig=0.0&drg=0")
    return sorted(times)[len(times) // 2]


def engine_set_dcdc_cost(units: int) -> float:
    """Median time of Emulator.set_dcdc in process [ms] (no HTTP)."""
    from apis_emulator.config import Settings
    from apis_emulator.engine import Emulator
    from apis_emulator.inputs import load_dataset

    em = Emulator(Settings(step=1.0), load_dataset(), units)
    em.set_dcdc("E001", mode="0x0014", dvg=350, dig=2.3, drg=0)
    times = []
    for k in range(300):
        t = time.perf_counter()
        em.set_dcdc("E002", mode="0x0002", dvg=380, dig=1.0 + (k % 2), drg=0)
        times.append((time.perf_counter() - t) * 1e3)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--units", type=int, nargs="+", default=[4, 100])
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    print(f"load average before: {os.getloadavg()}; wrk keep-alive, 1 thread; {args.duration:g} s"
          " per run")
    results = []
    for units in args.units:
        with tempfile.TemporaryDirectory() as tmp:
            proc, url = start(units, Path(tmp))
            try:
                httpx.get(url + "/set/dcdc/E001?mode=0x0014&dvg=350.0&dig=2.3&drg=0")
                emu0, wall0 = clock_edge(url)
                for path in ENDPOINTS:
                    for clients in CLIENTS:
                        r = wrk(url + path, clients, args.duration)
                        results.append({"units": units, "path": path, "clients": clients, **r})
                        print(f"{units:4d} units {path:24s} {clients:3d} clients: "
                              f"{r['rps']:8.0f} req/s  p50 {r['p50']:7.2f} ms  "
                              f"p99 {r['p99']:7.2f} ms{'  (errors)' if r['errors'] else ''}",
                              flush=True)
                emu1, wall1 = clock_edge(url)
                acc = httpx.get(url + "/get/acc").json()
                pace = (emu1 - emu0) / (wall1 - wall0)
                print(f"{units:4d} units: emulated clock pace under load {pace:.3f} "
                      f"(set {acc}; {100 * (pace / acc - 1):+.2f} %) over {wall1 - wall0:.0f} s")
                print(f"{units:4d} units: /set/dcdc round trip median "
                      f"{set_dcdc_cost(url):.2f} ms", flush=True)
            finally:
                stop_server(proc, timeout=20.0)
    for units in (100, 1000):
        print(f"Emulator.set_dcdc in process, {units} units: median "
              f"{engine_set_dcdc_cost(units):.3f} ms")
    print(f"load average after: {os.getloadavg()}")
    Path("bench/out").mkdir(parents=True, exist_ok=True)
    Path("bench/out/http_load.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
