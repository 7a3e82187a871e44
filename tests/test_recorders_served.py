"""Recording while served: ServedRecording fed by the runner's schedule (samples, midnights)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from apis_emulator.config import Settings
from apis_emulator.recorders import IndividualCSV, RecorderPlan, ServedRecording
from apis_emulator.runner import RealTimeRunner
from apis_emulator.runner.schedule import Schedule
from recorders_helpers import ledger_by_day, make_emulator, read_csv, write_dataset


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"), households=2)


def served(dataset_dir: Path, units: int = 2, **changes):
    em = make_emulator(dataset_dir, units, mode="serve", **changes)
    return em, em.settings


def wired(em, rec: ServedRecording) -> Schedule:
    """The schedule a served runner feeds the recording through (as web/server.py wires it)."""
    schedule = Schedule(em, sample_every=rec.sample_every)
    schedule.on_sample.append(rec.sample)
    schedule.on_midnight.append(rec.midnight)
    return schedule


def run_ticks(em, rec: ServedRecording, seconds: int, per_tick: int = 10) -> None:
    """What the runner does: run a tick's steps through the schedule."""
    schedule = wired(em, rec)
    for _ in range(seconds // per_tick):
        schedule.run(per_tick)


def test_defaults_when_served_are_summary_and_log_csv_relative_to_the_cwd(dataset_dir,
                                                                          tmp_path,
                                                                          monkeypatch):
    """§7.1 defaults: both CSVs on, database off, data/output/..., a sample every 60 s."""
    monkeypatch.chdir(tmp_path)
    em, settings = served(dataset_dir)
    rec = ServedRecording(em, settings)
    assert rec.plan.summary_csv == Path("data/output/summary.csv")
    assert rec.plan.indiv_log == Path("data/output/indivLog.csv")
    assert rec.plan.dburl is None and rec.plan.indiv_interval == 60.0
    assert not rec.plan.blocking
    rec.close()
    assert (tmp_path / "data/output/summary.csv").is_file()
    assert (tmp_path / "data/output/indivLog.csv").is_file()
    assert not list((tmp_path / "data/output").glob("*.sqlite"))


def test_a_served_day_and_a_half_closes_with_the_partial_day_and_the_closing_rows(
        dataset_dir, tmp_path, monkeypatch):
    """One full day, the partial second day, sum, avg; a log row per unit per minute; the
    full day agrees with the engine's ledger."""
    monkeypatch.chdir(tmp_path)
    em, settings = served(dataset_dir)
    rec = ServedRecording(em, settings)
    run_ticks(em, rec, 86400 + 43200)
    rec.close()
    rec.sample(em)  # after close: nothing
    rec.midnight(em, {})
    rows = read_csv(tmp_path / "data/output/summary.csv")
    assert [r[0] for r in rows[1:]] == ["2019/01/01", "2019/01/02", "sum", "avg"]
    expected = ledger_by_day(dataset_dir, 2, 1, step=1.0)[0]
    assert float(rows[1][1]) == pytest.approx(expected["pv"], abs=1e-6)
    assert float(rows[1][2]) == pytest.approx(expected["load"], abs=1e-6)
    log_rows = read_csv(tmp_path / "data/output/indivLog.csv")[1:]
    assert len(log_rows) == 2 * (1440 + 720)
    assert log_rows[0][1] == "2019/01/01-00:01:00"


def test_a_sample_hands_over_and_drops_rather_than_waits(dataset_dir, tmp_path, monkeypatch):
    """A writer stuck on its disk: a sample returns at once, the queue stays bounded, drops
    are counted."""
    stuck = []

    def slow_handle(self, batch):
        stuck.append(len(batch))
        time.sleep(0.5)

    monkeypatch.setattr(IndividualCSV, "handle", slow_handle)
    em, settings = served(dataset_dir)
    plan = RecorderPlan.served(settings, summary_csv=None, indiv_log=tmp_path / "log.csv",
                               queue_items=4)
    rec = ServedRecording(em, settings, plan)
    schedule = wired(em, rec)
    for _ in range(100):
        schedule.run(60)  # a blocked writer does not hold the tick: blocks are dropped
    sink = rec.recorders.indiv
    assert sink is not None and sink.dropped >= 90 and sink.high_water <= 4
    rec.close()


def test_a_reset_while_served_never_gives_negative_energies(dataset_dir, tmp_path):
    """Reset at noon restarts the units' ledgers; the day keeps the morning's energy."""
    em, settings = served(dataset_dir)
    plan = RecorderPlan.served(settings, summary_csv=tmp_path / "s.csv", indiv_log=None)
    rec = ServedRecording(em, settings, plan)
    run_ticks(em, rec, 43200)
    morning = em.units.ledger.sum(axis=0).copy()
    em.reset()
    run_ticks(em, rec, 43200)
    rec.close()
    header, day = read_csv(tmp_path / "s.csv")[:2]
    cells = dict(zip(header, day, strict=True))
    assert float(cells["pv"]) >= morning[0] > 0
    assert float(cells["demand"]) == pytest.approx(morning[1] + em.units.ledger[:, 1].sum(),
                                                   rel=1e-3)


def test_earlier_files_are_kept_aside_not_overwritten(dataset_dir, tmp_path, monkeypatch):
    """A new served run renames the previous run's CSVs to <stem>.<time>.csv."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "data/output"
    out.mkdir(parents=True)
    (out / "summary.csv").write_text("time,pv\nold,1\n")
    em, settings = served(dataset_dir)
    ServedRecording(em, settings).close()
    kept = list(out.glob("summary.*.csv"))
    assert len(kept) == 1 and kept[0].read_text() == "time,pv\nold,1\n"


def test_served_database_when_asked(dataset_dir, tmp_path, monkeypatch):
    """saveIndividualToDB with the default dburl: data/output/apis-emulator.sqlite."""
    monkeypatch.chdir(tmp_path)
    em, settings = served(dataset_dir, saveIndividualToDB=True)
    rec = ServedRecording(em, settings)
    run_ticks(em, rec, 3600)
    rec.close()
    db = sqlite3.connect(tmp_path / "data/output/apis-emulator.sqlite")
    assert db.execute("SELECT mode, closed_at IS NOT NULL FROM runs").fetchall() == [
        ("serve", 1)]
    assert db.execute("SELECT COUNT(*) FROM unit_states").fetchone() == (2 * 60,)
    assert db.execute("SELECT day FROM daily_summary").fetchall() == [("2019-01-01",)]


def test_the_schedule_puts_every_sample_on_the_minute(dataset_dir, tmp_path):
    """Ticks of 37 steps: the schedule still stops on each minute, so every sample is on it."""
    em, settings = served(dataset_dir)
    plan = RecorderPlan.served(settings, summary_csv=None, indiv_log=tmp_path / "l.csv")
    rec = ServedRecording(em, settings, plan)
    schedule = wired(em, rec)
    for _ in range(30):
        schedule.run(37)
    rec.close()
    times = [r[1] for r in read_csv(tmp_path / "l.csv")[1:]]
    assert len(times) == 2 * (30 * 37 // 60)
    assert all(t.endswith(":00") for t in times)


def test_the_real_time_runner_feeds_it_through_its_schedule(dataset_dir, tmp_path):
    """RealTimeRunner(schedule=…) → sample/midnight; stats() gives the totals so far."""
    em, settings = served(dataset_dir)
    plan = RecorderPlan.served(settings, summary_csv=tmp_path / "s.csv",
                               indiv_log=tmp_path / "l.csv", indiv_interval=600.0)
    rec = ServedRecording(em, settings, plan)
    wall = [0.0]
    runner = RealTimeRunner(em, acceleration=600.0, sleeptime=1.0, clock=lambda: wall[0],
                            schedule=wired(em, rec))
    for _ in range(20):
        wall[0] += 1.0
        runner.tick()
    assert rec.stats()["demand"] > 0
    rec.close()
    # a sample every 600 emulated s: one per tick of 600 s, 20 ticks × 2 units
    assert len(read_csv(tmp_path / "l.csv")) == 1 + 20 * 2
    assert [r[0] for r in read_csv(tmp_path / "s.csv")[1:]] == ["2019/01/01", "sum", "avg"]


def test_settings_flags_switch_outputs_off(dataset_dir, tmp_path, monkeypatch):
    """saveToSummaryToCSV / saveIndividualToCSV false: those files are not written."""
    monkeypatch.chdir(tmp_path)
    em = make_emulator(dataset_dir, 1, mode="serve")
    settings = Settings(dataSet=str(dataset_dir), saveToSummaryToCSV=False,
                        saveIndividualToCSV=False).with_defaults_for("serve")
    rec = ServedRecording(em, settings)
    assert rec.files == {}
    rec.close()
    assert not (tmp_path / "data").exists()
