"""Benchmark: the headless targets of issue 11, each the wall time of the whole command.

    .venv/bin/python bench/scale_targets.py [--cases year_default year_summary …]
                                            [--src DIR] [--repeat N] [--keep DIR]

Every case runs the real command line in a child process of its own (its peak memory is its
``ru_maxrss``, from ``os.wait4``) and prints the wall time of the whole process [s] (Python and
numba start, reading the data set, the run, closing the files), the CLI's own "done in … s"
(the run), peak RSS [MB], bytes written into ``--out`` [MB] and the 1-minute load average
before it (2 shared cores: a load above 2 slows every figure).  ``--repeat N`` keeps the best
of N (the least disturbed by other work on the machine).

``--src DIR`` runs another checkout's ``src`` (``PYTHONPATH``) with this interpreter;
``--compare DIR`` runs every case with that ``src`` ("before") and with this checkout
("after") in turn, so that both see the same load of the machine.  The "before" checkout is a
``git worktree`` of the commit before the change::

    git worktree add --detach /tmp/before 0f8b622
    .venv/bin/python bench/scale_targets.py --compare /tmp/before/src --repeat 2

A first 1-day run warms each checkout's numba cache (not shown).

Cases (100 units = the 100 households of the embedded default data set; units beyond a data
set's households reuse them in turn; Δt the headless 10 s):

- ``day``: 100 units, 1 day, summary only — what start-up costs;
- ``year_default``: 100 units, 365 days, ``simulate``'s default outputs (target ≤ 4 s,
  peak ≤ 300 MB);
- ``year_summary``: the same with ``--indiv-interval 0`` (target ≤ 2 s);
- ``year_csv``: the same with the individual log as CSV (``--indiv-format csv``);
- ``year_sqlite``: summary, individual log and the SQLite database (``--db sqlite``);
- ``year_1000``: 1,000 units, summary only (target ≤ 10 s);
- ``year_10000``: 10,000 units, summary only (target ≤ 100 s, peak ≤ 2 GB);
- ``read_1000``: reading a synthetic data set of 1,000 households (110 MB of load text),
  nothing else (target: one copy of the data in memory, 140 MB of float64).

Nothing here is asserted; tests never time anything.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simulate_year import dir_size_mb, write_synthetic  # noqa: E402

DONE = re.compile(r"done in ([0-9.]+) s")
YEAR = ["--units", "100", "--days", "365"]

#: case → (simulate arguments, target); None arguments: a data-set read
CASES: dict[str, tuple[list[str] | None, str]] = {
    "day": (["--units", "100", "--days", "1", "--indiv-interval", "0"], "start-up"),
    "year_default": (YEAR, "≤ 4 s, ≤ 300 MB"),
    "year_summary": ([*YEAR, "--indiv-interval", "0"], "≤ 2 s, ≤ 300 MB"),
    "year_csv": ([*YEAR, "--indiv-format", "csv"], "–"),
    "year_sqlite": ([*YEAR, "--db", "sqlite"], "–"),
    "year_1000": (["--units", "1000", "--days", "365", "--indiv-interval", "0"], "≤ 10 s"),
    "year_10000": (["--units", "10000", "--days", "365", "--indiv-interval", "0"],
                   "≤ 100 s, ≤ 2 GB"),
    "read_1000": (None, "one copy (140 MB)"),
}
READ = ("import sys, time; from apis_emulator.inputs import load_dataset; "
        "t = time.perf_counter(); d = load_dataset(sys.argv[1]); "
        "print(f'done in {time.perf_counter() - t:.2f} s', d.load_kw.shape, file=sys.stderr)")


@dataclass
class Figure:
    """One measured command."""

    case: str
    wall_s: float
    run_s: float | None
    peak_mb: float
    out_mb: float
    load1: float
    returncode: int


def measure(case: str, cmd: list[str], env: dict[str, str], work: Path, out: Path) -> Figure:
    """Run ``cmd`` in a child process; its wall time, run time, peak RSS and bytes written."""
    shutil.rmtree(out, ignore_errors=True)
    load1 = os.getloadavg()[0]
    started = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    stderr = child.stderr.read() if child.stderr else ""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code:
        print(stderr[-2000:], file=sys.stderr)
    match = DONE.search(stderr)
    return Figure(case, wall, float(match.group(1)) if match else None,
                  usage.ru_maxrss / 1024.0, dir_size_mb(out) if out.exists() else 0.0,
                  load1, code)


def command(case: str, work: Path, data1000: Path) -> tuple[list[str], Path]:
    """The child's command line for ``case`` and its output directory."""
    args, _ = CASES[case]
    out = work / f"out-{case}"
    if args is None:
        return [sys.executable, "-c", READ, str(data1000)], out
    return [sys.executable, "-m", "apis_emulator", "simulate", *args, "--out", str(out),
            "--no-progress"], out


def show(fig: Figure, cmd: list[str], label: str = "") -> None:
    """One line of figures, then the command (once, after the last label)."""
    run = f"{fig.run_s:7.1f}" if fig.run_s is not None else "      –"
    failed = "" if fig.returncode == 0 else f"  FAILED ({fig.returncode})"
    print(f"{label + fig.case:20} {fig.wall_s:8.1f} {run} {fig.peak_mb:9.0f} "
          f"{fig.out_mb:9.1f} {fig.load1:6.2f}  {CASES[fig.case][1]}{failed}", flush=True)
    if label in ("", "after "):
        shown = ["python" if c == sys.executable else c for c in cmd]
        print(f"{'':20} $ {' '.join(shown)}", flush=True)


def main() -> int:
    """Parse the flags, run the cases, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--src", type=Path, help="the src directory of another checkout")
    parser.add_argument("--compare", type=Path,
                        help="the src directory of the checkout before: each case runs with "
                             "it and with this one in turn")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs (default 1)")
    parser.add_argument("--keep", type=Path, help="keep data and outputs in this directory")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="apis-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIS_EMULATOR_")}
    if args.src:
        env["PYTHONPATH"] = str(args.src.resolve())
    sources = {"": env}
    if args.compare:
        sources = {"before ": {**env, "PYTHONPATH": str(args.compare.resolve())}, "after ": env}
    data1000 = work / "data-1000"
    if "read_1000" in args.cases and not (data1000 / "dataset.json").exists():
        write_synthetic(data1000, 1000)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, src "
          f"{args.src or 'this checkout'}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'case':20} wall [s] run [s] peak [MB]  out [MB]  load1  target")
    try:
        for child_env in sources.values():
            measure("warm-up", command("day", work, data1000)[0], child_env, work, work / "warm")
        for case in args.cases:
            cmd, out = command(case, work, data1000)
            runs: dict[str, list[Figure]] = {label: [] for label in sources}
            for _ in range(max(1, args.repeat)):
                for label, child_env in sources.items():
                    runs[label].append(measure(case, cmd, child_env, work, out))
            for label, figures in runs.items():
                show(min(figures, key=lambda f: f.wall_s), cmd, label)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
