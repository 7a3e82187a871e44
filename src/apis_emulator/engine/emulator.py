"""The one object that owns the emulation state: units, DC grid, clock.

Everything that needs the state gets this object passed in.  Every command validates all of its
values before it changes anything, so a refused command leaves the state exactly as it was; each
change of the DC grid is recomputed once, in O(N).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from ..config import MODE_CODES, Settings
from ..errors import InvalidValueError, UnknownUnitError
from ..inputs import DAYS, DataSet
from .grid import VOLTAGE_REFERENCE, WAIT, solve_grid
from .kernel import LEDGER_FIELDS, OUT_FIELDS, params_vector, run_steps
from .units import Units, copy_tree

__all__ = ["Emulator", "Snapshot", "load_template", "EMU_SETTABLE", "RAMP_SECONDS"]

log = logging.getLogger(__name__)

YEAR_S = DAYS * 86400.0
#: Time a down grid takes to rise from 0 V to dvg [s of emulated time].
RAMP_SECONDS = 120.0
#: /set/emu keys and their accepted ranges; the three powers show until the next step.
EMU_SETTABLE = {"rsoc": (0.0, 100.0), "charge_discharge_power": (0.0, 1e6),
                "ups_output_power": (0.0, 1e6), "pvc_charge_power": (0.0, 1e6)}
_EMU_OUT = {"charge_discharge_power": "flow", "ups_output_power": "load", "pvc_charge_power": "pv"}
RANGES = {"dvg": (0.0, 1000.0), "dig": (0.0, 100.0), "drg": (0.0, 1.0),
          "p1": (-1e6, 1e6), "p2": (-1e6, 1e6)}
_OUT = {name: i for i, name in enumerate(OUT_FIELDS)}


def load_template() -> dict[str, Any]:
    """The standard unit document new units are made from (specification's standard.json)."""
    text = resources.files("apis_emulator").joinpath("data/standard.json").read_text("utf-8")
    return json.loads(text)


def checked_number(name: str, value: float, lo: float, hi: float) -> float:
    """``value`` as a float in [lo, hi], or InvalidValueError naming ``name`` and the range."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidValueError(name, value, f"a number in [{lo:g}, {hi:g}]") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise InvalidValueError(name, value, f"a finite number in [{lo:g}, {hi:g}]")
    return number


def _mode_index(value: str) -> int:
    if value not in MODE_CODES:
        raise InvalidValueError("mode", value, f"one of {', '.join(MODE_CODES)}")
    return MODE_CODES.index(value)


def data_offset(start: dt.datetime) -> float:
    """Where in the 365-day data ``start`` falls [s]; Feb 29 of a leap year shifts nothing."""
    offset = (start - dt.datetime(start.year, 1, 1)).total_seconds()
    leap = start.year % 4 == 0 and (start.year % 100 != 0 or start.year % 400 == 0)
    if leap and start >= dt.datetime(start.year, 2, 29):
        offset -= 86400.0
    return offset % YEAR_S


def leap_days_passed(start: dt.datetime, elapsed: np.ndarray) -> np.ndarray:
    """How many 29 Februaries began after ``start`` and by each ``elapsed`` [s].

    Each of them replays the data of 28 February, so from its midnight on the data time is a
    day behind: a run through a leap year neither shifts nor cuts the data.
    """
    count = np.zeros(elapsed.shape)
    if elapsed.size == 0:
        return count
    last = start + dt.timedelta(seconds=float(elapsed.max()))
    for year in range(start.year, last.year + 1):
        leap_day = dt.datetime(year, 2, 29) if calendar.isleap(year) else None
        if leap_day is not None and leap_day > start:
            count += elapsed >= (leap_day - start).total_seconds()
    return count


@dataclass(frozen=True)
class Snapshot:
    """A copy of what recorders need, taken between two steps."""

    time: dt.datetime
    step: int
    ids: tuple[str, ...]
    displays: tuple[str, ...]
    energy: np.ndarray  # [Wh]
    capacity: np.ndarray  # [Wh]
    out: np.ndarray  # last step's values, columns OUT_FIELDS [W]
    ledger: np.ndarray  # energies since the start, columns LEDGER_FIELDS [Wh]
    vg: np.ndarray
    ig: np.ndarray
    wg: np.ndarray
    mode: np.ndarray

    @property
    def rsoc(self) -> np.ndarray:
        return 100.0 * self.energy / self.capacity


class Emulator:
    """Units, DC grid and clock of one emulated community.

    Parameters
    ----------
    settings : Settings
        ``settings.step`` is the physics step Δt [s] (None = 1 s).
    dataset : DataSet
        Solar and load series; unit number k uses household (k − 1) mod households.
    n_units : int, optional
        Number of units; default the number of households (specification §4.2.2).
    """

    def __init__(self, settings: Settings, dataset: DataSet, n_units: int | None = None):
        self.settings = settings
        self.dataset = dataset
        self.dt = float(settings.step or 1.0)
        self.start_time = settings.start_time
        self._params = params_vector(settings)
        self._offset = data_offset(self.start_time)
        self._gain_per_size = 1.0 if dataset.solar_unit == "W/m2" else 1.0 / (
            settings.default_Area * settings.r * settings.pr)
        self._template = load_template()
        self.initial_units = dataset.households if n_units is None else int(n_units)
        if self.initial_units < 0:
            raise InvalidValueError("units", n_units, "a whole number >= 0")
        self.step_index = 0
        self.version = 0
        self.bus_voltage = 0.0  # [V]
        self.ramp_voltage: float | None = None  # [V] while a down grid rises
        self._ramp_rate = 0.0  # [V/s]
        self._display_cache: tuple[Units | None, tuple[str, ...]] = (None, ())
        self._position_cache: tuple[Units | None, dict[str, int]] = (None, {})
        self.units = self.new_units([self._unit_id(k) for k in range(1, self.initial_units + 1)])
        self._apply_grid()

    # ------------------------------------------------------------------ clock
    @property
    def emulated_s(self) -> float:
        """Emulated time since the start [s]."""
        return self.step_index * self.dt

    @property
    def now(self) -> dt.datetime:
        return self.start_time + dt.timedelta(seconds=self.emulated_s)

    def time_string(self) -> str:
        return self.now.strftime("%Y/%m/%d-%H:%M:%S")

    # ------------------------------------------------------------------ units
    @staticmethod
    def _unit_id(number: int) -> str:
        return f"E{number:03d}"

    @staticmethod
    def _unit_number(unit_id: str) -> int:
        digits = "".join(ch for ch in unit_id if ch.isdigit())
        return int(digits) if digits else 0

    def _static_for(self, unit_id: str) -> dict[str, Any]:
        doc = copy_tree(self._template)
        number = self._unit_number(unit_id)
        doc["oesunit"].update(id=unit_id, display=unit_id, sn=f"EMU-{unit_id}",
                              ip=f"127.0.1.{number % 250 + 1}", ipv6_ll=f"fe80::{number:x}",
                              ipv6_g=f"fd00::{number:x}",
                              mac=f"02:00:00:00:{number // 256 % 256:02x}:{number % 256:02x}")
        doc["emu"]["battery_voltage"] = self.settings.batteryVoltage
        doc["dcdc"]["meter"]["vb"] = self.settings.batteryVoltage
        return doc

    def new_units(self, ids: list[str]) -> Units:
        n = len(ids)
        households = self.dataset.households
        overrides = self.settings.units
        size = np.array([overrides.get(u, {}).get("pvc_sol_reg", self.settings.default_pv_size)
                         for u in ids], dtype=np.float64)
        capacity = np.array([overrides.get(u, {}).get("batterySize", self.settings.batterySize)
                             for u in ids], dtype=np.float64)
        rsoc = np.array([overrides.get(u, {}).get("initialRsoc", self.settings.initialRsoc)
                         for u in ids], dtype=np.float64)
        numbers = [self._unit_number(u) for u in ids]
        beyond = [u for u, k in zip(ids, numbers, strict=True) if k > households]
        if beyond:
            log.warning("%d unit(s) beyond the %d households of the data set (%s…) reuse "
                        "households in turn (unit k uses household (k-1) mod %d)",
                        len(beyond), households, beyond[0], households)
        template = self._template["dcdc"]
        units = Units(
            ids=list(ids), static=[self._static_for(u) for u in ids],
            house=np.array([(k - 1) % households for k in numbers], dtype=np.int64),
            pv_gain=size * self._gain_per_size, capacity=capacity,
            energy=rsoc * capacity / 100.0,
            bypass=rsoc <= self.settings.UPS_TRIGGER_BATT_OFF,
            ac_charge=rsoc <= self.settings.UPS_TRIGGER_AC_ON,
            mode=np.full(n, WAIT, dtype=np.int64),
            dvg=np.full(n, float(template["vdis"]["dvg"])),
            dig=np.full(n, float(template["param"]["dig"])),
            drg=np.full(n, float(template["vdis"]["drg"])),
            p1=np.zeros(n), vg=np.zeros(n), ig=np.zeros(n), wg=np.zeros(n),
            dcdc_loss=np.zeros(n), out=np.zeros((n, len(OUT_FIELDS))),
            ledger=np.zeros((n, len(LEDGER_FIELDS))), kwh_base=np.zeros((n, 2)))
        return units

    @property
    def ids(self) -> list[str]:
        return list(self.units.ids)

    def _positions(self) -> dict[str, int]:
        """Unit id → array position, cached while the units container stays the same object."""
        if self._position_cache[0] is not self.units:
            self._position_cache = (self.units, {u: i for i, u in enumerate(self.units.ids)})
        return self._position_cache[1]

    def has_unit(self, unit_id: str) -> bool:
        return unit_id in self._positions()

    def index(self, unit_id: str) -> int:
        """Position of ``unit_id`` in the arrays; UnknownUnitError if there is none."""
        try:
            return self._positions()[unit_id]
        except KeyError:
            raise UnknownUnitError(unit_id, self.units.ids) from None

    def add_unit(self) -> str:
        """Add one unit with the standard parameters; its id is the highest id + 1."""
        highest = max((self._unit_number(u) for u in self.units.ids), default=0)
        unit_id = self._unit_id(highest + 1)
        self.units = self.units.appended(self.new_units([unit_id]))
        self._apply_grid()  # the new unit's meter and converter loss follow the live grid
        return unit_id

    def remove_unit(self) -> str:
        """Remove the unit with the highest id; InvalidValueError when there is none."""
        if not self.units.ids:
            raise InvalidValueError("unit", None, "a community with at least one unit")
        numbers = [self._unit_number(u) for u in self.units.ids]
        victim = int(np.argmax(numbers))
        unit_id = self.units.ids[victim]
        self.units = self.units.taken(np.arange(len(self.units)) != victim)
        self._apply_grid()  # the grid loses a converter, perhaps its reference
        return unit_id

    def reset(self) -> None:
        """Units back to the standard parameters, as many as at the start (§4.1 Reset)."""
        self.units = self.new_units([self._unit_id(k) for k in range(1, self.initial_units + 1)])
        self.ramp_voltage = None
        self._apply_grid()  # the grid is down again (a later reference ramps up from 0 V)

    # ------------------------------------------------------------------ commands
    def set_dcdc(self, unit_id: str, mode: str | None = None, dvg: float | None = None,
                 dig: float | None = None, drg: float | None = None, p1: float | None = None,
                 p2: float | None = None) -> None:
        """Set the converter of one unit (``/set/dcdc``); None keeps a value as it is."""
        i = self.index(unit_id)
        new_mode = _mode_index(mode) if mode is not None else None
        values = {name: checked_number(name, v, *RANGES[name]) for name, v in
                  (("dvg", dvg), ("dig", dig), ("drg", drg), ("p1", p1), ("p2", p2))
                  if v is not None}
        # everything is valid: apply
        becomes_reference = new_mode == VOLTAGE_REFERENCE and self.units.mode[i] != new_mode
        if new_mode is not None:
            self.units.mode[i] = new_mode
        for name in ("dvg", "dig", "drg", "p1"):
            if name in values:
                getattr(self.units, name)[i] = values[name]
        if "p2" in values:
            self.units.out[i, _OUT["p2"]] = values["p2"]
        if becomes_reference:
            self._maybe_start_ramp(i)
        elif self.ramp_voltage is not None and self.ramp_voltage >= self._under_voltage(i):
            self.ramp_voltage = None  # the grid is up: a change settles at once
        self._apply_grid()

    def set_dcdc_voltage(self, unit_id: str, dvg: float, drg: float | None = None) -> None:
        """``/set/dcdc/voltage``: the grid target voltage (and droop) of one unit."""
        self.set_dcdc(unit_id, dvg=dvg, drg=drg)

    def set_dcdc_current(self, unit_id: str, dig: float) -> None:
        """``/set/dcdc/current``: the grid current of one unit."""
        self.set_dcdc(unit_id, dig=dig)

    def set_emu(self, unit_id: str, values: Mapping[str, Any]) -> None:
        """``/set/emu``: rsoc, or the shown powers (they hold until the next step)."""
        i = self.index(unit_id)
        if not values:
            raise InvalidValueError("query", "", f"at least one of {', '.join(EMU_SETTABLE)}")
        checked = {}
        for name, value in values.items():
            if name not in EMU_SETTABLE:
                raise InvalidValueError(name, value, f"one of the keys {', '.join(EMU_SETTABLE)}")
            checked[name] = checked_number(name, value, *EMU_SETTABLE[name])
        for name, value in checked.items():
            if name == "rsoc":
                self.units.energy[i] = value * self.units.capacity[i] / 100.0
            elif name == "charge_discharge_power":
                sign = -1.0 if self.units.out[i, _OUT["flow"]] < 0 else 1.0
                self.units.out[i, _OUT["flow"]] = sign * value
            else:
                self.units.out[i, _OUT[_EMU_OUT[name]]] = value
        self._changed()

    # ------------------------------------------------------------------ DC grid
    def _under_voltage(self, i: int) -> float:
        """The grid under-voltage threshold param.ugv of unit i [V]: below it the grid is down."""
        return float(self.units.static[i]["dcdc"]["param"].get("ugv", 300.0))

    def _maybe_start_ramp(self, i: int) -> None:
        """A unit became a voltage reference: a down grid rises over RAMP_SECONDS."""
        if self.ramp_voltage is None and self.bus_voltage < self._under_voltage(i):
            self.ramp_voltage = self.bus_voltage
            self._ramp_rate = float(self.units.dvg[i]) / RAMP_SECONDS

    def _apply_grid(self, shift_flow: bool = True) -> None:
        """Recompute every unit's meter (and shown battery flow) once, in O(N)."""
        u = self.units
        v, ig = solve_grid(u.mode, u.dvg, u.dig, u.drg)
        if not (u.mode == VOLTAGE_REFERENCE).any():
            self.ramp_voltage = None
        if self.ramp_voltage is not None:
            if self.ramp_voltage >= v:
                self.ramp_voltage = None
                log.info("DC grid ramp-up finished at %.1f V", v)
            else:
                v = self.ramp_voltage
        self.bus_voltage = v
        s = self.settings
        loss = np.choose(u.mode, (s.DCCstLoss, s.DCDischargeLoss, s.DCDischargeLoss,
                                  s.DCChargeLoss))
        if shift_flow:
            # the shown battery flow and DC loss follow the change at once, not at the next step
            delta_loss = loss - u.dcdc_loss
            u.out[:, _OUT["flow"]] += v * ig - u.wg - delta_loss
            u.out[:, _OUT["dcloss"]] += delta_loss
        u.vg[:] = v
        u.ig[:] = ig
        u.wg[:] = v * ig
        u.dcdc_loss[:] = loss
        self._changed()

    def _progress_ramp(self, seconds: float) -> None:
        if self.ramp_voltage is not None:
            self.ramp_voltage += self._ramp_rate * seconds
            self._apply_grid()

    # ------------------------------------------------------------------ time
    def _sample_inputs(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Solar value and load sample index/weight at the middle of the next n steps."""
        mids = (self.step_index + np.arange(n) + 0.5) * self.dt  # [s] since the start
        t = np.mod(self._offset + mids - 86400.0 * leap_days_passed(self.start_time, mids),
                   YEAR_S)
        ds = self.dataset
        # an interval mean sits in the middle of its interval (samples: "interval-mean")
        x = np.mod(t - ds.solar_shift, YEAR_S) / ds.solar_interval
        j = np.floor(x).astype(np.int64)
        j1 = np.where(j + 1 < ds.solar.shape[0], j + 1, 0)
        solar = ds.solar[j] + (x - j) * (ds.solar[j1] - ds.solar[j])
        y = np.mod(t - ds.load_shift, YEAR_S) / ds.load_interval
        k = np.floor(y).astype(np.int64)
        return solar, k, y - k

    def _run_kernel(self, n: int) -> None:
        u = self.units
        if n <= 0 or len(u) == 0:
            return
        solar, load_j, load_f = self._sample_inputs(n)
        run_steps(self.dt, solar, load_j, load_f, self.dataset.load_kw, u.house, u.pv_gain,
                  u.wg, u.dcdc_loss, self._params, u.energy, u.capacity, u.bypass, u.ac_charge,
                  u.out, u.ledger)

    def advance(self, n_steps: int, power_flow: bool = True) -> None:
        """Run ``n_steps`` physics steps of Δt; ``power_flow=False`` only moves clock and ramp."""
        remaining = int(n_steps)
        while remaining > 0:
            # while the grid ramps, its voltage changes every step
            chunk = 1 if self.ramp_voltage is not None else remaining
            if power_flow:
                self._run_kernel(chunk)
            self.step_index += chunk
            remaining -= chunk
            self._progress_ramp(chunk * self.dt)
        self._changed()

    def steps_until(self, when: dt.datetime) -> int:
        """Whole steps from now until ``when`` (0 if it has passed)."""
        seconds = (when - self.start_time).total_seconds() - self.emulated_s
        return max(0, int(math.floor(seconds / self.dt + 1e-9)))

    # ------------------------------------------------------------------ views
    def _changed(self) -> None:
        self.version += 1

    def _displays(self) -> tuple[str, ...]:
        """Display names, cached while the units container stays the same object."""
        if self._display_cache[0] is not self.units:
            names = tuple(str(st["oesunit"].get("display", uid))
                          for uid, st in zip(self.units.ids, self.units.static, strict=True))
            self._display_cache = (self.units, names)
        return self._display_cache[1]

    def snapshot(self) -> Snapshot:
        u = self.units
        return Snapshot(time=self.now, step=self.step_index, ids=tuple(u.ids),
                        displays=self._displays(),
                        energy=u.energy.copy(), capacity=u.capacity.copy(), out=u.out.copy(),
                        ledger=u.ledger.copy(), vg=u.vg.copy(), ig=u.ig.copy(),
                        wg=u.wg.copy(), mode=u.mode.copy())

    # ------------------------------------------------------------------ save / load
    def save_state(self) -> dict[str, Any]:
        """All units as documents, each with the full-precision state under ``emulator``."""
        from .render import unit_document

        state = {}
        for i, unit_id in enumerate(self.units.ids):
            doc = unit_document(self, i)
            doc["emulator"] = {"energy_wh": float(self.units.energy[i]),
                               "battery_size_wh": float(self.units.capacity[i]),
                               "pv_gain": float(self.units.pv_gain[i]),
                               "household": int(self.units.house[i]),
                               "bypass": bool(self.units.bypass[i]),
                               "ac_charge": bool(self.units.ac_charge[i]),
                               "ledger": [float(x) for x in self.units.ledger[i]],
                               "out": [float(x) for x in self.units.out[i]],
                               "ramp_voltage": self.ramp_voltage, "ramp_rate": self._ramp_rate}
            state[unit_id] = doc
        return state

    def load_state(self, state: Any, source: str = "state") -> None:
        """Replace the units by those of ``state`` (a save file's content), all or nothing."""
        from .render import units_from_documents

        units = units_from_documents(self, state, source)
        self.units = units
        self.ramp_voltage, self._ramp_rate = None, 0.0
        extra = next(iter(state.values())).get("emulator")
        if isinstance(extra, dict) and isinstance(extra.get("ramp_voltage"), int | float):
            # the grid was rising when it was saved: it goes on rising from there
            self.ramp_voltage = float(extra["ramp_voltage"])
            self._ramp_rate = float(extra.get("ramp_rate") or 0.0)
        self._apply_grid(shift_flow=False)  # the saved flow already holds the grid
