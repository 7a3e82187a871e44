"""The sweep file: its sections read, every key classified, the product of the axes expanded.

What a key means is decided here (a run option, a setting, a per-unit override, a field of
apis-main's scenario or policy); what its value must be is checked in :mod:`.resolve`.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from .controllers import FILES
from .errors import SweepFileError

__all__ = ["Assignment", "Combination", "SweepFile", "read_sweep_file", "OPTION_DEFAULTS"]

#: Run options of ``simulate`` by flag name (dashes as underscores) and their sweep defaults.
#: Unlike ``simulate``, a sweep writes no individual log unless ``indiv_interval`` asks for it.
OPTION_DEFAULTS: dict[str, Any] = {
    "days": 365.0, "units": None, "data": "default", "config": None, "indiv_interval": 0.0,
    "indiv_format": "csv", "controller": "none", "scenario": None, "policy": None,
    "hw_config": None, "seed": 0, "time_scale": 1.0, "operation_mode": "autonomous"}
#: Flags of ``simulate`` that set a setting, and the setting that names the data set.
_SETTING_FLAGS = ("step", "start")
_ALIASES = {"dataSet": "data"}
_SETTING_NAMES = tuple(f for f in Settings.__dataclass_fields__ if f != "dataSet")
#: Settings whose value is a whole table: a dotted key does not go inside them.
_TABLE_SETTINGS = ("modes", "modesOps", "modesRunning")
_UNIT_KEYS = ("batterySize", "pvc_sol_reg", "initialRsoc")
_SECTIONS = ("sweep", "settings", "axes", "runs", "description")
_ACCEPTED_KEYS = (f"a run option ({', '.join(OPTION_DEFAULTS)}, {', '.join(_SETTING_FLAGS)}), "
                  "a setting name of docs/settings.md, units.<unit id>."
                  f"<{'|'.join(_UNIT_KEYS)}>, scenario.<field path> or policy.<field path>")


@dataclass(frozen=True)
class Assignment:
    """One key of the file set to one value: where the value goes and where it was written."""

    kind: str  # "option" | "setting" | "unit" | "scenario" | "policy"
    path: tuple[str, ...]  # option or setting name; (unit id, key); a field path in the file
    value: Any
    origin: str  # the key as written, e.g. "axes.batterySize"


@dataclass(frozen=True)
class Combination:
    """One row of the runs table before it is resolved: its labels and its assignments."""

    labels: dict[str, Any]
    assignments: tuple[Assignment, ...]


@dataclass(frozen=True)
class SweepFile:
    """A sweep file read and classified; relative paths in it are relative to ``base_dir``."""

    source: str
    base_dir: Path
    base: tuple[Assignment, ...]
    combinations: tuple[Combination, ...]
    columns: tuple[str, ...] = field(default=())


def _option_name(name: str) -> str:
    return _ALIASES.get(name, name.replace("-", "_"))


def classify(path: tuple[str, ...], value: Any, origin: str) -> Assignment:
    """What the key ``path`` sets; refuse a key that names nothing."""
    head = _option_name(path[0])
    if len(path) == 1 and head in OPTION_DEFAULTS:
        return Assignment("option", (head,), value, origin)
    if len(path) == 1 and path[0] in _SETTING_NAMES:
        return Assignment("setting", path, value, origin)
    if path[0] == "units" and len(path) == 3 and path[2] in _UNIT_KEYS:
        return Assignment("unit", path[1:], value, origin)
    if path[0] in FILES and len(path) > 1:
        return Assignment(path[0], path[1:], value, origin)
    raise SweepFileError(origin, value, _ACCEPTED_KEYS)


def flatten(table: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], Any]]:
    """(dotted path, value) of every leaf: TOML's ``a.b = 1`` is the table ``{a: {b: 1}}``."""
    for key, value in table.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and not (len(path) == 1 and path[0] in _TABLE_SETTINGS):
            yield from flatten(value, path)
        else:
            yield path, value


def _sweep_section(table: Any) -> list[Assignment]:
    found = []
    for key, value in _table(table, "sweep").items():
        name = _option_name(key)
        if name in OPTION_DEFAULTS:
            found.append(Assignment("option", (name,), value, f"sweep.{key}"))
        elif key in _SETTING_FLAGS:
            found.append(Assignment("setting", (key,), value, f"sweep.{key}"))
        else:
            raise SweepFileError(f"sweep.{key}", value, "a run option: "
                                 f"{', '.join((*OPTION_DEFAULTS, *_SETTING_FLAGS))}")
    return found


def _settings_section(table: Any) -> list[Assignment]:
    found = []
    for key, value in _table(table, "settings").items():
        if key in _ALIASES:
            found.append(Assignment("option", (_ALIASES[key],), value, f"settings.{key}"))
        elif key in _SETTING_NAMES:
            found.append(Assignment("setting", (key,), value, f"settings.{key}"))
        else:
            raise SweepFileError(f"settings.{key}", value,
                                 "a setting name of docs/settings.md")
    return found


def _table(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SweepFileError(key, value, f"a table: [{key}]")
    return value


def _group(values: Mapping[str, Any], origin: str) -> tuple[Any, list[Assignment]]:
    """A value of a linked axis: a table of keys set together, and its label."""
    items = {k: v for k, v in values.items() if k != "label"}
    if not items:
        raise SweepFileError(origin, dict(values), "a table of at least one key to set")
    assignments = [classify(path, value, f"{origin}.{'.'.join(path)}")
                   for path, value in flatten(items)]
    label = values.get("label", ", ".join(f"{'.'.join(p)}={v}" for p, v in flatten(items)))
    return label, assignments


def _axis(path: tuple[str, ...], values: Any) -> list[tuple[Any, list[Assignment]]]:
    """The choices of one axis: (label, assignments) per value."""
    origin = "axes." + ".".join(path)
    if not isinstance(values, list) or not values:
        raise SweepFileError(origin, values, "a non-empty list of values, e.g. [1.0, 2.0]")
    if all(isinstance(v, Mapping) for v in values):
        return [_group(v, origin) for v in values]
    return [(v, [classify(path, v, origin)]) for v in values]


def _product(axes: Mapping[str, Any]) -> tuple[list[str], list[Combination]]:
    names, choices = [], []
    for path, values in flatten(_table(axes, "axes")):
        names.append(".".join(path))
        choices.append(_axis(path, values))
    combinations = [Combination(dict(zip(names, (label for label, _ in pick), strict=True)),
                                tuple(a for _, assigned in pick for a in assigned))
                    for pick in itertools.product(*choices)] if names else []
    return names, combinations


def _explicit(runs: Any) -> list[Combination]:
    if not isinstance(runs, list) or not all(isinstance(r, Mapping) for r in runs):
        raise SweepFileError("runs", runs, "[[runs]] tables, one per run")
    found = []
    for k, run in enumerate(runs):
        leaves = list(flatten(run))
        found.append(Combination({".".join(p): v for p, v in leaves}, tuple(
            classify(p, v, f"runs[{k}].{'.'.join(p)}") for p, v in leaves)))
    return found


def parse_sweep(doc: Mapping[str, Any], source: str, base_dir: Path) -> SweepFile:
    """Classify every key of a sweep document (the TOML file as a dict)."""
    try:
        for key in doc:
            if key not in _SECTIONS:
                raise SweepFileError(key, doc[key], f"one of the sections {', '.join(_SECTIONS)}")
        base = _sweep_section(doc.get("sweep", {})) + _settings_section(doc.get("settings", {}))
        names, combinations = _product(doc.get("axes", {}))
        explicit = _explicit(doc.get("runs", []))
    except SweepFileError as exc:
        raise exc.in_source(source) from None
    columns = list(names) + [c for e in explicit for c in e.labels if c not in names]
    combos = combinations + explicit or [Combination({}, ())]
    return SweepFile(source, base_dir, tuple(base), tuple(combos),
                     tuple(dict.fromkeys(columns)))


def read_sweep_file(source: str | Path | Mapping[str, Any]) -> SweepFile:
    """Read a sweep file (TOML) or take the same document as a dict."""
    if isinstance(source, Mapping):
        return parse_sweep(source, "<dict>", Path.cwd())
    path = Path(source)
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise SweepFileError("SWEEP.toml", str(path), "the path of an existing file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepFileError("SWEEP.toml", str(path), f"valid TOML ({exc})") from None
    return parse_sweep(doc, str(path), path.parent)
