"""Save All / Load Last: the community as unit documents, each with its full-precision state.

Kept apart from :mod:`.emulator` so that the engine's state and its documents (:mod:`.render`)
do not import each other.
"""

from __future__ import annotations

from typing import Any

from .emulator import Emulator
from .render import unit_document, units_from_documents

__all__ = ["save_state", "load_state"]


def save_state(em: Emulator) -> dict[str, Any]:
    """All units as documents, each with the full-precision state under ``emulator``."""
    u = em.units
    state = {}
    for i, unit_id in enumerate(u.ids):
        doc = unit_document(em, i)
        doc["emulator"] = {"energy_wh": float(u.energy[i]),
                           "battery_size_wh": float(u.capacity[i]),
                           "pv_gain": float(u.pv_gain[i]), "household": int(u.house[i]),
                           "bypass": bool(u.bypass[i]), "ac_charge": bool(u.ac_charge[i]),
                           "ledger": [float(x) for x in u.ledger[i]],
                           "out": [float(x) for x in u.out[i]],
                           "ramp_voltage": em.ramp_voltage, "ramp_rate": em.ramp_rate}
        state[unit_id] = doc
    return state


def load_state(em: Emulator, state: Any, source: str = "state") -> None:
    """Replace the units by those of ``state`` (a save file's content), all or nothing."""
    units = units_from_documents(em, state, source)
    ramp_voltage, ramp_rate = None, 0.0
    extra = next(iter(state.values())).get("emulator")
    if isinstance(extra, dict) and isinstance(extra.get("ramp_voltage"), int | float):
        # the grid was rising when it was saved: it goes on rising from there
        ramp_voltage = float(extra["ramp_voltage"])
        ramp_rate = float(extra.get("ramp_rate") or 0.0)
    em.replace_state(units, ramp_voltage, ramp_rate)
