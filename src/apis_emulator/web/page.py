"""The page at ``/`` (specification §3, §4.1), its static files and its own compact endpoints.

The page drives the emulator through the Web API of §5 like any client (``/set/emu``,
``/set/dcdc``, ``/save`` …).  To stay light with 100 units it reads through a few endpoints of
its own, each answering one request with what is on the screen:

``GET /api/status``
    emulated time, acceleration, whether the emulation keeps pace, unit count, bus voltage.
``GET /api/units?fields=rsoc,pv,…``
    a compact column table of every unit (what the cards show), rendered once per emulator
    version however many browsers ask.
``GET /api/unit/<id>``
    the full document of the one unit whose details are open (``/get/log`` for one unit).
``GET /api/history?unit=<id>&since=<t>``
    the last emulated hours sampled by a listener of the runner into a bounded ring buffer
    (per unit: rsoc, PV, load, battery flow, grid current; community without ``unit``).
``GET /api/check/<id>?mode=…&rsoc=…``
    validates a unit's values with the very rules of ``/set/dcdc`` and ``/set/emu`` without
    applying anything, so that the page applies all of a unit's values or none.

Units and signs: powers [W], currents [A], voltages [V], rsoc [%], energies [Wh]; ``flow`` > 0
charges the battery; ``ig``/``wg`` > 0 flow from the DC grid into the unit (the unit takes).
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import numpy as np
import orjson
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..config import MODE_CODES
from ..engine import EMU_SETTABLE, LEDGER_FIELDS, OUT_FIELDS, Emulator
from ..engine.emulator import RANGES
from ..errors import InvalidValueError

if TYPE_CHECKING:
    from ..engine.units import Units
    from .state import WebState

__all__ = ["install_page", "History", "PaceMeter", "UNIT_COLUMNS", "check_unit_values"]

HERE = Path(__file__).resolve().parent
_O = {name: i for i, name in enumerate(OUT_FIELDS)}
_L = {name: i for i, name in enumerate(LEDGER_FIELDS)}
log = logging.getLogger(__name__)
_NUMBER_ACCEPTED = "a number, e.g. 350.0, 2.3 or 1.0E-4"  # as the API says it


def _out(name: str) -> Callable[[Units], np.ndarray]:
    return lambda u: u.out[:, _O[name]]


#: Columns of ``/api/units``: name → array over units (see the module docstring for units).
UNIT_COLUMNS: dict[str, Callable[[Units], np.ndarray]] = {
    "rsoc": lambda u: 100.0 * u.energy / u.capacity,  # [%]
    "pv": _out("pv"),  # PV controller output [W]
    "load": _out("load"),  # UPS output = household load [W]
    "p2": _out("p2"),  # AC mains input of the storage system [W]
    "flow": _out("flow"),  # battery flow [W], > 0 charging
    "p1": lambda u: u.p1,  # powermeter all [W]
    "vg": lambda u: u.vg,  # DC grid voltage [V]
    "ig": lambda u: u.ig,  # DC grid current [A], > 0 into the unit
    "wg": lambda u: u.wg,  # DC grid power [W], > 0 into the unit
    "wb": lambda u: u.wg - u.dcdc_loss,  # battery side of the converter [W]
    "dvg": lambda u: u.dvg,  # target voltage [V]
    "dig": lambda u: u.dig,  # current limit [A]
    "drg": lambda u: u.drg,  # droop ratio [-]
}
_TEXT_COLUMNS = ("display", "mode", "bypass")
_EXACT_COLUMNS = ("dvg", "dig", "drg", "p1")  # settings: sent back as they are, never rounded

#: The editable fields of a unit (§4.1 ①–⑩): key, number, label, unit, API, hint.
FORM_FIELDS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("charge_discharge_power", "1", "Charge discharge power", "W", "emu",
     "battery charge/discharge power, absolute; a value set shows until the next step"),
    ("rsoc", "2", "rsoc", "%", "emu", "relative state of charge, 0–100"),
    ("ups_output_power", "3", "ups output power", "W", "emu",
     "UPS output = household consumption; a value set shows until the next step"),
    ("pvc_charge_power", "4", "pvc charge power", "W", "emu",
     "PV controller output; a value set shows until the next step"),
    ("p1", "5", "Powermeter all", "W", "dcdc", "consumption of house and storage system (p1)"),
    ("p2", "6", "Powermeter p2", "W", "dcdc", "storage system consumption from AC mains (p2)"),
    ("mode", "7", "Status", "", "dcdc", "DC/DC converter mode"),
    ("dig", "8", "Grid current", "A", "dcdc", "DC grid maximum current (dig), 0–100"),
    ("dvg", "9", "Grid voltage", "V", "dcdc", "DC grid target voltage (dvg), 0–1000"),
    ("drg", "10", "Droop ratio", "", "dcdc",
     "DC grid droop rate (drg) as a fraction, 0–1: 0.039 = 3.9 %"),
)


# ---------------------------------------------------------------------- history
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
            if need > self.per_unit.shape[1]:
                grow = max(need, 2 * self.per_unit.shape[1]) - self.per_unit.shape[1]
                pad = np.full((self.size, grow, len(self.UNIT_SERIES)), np.nan, np.float32)
                self.per_unit = np.concatenate([self.per_unit, pad], axis=1)
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
        rows = self._rows(since)
        col = self.columns.get(unit_id)
        data = {"t": self.t[rows]}
        for k, name in enumerate(self.UNIT_SERIES):
            data[name] = (self.per_unit[rows, col, k].astype(np.float64) if col is not None
                          else np.full(len(rows), np.nan))
        return data

    def community_series(self, since: float | None = None) -> dict[str, Any]:
        rows = self._rows(since)
        data = {"t": self.t[rows]}
        for k, name in enumerate(self.COMMUNITY_SERIES):
            data[name] = self.community[rows, k]
        return data


# ---------------------------------------------------------------------- pace
@dataclass
class PaceMeter:
    """Whether the emulation keeps pace with acceleration × wall time.

    A listener of the runner: records (wall time, emulated time, time dropped) at each tick;
    the emulation keeps pace while the runner dropped no emulated time within ``window`` wall
    seconds and the ticks still come.
    """

    clock: Callable[[], float]
    window: float = 10.0  # [s] of wall time
    ticks: collections.deque[tuple[float, float, float]] = field(
        default_factory=lambda: collections.deque(maxlen=256))

    def record(self, em: Emulator, behind_s: float) -> None:
        now = self.clock()
        self.ticks.append((now, em.emulated_s, behind_s))
        while len(self.ticks) > 2 and now - self.ticks[0][0] > self.window:
            self.ticks.popleft()

    def status(self, behind_s: float, sleeptime: float) -> dict[str, Any]:
        now = self.clock()
        if not self.ticks:
            return {"keeps_pace": True, "actual": None, "last_tick_s": None}
        first, last = self.ticks[0], self.ticks[-1]
        span = last[0] - first[0]
        actual = (last[1] - first[1]) / span if span > 0 else None
        stalled = now - last[0] > 3.0 * sleeptime + 1.0
        dropped = behind_s > first[2]
        return {"keeps_pace": not (stalled or dropped), "actual": actual,
                "last_tick_s": now - last[0]}


# ---------------------------------------------------------------------- validation
def _number(name: str, raw: str, lo: float, hi: float) -> float:
    """``raw`` as the API reads it: a number (else the API's message), then its range."""
    try:
        value = float(raw)
    except ValueError:
        raise InvalidValueError(name, raw, _NUMBER_ACCEPTED) from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise InvalidValueError(name, value, f"a finite number in [{lo:g}, {hi:g}]")
    return value


def check_unit_values(values: dict[str, str]) -> list[InvalidValueError]:
    """Every refusal ``/set/dcdc`` and ``/set/emu`` would give for ``values`` ([] = accepted).

    Converter keys (mode, dvg, dig, drg, p1, p2) go to ``/set/dcdc``, which needs mode, dvg and
    dig together; EMU keys (rsoc and the shown powers) go to ``/set/emu``.
    """
    errors: list[InvalidValueError] = []
    dcdc_keys = ("mode", "dvg", "dig", "drg", "p1", "p2")
    for name, raw in values.items():
        try:
            if name == "mode":
                if raw not in MODE_CODES:
                    raise InvalidValueError("mode", raw, f"one of {', '.join(MODE_CODES)}")
            elif name in RANGES:
                _number(name, raw, *RANGES[name])
            elif name in EMU_SETTABLE:
                _number(name, raw, *EMU_SETTABLE[name])
            else:
                raise InvalidValueError(name, raw, "one of the keys "
                                        f"{', '.join((*dcdc_keys, *EMU_SETTABLE))}")
        except InvalidValueError as exc:
            errors.append(exc)
    if any(k in values for k in dcdc_keys):
        for name, accepted in (("mode", f"one of {', '.join(MODE_CODES)}"),
                               ("dvg", "a number in [0, 1000] [V]"),
                               ("dig", "a number in [0, 100] [A]")):
            if name not in values:
                errors.append(InvalidValueError(name, None, f"required: {accepted}"))
    return errors


# ---------------------------------------------------------------------- routes
def _json(data: Any, status: int = 200) -> Response:
    body = data if isinstance(data, bytes) else orjson.dumps(
        data, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _rounded(values: np.ndarray, digits: int = 3) -> list[Any]:
    """Numbers rounded for the screen (no -0.0); NaN becomes null when orjson writes it."""
    return (np.round(np.asarray(values, dtype=np.float64), digits) + 0.0).tolist()


def _epoch(em: Emulator) -> float:
    """Unix seconds of the emulated start, the data set's local time taken as UTC."""
    return em.start_time.replace(tzinfo=dt.UTC).timestamp()


def install_page(app: FastAPI, state: WebState) -> None:
    """Serve the page, its static files (from the package only) and its compact endpoints."""
    templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                            autoescape=select_autoescape(["html"]))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    history = History()
    pace = PaceMeter(clock=state.runner.clock)
    runner = state.runner

    def listen(em: Emulator) -> None:
        # a fault here must never stop the emulation: log it and go on
        try:
            history.sample(em)
            pace.record(em, runner.behind_s)
        except Exception:  # pragma: no cover - defensive
            log.exception("page history listener failed")

    runner.listeners.append(listen)
    app.state.page_history = history

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request) -> HTMLResponse:
        page = templates.get_template("index.html")
        config = {"refresh_s": 5, "modes": dict(state.settings.modes),
                  "fields": [{"key": f[0], "api": f[4]} for f in FORM_FIELDS]}
        return HTMLResponse(page.render(title="APIS HW emulator", fields=FORM_FIELDS,
                                        modes=state.settings.modes, config=config))

    @app.get("/api/status", tags=["page"], summary="Clock, pace, unit count, bus voltage")
    async def status() -> Response:
        em = state.emulator
        u = em.units
        ledger = u.ledger
        body = {"time": em.time_string(), "epoch": _epoch(em) + em.emulated_s,
                "emulated_s": em.emulated_s, "acceleration": runner.acceleration,
                "behind_s": runner.behind_s, "units": len(u), "bus_voltage": em.bus_voltage,
                "ramping": em.ramp_voltage is not None, "version": em.version,
                "dc_energy_wh": float(ledger[:, _L["wg_in"]].sum()) if len(u) else 0.0,
                "history_spacing_s": history.spacing, "history_size": history.size}
        body.update(pace.status(runner.behind_s, runner.sleeptime))
        return _json(body)

    @app.get("/api/units", tags=["page"], summary="A compact column table of every unit")
    async def units(fields: Annotated[str | None, Query(
            description="comma-separated columns; default all: "
                        + ", ".join((*_TEXT_COLUMNS, *UNIT_COLUMNS)))] = None) -> Response:
        wanted = _wanted_columns(fields)
        return _json(state.rendered("page-units", ",".join(wanted),
                                    lambda: _unit_table(state.emulator, wanted)))

    @app.get("/api/unit/{oesid}", tags=["page"], summary="The full document of one unit")
    async def unit(oesid: str) -> Response:
        return _json(state.rendered("page-unit", oesid, lambda: state.document(oesid)))

    @app.get("/api/history", tags=["page"],
             summary="Sampled history of one unit, or of the community without unit")
    async def get_history(unit: str | None = None, since: float | None = None) -> Response:
        em = state.emulator
        if unit is not None:
            em.index(unit)  # 404 for an unknown unit
            data = history.unit_series(unit, since)
        else:
            data = history.community_series(since)
        t = data.pop("t")
        body = {"unit": unit, "t": _rounded(t + _epoch(em), 0),
                **{k: _rounded(v, 2) for k, v in data.items()}}
        return _json(body)

    @app.get("/api/check/{oesid}", tags=["page"],
             summary="Validate a unit's values as /set/dcdc and /set/emu would, apply nothing")
    async def check(request: Request, oesid: str) -> Response:
        state.emulator.index(oesid)
        errors = check_unit_values(dict(request.query_params.items()))
        if not errors:
            return _json({"ok": True})
        listed = [{"error": str(e), "field": e.field, "value": _json_value(e.value),
                   "accepted": e.accepted} for e in errors]
        return _json({**listed[0], "errors": listed}, 400)


def _json_value(value: Any) -> Any:
    """JSON has no NaN or infinity: show the text that was sent, as the API does."""
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


def _wanted_columns(fields: str | None) -> tuple[str, ...]:
    known = (*_TEXT_COLUMNS, *UNIT_COLUMNS)
    if not fields:
        return known
    wanted = tuple(f.strip() for f in fields.split(",") if f.strip())
    for name in wanted:
        if name not in known:
            raise InvalidValueError("fields", name, f"columns among {', '.join(known)}")
    return wanted


def _unit_table(em: Emulator, wanted: tuple[str, ...]) -> dict[str, Any]:
    u = em.units
    table: dict[str, Any] = {"time": em.time_string(), "version": em.version, "ids": u.ids}
    for name in wanted:
        if name == "display":
            table[name] = [st["oesunit"].get("display", uid)
                           for uid, st in zip(u.ids, u.static, strict=True)]
        elif name == "mode":
            table[name] = [MODE_CODES[m] for m in u.mode.tolist()]
        elif name == "bypass":
            table[name] = u.bypass.tolist()
        elif name in _EXACT_COLUMNS:
            table[name] = (UNIT_COLUMNS[name](u) + 0.0).tolist()
        else:
            table[name] = _rounded(UNIT_COLUMNS[name](u))
    return table
