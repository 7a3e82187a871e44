"""The events of a run, scheduled in one place for the served and the headless runner.

Three kinds of event interrupt the stepping: an individual-log sample (every ``sample_every``
emulated seconds since the start), an emulated midnight, and the controller's wake-ups (when it
asks, or the moment a battery leaves the band it watches).  :meth:`Schedule.run` advances the
emulator through a number of steps and stops at every event on its exact step: the recorders
see the state at the sample time, the controller acts at its tick.  Both runners call it, so a
served and a headless run see the same events at the same emulated times.

Samples need no stop when nothing acts on the state and every sample handler takes the shown
values (``on_sample_values``): the kernel keeps them on its way to the next midnight
(:meth:`Emulator.advance_sampled`), at the steps where the run would have stopped.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..control import Controller, ControlView, DealRecord
from ..control.compiled import CompiledApis, compiles
from ..engine import Emulator, Sample
from ..engine.units import Units

__all__ = ["Schedule", "next_midnight"]


def next_midnight(when: dt.datetime) -> dt.datetime:
    """The first midnight strictly after ``when``."""
    return dt.datetime.combine(when.date() + dt.timedelta(days=1), dt.time())


@dataclass
class Schedule:
    """Samples, midnights and control ticks of one run.

    Handlers (lists, called in order): ``on_sample(emulator)``, ``on_sample_values(sample)``
    with the units' shown values (:class:`~apis_emulator.engine.Sample`),
    ``on_midnight(emulator, shared)`` with the controller's day totals (empty without one),
    ``on_deals(records)`` with the deals that finished.
    """

    emulator: Emulator
    controller: Controller | None = None
    sample_every: float | None = None  # [s] of emulated time; None: no samples
    on_sample: list[Callable[[Emulator], None]] = field(default_factory=list)
    on_sample_values: list[Callable[[Sample], None]] = field(default_factory=list)
    on_midnight: list[Callable[[Emulator, dict[str, float]], None]] = field(default_factory=list)
    on_deals: list[Callable[[list[DealRecord]], None]] = field(default_factory=list)
    power_flow: bool = True
    #: Run an apis controller's rules compiled (headless: the units and settings stay as they
    #: are) when it can (control/compiled.py); the Python controller otherwise.
    compiled: bool = False
    _stepper: CompiledApis | None = field(init=False, default=None)
    _next_sample: float = field(init=False, default=math.inf)
    _next_day: dt.datetime = field(init=False)

    def __post_init__(self) -> None:
        em = self.emulator
        self._next_sample = self._sample_after(em.emulated_s)
        self._next_day = next_midnight(em.now)
        if self.controller is not None:
            em.on_units_replaced(self._replaced)
        if self.compiled and self.controller is not None and compiles(self.controller, em):
            self._stepper = CompiledApis(self.controller, em)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ events
    def _sample_after(self, elapsed: float) -> float:
        """The first sample time [s since the start] strictly after ``elapsed``."""
        every = self.sample_every
        if not every:
            return math.inf
        return (math.floor(elapsed / every + 1e-9) + 1) * every

    def _steps_to(self, elapsed: float, step: int | None = None) -> int:
        """Whole steps from ``step`` (default: now) until ``elapsed`` [s since the start] is
        reached (0 if it has)."""
        em = self.emulator
        if math.isinf(elapsed):
            return 2**62
        now = em.emulated_s if step is None else step * em.dt
        return max(0, math.ceil((elapsed - now) / em.dt - 1e-9))

    def view(self) -> ControlView:
        """What a controller sees now."""
        em = self.emulator
        return ControlView(em.snapshot(), em.emulated_s, em.start_time, em.dt)

    def _replaced(self, old: Units, reason: str) -> None:
        if self.controller is not None:
            self.controller.units_replaced(reason, list(old.ids))

    # ------------------------------------------------------------------ running
    def run(self, n_steps: int) -> int:
        """Advance ``n_steps`` steps, handling every event on its step; returns steps run."""
        em = self.emulator
        end = em.step_index + int(n_steps)
        start = em.step_index
        if self._stepper is not None:
            return self._run_compiled(end)
        if self.controller is None and self.power_flow and not self.on_sample:
            return self._run_sampling(end)
        plan_steps, watch = self._control()
        while em.step_index < end:
            k = min(end - em.step_index, plan_steps, self._steps_to(self._next_sample),
                    em.steps_until(self._next_day) or 1)
            _, left = em.advance_watched(max(k, 1), watch, self.power_flow)
            self._recorders_due()
            plan_steps, watch = self._control(left)
        return em.step_index - start

    def _run_compiled(self, end: int) -> int:
        """The compiled rules step through to each sample, midnight and the end."""
        em, stepper = self.emulator, self._stepper
        assert stepper is not None
        start = em.step_index
        while em.step_index < end:
            k = min(end - em.step_index, self._steps_to(self._next_sample),
                    em.steps_until(self._next_day) or 1)
            self._deals(stepper.advance(max(k, 1)))
            self._recorders_due()
        return em.step_index - start

    def _run_sampling(self, end: int) -> int:
        """Without a controller: one kernel call to each midnight (or the end), the samples
        on the way kept by the kernel at the steps where the loop of :meth:`run` stops."""
        em = self.emulator
        start = em.step_index
        while em.step_index < end:
            k = min(end - em.step_index, em.steps_until(self._next_day) or 1)
            at, following = self._samples_within(k)
            samples = em.advance_sampled(k, at) if at else None
            if samples is None:  # no sample inside, or a rising grid: stop at the next one
                em.advance(max(1, min(k, self._steps_to(self._next_sample))))
            else:
                for sample in samples:
                    for handler in self.on_sample_values:
                        handler(sample)
                self._next_sample = following
            self._recorders_due()
        return em.step_index - start

    def _samples_within(self, k: int) -> tuple[list[int], float]:
        """The step counts in 1 … k − 1 at which :meth:`run`'s loop would take a sample (its
        arithmetic, step by step), and the sample time that follows them."""
        first = step = self.emulator.step_index
        at: list[int] = []
        due = self._next_sample
        while True:
            step += max(1, self._steps_to(due, step))
            if step >= first + k:
                return at, due
            if step * self.emulator.dt >= due - 1e-9:
                at.append(step - first)
                due = self._sample_after(step * self.emulator.dt)

    def _recorders_due(self) -> None:
        em = self.emulator
        if em.now >= self._next_day:
            shared = self._take_day()
            for at_midnight in self.on_midnight:
                at_midnight(em, shared)
            self._next_day = next_midnight(em.now)
        if em.emulated_s >= self._next_sample - 1e-9:
            for handler in self.on_sample:
                handler(em)
            if self.on_sample_values:
                sample = em.sample()
                for values_handler in self.on_sample_values:
                    values_handler(sample)
            self._next_sample = self._sample_after(em.emulated_s)

    def _control(self, left: bool = False) -> tuple[int, np.ndarray | None]:
        """Wake the controller if it is due (or a band was left); its next plan."""
        controller = self.controller
        if controller is None:
            return 2**62, None
        view = self.view()
        plan = controller.plan(view)
        if left or plan.wake <= view.elapsed + 1e-9:
            commands = controller.wake(view)  # everything due by now, in time order
            if commands:
                self.emulator.command_converters(commands)
            view = self.view()
            controller.settled(view)
            self._deals(controller.take_finished())
            plan = controller.plan(view)
        # due again at once only after time moves on: at least one step
        return max(1, self._steps_to(plan.wake)), plan.watch

    def _deals(self, records: Sequence[DealRecord]) -> None:
        if records:
            for handler in self.on_deals:
                handler(list(records))

    def _take_day(self) -> dict[str, float]:
        if self._stepper is not None:
            return self._stepper.take_day()
        return self.controller.take_day(self.view()) if self.controller else {}

    def close(self) -> dict[str, float] | None:
        """End the controller's deals (``run_end``) and hand them to the handlers; the
        controller's shared totals of the partial day (None without a controller)."""
        if self.controller is None:
            return None
        if self._stepper is not None:
            self._deals(self._stepper.close())
        else:
            self._deals(self.controller.close(self.view()))
        return self._take_day()
