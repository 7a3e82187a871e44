"""The sweep's view of the built-in controllers: names, apis-main's files, fields, building one.

A dotted axis such as ``policy.mediator.deal.gridCurrentA`` changes a deep copy of the run's
file (the shipped one unless the sweep names a file); a path that is not in the file, or a value
of another type than the file's, is refused naming the key.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

from .. import control
from ..errors import DataFileError, InvalidValueError
from ..inputs import read_apis_json
from .errors import SweepFileError

__all__ = ["FILES", "controller_names", "operation_modes", "default_step", "shipped_file",
           "read_file", "get_field", "set_field", "build_controller", "check_controller"]

#: apis-main's files a dotted axis may change, by the key that starts its path.
FILES = ("scenario", "policy")


def controller_names() -> tuple[str, ...]:
    """The accepted values of the ``controller`` option."""
    return tuple(control.CONTROLLERS)


def operation_modes() -> tuple[str, ...]:
    """The accepted values of the ``operation_mode`` option (apis-main's global mode)."""
    return tuple(control.OPERATION_MODES)


def default_step(time_scale: float) -> float:
    """The physics step [s] of a run with a controller, as ``simulate`` chooses it."""
    return float(control.controller_step(time_scale))


def shipped_file(kind: str) -> dict[str, Any]:
    """A fresh copy of apis-main's shipped ``scenario`` or ``policy`` file."""
    return dict(getattr(control, f"shipped_{kind}")())


def read_file(path: Path, key: str) -> dict[str, Any]:
    """apis-main's JSON file at ``path`` (a scenario, policy or hwConfig)."""
    try:
        return read_apis_json(path)
    except DataFileError as exc:
        raise SweepFileError(key, str(path), f"the path of apis-main's JSON file ({exc})") \
            from None


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "a table"


def _child(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        return node[part]
    if isinstance(node, list) and part.isdigit():
        return node[int(part)]
    raise KeyError(part)


def get_field(doc: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in ``doc``; KeyError (or IndexError) if there is none."""
    for part in path:
        doc = _child(doc, part)
    return doc


def _missing(kind: str, doc: dict[str, Any], path: tuple[str, ...], key: str,
             value: Any) -> SweepFileError:
    """The error for a path not in the file: names the deepest table found and its keys."""
    depth = 0
    node: Any = doc
    while depth < len(path) - 1:
        try:
            node = _child(node, path[depth])
        except (KeyError, IndexError):
            break
        depth += 1
    found = ", ".join(node) if isinstance(node, dict) else "no such field"
    where = ".".join((kind, *path[:depth]))
    return SweepFileError(key, value, f"a field of apis-main's {kind}.json; {where} has "
                                      f"{found or 'no fields'}")


def _like(old: Any, new: Any, key: str) -> Any:
    """``new`` checked against the type of the file's value ``old`` (an int stays an int)."""
    if _kind_of(old) != _kind_of(new):
        raise SweepFileError(key, new, f"{_kind_of(old)}, like the file's value {old!r}")
    if isinstance(old, int) and not isinstance(old, bool) and isinstance(new, float) \
            and new.is_integer():
        return int(new)
    if isinstance(old, float) and isinstance(new, int) and not isinstance(new, bool):
        return float(new)
    return copy.deepcopy(new)


def set_field(kind: str, doc: dict[str, Any], path: tuple[str, ...], value: Any,
              key: str) -> None:
    """Set the field at ``path`` of ``doc`` (apis-main's ``kind`` file); refuse a missing one."""
    try:
        parent = get_field(doc, path[:-1])
        old = _child(parent, path[-1])
    except (KeyError, IndexError):
        raise _missing(kind, doc, path, key, value) from None
    new = _like(old, value, key)
    if isinstance(parent, list):
        parent[int(path[-1])] = new
    else:
        parent[path[-1]] = new


def _arguments(params: dict[str, Any]) -> dict[str, Any]:
    return {"scenario": copy.deepcopy(params.get("scenario")),
            "policy": copy.deepcopy(params.get("policy")),
            "hw_config": copy.deepcopy(params.get("hw_config")),
            "seed": params.get("seed", 0), "time_scale": params.get("time_scale", 1.0),
            "operation_mode": params.get("operation_mode", "autonomous")}


def build_controller(emulator: Any, params: dict[str, Any]) -> Any:
    """The run's controller (None for ``none``), built as ``simulate --controller`` does."""
    name = params.get("controller", "none")
    if name == "none":
        return None
    return control.build_controller(name, emulator, **_arguments(params))


def check_controller(params: dict[str, Any], start: dt.datetime, origins: dict[str, str]) -> None:
    """Build the run's controller once in the client: refuse content the rules refuse."""
    try:
        control.build_controller(params["controller"], start, **_arguments(params))
    except InvalidValueError as exc:
        origin = origins.get(exc.field) or next(
            (o for path, o in origins.items() if exc.field.startswith(path)), "sweep.controller")
        raise SweepFileError(origin, exc.value, f"{exc.accepted} ({exc.field})") from None
