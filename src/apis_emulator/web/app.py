"""The HTTP API of specification §5 (for apis-main and the page), as a thin adapter.

Every handler is ``async`` and runs on the event loop that also steps the emulator, so a
request never sees a half-done step and no lock is needed.  GET stays GET, as apis-main sends
it.  Errors are mapped to HTTP in one place: an unknown unit → 404, a malformed or out-of-range
value → 400, both as JSON that names the parameter, the value and what is accepted; the state is
left exactly as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import Settings
from ..control import OPERATION_MODES
from ..engine import DCDC_RULES, EMU_RULES, Emulator, load_state, save_state
from ..engine.render import (
    set_current_reply,
    set_dcdc_reply,
    set_voltage_reply,
)
from ..engine.rules import MODE_ACCEPTED, NUMBER_ACCEPTED, required
from ..errors import (
    ControlledError,
    EmulatorError,
    InvalidValueError,
    MissingStateFileError,
    SaveWriteError,
    StateFileError,
    UnknownUnitError,
)
from ..modes import MODE_CODES
from ..runner import RealTimeRunner
from .answers import error_body
from .compress import install_gzip
from .guard import RequestGuard
from .openapi import install_openapi
from .page import WINDOW_ACCEPTED, install_page
from .routes import route
from .state import FastReads, WebState, read_state_file, write_atomically

__all__ = ["create_app"]

log = logging.getLogger(__name__)

UnitId = Annotated[str, Path(description="unit id, e.g. E001", examples=["E001"])]
Volts = Annotated[float | None, Query(description=DCDC_RULES["dvg"].description,
                                      examples=[350.0])]
Amps = Annotated[float | None, Query(description=DCDC_RULES["dig"].description, examples=[1.0])]
Droop = Annotated[float | None, Query(description=DCDC_RULES["drg"].description,
                                      examples=[0.0])]
Meter1 = Annotated[float | None, Query(description=DCDC_RULES["p1"].description)]
Meter2 = Annotated[float | None, Query(description=DCDC_RULES["p2"].description)]
ModeCode = Annotated[Literal[MODE_CODES] | None,  # type: ignore[valid-type]
                     Query(description="DC/DC mode code, " + MODE_ACCEPTED)]
Rsoc = Annotated[float | None, Query(description=EMU_RULES["rsoc"].description)]
BatteryShown = Annotated[float | None, Query(
    description=EMU_RULES["charge_discharge_power"].description)]
UpsShown = Annotated[float | None, Query(description=EMU_RULES["ups_output_power"].description)]
PvShown = Annotated[float | None, Query(description=EMU_RULES["pvc_charge_power"].description)]


def _json(data: bytes | Any, status: int = 200) -> Response:
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    return Response(body, status_code=status, media_type="application/json")


def _error(status: int, message: str, field: str, value: Any, accepted: str) -> Response:
    return _json(error_body(message, field, value, accepted), status)


def _require(name: str, value: Any) -> Any:
    if value is None:
        raise InvalidValueError(name, None, required(name))
    return value


def _number_json(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def create_app(emulator: Emulator, settings: Settings,
               runner: RealTimeRunner | None = None, run_in_background: bool = True) -> FastAPI:
    """The ASGI app serving ``emulator``; with ``run_in_background`` the lifespan paces it."""
    runner = runner or RealTimeRunner(emulator, settings.acceleration, settings.sleeptime,
                                      do_updates=settings.doUpdates)
    state = WebState(emulator=emulator, settings=settings, runner=runner)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = None
        runner.restart_clock()
        if run_in_background:
            task = asyncio.create_task(runner.run(stop), name="emulation")
        log.info("emulator started: %d units, acceleration %g, step %g s",
                 len(emulator.units), runner.acceleration, emulator.dt)
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            for close in state.on_shutdown:
                await asyncio.to_thread(close)
            log.info("emulator stopped at %s", emulator.time_string())

    app = FastAPI(title="apis-emulator", version="0.1.0", lifespan=lifespan,
                  description="Hardware emulator for apis-main (specification §5). "
                              "Sign convention: ig > 0 = current from the DC grid into the unit.")
    app.state.web = state
    install_gzip(app)  # innermost: the fast path answers the polled reads before it
    app.add_middleware(FastReads, state=state)
    app.add_middleware(RequestGuard, allow=settings.allow,  # added last: runs first
                       allowed_hosts=settings.allowedHosts)
    _install_errors(app, state)
    install_openapi(app)
    _user_routes(app, state)
    _apis_main_routes(app, state)
    _sharing_routes(app, state)
    install_page(app, state)
    return app


def _install_errors(app: FastAPI, state: WebState) -> None:
    """Every refusal as the JSON error, mapped from the exception hierarchy in one place."""

    @app.exception_handler(UnknownUnitError)
    async def unknown_unit(request: Request, exc: UnknownUnitError) -> Response:
        log.warning("refused %s: %s", request.url.path, exc)
        return _error(404, str(exc), "oesid", exc.unit_id, "an existing unit id")

    @app.exception_handler(InvalidValueError)
    async def invalid(request: Request, exc: InvalidValueError) -> Response:
        log.warning("refused %s?%s: %s", request.url.path, request.url.query, exc)
        return _error(400, str(exc), exc.field, exc.value, exc.accepted)

    @app.exception_handler(StateFileError)
    async def bad_file(request: Request, exc: StateFileError) -> Response:
        log.warning("refused %s: %s", request.url.path, exc)
        status = 404 if isinstance(exc, MissingStateFileError) else 422
        return _error(status, str(exc), "lastSavePath", str(state.save_path),
                      "a save file written by Save All (/save)")

    @app.exception_handler(SaveWriteError)
    async def not_saved(request: Request, exc: SaveWriteError) -> Response:
        log.error("%s", exc)
        return _error(507 if exc.full else 500, str(exc), "lastSavePath", exc.path,
                      "a writable folder with room for the save file")

    @app.exception_handler(ControlledError)
    async def controlled(request: Request, exc: ControlledError) -> Response:
        log.warning("refused %s: %s", request.url.path, exc)
        return _error(409, str(exc), "controller", "apis",
                      "converter commands while the operation mode is manual")

    @app.exception_handler(EmulatorError)
    async def other(request: Request, exc: EmulatorError) -> Response:
        log.warning("refused %s: %s", request.url.path, exc)
        return _error(400, str(exc), "request", request.url.path, "see docs/api.md")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        field, value, accepted = _http_refusal(request, exc.status_code)
        response = _error(exc.status_code, f"{field} {value!r} is not accepted: {accepted}",
                          field, value, accepted)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        loc = first.get("loc", ("", "?"))
        name = str(loc[-1])
        value = first.get("input")
        accepted = _accepted_for(name, first)
        message = f"{name}={value!r} is not accepted: {accepted}"
        log.warning("refused %s?%s: %s", request.url.path, request.url.query, message)
        return _error(400, message, name, value, accepted)


def _http_refusal(request: Request, status: int) -> tuple[str, str, str]:
    """(field, value, accepted) of a refusal by the router: no such path, or not a GET."""
    if status == 405:
        return "method", request.method, "GET (every path of the API is a GET)"
    return "path", request.url.path, "a path of the API (see /openapi.json) or the page /"


def _accepted_for(name: str, error: dict[str, Any]) -> str:
    if name == "mode":
        return MODE_ACCEPTED
    if error.get("type") == "missing":
        return "a value (the parameter is required)"
    return WINDOW_ACCEPTED.get(name, NUMBER_ACCEPTED)


def _user_routes(app: FastAPI, state: WebState) -> None:
    em = state.emulator

    @route(app, "/restart")
    async def restart() -> Response:
        em.reset()
        log.info("reset: %d units with standard parameters", len(em.units))
        return _json(state.all_units())

    @route(app, "/add/unit")
    async def add_unit() -> Response:
        log.info("added unit %s", em.add_unit())
        return _json(state.all_units())

    @route(app, "/remove/unit")
    async def remove_unit() -> Response:
        log.info("removed unit %s", em.remove_unit())
        return _json(state.all_units())

    @route(app, "/get/log")
    async def get_log() -> Response:
        return _json(state.all_units())

    @route(app, "/save")
    async def save() -> Response:
        data = orjson.dumps(save_state(em))
        async with state.save_lock:
            try:
                await asyncio.to_thread(write_atomically, state.save_path, data)
            except OSError as exc:  # disk full (507) or another write failure (500)
                raise SaveWriteError(state.save_path, exc) from None
        log.info("saved %d units to %s", len(em.units), state.save_path)
        return _json(state.all_units())

    @route(app, "/get/last")
    async def get_last() -> Response:
        content = await asyncio.to_thread(read_state_file, state.save_path)
        load_state(em, content, str(state.save_path))
        log.info("loaded %d units from %s", len(em.units), state.save_path)
        return _json(state.all_units())

    @route(app, "/get/emu/{oesid}")
    async def get_emu(oesid: UnitId) -> Response:
        return _json(state.unit_read("emu", oesid))

    @route(app, "/get/acc")
    async def get_acc() -> Response:
        return _json(_number_json(state.runner.acceleration))

    @route(app, "/set/acc/{newacc}")
    async def set_acc(newacc: Annotated[str, Path(description="new acceleration, > 0")]
                      ) -> Response:
        acc = state.runner.set_acceleration(newacc)
        log.info("acceleration set to %g", acc)
        return _json(_number_json(acc))

    @route(app, "/set/emu/{oesid}")
    async def set_emu(request: Request, oesid: UnitId, rsoc: Rsoc = None,
                      charge_discharge_power: BatteryShown = None,
                      ups_output_power: UpsShown = None, pvc_charge_power: PvShown = None
                      ) -> Response:
        for key, raw in request.query_params.multi_items():
            if key not in EMU_RULES:  # a nameless one (``?=1``) is named "query"
                raise InvalidValueError(key or "query", raw,
                                        f"one of the keys {', '.join(EMU_RULES)}")
        given = {"rsoc": rsoc, "charge_discharge_power": charge_discharge_power,
                 "ups_output_power": ups_output_power, "pvc_charge_power": pvc_charge_power}
        values: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        em.set_emu(oesid, values)
        return _json(state.all_units())


def _outside_command_allowed(state: WebState) -> None:
    """ControlledError (409) while a built-in controller drives the converters."""
    controller = state.runner.schedule.controller
    if controller is not None and controller.drives_converters:
        raise ControlledError(
            f"the built-in controller ({controller.name}, operation mode "
            f"{controller.operation_mode}) drives the converters: set its operation mode to "
            "manual (/set/operationMode/manual) to command them from outside, or serve "
            "without --controller")


def _sharing_routes(app: FastAPI, state: WebState) -> None:
    schedule = state.runner.schedule

    @route(app, "/get/deals")
    async def get_deals() -> Response:
        controller = schedule.controller
        if controller is None:
            return _json({"controller": "none", "operation_mode": None, "active": [],
                          "finished": []})
        return _json(controller.status(schedule.view()))

    @route(app, "/get/operationMode")
    async def get_operation_mode() -> Response:
        controller = schedule.controller
        return _json({"controller": controller.name if controller else "none",
                      "operation_mode": controller.operation_mode if controller else None,
                      "accepted": list(OPERATION_MODES)})

    @route(app, "/set/operationMode/{mode}")
    async def set_operation_mode(mode: Annotated[str, Path(
            description="the global operation mode: " + ", ".join(OPERATION_MODES))]
            ) -> Response:
        controller = schedule.controller
        if controller is None:
            raise InvalidValueError("controller", "none",
                                    "a served run with --controller apis")
        controller.set_operation_mode(mode)
        log.info("operation mode set to %s", mode)
        return _json({"controller": controller.name, "operation_mode": mode})


def _apis_main_routes(app: FastAPI, state: WebState) -> None:
    em = state.emulator

    @route(app, "/get/unit/{oesid}")
    async def get_unit(oesid: UnitId) -> Response:
        return _json(state.unit_read("unit", oesid))

    @route(app, "/get/dcdc/status/{oesid}")
    async def get_dcdc_status(oesid: UnitId) -> Response:
        return _json(state.unit_read("status", oesid))

    @route(app, "/get/dcdc/{oesid}")
    async def get_dcdc(oesid: UnitId) -> Response:
        return _json(state.unit_read("dcdc", oesid))

    @route(app, "/set/dcdc/{oesid}")
    async def set_dcdc(oesid: UnitId, mode: ModeCode = None, dvg: Volts = None,
                       dig: Amps = None, drg: Droop = None, p1: Meter1 = None,
                       p2: Meter2 = None) -> Response:
        em.index(oesid)
        _outside_command_allowed(state)
        for name, value in (("mode", mode), ("dvg", dvg), ("dig", dig)):
            _require(name, value)
        em.set_dcdc(oesid, mode=mode, dvg=dvg, dig=dig, drg=drg, p1=p1, p2=p2)
        return _json(set_dcdc_reply(state.document(oesid)))

    @route(app, "/set/dcdc/voltage/{oesid}")
    async def set_dcdc_voltage(oesid: UnitId, dvg: Volts = None, drg: Droop = None) -> Response:
        em.index(oesid)
        _outside_command_allowed(state)
        _require("dvg", dvg)
        em.set_dcdc_voltage(oesid, dvg=dvg, drg=drg)  # type: ignore[arg-type]
        return _json(set_voltage_reply(state.document(oesid)))

    @route(app, "/set/dcdc/current/{oesid}")
    async def set_dcdc_current(oesid: UnitId, dig: Amps = None) -> Response:
        em.index(oesid)
        _outside_command_allowed(state)
        _require("dig", dig)
        em.set_dcdc_current(oesid, dig=dig)  # type: ignore[arg-type]
        return _json(set_current_reply(state.document(oesid)))

