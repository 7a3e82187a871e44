"""The OpenAPI description: every status each path answers, with the JSON error's schema.

FastAPI describes a 200 and a 422 validation error of its own; the server answers its errors
(web/app.py, web/guard.py, web/protocol.py) as ``{"error", "field", "value", "accepted"}`` with
the statuses declared per path in web/routes.py.  :func:`install_openapi` rewrites the generated
description once, when it is first asked for: FastAPI's 422 goes, each path lists its statuses
with the error schema, and the parameters carry the ranges, choices and required flags the
handlers enforce (engine/rules.py), so that a client generating requests from the description
(schemathesis, tests/test_web_fuzz.py) sends what the server accepts, and gets a 4xx for the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from ..control import OPERATION_MODES
from ..engine import DCDC_RULES, EMU_RULES
from ..engine.rules import DCDC_REQUIRED
from ..modes import MODE_CODES
from ..runner.realtime import MAX_ACCELERATION
from .page import MAX_LIMIT, TEXT_COLUMNS, UNIT_COLUMNS
from .routes import ANY_PATH_ERRORS, ROUTES
from .unit_window import FILTER_MAX, ORDERS

__all__ = ["install_openapi", "described", "ERROR_SCHEMA", "STATUS_MEANINGS"]

#: The body of every error answer (``value`` is the value sent, as JSON allows: any type).
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "field", "value", "accepted"],
    "properties": {
        "error": {"type": "string", "description": "what was refused and why, in one sentence"},
        "field": {"type": "string", "description": "the parameter, header or setting refused"},
        "value": {"description": "the value that was sent (null when it was missing)"},
        "accepted": {"type": "string", "description": "what is accepted instead"},
    },
    "example": {"error": "dig=-1.0 is not accepted: a finite number in [0, 100] [A]",
                "field": "dig", "value": -1.0, "accepted": "a finite number in [0, 100] [A]"},
}

#: What each error status means on this server.
STATUS_MEANINGS: dict[int, str] = {
    400: "a value malformed, out of range or missing, or a request body on a GET",
    403: "refused by the guard: a Host not in allowedHosts, a client not in allow, or a "
         "cross-site browser request to a state-changing path",
    404: "an unknown unit id, path or save file",
    409: "the built-in controller drives the converters (operation mode not manual)",
    414: "the request line is longer than the server's limit",
    422: "the save file is not a valid save",
    431: "the request headers are larger than the server's limit",
    500: "the save file could not be written (not for lack of space)",
    507: "the disk holding the save file is full: the previous save is kept",
}

#: Query parameters a path requires although FastAPI sees them as optional (the handler
#: answers their absence with the rule's own message).
_REQUIRED = {"/set/dcdc/{oesid}": DCDC_REQUIRED, "/set/dcdc/voltage/{oesid}": ("dvg",),
             "/set/dcdc/current/{oesid}": ("dig",)}


#: What the parameters' schemas cannot say: rules across parameters, or the server's setup.
_NOTES = {
    "/set/emu/{oesid}": "At least one parameter: an empty query is refused (400, field query).",
    "/set/operationMode/{mode}": "Without a built-in controller (serve --controller apis) "
                                 "every mode is refused (400, field controller).",
}


def _column_pattern() -> str:
    names = "|".join((*TEXT_COLUMNS, *UNIT_COLUMNS))
    return f"^(({names})(,({names}))*)?$"  # empty: every column


def _parameter_schemas() -> dict[str, dict[str, Any]]:
    """Schema of each parameter by name, as the handlers check it."""
    schemas: dict[str, dict[str, Any]] = {
        name: {"type": "number", "minimum": rule.lo, "maximum": rule.hi}
        for name, rule in (*DCDC_RULES.items(), *EMU_RULES.items())}
    schemas["newacc"] = {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_ACCELERATION}
    schemas["since"] = {"type": "number"}
    schemas["fields"] = {"type": "string", "pattern": _column_pattern()}
    schemas["order"] = {"type": "string", "enum": list(ORDERS)}
    schemas["filter"] = {"type": "string", "maxLength": FILTER_MAX}
    schemas["offset"] = {"type": "integer", "minimum": 0}
    schemas["limit"] = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
    return schemas


_MODE_SCHEMAS = {"/set/dcdc/{oesid}": list(MODE_CODES),
                 "/set/operationMode/{mode}": list(OPERATION_MODES)}


def _parameter(path: str, parameter: dict[str, Any], schemas: dict[str, dict[str, Any]]) -> None:
    name = parameter["name"]
    kept = {k: v for k, v in parameter.get("schema", {}).items()
            if k in ("title", "description", "examples")}
    if name == "mode" and path in _MODE_SCHEMAS:
        parameter["schema"] = {**kept, "type": "string", "enum": _MODE_SCHEMAS[path]}
    elif name in schemas:
        parameter["schema"] = {**kept, **schemas[name]}
    if name in _REQUIRED.get(path, ()):
        parameter["required"] = True


def _responses(operation: dict[str, Any], statuses: tuple[int, ...]) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's validation error: this server answers 400
    for status in sorted(set(statuses) | set(ANY_PATH_ERRORS)):
        responses[str(status)] = {
            "description": STATUS_MEANINGS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def described(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (FastAPI's description) with this server's statuses, errors and parameters."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components["Error"] = ERROR_SCHEMA
    parameter_schemas = _parameter_schemas()
    for path, methods in schema.get("paths", {}).items():
        route = ROUTES.get(path)
        for operation in methods.values():
            _responses(operation, route.errors if route else ())
            if path in _NOTES:
                operation["description"] = _NOTES[path]
            for parameter in operation.get("parameters", []):
                _parameter(path, parameter, parameter_schemas)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`described` at ``/openapi.json`` (built once, at the first request)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if not getattr(app.state, "openapi_described", False):
            app.openapi_schema = described(generate())
            app.state.openapi_described = True
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
