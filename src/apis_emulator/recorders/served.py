"""Recording of a served run: fed by the runner's schedule on the event loop, kept cheap.

The schedule (:class:`apis_emulator.runner.schedule.Schedule`) stops the stepping exactly at
each individual-log sample and each emulated midnight and calls :meth:`ServedRecording.sample`
and :meth:`ServedRecording.midnight`; finished deals of a built-in controller come to
:meth:`ServedRecording.deals`.  Each takes one snapshot (tens of microseconds for 100 units),
computes the day's row if one is due and hands immutable items to the sinks' threads — no file,
database or network I/O on the loop, and never a wait (a sink whose queue is full drops the
item, counts it and logs it).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..engine import Emulator, Snapshot
from ..engine.deals import DealRecord
from ..engine.units import Units
from .database import RunInfo
from .facade import RecorderPlan, Recorders, day_label
from .httpsink import frozen_documents
from .summary import DayRow
from .worker import RecorderError

__all__ = ["ServedRecording", "run_info"]

log = logging.getLogger(__name__)


def run_info(emulator: Emulator, mode: str) -> RunInfo:
    """What the database's ``runs`` row says of this run."""
    return RunInfo(mode=mode, start_time=emulator.start_time, step_s=emulator.dt,
                   units=len(emulator.units), data_set=emulator.dataset.name)


class ServedRecording:
    """The recorders of a served run (specification §7.1 flags and paths).

    Defaults (issue 6): summary CSV and individual CSV on, database off; paths
    ``data/output/summary.csv`` and ``data/output/indivLog.csv`` relative to the working
    directory; a sample every ``settings.indivLogInterval`` (60 emulated seconds served); with
    ``deals``, the deal log ``deals.csv`` beside the summary.  Earlier files at those paths are
    renamed aside (``summary.<time>.csv``), not overwritten.

    Parameters
    ----------
    emulator : Emulator
        The served emulator (read on the event loop only).
    settings : Settings
        After ``Settings.with_defaults_for("serve")``.
    plan : RecorderPlan, optional
        Instead of the one made from ``settings``.
    deals : bool
        A built-in controller makes deals: log them.
    """

    def __init__(self, emulator: Emulator, settings: Any, plan: RecorderPlan | None = None,
                 deals: bool = False):
        self.emulator = emulator
        plan = plan or RecorderPlan.served(settings)
        if deals and plan.deals_csv is None:
            folder = plan.summary_csv.parent if plan.summary_csv else Path("data/output")
            plan = dataclasses.replace(plan, deals_csv=folder / "deals.csv")
        self.plan = plan
        self.recorders = Recorders(plan, emulator.snapshot(), run_info(emulator, "serve"),
                                   tolerate_errors=True)
        self.closing: list[DayRow] = []
        self._closed = False
        self._shares_deals = deals
        emulator.on_units_replaced(self._replaced)
        for name, where in self.recorders.files.items():
            log.info("recording %s to %s", name, where)

    @property
    def files(self) -> dict[str, Any]:
        """Output name → file, directory or address."""
        return self.recorders.files

    @property
    def sample_every(self) -> float | None:
        """Emulated seconds between two individual-log samples (None: no samples)."""
        return self.plan.indiv_interval if self.plan.samples_units else None

    # ------------------------------------------------------------------ on the event loop
    def sample(self, em: Emulator) -> None:
        """An individual-log sample of the units now."""
        if not self._closed:
            docs = frozen_documents(em) if self.recorders.wants_documents else None
            self._guard(lambda: self.recorders.log_units(em.snapshot(), docs))

    def midnight(self, em: Emulator, shared: Mapping[str, float]) -> None:
        """The summary row of the day that just ended (with a controller's shared totals)."""
        if not self._closed:
            label = day_label(em.now)
            totals = shared if self._shares_deals else None
            self._guard(lambda: self.recorders.end_day(em.snapshot(), label, totals))

    def deals(self, records: Sequence[DealRecord]) -> None:
        """Finished deals to the deal log (and the database)."""
        if not self._closed:
            self._guard(lambda: self.recorders.log_deals(records))

    def _guard(self, action: Any) -> None:
        try:
            action()
        except RecorderError as exc:  # only when a sink failed in a way it could not absorb
            log.error("recording: %s", exc)

    def _replaced(self, old: Units, reason: str) -> None:
        """Reset, load, add or remove: the summary goes on from the units as they were."""
        if self._closed:
            return
        now = self.emulator.snapshot()
        before = dataclasses.replace(now, ids=tuple(old.ids), displays=tuple(old.ids),
                                     energy=old.energy.copy(), capacity=old.capacity.copy(),
                                     ledger=old.ledger.copy())
        self._guard(lambda: self.recorders.rebase(before, now))

    def status(self) -> dict[str, dict[str, Any]]:
        """Per sink: items and rows written, rows not written (a full queue or a write
        fault), write faults met and the one in force; a sink left out after an error only
        says its error."""
        found = {name: {"error": error} for name, error in self.recorders.failed.items()}
        return {**found, **self.recorders.status()}

    def stats(self) -> dict[str, float | None]:
        """Totals since the start in the summary's columns, the day in progress included."""
        return self.recorders.stats(self.emulator.snapshot())

    # ------------------------------------------------------------------ at shutdown
    def close(self, shared: Mapping[str, float] | None = None) -> None:
        """Write the partial day and the ``sum``/``avg`` rows, flush, fsync and close every
        sink; idempotent.  Blocks until written: call it at shutdown, after the stepping task
        has stopped (``await asyncio.to_thread(recording.close)`` keeps the loop free)."""
        if self._closed:
            return
        self._closed = True
        snap: Snapshot = self.emulator.snapshot()
        self.closing = self.recorders.close(snap, shared if self._shares_deals else None)
        log.info("recording closed: %s", ", ".join(f"{k} {v}" for k, v in self.files.items()))
