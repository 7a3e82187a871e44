"""The one object that owns the emulation state: units, DC grid, clock.

Everything that needs the state gets this object passed in.  Every command validates all of its
values before it changes anything, so a refused command leaves the state exactly as it was; each
change of the DC grid is recomputed once, in O(N).
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import Settings
from ..errors import InvalidValueError, UnknownUnitError
from ..modes import Mode
from .grid import solve_grid
from .kernel import LEDGER_FIELDS, OUT_FIELDS, Recording, energy_bands, params_vector, run_steps
from .rules import DCDC_RULES, EMU_RULES
from .series import DAYS, DataSet
from .stepper import Stepping
from .template import standard_document
from .units import Units, copy_tree

__all__ = ["Emulator", "Snapshot", "Sample", "ConverterCommand", "RAMP_SECONDS"]

log = logging.getLogger(__name__)

YEAR_S = DAYS * 86400.0
#: Time a down grid takes to rise from 0 V to dvg [s of emulated time].
RAMP_SECONDS = 120.0
_EMU_OUT = {"charge_discharge_power": "flow", "ups_output_power": "load", "pvc_charge_power": "pv"}
_OUT = {name: i for i, name in enumerate(OUT_FIELDS)}


@dataclass(frozen=True)
class ConverterCommand:
    """One converter's new settings (``/set/dcdc``); None keeps a value as it is.

    ``mode`` is a :class:`Mode` or its wire code; dvg [V], dig [A], drg [-], p1/p2 [W].
    """

    unit_id: str
    mode: Mode | str | None = None
    dvg: float | None = None
    dig: float | None = None
    drg: float | None = None
    p1: float | None = None
    p2: float | None = None

    def checked(self) -> tuple[Mode | None, dict[str, float]]:
        """The mode and the numbers, each within its rule; InvalidValueError otherwise."""
        mode = self.mode
        if mode is not None and not isinstance(mode, Mode):
            mode = Mode.from_code(mode)
        values = {name: rule.check(v) for name, rule in DCDC_RULES.items()
                  if (v := getattr(self, name)) is not None}
        return mode, values


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
class Sample:
    """The units' shown values at one moment, read-only: what the individual log writes.
    :meth:`Emulator.advance_sampled` keeps them inside a run of steps; a :class:`Snapshot`
    is a sample with the rest of the state."""

    time: dt.datetime
    step: int
    ids: tuple[str, ...]
    displays: tuple[str, ...]
    energy: np.ndarray  # stored battery energy [Wh]
    capacity: np.ndarray  # battery size [Wh]
    out: np.ndarray  # last step's values, columns OUT_FIELDS [W]
    wg: np.ndarray  # grid power vg·ig, > 0 into the unit [W]

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False


@dataclass(frozen=True)
class Snapshot(Sample):
    """A read-only copy of the units between two steps (glossary: docs/model.md): a
    :class:`Sample` with the ledger and the converters' state.

    Arrays have one entry per unit, in ``ids`` order.  Signs: ig, wg > 0 when power flows
    from the DC grid into the unit; out's ``flow`` > 0 when the battery charges.
    """

    ledger: np.ndarray  # energies since the start, columns LEDGER_FIELDS [Wh]
    vg: np.ndarray  # grid voltage [V]
    ig: np.ndarray  # grid current, > 0 into the unit [A]
    mode: np.ndarray  # converter mode, Mode values
    dcdc_loss: np.ndarray  # converter loss of its mode [W]
    dvg: np.ndarray = field(default_factory=lambda: np.zeros(0))  # converter target voltage [V]
    dig: np.ndarray = field(default_factory=lambda: np.zeros(0))  # converter current limit [A]

    @property
    def rsoc(self) -> np.ndarray:
        """Relative state of charge [%]."""
        rsoc: np.ndarray = 100.0 * self.energy / self.capacity
        return rsoc

    @property
    def wb(self) -> np.ndarray:
        """Battery-side converter power wg − loss, > 0 when it charges the battery [W]."""
        wb: np.ndarray = self.wg - self.dcdc_loss
        return wb


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
        empty = np.empty(0)
        self._inputs = (0, empty, empty.astype(np.int64), empty)  # (first step, 3 arrays)
        self._gain_per_size = 1.0 if dataset.solar_unit == "W/m2" else 1.0 / (
            settings.default_Area * settings.r * settings.pr)
        self._template = standard_document()
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
        self._replaced_listeners: list[Callable[[Units, str], None]] = []
        self._units = self.new_units([self._unit_id(k) for k in range(1, self.initial_units + 1)])
        self._apply_grid()

    @property
    def units(self) -> Units:
        """The units' arrays (read them; change them only through the commands)."""
        return self._units

    def on_units_replaced(self, listener: Callable[[Units, str], None]) -> None:
        """Call ``listener(old_units, reason)`` whenever reset, load, add or remove (the
        reason) replaces the units.

        The old container is never stepped again, so it holds the units as they were replaced.
        """
        self._replaced_listeners.append(listener)

    def _replace_units(self, units: Units, reason: str) -> None:
        old, self._units = self._units, units
        for listener in self._replaced_listeners:
            listener(old, reason)

    # ------------------------------------------------------------------ clock
    @property
    def emulated_s(self) -> float:
        """Emulated time since the start [s]."""
        return self.step_index * self.dt

    @property
    def now(self) -> dt.datetime:
        """Emulated date and time."""
        return self.start_time + dt.timedelta(seconds=self.emulated_s)

    def time_string(self) -> str:
        """Emulated time as the unit documents show it: ``2019/01/01-00:15:00``."""
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
        return dict(doc)

    def new_units(self, ids: list[str]) -> Units:
        """New units with the standard parameters (and per-unit overrides of the settings)."""
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
            mode=np.full(n, Mode.WAIT, dtype=np.int64),
            dvg=np.full(n, float(template["vdis"]["dvg"])),
            dig=np.full(n, float(template["param"]["dig"])),
            drg=np.full(n, float(template["vdis"]["drg"])),
            p1=np.zeros(n), vg=np.zeros(n), ig=np.zeros(n), wg=np.zeros(n),
            dcdc_loss=np.zeros(n), out=np.zeros((n, len(OUT_FIELDS))),
            ledger=np.zeros((n, len(LEDGER_FIELDS))), kwh_base=np.zeros((n, 2)))
        return units

    @property
    def households(self) -> int:
        """Households of the data set (unit k uses household (k − 1) mod this)."""
        return self.dataset.households

    @property
    def ids(self) -> list[str]:
        """Unit ids in array order."""
        return list(self.units.ids)

    def _positions(self) -> dict[str, int]:
        """Unit id → array position, cached while the units container stays the same object."""
        if self._position_cache[0] is not self.units:
            self._position_cache = (self.units, {u: i for i, u in enumerate(self.units.ids)})
        return self._position_cache[1]

    def has_unit(self, unit_id: str) -> bool:
        """Whether a unit has this id."""
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
        self._replace_units(self.units.appended(self.new_units([unit_id])), "add")
        self._apply_grid()  # the new unit's meter and converter loss follow the live grid
        return unit_id

    def remove_unit(self) -> str:
        """Remove the unit with the highest id; InvalidValueError when there is none."""
        if not self.units.ids:
            raise InvalidValueError("unit", None, "a community with at least one unit")
        numbers = [self._unit_number(u) for u in self.units.ids]
        victim = int(np.argmax(numbers))
        unit_id = self.units.ids[victim]
        self._replace_units(self.units.taken(np.arange(len(self.units)) != victim), "remove")
        self._apply_grid()  # the grid loses a converter, perhaps its reference
        return unit_id

    def reset(self) -> None:
        """Units back to the standard parameters, as many as at the start (§4.1 Reset)."""
        self._replace_units(
            self.new_units([self._unit_id(k) for k in range(1, self.initial_units + 1)]), "reset")
        self.ramp_voltage = None
        self._apply_grid()  # the grid is down again (a later reference ramps up from 0 V)

    # ------------------------------------------------------------------ commands
    def set_dcdc(self, unit_id: str, mode: Mode | str | None = None, dvg: float | None = None,
                 dig: float | None = None, drg: float | None = None, p1: float | None = None,
                 p2: float | None = None) -> None:
        """Set the converter of one unit (``/set/dcdc``); None keeps a value as it is."""
        self.command_converters([ConverterCommand(unit_id, mode, dvg, dig, drg, p1, p2)])

    def command_converters(self, commands: Iterable[ConverterCommand]) -> None:
        """Set many converters at once and solve the grid once; all or nothing.

        Every command is checked before any is applied, so a refused batch changes nothing.
        """
        checked = [(self.index(c.unit_id), *c.checked()) for c in commands]
        for i, mode, values in checked:
            self._apply_command(i, mode, values)
        self._apply_grid()

    def _apply_command(self, i: int, mode: Mode | None, values: Mapping[str, float]) -> None:
        u = self.units
        becomes_reference = mode == Mode.VOLTAGE_REFERENCE and u.mode[i] != mode
        if mode is not None:
            u.mode[i] = mode
        for name in ("dvg", "dig", "drg", "p1"):
            if name in values:
                getattr(u, name)[i] = values[name]
        if "p2" in values:
            u.out[i, _OUT["p2"]] = values["p2"]
        if becomes_reference:
            self._maybe_start_ramp(i)
        elif self.ramp_voltage is not None and self.ramp_voltage >= self._under_voltage(i):
            self.ramp_voltage = None  # the grid is up: a change settles at once

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
            raise InvalidValueError("query", "", f"at least one of {', '.join(EMU_RULES)}")
        checked = {}
        for name, value in values.items():
            if name not in EMU_RULES:
                raise InvalidValueError(name, value, f"one of the keys {', '.join(EMU_RULES)}")
            checked[name] = EMU_RULES[name].check(value)
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
        if not (u.mode == Mode.VOLTAGE_REFERENCE).any():
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
        """Solar value and load sample index/weight at the middle of the next n steps: slices
        of a day's worth made at once (a headless run with an individual log asks 96 times
        a day; each value depends on its step alone, so the slices are the values)."""
        first, solar, load_j, load_f = self._inputs
        at = self.step_index - first
        if at < 0 or at + n > solar.shape[0]:
            first = self.step_index
            solar, load_j, load_f = self._inputs_of(first, max(n, round(86400.0 / self.dt)))
            self._inputs, at = (first, solar, load_j, load_f), 0
        return solar[at:at + n], load_j[at:at + n], load_f[at:at + n]

    def _inputs_of(self, first: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Solar value and load sample index/weight at the middle of steps first … first+n−1."""
        mids = (first + np.arange(n) + 0.5) * self.dt  # [s] since the start
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

    def _run_kernel(self, n: int, watch: np.ndarray | None = None) -> tuple[int, bool]:
        """Run n steps; with ``watch``, stop right after the first step that leaves a band.

        Returns (steps run, whether a band was left).  The kernel runs all units through the
        n steps; when a unit leaves its band earlier, the state is put back and the steps up
        to that moment are run again (exact, and rare).
        """
        u = self.units
        if n <= 0 or len(u) == 0:
            return max(n, 0), False
        solar, load_j, load_f = self._sample_inputs(n)
        state = (u.energy, u.bypass, u.ac_charge, u.out, u.ledger)
        saved = [a.copy() for a in state] if watch is not None else []
        trip = self._kernel(solar, load_j, load_f, watch)
        if trip > n:
            return n, False
        if trip < n:
            for array, copy in zip(state, saved, strict=True):
                array[...] = copy
            self._kernel(solar[:trip], load_j[:trip], load_f[:trip], None)
        return trip, True

    def _kernel(self, solar: np.ndarray, load_j: np.ndarray, load_f: np.ndarray,
                watch: np.ndarray | None, record: Recording | None = None) -> int:
        u = self.units
        bands = None if watch is None else energy_bands(watch, u.capacity)
        return run_steps(self.dt, solar, load_j, load_f, self.dataset.load_kw, u.house,
                         u.pv_gain, u.wg, u.dcdc_loss, self._params, u.energy, u.capacity,
                         u.bypass, u.ac_charge, u.out, u.ledger, bands, record)

    def advance(self, n_steps: int, power_flow: bool = True) -> None:
        """Run ``n_steps`` physics steps of Δt; ``power_flow=False`` only moves clock and ramp."""
        self.advance_watched(n_steps, None, power_flow)

    def advance_watched(self, n_steps: int, watch: np.ndarray | None,
                        power_flow: bool = True) -> tuple[int, bool]:
        """Like :meth:`advance`, but stop right after a step that takes a unit out of its
        ``watch`` band (see :func:`.kernel.run_steps`); returns (steps run, band left)."""
        remaining, done, left = int(n_steps), 0, False
        while remaining > 0 and not left:
            # while the grid ramps, its voltage changes every step
            chunk = 1 if self.ramp_voltage is not None else remaining
            ran, left = self._run_kernel(chunk, watch) if power_flow else (chunk, False)
            self.step_index += ran
            remaining -= ran
            done += ran
            self._progress_ramp(ran * self.dt)
        self._changed()
        return done, left

    def sample(self) -> Sample:
        """The units' shown values now, read-only copies."""
        u = self.units
        return Sample(self.now, self.step_index, tuple(u.ids), self._displays(),
                      u.energy.copy(), u.capacity.copy(), u.out.copy(), u.wg.copy())

    def advance_sampled(self, n_steps: int, at: Sequence[int]) -> list[Sample] | None:
        """Run ``n_steps`` physics steps in one kernel call, keeping the units' shown values
        after each step count in ``at`` (increasing, each in 1 … n_steps − 1) instead of
        stopping there: the same trajectory, to the bit, as :meth:`advance` stopped at each.
        None (nothing run) while the grid ramps (its voltage changes at every step), for
        ``n_steps`` ≤ 0 and for a community without units."""
        u, n = self.units, int(n_steps)
        if self.ramp_voltage is not None or n <= 0 or len(u) == 0:
            return None
        record = Recording.after(at, len(u))
        self._kernel(*self._sample_inputs(n), None, record)
        first = self.step_index
        self.step_index += n
        self._changed()
        ids, displays = tuple(u.ids), self._displays()
        capacity, wg = u.capacity.copy(), u.wg.copy()  # the same at every sample of the run
        return [Sample(self.start_time + dt.timedelta(seconds=(first + int(c)) * self.dt),
                       first + int(c), ids, displays, record.energy[r], capacity,
                       record.out[r], wg) for r, c in enumerate(record.at)]

    def stepping(self) -> Stepping:
        """The engine's arrays and grid scalars for a compiled loop (engine/stepper.py); the
        loop changes them in place and gives the scalars back with :meth:`stepped`."""
        u, s = self.units, self.settings
        ramp = math.nan if self.ramp_voltage is None else self.ramp_voltage
        return Stepping(
            dt=self.dt, params=self._params, ugv=np.array([self._under_voltage(i)
                                                           for i in range(len(u))]),
            losses=np.array([s.DCCstLoss, s.DCDischargeLoss, s.DCDischargeLoss,
                             s.DCChargeLoss]),
            load_kw=self.dataset.load_kw, house=u.house, pv_gain=u.pv_gain, energy=u.energy,
            capacity=u.capacity, bypass=u.bypass, ac_charge=u.ac_charge, out=u.out,
            ledger=u.ledger, mode=u.mode, dvg=u.dvg, dig=u.dig, drg=u.drg, vg=u.vg, ig=u.ig,
            wg=u.wg, dcdc_loss=u.dcdc_loss,
            grid=np.array([self.bus_voltage, ramp, self._ramp_rate]))

    def sample_inputs(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Solar value and load sample index/weight of the next n steps (see the kernel)."""
        return self._sample_inputs(n)

    def stepped(self, steps: int, stepping: Stepping) -> None:
        """A compiled loop ran ``steps`` steps on :meth:`stepping`'s arrays: the clock and the
        grid's scalars follow."""
        self.step_index += int(steps)
        v, ramp, rate = (float(x) for x in stepping.grid)
        self.bus_voltage = v
        self.ramp_voltage = None if math.isnan(ramp) else ramp
        self._ramp_rate = rate
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
        """A read-only copy of the units now (for recorders and controllers)."""
        u = self.units
        return Snapshot(time=self.now, step=self.step_index, ids=tuple(u.ids),
                        displays=self._displays(),
                        energy=u.energy.copy(), capacity=u.capacity.copy(), out=u.out.copy(),
                        ledger=u.ledger.copy(), vg=u.vg.copy(), ig=u.ig.copy(),
                        wg=u.wg.copy(), mode=u.mode.copy(), dcdc_loss=u.dcdc_loss.copy(),
                        dvg=u.dvg.copy(), dig=u.dig.copy())

    # ------------------------------------------------------------------ replace
    def replace_state(self, units: Units, ramp_voltage: float | None = None,
                      ramp_rate: float = 0.0) -> None:
        """Take ``units`` (a loaded save file) as the community; a saved rising grid goes on
        rising from ``ramp_voltage`` [V] at ``ramp_rate`` [V/s]."""
        self._replace_units(units, "load")
        self.ramp_voltage, self._ramp_rate = ramp_voltage, ramp_rate
        self._apply_grid(shift_flow=False)  # the saved flow already holds the grid

    @property
    def ramp_rate(self) -> float:
        """How fast a rising grid rises [V/s]."""
        return self._ramp_rate
