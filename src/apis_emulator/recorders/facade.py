"""One facade over every sink of a run: what the headless loop and the served runner call.

:class:`~.plan.RecorderPlan` says which outputs a run writes and where;
:class:`Recorders` opens them (:func:`~.sinks.open_sinks`) as a list of
:class:`~.sinks.Sink` and feeds them with engine snapshots: :meth:`Recorders.log_units` at each
individual-log interval, :meth:`Recorders.end_day` at each emulated midnight,
:meth:`Recorders.close` at the end (the partial day, the ``sum`` and ``avg`` rows, then flush,
sync and close of every sink).  Each sink writes from a thread of its own behind a bounded
queue; the caller only computes the day's row (a few microseconds per unit) and hands
immutable items over.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..engine import Sample, Snapshot
from ..engine.deals import DealRecord
from .database import RunInfo
from .httpsink import UnitDocuments
from .indivlog import UnitsBlock
from .plan import HEADLESS_FILES, RecorderPlan
from .sinks import Sink, close_sinks, open_sinks
from .summary import DailySummary, DayRow
from .worker import RecorderError, SinkWorker

__all__ = ["RecorderPlan", "Recorders", "day_label", "HEADLESS_FILES"]

log = logging.getLogger(__name__)


def day_label(when: dt.datetime) -> str:
    """The summary label of the day that ends at (or runs through) ``when``: ``2019/01/31``."""
    return (when - dt.timedelta(seconds=1)).strftime("%Y/%m/%d")


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
        self.failed: dict[str, str] = {}  # sink name → error, for sinks left out
        self._closed = False
        self.sinks: list[Sink] = open_sinks(plan, run)

    # ------------------------------------------------------------------ views
    def _find(self, output: str) -> SinkWorker | None:
        found = (s for s in self.sinks if s.output == output and isinstance(s, SinkWorker))
        return next(found, None)

    @property
    def summary_csv(self) -> SinkWorker | None:
        """The open summary sink, if any."""
        return self._find("summary")

    @property
    def indiv(self) -> SinkWorker | None:
        """The open individual-log sink (CSV or Parquet), if any."""
        return self._find("indivLog")

    @property
    def database(self) -> SinkWorker | None:
        """The open database sink (SQLite or PostgreSQL), if any."""
        return self._find("database")

    @property
    def http(self) -> SinkWorker | None:
        """The open HTTP sink, if any."""
        return self._find("http")

    @property
    def wants_documents(self) -> bool:
        """Whether :meth:`log_units` wants the units' documents (an HTTP sink is open)."""
        return any(s.wants_documents for s in self.sinks)

    @property
    def files(self) -> dict[str, Path | str]:
        """What is written where: summary, indivLog, database (a path or a URL), http."""
        return {s.output: s.where for s in self.sinks}

    def status(self) -> dict[str, dict[str, Any]]:
        """Per sink: items written, dropped, queue high-water mark, error."""
        return {s.name: s.status() for s in self.sinks}

    def stats(self, snap: Snapshot) -> dict[str, float | None]:
        """Totals since the start, the day in progress included (summary columns)."""
        return self.summary.so_far(snap)

    # ------------------------------------------------------------------ feeding
    def log_units(self, snap: Sample, documents: UnitDocuments | None = None) -> None:
        """One individual-log sample: the per-unit rows to the log, the database and (with
        ``documents``, see :func:`~.httpsink.frozen_documents`) the HTTP sink."""
        block = UnitsBlock.of(snap)
        for sink in list(self.sinks):
            self._feed(sink, lambda s: s.log_units(block, documents))

    def end_day(self, snap: Snapshot, label: str | None = None,
                shared: Mapping[str, float] | None = None) -> DayRow:
        """The summary row of the day that ends at ``snap`` (label: see :func:`day_label`);
        ``shared``: a controller's totals of the day."""
        row = self.summary.day_row(snap, label or day_label(snap.time), shared)
        self._write_rows([row])
        return row

    def log_deals(self, records: Sequence[DealRecord]) -> None:
        """Finished deals to the deal log and the database."""
        for sink in list(self.sinks):
            self._feed(sink, lambda s: s.log_deals(records))

    def rebase(self, before: Snapshot, after: Snapshot) -> None:
        """The units were replaced between two snapshots (see :meth:`DailySummary.rebase`)."""
        self.summary.rebase(before, after)

    def _write_rows(self, rows: list[DayRow]) -> None:
        for sink in list(self.sinks):
            self._feed(sink, lambda s: s.log_rows(rows))

    def _feed(self, sink: Sink, action: Callable[[Sink], None]) -> None:
        """``action(sink)``; a sink's error is raised (headless) or leaves it out (served)."""
        try:
            action(sink)
        except RecorderError as exc:
            if not self.tolerate_errors:
                raise
            self._leave_out(sink, exc)

    def _leave_out(self, sink: Sink, exc: BaseException) -> None:
        log.error("%s stopped recording: %s", sink.name, exc)
        self.failed[sink.name] = str(exc)
        self.sinks.remove(sink)
        try:
            sink.close()
        except Exception:  # already reported
            pass

    # ------------------------------------------------------------------ closing
    def close(self, snap: Snapshot | None = None,
              shared: Mapping[str, float] | None = None) -> list[DayRow]:
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
                self.end_day(snap, shared=shared)
            self.closing = self.summary.closing_rows()
            if self.closing:
                self._write_rows(self.closing)
        except BaseException as exc:
            error = exc
        close_error = close_sinks(self.sinks, quiet=False)
        if error is not None:
            raise error
        if close_error is not None and not self.tolerate_errors:
            raise close_error
        return self.closing
