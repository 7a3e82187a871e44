"""Running the engine: paced against the wall clock (served), or as fast as possible (headless).

Both call the same :meth:`Emulator.advance` with the same Δt; the acceleration only decides how
many steps run per wall second, so the trajectory does not depend on it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .engine import Emulator
from .errors import InvalidValueError
from .recorders import DailySummary, DayRow, IndividualCSV, SummaryCSV

__all__ = ["RealTimeRunner", "simulate", "SimulationResult", "MAX_ACCELERATION"]

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
                 max_lag: float = 5.0):
        self.emulator = emulator
        self.sleeptime = float(sleeptime)
        self.do_updates = do_updates
        self.clock = clock
        self.max_lag = max_lag
        self.listeners: list[Callable[[Emulator], None]] = []
        self.behind_s = 0.0  # [s] of emulated time dropped so far when lagging
        self.ticks = 0
        self._acc = check_acceleration(acceleration)
        self._anchor_wall = clock()
        self._anchor_emu = emulator.elapsed

    @property
    def acceleration(self) -> float:
        return self._acc

    def set_acceleration(self, value: object) -> float:
        """New acceleration from now on; the emulated time so far is kept."""
        acc = check_acceleration(value)
        self._reanchor()
        self._acc = acc
        return acc

    def _reanchor(self) -> None:
        now = self.clock()
        self._anchor_emu += self._acc * (now - self._anchor_wall)
        self._anchor_wall = now

    def restart_clock(self) -> None:
        """Emulated time resumes from where the emulator is now (after a reset or a load)."""
        self._anchor_wall = self.clock()
        self._anchor_emu = self.emulator.elapsed

    def due_steps(self) -> int:
        """Whole steps that are due at this wall-clock moment."""
        target = self._anchor_emu + self._acc * (self.clock() - self._anchor_wall)
        return max(0, int(math.floor((target - self.emulator.elapsed) / self.emulator.dt + 1e-9)))

    def tick(self) -> int:
        """Run the due steps; returns how many ran."""
        due = self.due_steps()
        limit = max(1, int(self._acc * self.max_lag / self.emulator.dt))
        if due > limit:
            dropped = (due - limit) * self.emulator.dt
            self.behind_s += dropped
            self._anchor_emu -= dropped
            log.warning("emulation behind the wall clock: %.0f s of emulated time dropped "
                        "(acceleration %g too high for this machine?)", dropped, self._acc)
            due = limit
        if due:
            self.emulator.advance(due, power_flow=self.do_updates)
        self.ticks += 1
        for listener in self.listeners:
            listener(self.emulator)
        return due

    def pace(self) -> float:
        """Emulated seconds per wall second since the last anchor (for display)."""
        return self._acc

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


@dataclass
class SimulationResult:
    """What a headless run did; energies [Wh]."""

    days: float
    steps: int
    wall_s: float
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    totals: dict[str, float | None] = field(default_factory=dict)


def _next_midnight(when: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(when.date() + dt.timedelta(days=1), dt.time())


def simulate(emulator: Emulator, days: float, out_dir: str | Path,
             indiv_interval: float | None = 900.0, progress: bool = True,
             summary: bool = True) -> SimulationResult:
    """Run ``days`` of emulated time as fast as possible, writing the outputs as it goes.

    The daily summary (``summary.csv``) gets a row at every emulated midnight and the partial
    last day, then the ``sum`` and ``avg`` rows; the individual log (``indivLog.csv``) gets a
    block every ``indiv_interval`` emulated seconds (None or 0: no individual log).
    """
    if not (isinstance(days, int | float) and math.isfinite(days) and days > 0):
        raise InvalidValueError("days", days, "a number of days > 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    em = emulator
    end_step = em.step_index + int(round(days * 86400.0 / em.dt))
    log_every = int(round(indiv_interval / em.dt)) if indiv_interval else 0
    days_summary = DailySummary(em.snapshot())
    files: dict[str, Path] = {}
    summary_csv = SummaryCSV(out / "summary.csv") if summary else None
    indiv_csv = IndividualCSV(out / "indivLog.csv") if log_every else None
    if summary_csv:
        files["summary"] = summary_csv.path
    if indiv_csv:
        files["indivLog"] = indiv_csv.path
    started = time.perf_counter()
    rows: list[DayRow] = []
    bar = tqdm(total=end_step - em.step_index, unit="step", unit_scale=True, disable=not progress,
               desc=f"simulate {len(em.units)} units", mininterval=0.5)
    try:
        next_day = em.step_index + em.steps_until(_next_midnight(em.now))
        next_log = em.step_index + log_every if log_every else end_step + 1
        while em.step_index < end_step:
            target = min(next_day, next_log, end_step)
            n = target - em.step_index
            em.advance(n)
            bar.update(n)
            if em.step_index == next_log:
                indiv_csv.write(em.snapshot())  # type: ignore[union-attr]
                next_log += log_every
            if em.step_index == next_day or em.step_index == end_step:
                label = (em.now - dt.timedelta(seconds=1)).strftime("%Y/%m/%d")
                row = days_summary.day_row(em.snapshot(), label)
                rows.append(row)
                if summary_csv:
                    summary_csv.write([row])
                next_day = em.step_index + em.steps_until(_next_midnight(em.now))
        closing = days_summary.closing_rows()
        if summary_csv:
            summary_csv.write(closing)
    finally:
        bar.close()
        if summary_csv:
            summary_csv.close()
        if indiv_csv:
            indiv_csv.close()
    wall = time.perf_counter() - started
    totals = closing[0].values if closing else {}
    return SimulationResult(days=days, steps=end_step, wall_s=wall, out_dir=out, files=files,
                            totals=totals)
