"""The served targets of a town: 10,000 units at acceleration 10 and Δt 1 s, on a real server.

Starts ``python -m apis_emulator serve 10000 --acceleration 10 --step 1`` (the embedded data
set; units beyond its 100 households reuse them) on a free loopback port and prints:

1. **start**: wall time from the process's launch to its first answer (``/get/acc``), to the
   first ``/get/unit/E10000`` and to the first ``/get/log`` (which renders every unit);
2. **pace idle**: emulated seconds per wall second over ``--seconds``, from the server's clock
   sampled every 50 ms (the least-squares slope of the ticks seen: a tick is seen at most 50 ms
   and one answer late), the longest wall time between two ticks (the runner ticks every 1 s;
   a longer gap is the event loop held by something else) and the emulated time the runner
   dropped (``behind_s``);
3. **/get/unit under 64 clients**: 64 keep-alive connections (as apis-main's Vert.x client),
   each polling its own units' ``/get/unit/<id>`` back to back for ``--seconds`` or
   ``--max-requests``: requests/s, p50/p99 latency [ms], and the pace meanwhile;
4. **/get/log polled**: ``--log-clients`` connections polling ``/get/log`` back to back, plain
   and then with ``Accept-Encoding: gzip``: p50/p99 latency [ms] (the whole body received),
   bytes on the wire, and the pace meanwhile;
5. **memory**: the server's resident size now and at its peak (``VmRSS``, ``VmHWM``) [MB];
   and the server's CPU share in every phase [% of one core].

The load runs in this process on asyncio streams (no client library between the socket and
the figures); every phase is bounded in time and in requests, loopback only.  Nothing is
asserted.  ``--src DIR`` serves another checkout's ``src`` (``PYTHONPATH``), for the figures
before a change::

    git archive <commit> src | tar -x -C /tmp/before
    .venv/bin/python bench/served_town.py --src /tmp/before/src

``--starts N`` times only the start, N launches in turn of each ``--src`` given (``--src``
may repeat; ``.`` is this checkout), so that checkouts are compared under the same load.

Usage: ``.venv/bin/python bench/served_town.py [--units 10000] [--seconds 20] [--src DIR]``
       ``.venv/bin/python bench/served_town.py --starts 3 --src /tmp/before/src --src .``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Phase:
    """What one phase of load measured (latencies [s], bytes of the bodies received)."""

    latencies: list[float] = field(default_factory=list)
    body_bytes: int = 0
    errors: int = 0
    clock: list[tuple[float, float, float]] = field(default_factory=list)  # wall, emu, behind
    wall_s: float = 0.0
    cpu_pct: float = 0.0

    def ticks(self) -> list[tuple[float, float, float]]:
        """The samples that first show a new emulated time: the runner's ticks, each seen
        at most one sample (50 ms) and one answer late."""
        return [b for a, b in zip(self.clock, self.clock[1:], strict=False) if b[1] != a[1]]

    def pace(self) -> float:
        """Emulated s per wall s: the least-squares slope of the ticks seen."""
        ticks = self.ticks()
        if len(ticks) < 3:
            return float("nan")
        return statistics.linear_regression([t[0] for t in ticks], [t[1] for t in ticks]).slope

    def largest_gap(self) -> float:
        """The longest wall time between two ticks seen [s] (the runner ticks every 1 s)."""
        ticks = self.ticks()
        return max((b[0] - a[0] for a, b in zip(ticks, ticks[1:], strict=False)), default=0.0)

    def dropped(self) -> float:
        """Emulated seconds the runner dropped during the phase."""
        return self.clock[-1][2] - self.clock[0][2] if self.clock else float("nan")

    def quantile(self, q: float) -> float:
        """Latency quantile [ms]."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1e3 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(cwd: Path, units: int, port: int, src: Path | None) -> subprocess.Popen[bytes]:
    """``serve`` in a child process (its output in cwd/server.out)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIS_EMULATOR_")}
    if src is not None:
        env["PYTHONPATH"] = str(src.resolve())
    command = [sys.executable, "-m", "apis_emulator", "serve", str(units), "--port", str(port),
               "--acceleration", "10", "--step", "1"]
    out = open(cwd / "server.out", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def first_answer(url: str, path: str, process: subprocess.Popen[bytes], t0: float,
                 timeout: float = 120.0) -> float:
    """Seconds from ``t0`` until ``path`` first answers 200."""
    while time.monotonic() - t0 < timeout:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(url + path, timeout=30).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"{path} did not answer within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process [s] from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident now, resident at its peak) [MB] from /proc/<pid>/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024.0
    return values["VmRSS"], values["VmHWM"]


# ---------------------------------------------------------------------- HTTP on asyncio streams
async def read_answer(reader: asyncio.StreamReader) -> tuple[int, int]:
    """(status, body bytes) of one HTTP/1.1 answer, by Content-Length or chunks."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)}
    if b"content-length" in headers:
        size = int(headers[b"content-length"])
        await reader.readexactly(size)
        return status, size
    size = 0
    while True:  # chunked
        length = int((await reader.readuntil(b"\r\n")).strip(), 16)
        await reader.readexactly(length + 2)
        size += length
        if length == 0:
            return status, size


async def poll(port: int, paths: list[str], extra: str, phase: Phase, until: float,
               budget: list[int]) -> None:
    """One keep-alive connection asking ``paths`` in turn until ``until`` or the budget ends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    k = 0
    try:
        while time.monotonic() < until and budget[0] > 0:
            budget[0] -= 1
            path = paths[k % len(paths)]
            k += 1
            started = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
            status, size = await read_answer(reader)
            phase.latencies.append(time.perf_counter() - started)
            phase.body_bytes += size
            phase.errors += status != 200
    finally:
        writer.close()


async def watch_clock(url: str, phase: Phase, until: float) -> None:
    """The server's clock every 50 ms: (wall, emulated s, emulated s dropped)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while time.monotonic() < until:
            asked = time.monotonic()
            status = (await client.get("/api/status")).json()
            wall = (asked + time.monotonic()) / 2  # the answer was made in between
            phase.clock.append((wall, status["emulated_s"], status["behind_s"]))
            await asyncio.sleep(0.05)


async def load(url: str, port: int, groups: list[list[str]], seconds: float,
               max_requests: int, extra: str = "") -> Phase:
    """One connection per group of paths, for ``seconds`` or ``max_requests`` in all."""
    phase = Phase()
    until = time.monotonic() + seconds
    budget = [max_requests]
    started = time.monotonic()
    await asyncio.gather(watch_clock(url, phase, until),
                         *(poll(port, g, extra, phase, until, budget) for g in groups))
    phase.wall_s = time.monotonic() - started
    return phase


def measured(pid: int, run: object) -> Phase:
    """Run the coroutine ``run`` and note the server's CPU share over it."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    phase: Phase = asyncio.run(run)  # type: ignore[arg-type]
    phase.cpu_pct = 100.0 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
    return phase


# ---------------------------------------------------------------------- report
def show(label: str, phase: Phase, acc: float = 10.0) -> None:
    n = len(phase.latencies)
    pace = phase.pace()
    line = f"{label:34} pace {pace:7.3f} ({100 * (pace / acc - 1):+.2f} %), " \
           f"largest tick gap {phase.largest_gap():.2f} s, dropped {phase.dropped():.0f} s, " \
           f"server CPU {phase.cpu_pct:5.1f} %"
    if n:
        line += (f"; {n} requests, {n / phase.wall_s:7.1f} req/s, p50 {phase.quantile(0.5):7.1f}"
                 f" ms, p99 {phase.quantile(0.99):7.1f} ms, {phase.body_bytes / n / 1e6:.3f} MB"
                 f" per answer, {phase.errors} errors")
    print(line, flush=True)


def unit_groups(units: int, clients: int) -> list[list[str]]:
    """Client k polls units k+1, k+1+clients, …: every unit is asked."""
    return [[f"/get/unit/E{n:03d}" for n in range(k + 1, units + 1, clients)]
            for k in range(clients)]


def warm_up(cwd: Path, units: int, src: Path | None) -> None:
    """Serve the town for a few seconds, so that the compiled kernels (those for many units
    too) are cached before the start is timed (a fresh checkout compiles them at its first
    run, and a changed kernel at its next)."""
    port = free_port()
    process = launch(cwd, units, port, src)
    try:
        first_answer(f"http://127.0.0.1:{port}", "/get/acc", process, time.monotonic())
        time.sleep(2.5)
    finally:
        stop(process)


def starts(args: argparse.Namespace, cwd: Path) -> None:
    """Launch → first answer of /get/acc, ``args.starts`` times for each source in turn."""
    sources = [None if str(s) == "." else s for s in args.src or [Path(".")]]
    for src in sources:
        warm_up(cwd, args.units, src)
    for n in range(args.starts):
        for src in sources:
            port = free_port()
            t0 = time.monotonic()
            process = launch(cwd, args.units, port, src)
            try:
                took = first_answer(f"http://127.0.0.1:{port}", "/get/acc", process, t0)
            finally:
                stop(process)
            print(f"start {n + 1}, src {src or 'this checkout'}: {took:.2f} s "
                  f"(load average {os.getloadavg()[0]:.2f})", flush=True)


def run(args: argparse.Namespace, cwd: Path) -> None:
    src = args.src[0] if args.src else None
    warm_up(cwd, args.units, src)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    process = launch(cwd, args.units, port, src)
    try:
        print(f"start: first answer {first_answer(url, '/get/acc', process, t0):.2f} s, "
              f"/get/unit/E{args.units:03d} {first_answer(url, f'/get/unit/E{args.units:03d}', process, t0):.2f} s, "  # noqa: E501
              f"first /get/log {first_answer(url, '/get/log', process, t0):.2f} s "
              "(after launch)", flush=True)
        pid, s = process.pid, args.seconds
        show("idle", measured(pid, load(url, port, [], s, 0)))
        groups = unit_groups(args.units, args.clients)
        show(f"{args.clients} clients poll /get/unit",
             measured(pid, load(url, port, groups, s, args.max_requests)))
        logs = [["/get/log"]] * args.log_clients
        show(f"{args.log_clients} client(s) poll /get/log",
             measured(pid, load(url, port, logs, s, args.max_log_requests)))
        show(f"{args.log_clients} client(s) poll /get/log gzip",
             measured(pid, load(url, port, logs, s, args.max_log_requests,
                                "Accept-Encoding: gzip\r\n")))
        rss, peak = memory_mb(pid)
        print(f"memory: resident {rss:.0f} MB now, {peak:.0f} MB at the peak", flush=True)
    finally:
        stop(process)
        lags = [line for line in (cwd / "server.out").read_text().splitlines()
                if "behind" in line]
        print(f"server log: {len(lags)} 'behind' warnings" + (f", last: {lags[-1]}" if lags
                                                               else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase [s]")
    parser.add_argument("--clients", type=int, default=64, help="/get/unit connections")
    parser.add_argument("--max-requests", type=int, default=200_000,
                        help="most /get/unit requests of the phase")
    parser.add_argument("--log-clients", type=int, default=1, help="/get/log connections")
    parser.add_argument("--max-log-requests", type=int, default=2_000)
    parser.add_argument("--src", type=Path, action="append",
                        help="serve another checkout's src directory ('.': this one)")
    parser.add_argument("--starts", type=int, default=0,
                        help="only time N starts of each --src in turn")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; src {args.src or 'this checkout'}; "
          f"serve {args.units} --acceleration 10 --step 1; {args.seconds:g} s per phase")
    with tempfile.TemporaryDirectory(prefix="served-town-") as tmp:
        if args.starts:
            starts(args, Path(tmp))
        else:
            run(args, Path(tmp))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
