"""The sweep's view of the built-in controllers: their names, apis-main's files, building one.

Imported lazily so that a sweep without sharing runs where ``apis_emulator.control`` is missing.
"""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path
from typing import Any

from .errors import SweepFileError

__all__ = ["controller_names", "shipped_file", "read_json_file", "set_field", "get_field",
           "build_controller"]

#: apis-main's files a dotted axis may change, by the key that starts the path.
FILES = ("scenario", "policy")


def _control(module: str = "") -> Any:
    """``apis_emulator.control`` (or one of its modules), None when it is not installed."""
    try:
        control = importlib.import_module(f"apis_emulator.control{module}")
    except ImportError:
        return None
    return control if module or hasattr(control, "build_controller") else None


def controller_names() -> tuple[str, ...]:
    """The accepted values of the ``controller`` option: ``none`` and the built-in ones."""
    control = _control()
    if control is None:
        return ("none",)
    return tuple(getattr(control, "CONTROLLER_NAMES", ("none", "apis")))


def shipped_file(kind: str, key: str) -> dict[str, Any]:
    """A fresh copy of apis-main's shipped ``scenario`` or ``policy`` file."""
    apis = _control(".apis") if _control() is not None else None
    if apis is None:
        raise SweepFileError(key, None, "a built-in controller to read apis-main's "
                                        f"{kind}.json: apis_emulator.control is not installed")
    return dict(getattr(apis, f"shipped_{kind}")())


def read_json_file(path: Path, key: str) -> dict[str, Any]:
    """apis-main's JSON file at ``path`` (a scenario, policy or hwConfig)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SweepFileError(key, str(path), f"the path of a JSON file of apis-main ({exc})") \
            from None
    if not isinstance(doc, dict):
        raise SweepFileError(key, str(path), "a JSON file holding an object")
    return doc


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "a table"


def _step(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        return node[part]
    if isinstance(node, list) and part.isdigit():
        return node[int(part)]
    raise KeyError(part)


def get_field(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` in ``doc``; KeyError if there is none."""
    node: Any = doc
    for part in path:
        node = _step(node, part)
    return node


def _missing(kind: str, doc: dict[str, Any], path: tuple[str, ...], key: str,
             value: Any) -> SweepFileError:
    node: Any = doc
    for depth, part in enumerate(path):
        try:
            node = _step(node, part)
        except (KeyError, IndexError):
            where = ".".join((kind, *path[:depth])) or kind
            keys = list(node) if isinstance(node, dict) else f"indexes 0–{len(node) - 1}" \
                if isinstance(node, list) else "no fields"
            shown = ", ".join(keys) if isinstance(keys, list) else keys
            return SweepFileError(key, value, f"a field of apis-main's {kind}.json; "
                                              f"{where} has {shown or 'no fields'}")
    return SweepFileError(key, value, f"a field of apis-main's {kind}.json")


def _like(old: Any, new: Any, key: str) -> Any:
    """``new`` checked against the type of the file's value ``old`` (ints stay ints)."""
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
        old = _step(parent, path[-1])
    except (KeyError, IndexError):
        raise _missing(kind, doc, path, key, value) from None
    new = _like(old, value, key)
    if isinstance(parent, list):
        parent[int(path[-1])] = new
    else:
        parent[path[-1]] = new


def build_controller(emulator: Any, params: dict[str, Any]) -> Any:
    """The run's controller (None for ``none``), built from the run's parameters."""
    if params.get("controller", "none") == "none":
        return None
    control = _control()
    if control is None:
        raise RuntimeError(f"controller {params['controller']!r} needs apis_emulator.control, "
                           f"which this worker does not have")
    return control.build_controller(
        params["controller"], emulator, scenario=copy.deepcopy(params.get("scenario")),
        policy=copy.deepcopy(params.get("policy")),
        hw_config=copy.deepcopy(params.get("hw_config")), seed=params.get("seed", 0),
        time_scale=params.get("time_scale", 1.0))
