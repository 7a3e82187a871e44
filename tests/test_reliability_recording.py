"""Write faults while recording: a full disk, a read-only folder, the folder removed, the
database server stopped and started again.

Each fault is real (fault_support.py): a 1 MiB tmpfs filled to the last byte, the output
folder made immutable (the kernel refuses writes through open files too), the folder deleted,
PostgreSQL stopped with pg_ctl.  Promises checked, served (``apis-emulator serve`` in a process
of its own) and headless (``simulate()``):

- the run never stops: a served clock goes on and the API answers; a headless run finishes;
- each sink reports the fault once (one "cannot write" line) and counts the rows it could not
  write: rows in the output + rows not written = rows the run made, exactly;
- what was written stays valid: CSV files hold whole rows only, SQLite passes its integrity
  check, Parquet parts read;
- when the fault passes (room again, writable again, the folder made anew, the server back)
  the rows arrive again.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from apis_emulator.recorders import INDIV_COLUMNS, SUMMARY_COLUMNS
from apis_emulator.runner import simulate
from fault_support import (
    PostgresServer,
    check_csv,
    check_sqlite,
    fill,
    immutable,
    mount_tmpfs,
    unmount,
    wait_until,
)
from recorders_helpers import make_emulator, write_dataset
from web_support import Server, start_server

UNITS = 3
DAYS = 3
SAMPLES_PER_DAY = 1440  # a sample every 60 emulated s


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"), households=UNITS)


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards."""
    where = tmp_path / "disk"
    mount_tmpfs(where, "1m")
    try:
        yield where
    finally:
        unmount(where)


# ---------------------------------------------------------------------------------- headless
@pytest.mark.parametrize("indiv_format", ["csv", "parquet"])
def test_a_headless_run_on_a_full_disk_finishes_and_counts_every_row(
        dataset_dir: Path, small_disk: Path, caplog: pytest.LogCaptureFixture,
        indiv_format: str) -> None:
    """3 days of 3 units, a sample a minute, the log and SQLite on a 1 MiB disk that fills
    up: the run ends normally, written + not written = made, the files are whole."""
    out = small_disk / "run"
    caplog.set_level(logging.WARNING, logger="apis_emulator")
    em = make_emulator(dataset_dir, UNITS)
    result = simulate(em, DAYS, out, indiv_interval=60, indiv_format=indiv_format,
                      database=True, progress=False, handle_signals=False)
    assert result.steps == round(DAYS * 86400 / em.dt)  # finished, not stopped
    status = _by_kind(result.recorders)
    made = DAYS * SAMPLES_PER_DAY * UNITS
    log, db, summary = status["individual log"], status["SQLite database"], status["summary"]
    assert log["not_written"] > 0 and db["not_written"] > 0  # the disk did fill
    in_log = _rows_in_log(out, indiv_format)
    assert in_log == log["rows_written"] and in_log + log["not_written"] == made
    integrity, in_db = check_sqlite(out / "apis-emulator.sqlite")
    assert integrity == "ok"
    assert in_db == db["rows_written"] and in_db + db["not_written"] == made + DAYS + 2
    summary_file = check_csv(out / "summary.csv", SUMMARY_COLUMNS)
    assert (summary_file.cut, summary_file.bad) == (0, [])
    assert summary_file.rows + summary["not_written"] == DAYS + 2  # days, sum, avg
    reported = [r.getMessage() for r in caplog.records if "cannot write" in r.getMessage()]
    for name in result.recorders:
        assert sum(m.startswith(name) for m in reported) <= 1, reported
    assert any(m.startswith(f"individual log {out}") for m in reported), reported


def _by_kind(status: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Sink status by the start of its name: summary, individual log, SQLite database…"""
    kinds = ("summary", "individual log", "SQLite database", "PostgreSQL database")
    return {kind: value for name, value in status.items() for kind in kinds
            if name.startswith(kind)}


def _rows_in_log(out: Path, indiv_format: str) -> int:
    if indiv_format == "csv":
        found = check_csv(out / "indivLog.csv", INDIV_COLUMNS)
        assert (found.cut, found.bad) == (0, [])
        return found.rows
    import pyarrow.parquet as pq

    parts = sorted((out / "indivLog.parquet").glob("part-*.parquet"))
    return sum(pq.read_metadata(p).num_rows for p in parts)


# ---------------------------------------------------------------------------------- served
def _serve(tmp_path: Path, data: Path, out: Path, **settings: str) -> Server:
    """``serve 3`` at 1 emulated hour a second in ticks of 0.25 s (a fault is met, and its end
    seen, within a quarter of a second rather than a second), recording into ``out``: the
    summary, the individual log every 60 emulated s and (unless told otherwise) SQLite."""
    env = {"APIS_EMULATOR_SLEEPTIME": "0.25",
           "APIS_EMULATOR_SUMMARYPATH": str(out / "summary.csv"),
           "APIS_EMULATOR_INDIVLOGPATH": str(out / "indivLog.csv"),
           "APIS_EMULATOR_INDIVLOGINTERVAL": "60",
           "APIS_EMULATOR_SAVEINDIVIDUALTODB": "true",
           "APIS_EMULATOR_DBURL": f"sqlite:///{out / 'apis.sqlite'}",
           "APIS_EMULATOR_LASTSAVEPATH": str(tmp_path / "lastSave.json")}
    env.update({f"APIS_EMULATOR_{k.upper()}": v for k, v in settings.items()})
    return start_server(tmp_path / "serve", data, units=UNITS, env=env,
                        extra=["--acceleration", "3600", "--start", "2019-01-01T23:50:00"])


def _sinks(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return _by_kind(client.get("/api/status").json()["recording"])


def _wait_sinks(client: httpx.Client, what: str, kinds: tuple[str, ...], test: Any) -> None:
    wait_until(what, lambda: all(test(_sinks(client)[k]) for k in kinds), timeout=60)


def _clock_goes_on(client: httpx.Client) -> None:
    """The emulated clock advances by 10 emulated minutes and the API answers."""
    first = client.get("/api/status").json()["emulated_s"]
    wait_until("the clock to go on",
               lambda: client.get("/api/status").json()["emulated_s"] > first + 600)
    assert client.get("/get/unit/E001").status_code == 200


def _closing_counts(server_log: str, kind: str) -> tuple[int, int] | None:
    """(rows written, rows not written) from a sink's closing message, if it had faults."""
    found = re.search(kind + r" \S+: (\d+) row\(s\) written, (\d+) not written", server_log)
    return (int(found[1]), int(found[2])) if found else None


def _reports(server_log: str, kind: str) -> int:
    return len(re.findall(kind + r" \S+ cannot write", server_log))


def _whole_files(out: Path) -> int:
    """Every CSV whole, sum and avg closing the summary, SQLite sound; the log's rows."""
    summary = check_csv(out / "summary.csv", SUMMARY_COLUMNS)
    assert (summary.cut, summary.bad) == (0, [])
    assert (out / "summary.csv").read_text().splitlines()[-2][:4] == "sum,"
    log = check_csv(out / "indivLog.csv", INDIV_COLUMNS)
    assert (log.cut, log.bad) == (0, [])
    return log.rows


def test_a_served_run_on_a_full_disk_goes_on_and_writes_again_when_there_is_room(
        tmp_path: Path, dataset_dir: Path, small_disk: Path) -> None:
    server = _serve(tmp_path, dataset_dir, small_disk)
    try:
        with server.client() as client:
            both = ("individual log", "SQLite database")
            _wait_sinks(client, "rows written", both, lambda s: s["rows_written"] > 0)
            filler = fill(small_disk)
            _wait_sinks(client, "a write fault", both, lambda s: s["fault"] is not None)
            _clock_goes_on(client)
            written = _sinks(client)["individual log"]["rows_written"]
            filler.unlink()
            _wait_sinks(client, "writing again", both, lambda s: s["fault"] is None)
            wait_until("new rows", lambda: _sinks(client)["individual log"]["rows_written"]
                       > written)
            lost = _sinks(client)["individual log"]["not_written"]
            assert lost > 0
    finally:
        assert server.stop() == 0, server.log()[-3000:]
    text = server.log()
    assert _reports(text, "individual log") == 1 and _reports(text, "SQLite database") == 1
    in_log = _whole_files(small_disk)
    counts = _closing_counts(text, "individual log")
    assert counts is not None and counts[0] == in_log and counts[1] >= lost
    integrity, in_db = check_sqlite(small_disk / "apis.sqlite")
    db_counts = _closing_counts(text, "SQLite database")
    assert integrity == "ok" and db_counts is not None and db_counts[0] == in_db


def test_a_served_run_survives_a_read_only_then_removed_output_folder(
        tmp_path: Path, dataset_dir: Path) -> None:
    """The folder and its files made immutable, then writable, then deleted: reported once
    per fault, the run goes on, the files come back and hold whole rows."""
    out = tmp_path / "out"
    server = _serve(tmp_path, dataset_dir, out)
    locked = [out, out / "summary.csv", out / "indivLog.csv", out / "apis.sqlite",
              out / "apis.sqlite-wal"]  # not the -shm: SQLite maps it into memory
    both = ("individual log", "SQLite database")
    try:
        with server.client() as client:
            _wait_sinks(client, "rows written", both, lambda s: s["rows_written"] > 0)
            immutable(locked, on=True)
            try:
                _wait_sinks(client, "a write fault", both, lambda s: s["fault"] is not None)
                _clock_goes_on(client)
            finally:
                immutable(locked, on=False)
            _wait_sinks(client, "writing again", both, lambda s: s["fault"] is None)
            shutil.rmtree(out)
            wait_until("the log made anew", lambda: (out / "indivLog.csv").exists()
                       and check_csv(out / "indivLog.csv", INDIV_COLUMNS).rows > 0)
            _wait_sinks(client, "writing again", both, lambda s: s["fault"] is None)
            _clock_goes_on(client)
    finally:
        immutable(locked, on=False)
        assert server.stop() == 0, server.log()[-3000:]
    text = server.log()
    assert _reports(text, "individual log") == 2, text[-3000:]  # read-only, then removed
    assert _reports(text, "SQLite database") == 2, text[-3000:]
    _whole_files(out)
    integrity, in_db = check_sqlite(out / "apis.sqlite")
    assert integrity == "ok" and in_db > 0


# ---------------------------------------------------------------------------------- PostgreSQL
@pytest.fixture()
def postgres() -> Iterator[PostgresServer]:
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed")
    server = PostgresServer()
    try:
        yield server
    finally:
        server.remove()


def _states_after(conn: Any, when: dt.datetime) -> int:
    found = conn.execute("SELECT COUNT(*) FROM unit_states WHERE time > %s", (when,))
    return int(found.fetchone()[0])


def test_a_served_run_reconnects_to_a_restarted_postgresql(
        tmp_path: Path, dataset_dir: Path, postgres: PostgresServer) -> None:
    """The server stopped for a while, then started again on the same port and data: the
    clock never waits, the rows of the outage are counted, the rows after it arrive."""
    import psycopg

    server = _serve(tmp_path, dataset_dir, tmp_path / "out", dburl=postgres.url)
    db = ("PostgreSQL database",)
    try:
        with server.client() as client:
            _wait_sinks(client, "rows written", db, lambda s: s["rows_written"] > 0)
            postgres.stop()
            _wait_sinks(client, "a lost connection", db, lambda s: s["fault"] is not None)
            _clock_goes_on(client)
            postgres.start()
            _wait_sinks(client, "a new connection", db,
                        lambda s: s["fault"] is None and s["reconnects"] >= 1)
            back = dt.datetime.strptime(client.get("/api/status").json()["time"],
                                        "%Y/%m/%d-%H:%M:%S")
            with psycopg.connect(postgres.url, autocommit=True) as conn:
                wait_until("rows after the restart", lambda: _states_after(conn, back) > 0)
            lost = _sinks(client)["PostgreSQL database"]["not_written"]
    finally:
        assert server.stop() == 0, server.log()[-3000:]
    text = server.log()
    assert _reports(text, "PostgreSQL database") == 1
    counts = _closing_counts(text, "PostgreSQL database")
    assert counts is not None and counts[1] >= lost > 0
    with psycopg.connect(postgres.url) as conn:
        (closed, rows), = conn.execute(  # every row the sink writes: states, days, totals
            "SELECT closed_at, (SELECT COUNT(*) FROM unit_states) + (SELECT COUNT(*) FROM "
            "daily_summary) + (SELECT COUNT(*) FROM run_totals) FROM runs").fetchall()
    assert closed is not None and rows == counts[0]
