"""Unit documents (shared/docs/unit-json.md) rendered from the engine's arrays, and back.

The document is a view, not the state: it is built on demand from the arrays, with the static
parts of each unit (identity, fixed device values) taken from its template copy.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import numpy as np

from ..config import Settings
from ..errors import InvalidValueError, StateFileError
from ..modes import MODE_CODES, Mode
from .kernel import LEDGER_FIELDS, OUT_FIELDS
from .rules import DCDC_RULES, EMU_RULES
from .units import Units, copy_tree

__all__ = ["unit_document", "all_documents", "unit_view", "dcdc_status_view", "dcdc_view",
           "set_dcdc_reply", "set_voltage_reply", "set_current_reply", "units_from_documents",
           "DocumentSource", "UnitFactory"]

_O = {name: i for i, name in enumerate(OUT_FIELDS)}
_L = {name: i for i, name in enumerate(LEDGER_FIELDS)}
BYPASS_MODE, BATTERY_MODE = 5, 2


class DocumentSource(Protocol):
    """What a unit document is rendered from: the units' arrays, the settings, the time."""

    @property
    def units(self) -> Units:
        """The units' arrays."""
        ...

    @property
    def settings(self) -> Settings:
        """The settings (battery voltage, mode names)."""
        ...

    @property
    def now(self) -> dt.datetime:
        """The emulated time the document shows."""
        ...


class UnitFactory(DocumentSource, Protocol):
    """What saved documents are loaded into: new standard units of a data set's households."""

    def new_units(self, ids: list[str]) -> Units:
        """New units with the standard parameters."""
        ...

    @property
    def households(self) -> int:
        """Households of the data set."""
        ...


def _dischargeable(energy: float, flow: float, load: float, dcloss: float) -> tuple[int, int]:
    """Hours and minutes the battery lasts at its present discharge (or at the load if idle)."""
    drain = -flow if flow < 0 else load + dcloss
    if drain <= 0 or energy <= 0:
        return 0, 0
    minutes = min(int(energy / drain * 60.0), 999 * 60 + 59)
    return minutes // 60, minutes % 60


def unit_document(em: DocumentSource, i: int) -> dict[str, Any]:
    """The full document of the unit at position ``i`` (as ``/get/log`` shows it)."""
    u, s = em.units, em.settings
    doc: dict[str, Any] = copy_tree(u.static[i])
    out = u.out[i]
    energy = float(u.energy[i])
    rsoc = 100.0 * energy / float(u.capacity[i])
    flow, pv, load, p2 = float(out[_O["flow"]]), float(out[_O["pv"]]), float(out[_O["load"]]), \
        float(out[_O["p2"]])
    now = em.now
    emu = doc["emu"]
    emu["charge_discharge_power"] = abs(flow)
    emu["rsoc"] = rsoc
    emu["battery_rsoc"] = rsoc
    emu["battery_voltage"] = s.batteryVoltage
    emu["battery_current"] = flow / s.batteryVoltage
    emu["pvc_charge_power"] = pv
    emu["pvc_charge_current"] = pv / emu["pvc_charge_voltage"] if emu["pvc_charge_voltage"] else 0.0
    emu["ups_output_power"] = load
    emu["ups_output_current"] = (load / emu["ups_output_voltage"]
                                 if emu["ups_output_voltage"] else 0.0)
    emu["ups_operation_mode"]["mode"] = BYPASS_MODE if u.bypass[i] else BATTERY_MODE
    emu["system_time"] = {"year": now.year, "month": now.month, "day": now.day,
                          "hour": now.hour, "minute": now.minute}
    hours, minutes = _dischargeable(energy, flow, load, float(out[_O["dcloss"]]))
    emu["dischargeable_time"] = {"hour": hours, "minute": minutes}
    dcdc = doc["dcdc"]
    code = Mode(int(u.mode[i])).code
    dcdc["status"].update(status=code, statusName=s.modes[code], operationMode=s.modesOps[code],
                          runningState=s.modesRunning[code])
    pm = dcdc["powermeter"]
    pm["p1"] = float(u.p1[i])
    pm["p2"] = p2
    pm["i1"] = float(u.p1[i]) / pm["v1"] if pm.get("v1") else 0.0
    pm["kwh1"] = float(u.kwh_base[i, 0])
    pm["kwh2"] = float(u.kwh_base[i, 1]) + float(u.ledger[i, _L["acin"]]) / 1000.0
    vg, ig = float(u.vg[i]), float(u.ig[i])
    wg = float(u.wg[i])
    wb = wg - float(u.dcdc_loss[i])
    meter = dcdc["meter"]
    meter.update(vg=vg, ig=ig, wg=wg, vb=s.batteryVoltage, wb=wb, ib=wb / s.batteryVoltage)
    dcdc["vdis"].update(dvg=float(u.dvg[i]), drg=float(u.drg[i]))
    dcdc["param"]["dig"] = float(u.dig[i])
    doc["time"] = now.strftime("%Y/%m/%d-%H:%M:%S")
    return doc


def all_documents(em: DocumentSource) -> dict[str, dict[str, Any]]:
    """``/get/log``: every unit's full document by id."""
    return {unit_id: unit_document(em, i) for i, unit_id in enumerate(em.units.ids)}


def _pick(tree: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: tree[k] for k in keys if k in tree}


def dcdc_view(doc: dict[str, Any]) -> dict[str, Any]:
    """``/get/dcdc``: the whole dcdc part."""
    part: dict[str, Any] = doc["dcdc"]
    return part


def unit_view(doc: dict[str, Any]) -> dict[str, Any]:
    """``/get/unit``: the document with dcdc trimmed as the reference emulator trims it."""
    d = doc["dcdc"]
    view = {k: v for k, v in doc.items() if k != "dcdc"}
    view["dcdc"] = {
        "status": _pick(d["status"], ("status", "alarmState", "operationMode")),
        "meter": _pick(d["meter"], ("wg", "tmp", "vb", "wb", "vg", "ib", "ig")),
        "vdis": _pick(d["vdis"], ("dvg", "drg")),
        "param": _pick(d["param"], ("dig",)),
    }
    return view


def dcdc_status_view(doc: dict[str, Any]) -> dict[str, Any]:
    """``/get/dcdc/status``: status and meter (apis-main's Checkpoint reads meter.vg/ig)."""
    d = doc["dcdc"]
    return {"status": _pick(d["status"], ("status", "alarmState", "operationMode")),
            "meter": d["meter"]}


def set_dcdc_reply(doc: dict[str, Any]) -> dict[str, Any]:
    """``/set/dcdc`` echo: status, meter, vdis, param (apis-main merges them into its cache)."""
    d = doc["dcdc"]
    return {"status": _pick(d["status"], ("status", "alarmState", "operationMode")),
            "meter": d["meter"], "vdis": d["vdis"], "param": d["param"]}


def set_voltage_reply(doc: dict[str, Any]) -> dict[str, Any]:
    """``/set/dcdc/voltage`` echo: meter and vdis."""
    return {"meter": doc["dcdc"]["meter"], "vdis": doc["dcdc"]["vdis"]}


def set_current_reply(doc: dict[str, Any]) -> dict[str, Any]:
    """``/set/dcdc/current`` echo: meter and param."""
    return {"meter": doc["dcdc"]["meter"], "param": doc["dcdc"]["param"]}


# ---------------------------------------------------------------------- loading documents
def _get(doc: Any, path: tuple[str, ...], where: str) -> Any:
    node = doc
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise StateFileError(f"{where}: missing {'.'.join(path)}")
        node = node[key]
    return node


def _number(doc: Any, path: tuple[str, ...], where: str, lo: float, hi: float) -> float:
    value = _get(doc, path, where)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            np.isfinite(value) and lo <= value <= hi):
        raise StateFileError(f"{where}: {'.'.join(path)}={value!r} is not a number in "
                             f"[{lo:g}, {hi:g}]")
    return float(value)


def units_from_documents(em: UnitFactory, state: Any, source: str) -> Units:
    """Units rebuilt from saved documents; StateFileError (naming the field) if any is invalid."""
    if not isinstance(state, dict) or not state:
        raise StateFileError(f"{source}: expected an object of unit documents by id")
    for unit_id, doc in state.items():
        if not isinstance(doc, dict):
            raise StateFileError(f"{source}: unit {unit_id!r} is not an object")
    ids = list(state)
    base = em.new_units(ids)
    for i, unit_id in enumerate(ids):
        _load_one(em, base, i, state[unit_id], f"{source}: unit {unit_id}")
    return base


def _rule(doc: Any, path: tuple[str, ...], where: str, rules: Any) -> float:
    """The number at ``path``, within the command rule of its last key."""
    rule = rules[path[-1]]
    return _number(doc, path, where, rule.lo, rule.hi)


def _load_one(em: UnitFactory, units: Units, i: int, doc: dict[str, Any], where: str) -> None:
    code = _get(doc, ("dcdc", "status", "status"), where)
    try:
        mode = Mode.from_code(code)
    except InvalidValueError:
        raise StateFileError(f"{where}: dcdc.status.status={code!r} is not one of "
                             f"{', '.join(MODE_CODES)}") from None
    extra: dict[str, Any] = doc["emulator"] if isinstance(doc.get("emulator"), dict) else {}
    capacity = float(extra.get("battery_size_wh", units.capacity[i]))
    if "energy_wh" in extra:
        energy = _number(extra, ("energy_wh",), where, 0.0, capacity)
    else:
        energy = _rule(doc, ("emu", "rsoc"), where, EMU_RULES) * capacity / 100.0
    units.capacity[i] = capacity
    units.energy[i] = energy
    units.mode[i] = mode
    units.dvg[i] = _rule(doc, ("dcdc", "vdis", "dvg"), where, DCDC_RULES)
    units.drg[i] = _rule(doc, ("dcdc", "vdis", "drg"), where, DCDC_RULES)
    units.dig[i] = _rule(doc, ("dcdc", "param", "dig"), where, DCDC_RULES)
    units.p1[i] = _rule(doc, ("dcdc", "powermeter", "p1"), where, DCDC_RULES)
    ups_mode = _get(doc, ("emu", "ups_operation_mode", "mode"), where)
    units.bypass[i] = bool(extra.get("bypass", ups_mode == BYPASS_MODE))
    units.ac_charge[i] = bool(extra.get("ac_charge", units.ac_charge[i]))
    if "pv_gain" in extra:
        units.pv_gain[i] = float(extra["pv_gain"])
    if "household" in extra:
        units.house[i] = int(extra["household"]) % em.households
    if isinstance(extra.get("ledger"), list) and len(extra["ledger"]) == len(LEDGER_FIELDS):
        units.ledger[i] = np.asarray(extra["ledger"], dtype=np.float64)
    units.out[i, _O["pv"]] = _rule(doc, ("emu", "pvc_charge_power"), where, EMU_RULES)
    units.out[i, _O["load"]] = _rule(doc, ("emu", "ups_output_power"), where, EMU_RULES)
    units.out[i, _O["p2"]] = _rule(doc, ("dcdc", "powermeter", "p2"), where, DCDC_RULES)
    current = _number(doc, ("emu", "battery_current"), where, -1e6, 1e6)
    units.out[i, _O["flow"]] = current * em.settings.batteryVoltage
    shown = extra.get("out")
    if isinstance(shown, list) and len(shown) == len(OUT_FIELDS) and all(
            isinstance(x, int | float) and np.isfinite(x) for x in shown):
        units.out[i] = shown  # the full-precision copy (losses too, not in the document)
    kwh1 = _number(doc, ("dcdc", "powermeter", "kwh1"), where, -1e12, 1e12)
    kwh2 = _number(doc, ("dcdc", "powermeter", "kwh2"), where, -1e12, 1e12)
    units.kwh_base[i] = (kwh1, kwh2 - units.ledger[i, _L["acin"]] / 1000.0)
    static = units.static[i]
    for part in ("oesunit",):
        if isinstance(doc.get(part), dict):
            static[part] = copy_tree(doc[part])
