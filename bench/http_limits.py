"""Starvation: apis-main's poll while 1,000 idle or slowly-sending connections are open.

A real server (100 units, the embedded data set) on a free loopback port.  For DURATION seconds
an attacker keeps CONNECTIONS connections open, half idle (connected, nothing sent) and half
slowloris (a request line, then one header byte a second, never the empty line), reopening each
one the server closes; meanwhile a poller GETs /get/unit/E001 every 10 ms over one keep-alive
connection, as apis-main does every 5 s.  Prints the poll's latency (p50, p99, max) and
failures without and with the attack, the server's resident memory, how many attacker
connections the server closed (web/protocol.py: HEAD_TIMEOUT) and the emulated clock's pace.
Bounded in time, loopback only.

    .venv/bin/python bench/http_limits.py [--connections 1000] [--duration 30] [--units 100]
        [--server ours|uvicorn-defaults|limit-100]

``--server`` picks the HTTP settings the choice in docs/reliability.md was made from: ``ours``
(web/server.py and web/protocol.py as shipped), ``uvicorn-defaults`` (uvicorn's httptools
protocol: no head limit or timeout, keep-alive 5 s, no concurrency limit) and ``limit-100``
(ours with ``limit_concurrency`` 100).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from serving import rss_mb, start_server, stop_server

#: Starts ``apis-emulator serve`` with the HTTP settings of a variant (argv[1]) patched in.
LAUNCHER = """
import sys
from apis_emulator.web import server as served
VARIANTS = {"ours": {}, "limit-100": {"limit_concurrency": 100},
            "uvicorn-defaults": {"http": "httptools", "timeout_keep_alive": 5,
                                 "limit_concurrency": None}}
build = served.build_server
def patched(*args, **kwargs):
    server = build(*args, **kwargs)
    for name, value in VARIANTS[sys.argv[1]].items():
        setattr(server.config, name, value)
    return server
served.build_server = patched
from apis_emulator.cli import main
sys.exit(main(sys.argv[2:]))
"""


def start(variant: str, units: int, cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A server of ``variant`` on a free loopback port; (process, base URL) once it answers."""
    return start_server(["-c", LAUNCHER, variant, "serve", str(units)], cwd)


@dataclass
class Poll:
    """Latencies [ms] and failures of the poller."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0

    def row(self, name: str) -> str:
        """One table row: requests, p50, p99, max [ms], failures."""
        lat = sorted(self.latencies)
        if not lat:
            return f"| {name} | 0 | | | | {self.failures} |"
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        return (f"| {name} | {len(lat)} | {statistics.median(lat):.1f} | {p99:.1f} | "
                f"{lat[-1]:.1f} | {self.failures} |")


def poll(url: str, seconds: float) -> Poll:
    """GET /get/unit/E001 every 10 ms for ``seconds`` over one keep-alive connection."""
    result = Poll()
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                ok = client.get(url + "/get/unit/E001").status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                result.latencies.append((time.perf_counter() - started) * 1000)
            else:
                result.failures += 1
            time.sleep(0.01)
    return result


@dataclass
class Attack:
    """What the attacker saw: connections opened and closed by the server."""

    opened: int = 0
    closed_by_server: int = 0
    open_now: int = 0
    peak_open: int = 0


async def _one(host: str, port: int, slow: bool, stop: asyncio.Event, attack: Attack) -> None:
    """Keep one idle or slowloris connection open until ``stop``, reopening it when closed."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        attack.opened += 1
        attack.open_now += 1
        attack.peak_open = max(attack.peak_open, attack.open_now)
        try:
            if slow:
                writer.write(b"GET /get/unit/E001 HTTP/1.1\r\nHost: localhost\r\nX-a: ")
            while not stop.is_set():
                if slow:
                    writer.write(b"a")
                    await writer.drain()
                try:  # the server closing shows as EOF
                    if await asyncio.wait_for(reader.read(4096), 1.0) == b"":
                        attack.closed_by_server += 1
                        break
                except TimeoutError:
                    continue
                attack.closed_by_server += 1  # answered (408) and closed
                break
        except OSError:
            attack.closed_by_server += 1
        finally:
            attack.open_now -= 1
            writer.close()


async def attack_for(url: str, connections: int, seconds: float) -> Attack:
    """Hold ``connections`` connections (half idle, half slowloris) for ``seconds``."""
    host, port = url.split("//")[1].split(":")
    attack, stop = Attack(), asyncio.Event()
    tasks = []
    for i in range(connections):
        tasks.append(asyncio.create_task(_one(host, int(port), i % 2 == 1, stop, attack)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)  # open them over half a second
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    return attack


def main() -> int:
    """Measure without and with the attack; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=30.0, help="[s] of attack")
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--server", choices=("ours", "uvicorn-defaults", "limit-100"),
                        default="ours")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="http-limits-") as tmp:
        process, url = start(args.server, args.units, Path(tmp))
        try:
            _measure(url, process.pid, args)
        finally:
            stop_server(process)
    return 0


def _measure(url: str, pid: int, args: argparse.Namespace) -> None:
    poll(url, 3.0)  # warm-up: first renders, the runner's first ticks
    baseline = poll(url, 10.0)
    rss_before = rss_mb(pid)
    behind_before = httpx.get(url + "/api/status").json()["behind_s"]
    peak = [rss_before]
    result: dict[str, Poll] = {}
    poller = threading.Thread(target=lambda: result.setdefault(
        "attack", poll(url, args.duration - 2.0)))
    sampler_stop = threading.Event()

    def sample() -> None:
        while not sampler_stop.wait(0.5):
            peak.append(rss_mb(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    threading.Timer(1.0, poller.start).start()  # once the connections are open
    attack = asyncio.run(attack_for(url, args.connections, args.duration))
    poller.join()
    sampler_stop.set()
    sampler.join()
    wall = time.monotonic() - started
    time.sleep(1.0)
    after = poll(url, 5.0)
    status = httpx.get(url + "/api/status").json()
    print(f"server: {args.server}, {args.units} units, attack: {args.connections} connections "
          f"(half idle, half slowloris) for {wall:.0f} s\n")
    print("| phase | requests | p50 [ms] | p99 [ms] | max [ms] | failures |\n|---|---:|---:|"
          "---:|---:|---:|")
    print(baseline.row("before"))
    print(result["attack"].row("under attack"))
    print(after.row("after"))
    print(f"\nserver RSS: {rss_before:.0f} MB before, {max(peak):.0f} MB peak under attack, "
          f"{rss_mb(pid):.0f} MB after")
    print(f"attacker: {attack.opened} connections opened, {attack.closed_by_server} closed by "
          f"the server, at most {attack.peak_open} open at once")
    print(f"clock: emulated time dropped {status['behind_s'] - behind_before:.0f} s during the "
          f"run; keeps_pace {status['keeps_pace']}")


if __name__ == "__main__":
    sys.exit(main())
