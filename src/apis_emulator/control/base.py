"""The control seam: what a controller sees and what it may do.

A controller sees a :class:`ControlView` (a read-only snapshot of the units and the emulated
time) and answers with converter commands; the runner's schedule wakes it when it asks to be
woken (:meth:`Controller.plan`) or when a battery leaves the band it watches.  It does no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..engine import ConverterCommand, Snapshot

__all__ = ["ControlView", "Plan", "Controller", "DealRecord", "DEAL_COLUMNS", "END_REASONS",
           "TIME_FORMAT"]

#: Times in deal logs, as in the individual log.
TIME_FORMAT = "%Y/%m/%d-%H:%M:%S"
#: Columns of deals.csv and of the ``deals`` table, in order.
DEAL_COLUMNS = ("deal_id", "created", "activated", "started", "ended", "request_unit", "type",
                "charge_unit", "discharge_unit", "request_wh", "accept_wh", "deal_wh",
                "cumulated_wh", "end_reason")
#: Why a deal ended: its amount was delivered, it was stopped or refused, or the run ended.
END_REASONS = ("amount", "force_stop", "ramp_timeout", "direction", "capacity", "run_end")


@dataclass(frozen=True)
class ControlView:
    """What a controller sees: the units (read-only) at ``elapsed`` [s] since the start."""

    snapshot: Snapshot
    elapsed: float  # emulated time since the start of the run [s]
    start: dt.datetime  # emulated time at elapsed 0

    @property
    def time(self) -> dt.datetime:
        """Emulated date and time."""
        return self.snapshot.time


@dataclass(frozen=True)
class Plan:
    """When to wake the controller next [s since the start; inf = only on a band], and the
    battery band per unit (the engine's watch table, see engine.kernel.run_steps) or None."""

    wake: float
    watch: np.ndarray | None = None


@dataclass(frozen=True)
class DealRecord:
    """One finished deal, as deals.csv writes it (times as text, energies [Wh])."""

    deal_id: str
    created: str
    activated: str
    started: str
    ended: str
    request_unit: str
    type: str
    charge_unit: str
    discharge_unit: str
    request_wh: int
    accept_wh: int
    deal_wh: int
    cumulated_wh: float
    end_reason: str

    def row(self) -> tuple[Any, ...]:
        """The values in DEAL_COLUMNS order."""
        return tuple(getattr(self, name) for name in DEAL_COLUMNS)


class Controller(Protocol):
    """A controller of the converters (the built-in apis-main rules are one)."""

    name: str

    def plan(self, view: ControlView) -> Plan:
        """When the controller must run next, and which battery bands to watch till then."""
        ...

    def wake(self, view: ControlView) -> Sequence[ConverterCommand]:
        """Run what is due at ``view.elapsed``; the commands to give the converters."""
        ...

    def settled(self, view: ControlView) -> None:
        """The commands of the last wake are applied: ``view`` shows the new converters."""
        ...

    def units_replaced(self, reason: str, old_ids: Sequence[str]) -> None:
        """Reset, load, add or remove replaced the units (``reason``); ``old_ids`` were there."""
        ...

    def take_day(self, view: ControlView) -> dict[str, float]:
        """Energies shared [Wh] and deals since the last call, for the daily summary."""
        ...

    def take_finished(self) -> list[DealRecord]:
        """The deals finished since the last call."""
        ...

    def close(self, view: ControlView) -> list[DealRecord]:
        """End every deal (``run_end``) and return them with the other unreported ones."""
        ...

    def status(self, view: ControlView) -> dict[str, Any]:
        """A JSON-able description of what the controller is doing (for /get/deals)."""
        ...
