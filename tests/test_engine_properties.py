"""Physics invariants under random inputs and commands (hypothesis).

- Energy: for every unit and day, PV used + AC in + DC-grid in (net ledger wg)
  = load + acloss + dcloss + Δ stored energy, to 1e-6 relative.
- Curtailment: PV used + wasted = available PV = pv_gain × solar integrated over the day.
- Kirchhoff: Σ ig = 0 whenever a voltage reference is on the grid.
- 0 ≤ rsoc ≤ 100 always.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from apis_emulator.engine import LEDGER_FIELDS, OUT_FIELDS, Emulator, solve_grid
from apis_emulator.inputs import DAYS
from apis_emulator.modes import MODE_CODES, Mode
from conftest import assert_units_balance, dataset_from_arrays, settings

WAIT, DISCHARGE, VOLTAGE_REFERENCE, CHARGE = Mode

L = {name: i for i, name in enumerate(LEDGER_FIELDS)}
OUT = {name: i for i, name in enumerate(OUT_FIELDS)}
FAST = hsettings(max_examples=30, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------------- random communities
def random_inputs(seed: int, households: int, pv_peak: float, load_peak: float):
    """Solar (365, 24) [W] with a daily bell and random clouds; load (h, 365, 48) [kW]."""
    rng = np.random.default_rng(seed)
    hours = np.arange(24)
    bell = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None)
    solar = pv_peak * bell[None, :] * rng.uniform(0.0, 1.0, (DAYS, 24))
    load = load_peak * rng.uniform(0.0, 1.0, (households, DAYS, 48)) ** 2
    return solar, load


command = st.tuples(
    st.floats(0.0, 1.0),  # when, as a fraction of the run
    st.integers(0, 5),  # unit (modulo the number of units)
    st.sampled_from(MODE_CODES),
    st.floats(0.0, 10.0),  # dig [A]
    st.sampled_from([310.0, 350.0, 380.0]),  # dvg [V]
    st.sampled_from([0.0, 0.0, 0.039]),  # drg
)

community = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32 - 1),
    "units": st.integers(1, 6),
    "households": st.integers(1, 3),
    "pv_peak": st.sampled_from([0.0, 500.0, 3000.0, 8000.0]),
    "load_peak": st.sampled_from([0.0, 0.5, 2.0, 5.0]),
    "step": st.sampled_from([30.0, 60.0, 300.0, 900.0]),
    "day_of_year": st.integers(0, 364),
    "rsoc": st.lists(st.floats(0.0, 100.0), min_size=6, max_size=6),
    "size": st.lists(st.sampled_from([500.0, 4800.0, 20000.0]), min_size=6, max_size=6),
    "commands": st.lists(command, max_size=8),
})


def build(c) -> tuple[Emulator, np.ndarray]:
    solar, load = random_inputs(c["seed"], c["households"], c["pv_peak"], c["load_peak"])
    ids = [f"E{k:03d}" for k in range(1, c["units"] + 1)]
    per_unit = {u: {"initialRsoc": c["rsoc"][k], "batterySize": c["size"][k]}
                for k, u in enumerate(ids)}
    start = dt.datetime(2019, 1, 1) + dt.timedelta(days=c["day_of_year"])
    em = Emulator(settings(step=c["step"], start=start.isoformat(), units=per_unit),
                  dataset_from_arrays(solar, load, c["households"]), c["units"])
    return em, solar.reshape(-1)


def available_pv(em: Emulator, solar: np.ndarray, first: int, last: int) -> np.ndarray:
    """pv_gain × solar integrated over steps [first, last) at the steps' middles [Wh],
    computed here with np.interp on the periodic hourly series (independent of the engine)."""
    year = DAYS * 86400.0
    offset = (em.start_time - dt.datetime(em.start_time.year, 1, 1)).total_seconds()
    t = np.mod(offset + (np.arange(first, last) + 0.5) * em.dt, year)
    xp = np.arange(solar.size + 1) * 3600.0
    values = np.interp(t, xp, np.append(solar, solar[0]))
    return em.units.pv_gain * values.sum() * em.dt / 3600.0


def run_days(em: Emulator, c, days: int, on_segment) -> None:
    """Advance ``days`` days, applying the commands at their step; ``on_segment(step, day_end)``
    after each stop (a command's step or the end of a day)."""
    steps_per_day = int(round(86400.0 / em.dt))
    total = days * steps_per_day
    plan = sorted((int(f * total), unit, mode, dig, dvg, drg)
                  for f, unit, mode, dig, dvg, drg in c["commands"])
    stops = sorted({p[0] for p in plan} | {d * steps_per_day for d in range(1, days + 1)})
    for stop in stops:
        em.advance(stop - em.step_index)
        for when, unit, mode, dig, dvg, drg in plan:
            if when == stop:
                em.set_dcdc(em.ids[unit % len(em.ids)], mode=mode, dig=dig, dvg=dvg, drg=drg)
        on_segment(stop, stop > 0 and stop % steps_per_day == 0)


# ---------------------------------------------------------------------- energy
@FAST
@given(community)
def test_energy_balance_per_unit_and_day(c):
    """PV used + AC in + DC grid in = load + losses + Δ stored, per unit and day, to 1e-6."""
    em, solar = build(c)
    days = []
    marks = [(0, em.units.ledger.copy(), em.units.energy.copy())]

    def on_segment(step, day_end):
        rsoc = em.units.rsoc
        assert np.all(rsoc >= 0.0) and np.all(rsoc <= 100.0)
        if day_end:
            marks.append((step, em.units.ledger.copy(), em.units.energy.copy()))
            days.append(len(marks) - 1)

    run_days(em, c, 2, on_segment)
    assert len(days) == 2
    for d in days:
        (first, ledger0, energy0), (last, ledger1, energy1) = marks[d - 1], marks[d]
        day = ledger1 - ledger0
        stored = energy1 - energy0
        assert_units_balance(day, stored)
        # curtailed PV is accounted: used + wasted = what the sun gave
        available = available_pv(em, solar, first, last)
        used_and_wasted = day[:, L["pv"]] + day[:, L["wasted"]]
        np.testing.assert_allclose(used_and_wasted, available, rtol=1e-6, atol=1e-6)
        assert np.all(day[:, L["wasted"]] >= 0.0) and np.all(day[:, L["pv"]] >= -1e-9)
        # only what is received from the grid counts as wg_in
        assert np.all(day[:, L["wg_in"]] >= day[:, L["wg"]] - 1e-9)


@FAST
@given(community)
def test_rsoc_stays_in_bounds_at_every_step(c):
    """0 ≤ rsoc ≤ 100 after every single step (big PV, big loads, small batteries)."""
    c = dict(c, pv_peak=8000.0, load_peak=5.0, step=900.0)
    em, _ = build(c)
    for _ in range(2 * 96):
        before = em.units.energy.copy()
        em.advance(1)
        assert np.all(em.units.energy >= 0.0)
        assert np.all(em.units.energy <= em.units.capacity)
        rsoc = em.units.rsoc
        assert np.all((rsoc >= 0.0) & (rsoc <= 100.0))
        # the shown flow is what the battery took: never beyond full or empty
        took = em.units.out[:, OUT["flow"]] * em.dt / 3600.0
        np.testing.assert_allclose(took, em.units.energy - before, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------- Kirchhoff
converter = st.tuples(
    st.sampled_from([WAIT, DISCHARGE, VOLTAGE_REFERENCE, CHARGE]),
    st.floats(0.0, 1000.0),  # dvg [V]
    st.floats(0.0, 100.0),  # dig [A]
    st.one_of(st.just(0.0), st.floats(0.0, 1.0)),  # drg
)
realistic = st.tuples(
    st.sampled_from([WAIT, DISCHARGE, VOLTAGE_REFERENCE, CHARGE]),
    st.sampled_from([310.0, 330.0, 350.0, 370.0, 380.0]),
    st.sampled_from([0.0, 0.29999995, 1.0, 1.3, 2.3, 5.0]),
    st.sampled_from([0.0, 0.039]),
)


def check_kirchhoff(units):
    mode = np.array([u[0] for u in units], dtype=np.int64)
    dvg, dig, drg = (np.array([u[k] for u in units], dtype=float) for k in (1, 2, 3))
    v, ig = solve_grid(mode, dvg, dig, drg)
    assert np.isfinite(v) and np.all(np.isfinite(ig))
    if not (mode == VOLTAGE_REFERENCE).any():
        assert v == 0.0 and np.all(ig == 0.0)
        return
    assert abs(ig.sum()) <= 1e-9 * max(1.0, np.abs(ig).sum())
    assert np.all(ig[mode == WAIT] == 0.0)
    tol = 1e-9 * (1.0 + dig)
    # converters carry at most what they were set to, in their own direction
    assert np.all((ig >= -tol) & (ig <= dig + tol) | (mode != CHARGE))
    assert np.all((ig <= tol) & (ig >= -dig - tol) | (mode != DISCHARGE))
    # references are current-limited sources
    assert np.all((np.abs(ig) <= dig + tol) | (mode != VOLTAGE_REFERENCE))


@hsettings(max_examples=200, deadline=None)
@given(st.lists(realistic, min_size=1, max_size=12))
def test_kirchhoff_realistic(units):
    """apis-main's voltages and currents, several references with and without droop."""
    check_kirchhoff(units)


@hsettings(max_examples=200, deadline=None)
@given(st.lists(converter, min_size=1, max_size=12))
def test_kirchhoff_any_accepted_values(units):
    """Any value set_dcdc accepts (dvg 0–1000 V, dig 0–100 A, drg 0–1)."""
    check_kirchhoff(units)


@FAST
@given(community)
def test_kirchhoff_in_the_emulator_after_every_command(c):
    em, _ = build(dict(c, step=900.0))

    def on_segment(step, day_end):
        if (em.units.mode == VOLTAGE_REFERENCE).any():
            assert abs(em.units.ig.sum()) <= 1e-9 * max(1.0, np.abs(em.units.ig).sum())
        else:
            assert np.all(em.units.ig == 0.0) and np.all(em.units.vg == 0.0)
        np.testing.assert_allclose(em.units.wg, em.units.vg * em.units.ig)

    run_days(em, c, 1, on_segment)


@pytest.mark.parametrize("dvg", [0.0, 1e-3])
def test_reference_at_zero_volts(dvg):
    """Edge of the accepted range: a reference asked to hold 0 V with droop."""
    check_kirchhoff([(VOLTAGE_REFERENCE, dvg, 2.3, 0.039), (CHARGE, 350.0, 1.0, 0.0)])
