"""The trajectory stays exactly as it was: a reference run's summary, to the last bit (issue 11).

Each case runs ``apis-emulator simulate`` on the embedded default data set (100 households) in
a child process, as a user would, and compares its ``summary.csv`` byte for byte with the file
kept in tests/data/.  The summary writes every energy with ``repr`` (full precision), so any
change of the physics, of the order of a sum, of the data-set reader's numbers or of a
controller's decisions shows up here.  Output options (individual-log format, database) must
not change it: the runs use today's defaults.

A deliberate change of the trajectory rewrites the references:
``.venv/bin/python tests/test_reference_summary.py --write`` (and says why in the commit).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"

#: name → simulate arguments (100 units of the default data set, Δt the headless 10 s)
CASES = {
    # winter days: low batteries, AC charging and the UPS bypass, a sample every 900 s
    "reference_winter_3d": ["--units", "100", "--days", "3"],
    # early summer: full batteries, curtailed PV; no individual log (one kernel call a day)
    "reference_june_3d": ["--units", "100", "--days", "3", "--start", "2019-06-01T00:00:00",
                          "--indiv-interval", "0"],
    # apis-main's deal rules built in: the controller's decisions move the trajectory
    "reference_apis_2d": ["--units", "100", "--days", "2", "--controller", "apis",
                          "--indiv-interval", "0"],
}


def run_case(args: list[str], out: Path) -> bytes:
    """The summary.csv bytes of ``simulate`` run with ``args`` into ``out``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIS_EMULATOR_")}
    proc = subprocess.run([sys.executable, "-m", "apis_emulator", "simulate", *args,
                           "--out", str(out), "--no-progress"],
                          cwd=out.parent, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"simulate {' '.join(args)} failed:\n{proc.stderr}")
    return (out / "summary.csv").read_bytes()


@pytest.mark.parametrize("name", sorted(CASES))
def test_summary_is_the_reference_to_the_last_bit(name, tmp_path):
    """The same inputs give the same summary.csv, byte for byte, as the stored reference."""
    expected = (DATA / f"{name}.csv").read_bytes()
    got = run_case(CASES[name], tmp_path / "out")
    assert got.count(b"\n") == expected.count(b"\n")
    assert got == expected, f"{name}: the summary differs from tests/data/{name}.csv"


def write_references(directory: Path = DATA) -> None:
    """Run every case and store its summary as the reference."""
    import tempfile

    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in CASES.items():
            (directory / f"{name}.csv").write_bytes(run_case(args, Path(tmp) / name))
            print(f"wrote {directory / name}.csv")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {sys.argv[0]} --write   (rewrites the reference summaries)")
    write_references()
