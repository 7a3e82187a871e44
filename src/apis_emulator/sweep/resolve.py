"""From the keys of a sweep file to runs: each value checked, each run's full parameters and id.

A run's parameters hold everything its result depends on: the options, every setting (the
defaults of a headless run filled in), the data set by the digest of its content, and with a
controller the contents of apis-main's files, its seed and time scale.  ``run_id`` is a short
hash of their canonical JSON, so the same parameters always land in the same folder wherever
the data set lives.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import load_settings
from ..errors import DataFileError, SettingsError
from ..inputs import DataSet, load_dataset
from . import controllers
from .errors import SweepFileError
from .spec import OPTION_DEFAULTS, Assignment, Combination, SweepFile

__all__ = ["Run", "Row", "Sweep", "resolve", "run_id_of", "data_digest", "canonical_json"]


@dataclass(frozen=True)
class Run:
    """One headless run: its full parameters, the id they hash to, its data-set directory."""

    run_id: str
    data: str  # "default" = the embedded data set
    params: Mapping[str, Any] = field(compare=False)


@dataclass(frozen=True)
class Row:
    """One row of the runs table: the run it stands for and its axis values."""

    run_id: str
    labels: Mapping[str, Any]


@dataclass(frozen=True)
class Sweep:
    """A checked sweep: unique runs, the table's rows and axis columns, the data sets used."""

    source: str
    runs: tuple[Run, ...]
    rows: tuple[Row, ...]
    columns: tuple[str, ...]
    datasets: Mapping[str, DataSet] = field(compare=False)

    @property
    def sharing(self) -> bool:
        """True when a run has a built-in controller (the table gets the shared energy)."""
        return any(run.params["controller"] != "none" for run in self.runs)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal parameters give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def run_id_of(params: Mapping[str, Any]) -> str:
    """The short hash (12 hex digits) of a run's parameters."""
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()[:12]


def data_digest(dataset: DataSet) -> str:
    """A digest of what a data set feeds a run: its series, their unit and their sampling."""
    h = hashlib.sha256()
    h.update(canonical_json([dataset.solar_unit, dataset.meta.get("solar"),
                             dataset.meta.get("load")]).encode())
    for array in (dataset.solar, dataset.load_kw):
        h.update(str(array.shape).encode())
        h.update(array.astype("<f8", copy=False).tobytes(order="C"))
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------- options
def _number(key: str, value: Any, accepted: str, ok: Callable[[float], bool]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value) or not ok(value):
        raise SweepFileError(key, value, accepted)
    return float(value)


def _whole(key: str, value: Any, accepted: str, lo: int) -> int:
    number = _number(key, value, accepted, lambda v: v >= lo and float(v).is_integer())
    return int(number)


def _choice(key: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise SweepFileError(key, value, f"one of {', '.join(choices)}")
    return str(value)


def _text(key: str, value: Any, accepted: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SweepFileError(key, value, accepted)
    return value


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "days": lambda k, v: _number(k, v, "a number of days > 0", lambda x: x > 0),
    "units": lambda k, v: None if v is None else _whole(k, v, "a whole number >= 1", 1),
    "data": lambda k, v: _text(k, v, "a data-set directory or 'default'"),
    "config": lambda k, v: v if v is None else _text(
        k, v, "the path of a settings file (TOML), as simulate --config"),
    "indiv_interval": lambda k, v: _number(
        k, v, "an interval >= 0 [s] of emulated time; 0 = no individual log", lambda x: x >= 0),
    "indiv_format": lambda k, v: _choice(k, v, ("csv", "parquet")),
    "controller": lambda k, v: _choice(k, v, controllers.controller_names()),
    "seed": lambda k, v: _whole(k, v, "a whole number >= 0", 0),
    "time_scale": lambda k, v: _number(k, v, "a number > 0", lambda x: x > 0),
    "operation_mode": lambda k, v: _choice(k, v, controllers.operation_modes()),
    "scenario": lambda k, v: v if v is None else _text(k, v, "the path of a scenario.json"),
    "policy": lambda k, v: v if v is None else _text(k, v, "the path of a policy.json"),
    "hw_config": lambda k, v: v if v is None else _text(k, v, "the path of a hwConfig.json"),
}


# ---------------------------------------------------------------------- resolving
class _Resolver:
    """Turns combinations into runs; loads each data set and each apis-main file once."""

    def __init__(self, sweep_file: SweepFile):
        self.file = sweep_file
        self.datasets: dict[str, DataSet] = {}
        self._digests: dict[str, str] = {}
        self._files: dict[tuple[str, str], dict[str, Any]] = {}
        self._checked: set[str] = set()

    def _path(self, value: str) -> str:
        if value == "default":
            return value
        path = Path(value)
        return str(path if path.is_absolute() else (self.file.base_dir / path).resolve())

    def dataset(self, value: str, origin: str) -> tuple[str, DataSet, str]:
        """The data set the runs use."""
        path = self._path(value)
        if path not in self.datasets:
            try:
                self.datasets[path] = load_dataset(path)
            except DataFileError as exc:
                raise SweepFileError(origin, value, f"a data-set directory or 'default' "
                                                    f"({exc})") from None
            self._digests[path] = data_digest(self.datasets[path])
        return path, self.datasets[path], self._digests[path]

    def json_file(self, kind: str, value: str | None, origin: str) -> dict[str, Any]:
        """A fresh copy of apis-main's ``kind`` file: the shipped one or the given path."""
        key = (kind, "" if value is None else self._path(value))
        if key not in self._files:
            self._files[key] = controllers.shipped_file(kind) if value is None else \
                controllers.read_file(Path(key[1]), origin)
        return copy.deepcopy(self._files[key])

    def resolve(self, combination: Combination) -> Run:
        """The run's full parameters, checked."""
        assigned = (*self.file.base, *combination.assignments)
        options, origins = _options(assigned)
        config = None if options["config"] is None else self._path(options["config"])
        if config is not None:
            origins.setdefault("config", "sweep.config")
            if "data" not in origins:  # as simulate: --data, else the config's dataSet
                options["data"] = _config_data_set(config, origins["config"])
        data, dataset, digest = self.dataset(options["data"], origins.get("data", "sweep.data"))
        units = options["units"] if options["units"] is not None else dataset.households
        sharing = options["controller"] != "none"
        step = controllers.default_step(options["time_scale"]) if sharing else None
        settings = _settings(assigned, units, step, (config, origins.get("config", "")))
        params: dict[str, Any] = {
            "days": options["days"], "units": units, "data": digest,
            "indiv_interval": options["indiv_interval"],
            "indiv_format": options["indiv_format"] if options["indiv_interval"] else "csv",
            "settings": settings, "controller": options["controller"]}
        files = {kind: self._file(kind, options, origins, assigned, units)
                 for kind in controllers.FILES}  # checked even when no run of it shares
        if sharing:
            params.update(files, seed=options["seed"], time_scale=options["time_scale"],
                          operation_mode=options["operation_mode"],
                          hw_config=None if options["hw_config"] is None else self.json_file(
                              "hwConfig", options["hw_config"], origins["hw_config"]))
            self._check(params, settings["start"], origins, assigned)
        return Run(run_id_of(params), data, params)

    def _file(self, kind: str, options: dict[str, Any], origins: dict[str, str],
              assigned: Iterable[Assignment], units: int) -> dict[str, Any] | None:
        """The run's scenario or policy: None = the shipped one as ``simulate`` uses it."""
        edits = [a for a in assigned if a.kind == kind]
        if options[kind] is None and not edits:
            return None
        origin = origins.get(kind) or (edits[0].origin if edits else f"sweep.{kind}")
        doc = self.json_file(kind, options[kind], origin)
        for a in edits:
            controllers.set_field(kind, doc, a.path, a.value, a.origin)
        if kind == "policy" and options[kind] is None and not any(
                a.path == ("memberUnitIds",) for a in edits):
            # the shipped policy, used unedited, makes every unit a member: so does its copy
            doc["memberUnitIds"] = [f"E{k:03d}" for k in range(1, units + 1)]
        return doc

    def _check(self, params: dict[str, Any], start: str, origins: dict[str, str],
               assigned: Iterable[Assignment]) -> None:
        key = canonical_json({k: params.get(k) for k in _CONTROLLER_KEYS})
        if key in self._checked:
            return
        where = {f"{a.kind}.{'.'.join(a.path)}": a.origin for a in assigned
                 if a.kind in controllers.FILES}
        where.update({k: v for k, v in origins.items() if k in _CONTROLLER_KEYS})
        controllers.check_controller(params, dt.datetime.fromisoformat(start), where)
        self._checked.add(key)


_CONTROLLER_KEYS = ("controller", "scenario", "policy", "hw_config", "seed", "time_scale",
                    "operation_mode")


def _options(assigned: Iterable[Assignment]) -> tuple[dict[str, Any], dict[str, str]]:
    options, origins = dict(OPTION_DEFAULTS), {}
    for a in assigned:
        if a.kind == "option":
            options[a.path[0]] = _CHECKS[a.path[0]](a.origin, a.value)
            origins[a.path[0]] = a.origin
    return options, origins


def _config_data_set(config: str, origin: str) -> str:
    """The ``dataSet`` of a settings file (relative to that file), as ``simulate`` reads it."""
    try:
        return load_settings(config, env={}).dataSet
    except SettingsError as exc:
        raise SweepFileError(_config_key(exc.key, origin, config), exc.value, exc.accepted) \
            from None


def _config_key(key: str, origin: str, config: str) -> str:
    """The key of an error raised by the settings file itself: the option, or a key in it."""
    key = key.removeprefix("--")
    return origin if key == "config" else f"{key} (in {origin} = {config})"


def _settings(assigned: Iterable[Assignment], units: int, step: float | None,
              config: tuple[str | None, str] = (None, "")) -> dict[str, Any]:
    """Every setting of the run, checked, as JSON-able values (the data set left out).

    ``step`` is the default physics step [s] of a run with a controller (None: simulate's);
    ``config`` the settings file under the sweep's settings, and the key that named it."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for a in assigned:
        if a.kind == "setting":
            values[a.path[0]] = copy.deepcopy(a.value)
            origins[a.path[0]] = a.origin
        elif a.kind == "unit":
            _unit_override(values, a, units)
            origins[f"units.{a.path[0]}.{a.path[1]}"] = a.origin
    path, config_origin = config
    try:
        settings = load_settings(path, env={}, overrides=values)
        if step is not None and settings.step is None:  # as simulate with a controller
            settings = settings.replace(step=step)
        settings = settings.with_defaults_for("simulate")
    except SettingsError as exc:
        key = exc.key.removeprefix("--")
        where = origins.get(key) or (_config_key(key, config_origin, path) if path
                                     else f"settings.{key}")
        raise SweepFileError(where, exc.value, exc.accepted) from None
    return {f.name: _plain(getattr(settings, f.name)) for f in dataclasses.fields(settings)
            if f.name != "dataSet"}


def _unit_override(values: dict[str, Any], a: Assignment, units: int) -> None:
    unit_id, key = a.path
    known = {f"E{k:03d}" for k in range(1, units + 1)}
    if unit_id not in known:
        raise SweepFileError(a.origin, a.value, f"a unit of the run: E001 … E{units:03d}")
    table = values.setdefault("units", {})
    if not isinstance(table, Mapping):
        return  # the setting's own check names the bad table
    values["units"] = {**table, unit_id: {**table.get(unit_id, {}), key: a.value}}


def _plain(value: Any) -> Any:
    """A setting's value as JSON: mappings as dicts, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def effective(run: Run, column: str) -> Any:
    """The value a run has for a column named like an axis key (None if it is not one)."""
    parts = tuple(column.split("."))
    params = run.params
    head = parts[0].replace("-", "_")
    if len(parts) == 1 and head == "data":
        return run.data
    if len(parts) == 1 and head in params:
        return params[head]
    if len(parts) == 1:
        return params["settings"].get(parts[0])
    if parts[0] == "units" and len(parts) == 3:
        return params["settings"].get("units", {}).get(parts[1], {}).get(parts[2])
    try:
        return controllers.get_field(params[parts[0]], parts[1:])
    except (KeyError, IndexError, TypeError):
        return None


def resolve(sweep_file: SweepFile) -> Sweep:
    """Check every value of a classified sweep file and compute its runs."""
    resolver = _Resolver(sweep_file)
    runs: dict[str, Run] = {}
    rows = []
    try:
        for combination in sweep_file.combinations:
            run = resolver.resolve(combination)
            runs.setdefault(run.run_id, run)
            rows.append((run, combination.labels))
    except SweepFileError as exc:
        raise exc.in_source(sweep_file.source) from None
    table = tuple(Row(run.run_id, {c: labels[c] if c in labels else effective(run, c)
                                   for c in sweep_file.columns}) for run, labels in rows)
    used = {run.data for run in runs.values()}
    return Sweep(sweep_file.source, tuple(runs.values()), table, sweep_file.columns,
                 {k: v for k, v in resolver.datasets.items() if k in used})
