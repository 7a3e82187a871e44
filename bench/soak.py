"""Soak: a served run under polling for half an hour, counted for leaks (issue 10).

A real server (``python -m apis_emulator serve 100 --acceleration 1000``: the embedded data set,
Δt 1 s, the served recorders writing the summary and the individual log, a sample every 60
emulated s, into a temporary directory) on a free loopback port.  For MINUTES wall minutes
(30: ≈ 21 emulated days) 64 clients poll /get/unit/<id> and 4 poll /get/log, each on a
keep-alive connection of its own (as one apis-main per unit) with a short pause between polls,
so the load is heavy but bounded; Save All runs every minute (the first at once); every 10 s
a sampler reads the server's resident memory, open file descriptors and threads from /proc
and its emulated clock from /api/status.  Then the server is stopped with SIGTERM (the clean
stop: the partial day and the closing rows) and its outputs are read back.

Targets: after the warm-up, resident memory grows ≤ 5 % (peak against the start of the
window); the emulated clock keeps pace within 1 % (Δemulated / Δwall / acceleration over the
window); open files and threads flat (the last samples no higher than the first ones: a
single sample may catch a Save All's temporary file); the summary has a row for every emulated
day (the partial last one included) and `sum`/`avg` rows that add up, and every row's ledger
closes; the individual log has every unit at every 60-s sample.  Also: every poll and save
answered 200, the server stopped with 0, nothing logged at WARNING or above.  Prints the
figures with PASS/FAIL per target; exits 1 when one fails.

Bounded in time (pollers, sampler and saver stop by themselves at the deadline) and in
requests (a pause after each poll), loopback only.

    .venv/bin/python bench/soak.py [--minutes 30] [--warmup 3] [--units 100]
        [--acceleration 1000] [--unit-pollers 64] [--log-pollers 4] [--keep DIR] [--src DIR]
"""

from __future__ import annotations

import argparse
import array
import asyncio
import collections
import csv
import datetime as dt
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from serving import cpu_s, open_fds, rss_mb, start_server, stop_server, threads

TIME_FORMAT = "%Y/%m/%d-%H:%M:%S"
SAMPLE_EVERY_EMULATED = 60.0  # [s] the served individual log's default indivLogInterval
#: Summary columns that are energies [Wh]: summed by the `sum` row, divided by `avg`.
ENERGIES = ("pv", "demand", "acin", "wasted", "acloss", "dcloss", "loss", "wg", "deltaBatt")


# ---------------------------------------------------------------------------------- samples
@dataclass(frozen=True)
class Sample:
    """One reading of the server: /proc and its emulated clock."""

    at_s: float  # [s] of wall time since the load began
    rss_mb: float  # [MB]
    fds: int
    threads: int
    emulated_s: float  # [s] emulated since the start, at the server's last tick
    tick_s: float  # [s] bench monotonic time of that tick
    behind_s: float  # [s] of emulated time the runner dropped so far
    cpu_s: float  # [s] of CPU the server used so far
    own_cpu_s: float  # [s] of CPU this bench (pollers, sampler) used so far
    load1: float  # the machine's 1-minute load average


def read_sample(client: httpx.Client, pid: int, began: float) -> Sample:
    """/proc of ``pid`` and /api/status.  The tick's wall time is the request's midpoint less
    the tick's age, so the pace is exact to a request's latency, not to a tick (1 s)."""
    sent = time.monotonic()
    status = client.get("/api/status").json()
    answered = time.monotonic()
    age = status["last_tick_s"] or 0.0
    return Sample(at_s=answered - began, rss_mb=rss_mb(pid), fds=open_fds(pid),
                  threads=threads(pid), emulated_s=float(status["emulated_s"]),
                  tick_s=(sent + answered) / 2 - age, behind_s=float(status["behind_s"]),
                  cpu_s=cpu_s(pid), own_cpu_s=time.process_time(), load1=os.getloadavg()[0])


def pace(a: Sample, b: Sample, acceleration: float) -> float:
    """Δemulated / Δwall / acceleration between two samples (1.0: on pace)."""
    return (b.emulated_s - a.emulated_s) / (b.tick_s - a.tick_s) / acceleration


def thread_names(pid: int) -> dict[str, int]:
    """The threads of ``pid`` by name (/proc/PID/task/*/comm)."""
    names: collections.Counter[str] = collections.Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            names[(task / "comm").read_text().strip()] += 1
        except OSError:  # ended between listing and reading
            continue
    return dict(sorted(names.items(), key=lambda kv: (-kv[1], kv[0])))


def listing(pid: int) -> str:
    """What the open descriptors and the threads of ``pid`` are, for a leak's diagnosis."""
    return f"fds {fd_kinds(pid)}; threads {thread_names(pid)}"


def fd_kinds(pid: int) -> dict[str, int]:
    """What the open descriptors of ``pid`` are: socket, pipe, anon_inode, or a file's name."""
    kinds: collections.Counter[str] = collections.Counter()
    folder = Path(f"/proc/{pid}/fd")
    for fd in folder.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed between listing and reading
            continue
        special = ":[" in target or target.startswith("anon_inode:")  # socket:[123] …
        kinds[target.split(":", 1)[0] if special else Path(target).name] += 1
    return dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass
class Monitor:
    """The sampler (every ``sample_every`` s) and Save All (every ``save_every`` s), on a
    thread of their own so that the pollers' busy event loop does not delay the clock's
    readings."""

    url: str
    pid: int
    acceleration: float
    sample_every: float = 10.0  # [s] of wall time
    save_every: float = 60.0  # [s] of wall time
    samples: list[Sample] = field(default_factory=list)
    saves: list[tuple[int, float]] = field(default_factory=list)  # (status, latency [ms])
    listings: dict[str, str] = field(default_factory=dict)  # moment → fds and threads

    def run(self, began: float, deadline: float, warmup_s: float) -> None:
        """Sample and save on monotonic deadlines until ``deadline``, then one last sample."""
        next_sample = next_save = began  # a save at once: its worker thread starts in the warm-up
        with httpx.Client(base_url=self.url, timeout=30.0) as client:
            while (now := time.monotonic()) < deadline:
                if now >= next_sample:
                    self._sample(client, began, warmup_s)
                    next_sample += self.sample_every
                if now >= next_save:
                    self._save(client)
                    next_save += self.save_every
                time.sleep(max(0.0, min(next_sample, next_save, deadline) - time.monotonic()))
            self._sample(client, began, warmup_s)  # the last reading, as the load ends

    def _sample(self, client: httpx.Client, began: float, warmup_s: float) -> None:
        sample = read_sample(client, self.pid, began)
        self.samples.append(sample)
        if "warm-up end" not in self.listings and sample.at_s >= warmup_s:
            self.listings["warm-up end"] = listing(self.pid)
        self.listings["last sample"] = listing(self.pid)
        if len(self.samples) % round(60 / self.sample_every) == 1:
            self._progress(sample)

    def _progress(self, now: Sample) -> None:
        """A line a minute: memory, files, threads, emulated days, the last minute's pace."""
        earlier = [s for s in self.samples if s.at_s <= now.at_s - 59]
        last = f"{pace(earlier[-1], now, self.acceleration):.4f}" if earlier else "–"
        print(f"{now.at_s / 60:5.1f} min  RSS {now.rss_mb:6.1f} MB  fds {now.fds:3d}  "
              f"threads {now.threads:2d}  emulated {now.emulated_s / 86400:6.2f} d  "
              f"pace (last min) {last}  dropped {now.behind_s:.0f} s  saves {len(self.saves)}  "
              f"load {now.load1:.1f}",
              flush=True)

    def _save(self, client: httpx.Client) -> None:
        started = time.perf_counter()
        try:
            status = client.get("/save").status_code
        except httpx.HTTPError:
            status = 0
        self.saves.append((status, (time.perf_counter() - started) * 1000))


# ---------------------------------------------------------------------------------- pollers
@dataclass
class Polls:
    """Latencies [ms] and failures of the polls of one path."""

    latencies: array.array[float] = field(default_factory=lambda: array.array("d"))
    failures: int = 0


async def poll(url: str, path: str, pause: float, deadline: float, polls: Polls) -> None:
    """GET ``path`` on one keep-alive connection, a ``pause`` [s] after each answer."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=url, timeout=10.0, limits=limits) as client:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                ok = (await client.get(path)).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                polls.latencies.append((time.perf_counter() - started) * 1000)
            else:
                polls.failures += 1
            await asyncio.sleep(pause)


async def load(url: str, args: argparse.Namespace, deadline: float) -> dict[str, Polls]:
    """The 64 unit pollers (one unit each, E001…) and the 4 /get/log pollers, to ``deadline``."""
    result = {"/get/unit/<id>": Polls(), "/get/log": Polls()}
    tasks = [poll(url, f"/get/unit/E{k % args.units + 1:03d}", args.unit_pause, deadline,
                  result["/get/unit/<id>"]) for k in range(args.unit_pollers)]
    tasks += [poll(url, "/get/log", args.log_pause, deadline, result["/get/log"])
              for _ in range(args.log_pollers)]
    await asyncio.gather(*tasks)
    return result


# ---------------------------------------------------------------------------------- outputs
def emulated_start(url: str) -> dt.datetime:
    """The emulated time at which the run began (the clock less the time emulated since)."""
    status = httpx.get(url + "/api/status", timeout=10).json()
    now = dt.datetime.strptime(status["time"], TIME_FORMAT)
    return now - dt.timedelta(seconds=float(status["emulated_s"]))


def emulated_end(server_log: str) -> dt.datetime:
    """The emulated time the server stopped at (its log's last line of the app)."""
    found = re.findall(r"emulator stopped at (\S+)", server_log)
    if not found:
        raise RuntimeError("the server's log does not say where it stopped")
    return dt.datetime.strptime(found[-1], TIME_FORMAT)


def _number(cell: str) -> float:
    return float(cell) if cell else 0.0


def read_summary(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def summary_complete(rows: list[dict[str, str]], start: dt.datetime,
                     end: dt.datetime) -> tuple[bool, str]:
    """A row per emulated day begun before ``end`` (the last one partial unless the run
    stopped at a midnight), then `sum` and `avg` equal to the days' total and mean."""
    day, expected = start.date(), []
    while dt.datetime.combine(day, dt.time()) < end:
        expected.append(day.strftime("%Y/%m/%d"))
        day += dt.timedelta(days=1)
    labels = [r["time"] for r in rows]
    if labels != [*expected, "sum", "avg"]:
        return False, f"rows {labels[:3]}…{labels[-3:]}, expected {len(expected)} days"
    days = rows[:-2]
    for name in ENERGIES:
        total = sum(_number(r[name]) for r in days)
        got_sum, got_avg = _number(rows[-2][name]), _number(rows[-1][name])
        tolerance = 1e-9 * sum(abs(_number(r[name])) for r in days) + 1e-6
        if abs(got_sum - total) > tolerance or abs(got_avg - total / len(days)) > tolerance:
            return False, f"`sum`/`avg` of {name} are not the days' total/mean"
    return True, f"{len(days)} day rows ({len(days) - 1} whole + the partial), sum, avg"


def ledger_residual(row: dict[str, str]) -> float:
    """pv + acin + wg − demand − loss − deltaBatt over the row's scale (0: it closes).

    The soak commands no converter, so nothing crosses the DC grid (wg = 0, and the summary's
    wg is what units received, not the net): every unit's PV, AC in and grid energy goes to
    its load, its losses or its battery, and so does the community's."""
    v = {name: _number(row[name]) for name in ENERGIES}
    inflow = v["pv"] + v["acin"] + v["wg"]
    outflow = v["demand"] + v["loss"] + v["deltaBatt"]
    scale = abs(inflow) + abs(v["demand"]) + abs(v["loss"]) + abs(v["deltaBatt"]) + 1.0
    return abs(inflow - outflow) / scale


def summary_balanced(rows: list[dict[str, str]]) -> tuple[bool, str]:
    """Every day row and the `sum` row close to 1e-9 of their scale; loss = acloss + dcloss;
    nothing over the DC grid."""
    worst = max(ledger_residual(r) for r in rows[:-1])
    split = max(abs(_number(r["loss"]) - _number(r["acloss"]) - _number(r["dcloss"]))
                for r in rows)
    grid = max(abs(_number(r["wg"])) for r in rows)
    ok = worst <= 1e-9 and split <= 1e-6 and grid == 0.0
    return ok, (f"largest residual {worst:.1e} of a row's energy; loss − acloss − dcloss ≤ "
                f"{split:.1e} Wh; wg {grid:g} Wh")


def log_samples(path: Path) -> list[tuple[str, int, int]]:
    """(time, rows, sum of the unit numbers) for each sample of the individual log, in order."""
    out: list[tuple[str, int, int]] = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader)  # header
        current, rows, numbers = "", 0, 0
        for row in reader:
            if row[1] != current:
                if rows:
                    out.append((current, rows, numbers))
                current, rows, numbers = row[1], 0, 0
            rows += 1
            numbers += int(row[0][1:])  # E001 → 1
        if rows:
            out.append((current, rows, numbers))
    return out


def log_complete(path: Path, start: dt.datetime, end: dt.datetime,
                 units: int) -> tuple[bool, str]:
    """Every 60-s sample from start + 60 s to ``end``, each with E001…E<units> once."""
    found = log_samples(path)
    count = int((end - start).total_seconds() // SAMPLE_EVERY_EMULATED)
    expected = [(start + dt.timedelta(seconds=SAMPLE_EVERY_EMULATED * k)).strftime(TIME_FORMAT)
                for k in range(1, count + 1)]
    whole = units * (units + 1) // 2  # E001 … E<units> once each
    bad = [t for t, rows, numbers in found if rows != units or numbers != whole]
    times = [t for t, _, _ in found]
    rows = sum(r for _, r, _ in found)
    if times != expected or bad:
        missing = sorted(set(expected) - set(times))
        return False, (f"{len(times)} samples of {count} expected; {len(missing)} missing "
                       f"(first {missing[:1]}); {len(bad)} incomplete (first {bad[:1]})")
    return True, f"{count} samples × {units} units = {rows:,} rows, none missing or doubled"


# ---------------------------------------------------------------------------------- figures
@dataclass(frozen=True)
class Check:
    """One line of the final table."""

    name: str
    figure: str
    target: str
    ok: bool | None  # None: a figure without a target

    def row(self) -> str:
        result = "–" if self.ok is None else "PASS" if self.ok else "FAIL"
        return f"| {self.name} | {self.figure} | {self.target} | {result} |"


def middle(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def window_checks(samples: list[Sample], warmup_s: float, acceleration: float,
                  sample_every: float) -> list[Check]:
    """Memory, pace, files and threads over the samples after the warm-up."""
    window = [s for s in samples if s.at_s >= warmup_s - 1.0]
    head, tail = window[:3], window[-3:]
    rss0, rss1 = middle([s.rss_mb for s in head]), middle([s.rss_mb for s in tail])
    peak = max(s.rss_mb for s in window)
    p = pace(window[0], window[-1], acceleration)
    minute = round(60 / sample_every)  # samples a minute apart
    paces = [pace(a, b, acceleration) for a, b in zip(window, window[minute:], strict=False)]
    dropped = window[-1].behind_s - window[0].behind_s
    span = (window[-1].at_s - window[0].at_s) / 60
    return [
        Check("RSS growth after warm-up",
              f"{rss0:.1f} → {rss1:.1f} MB at the end ({100 * (rss1 / rss0 - 1):+.2f} %), peak "
              f"{peak:.1f} MB ({100 * (peak / rss0 - 1):+.2f} %) over {span:.0f} min",
              "peak ≤ +5 %", peak <= 1.05 * rss0),
        Check("pace", f"{p:.5f} ({100 * (p - 1):+.3f} %) over {span:.0f} min; 1-min windows "
              f"{min(paces, default=p):.4f}–{max(paces, default=p):.4f}; {dropped:.0f} emulated "
              "s dropped", "within 1 %", abs(p - 1) <= 0.01),
        _flat("open file descriptors", [s.fds for s in window]),
        _flat("threads", [s.threads for s in window]),
        _cpu(window),
    ]


def _cpu(window: list[Sample]) -> Check:
    """How busy the server, the bench and the machine were (all share the cores)."""
    a, b = window[0], window[-1]
    wall = b.at_s - a.at_s
    loads = [s.load1 for s in window]
    return Check("CPU", f"server {100 * (b.cpu_s - a.cpu_s) / wall:.0f} % of a core, this "
                 f"bench's pollers {100 * (b.own_cpu_s - a.own_cpu_s) / wall:.0f} %; load "
                 f"average {min(loads):.1f}–{max(loads):.1f} (mean {statistics.fmean(loads):.1f})"
                 f" on {os.cpu_count()} cores", "–", None)


def _flat(name: str, counts: list[int]) -> Check:
    """Flat: the median of the last three samples no higher than that of the first three."""
    first, last = middle(counts[:3]), middle(counts[-3:])
    return Check(name, f"{first:.0f} after warm-up → {last:.0f} at the end (range "
                 f"{min(counts)}–{max(counts)} in {len(counts)} samples)", "flat", last <= first)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def traffic_checks(polls: dict[str, Polls], saves: list[tuple[int, float]],
                   seconds: float) -> list[Check]:
    """Every poll and Save All answered 200; their rates and latencies."""
    checks = []
    for path, p in polls.items():
        lat = sorted(p.latencies)
        figure = (f"{len(lat):,} polls ({len(lat) / seconds:.0f}/s), p50 "
                  f"{percentile(lat, 0.5):.1f} / p99 {percentile(lat, 0.99):.1f} / max "
                  f"{lat[-1]:.0f} ms; {p.failures} failed") if lat else f"{p.failures} failed"
        checks.append(Check(f"GET {path}", figure, "all 200", bool(lat) and not p.failures))
    good = [ms for status, ms in saves if status == 200]
    figure = (f"{len(good)} of {len(saves)} answered 200, median {middle(good):.0f} ms, max "
              f"{max(good):.0f} ms") if good else f"0 of {len(saves)}"
    checks.append(Check("Save All every minute", figure, "all 200",
                        bool(saves) and len(good) == len(saves)))
    return checks


def output_checks(out: Path, server_log: str, start: dt.datetime, units: int,
                  exit_status: int, stop_s: float) -> list[Check]:
    """The clean stop, the summary and the individual log, the server's own log."""
    end = emulated_end(server_log)
    rows = read_summary(out / "summary.csv")
    complete = summary_complete(rows, start, end)
    balanced = summary_balanced(rows) if complete[0] else (False, "not complete")
    logged = log_complete(out / "indivLog.csv", start, end, units)
    noisy = [line for line in server_log.splitlines()
             if re.search(r" (WARNING|ERROR|CRITICAL) ", line)]
    return [
        Check("clean stop (SIGTERM)", f"exit {exit_status} after {stop_s:.1f} s; emulated "
              f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M:%S}", "exit 0", exit_status == 0),
        Check("summary complete", complete[1], "every day, sum, avg", complete[0]),
        Check("summary balanced", balanced[1], "every row closes", balanced[0]),
        Check("individual log complete", logged[1], "every unit every 60 s", logged[0]),
        Check("server log", f"{len(noisy)} lines at WARNING or above"
              + (f" (first: {noisy[0][:120]})" if noisy else ""), "none", not noisy),
    ]


# ---------------------------------------------------------------------------------- the run
def soak(args: argparse.Namespace, workdir: Path) -> list[Check]:
    """Start the server in ``workdir``, load it, stop it, read back; the checks."""
    command = ["-m", "apis_emulator", "serve", str(args.units),
               "--acceleration", f"{args.acceleration:g}"]
    with open(workdir / "server.log", "wb") as output:
        process, url = start_server(command, workdir, output=output, src=args.src)
        try:
            start = emulated_start(url)
            monitor, polls, seconds = _drive(url, process.pid, args)
        finally:
            stopping = time.monotonic()
            exit_status = stop_server(process, timeout=60.0)
            stop_s = time.monotonic() - stopping
    print(f"load average at the end of the load: {_load()}")
    for moment, text in monitor.listings.items():
        print(f"{moment}: {text}")
    server_log = (workdir / "server.log").read_text(errors="replace")
    return (window_checks(monitor.samples, args.warmup * 60, args.acceleration,
                          monitor.sample_every)
            + traffic_checks(polls, monitor.saves, seconds)
            + output_checks(workdir / "data" / "output", server_log, start, args.units,
                            exit_status, stop_s))


def _drive(url: str, pid: int, args: argparse.Namespace) -> tuple[Monitor, dict[str, Polls],
                                                                   float]:
    """The pollers on this thread's event loop, the monitor on its own thread, to the end."""
    monitor = Monitor(url, pid, args.acceleration)
    began = time.monotonic()
    deadline = began + args.minutes * 60
    sampler = threading.Thread(target=monitor.run, args=(began, deadline, args.warmup * 60))
    sampler.start()
    polls = asyncio.run(load(url, args, deadline))
    sampler.join()
    monitor.listings["pollers closed"] = listing(pid)
    return monitor, polls, time.monotonic() - began


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="[min] of wall time")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="[min] left out of the memory, pace, file and thread figures "
                             "(at most a third of --minutes)")
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--acceleration", type=float, default=1000.0)
    parser.add_argument("--unit-pollers", type=int, default=64)
    parser.add_argument("--log-pollers", type=int, default=4)
    parser.add_argument("--unit-pause", type=float, default=0.05,
                        help="[s] after each /get/unit answer (bounds the requests)")
    parser.add_argument("--log-pause", type=float, default=0.25,
                        help="[s] after each /get/log answer")
    parser.add_argument("--keep", type=Path, help="run in this directory and keep the outputs")
    parser.add_argument("--src", type=Path,
                        help="serve another checkout's src (e.g. `git worktree add --detach "
                             "/tmp/soak-src HEAD`: the commit measured, not work in progress)")
    args = parser.parse_args(argv)
    args.warmup = min(args.warmup, args.minutes / 3)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the soak, print the figures and PASS/FAIL; 1 when a target fails."""
    args = parse(argv)
    print(f"soak: {args.units} units at acceleration {args.acceleration:g} for "
          f"{args.minutes:g} min (warm-up {args.warmup:g} min), {args.unit_pollers} pollers "
          f"of /get/unit (pause {args.unit_pause:g} s), {args.log_pollers} of /get/log "
          f"(pause {args.log_pause:g} s), Save All every 60 s; src {args.src or 'this checkout'};"
          f" load average before: {_load()}",
          flush=True)
    checks = _in_workdir(args, lambda workdir: soak(args, workdir))
    print("\n| target | figure | limit | result |\n|---|---|---|---|")
    for check in checks:
        print(check.row())
    failed = [c.name for c in checks if c.ok is False]
    print(f"\n{'FAIL: ' + ', '.join(failed) if failed else 'PASS: every target met'}")
    return 1 if failed else 0


def _in_workdir(args: argparse.Namespace, run: Callable[[Path], list[Check]]) -> list[Check]:
    """``run`` in ``--keep`` (kept) or in a temporary directory (removed after)."""
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return run(args.keep)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        return run(Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
