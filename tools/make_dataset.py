#!/usr/bin/env python3
"""Regenerate the embedded default data set (issue 5), bit for bit, from a seed.

    make dataset                         # = .venv/bin/python tools/make_dataset.py
    python tools/make_dataset.py --seed 5 --out DIR --households 100 --jobs 2

Writes DIR/solar.csv.gz, DIR/load.csv.gz and DIR/dataset.json (see docs/dataset.md), and by
default the figure docs/dataset-year.png (``--plot ''`` to skip it).  ``--from-files`` only
rewrites dataset.json and the figure from the two data files already in DIR.

Sources, all shipped by registry packages, so nothing is downloaded:

* Weather: the TMY3 file of Greensboro, NC (USAF 723170) that the pvlib wheel ships as
  ``pvlib/data/723170TYA.CSV`` (NREL, National Solar Radiation Data Base 1991-2005 update).
  Hourly global/direct/diffuse irradiance is transposed with pvlib (Perez model) onto a
  30 degree, south-facing panel; the dry-bulb temperature drives the seasonal term.
* Households: richardsonpy, the Python port of the Richardson et al. (CREST) stochastic
  active-occupancy, appliance and lighting model, at 1-minute resolution, with the model's
  original appliance calibration, household sizes drawn from the seed, and no electric space
  or water heating (the homes heat with gas).  The lighting model sees the same year's
  irradiance.  Each house lives the model on its own routine and habits (shifted mornings and
  evenings, when and how often it does each activity, home all week or not, LED bulbs), which
  the published model, drawing every house from the same statistics, lacks.
* Seasonal term: a first-order thermal model per house (heat-loss coefficient, solar aperture,
  time constant, thermostat set points drawn from the seed) driven by the TMY temperature and
  irradiance and by the house's own electric load as internal gain: air conditioning in
  summer (electric, COP), gas-furnace blower fan in winter; setback thermostats follow the
  house's own occupancy.

Each household depends only on (seed, household id), so any one of them can be regenerated
alone (``household_rows``), which the tests use.  The gzip files are written with mtime=0 and
no file name, so the bytes depend on nothing but the numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import gzip
import io
import json
import multiprocessing as mp
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "apis_emulator" / "data" / "default"
DEFAULT_PLOT = ROOT / "docs" / "dataset-year.png"

DEFAULT_SEED = 5  # issue 5
YEAR = 2019  # calendar for the date numbers and weekdays (not a leap year; 1 Jan is a Tuesday)
DAYS = 365
TMY_FILE = "723170TYA.CSV"  # inside the pvlib package's data/ folder
PANEL_TILT = 30.0  # degrees from horizontal
PANEL_AZIMUTH = 180.0  # degrees, 180 = facing south
ALBEDO = 0.2
TRANSPOSITION = "perez"

# Share of US households by size, 1..5+ persons (US Census Bureau, Current Population Survey,
# America's Families and Living Arrangements 2022-2024: 28.9 % one person, ~34.6 % two persons,
# mean 2.5).  Rounded; 5 stands for "5 or more" since richardsonpy's occupancy model stops at 5.
HOUSEHOLD_SIZE_P = (0.29, 0.35, 0.15, 0.13, 0.08)
# EIA, Residential Energy Consumption Survey 2020: air conditioning used in 88 % of US homes.
AC_SHARE = 0.88
# richardsonpy's Appliances.csv rows for electric water heating (DESWH, E-INST, electric
# shower) and electric space heating (storage heaters, other electric space heating).  The
# package's own prev_heat_dev switch is off by one (it keeps DESWH), so they are cleared here.
ELECTRIC_HEATING_ROWS = (28, 29, 30, 31, 32)
# Persistent household habits, which the CREST model lacks (it draws every day of every house
# from the same population statistics, so yearly mean daily profiles converge to one curve):
# - a routine: the day (occupancy and activities) runs earlier or later, by one shift in the
#   morning and another in the evening, each up to +-3 h, uniform in ten-minute steps (the
#   spread of wake-up and bed times between households);
# - a habit per activity (TV, cooking, laundry, washing/dressing, ironing, cleaning): a smooth
#   time-of-day preference exp(sigma z(t)) that moves *when* the activity happens, and an
#   intensity (log-normal, mean 1) for how often;
# - home all week: a share of houses (retired, working from home) lives every day by the
#   weekend occupancy and activity statistics.
SLOTS = 144  # ten-minute slots a day in the CREST tables
ACTIVITIES = 6
ROUTINE_SHIFT_SLOTS = 18
MORNING_SLOT, EVENING_SLOT = 42, 120  # 07:00 and 20:00
HABIT_HARMONICS = 4
HABIT_SIGMA = 1.0
HOME_ALL_WEEK_SHARE = 0.3
INTENSITY_SIGMA = 0.5
SETBACK_SHARE = 0.5
# The CREST bulbs are the incandescent/CFL mix of 2000s British homes; each house has its own
# share of LED bulbs, which draw about a quarter of the power for the same light (US DOE).
LED_SAVING = 0.75

# The project's default panel, for the figure only (PV power = irradiance x area x eff x PCS).
PANEL_AREA_M2 = 21.6
PANEL_EFFICIENCY = 0.19
PCS_EFFICIENCY = 0.9


# ---------------------------------------------------------------------------------------------
# weather

def tmy_path() -> Path:
    import pvlib

    return Path(pvlib.__file__).resolve().parent / "data" / TMY_FILE


def load_weather() -> dict[str, Any]:
    """Hourly TMY series in file order (1 Jan 01:00 ... 31 Dec 24:00 local standard time)."""
    import pvlib

    data, meta = pvlib.iotools.read_tmy3(str(tmy_path()), map_variables=True)
    if len(data) != DAYS * 24:
        raise SystemExit(f"{TMY_FILE}: expected 8760 hours, found {len(data)}")
    source_year: dict[int, int] = {}
    for stamp in data.index:  # hour-ending stamps: the hour began one hour earlier
        start = stamp - dt.timedelta(hours=1)
        source_year.setdefault(int(start.month), int(start.year))
    return {
        "ghi": data["ghi"].to_numpy(dtype=float),
        "dni": data["dni"].to_numpy(dtype=float),
        "dhi": data["dhi"].to_numpy(dtype=float),
        "temp_air": data["temp_air"].to_numpy(dtype=float),
        "ghi_source": sorted({str(v) for v in data["GHI source"].unique()}),
        "meta": meta,
        "month_source_year": source_year,
    }


def plane_of_array(weather: dict[str, Any]) -> np.ndarray:
    """Hourly mean irradiance on the tilted panel, W/m2, shape (8760,), value h = hour [h, h+1).

    TMY3 irradiance is the energy of the 60 minutes before the stamp, so the sun is placed
    at the middle of each hour.
    """
    import pandas as pd
    import pvlib

    meta = weather["meta"]
    tz = f"Etc/GMT{-int(meta['TZ']):+d}"  # TZ -5 -> "Etc/GMT+5" (fixed UTC-5, no DST)
    times = pd.date_range(f"{YEAR}-01-01 00:30", periods=DAYS * 24, freq="h", tz=tz)
    sol = pvlib.solarposition.get_solarposition(
        times, meta["latitude"], meta["longitude"], altitude=meta["altitude"]
    )
    dni_extra = pvlib.irradiance.get_extra_radiation(times)
    airmass = pvlib.atmosphere.get_relative_airmass(sol["apparent_zenith"])
    poa = pvlib.irradiance.get_total_irradiance(
        PANEL_TILT,
        PANEL_AZIMUTH,
        sol["apparent_zenith"],
        sol["azimuth"],
        dni=pd.Series(weather["dni"], index=times),
        ghi=pd.Series(weather["ghi"], index=times),
        dhi=pd.Series(weather["dhi"], index=times),
        dni_extra=dni_extra,
        airmass=airmass,
        albedo=ALBEDO,
        model=TRANSPOSITION,
    )
    g = poa["poa_global"].to_numpy(dtype=float)
    g = np.where(np.isfinite(g), g, weather["ghi"])  # sun below the horizon at mid-hour: use GHI
    g = np.clip(g, 0.0, None)
    g[weather["ghi"] <= 0] = 0.0
    return np.round(g, 1)


def minute_ghi(weather: dict[str, Any]) -> np.ndarray:
    """GHI at 1-minute resolution (W/m2) for richardsonpy's lighting model, shape (525600,)."""
    centres = np.arange(DAYS * 24) + 0.5
    minutes = (np.arange(DAYS * 1440) + 0.5) / 60.0
    return np.interp(minutes, centres, weather["ghi"])


def half_hour_weather(weather: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(temperature degC, GHI W/m2) at the middle of each half hour, shape (17520,) each."""
    mid = np.arange(DAYS * 48) * 0.5 + 0.25  # hours since 1 Jan 00:00
    t = weather["temp_air"]  # instantaneous at the stamp, stamps at 1..8760 h
    temp = np.interp(mid, np.arange(1, DAYS * 24 + 1, dtype=float), t, left=t[-1])
    ghi = np.interp(mid, np.arange(DAYS * 24) + 0.5, weather["ghi"])
    return temp, ghi


# ---------------------------------------------------------------------------------------------
# households

def household_rng(seed: int, hid: int) -> tuple[np.random.Generator, int]:
    """Independent streams per household: a numpy Generator and a seed for `random`."""
    ss = np.random.SeedSequence([seed, hid])
    rng_ss, py_ss = ss.spawn(2)
    return np.random.default_rng(rng_ss), int(py_ss.generate_state(1, dtype=np.uint32)[0])


def household_params(seed: int, hid: int) -> dict[str, Any]:
    rng, py_seed = household_rng(seed, hid)
    p = {
        "py_seed": py_seed,
        "occupants": int(rng.choice(5, p=HOUSEHOLD_SIZE_P)) + 1,
        "light_config": int(rng.integers(0, 100)),
        # thermal model of the house
        "ua_kw_per_k": float(rng.uniform(0.15, 0.30)),
        "solar_aperture_m2": float(rng.uniform(1.0, 3.0)),
        "tau_h": float(rng.uniform(3.0, 8.0)),
        "cooling_setpoint_c": float(rng.uniform(23.5, 26.0)),
        "heating_setpoint_c": float(rng.uniform(19.0, 21.5)),
        # air conditioner
        "has_ac": bool(rng.random() < AC_SHARE),
        "ac_cop": float(rng.uniform(2.8, 3.8)),
        "ac_capacity_kw": float(rng.uniform(7.0, 12.0)),
        # gas furnace: only its blower fan draws electricity
        "fan_kw": float(rng.uniform(0.3, 0.6)),
        "furnace_capacity_kw": float(rng.uniform(15.0, 25.0)),
        # the household's own routine (see routine_statistics)
        "morning_shift_slots": int(rng.integers(-ROUTINE_SHIFT_SLOTS, ROUTINE_SHIFT_SLOTS + 1)),
        "evening_shift_slots": int(rng.integers(-ROUTINE_SHIFT_SLOTS, ROUTINE_SHIFT_SLOTS + 1)),
        "home_all_week": bool(rng.random() < HOME_ALL_WEEK_SHARE),
        "habits": _habit_coefficients(rng),
        "activity_intensity": np.round(
            np.exp(rng.normal(0.0, INTENSITY_SIGMA, ACTIVITIES) - INTENSITY_SIGMA ** 2 / 2), 6
        ).tolist(),
        "thermostat_setback": bool(rng.random() < SETBACK_SHARE),
        "setback_k": float(rng.uniform(2.0, 5.0)),
        "led_share": float(rng.uniform(0.0, 1.0)),
    }
    return p


def _habit_coefficients(rng: np.random.Generator) -> list[list[float]]:
    """Fourier coefficients (cos, sin per harmonic 1..HABIT_HARMONICS) of each activity's
    time-of-day preference, with a 1/k spectrum so the preference is smooth over hours."""
    k = np.repeat(np.arange(1, HABIT_HARMONICS + 1), 2)
    coef = rng.normal(0.0, 1.0, (ACTIVITIES, 2 * HABIT_HARMONICS)) / k
    return np.round(coef, 6).tolist()


def habit_multipliers(habits: list[list[float]]) -> np.ndarray:
    """exp(HABIT_SIGMA * z) per activity and ten-minute slot, shape (ACTIVITIES, 144), where z
    is the smooth periodic preference scaled to unit variance over the day."""
    t = 2.0 * np.pi * np.arange(SLOTS) / SLOTS
    k = np.arange(1, HABIT_HARMONICS + 1)[:, None]
    basis = np.empty((2 * HABIT_HARMONICS, SLOTS))
    basis[0::2], basis[1::2] = np.cos(k * t), np.sin(k * t)
    z = np.asarray(habits) @ basis
    z /= z.std(axis=1, keepdims=True)
    return np.exp(HABIT_SIGMA * z)


def routine_clock(p: dict[str, Any]) -> np.ndarray:
    """For each ten-minute slot of the day, the slot of the household's own routine that it
    lives then (may be < 0 or >= 144: the neighbouring day).  The routine runs
    morning_shift slots late at 07:00 and evening_shift slots late at 20:00, the shift varying
    linearly in between (a piecewise-linear warp, monotone since the shifts are small)."""
    t = np.arange(SLOTS, dtype=float)
    m, e = p["morning_shift_slots"], p["evening_shift_slots"]
    day_span, night_span = EVENING_SLOT - MORNING_SLOT, SLOTS - (EVENING_SLOT - MORNING_SLOT)
    after_evening = np.where(t >= EVENING_SLOT, t - EVENING_SLOT, t + SLOTS - EVENING_SLOT)
    shift = np.where(
        (t >= MORNING_SLOT) & (t < EVENING_SLOT),
        m + (e - m) * (t - MORNING_SLOT) / day_span,
        e + (m - e) * after_evening / night_span,
    )
    return (t - np.rint(shift)).astype(int)


def routine_statistics(base: dict[str, list[list[float]]], p: dict[str, Any]
                       ) -> dict[str, list[list[float]]]:
    """The household's own copy of the CREST activity statistics.

    Each activity's start probability is reweighted over the day by the household's habit
    multiplier and read on the household's clock, then scaled so that its daily sum is the
    population's times the household's intensity for that activity (when and how often it
    happens become the household's).
    Rows are [occupants, activity, p(00:00-00:10), ..., p(23:50-24:00)].
    """
    mult = habit_multipliers(p["habits"])
    intensity = np.asarray(p["activity_intensity"])
    out = {}
    for day_type, rows in base.items():
        table = np.asarray(rows, dtype=float)
        probs = table[:, 2:]
        activity = table[:, 1].astype(int)
        mine = (probs * mult[activity])[:, routine_clock(p) % SLOTS]
        total = probs.sum(axis=1, keepdims=True) * intensity[activity, None]
        new_total = mine.sum(axis=1, keepdims=True)
        scale = np.divide(total, new_total, out=np.zeros_like(total), where=new_total > 0)
        table[:, 2:] = np.minimum(1.0, mine * scale)
        out[day_type] = table.tolist()
    return out


def prepared_weather() -> dict[str, Any]:
    """The TMY year plus the resamplings the household model needs."""
    w = load_weather()
    w["ghi_1min"] = minute_ghi(w)
    w["temp_hh"], w["ghi_hh"] = half_hour_weather(w)
    return w


def occupancy_model_load(p: dict[str, Any], ghi_1min: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """richardsonpy appliances + lighting, W at 1-minute resolution, shape (525600,), and the
    household's active occupants per ten-minute slot, shape (52560,)."""
    import richardsonpy.classes.appliance as app_model
    import richardsonpy.classes.lighting as light_model
    import richardsonpy.classes.stochastic_el_load_wrapper as wrapper

    inputs = Path(app_model.__file__).resolve().parents[1] / "inputs"
    random.seed(p["py_seed"])
    day_types = [p["home_all_week"] or _is_weekend(day) for day in range(DAYS)]
    occupancy = household_occupancy(p["occupants"], day_types)
    # the household's clock over the whole year, so late evenings run past midnight
    year_slot = np.arange(DAYS * SLOTS)
    source = year_slot + (routine_clock(p)[year_slot % SLOTS] - year_slot % SLOTS)
    occupancy = occupancy[np.clip(source, 0, DAYS * SLOTS - 1)]
    apps = app_model.Appliances(
        str(inputs / "Appliances.csv"), randomize_appliances=True, prev_heat_dev=True
    )
    for row in ELECTRIC_HEATING_ROWS:
        apps.data[row][0] = 0
    # The package's own annual-demand calibration drives some start probabilities negative
    # (the fridges then never run); factor 1 restores the original CREST calibration.
    apps.estimate_annual_consumption(calibration_factor=1.0)
    bulbs = light_model.load_lighting_profile(
        str(inputs / "LightBulbs.csv"), index=p["light_config"]
    )
    profile = wrapper.ElectricityProfile(apps, bulbs)  # loads the activity statistics
    statistics = routine_statistics(profile.activity_statistics, p)
    # richardsonpy 0.2.3 looks the activity statistics up at row 5*occupants + profile, but the
    # table has six activity profiles per occupancy level (rows 6*occupants + profile), so
    # e.g. laundry would use the cooking probabilities.  Handing the appliance model the
    # occupancy as 1.2*k + 0.01 (0 stays 0) makes int(5*x + profile) = 6*k + profile; the
    # model only compares the occupancy with 0 otherwise.  Lighting gets the true occupancy.
    occupancy_app = np.where(occupancy > 0, 1.2 * occupancy + 0.01, 0.0)
    light_factor = 1.0 - LED_SAVING * p["led_share"]
    out = np.empty(DAYS * 1440)
    for day in range(DAYS):
        slots = slice(day * SLOTS, (day + 1) * SLOTS)
        light = light_model.run_lighting_simulation(
            vOccupancyArray=[int(v) for v in occupancy[slots]],
            vBulbArray=bulbs,
            vIrradianceArray=ghi_1min[day * 1440:(day + 1) * 1440],
            light_mod_config=profile.lighting_config,
        )
        appliances = app_model.run_application_simulation(
            occupancy_app[slots].tolist(),
            apps,
            statistics[profile.type_weekday[day_types[day]]],
            _month(day),
        )
        out[day * 1440:(day + 1) * 1440] = (
            light_factor * np.sum(np.asarray(light, dtype=float), axis=0)
            + np.sum(np.asarray(appliances, dtype=float), axis=0)
        )
    return out, occupancy


def household_occupancy(occupants: int, weekend_days: list[bool]) -> np.ndarray:
    """CREST active occupancy, ten-minute slots, shape (DAYS * 144,): richardsonpy's own
    Markov chain, day by day, but with the household's day types (a home-all-week household
    takes the weekend chain on weekdays too)."""
    import richardsonpy.classes.occupancy as occ_model

    # The package refuses nb_days=0; the one day it simulates here is discarded.
    occ = occ_model.Occupancy(number_occupants=occupants, initial_day=1, nb_days=1)
    start = occ.occ_start_states["we" if weekend_days[0] else "wd"]
    occ.initial_occupancy = occ._get_start_state(start[occupants])
    return np.concatenate([np.asarray(occ._get_occupancy(w)) for w in weekend_days])


def _is_weekend(day: int) -> bool:
    return (dt.date(YEAR, 1, 1) + dt.timedelta(days=day)).isoweekday() >= 6


def _month(day: int) -> int:
    return (dt.date(YEAR, 1, 1) + dt.timedelta(days=day)).month


def climate_load(p: dict[str, Any], base_kw: np.ndarray, active: np.ndarray,
                 temp: np.ndarray, ghi: np.ndarray) -> np.ndarray:
    """Air conditioning + furnace fan, kW at half-hour resolution, shape (17520,).

    `active` is the share of the half hour with someone awake at home; a setback thermostat
    relaxes both set points by setback_k while nobody is (away or asleep).
    """
    ua = p["ua_kw_per_k"]
    gains = base_kw + p["solar_aperture_m2"] * ghi / 1000.0  # kW of heat into the house
    drive = temp + gains / ua  # the outdoor temperature the house "feels"
    a = 1.0 - np.exp(-0.5 / p["tau_h"])
    inside = np.empty_like(drive)
    x = float(drive[0])
    for _ in range(2):  # second pass starts from the state at the end of the year
        for i, v in enumerate(drive.tolist()):
            x += a * (v - x)
            inside[i] = x
    setback = p["setback_k"] * (1.0 - active) if p["thermostat_setback"] else np.zeros_like(active)
    cooling = ua * np.maximum(0.0, inside - (p["cooling_setpoint_c"] + setback))  # kW thermal
    heating = ua * np.maximum(0.0, (p["heating_setpoint_c"] - setback) - inside)
    ac = np.minimum(cooling, p["ac_capacity_kw"]) / p["ac_cop"] if p["has_ac"] else 0.0 * cooling
    fan = p["fan_kw"] * np.minimum(1.0, heating / p["furnace_capacity_kw"])
    return ac + fan


def simulate_household(seed: int, hid: int, w: dict[str, Any] | None = None) -> dict[str, Any]:
    w = prepared_weather() if w is None else w
    p = household_params(seed, hid)
    watts, occupancy = occupancy_model_load(p, w["ghi_1min"])
    base_kw = watts.reshape(DAYS * 48, 30).mean(axis=1) / 1000.0
    active = (occupancy > 0).reshape(DAYS * 48, 3).mean(axis=1)
    clim_kw = climate_load(p, base_kw, active, w["temp_hh"], w["ghi_hh"])
    load = np.round(base_kw + clim_kw, 3)
    clim_daily_kwh = np.round(clim_kw.reshape(DAYS, 48).sum(axis=1) * 0.5, 3)
    return {"hid": hid, "params": p, "load_kw": load, "climate_kwh": clim_daily_kwh}


def date_numbers() -> list[int]:
    start = dt.date(YEAR, 1, 1)
    return [int((start + dt.timedelta(days=d)).strftime("%Y%m%d")) for d in range(DAYS)]


LOAD_HEADER = ",".join(
    ["date", "household_id", "occupants", "climate_kwh", "c5", "c6"]
    + [f"t{h:02d}{m:02d}" for h in range(24) for m in (0, 30)]
)


def household_rows(seed: int, hid: int, result: dict[str, Any] | None = None) -> list[str]:
    """The 365 CSV lines (no newline) of one household, exactly as in load.csv.gz."""
    r = result if result is not None else simulate_household(seed, hid)
    occupants = r["params"]["occupants"]
    load = r["load_kw"].reshape(DAYS, 48)
    lines = []
    for d, date in enumerate(date_numbers()):
        values = ",".join(f"{v:.3f}" for v in load[d])
        lines.append(f"{date},{hid},{occupants},{r['climate_kwh'][d]:.3f},0,0,{values}")
    return lines


def _work(weather: dict[str, Any], task: tuple[int, int]) -> dict[str, Any]:
    return simulate_household(*task, weather)


# ---------------------------------------------------------------------------------------------
# output

def write_gzip(path: Path, text: str) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(text.encode("ascii"))
    path.write_bytes(buf.getvalue())


def solar_text(poa: np.ndarray) -> str:
    rows = poa.reshape(DAYS, 24)
    return "".join(",".join(f"{v:.1f}" for v in row) + "\n" for row in rows)


def season_mask(months: tuple[int, ...]) -> np.ndarray:
    start = dt.date(YEAR, 1, 1)
    return np.array([(start + dt.timedelta(days=d)).month in months for d in range(DAYS)])


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("pvlib", "pandas", "numpy", "richardsonpy")}


def metadata(seed: int, households: int, weather: dict[str, Any], poa: np.ndarray,
             results: list[dict[str, Any]]) -> dict[str, Any]:
    meta = weather["meta"]
    loads = np.stack([r["load_kw"] for r in results])  # (H, 17520)
    yearly = loads.sum(axis=1) * 0.5
    climate = np.array([r["climate_kwh"].sum() for r in results])
    daily = loads.sum(axis=0).reshape(DAYS, 48).sum(axis=1) * 0.5
    winter = daily[season_mask((12, 1, 2))].mean()
    summer = daily[season_mask((6, 7, 8))].mean()
    sizes = [r["params"]["occupants"] for r in results]
    return {
        "name": f"Greensboro TMY3 + {households} CREST households",
        "description": (
            "Default community: a typical meteorological year of Greensboro, North Carolina "
            "(NREL TMY3, shipped with pvlib) transposed onto a 30 degree south-facing panel, and "
            f"{households} households from the Richardson/CREST stochastic occupancy, appliance "
            "and lighting model (richardsonpy), each with its own routine and habits, without "
            "electric space or water heating, plus "
            "air conditioning and gas-furnace fans driven by the same year's temperatures."
        ),
        "solar": {
            "file": "solar.csv.gz",
            "unit": "W/m2",
            "interval_minutes": 60,
            "samples": "interval-mean",
            "quantity": "plane-of-array global irradiance, hourly mean, hour h = [h:00, h+1:00)",
            "time": "local standard time (UTC-5, no daylight saving)",
            "panel_tilt_deg": PANEL_TILT,
            "panel_azimuth_deg": PANEL_AZIMUTH,
            "albedo": ALBEDO,
            "transposition_model": TRANSPOSITION,
        },
        "load": {
            "file": "load.csv.gz",
            "unit": "kW",
            "layout": "rows",
            "interval_minutes": 30,
            "samples": "interval-mean",
            "households": households,
            "columns_3_to_6": (
                "occupants, that day's air-conditioning + furnace-fan energy in kWh "
                "(already included in the 48 values), 0, 0"
            ),
        },
        "location": {
            "name": "Greensboro Piedmont Triad International Airport, North Carolina, USA",
            "latitude": float(meta["latitude"]),
            "longitude": float(meta["longitude"]),
            "altitude_m": float(meta["altitude"]),
            "timezone": "Etc/GMT+5",
            "usaf": int(meta["USAF"]),
        },
        "calendar_year": YEAR,
        "source": {
            "weather": {
                "file": f"pvlib/data/{TMY_FILE} (inside the pvlib wheel)",
                "dataset": "NREL TMY3, National Solar Radiation Data Base 1991-2005 update "
                           "(Wilcox & Marion 2008, NREL/TP-581-43156)",
                "typical_months_from_years": {
                    str(m): y for m, y in sorted(weather["month_source_year"].items())
                },
                "ghi_source_flags": weather["ghi_source"],
            },
            "households": {
                "model": "Richardson, Thomson, Infield & Clifford (2010), Energy and Buildings "
                         "42(10):1878-1887; Richardson et al. (2008) 40(8):1560-1566 "
                         "(CREST domestic electricity demand model)",
                "implementation": "richardsonpy (RWTH Aachen EBC), 1-minute resolution",
                "appliance_calibration": "original CREST (calibration factor 1)",
                "excluded": "electric space heating and electric water heating",
                "household_sizes": "drawn from the US Census household-size shares "
                                   f"{list(HOUSEHOLD_SIZE_P)} for 1..5 persons",
                "air_conditioning_share": AC_SHARE,
                "household_routines": (
                    "per house, from the seed: morning and evening shift of the routine "
                    f"(+-{ROUTINE_SHIFT_SLOTS * 10} min), a time-of-day habit "
                    f"(sigma {HABIT_SIGMA}) and an intensity (sigma {INTENSITY_SIGMA}) per "
                    f"activity, home all week with probability {HOME_ALL_WEEK_SHARE}, LED "
                    f"share of the bulbs 0-1 (LED saves {LED_SAVING:.0%}), setback thermostat "
                    f"with probability {SETBACK_SHARE}; see docs/dataset.md"
                ),
            },
            "seasonal_term": "first-order thermal model per house; see docs/dataset.md",
        },
        "licence": (
            "Generated numbers: MIT, with the project. Weather: NREL TMY3 (US Government-"
            "funded, publicly released, redistributed by pvlib under BSD-3-Clause); "
            "household model: richardsonpy (GPL-3.0), used only by the generator and not "
            "shipped. See docs/dataset.md."
        ),
        "seed": seed,
        "generator": "tools/make_dataset.py",
        "generator_versions": versions(),
        "summary": {
            "solar_yearly_kwh_per_m2": round(float(poa.sum()) / 1000.0, 1),
            "solar_max_w_per_m2": float(poa.max()),
            "household_yearly_kwh_median": round(float(np.median(yearly)), 1),
            "household_yearly_kwh_min": round(float(yearly.min()), 1),
            "household_yearly_kwh_max": round(float(yearly.max()), 1),
            "climate_term_yearly_kwh_mean": round(float(climate.mean()), 1),
            "winter_summer_ratio": round(float(winter / summer), 3),
            "occupants_count": {str(k): sizes.count(k) for k in range(1, 6)},
        },
    }


def plot(path: Path, poa: np.ndarray, results: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    days = [dt.date(YEAR, 1, 1) + dt.timedelta(days=d) for d in range(DAYS)]
    pv_kwh = poa.reshape(DAYS, 24).sum(axis=1) * PANEL_AREA_M2 * PANEL_EFFICIENCY \
        * PCS_EFFICIENCY / 1000.0
    loads = np.stack([r["load_kw"] for r in results])
    per_house = loads.sum(axis=0).reshape(DAYS, 48).sum(axis=1) * 0.5 / len(results)

    fig, axes = plt.subplots(3, 1, figsize=(11, 10), constrained_layout=True)
    ax = axes[0]
    ax.plot(days, pv_kwh, color="tab:orange", lw=0.8,
            label=f"PV energy of one house (irradiance x {PANEL_AREA_M2} m2 x "
                  f"{PANEL_EFFICIENCY} x {PCS_EFFICIENCY})")
    ax.plot(days, per_house, color="tab:blue", lw=0.8,
            label=f"community load / {len(results)} households")
    ax.set_ylim(0, 1.3 * max(pv_kwh.max(), per_house.max()))  # room for the legend
    ax.set_ylabel("kWh per day per house")
    ax.set_title("Default data set: daily PV energy and load, per house (Greensboro TMY3)")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b"))
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[1]
    total = loads.sum(axis=0).reshape(DAYS, 48).sum(axis=1) * 0.5
    climate = np.sum([r["climate_kwh"] for r in results], axis=0)
    ax.fill_between(days, 0, total - climate, color="tab:blue", alpha=0.5,
                    label="appliances + lighting (CREST model)")
    ax.fill_between(days, total - climate, total, color="tab:red", alpha=0.5,
                    label="air conditioning + furnace fans")
    ax.set_ylim(0, 1.25 * total.max())
    ax.set_ylabel("kWh per day")
    ax.set_title(f"Daily community load, {len(results)} households")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b"))
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[2]
    start = (dt.date(YEAR, 7, 15) - dt.date(YEAR, 1, 1)).days  # a Monday
    t = [dt.datetime(YEAR, 7, 15) + dt.timedelta(minutes=30 * i) for i in range(7 * 48)]
    for r in results[:5]:
        ax.step(t, r["load_kw"][start * 48:(start + 7) * 48], where="post", lw=0.8,
                label=f"household {r['hid']} ({r['params']['occupants']} pers.)")
    ax.set_ylim(0, 1.2 * max(r["load_kw"][start * 48:(start + 7) * 48].max()
                             for r in results[:5]))
    ax.set_ylabel("kW (half-hour mean)")
    ax.set_title("One summer week, five households, half-hour resolution")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %b"))
    ax.legend(loc="upper left", fontsize=8, ncol=5)
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_back(out: Path) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The irradiance and household series of a generated data set, for --plot-only."""
    solar = gzip.decompress((out / "solar.csv.gz").read_bytes()).decode("ascii")
    poa = np.array([[float(v) for v in line.split(",")] for line in solar.splitlines()])
    text = gzip.decompress((out / "load.csv.gz").read_bytes()).decode("ascii")
    table = np.array([[float(v) for v in line.split(",")] for line in text.splitlines()[1:]])
    results = []
    for block in table.reshape(-1, DAYS, table.shape[1]):
        results.append({
            "hid": int(block[0, 1]),
            "params": {"occupants": int(block[0, 2])},
            "load_kw": block[:, 6:].reshape(-1),
            "climate_kwh": block[:, 3],
        })
    return poa.reshape(-1), results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=None,
                    help=f"default {DEFAULT_SEED}; with --from-files, the one in dataset.json")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--households", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="worker processes (the result does not depend on it)")
    ap.add_argument("--plot", default=str(DEFAULT_PLOT),
                    help="where to write the figure; '' to skip it")
    ap.add_argument("--from-files", action="store_true",
                    help="do not simulate: rewrite dataset.json and the figure from the "
                         "solar and load files already in --out")
    args = ap.parse_args(argv)
    if args.households < 1:
        ap.error("--households must be at least 1")
    if args.from_files:
        if args.seed is None and (args.out / "dataset.json").is_file():
            args.seed = int(json.loads((args.out / "dataset.json").read_text())["seed"])
        args.seed = DEFAULT_SEED if args.seed is None else args.seed
        finish(args, load_weather(), time.monotonic())  # metadata needs no resampling
        return 0
    args.seed = DEFAULT_SEED if args.seed is None else args.seed

    t0 = time.monotonic()
    weather = prepared_weather()
    poa = plane_of_array(weather)
    print(f"solar: {TMY_FILE}, {poa.sum() / 1000:.0f} kWh/m2 a year on the panel, "
          f"max {poa.max():.0f} W/m2 ({time.monotonic() - t0:.1f} s)", flush=True)

    tasks = [(args.seed, hid) for hid in range(1, args.households + 1)]
    results: list[dict[str, Any]] = []
    if args.jobs > 1:
        ctx = mp.get_context("fork")
        with ctx.Pool(args.jobs) as pool:
            for r in pool.imap(functools.partial(_work, weather), tasks):
                results.append(r)
                _progress(r, len(results), len(tasks), t0)
    else:
        for task in tasks:
            results.append(_work(weather, task))
            _progress(results[-1], len(results), len(tasks), t0)

    args.out.mkdir(parents=True, exist_ok=True)
    write_gzip(args.out / "solar.csv.gz", solar_text(poa))
    lines = [LOAD_HEADER]
    for r in results:
        lines.extend(household_rows(args.seed, r["hid"], r))
    write_gzip(args.out / "load.csv.gz", "\n".join(lines) + "\n")
    finish(args, weather, t0)
    return 0


def finish(args: argparse.Namespace, weather: dict[str, Any], t0: float) -> None:
    """dataset.json and the figure, from the written files alone (so they depend on nothing
    but the files' numbers)."""
    poa, results = read_back(args.out)
    meta = metadata(args.seed, len(results), weather, poa, results)
    (args.out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    if args.plot:
        plot(Path(args.plot), poa, results)
    s = meta["summary"]
    print(f"households: median {s['household_yearly_kwh_median']:.0f} kWh/year "
          f"(min {s['household_yearly_kwh_min']:.0f}, max {s['household_yearly_kwh_max']:.0f}), "
          f"winter/summer {s['winter_summer_ratio']:.2f}")
    for name in ("solar.csv.gz", "load.csv.gz", "dataset.json"):
        print(f"  {args.out / name}: {(args.out / name).stat().st_size:,} bytes")
    print(f"done in {time.monotonic() - t0:.0f} s")


def _progress(r: dict[str, Any], done: int, total: int, t0: float) -> None:
    kwh = r["load_kw"].sum() * 0.5
    print(f"  household {r['hid']:3d}/{total}: {r['params']['occupants']} pers., "
          f"{kwh:6.0f} kWh/year ({time.monotonic() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
