"""Recording of a served run: called by the real-time runner on the event loop, kept cheap.

:meth:`ServedRecording.on_tick` runs after every tick.  Most ticks it compares two numbers and
returns; at an individual-log interval or an emulated midnight it takes one snapshot (tens of
microseconds for 100 units), computes the day's row if one is due and hands immutable items to
the sinks' threads — no file, database or network I/O on the loop, and never a wait (a sink
whose queue is full drops the item, counts it and logs it).

The runner advances whole ticks, so a sample is taken at the end of the tick that reaches the
interval or midnight: at acceleration × sleeptime emulated seconds per tick, the row shows the
state a little after the exact moment.  A runner that wants exact boundaries caps each tick at
:meth:`ServedRecording.steps_until_due` steps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from typing import Any

from ..engine import Emulator, Snapshot
from .database import RunInfo
from .facade import RecorderPlan, Recorders
from .httpsink import frozen_documents
from .summary import DayRow
from .worker import RecorderError

__all__ = ["ServedRecording", "next_midnight"]

log = logging.getLogger(__name__)


def next_midnight(when: dt.datetime) -> dt.datetime:
    """The first midnight strictly after ``when``."""
    return dt.datetime.combine(when.date() + dt.timedelta(days=1), dt.time())


def run_info(emulator: Emulator, mode: str) -> RunInfo:
    return RunInfo(mode=mode, start_time=emulator.start_time, step_s=emulator.dt,
                   units=len(emulator.units), data_set=emulator.dataset.name)


class ServedRecording:
    """The recorders of a served run (specification §7.1 flags and paths).

    Defaults (issue 6): summary CSV and individual CSV on, database off; paths
    ``data/output/summary.csv`` and ``data/output/indivLog.csv`` relative to the working
    directory; a sample every ``settings.indivLogInterval`` (60 emulated seconds served).
    Earlier files at those paths are renamed aside (``summary.<time>.csv``), not overwritten.

    Parameters
    ----------
    emulator : Emulator
        The served emulator (read on the event loop only).
    settings : Settings
        After ``Settings.with_defaults_for("serve")``.
    plan : RecorderPlan, optional
        Instead of the one made from ``settings``.
    """

    def __init__(self, emulator: Emulator, settings: Any, plan: RecorderPlan | None = None):
        self.emulator = emulator
        self.plan = plan or RecorderPlan.served(settings)
        first = emulator.snapshot()
        self.recorders = Recorders(self.plan, first, run_info(emulator, "serve"),
                                   tolerate_errors=True)
        self._interval = self.plan.indiv_interval if self.plan.samples_units else None
        self._next_log = self._after(emulator.emulated_s)
        self._next_day = next_midnight(emulator.now)
        self._units_seen = emulator.units
        self.closing: list[DayRow] = []
        self._closed = False
        for name, where in self.recorders.files.items():
            log.info("recording %s to %s", name, where)

    def _after(self, elapsed: float) -> float:
        """The first individual-log time [s since the start] strictly after ``elapsed``."""
        if not self._interval:
            return math.inf
        return (math.floor(elapsed / self._interval + 1e-9) + 1) * self._interval

    @property
    def files(self) -> dict[str, Any]:
        return self.recorders.files

    # ------------------------------------------------------------------ on the event loop
    def on_tick(self, emulator: Emulator | None = None) -> None:
        """After each tick of the runner: sample what is due.  Cheap; never raises for a
        sink's failure (the sink is logged and left out)."""
        if self._closed:
            return
        em = emulator or self.emulator
        changed = em.units is not self._units_seen
        due_log = em.emulated_s >= self._next_log - 1e-9
        due_day = em.now >= self._next_day
        if not (changed or due_log or due_day):
            return
        snap = em.snapshot()
        try:
            if changed:  # reset, load, add or remove since the last tick
                self.recorders.rebase(self._replaced(snap), snap)
                self._units_seen = em.units
            if due_day:
                self._end_days(snap)
            if due_log:
                docs = frozen_documents(em) if self.recorders.wants_documents else None
                self.recorders.log_units(snap, docs)
                self._next_log = self._after(em.emulated_s)
        except RecorderError as exc:  # only when a sink failed in a way it could not absorb
            log.error("recording: %s", exc)

    def _replaced(self, now: Snapshot) -> Snapshot:
        """The units the emulator replaced, as they were when replaced: the engine swaps in a
        new container on reset, load, add and remove and never steps the old one again."""
        old = self._units_seen
        return dataclasses.replace(now, ids=tuple(old.ids), displays=tuple(old.ids),
                                   energy=old.energy, capacity=old.capacity, ledger=old.ledger)

    def _end_days(self, snap: Snapshot) -> None:
        days = (snap.time.date() - self._next_day.date()).days + 1
        if days > 1:
            log.warning("one tick ran through %d midnights: their energies go into one summary "
                        "row (acceleration × sleeptime is more than a day)", days)
        self.recorders.end_day(snap, (self._next_day - dt.timedelta(days=1)).strftime(
            "%Y/%m/%d"))
        self._next_day = next_midnight(snap.time)

    def steps_until_due(self, emulator: Emulator | None = None) -> int:
        """Steps until the next sample or midnight (at least 1): a runner that advances at
        most this many steps before calling :meth:`on_tick` gets exact boundaries."""
        em = emulator or self.emulator
        seconds = min(self._next_log - em.emulated_s,
                      (self._next_day - em.now).total_seconds())
        return max(1, math.ceil(seconds / em.dt - 1e-9))

    def stats(self) -> dict[str, float | None]:
        """Totals since the start in the summary's columns, the day in progress included."""
        return self.recorders.stats(self.emulator.snapshot())

    def status(self) -> dict[str, Any]:
        return {"files": {k: str(v) for k, v in self.files.items()},
                "sinks": self.recorders.status(), "failed": dict(self.recorders.failed)}

    # ------------------------------------------------------------------ at shutdown
    def close(self) -> None:
        """Write the partial day and the ``sum``/``avg`` rows, flush, fsync and close every
        sink; idempotent.  Blocks until written: call it at shutdown, after the stepping task
        has stopped (``await asyncio.to_thread(recording.close)`` keeps the loop free)."""
        if self._closed:
            return
        self._closed = True
        em = self.emulator
        snap = em.snapshot()
        if em.units is not self._units_seen:
            self.recorders.rebase(self._replaced(snap), snap)
        self.closing = self.recorders.close(snap)
        log.info("recording closed: %s", ", ".join(f"{k} {v}" for k, v in self.files.items()))
