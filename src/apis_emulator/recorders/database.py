"""Database sink (specification §7.1 saveIndividualToDB, dburl): SQLite or PostgreSQL.

``dburl`` says where:

- ``sqlite:///relative/path.sqlite`` or ``sqlite:////absolute/path.sqlite`` (or a bare path
  ending in ``.sqlite``, ``.sqlite3`` or ``.db``): an SQLite file, embedded, no server (stdlib
  :mod:`sqlite3`; WAL journal, so a killed process leaves the last committed batch readable);
- ``postgresql://user:password@host:port/dbname`` (``postgres://`` too): a PostgreSQL server,
  through psycopg 3 (``pip install 'apis-emulator[postgres]'``);
- ``http://`` or ``https://``: not a database, the original's JSON post (:mod:`.httpsink`).

Tables (created if missing; every run of the emulator adds one ``runs`` row and keys its rows
with its ``run_id``, so runs never mix):

``runs``
    run_id (key), started_at (wall clock, UTC), closed_at (set on a clean close), mode
    (serve | simulate), start_time (emulated), step_s [s], units, data_set.
``unit_states``
    run_id, time (emulated), unit_id, display, rsoc [%], pvc_charge_power, ups_output_power,
    charge_discharge_power, wg, p2 [W] — the individual log; key (run_id, time, unit_id),
    index on time.
``daily_summary``
    run_id, day, then the summary columns of power-flow-model §7 [Wh, %, -]; key
    (run_id, day), index on day.  A ratio with a zero denominator is NULL.
``run_totals``
    run_id, kind (``sum`` | ``avg``), the same columns: the closing rows; key (run_id, kind).
``deals``
    run_id, then deals.csv's columns: deal_id, created, activated, started, ended (emulated
    time; NULL where deals.csv has an empty cell), request_unit, type, charge_unit,
    discharge_unit, request_wh, accept_wh, deal_wh [Wh, whole], cumulated_wh [Wh],
    end_reason.  One row per deal of a built-in controller, written when it ends, in the same
    transactions as the other rows; key (run_id, deal_id), index on started.

A database made by an earlier version gets the columns it lacks (the summary's shared_in,
shared_out, deals) added when a run opens it.

Rows are written by the sink's thread in batches, each batch one transaction: after a crash a
batch is either in or out.  A failed transaction (a full or read-only disk, the database file
removed, the server stopped) is a write fault (:mod:`.worker`): its rows are counted as not
written, the run goes on, and the sink retries with a bounded back-off, reconnecting first
(SQLite: the file made anew, with this run's ``runs`` row, if it was removed; PostgreSQL: a new
connection, with libpq's keep-alives and ``tcp_user_timeout`` so that a vanished server is
noticed rather than waited for).
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from ..engine.deals import DEAL_COLUMNS, TIME_FORMAT, DealRecord
from ..errors import SettingsError
from .indivlog import INDIV_COLUMNS, UnitsBlock
from .summary import SUMMARY_COLUMNS, DayRow
from .textfmt import encode_column, format_rows
from .worker import RecorderError, SinkWorker

if TYPE_CHECKING:
    from .httpsink import UnitDocuments

__all__ = ["RunInfo", "DatabaseSink", "SQLiteSink", "PostgresSink", "open_database",
           "parse_dburl", "hide_password", "DB_TABLES"]

log = logging.getLogger(__name__)

DB_TABLES = ("runs", "unit_states", "daily_summary", "run_totals", "deals")
_STATE_COLUMNS = INDIV_COLUMNS[3:]
_SUMMARY_VALUES = SUMMARY_COLUMNS[1:]
_SUMMARY_NAMES = ", ".join(f'"{c}"' for c in _SUMMARY_VALUES)
#: Deal-log columns by kind: times (NULL when empty), whole Wh, the rest text or real.
_DEAL_TIMES = ("created", "activated", "started", "ended")
_DEAL_WHOLE = ("request_wh", "accept_wh", "deal_wh")
_DEAL_NAMES = ", ".join(f'"{c}"' for c in DEAL_COLUMNS)
_SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
_ACCEPTED = ("sqlite:///relative/file.sqlite, sqlite:////absolute/file.sqlite, "
             "postgresql://user@host:port/dbname, or an http:// or https:// address")


@dataclass(frozen=True)
class RunInfo:
    """What the ``runs`` table says about one run of the emulator."""

    mode: str  # "serve" or "simulate"
    start_time: dt.datetime  # emulated start
    step_s: float  # physics step Δt [s]
    units: int
    data_set: str
    started_at: dt.datetime = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))


def parse_dburl(url: str) -> tuple[str, str]:
    """``(kind, target)``: kind is sqlite (target a file path), postgresql (target the URL for
    psycopg) or http (target the address); SettingsError naming dburl otherwise."""
    text = str(url).strip()
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme == "sqlite":
        path = text[len("sqlite:///"):] if text.lower().startswith("sqlite:///") else ""
        if not path or path == ":memory:":
            raise SettingsError("dburl", url, f"a database file: {_ACCEPTED}")
        return "sqlite", path
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return "postgresql", "postgresql://" + text.split("://", 1)[1]
    if scheme in ("http", "https"):
        if not urlsplit(text).hostname:
            raise SettingsError("dburl", url, f"an address with a host name: {_ACCEPTED}")
        return "http", text
    if not scheme and text.lower().endswith(_SQLITE_SUFFIXES):
        return "sqlite", text
    raise SettingsError("dburl", url, _ACCEPTED)


class DatabaseSink(SinkWorker):
    """Common part of the SQLite and PostgreSQL sinks: queue items are unit blocks and summary
    rows; each batch is written in one transaction."""

    kind = "database"
    output = "database"

    def __init__(self, name: str, run: RunInfo, max_items: int = 256, block: bool = True):
        super().__init__(name, max_items=max_items, block=block)
        self.run = run
        self.run_id = 0
        self.unit_rows = 0
        self.day_rows = 0
        self.deal_rows = 0

    @property
    def where(self) -> Path | str:
        """The database file, or its URL without the password."""
        raise NotImplementedError

    def write_units(self, block: UnitsBlock) -> bool:
        """Queue one block of unit states; False if it was dropped."""
        return self.put(("units", block))

    def write_days(self, rows: Iterable[DayRow]) -> bool:
        """Queue summary rows (days, or sum and avg); False if they were dropped."""
        return self.put(("days", tuple(rows)))

    def log_units(self, block: UnitsBlock, documents: UnitDocuments | None) -> None:
        """The block's rows to ``unit_states``."""
        self.write_units(block)

    def log_rows(self, rows: Sequence[DayRow]) -> None:
        """Day rows to ``daily_summary``, ``sum``/``avg`` to ``run_totals``."""
        self.write_days(rows)

    def log_deals(self, records: Sequence[DealRecord]) -> None:
        """Finished deals to ``deals``."""
        if records:
            self.put(("deals", tuple(records)))

    def rows_in(self, item: tuple[str, Any]) -> int:
        """Unit states, summary rows or deals of one hand-over."""
        return len(item[1])

    def handle(self, batch: list[tuple[str, Any]]) -> None:
        """Write a batch in one transaction (in the sink's thread)."""
        blocks = [item for kind, item in batch if kind == "units" and len(item)]
        rows = [row for kind, items in batch if kind == "days" for row in items]
        deals = [deal for kind, items in batch if kind == "deals" for deal in items]
        self._transaction(blocks, rows, deals)
        self.unit_rows += sum(len(b) for b in blocks)
        self.day_rows += len(rows)
        self.deal_rows += len(deals)

    def _transaction(self, blocks: list[UnitsBlock], rows: list[DayRow],
                     deals: list[DealRecord]) -> None:
        raise NotImplementedError


def _summary_params(run_id: int, key: str, row: DayRow) -> tuple[Any, ...]:
    return (run_id, key, *(row.values.get(c) for c in _SUMMARY_VALUES))


def _deal_time(text: str) -> dt.datetime | None:
    """A deal-log time (``2019/06/01-08:32:57``) as a datetime; None for an empty cell."""
    return dt.datetime.strptime(text, TIME_FORMAT) if text else None


def _deal_params(run_id: int, deal: DealRecord, iso: bool) -> tuple[Any, ...]:
    """``deals`` row values: times as datetimes (``iso``: as SQLite's ISO text) or None."""
    values: list[Any] = [run_id]
    for name, value in zip(DEAL_COLUMNS, deal.row(), strict=True):
        if name in _DEAL_TIMES:
            when = _deal_time(value)
            value = when.isoformat(sep=" ") if iso and when is not None else when
        values.append(value)
    return tuple(values)


def _deal_type(column: str, time: str, whole: str, real: str) -> str:
    """The SQL type of a ``deals`` column, given the database's names for the kinds."""
    if column in _DEAL_TIMES:
        return time
    if column in _DEAL_WHOLE:
        return whole
    if column == "cumulated_wh":
        return real
    return "TEXT NOT NULL" if column == "deal_id" else "TEXT"


# ---------------------------------------------------------------------------------- SQLite
_SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    closed_at TEXT,
    mode TEXT NOT NULL,
    start_time TEXT NOT NULL,
    step_s REAL NOT NULL,
    units INTEGER NOT NULL,
    data_set TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS unit_states (
    run_id INTEGER NOT NULL REFERENCES runs (run_id),
    time TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    display TEXT NOT NULL,
    {", ".join(f"{c} REAL" for c in _STATE_COLUMNS)},
    PRIMARY KEY (run_id, time, unit_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS unit_states_time ON unit_states (time);
CREATE TABLE IF NOT EXISTS daily_summary (
    run_id INTEGER NOT NULL REFERENCES runs (run_id),
    day TEXT NOT NULL,
    {", ".join(f'"{c}" REAL' for c in _SUMMARY_VALUES)},
    PRIMARY KEY (run_id, day)
);
CREATE INDEX IF NOT EXISTS daily_summary_day ON daily_summary (day);
CREATE TABLE IF NOT EXISTS run_totals (
    run_id INTEGER NOT NULL REFERENCES runs (run_id),
    kind TEXT NOT NULL CHECK (kind IN ('sum', 'avg')),
    {", ".join(f'"{c}" REAL' for c in _SUMMARY_VALUES)},
    PRIMARY KEY (run_id, kind)
);
CREATE TABLE IF NOT EXISTS deals (
    run_id INTEGER NOT NULL REFERENCES runs (run_id),
    {", ".join(f'"{c}" {_deal_type(c, "TEXT", "INTEGER", "REAL")}' for c in DEAL_COLUMNS)},
    PRIMARY KEY (run_id, deal_id)
);
CREATE INDEX IF NOT EXISTS deals_started ON deals (started);
"""
_SUMMARY_MARKS = ", ".join("?" for _ in _SUMMARY_VALUES)
_DEAL_MARKS = ", ".join("?" for _ in range(1 + len(DEAL_COLUMNS)))
#: Rows per multi-row INSERT (SQLite before 3.32 allowed only 999 parameters a statement).
_ROWS_PER_INSERT = 400 if sqlite3.sqlite_version_info >= (3, 32) else 99


def _insert_sql(rows: int) -> str:
    one = "(" + ", ".join("?" for _ in range(4 + len(_STATE_COLUMNS))) + ")"
    return f"INSERT OR REPLACE INTO unit_states VALUES {', '.join([one] * rows)}"


class SQLiteSink(DatabaseSink):
    """An SQLite file (WAL journal, ``synchronous=NORMAL``)."""

    kind = "sqlite"

    @property
    def where(self) -> Path:
        """The SQLite file."""
        return self.path

    write_faults = (OSError, sqlite3.OperationalError)

    def __init__(self, path: str | Path, run: RunInfo, max_items: int = 256,
                 block: bool = True):
        self.path = Path(path)
        super().__init__(f"SQLite database {self.path}", run, max_items, block)
        self._full_insert = _insert_sql(_ROWS_PER_INSERT)
        try:
            self._connect()
        except (sqlite3.Error, OSError) as exc:
            raise RecorderError(f"cannot open the SQLite database {self.path}: {exc}") from None
        self.start()

    def _connect(self) -> None:
        """Open (or make) the file with its tables and this run's ``runs`` row."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._db = sqlite3.connect(self.path, check_same_thread=False,
                                        isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(_SQLITE_SCHEMA)
        self._add_missing_columns()
        run = self.run
        values = (run.started_at.isoformat(sep=" "), run.mode,
                  run.start_time.isoformat(sep=" "), run.step_s, run.units, run.data_set)
        if self.run_id:  # made anew after it was removed: the run keeps its id
            db.execute("INSERT OR IGNORE INTO runs (run_id, started_at, mode, start_time, "
                       "step_s, units, data_set) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (self.run_id, *values))
        else:
            cur = db.execute("INSERT INTO runs (started_at, mode, start_time, step_s, units, "
                             "data_set) VALUES (?, ?, ?, ?, ?, ?)", values)
            self.run_id = int(cur.lastrowid or 0)
        self._identity = self._file_identity()

    def _file_identity(self) -> tuple[int, int]:
        """(device, inode) of the file at the path now; FileNotFoundError if none."""
        found = os.stat(self.path)
        return found.st_dev, found.st_ino

    def _still_there(self) -> None:
        """FileNotFoundError if the database file was removed (or replaced) while open:
        what was just committed went to a file that nobody can read."""
        try:
            same = self._file_identity() == self._identity
        except FileNotFoundError:
            same = False
        if not same:
            raise FileNotFoundError(errno.ENOENT, "the database file was removed while open",
                                    str(self.path))

    def recover(self) -> None:
        """A fresh connection (after an I/O error SQLite's own is best not trusted); the
        file is made anew if it was removed."""
        try:
            self._db.close()
        except sqlite3.Error:
            pass
        self._connect()

    def _add_missing_columns(self) -> None:
        """Summary columns added since the database was made (shared_in, shared_out, deals)."""
        for table in ("daily_summary", "run_totals"):
            have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            for column in _SUMMARY_VALUES:
                if column not in have:
                    self._db.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" REAL')

    def _transaction(self, blocks: list[UnitsBlock], rows: list[DayRow],
                     deals: list[DealRecord]) -> None:
        db = self._db
        db.execute("BEGIN")
        try:
            if blocks:
                self._insert_states(blocks)
            for row in rows:
                table, key_col, key = (("daily_summary", "day", row.day) if row.day is not None
                                       else ("run_totals", "kind", row.time))
                db.execute(f"INSERT OR REPLACE INTO {table} (run_id, {key_col}, "
                           f"{_SUMMARY_NAMES}) VALUES (?, ?, {_SUMMARY_MARKS})",
                           _summary_params(self.run_id, key, row))
            if deals:
                db.executemany(f"INSERT OR REPLACE INTO deals (run_id, {_DEAL_NAMES}) "
                               f"VALUES ({_DEAL_MARKS})",
                               [_deal_params(self.run_id, d, iso=True) for d in deals])
            db.execute("COMMIT")
        except BaseException:
            try:  # SQLite may have rolled back itself (a full disk): the cause is raised
                if db.in_transaction:
                    db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        self._still_there()

    def _insert_states(self, blocks: list[UnitsBlock]) -> None:
        """Many rows per INSERT statement: one SQLite step (and one release of the
        interpreter lock) per statement instead of per row."""
        params: list[Any] = []
        n = 0
        for row in self._unit_params(blocks):
            params += row
            n += 1
            if n == _ROWS_PER_INSERT:
                self._db.execute(self._full_insert, params)
                params, n = [], 0
        if n:
            self._db.execute(_insert_sql(n), params)

    def _unit_params(self, blocks: list[UnitsBlock]) -> Iterable[tuple[Any, ...]]:
        run = self.run_id
        for block in blocks:
            when = block.time.isoformat(sep=" ")
            for uid, name, values in zip(block.ids, block.displays, block.numbers.tolist(),
                                         strict=True):
                yield (run, when, uid, name, *values)

    def finish(self) -> None:
        """Mark the run closed, checkpoint and close the database."""
        try:
            self._db.execute("UPDATE runs SET closed_at = ? WHERE run_id = ?",
                             (dt.datetime.now(dt.UTC).replace(tzinfo=None)
                              .isoformat(sep=" "), self.run_id))
        finally:
            self._db.close()


# ---------------------------------------------------------------------------------- PostgreSQL
_PG_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS runs (
        run_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        started_at TIMESTAMP NOT NULL,
        closed_at TIMESTAMP,
        mode TEXT NOT NULL,
        start_time TIMESTAMP NOT NULL,
        step_s DOUBLE PRECISION NOT NULL,
        units INTEGER NOT NULL,
        data_set TEXT NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS unit_states (
        run_id BIGINT NOT NULL REFERENCES runs (run_id),
        time TIMESTAMP NOT NULL,
        unit_id TEXT NOT NULL,
        display TEXT NOT NULL,
        {", ".join(f"{c} DOUBLE PRECISION" for c in _STATE_COLUMNS)},
        PRIMARY KEY (run_id, time, unit_id))""",
    "CREATE INDEX IF NOT EXISTS unit_states_time ON unit_states (time)",
    f"""CREATE TABLE IF NOT EXISTS daily_summary (
        run_id BIGINT NOT NULL REFERENCES runs (run_id),
        day DATE NOT NULL,
        {", ".join(f'"{c}" DOUBLE PRECISION' for c in _SUMMARY_VALUES)},
        PRIMARY KEY (run_id, day))""",
    "CREATE INDEX IF NOT EXISTS daily_summary_day ON daily_summary (day)",
    f"""CREATE TABLE IF NOT EXISTS run_totals (
        run_id BIGINT NOT NULL REFERENCES runs (run_id),
        kind TEXT NOT NULL CHECK (kind IN ('sum', 'avg')),
        {", ".join(f'"{c}" DOUBLE PRECISION' for c in _SUMMARY_VALUES)},
        PRIMARY KEY (run_id, kind))""",
    f"""CREATE TABLE IF NOT EXISTS deals (
        run_id BIGINT NOT NULL REFERENCES runs (run_id),
        {", ".join(f'"{c}" {_deal_type(c, "TIMESTAMP", "BIGINT", "DOUBLE PRECISION")}'
                   for c in DEAL_COLUMNS)},
        PRIMARY KEY (run_id, deal_id))""",
    "CREATE INDEX IF NOT EXISTS deals_started ON deals (started)",
]
_PG_MARKS = ", ".join("%s" for _ in _SUMMARY_VALUES)
_PG_UPDATE = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in _SUMMARY_VALUES)
_PG_DEALS = (f"INSERT INTO deals (run_id, {_DEAL_NAMES}) VALUES "
             f"({', '.join('%s' for _ in range(1 + len(DEAL_COLUMNS)))}) ON CONFLICT "
             f"(run_id, deal_id) DO UPDATE SET "
             + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in DEAL_COLUMNS[1:]))
_PG_COPY = (f"COPY unit_states (unit_id, time, display, run_id, {', '.join(_STATE_COLUMNS)}) "
            "FROM STDIN (FORMAT csv)")
#: COPY text: run_id whole, rsoc and powers to 1e-6 (the CSV log has 1e-4 and 1e-3).
_PG_DECIMALS = np.array([0] + [6] * len(_STATE_COLUMNS), dtype=np.int64)


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise RecorderError("a postgresql:// dburl needs psycopg 3: install it with "
                            "pip install 'apis-emulator[postgres]' (or pip install "
                            "'psycopg[binary]')") from None
    return psycopg


#: [s] a reconnection attempt waits at most this for the server (libpq's connect_timeout).
RECONNECT_TIMEOUT = 3
#: libpq's TCP settings on every connection: a server that vanished without closing the
#: connection is noticed within about 25 s (keep-alives), and a write it does not
#: acknowledge fails after 15 s (tcp_user_timeout [ms]) instead of the kernel's 15 min.
_PG_TCP = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
           "keepalives_count": 3, "tcp_user_timeout": 15_000}


class PostgresSink(DatabaseSink):
    """A PostgreSQL database; unit states go in with ``COPY`` (fast), summaries with upserts.

    A lost connection (the server stopped or restarted) is a write fault: the batch is
    counted as not written, and the next attempt, after the bounded back-off of
    :mod:`.worker`, opens a new connection first (psycopg's ``Connection.broken`` says when
    the old one is gone).
    """

    kind = "postgresql"

    @property
    def where(self) -> str:
        """The URL without the password."""
        return self.shown

    def __init__(self, url: str, run: RunInfo, max_items: int = 256, block: bool = True,
                 connect_timeout: float = 10.0):
        psycopg = self._psycopg = _import_psycopg()
        shown = self.shown = hide_password(url)
        super().__init__(f"PostgreSQL database {shown}", run, max_items, block)
        self.write_faults = (OSError, psycopg.OperationalError)
        self._url = url
        self.reconnects = 0  # new connections after a lost one
        try:
            self._db = self._connect(connect_timeout)
            with self._db.transaction():
                for statement in _PG_SCHEMA:
                    self._db.execute(statement)
                self._add_missing_columns()
                cur = self._db.execute(
                    "INSERT INTO runs (started_at, mode, start_time, step_s, units, data_set) "
                    "VALUES (%s, %s, %s, %s, %s, %s) RETURNING run_id",
                    (run.started_at, run.mode, run.start_time, run.step_s, run.units,
                     run.data_set))
                row = cur.fetchone()
                self.run_id = int(row[0]) if row else 0
        except psycopg.Error as exc:
            raise RecorderError(f"cannot open the PostgreSQL database {shown}: "
                                f"{str(exc).strip()}") from None
        self._ids: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._cols: tuple[Any, ...] = ()
        self.start()

    def _connect(self, timeout: float) -> Any:
        return self._psycopg.connect(self._url, connect_timeout=max(1, int(timeout)),
                                     **_PG_TCP)

    def recover(self) -> None:
        """A new connection if the old one is lost (raises OperationalError while the
        server cannot be reached)."""
        if not (self._db.closed or self._db.broken):
            return
        try:
            self._db.close()
        except self._psycopg.Error:
            pass
        self._db = self._connect(RECONNECT_TIMEOUT)
        self.reconnects += 1
        log.warning("%s: connected again", self.name)

    def status(self) -> dict[str, Any]:
        """The worker's status and the reconnections made."""
        return {**super().status(), "reconnects": self.reconnects}

    def _add_missing_columns(self) -> None:
        """Summary columns added since the database was made (shared_in, shared_out, deals)."""
        for table in ("daily_summary", "run_totals"):
            have = {r[0] for r in self._db.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "AND table_schema = current_schema()", (table,))}
            for column in _SUMMARY_VALUES:
                if column not in have:
                    self._db.execute(
                        f'ALTER TABLE {table} ADD COLUMN "{column}" DOUBLE PRECISION')

    def _transaction(self, blocks: list[UnitsBlock], rows: list[DayRow],
                     deals: list[DealRecord]) -> None:
        with self._db.transaction():
            if blocks:
                with self._db.cursor().copy(_PG_COPY) as copy:
                    for block in blocks:
                        copy.write(self._copy_text(block))
            for row in rows:
                table, key_col, key = (("daily_summary", "day", row.day) if row.day is not None
                                       else ("run_totals", "kind", row.time))
                self._db.execute(
                    f"INSERT INTO {table} (run_id, {key_col}, {_SUMMARY_NAMES}) VALUES "
                    f"(%s, %s, {_PG_MARKS}) ON CONFLICT (run_id, {key_col}) DO UPDATE SET "
                    f"{_PG_UPDATE}", _summary_params(self.run_id, key, row))
            if deals:
                self._db.cursor().executemany(
                    _PG_DEALS, [_deal_params(self.run_id, d, iso=False) for d in deals])

    def _copy_text(self, block: UnitsBlock) -> bytes:
        if self._ids != (block.ids, block.displays):
            self._ids = (block.ids, block.displays)
            self._cols = (encode_column(block.ids), encode_column(block.displays))
        numbers = np.column_stack([np.full(len(block), float(self.run_id)), block.numbers])
        return format_rows(self._cols[0], encode_column([block.time.isoformat(sep=" ")]),
                           self._cols[1], numbers, _PG_DECIMALS)

    def finish(self) -> None:
        """Mark the run closed and close the connection."""
        try:
            with self._db.transaction():
                self._db.execute("UPDATE runs SET closed_at = %s WHERE run_id = %s",
                                 (dt.datetime.now(dt.UTC).replace(tzinfo=None),
                                  self.run_id))
        finally:
            self._db.close()


def hide_password(url: str) -> str:
    """``url`` with its password, if any, shown as ``***``."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def open_database(url: str, run: RunInfo, max_items: int = 256,
                  block: bool = True) -> DatabaseSink:
    """The database sink for ``url`` (sqlite or postgresql; http goes to :mod:`.httpsink`)."""
    kind, target = parse_dburl(url)
    if kind == "sqlite":
        return SQLiteSink(target, run, max_items, block)
    if kind == "postgresql":
        return PostgresSink(target, run, max_items, block)
    raise SettingsError("dburl", url, "a database URL (sqlite:/// or postgresql://) here")
