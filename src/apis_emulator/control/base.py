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
from ..engine.deals import DEAL_COLUMNS, END_REASONS, TIME_FORMAT, DealRecord

__all__ = ["ControlView", "Plan", "Controller", "DealRecord", "DEAL_COLUMNS", "END_REASONS",
           "TIME_FORMAT"]

@dataclass(frozen=True)
class ControlView:
    """What a controller sees: the units (read-only) at ``elapsed`` [s] since the start."""

    snapshot: Snapshot
    elapsed: float  # emulated time since the start of the run [s]
    start: dt.datetime  # emulated time at elapsed 0
    step: float = 1.0  # the physics step Δt [s]: an event due within the last step acts now

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


class Controller(Protocol):
    """A controller of the converters (the built-in apis-main rules are one)."""

    name: str
    operation_mode: str

    @property
    def drives_converters(self) -> bool:
        """Whether outside converter commands must be refused now."""
        ...

    def set_operation_mode(self, mode: str) -> None:
        """The global operation mode (OPERATION_MODES)."""
        ...

    def set_time_scale(self, value: float) -> None:
        """Emulated seconds per second of the controller's own clock, from now on."""
        ...

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
