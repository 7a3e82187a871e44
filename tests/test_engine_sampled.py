"""Individual-log samples kept by the kernel on its way give what stopping at each gave.

Without a controller the schedule runs to each midnight in one kernel call and the kernel keeps
the units' shown values at the sample steps (``Emulator.advance_sampled``).  Stopping at each
sample (the way of a run with an HTTP sink, or before) is the reference: the same samples at
the same steps and times, and the same state afterwards, to the bit — the ledger included,
which the kernel books at each sample as a stopped run does.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from apis_emulator.engine import Emulator, Mode, Sample, kernel
from apis_emulator.runner.schedule import Schedule
from conftest import DAYS, assert_same_state, state_of

_SAMPLED = ("energy", "capacity", "out", "wg")


def _community(make_emulator, step: float, ramp: bool, n_units: int = 7) -> Emulator:
    """``n_units`` units on 3 households: a daily bell of sun, varied loads, batteries that
    fill up (the kernel curtails PV) and run low (the UPS bypass, AC charging); with ``ramp``
    a grid rising
    from 0 V, E002 charging from it and E003 discharging into it until its battery is empty
    (the kernel takes the shortfall from the AC side)."""
    hours = np.arange(24)
    sun = np.clip(np.sin((hours - 6) / 12 * np.pi), 0.0, None) * 2500.0  # [W]
    rng = np.random.default_rng(11)
    load = rng.uniform(0.1, 1.8, size=(3, DAYS, 48))  # [kW]
    em = make_emulator(n_units=n_units, solar=sun, load=load, households=3, step=step)
    em.units.energy[:] = em.units.capacity * np.linspace(0.05, 0.97, n_units)
    if ramp:
        em.set_dcdc("E001", mode=Mode.VOLTAGE_REFERENCE, dvg=350.0, dig=2.0)
        em.set_dcdc("E002", mode=Mode.CHARGE, dvg=350.0, dig=1.0)
        em.set_dcdc("E003", mode=Mode.DISCHARGE, dvg=350.0, dig=3.0)
    return em


def _run(em: Emulator, every: float, in_kernel: bool, days: float) -> list[Sample]:
    taken: list[Sample] = []
    schedule = Schedule(em, sample_every=every)
    if in_kernel:
        schedule.on_sample_values.append(taken.append)
    else:
        schedule.on_sample.append(lambda e: taken.append(e.sample()))
    schedule.run(int(round(days * 86400 / em.dt)))
    return taken


def _kept_by_the_kernel(em: Emulator) -> list[int]:
    """Counts, into the returned list, the samples that ``advance_sampled`` kept."""
    kept: list[int] = []
    advance_sampled = em.advance_sampled

    def counting(n_steps: int, at: list[int]) -> list[Sample] | None:
        samples = advance_sampled(n_steps, at)
        kept.append(len(samples or []))
        return samples

    em.advance_sampled = counting  # type: ignore[method-assign]
    return kept


@pytest.mark.parametrize(("step", "every", "ramp", "n_units", "parallel"), [
    (10.0, 900.0, False, 7, False),  # the headless default: a sample every 90 steps
    (7.0, 900.0, False, 7, False),  # samples between steps: taken at the first step after
    (7.0, 60.0, True, 7, False),  # a rising grid: stops at each step until it stands
    (10.0, 900.0, False, 150, False),  # 3 blocks of units
    (10.0, 900.0, True, 150, True),  # 3 blocks on threads, a rising grid first
])
def test_samples_kept_by_the_kernel_are_those_of_a_run_stopped_at_each(
        make_emulator, monkeypatch, step: float, every: float, ramp: bool, n_units: int,
        parallel: bool) -> None:
    if parallel:
        if numba.config.NUMBA_NUM_THREADS < 2:  # type: ignore[attr-defined]
            pytest.skip("one thread: the parallel kernel is not used")
        monkeypatch.setattr(kernel, "PARALLEL_MIN_WORK", 0)
    stopped_em = _community(make_emulator, step, ramp, n_units)
    kept_em = _community(make_emulator, step, ramp, n_units)
    stopped = _run(stopped_em, every, in_kernel=False, days=1.5)
    kept_by_kernel = _kept_by_the_kernel(kept_em)
    kept = _run(kept_em, every, in_kernel=True, days=1.5)

    assert len(stopped) == len(kept) > 100
    assert [(s.step, s.time) for s in kept] == [(s.step, s.time) for s in stopped]
    for a, b in zip(stopped, kept, strict=True):
        for name in _SAMPLED:
            assert np.array_equal(getattr(a, name), getattr(b, name)), (b.step, name)
    assert_same_state(state_of(stopped_em), state_of(kept_em))
    assert np.array_equal(stopped_em.units.ledger, kept_em.units.ledger)
    # the kernel did keep them (after the ramp, when there is one)
    assert sum(kept_by_kernel) > len(kept) / 2
    assert kept_em.version < stopped_em.version / 10 or ramp
    # full batteries were met on the way, and with the grid an empty one
    assert max(float(s.out[:, 6].max()) for s in kept) > 0.0  # curtailed PV [W]
    assert min(float(s.energy.min()) for s in kept) == 0.0 or not ramp


def test_samples_at_steps_outside_the_run_are_refused(make_emulator) -> None:
    em = _community(make_emulator, 10.0, ramp=False)
    before = state_of(em)
    for at in ([0], [10], [5, 5], [6, 3]):
        with pytest.raises(ValueError, match="each in 1 … 9, increasing"):
            em.advance_sampled(10, at)
        assert_same_state(before, state_of(em))
        assert em.step_index == 0


def test_a_rising_grid_is_not_run_in_one_call(make_emulator) -> None:
    em = _community(make_emulator, 10.0, ramp=True)
    before = state_of(em)
    assert em.advance_sampled(10, [3]) is None  # the voltage changes at every step
    assert_same_state(before, state_of(em))
