"""The power-flow step of specification §4.2.4, compiled (numba) and looped over time.

Units are independent between two changes of the DC grid (their grid power ``wg`` is fixed), so
the kernel runs blocks of up to :data:`BLOCK` units through ``n`` steps on their own (the blocks
in parallel when the call is large enough); within a block the loop over time is outside and
the loop over its units inside, compiled to vector instructions over state kept in the
processor's cache.  The served runner and the headless run call this very function; only the
number of steps per call differs, which changes nothing in the trajectory.

Per unit and step of Δt [s] (power-flow-model §2–§5; powers [W], energies [Wh]):

1. UPS hysteresis on rsoc: bypass on at rsoc ≤ BATT_OFF, off at ≥ BATT_ON; AC charging on at
   rsoc ≤ AC_ON, off at ≥ AC_OFF; in between the previous state holds.
2. Losses and the AC meter p2; battery flow = wg + pv + p2 − load − acloss − dcloss.
3. State of charge: E += flow · Δt / 3600 within [0, capacity].  Energy above the capacity is
   curtailed PV (``wasted``; what PV cannot cover is fed back to the AC side, p2 falls);
   energy below 0 is drawn from the AC mains (p2 rises).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

__all__ = ["run_steps", "Recording", "run_steps_until", "params_vector", "unwatched",
           "energy_bands", "energy_band", "warm_up", "OUT_FIELDS", "LEDGER_FIELDS", "P"]

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


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _unit_step(hours, p, e, cap, byp, acc, pv, load, wg, dcdc_loss):  # pragma: no cover
    """One unit's step of ``hours`` [h] from stored energy ``e`` [Wh] with PV ``pv`` and load
    ``load`` [W], grid power ``wg`` [W]: the new (e, bypass, AC charging) and the step's
    pv, load, p2, flow, acloss, dcloss, wasted [W].  ``p`` is :func:`_params`' tuple.

    Written with selects instead of branches, so that a loop over units compiles to vector
    instructions (4 units at a time); every value is the same operation on the same operands
    as the rule it implements, so the bits do not depend on the form."""
    # 1. UPS state from the state of charge at the start of the step
    rsoc = 100.0 * e / cap
    byp = True if rsoc <= p[9] else (False if rsoc >= p[10] else byp)  # BATT_OFF, BATT_ON
    acc = True if rsoc <= p[12] else (False if rsoc >= p[11] else acc)  # AC_ON, AC_OFF
    # 2. consumption, losses, AC meter
    bypass_loss = p[4] + (p[6] + (p[5] + p[3]) * load)  # transLoss_c + bypassModeLoss_c, _a
    dcloss = p[0] + dcdc_loss  # constantSystemLoss
    dcloss = dcloss if byp else dcloss + (p[2] + p[1] * load)  # battModeLoss_c, _a
    acloss = bypass_loss if byp else p[4]  # transLoss_c
    p2 = load + bypass_loss if byp else p[4]
    acloss = acloss + p[7] if acc else acloss  # ACChargeLoss
    p2 = p2 + (p[8] + p[7]) if acc else p2  # ACChargeAmount
    flow = wg + pv + p2 - load - acloss - dcloss
    # 3. state of charge within [0, capacity]: above it PV is curtailed and what PV cannot
    # cover is fed back to the AC side; below 0 the AC mains make up the shortfall
    e_new = e + flow * hours
    over, under = e_new > cap, e_new < 0.0
    beyond = (e_new - cap if over else -e_new) / hours  # the excess or the shortfall [W]
    wasted = min(beyond, pv) if over else 0.0
    pv -= wasted
    p2 = p2 - (beyond - wasted) if over else (p2 + beyond if under else p2)
    flow = flow - beyond if over else (flow + beyond if under else flow)
    e_new = cap if over else (0.0 if under else e_new)
    return e_new, byp, acc, pv, load, p2, flow, acloss, dcloss, wasted


#: Most units per block of :func:`run_steps`: a block's state (~20 arrays of BLOCK values)
#: stays in the processor's first-level cache while it runs through all the steps.
BLOCK = 64


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _block_step(k, hours, pp, solar, f, here, there, pv_gain, wg, dcdc_loss, capacity,
                e_lo, e_hi, energy, bypass, ac_charge, tripped, sums,
                last):  # pragma: no cover - compiled
    """Step k of a block of units (arrays of the block's length): ``here``/``there`` their
    load samples [kW] around the step, ``f`` the weight toward ``there``.  Updates the state,
    ``sums`` (6 × units: pv, load, p2, wasted, acloss, dcloss [W·steps]) and ``tripped`` (the
    first step count after which a unit left [e_lo, e_hi], untouched before); with ``last``
    (units × 7 as ``out``, else None: the loop then compiles to vector instructions) the step's
    values.  Returns whether a unit left its band at this step."""
    left = False
    for i in range(energy.shape[0]):
        e, byp, acc, pv, load, p2, flow, acloss, dcloss, wasted = _unit_step(
            hours, pp, energy[i], capacity[i], bypass[i], ac_charge[i], pv_gain[i] * solar,
            _between(here[i], there[i], f), wg[i], dcdc_loss[i])
        energy[i], bypass[i], ac_charge[i] = e, byp, acc
        if e_lo is not None:  # else compiled without the band
            outside = (e < e_lo[i]) | (e > e_hi[i])
            left |= outside
            t = tripped[i]
            tripped[i] = k + 1 if outside & (t > k) else t
        sums[0, i] += pv
        sums[1, i] += load
        sums[2, i] += p2
        sums[3, i] += wasted
        sums[4, i] += acloss
        sums[5, i] += dcloss
        if last is not None:
            last[i, 0], last[i, 1], last[i, 2], last[i, 3] = pv, load, p2, flow
            last[i, 4], last[i, 5], last[i, 6] = acloss, dcloss, wasted
    return left


@njit(cache=True, nogil=True, error_model="numpy")
def _shown_step(k, hours, pp, solar, f, here, there, pv_gain, wg, dcdc_loss, capacity,
                e_lo, e_hi, energy, bypass, ac_charge, tripped, sums,
                last):  # pragma: no cover - compiled
    """:func:`_block_step` keeping the step's values in ``last``: a call of its own, made at
    samples and at the end only, so that the step is inlined once per caller (each copy
    costs seconds of compiling)."""
    return _block_step(k, hours, pp, solar, f, here, there, pv_gain, wg, dcdc_loss, capacity,
                       e_lo, e_hi, energy, bypass, ac_charge, tripped, sums, last)


@njit(cache=True, nogil=True, error_model="numpy")
def _block(lo, hi, dt, solar_w, load_j, load_f, load_kw, house, pv_gain, wg, dcdc_loss, p,
           energy, capacity, bypass, ac_charge, out, ledger, watch, trip, rec_at, rec_energy,
           rec_out):  # pragma: no cover - compiled
    """Units lo … hi−1 through every step of :func:`run_steps` (contiguous copies of their
    state, so that the step's loop over them is vectorised and stays in cache)."""
    n_steps, n_samples = solar_w.shape[0], load_kw.shape[1]
    hours, pp = dt / 3600.0, _params(p)
    e, byp, acc = energy[lo:hi].copy(), bypass[lo:hi].copy(), ac_charge[lo:hi].copy()
    cap, gain, w, dl = capacity[lo:hi].copy(), pv_gain[lo:hi].copy(), wg[lo:hi].copy(), \
        dcdc_loss[lo:hi].copy()
    tripped = np.full(hi - lo, n_steps + 1, np.int64)
    if watch is None:  # pruned when compiled: the loop without the band check
        e_lo = e_hi = None
    else:
        e_lo, e_hi = watch[lo:hi, 0].copy(), watch[lo:hi, 1].copy()
    sums = np.zeros((6, hi - lo))
    here, there = np.empty(hi - lo), np.empty(hi - lo)
    loaded = -1  # the load sample in here/there
    r, booked = 0, 0  # the next recorded sample; steps already in the ledger
    for k in range(n_steps):
        j = load_j[k]
        if j != loaded:
            _load_samples(j, _next_sample(j, n_samples), load_kw, house[lo:hi], here, there)
            loaded = j
        recorded = r < rec_at.shape[0] and k + 1 == rec_at[r]
        if recorded or k == n_steps - 1:  # a sample, or the last step's values shown
            shown = rec_out[r, lo:hi] if recorded else out[lo:hi]
            _shown_step(k, hours, pp, solar_w[k], load_f[k], here, there, gain, w, dl, cap,
                        e_lo, e_hi, e, byp, acc, tripped, sums, shown)
        else:
            _block_step(k, hours, pp, solar_w[k], load_f[k], here, there, gain, w, dl, cap,
                        e_lo, e_hi, e, byp, acc, tripped, sums, None)
        if recorded:
            rec_energy[r, lo:hi] = e
            # the ledger as if the run had stopped here: the same sums, the same bits
            _book(lo, sums, wg, k + 1 - booked, hours, ledger)
            sums[:, :] = 0.0
            r, booked = r + 1, k + 1
    energy[lo:hi], bypass[lo:hi], ac_charge[lo:hi], trip[lo:hi] = e, byp, acc, tripped
    if n_steps > booked:
        _book(lo, sums, wg, n_steps - booked, hours, ledger)


@njit(cache=True, nogil=True)
def _load_samples(j, j1, load_kw, house, here, there):  # pragma: no cover - compiled
    """Load samples j and j1 [kW] of each unit's household."""
    for i in range(house.shape[0]):
        here[i], there[i] = load_kw[house[i], j], load_kw[house[i], j1]


@njit(cache=True, nogil=True)
def _book(lo, sums, wg, n_steps, hours, ledger):  # pragma: no cover - compiled
    """The steps' sums [W·steps] of units lo … into their ledger rows [Wh]."""
    for i in range(sums.shape[1]):
        u = lo + i
        for c in range(6):
            ledger[u, c] += sums[c, i] * hours
        ledger[u, 6] += wg[u] * n_steps * hours
        ledger[u, 7] += max(wg[u], 0.0) * n_steps * hours


def _stepping(blocks_loop: Callable[[int], Iterable[int]]) -> Callable[..., None]:
    """The kernel's Python function, looping over blocks of units with ``blocks_loop``
    (``prange`` or ``range``).  Each compilation needs a function of its own: numba's cache
    keys a compiled function by its bytecode and closure, not by ``parallel=``, so two
    compilations of one function share a cache entry and the serial code was loaded for the
    parallel one."""

    def _run_steps(dt, solar_w, load_j, load_f, load_kw, house, pv_gain, wg, dcdc_loss, p,
                   energy, capacity, bypass, ac_charge, out, ledger,
                   watch, trip, rec_at, rec_energy, rec_out):  # pragma: no cover - compiled
        """Advance every unit by ``len(solar_w)`` steps of ``dt`` [s].

        Per step k: ``solar_w[k]`` the solar value at the step's middle [W/m² or W], the load
        at ``load_kw[h, load_j[k]]`` interpolated with weight ``load_f[k]`` toward the next
        sample.  ``energy``, ``bypass``, ``ac_charge``, ``out`` and ``ledger`` are updated in
        place.

        ``watch`` (units × 2: lowest and highest stored energy [Wh], :func:`energy_bands`) is
        a band per unit; ``trip[i]`` gets the first step count after which unit i left it, or
        n_steps + 1.  With ``watch`` None (no controller) the steps are compiled without the
        check, a third faster.

        Samples of the individual log without stopping: after each step count in ``rec_at``
        (increasing, each below n_steps) the units' stored energy goes to a row of
        ``rec_energy`` (samples × units [Wh]) and the step's values to ``rec_out`` (samples ×
        units × 7 as ``out``); the ledger is booked there as a run stopped there would book
        it, so that recording changes no bit of the trajectory.
        """
        n_units = energy.shape[0]
        n_blocks = (n_units + BLOCK - 1) // BLOCK
        size = (n_units + n_blocks - 1) // max(n_blocks, 1)  # even blocks: even threads
        for b in blocks_loop(n_blocks):
            _block(b * size, min(n_units, (b + 1) * size), dt, solar_w, load_j, load_f,
                   load_kw, house, pv_gain, wg, dcdc_loss, p, energy, capacity, bypass,
                   ac_charge, out, ledger, watch, trip, rec_at, rec_energy, rec_out)

    return _run_steps


@njit(cache=True, nogil=True, error_model="numpy")
def run_steps_until(dt, solar_w, load_j, load_f, load_kw, house, pv_gain, wg, dcdc_loss, p,
                    energy, capacity, bypass, ac_charge, out, ledger,
                    watch):  # pragma: no cover - compiled
    """:func:`run_steps` for all units as one block, stopping right after the first step
    that takes a unit out of its ``watch`` band.  Returns (steps run, whether a band was
    left).  The same arithmetic in the same order per unit: the trajectory is the one of
    :func:`run_steps` over the steps run, bit for bit, with nothing rolled back.  The state
    before each step is copied, so that the last step can be computed again from its start
    for the values shown (keeping them at every step would stop the loop over units from
    being vectorised); that run's band check and sums are thrown away."""
    n_units, n_steps, n_samples = energy.shape[0], solar_w.shape[0], load_kw.shape[1]
    hours, pp = dt / 3600.0, _params(p)
    e, byp, acc = energy.copy(), bypass.copy(), ac_charge.copy()
    e0, byp0, acc0 = energy.copy(), bypass.copy(), ac_charge.copy()  # before the step
    e_lo, e_hi = watch[:, 0].copy(), watch[:, 1].copy()
    tripped = np.full(n_units, n_steps + 1, np.int64)
    sums = np.zeros((6, n_units))
    here, there = np.empty(n_units), np.empty(n_units)
    ran, left, loaded = 0, False, -1
    while ran < n_steps and not left:
        j = load_j[ran]
        if j != loaded:
            _load_samples(j, _next_sample(j, n_samples), load_kw, house, here, there)
            loaded = j
        e0[:], byp0[:], acc0[:] = e, byp, acc
        left = _block_step(ran, hours, pp, solar_w[ran], load_f[ran], here, there, pv_gain,
                           wg, dcdc_loss, capacity, e_lo, e_hi, e, byp, acc, tripped, sums,
                           None)
        ran += 1
    if ran > 0:  # the last step again, from its start, for the values shown
        k, again = ran - 1, np.zeros((6, n_units))
        _shown_step(k, hours, pp, solar_w[k], load_f[k], here, there, pv_gain, wg,
                    dcdc_loss, capacity, e_lo, e_hi, e0, byp0, acc0, tripped, again, out)
        _book(0, sums, wg, ran, hours, ledger)
    energy[:], bypass[:], ac_charge[:] = e, byp, acc
    return ran, left


#: Both compilations of one function: threads pay off only for large blocks of work.
run_steps_parallel = njit(cache=True, parallel=True, nogil=True)(_stepping(prange))
run_steps_serial = njit(cache=True, nogil=True)(_stepping(range))
#: Unit-steps per call from which the parallel version is used: a headless day of 100 houses
#: at Δt 10 s (864,000) takes ~8 ms on one core, the threads' start and join ~50 µs.
PARALLEL_MIN_WORK = 250_000


def run_steps(dt: float, solar_w: np.ndarray, load_j: np.ndarray, load_f: np.ndarray,
              load_kw: np.ndarray, house: np.ndarray, pv_gain: np.ndarray, wg: np.ndarray,
              dcdc_loss: np.ndarray, p: np.ndarray, energy: np.ndarray, capacity: np.ndarray,
              bypass: np.ndarray, ac_charge: np.ndarray, out: np.ndarray, ledger: np.ndarray,
              watch: np.ndarray | None = None,
              record: Recording | None = None) -> int:
    """Advance every unit by ``len(solar_w)`` steps (the compiled ``_run_steps`` of
    :func:`_stepping`, documented there); ``record``
    says where to keep samples taken on the way.

    Returns the first step count after which a unit left its ``watch`` band (or n + 1): the
    units have then still run all n steps; the caller rolls back if it wants to stop there.
    """
    n, n_units = solar_w.shape[0], energy.shape[0]
    work = n_units * n
    # NUMBA_NUM_THREADS=1 (a sweep's workers, one per core) keeps to the serial version
    threads = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # set at import
    kernel = run_steps_parallel if work >= PARALLEL_MIN_WORK and threads > 1 else \
        run_steps_serial
    record = record or Recording.none(n_units)
    if record.at.size and not (0 < record.at[0] and record.at[-1] < n
                               and np.all(np.diff(record.at) > 0)):
        raise ValueError(f"samples at step counts {record.at}: each in 1 … {n - 1}, increasing")
    trip = np.empty(n_units, dtype=np.int64)
    kernel(dt, solar_w, load_j, load_f, load_kw, house, pv_gain, wg, dcdc_loss, p,
           energy, capacity, bypass, ac_charge, out, ledger, watch, trip, record.at,
           record.energy, record.out)
    return int(trip.min()) if trip.size else n + 1


@dataclass(frozen=True)
class Recording:
    """Samples taken inside one kernel call: after step counts ``at``, the units' stored
    energy [Wh] (samples × units) and their step's values (samples × units × OUT_FIELDS)."""

    at: np.ndarray
    energy: np.ndarray
    out: np.ndarray

    @classmethod
    def after(cls, at: Sequence[int], n_units: int) -> Recording:
        """Room for samples after the step counts ``at``."""
        return cls(np.asarray(at, dtype=np.int64), np.empty((len(at), n_units)),
                   np.empty((len(at), n_units, len(OUT_FIELDS))))

    @classmethod
    def none(cls, n_units: int) -> Recording:
        return cls.after([], n_units)


def warm_up() -> float:
    """Compile, or load from numba's cache, every version of the kernel a run may call:
    serial and parallel, with and without a band, and :func:`run_steps_until`.  A server
    calls it before it listens: a first compile takes tens of seconds, and compiling holds
    the interpreter, so requests would wait for it.  Returns the seconds it took."""
    started = time.perf_counter()
    n_units, n = 2, 2
    arrays = (np.full(n, 100.0), np.zeros(n, np.int64), np.zeros(n), np.ones((1, 2)),
              np.zeros(n_units, np.int64), np.ones(n_units), np.zeros(n_units),
              np.zeros(n_units), np.zeros(len(P)) + 50.0, np.full(n_units, 10.0),
              np.full(n_units, 20.0), np.zeros(n_units, np.bool_), np.zeros(n_units, np.bool_),
              np.zeros((n_units, len(OUT_FIELDS))), np.zeros((n_units, len(LEDGER_FIELDS))))
    record, trip = Recording.after([1], n_units), np.empty(n_units, np.int64)
    kernels = [run_steps_serial]
    if numba.config.NUMBA_NUM_THREADS > 1:  # type: ignore[attr-defined]
        kernels.append(run_steps_parallel)
    for kernel in kernels:
        for watch in (None, unwatched(n_units)):
            kernel(10.0, *arrays, watch, trip, record.at, record.energy, record.out)
    run_steps_until(10.0, *arrays, unwatched(n_units))
    return time.perf_counter() - started


def unwatched(n_units: int) -> np.ndarray:
    """An energy band per unit (see :func:`run_steps`) that never trips."""
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
