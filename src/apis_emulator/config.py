"""Settings: every parameter of specification §7.1 under its own name, in one typed object.

Sources, later ones winning: the defaults below (the reference values), one TOML file
(``--config``), environment variables ``APIS_EMULATOR_<NAME>`` (name in any case), and
command-line flags.  A wrong value stops the start with a message that names the key, the value
and what is accepted (:class:`~apis_emulator.errors.SettingsError`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SettingsError
from .modes import MODE_CODES, Mode

__all__ = ["Settings", "load_settings", "MODE_CODES", "DEFAULT_MODES", "DEFAULT_MODES_OPS",
           "DEFAULT_MODES_RUNNING", "ENV_PREFIX"]

ENV_PREFIX = "APIS_EMULATOR_"

_W, _D, _VR, _C = (m.code for m in Mode)
#: §7.1 ``modes``: status names by mode code.
DEFAULT_MODES = {_W: "Waiting", _D: "Heteronomy CV Discharging", _VR: "Grid Autonomy Mode",
                 _C: "Heteronomy CV Charging - grid current limited"}
DEFAULT_MODES_OPS = {_W: "Waiting", _D: "Heteronomy CV", _VR: "Grid Autonomy",
                     _C: "Heteronomy CV"}
DEFAULT_MODES_RUNNING = {_W: "off", _D: "discharge", _VR: "discharge", _C: "charge"}

_INF = math.inf


def _num(lo: float = -_INF, hi: float = _INF, *, lo_open: bool = False) -> dict[str, Any]:
    return {"kind": "number", "lo": lo, "hi": hi, "lo_open": lo_open}


def _int(lo: int, hi: int) -> dict[str, Any]:
    return {"kind": "int", "lo": lo, "hi": hi}


_BOOL: dict[str, Any] = {"kind": "bool"}
_STR: dict[str, Any] = {"kind": "str"}
_OPT_NUM_POS: dict[str, Any] = {"kind": "optnumber", "lo": 0.0, "lo_open": True}


@dataclass(frozen=True)
class Settings:
    """All settings; field names are the specification's §7.1 names.

    Powers in [W], energies in [Wh], voltages in [V], states of charge in [%], times in [s].
    """

    # --- run control (§7.1) ---
    debug: bool = field(default=False, metadata=_BOOL)
    dataSet: str = field(default="default", metadata=_STR)  # "default" = the embedded data set
    sleeptime: float = field(default=1.0, metadata=_num(0.0, 60.0, lo_open=True))  # [s] wall
    acceleration: float = field(default=10.0, metadata=_num(0.0, 1e6, lo_open=True))  # [-]
    doUpdates: bool = field(default=True, metadata=_BOOL)
    saveIndividualToDB: bool = field(default=False, metadata=_BOOL)
    saveToSummaryToCSV: bool = field(default=True, metadata=_BOOL)
    saveIndividualToCSV: bool = field(default=True, metadata=_BOOL)
    # --- losses (§7.1) [W] and loss factors [-] ---
    constantSystemLoss: float = field(default=17.5, metadata=_num(0.0, 1e4))
    DCCstLoss: float = field(default=4.5, metadata=_num(0.0, 1e4))
    DCChargeLoss: float = field(default=71.0, metadata=_num(0.0, 1e4))
    DCDischargeLoss: float = field(default=55.0, metadata=_num(0.0, 1e4))
    battModeLoss_a: float = field(default=0.140, metadata=_num(0.0, 1.0))
    battModeLoss_c: float = field(default=129.0, metadata=_num(0.0, 1e4))
    transLoss_a: float = field(default=0.027, metadata=_num(0.0, 1.0))
    transLoss_c: float = field(default=57.0, metadata=_num(0.0, 1e4))
    bypassModeLoss_a: float = field(default=0.033, metadata=_num(0.0, 1.0))
    bypassModeLoss_c: float = field(default=67.0, metadata=_num(0.0, 1e4))
    ACChargeLoss: float = field(default=10.0, metadata=_num(0.0, 1e4))
    # --- UPS thresholds on rsoc [%] (§7.1) ---
    UPS_TRIGGER_BATT_OFF: float = field(default=30.0, metadata=_num(0.0, 100.0))
    UPS_TRIGGER_BATT_ON: float = field(default=35.0, metadata=_num(0.0, 100.0))
    UPS_TRIGGER_AC_OFF: float = field(default=25.0, metadata=_num(0.0, 100.0))
    UPS_TRIGGER_AC_ON: float = field(default=20.0, metadata=_num(0.0, 100.0))
    # --- battery, AC charging, PV (§7.1) ---
    batteryVoltage: float = field(default=48.0, metadata=_num(0.0, 1e4, lo_open=True))  # [V]
    ACChargeAmount: float = field(default=150.0, metadata=_num(0.0, 1e5))  # [W]
    default_Area: float = field(default=21.6, metadata=_num(0.0, 1e4))  # [m²]
    r: float = field(default=0.19, metadata=_num(0.0, 1.0))  # panel efficiency [-]
    pr: float = field(default=0.9, metadata=_num(0.0, 1.0))  # performance factor [-]
    batterySize: float = field(default=4800.0, metadata=_num(0.0, 1e7, lo_open=True))  # [Wh]
    #: PV size of a unit [m²·(-)]: P_pv = G · pvc_sol_reg; None = default_Area · r · pr.
    pvc_sol_reg: float | None = field(default=None, metadata=_OPT_NUM_POS)
    # --- recorders (§7.1) ---
    dburl: str = field(default="sqlite:///data/output/apis-emulator.sqlite", metadata=_STR)
    summaryPath: str = field(default="data/output/summary.csv", metadata=_STR)
    indivLogPath: str = field(default="data/output/indivLog.csv", metadata=_STR)
    # --- web server (§7.1, §11) ---
    b_host: str = field(default="127.0.0.1", metadata=_STR)
    b_port: int = field(default=4390, metadata=_int(0, 65535))
    #: Client networks allowed to connect (§11); empty = everybody who can reach the port.
    allow: tuple[str, ...] = field(default=(), metadata={"kind": "strlist"})
    #: Host names the server answers to besides localhost and IP addresses (DNS rebinding):
    #: "emulator.lan", ".lab.example" (the name and every name under it), "*" (any).
    allowedHosts: tuple[str, ...] = field(default=(), metadata={"kind": "hostlist"})
    # --- DC/DC mode tables (§7.1) ---
    modes: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MODES),
                                     metadata={"kind": "modes"})
    modesOps: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MODES_OPS),
                                        metadata={"kind": "modes"})
    modesRunning: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MODES_RUNNING),
                                            metadata={"kind": "modes"})
    # --- beyond §7.1 ---
    #: Physics step Δt [s]; None = 1 s when served, 10 s headless.
    step: float | None = field(default=None, metadata=_OPT_NUM_POS)
    #: Emulated start time (ISO 8601, local time of the data set).
    start: str = field(default="2019-01-01T00:00:00", metadata={"kind": "datetime"})
    #: State of charge of a new battery [%].
    initialRsoc: float = field(default=50.0, metadata=_num(0.0, 100.0))
    #: Individual log interval [s] of emulated time; None = 60 s served, 900 s headless.
    indivLogInterval: float | None = field(default=None, metadata=_OPT_NUM_POS)
    #: Where Save All writes and Load Last reads (§4.1).
    lastSavePath: str = field(default="jsontmp/lastSave.json", metadata=_STR)
    #: Per-unit overrides: {"E001": {"batterySize": 9600, "pvc_sol_reg": 5.0}}.
    units: Mapping[str, Mapping[str, float]] = field(default_factory=dict,
                                                     metadata={"kind": "units"})

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _check(f.name, getattr(self, f.name), f.metadata))
        self._check_relations()

    def _check_relations(self) -> None:
        if self.UPS_TRIGGER_BATT_ON < self.UPS_TRIGGER_BATT_OFF:
            raise SettingsError("UPS_TRIGGER_BATT_ON", self.UPS_TRIGGER_BATT_ON,
                                f"a value >= UPS_TRIGGER_BATT_OFF ({self.UPS_TRIGGER_BATT_OFF})")
        if self.UPS_TRIGGER_AC_OFF < self.UPS_TRIGGER_AC_ON:
            raise SettingsError("UPS_TRIGGER_AC_OFF", self.UPS_TRIGGER_AC_OFF,
                                f"a value >= UPS_TRIGGER_AC_ON ({self.UPS_TRIGGER_AC_ON})")

    # --- derived values ---
    @property
    def default_pv_size(self) -> float:
        """PV size of a unit when not set: default_Area · r · pr [m²]."""
        return self.pvc_sol_reg if self.pvc_sol_reg is not None else (
            self.default_Area * self.r * self.pr)

    @property
    def start_time(self) -> dt.datetime:
        """The emulated start as a datetime."""
        return dt.datetime.fromisoformat(self.start)

    def with_defaults_for(self, mode: str) -> Settings:
        """Fill the mode-dependent defaults: ``"serve"`` or ``"simulate"``."""
        served = mode == "serve"
        return dataclasses.replace(
            self,
            step=self.step if self.step is not None else (1.0 if served else 10.0),
            indivLogInterval=self.indivLogInterval if self.indivLogInterval is not None
            else (60.0 if served else 900.0))

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (not validated again)."""
        return dataclasses.replace(self, **changes)


def _range_text(meta: Mapping[str, Any]) -> str:
    lo, hi = meta.get("lo", -_INF), meta.get("hi", _INF)
    left = "(" if meta.get("lo_open") else "["
    return f"a number in {left}{lo:g}, {hi:g}]" if hi != _INF else (
        f"a number > {lo:g}" if meta.get("lo_open") else f"a number >= {lo:g}")


def _check(name: str, value: Any, meta: Mapping[str, Any]) -> Any:
    kind = meta.get("kind")
    checker = _CHECKERS.get(kind) if kind else None
    return checker(name, value, meta) if checker else value


def _check_number(name: str, value: Any, meta: Mapping[str, Any]) -> float:
    number = _to_number(name, value, _range_text(meta))
    lo, hi = meta.get("lo", -_INF), meta.get("hi", _INF)
    below = number <= lo if meta.get("lo_open") else number < lo
    if below or number > hi:
        raise SettingsError(name, value, _range_text(meta))
    return number


def _check_optnumber(name: str, value: Any, meta: Mapping[str, Any]) -> float | None:
    if value is None or value == "":
        return None
    return _check_number(name, value, {"lo": 0.0, "lo_open": True})


def _to_number(name: str, value: Any, accepted: str) -> float:
    if isinstance(value, bool):
        raise SettingsError(name, value, accepted)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingsError(name, value, accepted) from None
    if not math.isfinite(number):
        raise SettingsError(name, value, accepted)
    return number


def _check_int(name: str, value: Any, meta: Mapping[str, Any]) -> int:
    accepted = f"a whole number in [{meta['lo']}, {meta['hi']}]"
    number = _to_number(name, value, accepted)
    if number != int(number) or not meta["lo"] <= number <= meta["hi"]:
        raise SettingsError(name, value, accepted)
    return int(number)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _check_bool(name: str, value: Any, meta: Mapping[str, Any]) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise SettingsError(name, value, "true or false")


def _check_str(name: str, value: Any, meta: Mapping[str, Any]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(name, value, "a non-empty string")
    return value


def _check_strlist(name: str, value: Any, meta: Mapping[str, Any]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise SettingsError(name, value, "a list of strings")
    return tuple(value)


_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
#: An allowedHosts entry: a name (``.name`` for it and the names under it), or ``*``.
_HOST_NAME = re.compile(rf"^(\*|\.?{_LABEL}(\.{_LABEL})*)$")


def _check_hostlist(name: str, value: Any, meta: Mapping[str, Any]) -> tuple[str, ...]:
    names = _check_strlist(name, value, meta)
    for host in names:
        if not _HOST_NAME.match(host.lower().rstrip(".")):
            raise SettingsError(name, host, "host names without scheme or port, e.g. "
                                            "emulator.lan, .lab.example (and names under it), *")
    return tuple(h.lower().rstrip(".") for h in names)


def _check_modes(name: str, value: Any, meta: Mapping[str, Any]) -> dict[str, str]:
    accepted = f"a table with exactly the keys {', '.join(MODE_CODES)} and string values"
    if not isinstance(value, Mapping) or set(value) != set(MODE_CODES) or not all(
            isinstance(v, str) for v in value.values()):
        raise SettingsError(name, value, accepted)
    return dict(value)


def _check_datetime(name: str, value: Any, meta: Mapping[str, Any]) -> str:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat()
    try:
        return dt.datetime.fromisoformat(str(value)).replace(tzinfo=None).isoformat()
    except ValueError:
        raise SettingsError(name, value, "a date and time like 2019-01-01T00:00:00") from None


_UNIT_KEYS = {"batterySize": {"lo": 0.0, "hi": 1e7, "lo_open": True},
              "pvc_sol_reg": {"lo": 0.0, "hi": 1e4},
              "initialRsoc": {"lo": 0.0, "hi": 100.0}}


def _check_units(name: str, value: Any, meta: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    if not isinstance(value, Mapping):
        raise SettingsError(name, value, "a table of unit ids, e.g. [units.E001]")
    checked: dict[str, dict[str, float]] = {}
    for unit_id, overrides in value.items():
        if not isinstance(overrides, Mapping):
            raise SettingsError(f"{name}.{unit_id}", overrides, "a table of unit settings")
        for key, val in overrides.items():
            if key not in _UNIT_KEYS:
                raise SettingsError(f"{name}.{unit_id}.{key}", val,
                                    f"one of the keys {', '.join(sorted(_UNIT_KEYS))}")
            checked.setdefault(unit_id, {})[key] = _check_number(
                f"{name}.{unit_id}.{key}", val, _UNIT_KEYS[key])
    return checked


_CHECKERS = {"number": _check_number, "optnumber": _check_optnumber, "int": _check_int,
             "bool": _check_bool, "str": _check_str, "strlist": _check_strlist,
             "hostlist": _check_hostlist,
             "modes": _check_modes, "datetime": _check_datetime, "units": _check_units}

_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_BY_LOWER = {name.lower(): name for name in _FIELDS}


def _read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError("--config", str(path), "the path of an existing TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError("--config", str(path), f"valid TOML ({exc})") from None


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in env.items():
        if not key.upper().startswith(ENV_PREFIX):
            continue
        name = _BY_LOWER.get(key[len(ENV_PREFIX):].lower())
        if name is None:
            raise SettingsError(key, value, "an APIS_EMULATOR_<NAME> with a known setting name")
        found[name] = value
    return found


def load_settings(config_file: str | os.PathLike[str] | None = None,
                  env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Build the settings from defaults, a TOML file, the environment and flag overrides."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(_read_toml(config_file))
        data_set = values.get("dataSet")
        if isinstance(data_set, str) and data_set != "default" and not Path(data_set).is_absolute():
            # a relative data-set path in a config file is relative to that file
            values["dataSet"] = str(Path(config_file).parent / data_set)
    values.update(_from_env(os.environ if env is None else env))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise SettingsError(unknown[0], values[unknown[0]],
                            "a known setting name (see docs/settings.md)")
    return Settings(**values)
