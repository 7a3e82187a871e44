"""``/get/log`` written from the engine's arrays: every unit's document as JSON bytes at once.

A unit's document (``engine.render.unit_document``) is the same tree at every step but for its
computed values.  Once per units container, each unit's document is written by orjson with a
marker in place of each computed value and cut at the markers; the text between two values
(a *fragment*: keys, the unit's identity and fixed device values) is kept.  At each emulator
version the computed values are columns over all units (numpy, the arithmetic of
``unit_document``), written as JSON by one orjson call per kind, and set between the fragments:
no dict per unit, one join (of text: ``str.join`` is 2.5 times faster than ``bytes.join``
over many short pieces).  The bytes are those of ``orjson.dumps(all_documents(em))``
(tests/test_web_log.py holds the two together).

Where the time went before (10,000 units, a quiet core): 0.39 s building the documents (70 % of
it copying each unit's static tree), 0.04 s orjson; now ≈ 0.05 s in all (bench/README.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from ..engine import LEDGER_FIELDS, OUT_FIELDS, Emulator
from ..engine.render import unit_document
from ..engine.units import Units
from ..modes import Mode

__all__ = ["LogRenderer", "IrregularDocuments"]

_O = {name: i for i, name in enumerate(OUT_FIELDS)}
_L = {name: i for i, name in enumerate(LEDGER_FIELDS)}
_MARK = re.compile(r'"\\u0000(\d+)\\u0000"')  # a marker "\0<hole>\0" as orjson writes it
_BYPASS, _BATTERY = 5, 2  # emu.ups_operation_mode.mode
_MOST_MINUTES = 999 * 60 + 59  # dischargeable_time shows at most 999 h 59 min


class IrregularDocuments(Exception):  # noqa: N818 - a condition, not an error of the user
    """The units' documents do not share one order of their computed values."""


#: Every computed value of a document: its path and kind ("float" and "int": a column over
#: units; "mode": a text by converter mode; "const": one value for every unit).
HOLES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("emu", "charge_discharge_power"), "float"), (("emu", "rsoc"), "float"),
    (("emu", "battery_rsoc"), "float"), (("emu", "battery_voltage"), "const"),
    (("emu", "battery_current"), "float"), (("emu", "pvc_charge_power"), "float"),
    (("emu", "pvc_charge_current"), "float"), (("emu", "ups_output_power"), "float"),
    (("emu", "ups_output_current"), "float"), (("emu", "ups_operation_mode", "mode"), "int"),
    *((("emu", "system_time", k), "const") for k in ("year", "month", "day", "hour", "minute")),
    (("emu", "dischargeable_time", "hour"), "int"),
    (("emu", "dischargeable_time", "minute"), "int"),
    *((("dcdc", "status", k), "mode")
      for k in ("status", "statusName", "operationMode", "runningState")),
    *((("dcdc", "powermeter", k), "float") for k in ("p1", "p2", "i1", "kwh1", "kwh2")),
    *((("dcdc", "meter", k), "float") for k in ("vg", "ig", "wg")),
    (("dcdc", "meter", "vb"), "const"),
    *((("dcdc", "meter", k), "float") for k in ("wb", "ib")),
    (("dcdc", "vdis", "dvg"), "float"), (("dcdc", "vdis", "drg"), "float"),
    (("dcdc", "param", "dig"), "float"), (("time",), "const"),
)


@dataclass
class _Layout:
    """The fragments of one units container, and the fixed numbers its values divide by."""

    units: Units  #: the container it was cut from (held, so its identity stays its own)
    order: list[int]  #: hole numbers in document order
    statics: list[str]  #: units × holes + 1 fragments, unit keys and braces included
    pvc_volts: np.ndarray  #: emu.pvc_charge_voltage [V] (0: no current shown)
    ups_volts: np.ndarray  #: emu.ups_output_voltage [V]
    meter_volts: np.ndarray  #: dcdc.powermeter.v1 [V]


@dataclass
class LogRenderer:
    """Writes ``/get/log`` from the arrays; the fragments are cut again when the units change.

    Each unit's fragments are kept by its static tree (shared between the containers that add
    and remove make), so adding a unit cuts one document, not all of them.
    """

    _layout: _Layout | None = None
    _cuts: dict[int, tuple[dict[str, Any], list[int], list[str]]] = field(
        default_factory=dict)

    def render(self, em: Emulator) -> bytes:
        """``/get/log`` as JSON bytes; IrregularDocuments if the fast way cannot write it."""
        layout = self._layout_for(em)
        tokens = _tokens(em, layout)
        pieces: list[str] = [""] * (2 * len(tokens) + 1)
        pieces[0::2] = layout.statics
        pieces[1::2] = tokens
        return "".join(pieces).encode()

    def _layout_for(self, em: Emulator) -> _Layout:
        if self._layout is None or self._layout.units is not em.units:
            self._layout = self._cut_all(em)
        return self._layout

    def _cut_all(self, em: Emulator) -> _Layout:
        u = em.units
        cuts = {}
        alike = _Alike()
        for i, static in enumerate(u.static):
            kept = self._cuts.get(id(static))
            if kept is None or kept[0] is not static:
                kept = (static, *alike.cut(em, i))
            cuts[id(static)] = kept
        self._cuts = cuts
        orders = {tuple(cuts[id(st)][1]) for st in u.static}
        if len(orders) > 1:
            raise IrregularDocuments(f"{len(orders)} orders of the computed values")
        per_unit = [cuts[id(st)][2] for st in u.static]
        return _Layout(units=u, order=list(orders.pop()) if orders else [],
                       statics=_joined(u.ids, per_unit),
                       pvc_volts=_static_numbers(u, ("emu", "pvc_charge_voltage")),
                       ups_volts=_static_numbers(u, ("emu", "ups_output_voltage")),
                       meter_volts=_static_numbers(u, ("dcdc", "powermeter", "v1")))


@dataclass
class _Alike:
    """Cuts documents, once per shape: units whose static trees differ only in ``oesunit``
    (identity: id, display, addresses) share every fragment but the one holding it.

    Cutting a document costs ≈ 150 µs (it is rendered whole); a unit like one already cut
    costs ≈ 15 µs, so 10,000 units from one template are cut in 0.15 s instead of 1.5 s.
    """

    shapes: dict[tuple[tuple[str, ...], bytes], tuple[list[int], list[str], int, str]] = \
        field(default_factory=dict)
    pool: dict[str, str] = field(default_factory=dict)  # one copy of each fragment text

    def cut(self, em: Emulator, i: int) -> tuple[list[int], list[str]]:
        """(hole numbers in document order, fragments) of unit ``i``."""
        static = em.units.static[i]
        shape = (tuple(static), orjson.dumps({k: v for k, v in static.items()
                                              if k != "oesunit"}))
        own = '"oesunit":' + orjson.dumps(static.get("oesunit")).decode()
        known = self.shapes.get(shape)
        if known is not None and known[2] >= 0:
            order, fragments, at, theirs = known
            mine = list(fragments)
            mine[at] = fragments[at].replace(theirs, own)
            return order, mine
        order, fragments = _cut(em, i)
        fragments = [self.pool.setdefault(f, f) for f in fragments]
        places = [n for n, f in enumerate(fragments) if own in f]
        once = len(places) == 1 and fragments[places[0]].count(own) == 1
        self.shapes[shape] = (order, fragments, places[0] if once else -1, own)
        return order, fragments


def _cut(em: Emulator, i: int) -> tuple[list[int], list[str]]:
    """Unit ``i``'s document cut at its computed values: (hole numbers in order, fragments)."""
    doc = unit_document(em, i)
    for number, (path, _) in enumerate(HOLES):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = f"\0{number}\0"
    parts = _MARK.split(orjson.dumps(doc).decode())
    order = [int(x) for x in parts[1::2]]
    if sorted(order) != list(range(len(HOLES))):
        raise IrregularDocuments(f"unit {em.units.ids[i]}: computed values missing or repeated")
    return order, parts[0::2]


def _joined(ids: list[str], per_unit: list[list[str]]) -> list[str]:
    """One list of fragments for the whole ``{"E001": {…}, "E002": {…}}``."""
    if not ids:
        return ["{}"]
    flat: list[str] = []
    tail = "{"
    for unit_id, fragments in zip(ids, per_unit, strict=True):
        flat.append(tail + orjson.dumps(unit_id).decode() + ":" + fragments[0])
        flat.extend(fragments[1:-1])
        tail = fragments[-1] + ","
    flat.append(tail[:-1] + "}")
    return flat


def _static_numbers(u: Units, path: tuple[str, ...]) -> np.ndarray:
    """A fixed number of every unit's static tree (missing or null: 0)."""
    values = []
    for static in u.static:
        node: Any = static
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        values.append(float(node or 0.0))
    return np.array(values, dtype=np.float64)


# ---------------------------------------------------------------------- values at a version
def _tokens(em: Emulator, layout: _Layout) -> list[str]:
    """The JSON text of every computed value, unit after unit, in document order."""
    n, k = len(em.units), len(HOLES)
    texts = _column_texts(_columns(em, layout), n)
    consts = _consts(em)
    by_mode = _mode_texts(em)
    mode_index = em.units.mode
    tokens: list[str] = [""] * (n * k)
    for position, j in enumerate(layout.order):
        path, kind = HOLES[j]
        if kind == "const":
            tokens[position::k] = [consts[path]] * n
        elif kind == "mode":
            tokens[position::k] = by_mode[path[-1]][mode_index].tolist()
        else:
            tokens[position::k] = texts[path]
    return tokens


def _column_texts(columns: dict[tuple[str, ...], np.ndarray],
                  n: int) -> dict[tuple[str, ...], list[str]]:
    """The JSON text of each value of each column.  A column holding one value for every unit
    (dvg, dig, p1 … of a quiet town) is written once; a column that is another's array
    (rsoc, battery_rsoc) is written once; the rest in one orjson call per dtype."""
    texts: dict[tuple[str, ...], list[str]] = {}
    varying: dict[int, tuple[np.ndarray, list[tuple[str, ...]]]] = {}
    for path, column in columns.items():
        if n and _all_alike(column):
            texts[path] = [orjson.dumps(column[:1], option=orjson.OPT_SERIALIZE_NUMPY)
                           .decode()[1:-1]] * n
        else:
            varying.setdefault(id(column), (column, []))[1].append(path)
    for dtype in (np.float64, np.int64):
        group = [(c, paths) for c, paths in varying.values() if c.dtype == dtype]
        split = _split_matrix([c for c, _ in group], n)
        for m, (_, paths) in enumerate(group):
            for path in paths:
                texts[path] = split[m::len(group)]
    return texts


def _all_alike(column: np.ndarray) -> bool:
    """Whether every value has the same bits (0.0 and -0.0 are written apart, NaN alike)."""
    bits = column.view(np.int64)
    return bool((bits == bits[0]).all())


def _split_matrix(columns: list[np.ndarray], n: int) -> list[str]:
    """The JSON text of each value of ``columns``, unit after unit (one orjson call)."""
    if n == 0 or not columns:
        return []
    text = orjson.dumps(np.column_stack(columns), option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return text[2:-2].replace("],[", ",").split(",")


def _divided(top: np.ndarray, by: np.ndarray) -> np.ndarray:
    """``top / by`` where ``by`` is not 0, else 0.0 (``x / v if v else 0.0``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        result: np.ndarray = np.where(by != 0, top / np.where(by != 0, by, 1.0), 0.0)
    return result


def _dischargeable(energy: np.ndarray, flow: np.ndarray, load: np.ndarray,
                   dcloss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hours and minutes each battery lasts at its discharge (or at its load if idle)."""
    drain = np.where(flow < 0, -flow, load + dcloss)
    lasting = (drain > 0) & (energy > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        minutes = np.where(lasting, np.minimum(
            np.trunc(energy / np.where(lasting, drain, 1.0) * 60.0), _MOST_MINUTES), 0.0)
    whole = minutes.astype(np.int64)
    return whole // 60, whole % 60


def _columns(em: Emulator, layout: _Layout) -> dict[tuple[str, ...], np.ndarray]:
    """Every float and int value over units, by path: ``unit_document``'s arithmetic."""
    u, volts = em.units, em.settings.batteryVoltage
    out = u.out
    flow, pv, load = out[:, _O["flow"]], out[:, _O["pv"]], out[:, _O["load"]]
    rsoc = 100.0 * u.energy / u.capacity
    wb = u.wg - u.dcdc_loss
    hours, minutes = _dischargeable(u.energy, flow, load, out[:, _O["dcloss"]])
    values: dict[tuple[str, ...], np.ndarray] = {
        ("emu", "charge_discharge_power"): np.abs(flow), ("emu", "rsoc"): rsoc,
        ("emu", "battery_rsoc"): rsoc, ("emu", "battery_current"): flow / volts,
        ("emu", "pvc_charge_power"): pv,
        ("emu", "pvc_charge_current"): _divided(pv, layout.pvc_volts),
        ("emu", "ups_output_power"): load,
        ("emu", "ups_output_current"): _divided(load, layout.ups_volts),
        ("emu", "ups_operation_mode", "mode"): np.where(u.bypass, _BYPASS, _BATTERY),
        ("emu", "dischargeable_time", "hour"): hours,
        ("emu", "dischargeable_time", "minute"): minutes,
        ("dcdc", "powermeter", "p1"): u.p1, ("dcdc", "powermeter", "p2"): out[:, _O["p2"]],
        ("dcdc", "powermeter", "i1"): _divided(u.p1, layout.meter_volts),
        ("dcdc", "powermeter", "kwh1"): u.kwh_base[:, 0],
        ("dcdc", "powermeter", "kwh2"): u.kwh_base[:, 1] + u.ledger[:, _L["acin"]] / 1000.0,
        ("dcdc", "meter", "vg"): u.vg, ("dcdc", "meter", "ig"): u.ig,
        ("dcdc", "meter", "wg"): u.wg, ("dcdc", "meter", "wb"): wb,
        ("dcdc", "meter", "ib"): wb / volts,
        ("dcdc", "vdis", "dvg"): u.dvg, ("dcdc", "vdis", "drg"): u.drg,
        ("dcdc", "param", "dig"): u.dig,
    }
    kinds = dict(HOLES)
    return {path: np.asarray(v, dtype=np.int64 if kinds[path] == "int" else np.float64)
            for path, v in values.items()}


def _consts(em: Emulator) -> dict[tuple[str, ...], str]:
    """The values every unit shows alike: battery voltage, the emulated time."""
    now, volts = em.now, em.settings.batteryVoltage
    values: dict[tuple[str, ...], Any] = {
        ("emu", "battery_voltage"): volts, ("dcdc", "meter", "vb"): volts,
        ("time",): now.strftime("%Y/%m/%d-%H:%M:%S")}
    for key in ("year", "month", "day", "hour", "minute"):
        values[("emu", "system_time", key)] = getattr(now, key)
    return {path: orjson.dumps(value).decode() for path, value in values.items()}


def _mode_texts(em: Emulator) -> dict[str, np.ndarray]:
    """Each dcdc.status text by converter mode (index: the engine's mode number)."""
    s = em.settings
    names: dict[str, Callable[[str], str]] = {
        "status": lambda code: code, "statusName": lambda code: s.modes[code],
        "operationMode": lambda code: s.modesOps[code],
        "runningState": lambda code: s.modesRunning[code]}
    return {key: np.array([orjson.dumps(name(m.code)).decode() for m in Mode], dtype=object)
            for key, name in names.items()}
