"""The daily summary computation and the CSV text, on hand-made snapshots (no engine run)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
import pytest

from apis_emulator.engine import LEDGER_FIELDS, OUT_FIELDS, Snapshot
from apis_emulator.recorders import DailySummary, IndividualCSV, SummaryCSV, UnitsBlock, ratios
from apis_emulator.recorders.textfmt import csv_field, encode_column, format_rows

L = {name: i for i, name in enumerate(LEDGER_FIELDS)}
START = dt.datetime(2019, 1, 1)


def snap(step: int, ledger: list[dict[str, float]], energy: list[float],
         ids: tuple[str, ...] | None = None, capacity: float = 4800.0) -> Snapshot:
    """A snapshot of len(ledger) units at ``step`` (Δt 1 s) with the given ledgers [Wh]."""
    n = len(ledger)
    ids = ids or tuple(f"E{k:03d}" for k in range(1, n + 1))
    table = np.zeros((n, len(LEDGER_FIELDS)))
    for i, values in enumerate(ledger):
        for name, value in values.items():
            table[i, L[name]] = value
    return Snapshot(time=START + dt.timedelta(seconds=step), step=step, ids=ids, displays=ids,
                    energy=np.array(energy, dtype=float), capacity=np.full(n, capacity),
                    out=np.zeros((n, len(OUT_FIELDS))), ledger=table, vg=np.zeros(n),
                    ig=np.zeros(n), wg=np.zeros(n), mode=np.zeros(n, dtype=np.int64),
                    dcdc_loss=np.zeros(n))


@pytest.mark.parametrize(("args", "expected"), [
    # pv, demand, acin, wasted, deltaBatt
    ((10.0, 20.0, 5.0, 2.0, 1.0), {"ssr_real": 0.8, "ssr_pv": 0.55, "sor": 10 / 12,
                                   "r_utility": 0.2}),
    ((10.0, 0.0, 5.0, 2.0, 1.0), {"ssr_real": None, "ssr_pv": None, "sor": 10 / 12,
                                  "r_utility": None}),  # no demand: three empty cells
    ((0.0, 20.0, 5.0, 0.0, 0.0), {"ssr_real": 0.75, "ssr_pv": 0.0, "sor": None,
                                  "r_utility": 0.25}),  # no PV at all: sor empty
])
def test_ratios_of_power_flow_model_section_7(args, expected):
    """ssr_real, ssr_pv, sor, r_utility; a zero denominator gives None, never a crash."""
    got = ratios(*args)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == (None if value is None else pytest.approx(value)), key


def test_day_rows_are_ledger_differences_and_closing_rows_add_up():
    """Two days: each row the difference since the previous one; sum and avg rows."""
    summary = DailySummary(snap(0, [{"pv": 0, "load": 0}] * 2, [2400.0, 2400.0]))
    day1 = summary.day_row(snap(86400, [{"pv": 100, "load": 300, "acin": 150},
                                        {"pv": 200, "load": 100, "acin": 0}],
                                [2300.0, 2500.0]), "2019/01/01")
    day2 = summary.day_row(snap(172800, [{"pv": 150, "load": 600, "acin": 300},
                                         {"pv": 260, "load": 300, "acin": 90}],
                                [2200.0, 2450.0]), "2019/01/02")
    assert (day1.values["pv"], day1.values["demand"], day1.values["acin"]) == (300, 400, 150)
    assert (day2.values["pv"], day2.values["demand"], day2.values["acin"]) == (110, 500, 240)
    assert day1.values["deltaBatt"] == 0.0 and day2.values["deltaBatt"] == -150.0
    assert day1.values["avgrsoc"] == pytest.approx(50.0)
    total, avg = summary.closing_rows()
    assert (total.time, avg.time) == ("sum", "avg")
    assert total.values["pv"] == 410 and avg.values["pv"] == 205
    assert total.values["ssr_real"] == pytest.approx((900 - 390 - 150) / 900)
    assert total.values["avgrsoc"] == pytest.approx(np.mean([50.0, 4650 / 96]))


def test_a_day_without_demand_leaves_the_ratio_cells_empty():
    """The CSV cell of a None ratio is empty."""
    summary = DailySummary(snap(0, [{}], [2400.0]))
    row = summary.day_row(snap(86400, [{"pv": 50.0, "wasted": 0.0}], [2450.0]), "2019/01/01")
    cells = dict(zip(("time", *row.values), row.cells(), strict=False))
    assert row.cells()[0] == "2019/01/01"
    assert [row.cells()[i] for i in (11, 12, 14)] == ["", "", ""]
    assert row.cells()[13] == "1.0" and cells["time"] == "2019/01/01"


def test_so_far_includes_the_day_in_progress_and_changes_nothing():
    """§4.2.4 "stats so far": closed days plus the partial one; day rows unchanged."""
    summary = DailySummary(snap(0, [{}], [2400.0]))
    summary.day_row(snap(86400, [{"pv": 100.0, "load": 200.0}], [2400.0]), "2019/01/01")
    now = snap(90000, [{"pv": 130.0, "load": 260.0}], [2400.0])
    assert summary.so_far(now)["pv"] == 130.0
    assert summary.so_far(now)["demand"] == 260.0
    assert len(summary.rows) == 1
    assert summary.day_row(now, "2019/01/02").values["pv"] == 30.0


def test_rebase_keeps_what_came_before_a_reset_and_never_counts_negative():
    """Units reset between two ticks (ledgers back to 0): the day keeps the energy before the
    reset and goes on from the reset units' new values."""
    summary = DailySummary(snap(0, [{}, {}], [2400.0, 2400.0]))
    before = snap(40000, [{"pv": 100.0, "load": 300.0}, {"pv": 50.0, "load": 80.0}],
                  [2300.0, 2350.0])
    after = snap(40010, [{"pv": 1.0, "load": 2.0}, {"pv": 51.0, "load": 81.0}],
                 [2400.0, 2349.0])  # E001 reset (ledger restarted), E002 went on
    summary.rebase(before, after)
    row = summary.day_row(snap(86400, [{"pv": 11.0, "load": 22.0}, {"pv": 70.0, "load": 90.0}],
                               [2390.0, 2340.0]), "2019/01/01")
    # E001: 100 before + (11 − 1) after; E002: 70 straight through
    assert row.values["pv"] == pytest.approx(100 + 10 + 70)
    assert row.values["demand"] == pytest.approx(300 + 20 + 90)
    assert row.values["deltaBatt"] == pytest.approx((-100 - 50) + (-10) + (2340 - 2350))


def test_added_and_removed_units_count_while_they_existed():
    """A unit added mid-day counts from its first sample; a removed one until its last."""
    summary = DailySummary(snap(0, [{}, {}], [2400.0, 2400.0]))
    before = snap(1000, [{"pv": 10.0}, {"pv": 20.0}], [2400.0, 2400.0])
    after = snap(1010, [{"pv": 11.0}, {"pv": 0.5}], [2400.0, 2400.0], ids=("E001", "E003"))
    summary.rebase(before, after)
    row = summary.day_row(snap(86400, [{"pv": 30.0}, {"pv": 5.5}], [2400.0, 2400.0],
                               ids=("E001", "E003")), "2019/01/01")
    assert row.values["pv"] == pytest.approx(30.0 + 20.0 + 5.0)


@pytest.mark.parametrize(("text", "field"), [
    ("E001", "E001"),  # plain
    ("house, north", '"house, north"'),  # comma: quoted
    ('the "big" one', '"the ""big"" one"'),  # quotes doubled
    ("two\nlines", '"two\nlines"'),  # line break: quoted
])
def test_csv_fields_are_quoted_only_when_needed(text, field):
    assert csv_field(text) == field


def test_compiled_rows_parse_back_with_the_csv_module():
    """format_rows: text columns (quoted as needed), fixed decimals, NaN as an empty cell."""
    ids = encode_column(["E001", "a,b"])
    when = encode_column(["2019/01/01-00:15:00"])
    names = encode_column(['say "hi"', "x"])
    numbers = np.array([[12.34567, -0.0004, 1e15], [np.nan, 2.5, -3.25]])
    text = format_rows(ids, when, names, numbers, np.array([4, 3, 1])).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["E001", "2019/01/01-00:15:00", 'say "hi"', "12.3457", "0.000", ""],
                    ["a,b", "2019/01/01-00:15:00", "x", "", "2.500", "-3.3"]]  # half away from 0


def test_summary_and_log_files_end_with_whole_rows(tmp_path):
    """Each sink writes whole rows; closed files end with a newline and parse."""
    summary_csv = SummaryCSV(tmp_path / "s.csv")
    summary = DailySummary(snap(0, [{}], [2400.0]))
    summary_csv.write([summary.day_row(snap(86400, [{"pv": 1.0, "load": 2.0}], [2400.0]),
                                       "2019/01/01")])
    summary_csv.write(summary.closing_rows())
    summary_csv.close()
    rows = list(csv.reader(io.StringIO((tmp_path / "s.csv").read_text())))
    assert [r[0] for r in rows] == ["time", "2019/01/01", "sum", "avg"]
    log = IndividualCSV(tmp_path / "i.csv")
    for step in range(1, 50):
        log.write(UnitsBlock.of(snap(step * 900, [{}, {}], [2400.0, 1200.0],
                                     ids=("E001", "E,2"))))
    log.close()
    data = (tmp_path / "i.csv").read_bytes()
    assert data.endswith(b"\n") and log.rows == 98
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert len(rows) == 99 and {r[0] for r in rows[1:]} == {"E001", "E,2"}
    assert rows[2][3] == "25.0000"
