"""Real-time pacing: emulated time = acceleration × wall time, on monotonic deadlines."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from ..engine import Emulator
from ..errors import InvalidValueError
from .schedule import Schedule

__all__ = ["RealTimeRunner", "check_acceleration", "MAX_ACCELERATION"]

log = logging.getLogger(__name__)
MAX_ACCELERATION = 1e6


def check_acceleration(value: object) -> float:
    """The acceleration as a float in (0, MAX_ACCELERATION], or InvalidValueError."""
    try:
        acc = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        acc = math.nan
    if not math.isfinite(acc) or not 0 < acc <= MAX_ACCELERATION:
        raise InvalidValueError("acceleration", value,
                                f"a finite number > 0 and <= {MAX_ACCELERATION:g}")
    return acc


class RealTimeRunner:
    """Advances the emulator so that emulated time = acceleration × wall time.

    Monotonic deadlines every ``sleeptime`` wall seconds; at each tick it runs the whole steps
    that are due.  It never queues unbounded work: when the machine cannot keep up, a tick runs
    at most ``max_lag`` seconds of wall time worth of steps, the rest is dropped from the plan
    (the clock re-anchors) and the lag is logged.
    """

    def __init__(self, emulator: Emulator, acceleration: float, sleeptime: float,
                 do_updates: bool = True, clock: Callable[[], float] = time.monotonic,
                 max_lag: float = 5.0, schedule: Schedule | None = None):
        self.emulator = emulator
        #: samples, midnights and control ticks, each on its exact step
        self.schedule = schedule or Schedule(emulator)
        self.schedule.power_flow = do_updates
        self.sleeptime = float(sleeptime)
        self.do_updates = do_updates
        self.clock = clock
        self.max_lag = max_lag
        self.listeners: list[Callable[[Emulator], None]] = []
        #: told the new acceleration (a controller following it as its time scale)
        self.on_acceleration: list[Callable[[float], None]] = []
        self.behind_s = 0.0  # [s] of emulated time dropped so far when lagging
        self.ticks = 0
        self._step_cost = 0.0  # [s] wall time one step took, smoothed over the last ticks
        self._advances = 0
        self._acc = check_acceleration(acceleration)
        self._anchor_wall = clock()
        self._anchor_emu = emulator.emulated_s

    @property
    def acceleration(self) -> float:
        """Emulated seconds per wall second."""
        return self._acc

    def set_acceleration(self, value: object) -> float:
        """New acceleration from now on; the emulated time so far is kept."""
        acc = check_acceleration(value)
        self._run_due()  # what is due at the old pace runs first, not later at the new one
        self._reanchor()
        self._acc = acc
        for listener in self.on_acceleration:
            listener(acc)
        return acc

    def _reanchor(self) -> None:
        now = self.clock()
        self._anchor_emu += self._acc * (now - self._anchor_wall)
        self._anchor_wall = now

    def restart_clock(self) -> None:
        """Emulated time resumes from where the emulator is now (after a reset or a load)."""
        self._anchor_wall = self.clock()
        self._anchor_emu = self.emulator.emulated_s

    def due_steps(self) -> int:
        """Whole steps that are due at this wall-clock moment."""
        target = self._anchor_emu + self._acc * (self.clock() - self._anchor_wall)
        ahead = (target - self.emulator.emulated_s) / self.emulator.dt
        return max(0, int(math.floor(ahead + 1e-9)))

    def tick(self) -> int:
        """Run the due steps and tell the listeners; returns how many steps ran."""
        due = self._run_due()
        self.ticks += 1
        for listener in self.listeners:
            listener(self.emulator)
        return due

    def _step_limit(self) -> int:
        """Most steps one tick may run: max_lag of emulated pace, and half a tick of compute
        (so requests are still served when the acceleration asks more than the machine has)."""
        limit = max(1, int(self._acc * self.max_lag / self.emulator.dt))
        if self._step_cost > 0:
            limit = min(limit, max(1, int(0.5 * self.sleeptime / self._step_cost)))
        return limit

    def _run_due(self) -> int:
        due = self.due_steps()
        limit = self._step_limit()
        if due > limit:
            dropped = (due - limit) * self.emulator.dt
            self.behind_s += dropped
            self._anchor_emu -= dropped
            log.warning("emulation behind the wall clock: %.0f s of emulated time dropped "
                        "(acceleration %g too high for this machine?)", dropped, self._acc)
            due = limit
        if due:
            started = self.clock()  # the runner's own clock: a test's clock costs nothing
            self.schedule.power_flow = self.do_updates
            self.schedule.run(due)
            cost = (self.clock() - started) / due  # [s of wall time per step]
            if self._advances and cost > 0:  # the first also loads the kernel: not a measure
                self._step_cost = (cost if self._step_cost == 0
                                   else 0.7 * self._step_cost + 0.3 * cost)
            self._advances += 1
        return due

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every ``sleeptime`` on monotonic deadlines until ``stop`` is set."""
        deadline = self.clock()
        while not stop.is_set():
            self.tick()
            deadline += self.sleeptime
            delay = deadline - self.clock()
            if delay < 0:  # late: skip missed ticks instead of bursting
                deadline = self.clock()
                delay = 0.0
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
