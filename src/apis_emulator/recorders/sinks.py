"""The outputs of a run as a list of sinks: what a sink offers, and where sinks are chosen.

:class:`Sink` is all :class:`~.facade.Recorders` knows of an output.  :data:`SINK_OPENERS` is
the one place that maps a :class:`~.plan.RecorderPlan` to sinks: each opener returns its sink
for the plan, or None.  A new output is one class (a :class:`~.worker.SinkWorker` subclass
that overrides what it takes: ``log_units``, ``log_rows``) and one opener in that table.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..engine.deals import DealRecord
from .database import RunInfo, open_database, parse_dburl
from .deals import DealsCSV
from .httpsink import HttpSink, UnitDocuments
from .indivlog import IndividualCSV, UnitsBlock
from .parquetlog import IndividualParquet
from .plan import RecorderPlan
from .summary import DayRow, SummaryCSV
from .worker import RecorderError

__all__ = ["Sink", "SinkOpener", "SINK_OPENERS", "open_sinks"]

log = logging.getLogger(__name__)


class Sink(Protocol):
    """One output of a run, fed by :class:`~.facade.Recorders` with immutable items."""

    name: str  # shown in log lines and as the key of status()
    output: str  # its key in Recorders.files: summary, indivLog, database, http
    block: bool  # a full queue waits (True) or drops and counts (False)
    wants_documents: bool  # log_units wants the units' documents (costs a copy)

    @property
    def where(self) -> Path | str:
        """The file, directory or address written to (no password)."""
        ...

    def log_units(self, block: UnitsBlock, documents: UnitDocuments | None) -> None:
        """One individual-log sample (documents only if some sink wants them)."""
        ...

    def log_rows(self, rows: Sequence[DayRow]) -> None:
        """Summary rows: a day's, or the closing ``sum`` and ``avg``."""
        ...

    def log_deals(self, records: Sequence[DealRecord]) -> None:
        """Finished deals of a built-in controller."""
        ...

    def close(self) -> None:
        """Write what is queued, flush, sync and close; raises the sink's error."""
        ...

    def status(self) -> dict[str, Any]:
        """Items written, dropped, queue high-water mark, error."""
        ...


SinkOpener = Callable[[RecorderPlan, RunInfo], Sink | None]


def _summary_csv(plan: RecorderPlan, run: RunInfo) -> Sink | None:
    if plan.summary_csv is None:
        return None
    return SummaryCSV(plan.summary_csv, block=plan.blocking)


def _deals_csv(plan: RecorderPlan, run: RunInfo) -> Sink | None:
    if plan.deals_csv is None:
        return None
    return DealsCSV(plan.deals_csv, block=plan.blocking)


def _individual_log(plan: RecorderPlan, run: RunInfo) -> Sink | None:
    if plan.indiv_log is None or not plan.indiv_interval:
        return None
    max_items, gather = plan.indiv_queue(run.units)
    if plan.indiv_log.suffix == ".parquet":
        return IndividualParquet(plan.indiv_log, rows_per_file=plan.parquet_rows_per_file,
                                 part_seconds=plan.parquet_part_seconds,
                                 max_items=max_items, block=plan.blocking, gather=gather)
    return IndividualCSV(plan.indiv_log, max_items=max_items, block=plan.blocking,
                         gather=gather)


def _dburl_kind(plan: RecorderPlan) -> str | None:
    """sqlite, postgresql or http for a sampling plan with a dburl; None otherwise."""
    if plan.dburl is None or not plan.indiv_interval:
        return None
    return parse_dburl(plan.dburl)[0]


def _database(plan: RecorderPlan, run: RunInfo) -> Sink | None:
    if _dburl_kind(plan) not in ("sqlite", "postgresql"):
        return None
    assert plan.dburl is not None  # checked by _dburl_kind
    return open_database(plan.dburl, run, max_items=plan.queue_items, block=plan.blocking)


def _http_post(plan: RecorderPlan, run: RunInfo) -> Sink | None:
    if _dburl_kind(plan) != "http":
        return None
    assert plan.dburl is not None  # checked by _dburl_kind
    return HttpSink(parse_dburl(plan.dburl)[1], timeout=plan.http_timeout,
                    retries=plan.http_retries, max_items=plan.http_queue)


#: Where sinks are chosen, in the order they open and are fed.
SINK_OPENERS: tuple[SinkOpener, ...] = (_summary_csv, _deals_csv, _individual_log, _database,
                                        _http_post)


def open_sinks(plan: RecorderPlan, run: RunInfo,
               openers: Sequence[SinkOpener] | None = None) -> list[Sink]:
    """The plan's sinks (from ``openers``, default :data:`SINK_OPENERS`), opened; if one
    fails to open, those already open are closed."""
    if plan.keep_previous:
        for path in (plan.summary_csv, plan.indiv_log, plan.deals_csv):
            if path is not None:
                _set_aside(path)
    opened: list[Sink] = []
    try:
        for opener in SINK_OPENERS if openers is None else openers:
            sink = opener(plan, run)
            if sink is not None:
                opened.append(sink)
    except BaseException:
        close_sinks(opened, quiet=True)
        raise
    return opened


def close_sinks(sinks: Sequence[Sink], quiet: bool) -> BaseException | None:
    """Close every sink, even after one fails; the first error (logged unless ``quiet``)."""
    first: BaseException | None = None
    for sink in sinks:
        try:
            sink.close()
        except BaseException as exc:
            if not quiet:
                log.error("closing %s failed: %s", sink.name, exc)
            first = first or exc
    return first


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
