"""The units' state as arrays: one entry per unit, in id order of creation.

Static per-unit document parts (identity, fixed device values) live in ``static`` as nested
dicts; everything the physics reads or writes is an array so the step is vectorised.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .kernel import LEDGER_FIELDS, OUT_FIELDS

__all__ = ["Units", "copy_tree"]


def copy_tree(tree: Any) -> Any:
    """A copy of nested dicts (leaves shared: they are immutable numbers and strings)."""
    return {k: copy_tree(v) for k, v in tree.items()} if isinstance(tree, dict) else tree


def _f(n: int = 0) -> np.ndarray:
    return np.zeros(n, dtype=np.float64)


@dataclass
class Units:
    """Arrays over units.  Powers [W], energies [Wh], voltages [V], currents [A]."""

    ids: list[str] = field(default_factory=list)
    static: list[dict[str, Any]] = field(default_factory=list)  # document parts not computed
    house: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pv_gain: np.ndarray = field(default_factory=_f)  # [W per data unit]
    capacity: np.ndarray = field(default_factory=_f)  # batterySize [Wh]
    energy: np.ndarray = field(default_factory=_f)  # stored energy [Wh], full precision
    bypass: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    ac_charge: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    mode: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    dvg: np.ndarray = field(default_factory=_f)  # DC grid target voltage [V]
    dig: np.ndarray = field(default_factory=_f)  # DC grid current limit [A]
    drg: np.ndarray = field(default_factory=_f)  # droop ratio [-]
    p1: np.ndarray = field(default_factory=_f)  # powermeter p1 (settable) [W]
    vg: np.ndarray = field(default_factory=_f)  # meter: grid voltage [V]
    ig: np.ndarray = field(default_factory=_f)  # meter: grid current, > 0 into the unit [A]
    wg: np.ndarray = field(default_factory=_f)  # meter: grid power vg·ig [W]
    dcdc_loss: np.ndarray = field(default_factory=_f)  # converter loss of its mode [W]
    out: np.ndarray = field(default_factory=lambda: np.zeros((0, len(OUT_FIELDS))))
    ledger: np.ndarray = field(default_factory=lambda: np.zeros((0, len(LEDGER_FIELDS))))
    kwh_base: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # kwh1, kwh2 [kWh]

    def __len__(self) -> int:
        return len(self.ids)

    def array_fields(self) -> list[str]:
        """Names of the per-unit array fields."""
        return [f.name for f in dataclasses.fields(self) if f.name not in ("ids", "static")]

    def appended(self, other: Units) -> Units:
        """A new container with ``other``'s units after this one's."""
        arrays = {name: np.concatenate([getattr(self, name), getattr(other, name)])
                  for name in self.array_fields()}
        return Units(ids=self.ids + other.ids, static=self.static + other.static, **arrays)

    def taken(self, index: np.ndarray | slice) -> Units:
        """A new container with the units at ``index`` (copies)."""
        positions = np.arange(len(self))[index]
        arrays = {name: getattr(self, name)[positions].copy() for name in self.array_fields()}
        return Units(ids=[self.ids[i] for i in positions],
                     static=[self.static[i] for i in positions], **arrays)

    @property
    def rsoc(self) -> np.ndarray:
        """Relative state of charge [%], full precision."""
        rsoc: np.ndarray = 100.0 * self.energy / self.capacity
        return rsoc
