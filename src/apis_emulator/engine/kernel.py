"""The power-flow step of specification §4.2.4, compiled (numba) and looped over time.

Units are independent between two changes of the DC grid (their grid power ``wg`` is fixed), so
the kernel runs each unit through ``n`` steps on its own: the outer loop over units runs in
parallel, the inner loop over time stays in registers.  The served runner and the headless run
call this very function; only the number of steps per call differs, which changes nothing in
the trajectory.

Per unit and step of Δt [s] (power-flow-model §2–§5; powers [W], energies [Wh]):

1. UPS hysteresis on rsoc: bypass on at rsoc ≤ BATT_OFF, off at ≥ BATT_ON; AC charging on at
   rsoc ≤ AC_ON, off at ≥ AC_OFF; in between the previous state holds.
2. Losses and the AC meter p2; battery flow = wg + pv + p2 − load − acloss − dcloss.
3. State of charge: E += flow · Δt / 3600 within [0, capacity].  Energy above the capacity is
   curtailed PV (``wasted``; what PV cannot cover is fed back to the AC side, p2 falls);
   energy below 0 is drawn from the AC mains (p2 rises).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

__all__ = ["run_steps", "run_steps_until", "params_vector", "unwatched", "energy_bands",
           "energy_band", "OUT_FIELDS", "LEDGER_FIELDS", "P"]

#: Columns of the ``out`` array: the values of each unit's last step [W].
OUT_FIELDS = ("pv", "load", "p2", "flow", "acloss", "dcloss", "wasted")
#: Columns of the ``ledger`` array: energies since the start [Wh].
LEDGER_FIELDS = ("pv", "load", "acin", "wasted", "acloss", "dcloss", "wg", "wg_in")

# indices into the parameter vector
P = {name: i for i, name in enumerate((
    "constantSystemLoss", "battModeLoss_a", "battModeLoss_c", "transLoss_a", "transLoss_c",
    "bypassModeLoss_a", "bypassModeLoss_c", "ACChargeLoss", "ACChargeAmount",
    "UPS_TRIGGER_BATT_OFF", "UPS_TRIGGER_BATT_ON", "UPS_TRIGGER_AC_OFF", "UPS_TRIGGER_AC_ON"))}


def params_vector(settings: object) -> np.ndarray:
    """The settings the kernel needs, as a float64 vector in the order of :data:`P`."""
    return np.array([float(getattr(settings, name)) for name in P], dtype=np.float64)


@njit(cache=True, nogil=True, inline="always")
def _next_sample(j, n_samples):  # pragma: no cover - compiled
    return j + 1 if j + 1 < n_samples else 0


@njit(cache=True, nogil=True, inline="always")
def _between(here, there, f):  # pragma: no cover - compiled
    """A load [W] from two samples [kW] and the weight f toward the second."""
    return 1000.0 * (here + f * (there - here))


@njit(cache=True, nogil=True)
def _params(p):  # pragma: no cover - compiled
    """The parameter vector as a tuple of floats: passed to the per-step function without
    an array, so that no reference is counted per unit and step (a third of the time)."""
    return (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12])


@njit(cache=True, nogil=True, inline="always")
def _unit_step(hours, p, e, cap, byp, acc, pv, load, wg, dcdc_loss):  # pragma: no cover
    """One unit's step of ``hours`` [h] from stored energy ``e`` [Wh] with PV ``pv`` and load
    ``load`` [W], grid power ``wg`` [W]: the new (e, bypass, AC charging) and the step's
    pv, load, p2, flow, acloss, dcloss, wasted [W].  ``p`` is :func:`_params`' tuple."""
    # 1. UPS state from the state of charge at the start of the step
    rsoc = 100.0 * e / cap
    if rsoc <= p[9]:  # UPS_TRIGGER_BATT_OFF
        byp = True
    elif rsoc >= p[10]:  # UPS_TRIGGER_BATT_ON
        byp = False
    if rsoc <= p[12]:  # UPS_TRIGGER_AC_ON
        acc = True
    elif rsoc >= p[11]:  # UPS_TRIGGER_AC_OFF
        acc = False
    # 2. consumption, losses, AC meter
    dcloss = p[0] + dcdc_loss  # constantSystemLoss
    acloss = p[4]  # transLoss_c
    if byp:
        acloss += p[6] + (p[5] + p[3]) * load  # bypassModeLoss_c, _a, transLoss_a
        p2 = load + acloss
    else:
        dcloss += p[2] + p[1] * load  # battModeLoss_c, _a
        p2 = acloss
    if acc:
        acloss += p[7]  # ACChargeLoss
        p2 += p[8] + p[7]  # ACChargeAmount
    flow = wg + pv + p2 - load - acloss - dcloss
    # 3. state of charge within [0, capacity]
    e_new = e + flow * hours
    wasted = 0.0
    if e_new > cap:
        excess = (e_new - cap) / hours
        wasted = min(excess, pv)
        pv -= wasted
        p2 -= excess - wasted
        flow -= excess
        e_new = cap
    elif e_new < 0.0:
        shortfall = -e_new / hours
        p2 += shortfall
        flow += shortfall
        e_new = 0.0
    return e_new, byp, acc, pv, load, p2, flow, acloss, dcloss, wasted


def _run_steps(dt, solar_w, load_j, load_f, load_kw, house, pv_gain, wg, dcdc_loss, p,
              energy, capacity, bypass, ac_charge, out, ledger,
              watch, trip):  # pragma: no cover - compiled
    """Advance every unit by ``len(solar_w)`` steps of ``dt`` [s].

    Per step k: ``solar_w[k]`` the solar value at the step's middle [W/m² or W], the load at
    ``load_kw[h, load_j[k]]`` interpolated with weight ``load_f[k]`` toward the next sample.
    ``energy``, ``bypass``, ``ac_charge``, ``out`` and ``ledger`` are updated in place.

    ``watch`` (units × 2: lowest and highest stored energy [Wh], :func:`energy_bands`) is a band
    per unit; ``trip[i]`` gets the first step count after which unit i left it, or
    n_steps + 1.
    """
    n_units = energy.shape[0]
    n_steps = solar_w.shape[0]
    hours = dt / 3600.0
    pp = _params(p)
    n_samples = load_kw.shape[1]
    for i in prange(n_units):
        e, cap, h = energy[i], capacity[i], house[i]
        byp, acc = bypass[i], ac_charge[i]
        s_pv = s_load = s_p2 = s_wasted = s_acloss = s_dcloss = 0.0
        pv = load = p2 = flow = acloss = dcloss = wasted = 0.0
        e_lo, e_hi = watch[i, 0], watch[i, 1]
        tripped = n_steps + 1
        for k in range(n_steps):
            j = load_j[k]
            load_w = _between(load_kw[h, j], load_kw[h, _next_sample(j, n_samples)], load_f[k])
            e, byp, acc, pv, load, p2, flow, acloss, dcloss, wasted = _unit_step(
                hours, pp, e, cap, byp, acc, pv_gain[i] * solar_w[k], load_w, wg[i],
                dcdc_loss[i])
            if tripped > n_steps and (e < e_lo or e > e_hi):
                tripped = k + 1
            s_pv += pv
            s_load += load
            s_p2 += p2
            s_wasted += wasted
            s_acloss += acloss
            s_dcloss += dcloss
        energy[i], bypass[i], ac_charge[i] = e, byp, acc
        trip[i] = tripped
        if n_steps > 0:
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = pv, load, p2, flow
            out[i, 4], out[i, 5], out[i, 6] = acloss, dcloss, wasted
            ledger[i, 0] += s_pv * hours
            ledger[i, 1] += s_load * hours
            ledger[i, 2] += s_p2 * hours
            ledger[i, 3] += s_wasted * hours
            ledger[i, 4] += s_acloss * hours
            ledger[i, 5] += s_dcloss * hours
            ledger[i, 6] += wg[i] * n_steps * hours
            ledger[i, 7] += max(wg[i], 0.0) * n_steps * hours


@njit(cache=True, nogil=True)
def run_steps_until(dt, solar_w, load_j, load_f, load_kw, house, pv_gain, wg, dcdc_loss, p,
                    energy, capacity, bypass, ac_charge, out, ledger,
                    watch):  # pragma: no cover - compiled
    """:func:`_run_steps` with the loops the other way round: all units step together and
    the run stops right after the first step that takes a unit out of its ``watch`` band.
    Returns (steps run, whether a band was left).  The same arithmetic in the same order per
    unit: the trajectory is the one of ``_run_steps`` over the steps run, bit for bit, and
    nothing is run twice (no roll-back).  Units side by side also overlap in the processor,
    where one unit's steps wait on each other."""
    n_units, n_steps = energy.shape[0], solar_w.shape[0]
    hours = dt / 3600.0
    pp = _params(p)
    n_samples = load_kw.shape[1]
    sums = np.zeros((n_units, 6))  # pv, load, p2, wasted, acloss, dcloss [W·steps]
    ran, left = n_steps, False
    for k in range(n_steps):
        j, j1, f = load_j[k], _next_sample(load_j[k], n_samples), load_f[k]
        for i in range(n_units):
            h = house[i]
            e, byp, acc, pv, load, p2, flow, acloss, dcloss, wasted = _unit_step(
                hours, pp, energy[i], capacity[i], bypass[i], ac_charge[i],
                pv_gain[i] * solar_w[k], _between(load_kw[h, j], load_kw[h, j1], f),
                wg[i], dcdc_loss[i])
            energy[i], bypass[i], ac_charge[i] = e, byp, acc
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = pv, load, p2, flow
            out[i, 4], out[i, 5], out[i, 6] = acloss, dcloss, wasted
            sums[i, 0] += pv
            sums[i, 1] += load
            sums[i, 2] += p2
            sums[i, 3] += wasted
            sums[i, 4] += acloss
            sums[i, 5] += dcloss
            if e < watch[i, 0] or e > watch[i, 1]:
                left = True
        if left:
            ran = k + 1
            break
    for i in range(n_units):
        for c in range(6):
            ledger[i, c] += sums[i, c] * hours
        ledger[i, 6] += wg[i] * ran * hours
        ledger[i, 7] += max(wg[i], 0.0) * ran * hours
    return ran, left


#: Both compilations of one function: threads pay off only for large blocks of work.
run_steps_parallel = njit(cache=True, parallel=True, nogil=True)(_run_steps)
run_steps_serial = njit(cache=True, nogil=True)(_run_steps)
#: Unit-steps per call from which the parallel version is used: a headless day of 100 houses
#: at Δt 10 s (864,000) takes ~8 ms on one core, the threads' start and join ~50 µs.
PARALLEL_MIN_WORK = 250_000


def run_steps(dt: float, solar_w: np.ndarray, load_j: np.ndarray, load_f: np.ndarray,
              load_kw: np.ndarray, house: np.ndarray, pv_gain: np.ndarray, wg: np.ndarray,
              dcdc_loss: np.ndarray, p: np.ndarray, energy: np.ndarray, capacity: np.ndarray,
              bypass: np.ndarray, ac_charge: np.ndarray, out: np.ndarray, ledger: np.ndarray,
              watch: np.ndarray | None = None) -> int:
    """Advance every unit by ``len(solar_w)`` steps (see :func:`_run_steps`).

    Returns the first step count after which a unit left its ``watch`` band (or n + 1): the
    units have then still run all n steps; the caller rolls back if it wants to stop there.
    """
    n = solar_w.shape[0]
    work = energy.shape[0] * n
    # NUMBA_NUM_THREADS=1 (a sweep's workers, one per core) keeps to the serial version
    threads = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # set at import
    kernel = run_steps_parallel if work >= PARALLEL_MIN_WORK and threads > 1 else \
        run_steps_serial
    if watch is None:
        watch = unwatched(energy.shape[0])
    trip = np.empty(energy.shape[0], dtype=np.int64)
    kernel(dt, solar_w, load_j, load_f, load_kw, house, pv_gain, wg, dcdc_loss, p,
           energy, capacity, bypass, ac_charge, out, ledger, watch, trip)
    return int(trip.min()) if trip.size else n + 1


def unwatched(n_units: int) -> np.ndarray:
    """An energy band per unit (see :func:`_run_steps`) that never trips."""
    table = np.empty((n_units, 2))
    table[:, 0], table[:, 1] = -np.inf, np.inf
    return table


_MARGIN = 1e-12  # [-] relative: rounding of rsoc and R is below 1e-15


@njit(cache=True)
def energy_band(nominal, r_lo, r_hi, soc_lo, soc_hi, capacity):  # pragma: no cover - compiled
    """The band of stored energy [Wh] outside which R = int(nominal · rsoc / 100) (apis-main's
    remaining Wh, rsoc = 100 · energy / capacity) may leave [r_lo, r_hi] or rsoc
    [soc_lo, soc_hi].  The band is a hair narrower than the exact one: the kernel compares
    energies without dividing, and may stop a step early, never late."""
    lo, hi = -np.inf, np.inf  # R and rsoc are never below 0 nor above nominal and 100
    if nominal > 0.0:
        if r_lo > 0.0:  # int(x) < r_lo ⇔ x < r_lo for whole r_lo
            lo = r_lo * capacity / nominal
        if r_hi < np.floor(nominal):  # int(x) > r_hi ⇔ x ≥ r_hi + 1
            hi = (r_hi + 1.0) * capacity / nominal
    elif r_lo > 0.0 or r_hi < 0.0:  # R is 0 whatever the energy: out of the band at once
        return np.inf, -np.inf
    if soc_lo > 0.0:
        lo = max(lo, soc_lo * capacity / 100.0)
    if soc_hi < 100.0:
        hi = min(hi, soc_hi * capacity / 100.0)
    if lo > -np.inf:
        lo += abs(lo) * _MARGIN + 1e-9
    if hi < np.inf:
        hi -= abs(hi) * _MARGIN + 1e-9
    return lo, hi


@njit(cache=True)
def energy_bands(watch, capacity):  # pragma: no cover - compiled
    """:func:`energy_band` of each row of a controller's watch table (units × 5: nominal [Wh],
    lowest and highest R, lowest and highest rsoc [%]) as the kernel's (units × 2) bands."""
    bands = np.empty((watch.shape[0], 2))
    for i in range(watch.shape[0]):
        bands[i, 0], bands[i, 1] = energy_band(watch[i, 0], watch[i, 1], watch[i, 2],
                                               watch[i, 3], watch[i, 4], capacity[i])
    return bands
