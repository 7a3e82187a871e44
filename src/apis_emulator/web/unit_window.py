"""The page's card list at any size, and the DC grid view's summary.

With 10,000 units the page shows the cards that are on screen, not all of them: it asks
``/api/units`` for a *window* — the units that match its filter, in its order, from ``offset``,
``limit`` of them — and the server filters and sorts over the arrays (numpy, ≈ 1 ms for
10,000 units).  The DC grid view needs only who holds the voltage, the strongest givers and
takers and the sums: :func:`grid_summary`, part of ``/api/status``.

Units and signs as in web/page.py: powers [W], currents [A], voltages [V], rsoc [%];
``wg`` > 0 flows from the DC grid into the unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine import OUT_FIELDS, Emulator
from ..engine.units import Units
from ..modes import Mode

__all__ = ["ORDERS", "UnitFinder", "grid_summary", "FILTER_MAX"]

_O = {name: i for i, name in enumerate(OUT_FIELDS)}
#: The page's order of the roles (REF, GIVE, TAKE, WAIT), by the engine's mode number.
_ROLE_RANK = np.array([{"REF": 0, "GIVE": 1, "TAKE": 2, "WAIT": 3}[m.tag] for m in Mode])
FILTER_MAX = 100  #: [characters] of a filter

#: The page's orders: a key over units, ascending (ties keep the id order).
ORDERS: dict[str, Callable[[Units], np.ndarray]] = {
    "id": lambda u: np.zeros(len(u)),
    "rsoc-desc": lambda u: -u.rsoc,
    "rsoc-asc": lambda u: u.rsoc,
    "pv-desc": lambda u: -u.out[:, _O["pv"]],
    "load-desc": lambda u: -u.out[:, _O["load"]],
    "flow-desc": lambda u: -u.out[:, _O["flow"]],
    "wg-abs": lambda u: -np.abs(u.wg),
    "mode": lambda u: _ROLE_RANK[u.mode].astype(np.float64),
}


@dataclass
class UnitFinder:
    """Which units match a filter, in which order: positions in the arrays.

    A unit matches when its ``"<id> <display name> <mode code> <role>"``, in lower case,
    holds the filter's text (lower-cased): ``e05``, ``müller``, ``0x0041``, ``take``.
    The texts are made once per units container and mode change (once per version).
    """

    _names: tuple[Units | None, list[str]] = (None, [])
    _texts: tuple[int, list[str]] = (-1, [])
    _modes: list[str] = field(default_factory=lambda: [f"{m.code} {m.tag}".lower()
                                                       for m in Mode])

    def positions(self, em: Emulator, order: str, text: str) -> np.ndarray:
        """Positions of the matching units, in ``order`` (a key of :data:`ORDERS`)."""
        u = em.units
        found = np.arange(len(u))
        needle = text.strip().lower()
        if needle:
            texts = self._texts_of(em)
            found = np.array([i for i, t in enumerate(texts) if needle in t], dtype=np.int64)
        if order != "id" and len(found):
            key = np.nan_to_num(ORDERS[order](u)[found], nan=0.0)
            found = found[np.argsort(key, kind="stable")]
        return found

    def _texts_of(self, em: Emulator) -> list[str]:
        if self._texts[0] != em.version:
            names = self._names_of(em.units)
            modes = self._modes
            self._texts = (em.version, [f"{name} {modes[m]}" for name, m in
                                        zip(names, em.units.mode.tolist(), strict=True)])
        return self._texts[1]

    def _names_of(self, u: Units) -> list[str]:
        if self._names[0] is not u:
            self._names = (u, [f"{uid} {st['oesunit'].get('display', uid)}".lower()
                               for uid, st in zip(u.ids, u.static, strict=True)])
        return self._names[1]


def _rows(em: Emulator, positions: np.ndarray) -> list[dict[str, Any]]:
    """What the grid view draws of each unit: id, mode code, wg [W], ig [A], dvg [V]."""
    u = em.units
    return [{"id": u.ids[i], "mode": Mode(int(u.mode[i])).code,
             "wg": round(float(u.wg[i]), 3), "ig": round(float(u.ig[i]), 3),
             "dvg": float(u.dvg[i])} for i in positions.tolist()]


def grid_summary(em: Emulator, strongest: int = 8, drawn_refs: int = 3,
                 named_refs: int = 12) -> dict[str, Any]:
    """Who holds the grid voltage, gives and takes: counts, watts and the units drawn.

    ``ref``: the voltage references in id order (the first ``drawn_refs`` drawn, the first
    ``named_refs`` named), ``w`` the power they give into the grid [W] (> 0 gives);
    ``give``/``take``: the ``strongest`` by |wg| and the sum of |wg| [W]; ``wait``: how many
    wait; ``max_w``: the largest |wg| of a unit that is not waiting (at least 50 W), which
    scales the arrows.
    """
    u = em.units
    wg = u.wg
    by_mode = {m: np.flatnonzero(u.mode == m) for m in Mode}
    refs = by_mode[Mode.VOLTAGE_REFERENCE]
    active = np.flatnonzero(u.mode != Mode.WAIT)

    def role(mode: Mode) -> dict[str, Any]:
        found = by_mode[mode]
        top = found[np.argsort(-np.abs(wg[found]), kind="stable")[:strongest]]
        return {"n": len(found), "w": float(np.abs(wg[found]).sum()), "units": _rows(em, top)}

    return {"ref": {"n": len(refs), "w": float(-wg[refs].sum()),
                    "units": _rows(em, refs[:drawn_refs]),
                    "ids": [u.ids[i] for i in refs[:named_refs].tolist()]},
            "give": role(Mode.DISCHARGE), "take": role(Mode.CHARGE),
            "wait": len(by_mode[Mode.WAIT]),
            "max_w": max(50.0, float(np.abs(wg[active]).max())) if len(active) else 50.0}
