"""Benchmark: wall time and peak memory of a headless year (``simulate --days 365``).

    .venv/bin/python bench/simulate_year.py [--units 4 100 1000] [--days 365] [--data DIR]
                                            [--households 100] [--log both|on|off]
                                            [--no-growth] [--keep DIR]

Every configuration runs the real command line in a subprocess of its own,

    python -m apis_emulator simulate --data DIR --units N --days D --out OUT --no-progress
                                     [--indiv-interval 0]

so its peak resident memory (``ru_maxrss`` of that child, from ``os.wait4``) is its own.  The Δt
is the headless default (10 s).  Each size runs twice: with the individual log at its default
interval (900 s) and with ``--indiv-interval 0``.  A last pair (100 units, 30 vs 365 days, log
on) shows whether memory grows with the length of the run.

Data: the embedded default data set if it exists (src/apis_emulator/data/default/dataset.json),
else a synthetic one of ``--households`` households written to a temporary directory (units
beyond the households reuse them in turn, as the engine does for any data set).

Printed per run: the wall time of the process [s] (start, data set, the run, the files), the
time of the run itself [s] (from the CLI's "done in … s" log line), peak RSS [MB] (ru_maxrss,
whole process), "late" RSS [MB] (the largest resident size sampled from /proc in the last
quarter of the run: the run's own footprint once reading the data set is over), the bytes
written, and the 1-minute load average before the run (the machine is shared: a load above
the number of cores slows every figure).  Targets (issue 2): 100 units ≤ 10 s, 1,000 units
≤ 60 s, peak memory < 500 MB and not growing with the run length.  Nothing here is asserted;
tests never time anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / "src" / "apis_emulator" / "data" / "default"
DAYS = 365
DONE = re.compile(r"done in ([0-9.]+) s")


@dataclass
class Run:
    units: int
    days: float
    indiv: bool
    wall_s: float
    run_s: float | None
    peak_mb: float
    late_mb: float
    written_mb: float
    load_before: float
    returncode: int


def write_synthetic(directory: Path, households: int) -> Path:
    """Solar [W] 365 × 24 and loads [kW] in the rows layout (header, 365 rows a household)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "solar.csv", "w") as fh:
        for day in range(DAYS):
            season = 0.6 + 0.4 * math.cos(2 * math.pi * (day - 172) / DAYS)
            clouds = 0.55 + 0.45 * math.sin(day * 2.39) ** 2
            fh.write(",".join(
                f"{max(0.0, math.sin(math.pi * (h - 6) / 12)) * 3000 * season * clouds:.1f}"
                for h in range(24)) + "\n")
    with open(directory / "load.csv", "w") as fh:
        fh.write("date,household,a,b,c,d," + ",".join(f"v{k}" for k in range(48)) + "\n")
        for house in range(1, households + 1):
            for day in range(DAYS):
                values = (0.15 + 0.004 * house + 0.35 * (1 + math.sin(
                    2 * math.pi * (k - 14 + (day + house) % 7) / 48)) for k in range(48))
                fh.write(f"{20190101 + day},{house},0,0,0,0,"
                         + ",".join(f"{v:.3f}" for v in values) + "\n")
    (directory / "dataset.json").write_text(json.dumps(
        {"name": f"synthetic-{households}", "solar": {"file": "solar.csv", "unit": "W"},
         "load": {"file": "load.csv", "layout": "rows"}}))
    return directory


def dir_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process now [MB] (Linux /proc), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def sample_rss(pid: int, samples: list[tuple[float, float]], stop: threading.Event) -> None:
    """Every 0.2 s: (time, RSS) of the child, to tell the run from the data-set loading."""
    while not stop.wait(0.2):
        rss = rss_mb(pid)
        if rss is not None:
            samples.append((time.perf_counter(), rss))


def run_once(data: Path, units: int, days: float, indiv: bool, work: Path) -> Run:
    """One ``simulate`` in a child process: wall time, run time, peak RSS, bytes written."""
    out = work / f"out-{units}u-{days:g}d-{'log' if indiv else 'nolog'}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "apis_emulator", "simulate", "--data", str(data),
           "--units", str(units), "--days", f"{days:g}", "--out", str(out), "--no-progress"]
    if not indiv:
        cmd += ["--indiv-interval", "0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIS_EMULATOR_")}
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(child.pid, samples, stop), daemon=True)
    sampler.start()
    stderr = child.stderr.read() if child.stderr else ""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    # the largest RSS seen in the last quarter of the run: the run's own footprint, after
    # the transient of reading the data set (which sets ru_maxrss) has passed
    late = [rss for t, rss in samples if t >= started + 0.75 * wall]
    child.returncode = os.waitstatus_to_exitcode(status)
    match = DONE.search(stderr)
    if child.returncode != 0:
        print(stderr[-2000:], file=sys.stderr)
    return Run(units, days, indiv, wall, float(match.group(1)) if match else None,
               usage.ru_maxrss / 1024.0, max(late, default=math.nan),
               dir_size_mb(out) if out.exists() else 0.0, load_before, child.returncode)


def show(run: Run) -> None:
    run_s = f"{run.run_s:8.1f}" if run.run_s is not None else "       ?"
    print(f"{run.units:6d} {run.days:6g} {'900 s' if run.indiv else 'off':>6} "
          f"{run.wall_s:9.1f} {run_s} {run.peak_mb:9.0f} {run.late_mb:9.0f} "
          f"{run.written_mb:9.1f} "
          f"{run.load_before:6.2f}{'' if run.returncode == 0 else f'  FAILED ({run.returncode})'}",
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, nargs="+", default=[4, 100, 1000])
    parser.add_argument("--days", type=float, default=DAYS)
    parser.add_argument("--data", type=Path, help="data-set directory (default: see above)")
    parser.add_argument("--households", type=int, default=100,
                        help="households of the synthetic data set (default 100)")
    parser.add_argument("--log", choices=("both", "on", "off"), default="both",
                        help="individual log on (900 s), off (--indiv-interval 0), or both")
    parser.add_argument("--no-growth", action="store_true",
                        help="skip the 30-day vs 365-day memory comparison")
    parser.add_argument("--keep", type=Path, help="keep data and outputs in this directory")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="apis-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.data:
        data = args.data
    elif (DEFAULT_DATA / "dataset.json").exists():
        data = DEFAULT_DATA
    else:
        data = write_synthetic(work / "data", args.households)
    print(f"data set: {data}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    print(" units   days  indiv  wall [s]  run [s]  peak [MB]  late [MB]  out [MB]  load1")
    try:
        run_once(data, 4, 1, False, work)  # warm the compiled kernels' cache; not shown
        for units in args.units:
            for indiv in {"both": (True, False), "on": (True,), "off": (False,)}[args.log]:
                show(run_once(data, units, args.days, indiv, work))
        if not args.no_growth:
            print("memory vs run length (100 units, individual log on):")
            for days in (30, args.days):
                show(run_once(data, 100, days, True, work))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
