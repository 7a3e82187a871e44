"""The shared DC grid: which voltage it holds and which current each converter carries.

Sign convention: ``ig`` > 0 means current flows from the DC grid into the unit (it charges);
``wg = vg · ig`` [W] likewise.  All units sit on one bus (no line resistance), so they share vg.

Model (power-flow-model §6, extended to several voltage references):

- WAIT units carry no current; DISCHARGE units push ``dig`` into the grid (ig = −dig);
  CHARGE units draw ``dig`` (ig = +dig) (:class:`~apis_emulator.modes.Mode`).
- Each VOLTAGE_REFERENCE unit is a current-limited voltage source with droop: it injects
  ``s = (dvg − V) · dig / (drg · dvg)`` [A] (so at its full current ``dig`` the voltage has
  drooped by ``drg · dvg``), clipped to ``[−dig, +dig]``.  ``drg`` = 0 is a stiff source: it holds
  V = dvg exactly for any current within its limit.
- The bus voltage V is where the references' injections balance the converters' draw (Kirchhoff:
  Σ ig = 0).  One reference with drg = 0 gives V = dvg and ig_ref = −Σ(others), as the reference
  emulator did; two references at the same dvg with equal droop share the balance equally; a
  reference at its limit holds its limit and the others take the rest.
- With no reference the grid is down: V = 0 and every ig = 0.  If the converters draw more than
  all references together can carry, the references sit at their limits and the converters'
  currents are scaled down alike so that Kirchhoff still holds (the grid is overloaded).
"""

from __future__ import annotations

import numpy as np

from ..modes import Mode

__all__ = ["solve_grid", "solve_bus"]


def _injection(v: float, dvg: np.ndarray, dig: np.ndarray, slope: np.ndarray,
               stiff: np.ndarray) -> np.ndarray:
    """Current [A] each reference injects at bus voltage v, stiff ones away from their dvg."""
    with np.errstate(invalid="ignore"):
        droop = np.clip(slope * (dvg - v), -dig, dig)
    return np.where(stiff, np.sign(dvg - v) * dig, droop)


def solve_bus(dvg: np.ndarray, dig: np.ndarray, drg: np.ndarray,
              demand: float) -> tuple[float, np.ndarray, float]:
    """Bus voltage and references' injections for a converter ``demand`` [A] (Σ ig of the others).

    Returns ``(V [V], s [A] per reference, scale)``; ``scale`` < 1 when the grid is overloaded and
    the converters' currents must be scaled by it.
    """
    # a droop span drg·dvg of (almost) 0 V is stiff: it holds dvg exactly (drg 0, or dvg 0;
    # a span below 1e-9 of dvg would also make the breakpoints below coincide in floats)
    stiff = drg * dvg <= 1e-9 * np.maximum(dvg, 1.0)
    # the sums below round: a demand at a limit may miss it by an ulp and must still fit
    tol = 1e-9 * (1.0 + abs(demand) + float(dig.sum()))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # stiff ones masked
        slope = np.where(stiff, 0.0, dig / (drg * dvg))
        half_width = np.where(stiff, 0.0, np.where(slope > 0, dig / slope, 0.0))
    # a stiff reference at exactly V can take any current within its limit
    for v in np.unique(dvg[stiff]):
        at_v = stiff & (dvg == v)
        fixed = _injection(v, dvg, dig, slope, stiff)
        fixed[at_v] = 0.0
        rest = demand - fixed.sum()
        capacity = dig[at_v].sum()
        if -capacity - tol <= rest <= capacity + tol:
            share = dig[at_v] / capacity if capacity > 0 else np.zeros(int(at_v.sum()))
            fixed[at_v] = min(max(rest, -capacity), capacity) * share
            return float(v), fixed, 1.0
    # otherwise V lies where the droop references' sum crosses the demand
    points = np.unique(np.concatenate([dvg - half_width, dvg + half_width, dvg]))
    total = np.array([_injection(v, dvg, dig, slope, stiff).sum() for v in points])
    # just right of point j the stiff ones at that point push −dig, just left +dig
    right = total - np.array([dig[stiff & (dvg == v)].sum() for v in points])
    left = total + np.array([dig[stiff & (dvg == v)].sum() for v in points])
    for j in range(len(points) - 1):
        # over (points[j], points[j+1]) the injection falls from hi to lo
        hi, lo = right[j], left[j + 1]
        if lo <= demand <= hi and hi > lo:
            v = points[j] + (hi - demand) / (hi - lo) * (points[j + 1] - points[j])
            s = _injection(v, dvg, dig, slope, stiff)
            # a steep droop amplifies the rounding of v: the sloped ones take the residual
            free = ~stiff & (np.abs(s) < dig)
            if free.any():
                s[free] += (demand - s.sum()) * slope[free] / slope[free].sum()
            return float(v), s, 1.0
        if hi == lo == demand:
            v = points[j]
            return float(v), _injection(v, dvg, dig, slope, stiff), 1.0
    return _overloaded(dvg, dig, half_width, demand)


def _overloaded(dvg: np.ndarray, dig: np.ndarray, half_width: np.ndarray,
                demand: float) -> tuple[float, np.ndarray, float]:
    capacity = float(dig.sum())
    if demand > 0:  # the converters draw more than the references can give: voltage sags
        v = float(np.min(dvg - half_width))
        s = dig.copy()
    else:
        v = float(np.max(dvg + half_width))
        s = -dig.copy()
    scale = capacity / abs(demand) if demand else 1.0
    return v, s, scale


def solve_grid(mode: np.ndarray, dvg: np.ndarray, dig: np.ndarray,
               drg: np.ndarray) -> tuple[float, np.ndarray]:
    """Bus voltage [V] and every unit's grid current ig [A] for the converters' settings."""
    ig = np.zeros(mode.shape[0])
    refs = mode == Mode.VOLTAGE_REFERENCE
    if not refs.any():
        return 0.0, ig
    ig[mode == Mode.CHARGE] = dig[mode == Mode.CHARGE]
    ig[mode == Mode.DISCHARGE] = -dig[mode == Mode.DISCHARGE]
    v, injection, scale = solve_bus(dvg[refs], dig[refs], drg[refs], float(ig.sum()))
    if scale < 1.0:
        ig *= scale
    ig[refs] = -injection + 0.0  # + 0.0 turns -0.0 into 0.0
    return v, ig
