"""A headless run writes the summary, the individual log and an SQLite database (issue 6).

Real files and a real SQLite file in tmp_path; the engine's own ledger is the reference.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from apis_emulator.errors import SettingsError
from apis_emulator.recorders import INDIV_COLUMNS, SUMMARY_COLUMNS, RecorderPlan
from apis_emulator.report import report
from apis_emulator.runner import simulate
from recorders_helpers import ledger_by_day, make_emulator, read_csv, write_dataset

DAYS = 3
UNITS = 3
ENERGY_OF_LEDGER = {"pv": "pv", "demand": "load", "acin": "acin", "wasted": "wasted",
                    "acloss": "acloss", "dcloss": "dcloss", "wg": "wg_in"}


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"), households=UNITS)


@pytest.fixture(scope="module")
def run3(dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A 3-day run of 3 units with the defaults of ``simulate --out DIR``."""
    em = make_emulator(dataset_dir, UNITS)
    out = tmp_path_factory.mktemp("run")
    result = simulate(em, DAYS, out, progress=False)
    return em, result, out


def _summary(out: Path) -> tuple[list[str], list[list[str]]]:
    rows = read_csv(out / "summary.csv")
    return rows[0], rows[1:]


def _value(cell: str) -> float | None:
    return float(cell) if cell else None


def test_simulate_writes_all_three_into_the_out_dir(run3):
    """summary.csv, indivLog.csv and apis-emulator.sqlite, by default."""
    _, result, out = run3
    assert result.files == {"summary": out / "summary.csv", "indivLog": out / "indivLog.csv",
                            "database": out / "apis-emulator.sqlite"}
    assert result.interrupted is None
    assert all(s["dropped"] == 0 and s["error"] is None for s in result.recorders.values())


def test_summary_has_three_days_then_sum_and_avg(run3):
    """Documented columns in order; 3 day rows, then sum, then avg."""
    _, _, out = run3
    header, rows = _summary(out)
    assert tuple(header) == SUMMARY_COLUMNS
    assert [r[0] for r in rows] == ["2019/01/01", "2019/01/02", "2019/01/03", "sum", "avg"]
    assert all(len(r) == len(SUMMARY_COLUMNS) for r in rows)


def test_day_energies_agree_with_the_engine_ledger(run3, dataset_dir):
    """Each day row equals the ledger difference of a separately stepped emulator (1e-6)."""
    _, _, out = run3
    header, rows = _summary(out)
    expected = ledger_by_day(dataset_dir, UNITS, DAYS)
    for row, ledger in zip(rows[:DAYS], expected, strict=True):
        cells = dict(zip(header, row, strict=True))
        for column, field in ENERGY_OF_LEDGER.items():
            assert float(cells[column]) == pytest.approx(ledger[field], abs=1e-6), column
        assert float(cells["loss"]) == pytest.approx(ledger["acloss"] + ledger["dcloss"],
                                                     abs=1e-6)
        assert float(cells["deltaBatt"]) == pytest.approx(ledger["deltaBatt"], abs=1e-6)
        assert float(cells["avgrsoc"]) == pytest.approx(ledger["avgrsoc"], abs=1e-9)


def test_sum_row_is_the_whole_ledger_and_avg_its_mean(run3):
    """The sum row is the run's ledger total; the avg row the sum / days; ratios §7."""
    em, result, out = run3
    header, rows = _summary(out)
    total = dict(zip(header, rows[-2], strict=True))
    avg = dict(zip(header, rows[-1], strict=True))
    ledger = em.units.ledger.sum(axis=0)
    fields = {name: i for i, name in enumerate(("pv", "load", "acin", "wasted", "acloss",
                                                "dcloss", "wg", "wg_in"))}
    for column, field in ENERGY_OF_LEDGER.items():
        assert float(total[column]) == pytest.approx(ledger[fields[field]], abs=1e-6)
        assert float(avg[column]) == pytest.approx(ledger[fields[field]] / DAYS, abs=1e-6)
    pv, demand, acin = (float(total[k]) for k in ("pv", "demand", "acin"))
    delta, wasted = float(total["deltaBatt"]), float(total["wasted"])
    assert float(total["ssr_real"]) == pytest.approx((demand - acin + delta) / demand)
    assert float(total["ssr_pv"]) == pytest.approx((pv + delta) / demand)
    assert float(total["sor"]) == pytest.approx(pv / (pv + wasted))
    assert float(total["r_utility"]) == pytest.approx((acin - delta) / demand)
    assert result.totals["pv"] == pytest.approx(pv)


def test_individual_log_has_a_row_per_unit_per_interval(run3):
    """900 s headless: 96 samples a day × 3 units, whole rows, times on the quarter hour."""
    _, _, out = run3
    rows = read_csv(out / "indivLog.csv")
    assert tuple(rows[0]) == INDIV_COLUMNS
    body = rows[1:]
    assert len(body) == DAYS * 96 * UNITS
    assert all(len(r) == len(INDIV_COLUMNS) for r in body)
    assert {r[0] for r in body} == {"E001", "E002", "E003"}
    assert body[0][1] == "2019/01/01-00:15:00" and body[-1][1] == "2019/01/04-00:00:00"
    assert all(r[1][-5:] in ("00:00", "15:00", "30:00", "45:00") for r in body)


def test_database_holds_the_same_numbers(run3):
    """daily_summary and run_totals = the summary CSV; unit_states = the individual log."""
    _, _, out = run3
    header, rows = _summary(out)
    db = sqlite3.connect(out / "apis-emulator.sqlite")
    (run_id, closed, mode, units), = db.execute(
        "SELECT run_id, closed_at, mode, units FROM runs").fetchall()
    assert closed is not None and mode == "simulate" and units == UNITS
    columns = ", ".join(f'"{c}"' for c in header[1:])
    days = db.execute(f"SELECT day, {columns} FROM daily_summary "
                      "WHERE run_id = ? ORDER BY day", (run_id,)).fetchall()
    assert [d[0] for d in days] == ["2019-01-01", "2019-01-02", "2019-01-03"]
    totals = dict((r[0], r[1:]) for r in db.execute(
        f"SELECT kind, {columns} FROM run_totals WHERE run_id = ?",
        (run_id,)))
    for csv_row, db_row in zip(rows, [*days, ("sum", *totals["sum"]), ("avg", *totals["avg"])],
                               strict=True):
        for cell, value in zip(csv_row[1:], db_row[1:], strict=True):
            assert (value is None) == (cell == "")
            if value is not None:
                assert value == pytest.approx(float(cell), abs=1e-6)
    log_rows = read_csv(out / "indivLog.csv")[1:]
    states = db.execute("SELECT time, unit_id, display, rsoc, pvc_charge_power, "
                        "ups_output_power, charge_discharge_power, wg, p2 FROM unit_states "
                        "WHERE run_id = ? ORDER BY time, unit_id", (run_id,)).fetchall()
    assert len(states) == len(log_rows)
    for line, state in zip(log_rows, states, strict=True):
        assert state[0] == line[1].replace("/", "-").replace("-", " ", 3).replace(" ", "-", 2)
        assert (state[1], state[2]) == (line[0], line[2])
        np.testing.assert_allclose(state[3:], [float(c) for c in line[3:]], atol=1e-3)
    db.close()


def test_database_has_keys_and_an_index_on_time(run3):
    """Primary keys (run_id, time, unit_id) and (run_id, day); indexes on time and day."""
    _, _, out = run3
    db = sqlite3.connect(out / "apis-emulator.sqlite")
    pk = {table: [r[1] for r in sorted(db.execute(f"PRAGMA table_info({table})"),
                                        key=lambda r: r[5]) if r[5]]
          for table in ("runs", "unit_states", "daily_summary", "run_totals")}
    assert pk == {"runs": ["run_id"], "unit_states": ["run_id", "time", "unit_id"],
                  "daily_summary": ["run_id", "day"], "run_totals": ["run_id", "kind"]}
    indexed = {(table, tuple(r[2] for r in db.execute(f"PRAGMA index_info({name})")))
               for table in ("unit_states", "daily_summary")
               for _, name, *_ in db.execute(f"PRAGMA index_list({table})")}
    assert ("unit_states", ("time",)) in indexed
    assert ("daily_summary", ("day",)) in indexed
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()


def test_a_second_run_into_the_same_database_gets_its_own_run_id(dataset_dir, tmp_path):
    """Runs never mix: each has its run_id; rows are keyed by it."""
    url = "sqlite:///" + str(tmp_path / "shared.sqlite")
    for _ in range(2):
        simulate(make_emulator(dataset_dir, 2), 1, tmp_path / "out", progress=False,
                 database=url)
    db = sqlite3.connect(tmp_path / "shared.sqlite")
    assert db.execute("SELECT run_id, COUNT(*) FROM daily_summary GROUP BY run_id").fetchall() \
        == [(1, 1), (2, 1)]
    assert db.execute("SELECT COUNT(DISTINCT run_id) FROM unit_states").fetchone() == (2,)


def test_parquet_log_holds_the_same_rows_as_the_csv_log(run3, dataset_dir, tmp_path):
    """indiv_format="parquet": a directory of closed parts, the same rows as the CSV."""
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "pq"
    result = simulate(make_emulator(dataset_dir, UNITS), DAYS, out, progress=False,
                      indiv_format="parquet", database=False)
    assert result.files["indivLog"] == out / "indivLog.parquet"
    table = pq.read_table(out / "indivLog.parquet")
    assert table.column_names == list(INDIV_COLUMNS)
    csv_rows = read_csv(run3[2] / "indivLog.csv")[1:]
    assert table.num_rows == len(csv_rows)
    rsoc = table["rsoc"].to_numpy()
    np.testing.assert_allclose(rsoc, [float(r[3]) for r in csv_rows], atol=1e-4)
    assert table["id"].to_pylist()[:3] == ["E001", "E002", "E003"]
    assert str(table["time"][0].as_py()) == "2019-01-01 00:15:00"


def test_parquet_parts_rotate_and_every_closed_part_is_valid(dataset_dir, tmp_path):
    """A part is closed (footer written, renamed) every rows_per_file rows."""
    pq = pytest.importorskip("pyarrow.parquet")
    plan = RecorderPlan.headless(tmp_path, indiv_format="parquet", database=False,
                                 indiv_interval=900.0, parquet_rows_per_file=100)
    simulate(make_emulator(dataset_dir, UNITS), 1, tmp_path, progress=False, plan=plan)
    parts = sorted((tmp_path / "indivLog.parquet").glob("part-*.parquet"))
    assert len(parts) == 3  # 288 rows in parts of >= 100
    assert [pq.ParquetFile(p).metadata.num_rows for p in parts] == [102, 102, 84]
    assert not list((tmp_path / "indivLog.parquet").glob(".*"))


def test_parquet_without_pyarrow_says_how_to_install(dataset_dir, tmp_path, monkeypatch):
    """No pyarrow: a RecorderError that names the extra to install."""
    from apis_emulator.recorders import RecorderError

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(RecorderError, match=r"apis-emulator\[parquet\]"):
        simulate(make_emulator(dataset_dir, 1), 1, tmp_path, progress=False,
                 indiv_format="parquet")


def test_recorders_off_write_nothing(dataset_dir, tmp_path):
    """summary=False, no interval, no database: the run writes no file."""
    result = simulate(make_emulator(dataset_dir, 2), 1, tmp_path, progress=False,
                      summary=False, indiv_interval=None, database=False)
    assert result.files == {} and list(tmp_path.iterdir()) == []
    assert result.totals["pv"] is not None  # the totals are still computed


@pytest.mark.parametrize("url", [
    "mysql://localhost/db",  # a scheme no sink knows
    "sqlite://",  # no file
    "sqlite:///:memory:",  # nothing would be kept
    "http://",  # no host
])
def test_a_wrong_dburl_is_refused_at_the_start(dataset_dir, tmp_path, url):
    """SettingsError naming dburl and the accepted forms; nothing written."""
    with pytest.raises(SettingsError, match="dburl.*postgresql://"):
        simulate(make_emulator(dataset_dir, 1), 1, tmp_path / "x", progress=False,
                 database=url)


def test_report_gives_totals_ratios_and_plots(run3, tmp_path):
    """report(RUN_DIR): report.md with the totals and ratios, two PNG plots."""
    _, result, out = run3
    rep = report(out, tmp_path)
    assert rep.complete and rep.days == ["2019/01/01", "2019/01/02", "2019/01/03"]
    assert rep.units == ["E001", "E002", "E003"]
    assert rep.totals["pv"] == pytest.approx(result.totals["pv"])
    text = (tmp_path / "report.md").read_text()
    assert "ssr_real" in text and f"{result.totals['demand'] / 1000:,.1f}" in text
    for name in ("daily_energy.png", "soc.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_a_cut_run_adds_up_the_days(run3, tmp_path):
    """A summary without its closing rows (a killed run) is reported from its days."""
    _, result, out = run3
    run = tmp_path / "cut"
    run.mkdir()
    lines = (out / "summary.csv").read_text().splitlines(keepends=True)
    (run / "summary.csv").write_text("".join(lines[:-2]))
    rep = report(run, plots=False)
    assert not rep.complete and rep.units == []
    assert rep.totals["pv"] == pytest.approx(result.totals["pv"], abs=1e-6)
    assert "cut" in rep.text


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///data/output/a.sqlite", ("sqlite", "data/output/a.sqlite")),  # relative
    ("sqlite:////var/lib/a.sqlite", ("sqlite", "/var/lib/a.sqlite")),  # absolute
    ("runs/a.db", ("sqlite", "runs/a.db")),  # a bare file name
    ("postgres://u@h:5433/d", ("postgresql", "postgresql://u@h:5433/d")),  # alias
    ("postgresql+psycopg://u@h/d", ("postgresql", "postgresql://u@h/d")),  # SQLAlchemy form
    ("https://example.org/in", ("http", "https://example.org/in")),  # the original's post
])
def test_dburl_forms(url, expected):
    from apis_emulator.recorders import parse_dburl

    assert parse_dburl(url) == expected


def test_report_command_prints_the_summary(run3, tmp_path, monkeypatch, capsys):
    """``apis-emulator report RUN_DIR --out DIR``: exit 0, the text on stdout, files in DIR."""
    from apis_emulator.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["report", str(run3[2]), "--out", str(tmp_path / "rep")]) == 0
    assert "## Ratios" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == [
        "daily_energy.png", "report.md", "soc.png"]
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert not (tmp_path / "nothing").exists()  # nothing made for a missing run


def test_report_reads_the_soc_from_csv_with_or_without_pyarrow_and_from_parquet(
        run3, dataset_dir, tmp_path, monkeypatch):
    """The same SOC series from the CSV log (pyarrow or the csv module) and the Parquet log."""
    pytest.importorskip("pyarrow")
    from apis_emulator.report import read_soc

    with_arrow = read_soc(run3[2])
    simulate(make_emulator(dataset_dir, UNITS), DAYS, tmp_path, progress=False,
             indiv_format="parquet", database=False)
    from_parquet = read_soc(tmp_path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.csv", None)
    plain = read_soc(run3[2])
    assert list(with_arrow) == list(plain) == list(from_parquet) == ["E001", "E002", "E003"]
    for unit in with_arrow:
        for other in (plain, from_parquet):
            np.testing.assert_array_equal(with_arrow[unit][0], other[unit][0])
            np.testing.assert_allclose(with_arrow[unit][1], other[unit][1], atol=1e-4)
        assert len(with_arrow[unit][0]) == DAYS * 96
