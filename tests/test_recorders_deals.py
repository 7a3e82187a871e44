"""The deal log in the SQLite database: a ``deals`` table whose rows are deals.csv's rows.

A short run of the built-in controller (apis-main's rules) on ten houses of the embedded data
set in June makes a few dozen deals; the database sink writes them to ``deals`` beside the
summary rows, keyed by the run.  The PostgreSQL twin is test_recorders_deals_postgres.py.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from apis_emulator.config import Settings
from apis_emulator.control import build_controller, controller_step
from apis_emulator.engine import Emulator
from apis_emulator.engine.deals import DEAL_COLUMNS, TIME_FORMAT
from apis_emulator.inputs import DataSet, load_dataset
from apis_emulator.recorders import DB_TABLES, SUMMARY_COLUMNS
from apis_emulator.runner import SimulationResult, simulate
from recorders_helpers import read_csv

UNITS = 10
START = "2019-06-01T00:00:00"  # a June day: surplus houses and deficit houses, so deals
_TIMES = {"created", "activated", "started", "ended"}


@pytest.fixture(scope="module")
def june() -> tuple[Settings, DataSet]:
    """The embedded data set, from June 1, with the controller's step (5 s)."""
    settings = Settings(start=START, step=controller_step()).with_defaults_for("simulate")
    return settings, load_dataset(settings.dataSet)


def sharing_run(june: tuple[Settings, DataSet], out: Path, database: bool | str,
                days: float = 1.0) -> SimulationResult:
    """``days`` of UNITS houses with apis-main's rules, recorded into ``out`` and ``database``."""
    settings, dataset = june
    em = Emulator(settings, dataset, UNITS)
    return simulate(em, days, out, progress=False, database=database,
                    controller=build_controller("apis", em))


def as_csv_cells(row: Sequence[Any]) -> list[str]:
    """A ``deals`` table row (DEAL_COLUMNS order) written as deals.csv writes it."""
    cells = []
    for name, value in zip(DEAL_COLUMNS, row, strict=True):
        if name in _TIMES and value is not None:
            value = (value if isinstance(value, dt.datetime)
                     else dt.datetime.fromisoformat(value)).strftime(TIME_FORMAT)
        cells.append("" if value is None else repr(value) if isinstance(value, float)
                     else str(value))
    return cells


def csv_deals(out: Path) -> list[list[str]]:
    """deals.csv's rows (header checked), sorted by deal_id."""
    rows = read_csv(out / "deals.csv")
    assert tuple(rows[0]) == DEAL_COLUMNS
    return sorted(rows[1:])


@pytest.fixture(scope="module")
def shared_run(june, tmp_path_factory) -> tuple[SimulationResult, Path]:
    out = tmp_path_factory.mktemp("sharing")
    return sharing_run(june, out, database=True), out


def test_deals_table_rows_equal_the_deal_log(shared_run):
    """Every deals.csv row is a row of ``deals`` with the run's id, cell for cell."""
    result, out = shared_run
    db = sqlite3.connect(out / "apis-emulator.sqlite")
    (run_id,), = db.execute("SELECT run_id FROM runs").fetchall()
    names = ", ".join(f'"{c}"' for c in DEAL_COLUMNS)
    rows = db.execute(f"SELECT {names} FROM deals WHERE run_id = ? ORDER BY deal_id",
                      (run_id,)).fetchall()
    expected = csv_deals(out)
    assert len(expected) >= 10  # the run did share
    assert [as_csv_cells(r) for r in rows] == expected
    assert db.execute("SELECT COUNT(*) FROM deals").fetchone() == (len(expected),)
    assert result.recorders[f"SQLite database {out / 'apis-emulator.sqlite'}"]["error"] is None


def test_deals_table_types_keys_and_index(shared_run):
    """Times as ISO text (NULL where the log is empty), Wh as integers; key and index."""
    _, out = shared_run
    db = sqlite3.connect(out / "apis-emulator.sqlite")
    types = dict(db.execute("SELECT typeof(started), typeof(deal_wh) FROM deals "
                            "WHERE started IS NOT NULL LIMIT 1").fetchall())
    assert types == {"text": "integer"}
    assert db.execute("SELECT started FROM deals WHERE started IS NOT NULL "
                      "ORDER BY started LIMIT 1").fetchone()[0][:11] == "2019-06-01 "
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert set(DB_TABLES) <= tables
    key = [r[1] for r in sorted(db.execute("PRAGMA table_info(deals)"), key=lambda r: r[5])
           if r[5]]
    assert key == ["run_id", "deal_id"]
    index = db.execute("SELECT sql FROM sqlite_master WHERE name = 'deals_started'").fetchone()
    assert index is not None and "(started)" in index[0]


def test_summary_rows_in_the_database_carry_the_shared_energy(shared_run):
    """daily_summary's shared_in, shared_out, deals = summary.csv's cells."""
    _, out = shared_run
    rows = read_csv(out / "summary.csv")
    db = sqlite3.connect(out / "apis-emulator.sqlite")
    got = db.execute("SELECT shared_in, shared_out, deals FROM daily_summary").fetchall()
    day = dict(zip(rows[0], rows[1], strict=True))
    assert got == [(float(day["shared_in"]), float(day["shared_out"]), float(day["deals"]))]
    assert float(day["deals"]) > 0


def test_two_runs_keep_their_deals_apart(june, tmp_path):
    """Both runs have a deal D0000001: keyed by run_id, nothing is overwritten."""
    url = "sqlite:///" + str(tmp_path / "shared.sqlite")
    counts = [len(csv_deals(sharing_run(june, tmp_path / str(k), url).out_dir))
              for k in range(2)]
    db = sqlite3.connect(tmp_path / "shared.sqlite")
    assert db.execute("SELECT run_id, COUNT(*) FROM deals GROUP BY run_id ORDER BY run_id"
                      ).fetchall() == [(1, counts[0]), (2, counts[1])]
    assert db.execute("SELECT COUNT(*) FROM deals WHERE deal_id = 'D0000001'").fetchone() == (2,)


def test_a_database_of_an_earlier_version_gets_the_new_columns(june, tmp_path):
    """Tables made before the sharing columns existed: they are added, the rows go in."""
    path = tmp_path / "old.sqlite"
    old = SUMMARY_COLUMNS[1:SUMMARY_COLUMNS.index("shared_in")]
    db = sqlite3.connect(path)
    db.executescript(f"""
        CREATE TABLE runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL,
            closed_at TEXT, mode TEXT NOT NULL, start_time TEXT NOT NULL,
            step_s REAL NOT NULL, units INTEGER NOT NULL, data_set TEXT NOT NULL);
        CREATE TABLE daily_summary (run_id INTEGER NOT NULL, day TEXT NOT NULL,
            {", ".join(f'"{c}" REAL' for c in old)}, PRIMARY KEY (run_id, day));
        CREATE TABLE run_totals (run_id INTEGER NOT NULL, kind TEXT NOT NULL,
            {", ".join(f'"{c}" REAL' for c in old)}, PRIMARY KEY (run_id, kind));""")
    db.close()
    sharing_run(june, tmp_path / "run", "sqlite:///" + str(path))
    rows = read_csv(tmp_path / "run" / "summary.csv")
    db = sqlite3.connect(path)
    assert db.execute("SELECT pv, shared_in, deals FROM run_totals WHERE kind = 'sum'"
                      ).fetchone() == tuple(float(rows[-2][rows[0].index(c)])
                                            for c in ("pv", "shared_in", "deals"))
    deals = len(csv_deals(tmp_path / "run"))
    assert deals > 0 and db.execute("SELECT COUNT(*) FROM deals").fetchone() == (deals,)
