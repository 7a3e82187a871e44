"""Recorders as a list of sinks: the plan of a headless run from the settings, and a new sink
added the way docs/architecture.md says (one class, one opener in SINK_OPENERS)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from apis_emulator.config import Settings
from apis_emulator.recorders import (
    SINK_OPENERS,
    DayRow,
    RecorderPlan,
    RunInfo,
    Sink,
    UnitDocuments,
    UnitsBlock,
)
from apis_emulator.recorders import sinks as sinks_module
from apis_emulator.runner import simulate
from recorders_helpers import make_emulator, write_dataset

OUT = Path("out")


def plan_of(flags: dict[str, Any] | None = None, **settings: Any) -> RecorderPlan:
    """The simulate plan for ``Settings(**settings)`` (headless defaults) and ``flags``."""
    chosen = Settings(**settings).with_defaults_for("simulate")
    return RecorderPlan.for_simulate(chosen, OUT, **(flags or {}))


def test_default_settings_give_summary_and_log_in_the_out_dir_and_no_database() -> None:
    """saveToSummaryToCSV and saveIndividualToCSV are on, saveIndividualToDB off; 900 s; the
    log is Parquet (issue 11: about a quarter of the CSV's size)."""
    plan = plan_of()
    assert plan.summary_csv == OUT / "summary.csv"
    assert plan.indiv_log == OUT / "indivLog.parquet"
    assert plan.indiv_interval == 900.0 and plan.dburl is None
    assert plan.mode == "simulate" and plan.blocking and not plan.keep_previous


@pytest.mark.parametrize(("settings", "expected"), [
    # the summary switch
    ({"saveToSummaryToCSV": False}, {"summary_csv": None}),
    # the log switch; nothing else samples, so no per-unit row is taken
    ({"saveIndividualToCSV": False}, {"indiv_log": None, "samples_units": False}),
    # the database switch takes the settings' dburl as it is
    ({"saveIndividualToDB": True, "dburl": "sqlite:///x/runs.sqlite"},
     {"dburl": "sqlite:///x/runs.sqlite", "samples_units": True}),
    # the database samples even with the log switched off
    ({"saveIndividualToCSV": False, "saveIndividualToDB": True, "dburl": "a.db"},
     {"indiv_log": None, "dburl": "a.db", "samples_units": True}),
    # a .parquet indivLogPath chooses the Parquet log, under its headless name
    ({"indivLogPath": "logs/ind.parquet"}, {"indiv_log": OUT / "indivLog.parquet"}),
    # a .csv indivLogPath other than the default chooses the CSV log
    ({"indivLogPath": "logs/ind.csv"}, {"indiv_log": OUT / "indivLog.csv"}),
    # the settings' interval
    ({"indivLogInterval": 120}, {"indiv_interval": 120.0}),
])
def test_the_settings_choose_the_outputs(settings: dict[str, Any],
                                         expected: dict[str, Any]) -> None:
    """Each §7.1 recorder setting changes its own field of the plan, and only that."""
    plan = plan_of(**settings)
    for name, value in expected.items():
        assert getattr(plan, name) == value, name


@pytest.mark.parametrize(("settings", "flags", "expected"), [
    # --no-summary-like flag over saveToSummaryToCSV = true, and the reverse
    ({}, {"summary": False}, {"summary_csv": None}),
    ({"saveToSummaryToCSV": False}, {"summary": True}, {"summary_csv": OUT / "summary.csv"}),
    # --indiv-interval wins over indivLogInterval; 0 turns sampling off
    ({"indivLogInterval": 120}, {"indiv_interval": 60}, {"indiv_interval": 60.0}),
    ({}, {"indiv_interval": 0}, {"indiv_interval": None, "indiv_log": None}),
    # --indiv-format wins over the suffix of indivLogPath
    ({"indivLogPath": "l.parquet"}, {"indiv_format": "csv"}, {"indiv_log": OUT / "indivLog.csv"}),
    # --db sqlite: the file in the out dir, over saveIndividualToDB = false
    ({}, {"database": True}, {"dburl": "sqlite:///" + str(OUT / "apis-emulator.sqlite")}),
    # --db none over saveIndividualToDB = true
    ({"saveIndividualToDB": True}, {"database": False}, {"dburl": None}),
    # --db URL over the settings' dburl
    ({"saveIndividualToDB": True, "dburl": "a.db"}, {"database": "http://h:1/p"},
     {"dburl": "http://h:1/p"}),
    # any other plan field passes through
    ({}, {"queue_items": 16}, {"queue_items": 16}),
])
def test_the_flags_of_simulate_win_over_the_settings(settings: dict[str, Any],
                                                    flags: dict[str, Any],
                                                    expected: dict[str, Any]) -> None:
    """A flag given (not None) decides; the other fields still follow the settings."""
    plan = plan_of(flags, **settings)
    for name, value in expected.items():
        assert getattr(plan, name) == value, name


def test_a_wrong_setting_is_refused_naming_it() -> None:
    """A bad dburl fails when the plan is made, naming dburl."""
    from apis_emulator.errors import SettingsError

    with pytest.raises(SettingsError, match="dburl"):
        plan_of(saveIndividualToDB=True, dburl="mysql://h/db")


class MemorySink:
    """A sink that keeps what it is given: the recipe's "one class"."""

    name = "memory"
    output = "memory"
    block = True
    wants_documents = False

    def __init__(self) -> None:
        self.blocks: list[UnitsBlock] = []
        self.rows: list[DayRow] = []
        self.closed = False

    @property
    def where(self) -> str:
        return "memory://"

    def log_units(self, block: UnitsBlock, documents: UnitDocuments | None) -> None:
        self.blocks.append(block)

    def log_rows(self, rows: Sequence[DayRow]) -> None:
        self.rows.extend(rows)

    def close(self) -> None:
        self.closed = True

    def status(self) -> dict[str, Any]:
        return {"written": len(self.blocks) + len(self.rows), "dropped": 0, "high_water": 0,
                "error": None}


def test_a_new_sink_is_one_class_and_one_opener(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Added to SINK_OPENERS, a sink gets every sample and every summary row of a run, shows
    in files and status, and is closed."""
    kept: list[MemorySink] = []

    def open_memory(plan: RecorderPlan, run: RunInfo) -> Sink | None:
        kept.append(MemorySink())
        return kept[-1]

    monkeypatch.setattr(sinks_module, "SINK_OPENERS", (*SINK_OPENERS, open_memory))
    em = make_emulator(write_dataset(tmp_path / "data", households=2), 2)
    plan = RecorderPlan.headless(tmp_path / "run", database=False, indiv_interval=3600.0)
    result = simulate(em, 2, tmp_path / "run", plan=plan, progress=False,
                      handle_signals=False)
    (sink,) = kept
    assert sink.closed and len(sink.blocks) == 48 and len(sink.blocks[0]) == 2
    assert [r.time for r in sink.rows] == ["2019/01/01", "2019/01/02", "sum", "avg"]
    assert result.files["memory"] == "memory://"
    assert result.recorders["memory"]["written"] == 52
    assert (tmp_path / "run" / "summary.csv").is_file()  # the built-in sinks still open
