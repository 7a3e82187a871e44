"""The database sink against a real PostgreSQL server started by the test itself.

The server comes from Debian's ``postgresql`` package (``make test`` installs it): ``initdb`` into
a temporary directory, as the ``postgres`` user when the tests run as root, ``pg_ctl start`` on
127.0.0.1 and a free port, stopped afterwards.  Skipped, with the reason shown, only where the
server binaries or psycopg are missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apis_emulator.recorders import SUMMARY_COLUMNS, RecorderError
from apis_emulator.runner import simulate
from recorders_helpers import free_port, ledger_by_day, make_emulator, read_csv, write_dataset

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed "
                                                "(pip install 'apis-emulator[postgres]')")

DAYS = 3
UNITS = 3


def _server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the postgres user then."""
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
    return [runuser, "-u", "postgres", "--", *command]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL server on 127.0.0.1:<free port>, trust authentication."""
    bindir = _server_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found: `make test` installs Debian's "
                    "postgresql (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="apis-emulator-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    os.chmod(root, 0o700)
    port = free_port()
    run: dict[str, Any] = dict(check=True, capture_output=True, text=True, timeout=120)
    try:
        subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U",
                                         "postgres", "--auth=trust", "-E", "UTF8"]), **run)
        subprocess.run(_as_server_user([
            str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' "
            f"-c fsync=off", "start"]), **run)
    except subprocess.CalledProcessError as exc:
        text = log.read_text() if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc.stderr}\n{text}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                                        "-w", "stop"]), capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def database(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of its own for each test."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:50].lower()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"), households=UNITS)


def test_three_days_into_postgresql_hold_the_ledger_numbers(dataset_dir, tmp_path, database):
    """3 day rows + sum + avg in the database = the summary CSV = the engine's ledger; the
    per-unit states = the individual log."""
    result = simulate(make_emulator(dataset_dir, UNITS), DAYS, tmp_path, progress=False,
                      database=database)
    assert result.files["database"] == database
    rows = read_csv(tmp_path / "summary.csv")
    header, body = rows[0], rows[1:]
    columns = ", ".join(f'"{c}"' for c in SUMMARY_COLUMNS[1:])
    with psycopg.connect(database) as db:
        (run_id, closed, units), = db.execute(
            "SELECT run_id, closed_at, units FROM runs").fetchall()
        assert closed is not None and units == UNITS
        days = db.execute(f"SELECT day::text, {columns} FROM daily_summary WHERE run_id = %s "
                          "ORDER BY day", (run_id,)).fetchall()
        totals = {r[0]: r[1:] for r in db.execute(
            f"SELECT kind, {columns} FROM run_totals WHERE run_id = %s", (run_id,))}
        states = db.execute("SELECT to_char(time, 'YYYY/MM/DD-HH24:MI:SS'), unit_id, rsoc, p2 "
                            "FROM unit_states WHERE run_id = %s ORDER BY time, unit_id",
                            (run_id,)).fetchall()
    assert [d[0] for d in days] == ["2019-01-01", "2019-01-02", "2019-01-03"]
    expected = ledger_by_day(dataset_dir, UNITS, DAYS)
    for (_, *values), ledger in zip(days, expected, strict=True):
        got = dict(zip(header[1:], values, strict=True))
        assert got["pv"] == pytest.approx(ledger["pv"], abs=1e-6)
        assert got["demand"] == pytest.approx(ledger["load"], abs=1e-6)
        assert got["acin"] == pytest.approx(ledger["acin"], abs=1e-6)
        assert got["deltaBatt"] == pytest.approx(ledger["deltaBatt"], abs=1e-6)
    for csv_row, db_row in zip(body, [*days, ("sum", *totals["sum"]),
                                      ("avg", *totals["avg"])], strict=True):
        for cell, value in zip(csv_row[1:], db_row[1:], strict=True):
            assert (value is None) == (cell == "")
            if value is not None:
                assert value == pytest.approx(float(cell), abs=1e-6)
    log_rows = read_csv(tmp_path / "indivLog.csv")[1:]
    assert len(states) == len(log_rows) == DAYS * 96 * UNITS
    for line, (when, unit_id, rsoc, p2) in zip(log_rows, states, strict=True):
        assert (when, unit_id) == (line[1], line[0])
        assert rsoc == pytest.approx(float(line[3]), abs=1e-4)
        assert p2 == pytest.approx(float(line[8]), abs=1e-3)


def test_postgresql_tables_have_keys_and_an_index_on_time(dataset_dir, tmp_path, database):
    """Primary keys and the indexes on unit_states(time) and daily_summary(day)."""
    simulate(make_emulator(dataset_dir, 1), 1, tmp_path, progress=False, database=database)
    with psycopg.connect(database) as db:
        keys = dict(db.execute(
            "SELECT tc.table_name, string_agg(kcu.column_name, ',' ORDER BY "
            "kcu.ordinal_position) FROM information_schema.table_constraints tc JOIN "
            "information_schema.key_column_usage kcu USING (constraint_name, table_name) "
            "WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public' "
            "GROUP BY tc.table_name").fetchall())
        indexes = {r[0] for r in db.execute("SELECT indexdef FROM pg_indexes "
                                            "WHERE schemaname = 'public'")}
    assert keys == {"runs": "run_id", "unit_states": "run_id,time,unit_id",
                    "daily_summary": "run_id,day", "run_totals": "run_id,kind",
                    "deals": "run_id,deal_id"}
    assert any("unit_states USING btree (\"time\")" in i or "unit_states USING btree (time)"
               in i for i in indexes)
    assert any("daily_summary USING btree (day)" in i for i in indexes)


def test_two_runs_into_one_postgresql_database_keep_apart(dataset_dir, tmp_path, database):
    """Each run has its run_id; nothing is overwritten."""
    for k in range(2):
        simulate(make_emulator(dataset_dir, 2), 1, tmp_path / str(k), progress=False,
                 database=database)
    with psycopg.connect(database) as db:
        assert db.execute("SELECT run_id, COUNT(*) FROM unit_states GROUP BY run_id "
                          "ORDER BY run_id").fetchall() == [(1, 192), (2, 192)]


def test_an_unreachable_server_is_refused_at_the_start(dataset_dir, tmp_path):
    """A clear error naming the URL; the password is not shown."""
    url = f"postgresql://someone:secret@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(RecorderError, match=r"someone:\*\*\*@127\.0\.0\.1") as info:
        simulate(make_emulator(dataset_dir, 1), 1, tmp_path, progress=False, database=url)
    assert "secret" not in str(info.value)
