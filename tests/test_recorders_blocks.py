"""The individual log in large blocks (issue 11): gathered samples, one compiled pass per
batch, Parquet row groups from arrays, and simulate's default outputs."""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import numpy as np
import pytest

from apis_emulator.config import Settings
from apis_emulator.engine import OUT_FIELDS, Snapshot
from apis_emulator.recorders import IndividualCSV, RecorderPlan, UnitsBlock
from apis_emulator.recorders import plan as plan_module
from apis_emulator.recorders.parquetlog import IndividualParquet
from recorders_helpers import read_csv

START = dt.datetime(2019, 1, 1)


def random_snap(k: int, ids: tuple[str, ...], rng: np.random.Generator) -> Snapshot:
    """Sample k (every 900 s) of units ``ids`` with random values of every sign."""
    n = len(ids)
    return Snapshot(time=START + dt.timedelta(seconds=900 * k), step=k, ids=ids,
                    displays=tuple(f"house {i}" for i in ids),
                    energy=rng.uniform(0, 4800, n), capacity=rng.uniform(1000, 9600, n),
                    out=rng.normal(0, 2000, (n, len(OUT_FIELDS))), ledger=np.zeros((n, 8)),
                    vg=np.zeros(n), ig=np.zeros(n), wg=rng.normal(0, 500, n),
                    mode=np.zeros(n, dtype=np.int64), dcdc_loss=np.zeros(n))


def samples(count: int = 120) -> list[UnitsBlock]:
    """``count`` blocks; the units change after two thirds (a unit added, one renamed)."""
    rng = np.random.default_rng(11)
    first, later = ("E001", "E002", "E,3"), ("E001", "E002", "E004", 'E"5')
    return [UnitsBlock.of(random_snap(k, first if k < 2 * count // 3 else later, rng))
            for k in range(count)]


def write_csv(path: Path, blocks: list[UnitsBlock], gather: int) -> bytes:
    log = IndividualCSV(path, gather=gather)
    for block in blocks:
        log.write(block)
    log.close()
    return path.read_bytes()


def test_rsoc_of_a_block_is_the_snapshots_to_the_last_bit():
    """The block's columns are the snapshot's values, not a re-rounded form of them."""
    snap = random_snap(1, ("a", "b", "c", "d"), np.random.default_rng(2))
    block = UnitsBlock.of(snap)
    assert block.numbers[:, 0].tobytes() == snap.rsoc.tobytes()
    assert block.numbers[:, 3].tobytes() == np.abs(snap.out[:, OUT_FIELDS.index("flow")]).tobytes()
    assert block.numbers[:, 4].tobytes() == snap.wg.tobytes()


def test_gathered_blocks_write_the_same_bytes_as_one_by_one(tmp_path):
    """Gathering 50 samples per hand-over, and formatting a batch in one pass, changes no
    byte of the file, across a change of the units and a last partial gathering."""
    blocks = samples()
    one_by_one = write_csv(tmp_path / "one.csv", blocks, gather=1)
    gathered = write_csv(tmp_path / "many.csv", blocks, gather=50)
    assert gathered == one_by_one
    rows = read_csv(tmp_path / "many.csv")
    assert len(rows) == 1 + 80 * 3 + 40 * 4
    assert rows[-1][0] == 'E"5' and rows[1][0] == "E001" and rows[3][0] == "E,3"


def test_csv_rows_hold_the_numbers_to_their_decimals(tmp_path):
    """Each row's numbers are the block's, rounded to 4 (rsoc) or 3 (powers) decimals."""
    blocks = samples(30)
    write_csv(tmp_path / "log.csv", blocks, gather=7)
    rows = read_csv(tmp_path / "log.csv")[1:]
    numbers = np.concatenate([b.numbers for b in blocks])
    got = np.array([[float(c) for c in row[3:]] for row in rows])
    np.testing.assert_allclose(got[:, 0], numbers[:, 0], atol=0.5e-4, rtol=0)
    np.testing.assert_allclose(got[:, 1:], numbers[:, 1:], atol=0.5e-3, rtol=0)
    assert rows[3][1] == "2019/01/01-00:15:00"


def test_parquet_holds_every_block_with_its_units_and_full_precision(tmp_path):
    """Row groups from arrays: ids, times and the float64 numbers as given."""
    import pyarrow.parquet as pq

    blocks = samples()
    log = IndividualParquet(tmp_path / "log.parquet", row_group_rows=100, gather=9)
    for block in blocks:
        log.write(block)
    log.close()
    table = pq.read_table(tmp_path / "log.parquet")
    assert table.num_rows == 80 * 3 + 40 * 4 == log.rows
    ids = [str(x) for x in table.column("id").to_pylist()]
    assert ids == [u for b in blocks for u in b.ids]
    assert table.column("time").to_pylist()[-1] == blocks[-1].time
    numbers = np.column_stack([table.column(c).to_numpy() for c in table.column_names[3:]])
    assert numbers.tobytes() == np.concatenate([b.numbers for b in blocks]).tobytes()


@pytest.mark.parametrize(("units", "gather", "queue"), [
    (100, 655, 4096),      # 65,536 rows per hand-over; 4,096 samples queued at most
    (10_000, 6, 52),       # the queue holds at most 2^19 rows, whatever the units
    (100_000, 1, 5),       # a sample is more than a hand-over: each goes alone
])
def test_an_individual_logs_queue_is_bounded_in_rows(units, gather, queue):
    plan = RecorderPlan.headless("out")
    assert plan.indiv_queue(units) == (queue, gather)
    assert queue * units <= max(plan.queue_rows, 2 * gather * units, plan.queue_items)


def test_a_served_log_hands_each_sample_over_at_once():
    plan = RecorderPlan.served(Settings().with_defaults_for("serve"))
    assert plan.indiv_queue(100)[1] == 1


def test_simulate_writes_parquet_by_default_and_csv_without_pyarrow(monkeypatch, caplog):
    """The default log is Parquet; without pyarrow it is CSV, and the log says why."""
    settings = Settings().with_defaults_for("simulate")
    assert RecorderPlan.for_simulate(settings, "o").indiv_log == Path("o/indivLog.parquet")
    monkeypatch.setattr(plan_module.importlib.util, "find_spec", lambda name: None)
    with caplog.at_level(logging.WARNING):
        plan = RecorderPlan.for_simulate(settings, "o")
    assert plan.indiv_log == Path("o/indivLog.csv")
    assert "pyarrow is missing" in caplog.text


def test_gathered_samples_are_handed_over_after_gather_seconds(tmp_path):
    """A producer slower than ``gather`` samples per ``gather_seconds`` still hands them over:
    the writer's thread sees the rows before the log is closed."""
    now = [0.0]
    log = IndividualCSV(tmp_path / "log.csv", gather=1000)
    log.clock = lambda: now[0]  # the worker's clock, moved by hand
    blocks = samples(6)
    for block in blocks[:3]:
        log.write(block)
    now[0] += 0.2  # more than gather_seconds (0.1 s) since the first gathered sample
    log.write(blocks[3])
    for _ in range(200):  # the thread writes 4 samples × 3 units
        if log.rows >= 12:
            break
        time.sleep(0.01)
    assert log.rows == 12
    for block in blocks[4:]:
        log.write(block)
    log.close()
    assert log.rows == 12 + 2 * 4 and len(read_csv(tmp_path / "log.csv")) == 21  # 4 units
