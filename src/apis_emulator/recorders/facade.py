"""One facade over every sink of a run: what the headless loop and the served runner call.

:class:`RecorderPlan` says which outputs a run writes and where (from the §7.1 settings when
served, from ``--out DIR`` headless); :class:`Recorders` opens them and is fed with engine
snapshots: :meth:`Recorders.log_units` at each individual-log interval, :meth:`Recorders.end_day`
at each emulated midnight, :meth:`Recorders.close` at the end (the partial day, the ``sum`` and
``avg`` rows, then flush, sync and close of every sink).  Each sink writes from a thread of its
own behind a bounded queue; the caller only computes the day's row (a few microseconds per
unit) and hands immutable items over.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine import Snapshot
from ..errors import SettingsError
from .database import DatabaseSink, RunInfo, hide_password, open_database, parse_dburl
from .httpsink import HttpSink, UnitDocuments
from .indivlog import IndividualCSV, UnitsBlock
from .parquetlog import IndividualParquet
from .summary import DailySummary, DayRow, SummaryCSV
from .worker import RecorderError, SinkWorker

__all__ = ["RecorderPlan", "Recorders", "day_label", "HEADLESS_FILES"]

log = logging.getLogger(__name__)

#: File names inside ``simulate --out DIR``.
HEADLESS_FILES = {"summary": "summary.csv", "indivLog.csv": "indivLog.csv",
                  "indivLog.parquet": "indivLog.parquet", "database": "apis-emulator.sqlite"}
INDIV_FORMATS = ("csv", "parquet")


def day_label(when: dt.datetime) -> str:
    """The summary label of the day that ends at (or runs through) ``when``: ``2019/01/31``."""
    return (when - dt.timedelta(seconds=1)).strftime("%Y/%m/%d")


@dataclass(frozen=True)
class RecorderPlan:
    """Which outputs a run writes, and where; None switches an output off.

    ``indiv_log`` ending in ``.parquet`` is a directory of Parquet parts, else a CSV file.
    ``indiv_interval`` [s] of emulated time between two individual-log (and database, HTTP)
    samples.  ``blocking``: a full queue makes the producer wait (headless, nothing lost) or
    drops the item with a count and a log line (served: the event loop never waits).
    ``keep_previous``: files of an earlier run at the same paths are renamed aside (served)
    instead of being replaced (headless: ``--out DIR`` is the run).
    """

    mode: str = "simulate"
    summary_csv: Path | None = None
    indiv_log: Path | None = None
    indiv_interval: float | None = None
    dburl: str | None = None
    blocking: bool = True
    keep_previous: bool = False
    queue_items: int = 4096  # blocks; served writers drop (and count) only beyond this
    parquet_rows_per_file: int = 1_000_000
    parquet_part_seconds: float = 60.0
    http_timeout: float = 3.0
    http_retries: int = 2
    http_queue: int = 8

    def __post_init__(self) -> None:
        if self.dburl is not None:
            parse_dburl(self.dburl)  # a wrong URL fails at the start, naming dburl
        if self.indiv_interval is not None and not self.indiv_interval > 0:
            raise SettingsError("indivLogInterval", self.indiv_interval, "a number of s > 0")

    @property
    def samples_units(self) -> bool:
        """Whether anything wants the per-unit samples."""
        return bool(self.indiv_interval) and (self.indiv_log is not None or
                                              self.dburl is not None)

    @classmethod
    def served(cls, settings: Any, **overrides: Any) -> RecorderPlan:
        """From the §7.1 settings: saveToSummaryToCSV → summaryPath, saveIndividualToCSV →
        indivLogPath, saveIndividualToDB → dburl; interval settings.indivLogInterval (60 s)."""
        values: dict[str, Any] = dict(
            mode="serve",
            summary_csv=Path(settings.summaryPath) if settings.saveToSummaryToCSV else None,
            indiv_log=Path(settings.indivLogPath) if settings.saveIndividualToCSV else None,
            indiv_interval=float(settings.indivLogInterval or 60.0),
            dburl=settings.dburl if settings.saveIndividualToDB else None,
            blocking=False, keep_previous=True)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def headless(cls, out_dir: str | os.PathLike[str], summary: bool = True,
                 indiv_interval: float | None = 900.0, indiv_format: str = "csv",
                 database: bool | str | None = True, **overrides: Any) -> RecorderPlan:
        """Everything into ``out_dir``: summary.csv, indivLog.csv (or indivLog.parquet/) and
        apis-emulator.sqlite; ``database`` may instead be a dburl (postgresql://, http://)."""
        if indiv_format not in INDIV_FORMATS:
            raise SettingsError("indiv_format", indiv_format, f"one of {', '.join(INDIV_FORMATS)}")
        out = Path(out_dir)
        dburl = None
        if isinstance(database, str):
            dburl = database
        elif database:
            dburl = "sqlite:///" + str(out / HEADLESS_FILES["database"])
        values: dict[str, Any] = dict(
            mode="simulate", summary_csv=out / HEADLESS_FILES["summary"] if summary else None,
            indiv_log=(out / HEADLESS_FILES[f"indivLog.{indiv_format}"]) if indiv_interval
            else None,
            indiv_interval=indiv_interval or None, dburl=dburl, blocking=True)
        values.update(overrides)
        return cls(**values)


def _set_aside(path: Path) -> None:
    """Rename an earlier run's non-empty file (or directory) at ``path`` to
    ``<stem>.<its modification time><suffix>`` so that a new run does not overwrite it."""
    try:
        if not path.exists() or (path.is_file() and path.stat().st_size == 0):
            return
        stamp = dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y%m%d-%H%M%S")
        target = path.with_name(f"{path.stem}.{stamp}{path.suffix}")
        n = 1
        while target.exists():
            target = path.with_name(f"{path.stem}.{stamp}-{n}{path.suffix}")
            n += 1
        path.rename(target)
        log.info("kept the previous %s as %s", path, target)
    except OSError as exc:
        raise RecorderError(f"cannot set the previous {path} aside: {exc.strerror}") from None


class Recorders:
    """Every sink of one run, fed with snapshots.

    Parameters
    ----------
    plan : RecorderPlan
        What to write where.
    first : Snapshot
        The state at the start (the summary's baseline).
    run : RunInfo
        What the database's ``runs`` row says.
    tolerate_errors : bool
        True (served): a sink that fails is logged once, closed and left out; the others go
        on.  False (headless): the error is raised to the caller.
    """

    def __init__(self, plan: RecorderPlan, first: Snapshot, run: RunInfo,
                 tolerate_errors: bool = False):
        self.plan = plan
        self.tolerate_errors = tolerate_errors
        self.summary = DailySummary(first)
        self.closing: list[DayRow] = []
        self.summary_csv: SummaryCSV | None = None
        self.indiv: IndividualCSV | IndividualParquet | None = None
        self.database: DatabaseSink | None = None
        self.http: HttpSink | None = None
        self.failed: dict[str, str] = {}  # sink name → error, for sinks left out
        self._closed = False
        try:
            self._open(plan, run)
        except BaseException:
            self._close_sinks(quiet=True)
            raise

    def _open(self, plan: RecorderPlan, run: RunInfo) -> None:
        block, items = plan.blocking, plan.queue_items
        if plan.keep_previous:
            for path in (plan.summary_csv, plan.indiv_log):
                if path is not None:
                    _set_aside(path)
        if plan.summary_csv is not None:
            self.summary_csv = SummaryCSV(plan.summary_csv, block=block)
        if plan.indiv_log is not None and plan.indiv_interval:
            if plan.indiv_log.suffix == ".parquet":
                self.indiv = IndividualParquet(
                    plan.indiv_log, rows_per_file=plan.parquet_rows_per_file,
                    part_seconds=plan.parquet_part_seconds, max_items=items, block=block)
            else:
                self.indiv = IndividualCSV(plan.indiv_log, max_items=items, block=block)
        if plan.dburl is not None and plan.indiv_interval:
            kind, target = parse_dburl(plan.dburl)
            if kind == "http":
                self.http = HttpSink(target, timeout=plan.http_timeout,
                                     retries=plan.http_retries, max_items=plan.http_queue)
            else:
                self.database = open_database(plan.dburl, run, max_items=items, block=block)

    # ------------------------------------------------------------------ views
    @property
    def sinks(self) -> list[SinkWorker]:
        return [s for s in (self.summary_csv, self.indiv, self.database, self.http)
                if s is not None]

    @property
    def wants_documents(self) -> bool:
        """Whether :meth:`log_units` wants the units' documents (an HTTP sink is open)."""
        return self.http is not None

    @property
    def files(self) -> dict[str, Path | str]:
        """What is written where: summary, indivLog, database (a path or a URL)."""
        found: dict[str, Path | str] = {}
        if self.summary_csv is not None:
            found["summary"] = self.summary_csv.path
        if self.indiv is not None:
            found["indivLog"] = self.indiv.path
        if self.database is not None:
            found["database"] = getattr(self.database, "path", None) or hide_password(
                str(self.plan.dburl))
        if self.http is not None:
            found["http"] = self.http.url
        return found

    def status(self) -> dict[str, dict[str, Any]]:
        """Per sink: items written, dropped, queue high-water mark, error."""
        return {s.name: {"written": s.written, "dropped": s.dropped, "high_water": s.high_water,
                         "error": None if s.error is None else str(s.error)}
                for s in self.sinks}

    def stats(self, snap: Snapshot) -> dict[str, float | None]:
        """Totals since the start, the day in progress included (summary columns)."""
        return self.summary.so_far(snap)

    # ------------------------------------------------------------------ feeding
    def log_units(self, snap: Snapshot, documents: UnitDocuments | None = None) -> None:
        """One individual-log sample: the per-unit rows to the log, the database and (with
        ``documents``, see :func:`~.httpsink.frozen_documents`) the HTTP sink."""
        block = UnitsBlock.of(snap)
        if self.indiv is not None:
            self._feed(self.indiv, self.indiv.write, block)
        if self.database is not None:
            self._feed(self.database, self.database.write_units, block)
        if self.http is not None and documents is not None:
            self._feed(self.http, self.http.write, documents)

    def end_day(self, snap: Snapshot, label: str | None = None) -> DayRow:
        """The summary row of the day that ends at ``snap`` (label: see :func:`day_label`)."""
        row = self.summary.day_row(snap, label or day_label(snap.time))
        self._write_rows([row])
        return row

    def rebase(self, before: Snapshot, after: Snapshot) -> None:
        """The units were replaced between two snapshots (see :meth:`DailySummary.rebase`)."""
        self.summary.rebase(before, after)

    def _write_rows(self, rows: list[DayRow]) -> None:
        if self.summary_csv is not None:
            self._feed(self.summary_csv, self.summary_csv.write, rows)
        if self.database is not None:
            self._feed(self.database, self.database.write_days, rows)

    def _feed(self, sink: SinkWorker, method: Any, item: Any) -> None:
        try:
            method(item)
        except RecorderError as exc:
            if not self.tolerate_errors:
                raise
            self._leave_out(sink, exc)

    def _leave_out(self, sink: SinkWorker, exc: BaseException) -> None:
        log.error("%s stopped recording: %s", sink.name, exc)
        self.failed[sink.name] = str(exc)
        for attr in ("summary_csv", "indiv", "database", "http"):
            if getattr(self, attr) is sink:
                setattr(self, attr, None)
        try:
            sink.close()
        except Exception:  # already reported
            pass

    # ------------------------------------------------------------------ closing
    def close(self, snap: Snapshot | None = None) -> list[DayRow]:
        """Write the partial day (if ``snap`` is past the last day row) and the ``sum`` and
        ``avg`` rows, then flush, sync and close every sink; idempotent.  Returns the closing
        rows.  Errors of the sinks are raised after all of them are closed."""
        if self._closed:
            return self.closing
        self._closed = True
        for sink in self.sinks:
            sink.block = True  # the closing rows wait for room rather than being dropped
        error: BaseException | None = None
        try:
            if snap is not None and snap.step != self.summary.last_step:
                self.end_day(snap)
            self.closing = self.summary.closing_rows()
            if self.closing:
                self._write_rows(self.closing)
        except BaseException as exc:
            error = exc
        close_error = self._close_sinks(quiet=False)
        if error is not None:
            raise error
        if close_error is not None and not self.tolerate_errors:
            raise close_error
        return self.closing

    def _close_sinks(self, quiet: bool) -> BaseException | None:
        first: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.close()
            except BaseException as exc:
                if not quiet:
                    log.error("closing %s failed: %s", sink.name, exc)
                first = first or exc
        return first
