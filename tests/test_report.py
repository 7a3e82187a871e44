"""``apis-emulator report`` on runs with sharing, against a baseline, and on old summaries.

Two real runs of ten houses of the embedded data set (June 1–2, step 5 s): one with apis-main's
rules (``--controller apis``), one the same without sharing.  Every figure the report shows is
recomputed here from their CSV files with the csv module.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections import Counter
from pathlib import Path

import pytest

from apis_emulator.engine import Emulator
from apis_emulator.errors import DataFileError
from apis_emulator.recorders.summary import SHARED_COLUMNS, SUMMARY_COLUMNS
from apis_emulator.report import read_summary, report
from apis_emulator.runner import simulate
from test_recorders_deals import UNITS, june, sharing_run

pytest.importorskip("matplotlib", reason="the report's plots need matplotlib")

__all__ = ["june"]  # a fixture, used by name

DAYS = 2
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(june, tmp_path_factory) -> tuple[Path, Path]:
    """(the run with sharing, the same run without), with their individual logs."""
    shared = tmp_path_factory.mktemp("with")
    sharing_run(june, shared, database=False, days=DAYS)
    alone = tmp_path_factory.mktemp("without")
    settings, dataset = june
    simulate(Emulator(settings, dataset, UNITS), DAYS, alone, progress=False, database=False)
    return shared, alone


def summary_rows(run: Path) -> dict[str, dict[str, str]]:
    """summary.csv's rows by their first cell (days, sum, avg), cells by column."""
    with open(run / "summary.csv", newline="", encoding="utf-8") as fh:
        return {row["time"]: row for row in csv.DictReader(fh)}


def kwh(cell: str | float, digits: int) -> str:
    return f"{float(cell) / 1000:,.{digits}f}"


def test_a_summary_written_before_sharing_is_read(runs, tmp_path):
    """The 15-column summary of earlier versions: the same report, no sharing section."""
    _, alone = runs
    old = tmp_path / "old"
    old.mkdir()
    lines = (alone / "summary.csv").read_text().splitlines()
    assert all(line.endswith(",,,") for line in lines[1:])  # no controller: empty cells
    (old / "summary.csv").write_text("\n".join(line.rsplit(",", 3)[0] for line in lines) + "\n")
    assert (old / "summary.csv").read_text().splitlines()[0] == ",".join(SUMMARY_COLUMNS[:-3])
    days, columns, total = read_summary(old / "summary.csv")
    assert days == ["2019/06/01", "2019/06/02"] and total is not None
    assert all(columns[c] == [None, None] and total[c] is None for c in SHARED_COLUMNS)
    rep = report(old, tmp_path / "rep")
    assert rep.totals == report(alone, tmp_path / "new", plots=False).totals
    assert rep.totals["pv"] == float(summary_rows(alone)["sum"]["pv"])
    assert "## Sharing" not in rep.text and "Deals per unit" not in rep.text
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == [
        "daily_energy.png", "report.md"]


def test_a_summary_with_another_header_is_refused(runs, tmp_path):
    """Neither header: the error names the file and both accepted headers."""
    text = (runs[1] / "summary.csv").read_text().splitlines()
    (tmp_path / "summary.csv").write_text("\n".join(line.rsplit(",", 1)[0] for line in text))
    with pytest.raises(DataFileError, match=r"summary\.csv, line 1: is not a summary.*"
                                            r"without shared_in,shared_out,deals"):
        report(tmp_path)


def test_a_run_without_sharing_keeps_its_report(runs, tmp_path):
    """No controller: the same three files as before, no sharing section."""
    rep = report(runs[1], tmp_path)
    assert rep.deals is None and rep.comparison == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daily_energy.png", "report.md",
                                                          "soc.png"]
    assert "Sharing" not in rep.text


def test_the_shared_energy_per_day(runs, tmp_path):
    """Delivered, taken, losses [kWh] and deals per day and in all = summary.csv's cells."""
    shared, _ = runs
    rep = report(shared, tmp_path)
    rows = summary_rows(shared)
    days = [rows[d] for d in ("2019/06/01", "2019/06/02")]
    delivered = sum(float(r["shared_in"]) for r in days)
    taken = sum(float(r["shared_out"]) for r in days)
    assert delivered == pytest.approx(float(rows["sum"]["shared_in"]))
    assert 0 < delivered < taken  # sharing loses energy on the way
    assert f"- delivered to charging batteries: {kwh(delivered, 2)} kWh" in rep.text
    assert f"- taken from discharging batteries: {kwh(taken, 2)} kWh" in rep.text
    assert (f"- losses of sharing: {kwh(taken - delivered, 2)} kWh "
            f"({100 * (taken - delivered) / taken:.1f} % of what was taken)") in rep.text
    for row in days:
        line = (f"| {row['time']} | {kwh(row['shared_in'], 2)} | {kwh(row['shared_out'], 2)} "
                f"| {kwh(float(row['shared_out']) - float(row['shared_in']), 2)} "
                f"| {float(row['deals']):,.0f} |")
        assert line in rep.text
    for name in ("daily_energy", "soc", "sharing", "deals_per_unit"):
        assert rep.files[name].read_bytes()[:8] == PNG


def test_the_deals_per_unit(runs, tmp_path):
    """Per unit, the deals of deals.csv that started, as charger and as discharger; they add
    up to the summary's deals."""
    shared, _ = runs
    with open(shared / "deals.csv", newline="", encoding="utf-8") as fh:
        deals = list(csv.DictReader(fh))
    started = [d for d in deals if d["started"]]
    charger = Counter(d["charge_unit"] for d in started)
    discharger = Counter(d["discharge_unit"] for d in started)
    rep = report(shared, tmp_path, plots=False)
    assert rep.deals is not None
    assert (rep.deals.charger, rep.deals.discharger) == (dict(charger), dict(discharger))
    assert rep.deals.logged == len(deals)
    assert sum(charger.values()) == float(summary_rows(shared)["sum"]["deals"]) > 0
    for unit in set(charger) | set(discharger):
        assert f"| {unit} | {charger[unit]:,} | {discharger[unit]:,} |" in rep.text
    assert rep.files == {"report": tmp_path / "report.md"}


def test_against_the_baseline(runs, tmp_path):
    """ssr_real, ssr_pv, AC in, wasted PV and losses with and without sharing = the sum rows
    of the two summaries, with their differences; a plot of both days' ssr_real."""
    shared, alone = runs
    rep = report(shared, tmp_path, baseline=alone)
    with_, without = summary_rows(shared)["sum"], summary_rows(alone)["sum"]
    assert rep.baseline == alone
    for key in ("ssr_real", "ssr_pv", "acin", "wasted", "loss"):
        assert rep.comparison[key] == (float(without[key]), float(with_[key]))
    for key, label, scale, digits in (("ssr_real", "(ssr_real)", 1, 4),
                                      ("acin", "AC in, imports [kWh]", 1000, 1),
                                      ("loss", "losses [kWh]", 1000, 1)):
        a, b = float(without[key]) / scale, float(with_[key]) / scale
        assert f"{label} | {a:,.{digits}f} | {b:,.{digits}f} | {b - a:+,.{digits}f} |" \
            in rep.text
    assert float(summary_rows(alone)["sum"]["demand"]) == pytest.approx(
        float(with_["demand"]), rel=1e-12)  # the same houses
    assert rep.files["ssr_real"].read_bytes()[:8] == PNG
    assert "![ssr_real.png](ssr_real.png)" in rep.text


def test_report_command_with_a_baseline(runs, tmp_path, capsys):
    """``report RUN --baseline RUN0 --out DIR``: exit 0, the comparison on stdout."""
    from apis_emulator.cli import main

    shared, alone = runs
    assert main(["report", str(shared), "--baseline", str(alone), "--out",
                 str(tmp_path), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "## Against the baseline" in out and f"Baseline {alone}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def _copy(run: Path, to: Path) -> Path:
    to.mkdir()
    shutil.copy(run / "summary.csv", to / "summary.csv")
    return to


def _edit_demand(path: Path, day: str, factor: float) -> None:
    rows = list(csv.reader(path.open(newline="")))
    column = rows[0].index("demand")
    for row in rows:
        if row[0] == day:
            row[column] = repr(float(row[column]) * factor)
    with path.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def test_a_bad_baseline_is_refused_naming_it(runs, june, tmp_path):
    """Missing, other days, other houses, with sharing, a sweep folder; or a run without
    sharing: the error names the path and what is wrong; nothing is written."""
    shared, alone = runs
    short = tmp_path / "short"
    settings, dataset = june
    simulate(Emulator(settings, dataset, UNITS), 1, short, progress=False, database=False,
             indiv_interval=None)
    other = _copy(alone, tmp_path / "other")
    _edit_demand(other / "summary.csv", "2019/06/02", 1.01)
    sweep = _copy(alone, tmp_path / "sweep")
    (sweep / "runs.csv").write_text("run_id,status\n")
    cases = [  # (RUN, RUN0, what the message says)
        (shared, tmp_path / "nothing", rf"{tmp_path / 'nothing' / 'summary.csv'}: not found"),
        (shared, short, rf"{short / 'summary.csv'}: the baseline has 1 day\(s\), 2019/06/01 – "
                        r"2019/06/01, the run 2 day\(s\)"),
        (shared, other, rf"{other / 'summary.csv'}: demand on 2019/06/02 is .* kWh, the run's"),
        (shared, shared, rf"{shared / 'summary.csv'}: the baseline shares \(\d+ deals\)"),
        (shared, sweep, rf"{sweep}: is a sweep folder"),
        (alone, shared, rf"{alone / 'summary.csv'}: has no sharing"),  # swapped
    ]
    for run, base, message in cases:
        with pytest.raises(DataFileError, match=message):
            report(run, tmp_path / "out", baseline=base)
    assert not (tmp_path / "out").exists()


def test_a_long_run_is_tabled_by_month(runs, tmp_path):
    """Beyond 62 days the sharing table has a row per month (sums of its days); a cut run
    (no closing rows, no deals.csv) adds its days up."""
    shared, _ = runs
    header, first = (shared / "summary.csv").read_text().splitlines()[:2]
    day = dict(zip(header.split(","), first.split(","), strict=True))
    start = dt.date(2019, 6, 1)
    labels = [(start + dt.timedelta(days=k)).strftime("%Y/%m/%d") for k in range(70)]
    long = tmp_path / "long"
    long.mkdir()
    (long / "summary.csv").write_text("\n".join(
        [header] + [label + first[first.index(","):] for label in labels]) + "\n")
    rep = report(long, tmp_path / "rep")
    assert not rep.complete and len(rep.days) == 70
    assert rep.totals["shared_in"] == pytest.approx(70 * float(day["shared_in"]))
    for month, n in (("2019/06", 30), ("2019/07", 31), ("2019/08", 9)):
        delivered, taken = n * float(day["shared_in"]), n * float(day["shared_out"])
        assert (f"| {month} | {kwh(delivered, 2)} | {kwh(taken, 2)} | "
                f"{kwh(taken - delivered, 2)} | {n * float(day['deals']):,.0f} |") in rep.text
    assert "| month |" in rep.text and "No deals.csv" in rep.text
    assert sorted(p.name for p in (tmp_path / "rep").glob("*.png")) == [
        "daily_energy.png", "sharing.png"]


def test_deals_that_never_started_are_logged_but_not_counted(runs, tmp_path):
    """A deal refused before its current flowed (no started time) counts in the log's total
    and its end reasons, not for its units."""
    shared, _ = runs
    run = _copy(shared, tmp_path / "run")
    rows = list(csv.reader((shared / "deals.csv").open(newline="")))
    header = rows[0]
    refused = dict(zip(header, rows[1], strict=True))
    refused.update(deal_id="D9999999", activated="", started="", ended=refused["created"],
                   deal_wh="0", cumulated_wh="0.0", end_reason="ramp_timeout")
    with (run / "deals.csv").open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([*rows, list(refused.values())])
    before = report(shared, tmp_path / "a", plots=False).deals
    after = report(run, tmp_path / "b", plots=False).deals
    assert before is not None and after is not None
    assert (after.charger, after.discharger) == (before.charger, before.discharger)
    assert (after.logged, after.started) == (before.logged + 1, before.started)
    assert after.reasons == {**before.reasons, "ramp_timeout": 1}
