"""Crash trials: 100 SIGKILLs of a served run and 100 of ``simulate``, at random moments.

    .venv/bin/python bench/crash_trials.py [--kills 100] [--only served|simulate] [--seed N]

Served: ``apis-emulator serve 3`` (2 emulated hours a wall second, ticks of 0.1 s, a sample
every emulated minute, summary CSV, individual CSV and SQLite on, each run starting 15
emulated minutes before a midnight), killed in turn during Save All (a thread saving again and
again), within a tick or two of an emulated midnight (the day row and the midnight sample) and
anywhere in the stream of log writes.  Headless: ``apis-emulator simulate --days 30 --units 3
--indiv-interval 60 --db sqlite``, the individual log as CSV and as Parquet in turn, killed 0–2 s
after its first day row.  Every run starts on the folder the killed one left: that start is
the "next start" checked.

After each kill every file is checked (tests/crash_support.py, shared with
tests/test_recorders_crash.py): each CSV complete or cut at a row boundary, every row its
number of cells, the SQLite database passing ``PRAGMA integrity_check``, each Parquet part
readable, the Save All file parsing.  Printed: kills (by moment), files checked, cut rows, bad
rows, integrity failures, unreadable saves, next-start failures, Save All temporary files left,
wall time, and every problem found.  Nothing is asserted; docs/reliability.md keeps the figures.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))  # the checks and the trials are the test's own

from crash_support import Figures, ServedTrials, SimulateTrials, run_trials  # noqa: E402
from recorders_helpers import write_dataset  # noqa: E402


def report(name: str, figures: Figures, wall: float) -> None:
    print(f"{name}: {figures.line()}; {wall:.0f} s", flush=True)
    for problem in figures.problems:
        print(f"  problem: {problem}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="kills of each kind")
    parser.add_argument("--only", choices=("served", "simulate"), help="one kind only")
    parser.add_argument("--seed", type=int, help="random seed (default: drawn and printed)")
    args, _ = parser.parse_known_args(argv)  # run_all.py may pass others' arguments
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"crash trials: {args.kills} kills of each kind, seed {seed}", flush=True)
    kinds = {"served": ServedTrials, "simulate": SimulateTrials}
    with tempfile.TemporaryDirectory(prefix="apis-emulator-crash-") as tmp:
        root = Path(tmp)
        data = write_dataset(root / "dataset", households=3)
        for name, trials in kinds.items():
            if args.only not in (None, name):
                continue
            started = time.perf_counter()
            figures = run_trials(trials(root / name, data, random.Random(seed)), args.kills)
            report(name, figures, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
