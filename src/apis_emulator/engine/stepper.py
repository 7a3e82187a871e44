"""Compiled steps of the engine for a compiled controller (control/compiled.py).

A controller compiled with numba runs its rules between the physics steps without returning to
Python; it needs the step and the DC grid as compiled functions too.  These are the engine's
own rules, not new ones: the physics is the kernel of :mod:`.kernel` itself, and
:func:`apply_grid` is :meth:`Emulator._apply_grid` (with :func:`.grid.solve_grid`) for the
grids a controller makes: no reference, or one stiff reference (drg = 0), as apis-main runs
them.  ``tests/test_sharing_compiled.py`` holds both to the Python engine.

The arrays are the :class:`~.units.Units` arrays themselves (:meth:`Emulator.stepping`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..modes import Mode

__all__ = ["Stepping", "apply_grid", "single_stiff_reference", "GRID_FIELDS"]

_WAIT, _DISCHARGE, _REFERENCE, _CHARGE = (int(Mode.WAIT), int(Mode.DISCHARGE),
                                          int(Mode.VOLTAGE_REFERENCE), int(Mode.CHARGE))
_FLOW, _DCLOSS = 3, 5  # columns of Units.out (kernel.OUT_FIELDS)
#: The grid's scalars in ``Stepping.grid``: bus voltage [V], ramp voltage [V] (NaN: no ramp),
#: ramp rate [V/s].
GRID_FIELDS = ("bus_voltage", "ramp_voltage", "ramp_rate")


@dataclass
class Stepping:
    """What a compiled loop needs of the engine (the arrays are the engine's own)."""

    dt: float  # [s]
    params: np.ndarray  # kernel parameter vector
    losses: np.ndarray  # DC/DC loss by mode code [W]
    ugv: np.ndarray  # per unit: the grid's under-voltage threshold [V]
    load_kw: np.ndarray
    house: np.ndarray
    pv_gain: np.ndarray
    energy: np.ndarray
    capacity: np.ndarray
    bypass: np.ndarray
    ac_charge: np.ndarray
    out: np.ndarray
    ledger: np.ndarray
    mode: np.ndarray
    dvg: np.ndarray
    dig: np.ndarray
    drg: np.ndarray
    vg: np.ndarray
    ig: np.ndarray
    wg: np.ndarray
    dcdc_loss: np.ndarray
    grid: np.ndarray  # GRID_FIELDS


@njit(cache=True)
def _solve(mode, dvg, dig, drg, ig):  # pragma: no cover - compiled
    """solve_grid for no reference or one stiff one: the bus voltage; ``ig`` filled."""
    ref = -1
    demand = 0.0
    for i in range(mode.shape[0]):
        ig[i] = 0.0
        if mode[i] == _REFERENCE:
            ref = i
    if ref < 0:
        return 0.0
    for i in range(mode.shape[0]):
        if mode[i] == _CHARGE:
            ig[i] = dig[i]
        elif mode[i] == _DISCHARGE:
            ig[i] = -dig[i]
    demand = np.sum(ig)
    cap = dig[ref]
    tol = 1e-9 * (1.0 + abs(demand) + cap)
    if -cap - tol <= demand <= cap + tol:
        ig[ref] = -(min(max(demand, -cap), cap) * (cap / cap if cap > 0 else 0.0)) + 0.0
        return dvg[ref]
    scale = cap / abs(demand)  # overloaded: the converters' currents scaled alike
    for i in range(mode.shape[0]):
        ig[i] *= scale
    ig[ref] = -(cap if demand > 0 else -cap) + 0.0
    return dvg[ref]


@njit(cache=True)
def apply_grid(mode, dvg, dig, drg, vg, ig, wg, dcdc_loss, out, losses,
               grid):  # pragma: no cover - compiled
    """Emulator._apply_grid (shift_flow): bus voltage, ig, wg, losses, shown flow."""
    v = _solve(mode, dvg, dig, drg, ig)
    has_ref = False
    for i in range(mode.shape[0]):
        if mode[i] == _REFERENCE:
            has_ref = True
    if not has_ref:
        grid[1] = np.nan
    if not np.isnan(grid[1]):
        if grid[1] >= v:
            grid[1] = np.nan
        else:
            v = grid[1]
    grid[0] = v
    for i in range(mode.shape[0]):
        loss = losses[mode[i]]
        delta = loss - dcdc_loss[i]
        out[i, _FLOW] += v * ig[i] - wg[i] - delta
        out[i, _DCLOSS] += delta
        vg[i] = v
        wg[i] = v * ig[i]
        dcdc_loss[i] = loss


@njit(cache=True)
def single_stiff_reference(mode, drg, dvg):  # pragma: no cover - compiled
    """Whether the grid is one :func:`apply_grid` solves as solve_grid does."""
    refs = 0
    for i in range(mode.shape[0]):
        if mode[i] == _REFERENCE:
            refs += 1
            if drg[i] * dvg[i] > 1e-9 * max(dvg[i], 1.0):
                return False
    return refs <= 1
