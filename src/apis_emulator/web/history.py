"""The page's in-memory history: the last emulated hours of every unit and of the community.

Sampled by a listener of the real-time runner into a bounded ring buffer; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..engine import LEDGER_FIELDS, OUT_FIELDS, Emulator
from ..engine.units import Units

__all__ = ["History"]

_O = {name: i for i, name in enumerate(OUT_FIELDS)}
_L = {name: i for i, name in enumerate(LEDGER_FIELDS)}


@dataclass
class History:
    """The last ``size`` samples of every unit and of the community, at most one per ``spacing``.

    A listener of the runner (:meth:`sample`): cheap (a few vector copies once per emulated
    minute), no I/O, bounded memory (``size`` × units × 5 float32).  Each unit id keeps its own
    column for as long as the server runs; a unit that is absent at a sample gets NaN there.
    """

    size: int = 1440
    spacing: float = 60.0  # [s] of emulated time
    UNIT_SERIES: ClassVar[tuple[str, ...]] = ("rsoc", "pv", "load", "flow", "ig")
    COMMUNITY_SERIES: ClassVar[tuple[str, ...]] = ("pv", "load", "acin", "dcgrid", "vg", "rsoc")
    t: np.ndarray = field(init=False)  # emulated seconds since the start
    per_unit: np.ndarray = field(init=False)  # [sample, column, series]
    community: np.ndarray = field(init=False)  # [sample, series]
    count: int = 0  # samples taken ever
    columns: dict[str, int] = field(default_factory=dict)
    _last_slot: int = -1
    _units: object = None
    _cols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        self.t = np.full(self.size, np.nan)
        self.per_unit = np.full((self.size, 8, len(self.UNIT_SERIES)), np.nan, dtype=np.float32)
        self.community = np.full((self.size, len(self.COMMUNITY_SERIES)), np.nan)

    def clear(self) -> None:
        """Forget every sample (after a reset or a load)."""
        self.t[:] = np.nan
        self.per_unit[:] = np.nan
        self.community[:] = np.nan
        self.count = 0
        self._last_slot = -1

    def _columns_for(self, units: Units) -> np.ndarray:
        """Column of each present unit (cached while the units container is the same)."""
        if self._units is not units:
            for unit_id in units.ids:
                self.columns.setdefault(unit_id, len(self.columns))
            need = len(self.columns)
            have = self.per_unit.shape[1]
            if need > have:  # one new array, the old columns copied in (no third copy:
                # with 10,000 units a column block is 288 MB)
                grown = np.full((self.size, max(need, 2 * have), len(self.UNIT_SERIES)),
                                np.nan, np.float32)
                grown[:, :have] = self.per_unit
                self.per_unit = grown
            self._cols = np.array([self.columns[u] for u in units.ids], dtype=np.int64)
            self._units = units
        return self._cols

    def sample(self, em: Emulator) -> None:
        """Take a sample if the emulated clock entered a new ``spacing`` slot."""
        slot = int(em.emulated_s // self.spacing)
        if slot == self._last_slot:
            return
        if em.step_index == 0:  # nothing has been computed yet: all powers read 0
            return
        if slot < self._last_slot:  # the clock went back: old samples no longer line up
            self.clear()
        self._last_slot = slot
        u = em.units
        row = self.count % self.size
        self.t[row] = em.emulated_s
        self.per_unit[row] = np.nan
        if len(u):
            cols = self._columns_for(u)
            out = u.out
            self.per_unit[row, cols] = np.column_stack(
                [100.0 * u.energy / u.capacity, out[:, _O["pv"]], out[:, _O["load"]],
                 out[:, _O["flow"]], u.ig])
            self.community[row] = (out[:, _O["pv"]].sum(), out[:, _O["load"]].sum(),
                                   out[:, _O["p2"]].sum(), np.clip(u.wg, 0.0, None).sum(),
                                   em.bus_voltage, 100.0 * u.energy.sum() / u.capacity.sum())
        else:
            self.community[row] = (0.0, 0.0, 0.0, 0.0, em.bus_voltage, np.nan)
        self.count += 1

    def _rows(self, since: float | None) -> np.ndarray:
        """Ring rows in time order (oldest first), only those after ``since``."""
        n = min(self.count, self.size)
        rows = (np.arange(self.count - n, self.count) % self.size).astype(np.int64)
        if since is not None and n:
            rows = rows[self.t[rows] > since]
        return rows

    def unit_series(self, unit_id: str, since: float | None = None) -> dict[str, Any]:
        """One unit's sampled series since ``since`` [s]."""
        rows = self._rows(since)
        col = self.columns.get(unit_id)
        data = {"t": self.t[rows]}
        for k, name in enumerate(self.UNIT_SERIES):
            data[name] = (self.per_unit[rows, col, k].astype(np.float64) if col is not None
                          else np.full(len(rows), np.nan))
        return data

    def community_series(self, since: float | None = None) -> dict[str, Any]:
        """The community's sampled series since ``since`` [s]."""
        rows = self._rows(since)
        data = {"t": self.t[rows]}
        for k, name in enumerate(self.COMMUNITY_SERIES):
            data[name] = self.community[rows, k]
        return data
