"""Crash trials in ``make test``: a served run SIGKILLed at random moments, 6 times (3 in
each of two folders, side by side).

Each kill lands during a Save All, at an emulated midnight (the day row and the midnight
sample being written) or anywhere in the stream of log writes, in turn (tests/crash_support.py).
After each: every CSV complete or cut at a row boundary, the SQLite database passing its
integrity check, the Save All file whole; then the next start on the same folder answers,
loads the save, opens the same database and writes rows.  bench/crash_trials.py runs 100 kills
of a served run and 100 of ``simulate``; tests/test_recorders_kill.py kills ``simulate`` 20
times.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crash_support import Figures, ServedTrials, run_trials
from recorders_helpers import write_dataset

KILLS = 6  # two of each kind: make test stays well under 15 minutes
#: Two folders killed side by side, KILLS / 2 kills each (every kind once): a start is nearly
#: all of a trial's time, one core's work, and the machine has two.
FOLDERS = 2


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"), households=3)


def test_served_run_killed_at_random_moments_leaves_whole_files_and_starts_again(
        dataset_dir: Path, tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    per_folder = KILLS // FOLDERS

    def trials(k: int) -> Figures:
        served = ServedTrials(tmp_path / f"serve{k}", dataset_dir, random.Random(seed + k))
        return run_trials(served, per_folder, max_attempts=per_folder + 1)

    with ThreadPoolExecutor(FOLDERS) as pool:
        figures = Figures.merged(list(pool.map(trials, range(FOLDERS))))
    assert figures.kills == KILLS, f"seed {seed}: {figures.line()}\n{figures.problems}"
    assert figures.moments == {"save": 2, "day end": 2, "log write": 2}  # in turn
    assert figures.failures == 0, f"seed {seed}: {figures.line()}\n" + "\n".join(
        figures.problems)
    assert figures.files_checked >= 3 * KILLS  # summary, log, database at least each time
