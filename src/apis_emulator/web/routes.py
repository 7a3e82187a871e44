"""Every HTTP path, declared once: what it does, whether it changes state, how it is served.

The app registers its handlers through :func:`route`, which refuses a path that is not in this
table; the guard protects every path that is not marked ``reads`` (so a new path is guarded by
default); the fast path serves the paths marked ``fast`` straight from the render cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

__all__ = ["Route", "ROUTES", "ANY_PATH_ERRORS", "route", "state_changing_prefixes",
           "fast_prefixes", "fast_paths"]


@dataclass(frozen=True)
class Route:
    """One path of the API: its template, OpenAPI tag and summary, and how it is treated."""

    path: str
    tag: str
    summary: str
    reads: bool = False  #: only reads: not guarded against cross-site requests
    fast: str | None = None  #: served by the fast path from this read view of the unit
    #: error statuses of the path itself (the guard's and the HTTP layer's are in ANY_PATH_ERRORS)
    errors: tuple[int, ...] = ()

    @property
    def prefix(self) -> str:
        """The path up to its first parameter: what the guard and the fast path match."""
        return self.path.split("{", 1)[0]


def _r(path: str, tag: str, summary: str, **kw: Any) -> Route:
    return Route(path, tag, summary, **kw)


def _read(path: str, tag: str, summary: str, fast: str | None = None,
          errors: tuple[int, ...] = ()) -> Route:
    return Route(path, tag, summary, reads=True, fast=fast, errors=errors)


#: What every path may answer besides its own errors: 400 (a request body on a GET), 403 (the
#: guard: Host, allow-list, cross-site), 414/431 (request line or headers over the HTTP limits).
ANY_PATH_ERRORS = (400, 403, 414, 431)
_UNIT = (404,)  #: an unknown unit id
_COMMAND = (400, 404, 409)  #: a converter command: bad value, unknown unit, controller drives


ROUTES: dict[str, Route] = {r.path: r for r in (
    # specification §5, for the user and the page
    _r("/restart", "user", "Reset every unit to the standard parameters"),
    _r("/add/unit", "user", "Add one unit (id = highest + 1)"),
    _r("/remove/unit", "user", "Remove the unit with the highest id", errors=(400,)),
    _read("/get/log", "user", "Every unit's full document, by id", fast="log"),
    _r("/save", "user", "Save every unit (atomically) to lastSave.json", errors=(500, 507)),
    _r("/get/last", "user", "Load the units saved by /save", errors=(404, 422)),
    _read("/get/emu/{oesid}", "user", "The emu part of one unit", errors=_UNIT),
    _read("/get/acc", "user", "Acceleration: emulated seconds per wall second"),
    _r("/set/acc/{newacc}", "user", "Set the acceleration (> 0)", errors=(400,)),
    _r("/set/emu/{oesid}", "user",
       "Set emu values: rsoc [%], or the shown powers [W] until the next step",
       errors=(400, 404)),
    # specification §5, for apis-main
    _read("/get/unit/{oesid}", "apis-main", "One unit, dcdc trimmed", fast="unit", errors=_UNIT),
    _read("/get/dcdc/status/{oesid}", "apis-main", "DC/DC status and meter", fast="status",
          errors=_UNIT),
    _read("/get/dcdc/{oesid}", "apis-main", "Every DC/DC value of one unit", errors=_UNIT),
    _r("/set/dcdc/{oesid}", "apis-main",
       "Set mode, voltage, current (and droop, power meters) of one converter", errors=_COMMAND),
    _r("/set/dcdc/voltage/{oesid}", "apis-main",
       "Set the DC grid target voltage (and droop) of one converter", errors=_COMMAND),
    _r("/set/dcdc/current/{oesid}", "apis-main", "Set the DC grid current of one converter",
       errors=_COMMAND),
    # the built-in sharing controller
    _read("/get/deals", "sharing", "Active and recently finished deals of the built-in controller"),
    _read("/get/operationMode", "sharing", "The built-in controller's global operation mode"),
    _r("/set/operationMode/{mode}", "sharing",
       "Set the built-in controller's global operation mode "
       "(autonomous, heteronomous, stop, manual)", errors=(400,)),
    # the page's compact reads
    _read("/api/status", "page", "Clock, pace, unit count, bus voltage"),
    _read("/api/units", "page", "A compact column table of every unit", errors=(400,)),
    _read("/api/unit/{oesid}", "page", "The full document of one unit", errors=_UNIT),
    _read("/api/history", "page", "Sampled history of one unit, or of the community without unit",
          errors=(400, 404)),
    _read("/api/check/{oesid}", "page",
          "Validate a unit's values as /set/dcdc and /set/emu would, apply nothing",
          errors=(400, 404)),
)}


def route(app: FastAPI, path: str, **extra: Any) -> Callable[[Callable[..., Any]], Any]:
    """``@app.get`` for a path of :data:`ROUTES` (KeyError for an undeclared path)."""
    r = ROUTES[path]
    return app.get(r.path, tags=[r.tag], summary=r.summary, **extra)


def state_changing_prefixes(routes: Mapping[str, Route] | None = None) -> tuple[str, ...]:
    """Prefixes of every path that changes state (the guard refuses them cross-site)."""
    table = ROUTES if routes is None else routes
    return tuple(sorted({r.prefix for r in table.values() if not r.reads}))


def fast_prefixes() -> tuple[tuple[str, str], ...]:
    """(prefix, read view) of every per-unit path the fast path serves, longest first."""
    pairs = {(r.prefix, r.fast) for r in ROUTES.values() if r.fast and "{" in r.path}
    return tuple(sorted(((p, str(f)) for p, f in pairs), key=lambda p: -len(p[0])))


def fast_paths() -> frozenset[str]:
    """Whole paths (no parameter) the fast path serves: the community's documents."""
    return frozenset(r.path for r in ROUTES.values() if r.fast and "{" not in r.path)
