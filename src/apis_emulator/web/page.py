"""The page at ``/`` (specification §3, §4.1), its static files and its own compact endpoints.

The page drives the emulator through the Web API of §5 like any client (``/set/emu``,
``/set/dcdc``, ``/save`` …).  To stay light with 100 units it reads through a few endpoints of
its own, each answering one request with what is on the screen:

``GET /api/status``
    emulated time, acceleration, whether the emulation keeps pace, unit count, bus voltage;
    ``grid``: what the DC grid view draws (web/unit_window.py ``grid_summary``);
    ``recording``: per output, rows written and not written and any write fault in force.
``GET /api/units?fields=rsoc,pv,…[&order=…&filter=…&offset=…&limit=…]``
    a compact column table of every unit (what the cards show), rendered once per emulator
    version however many browsers ask; with a window (``order``, ``filter``, ``offset``,
    ``limit``: web/unit_window.py) only the cards on the page's screen, of the units that
    match, in its order, with how many match (``matched``) and exist (``total``).
``GET /api/unit/<id>``
    the full document of the one unit whose details are open (``/get/log`` for one unit).
``GET /api/history?unit=<id>&since=<t>``
    the last emulated hours sampled by a listener of the runner into a bounded ring buffer
    (per unit: rsoc, PV, load, battery flow, grid current; community without ``unit``).
``GET /api/check/<id>?mode=…&rsoc=…``
    validates a unit's values with the very rules of ``/set/dcdc`` and ``/set/emu`` without
    applying anything, so that the page applies all of a unit's values or none.

The page also reads ``GET /get/deals`` (the built-in controller's deals, operation mode, shared
energy and battery status classes) when served with ``--controller apis``, only while its DC grid
view is on screen or a unit's details are open; its configuration (``index``) tells it the
controller, the operation modes, and each DC/DC mode code with its tag (the page writes none).

Units and signs: powers [W], currents [A], voltages [V], rsoc [%], energies [Wh]; ``flow`` > 0
charges the battery; ``ig``/``wg`` > 0 flow from the DC grid into the unit (the unit takes).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import orjson
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..control import OPERATION_MODES
from ..engine import DCDC_RULES, EMU_RULES, LEDGER_FIELDS, OUT_FIELDS, Emulator
from ..engine.rules import check_command
from ..errors import InvalidValueError
from ..modes import Mode
from ..runner.pace import PaceMeter
from .history import History
from .unit_window import FILTER_MAX, ORDERS, UnitFinder, grid_summary

if TYPE_CHECKING:
    from ..engine.units import Units
    from .state import WebState

__all__ = ["install_page", "UNIT_COLUMNS", "TEXT_COLUMNS", "MAX_LIMIT", "WINDOW_ACCEPTED"]

HERE = Path(__file__).resolve().parent
_O = {name: i for i, name in enumerate(OUT_FIELDS)}
_L = {name: i for i, name in enumerate(LEDGER_FIELDS)}
log = logging.getLogger(__name__)
#: The page's tag of each DC/DC mode code (CSS classes ``m-REF`` …): the page writes no code.
MODE_TAGS = {m.code: m.tag for m in Mode}


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
TEXT_COLUMNS = ("display", "mode", "bypass")
_EXACT_COLUMNS = ("dvg", "dig", "drg", "p1")  # settings: sent back as they are, never rounded
MAX_LIMIT = 1_000_000  #: most units of one window
#: What the window's parameters accept (the answer of a refused one).
WINDOW_ACCEPTED = {"offset": "a whole number >= 0",
                   "limit": f"a whole number in [1, {MAX_LIMIT}]",
                   "filter": f"a text of at most {FILTER_MAX} characters"}

#: The editable fields of a unit (§4.1 ①–⑩): key, number, label, unit, API, hint.
FORM_FIELDS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("charge_discharge_power", "1", "Charge discharge power", "W", "emu",
     "battery charge/discharge power, absolute; a value set shows until the next step; "
     + EMU_RULES["charge_discharge_power"].description),
    ("rsoc", "2", "rsoc", "%", "emu", EMU_RULES["rsoc"].description),
    ("ups_output_power", "3", "ups output power", "W", "emu",
     "UPS output = household consumption; a value set shows until the next step"),
    ("pvc_charge_power", "4", "pvc charge power", "W", "emu",
     "PV controller output; a value set shows until the next step"),
    ("p1", "5", "Powermeter all", "W", "dcdc", "consumption of house and storage system (p1)"),
    ("p2", "6", "Powermeter p2", "W", "dcdc", "storage system consumption from AC mains (p2)"),
    ("mode", "7", "Status", "", "dcdc", "DC/DC converter mode"),
    ("dig", "8", "Grid current", "A", "dcdc", DCDC_RULES["dig"].description + " (dig)"),
    ("dvg", "9", "Grid voltage", "V", "dcdc", DCDC_RULES["dvg"].description + " (dvg)"),
    ("drg", "10", "Droop ratio", "", "dcdc", DCDC_RULES["drg"].description + " (drg)"),
)


# ---------------------------------------------------------------------- routes
def _json(data: Any, status: int = 200) -> Response:
    body = data if isinstance(data, bytes) else orjson.dumps(
        data, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _rounded(values: np.ndarray, digits: int = 3) -> list[Any]:
    """Numbers rounded for the screen (no -0.0); NaN becomes null when orjson writes it."""
    rounded: list[Any] = (np.round(np.asarray(values, dtype=np.float64), digits) + 0.0).tolist()
    return rounded


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
        controller = runner.schedule.controller
        config = {"refresh_s": 5, "modes": dict(state.settings.modes),
                  "mode_tags": MODE_TAGS,
                  "fields": [{"key": f[0], "api": f[4]} for f in FORM_FIELDS],
                  "controller": controller.name if controller else "none",
                  "operation_modes": list(OPERATION_MODES),
                  "units": len(state.emulator.units), "orders": list(ORDERS)}
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
                "history_spacing_s": history.spacing, "history_size": history.size,
                "grid": orjson.Fragment(state.rendered("page-grid", "",
                                                       lambda: grid_summary(em)))}
        body.update(pace.status(runner.behind_s, runner.sleeptime))
        recording = getattr(app.state, "recording_status", None)  # set by web/server.py
        if recording is not None:  # per output: rows written and not, write faults
            body["recording"] = recording()
        return _json(body)

    finder = UnitFinder()

    @app.get("/api/units", tags=["page"], summary="A compact column table of every unit")
    async def units(fields: Annotated[str | None, Query(
            description="comma-separated columns; default all: "
                        + ", ".join((*TEXT_COLUMNS, *UNIT_COLUMNS)))] = None,
            order: Annotated[str | None, Query(
                description="a window: the units in this order (ties in id order)",
                examples=["rsoc-desc"])] = None,
            text: Annotated[str | None, Query(
                alias="filter", max_length=FILTER_MAX,
                description="a window: only the units whose id, display name, mode code or "
                            "role (REF, GIVE, TAKE, WAIT) holds this text, in any case")] = None,
            offset: Annotated[int | None, Query(
                ge=0, description="a window: the first unit shown, counted from 0")] = None,
            limit: Annotated[int | None, Query(
                ge=1, le=MAX_LIMIT, description="a window: how many units at most")] = None
            ) -> Response:
        wanted = _wanted_columns(fields)
        if order is None and text is None and offset is None and limit is None:
            return _json(state.rendered("page-units", ",".join(wanted),
                                        lambda: _unit_table(state.emulator, wanted)))
        order = _checked_order(order)
        key = f"{','.join(wanted)}|{order}|{offset}|{limit}|{text}"
        return _json(state.rendered("page-window", key, lambda: _window(
            state.emulator, wanted, finder.positions(state.emulator, order, text or ""),
            offset or 0, limit or MAX_LIMIT)))

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
        errors = check_command(dict(request.query_params.items()))
        if not errors:
            return _json({"ok": True})
        listed = [{"error": str(e), "field": e.field, "value": _json_value(e.value),
                   "accepted": e.accepted} for e in errors]
        return _json({**listed[0], "errors": listed}, 400)


def _json_value(value: Any) -> Any:
    """JSON has no NaN or infinity: show the text that was sent, as the API does."""
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


def _wanted_columns(fields: str | None) -> tuple[str, ...]:
    known = (*TEXT_COLUMNS, *UNIT_COLUMNS)
    if not fields:
        return known
    wanted = tuple(fields.split(","))  # exactly as the OpenAPI pattern says: no spaces
    for name in wanted:
        if name not in known:
            raise InvalidValueError("fields", name, f"columns among {', '.join(known)}")
    return wanted


def _checked_order(order: str | None) -> str:
    if order is None:
        return "id"
    if order not in ORDERS:
        raise InvalidValueError("order", order, f"one of {', '.join(ORDERS)}")
    return order


def _window(em: Emulator, wanted: tuple[str, ...], found: np.ndarray, offset: int,
            limit: int) -> dict[str, Any]:
    """The table of the matching units from ``offset``, ``limit`` of them, with the counts."""
    table = _unit_table(em, wanted, found[offset:offset + limit])
    table.update(total=len(em.units), matched=len(found), offset=offset)
    return table


def _unit_table(em: Emulator, wanted: tuple[str, ...],
                positions: np.ndarray | None = None) -> dict[str, Any]:
    """The columns ``wanted`` of the units at ``positions`` (default: every unit)."""
    u = em.units
    at = np.arange(len(u)) if positions is None else positions
    ids = u.ids if positions is None else [u.ids[i] for i in at.tolist()]
    table: dict[str, Any] = {"time": em.time_string(), "version": em.version, "ids": ids}
    for name in wanted:
        if name == "display":
            table[name] = [u.static[i]["oesunit"].get("display", u.ids[i])
                           for i in at.tolist()]
        elif name == "mode":
            table[name] = [Mode(m).code for m in u.mode[at].tolist()]
        elif name == "bypass":
            table[name] = u.bypass[at].tolist()
        elif name in _EXACT_COLUMNS:
            table[name] = (UNIT_COLUMNS[name](u)[at] + 0.0).tolist()
        else:
            table[name] = _rounded(UNIT_COLUMNS[name](u)[at])
    return table
