"""The embedded default data set (issue 5): src/apis_emulator/data/default.

The committed-file tests need only numpy and the project.  The regeneration tests need the
generator's own libraries (the ``dataset`` extra: pvlib, pandas, richardsonpy) and are skipped
without them; ``make dataset`` installs them.
"""

from __future__ import annotations

import datetime as dt
import gzip
import importlib.util
import json
import os
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from apis_emulator.inputs import load_dataset

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "apis_emulator" / "data" / "default"
GENERATOR = ROOT / "tools" / "make_dataset.py"
DAYS = 365

# Published median used as the reference (see docs/dataset.md): Ofgem's typical domestic
# consumption value "medium" for electricity (GB, standard meter) in use from April 2023,
# 2,700 kWh a year, which Ofgem sets from the *median* of domestic meter readings.  The household
# model (Richardson/CREST) is British; with each house's share of LED bulbs its part of the load
# (appliances + lighting) stands for a present-day British home and is compared with it.
PUBLISHED_MEDIAN_KWH = 2700.0
# Ofgem's value of 2011 (3,300 kWh, from DECC's median of the 2000s' meters), for the total.
BRITISH_2011_MEDIAN_KWH = 3300.0
BAND_MODEL = 0.15  # the occupancy/appliance/lighting part within +-15 % of it
# The whole load adds air conditioning and furnace fans for the North Carolina climate, which
# British homes do not have; its median must lie between the British median and the US average
# (EIA: 10,715 kWh per residential customer in 2020, with electric heating, which is excluded here).
US_AVERAGE_KWH = 10715.0

@cache
def meta() -> dict:
    return json.loads((DATA / "dataset.json").read_text())


@cache
def solar_rows() -> list[list[str]]:
    text = gzip.decompress((DATA / "solar.csv.gz").read_bytes()).decode("ascii")
    return [line.split(",") for line in text.splitlines()]


@cache
def load_lines() -> list[str]:
    return gzip.decompress((DATA / "load.csv.gz").read_bytes()).decode("ascii").splitlines()


@cache
def load_table() -> np.ndarray:
    """Body of load.csv.gz as floats, shape (households * 365, 54)."""
    return np.array([[float(c) for c in line.split(",")] for line in load_lines()[1:]])


@cache
def dataset():
    return load_dataset(DATA)


def yearly_kwh() -> np.ndarray:
    return dataset().load_kw.sum(axis=1) * 0.5


def season(months: tuple[int, ...]) -> np.ndarray:
    start = dt.date(meta()["calendar_year"], 1, 1)
    return np.array([(start + dt.timedelta(days=d)).month in months for d in range(DAYS)])


# --------------------------------------------------------------------------- shapes and units

def test_metadata_follows_the_contract():
    m = meta()
    assert (m["solar"]["file"], m["solar"]["unit"], m["solar"]["interval_minutes"]) == (
        "solar.csv.gz", "W/m2", 60)
    assert (m["load"]["file"], m["load"]["unit"], m["load"]["layout"],
            m["load"]["interval_minutes"], m["load"]["households"]) == (
        "load.csv.gz", "kW", "rows", 30, 100)
    assert isinstance(m["seed"], int)
    assert m["generator"] == "tools/make_dataset.py" and GENERATOR.is_file()
    loc = m["location"]
    assert 36.0 < loc["latitude"] < 36.2 and -80.0 < loc["longitude"] < -79.9
    assert loc["timezone"] == "Etc/GMT+5"
    assert m["licence"] and m["source"]
    assert 0 <= m["solar"]["panel_tilt_deg"] <= 90


def test_reader_gives_the_shapes_and_units():
    ds = dataset()
    assert ds.solar.shape == (DAYS * 24,)
    assert ds.solar_unit == "W/m2"
    assert ds.load_kw.shape == (100, DAYS * 48)
    assert ds.households == 100
    assert ds.meta["seed"] == meta()["seed"]


def test_solar_file_is_365_rows_of_24_values_rounded_to_a_tenth():
    rows = solar_rows()
    assert len(rows) == DAYS
    assert all(len(r) == 24 for r in rows)
    values = np.array(rows, dtype=float)
    assert np.array_equal(values.reshape(-1), dataset().solar)
    assert np.allclose(values * 10, np.round(values * 10), atol=1e-6)


def test_load_file_layout():
    lines = load_lines()
    header = lines[0].split(",")
    assert len(header) == 54 and header[:2] == ["date", "household_id"]
    assert header[6] == "t0000" and header[-1] == "t2330"
    table = load_table()
    assert table.shape == (100 * DAYS, 54)
    year = meta()["calendar_year"]
    start = dt.date(year, 1, 1)
    dates = [int((start + dt.timedelta(days=d)).strftime("%Y%m%d")) for d in range(DAYS)]
    for h in range(100):
        block = table[h * DAYS:(h + 1) * DAYS]
        assert np.all(block[:, 1] == h + 1), f"rows of household {h + 1} not consecutive"
        assert block[:, 0].astype(int).tolist() == dates
        assert np.all(block[:, 2] == block[0, 2]) and 1 <= block[0, 2] <= 5  # occupants
        assert np.all(block[:, 4:6] == 0)
    # 48 values from column 7, in kW rounded to 1 W, matching the reader
    assert np.array_equal(table[:, 6:].reshape(100, -1), dataset().load_kw)
    assert np.allclose(table[:, 6:] * 1000, np.round(table[:, 6:] * 1000), atol=1e-6)
    assert table[:, 6:].min() >= 0


# --------------------------------------------------------------------------- solar

def _sun_elevation_deg(hours_lst: np.ndarray, lat: float, lon: float, tz: float) -> np.ndarray:
    """Solar elevation (Spencer 1971 declination and equation of time), hours since 1 Jan 00:00
    local standard time.  Good to about half a degree: enough to tell night from day."""
    day = np.floor(hours_lst / 24.0)
    g = 2 * np.pi / 365 * (day + (hours_lst % 24 - 12) / 24)
    decl = (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
            + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))
    eot_min = 229.18 * (0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g)
                        - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g))
    solar_time = hours_lst % 24 + (4 * (lon - 15 * tz) + eot_min) / 60
    ha = np.radians(15 * (solar_time - 12))
    phi = np.radians(lat)
    sin_el = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(ha)
    return np.degrees(np.arcsin(sin_el))


def test_irradiance_is_zero_at_night_and_below_1200():
    solar = dataset().solar
    loc = meta()["location"]
    hours = np.arange(DAYS * 24, dtype=float)
    # an hour [h, h+1) is night if the sun is below the horizon at its start, middle and end
    el = np.max([_sun_elevation_deg(hours + f, loc["latitude"], loc["longitude"], -5.0)
                 for f in (0.0, 0.5, 1.0)], axis=0)
    night = el < -1.0
    assert night.sum() > 3500  # about half the year's hours
    assert np.all(solar[night] == 0), "irradiance at night"
    assert solar.min() >= 0
    assert 900 < solar.max() <= 1200
    # and it is day when the sun is well up
    day = el > 20
    assert np.mean(solar[day] > 0) > 0.99


def test_solar_year_is_plausible_for_the_place():
    # A 30 degree south-facing panel at 36 N receives roughly 1,600-2,000 kWh/m2 a year;
    # more in summer than in winter.
    daily = dataset().solar.reshape(DAYS, 24).sum(axis=1) / 1000  # kWh/m2/day
    assert 1500 < daily.sum() < 2100
    assert daily[season((6, 7, 8))].mean() > daily[season((12, 1, 2))].mean()


# --------------------------------------------------------------------------- households

def test_each_household_uses_1_5_to_10_mwh_a_year():
    yearly = yearly_kwh()
    assert yearly.min() >= 1500, yearly.min()
    assert yearly.max() <= 10000, yearly.max()


def test_median_lies_between_the_british_median_and_the_us_average():
    median = float(np.median(yearly_kwh()))
    assert BRITISH_2011_MEDIAN_KWH < median < US_AVERAGE_KWH, median


def test_occupancy_model_part_median_is_near_the_published_median():
    # column 4 holds each day's air-conditioning + furnace-fan energy (kWh), part of the load
    table = load_table()
    climate = table[:, 3].reshape(100, DAYS).sum(axis=1)
    assert np.all(climate >= 0) and climate.max() > 100  # the seasonal term is there
    model = yearly_kwh() - climate
    median = float(np.median(model))
    lo, hi = PUBLISHED_MEDIAN_KWH * (1 - BAND_MODEL), PUBLISHED_MEDIAN_KWH * (1 + BAND_MODEL)
    assert lo <= median <= hi, f"median {median:.0f} kWh outside [{lo:.0f}, {hi:.0f}]"
    # the column is consistent with the half-hourly values (a day never uses less than it)
    daily = table[:, 6:].sum(axis=1) * 0.5
    assert np.all(daily + 0.05 >= table[:, 3])


def test_larger_households_use_more():
    table = load_table()
    size = table[::DAYS, 2]
    yearly = yearly_kwh()
    small, large = yearly[size <= 2], yearly[size >= 4]
    assert len(small) > 20 and len(large) > 5
    assert np.median(large) > 1.2 * np.median(small)


def _max_pairwise_correlation(series: np.ndarray) -> tuple[float, int, int]:
    corr = np.corrcoef(series)
    np.fill_diagonal(corr, -1.0)
    i, j = np.unravel_index(np.argmax(corr), corr.shape)
    return float(corr[i, j]), int(i) + 1, int(j) + 1


def test_households_are_pairwise_distinct():
    # Half-hourly series over the year: a set made of one curve plus small noise would fail.
    r, i, j = _max_pairwise_correlation(dataset().load_kw)
    assert r < 0.95, f"households {i} and {j}: r = {r:.3f}"
    # and no two households share an identical day
    days = {dataset().load_kw[h].reshape(DAYS, 48)[d].tobytes()
            for h in range(100) for d in range(0, DAYS, 7)}
    assert len(days) == 100 * len(range(0, DAYS, 7))


def test_mean_daily_profiles_differ_between_households():
    # Each household's 365 days averaged into one 48-value day.  The households' own routines,
    # habits, bulbs and thermostats spread these average days out (median pairwise r 0.77; the
    # CREST model alone gave 0.97), and no two are copies of each other.
    profiles = dataset().load_kw.reshape(100, DAYS, 48).mean(axis=1)
    corr = np.corrcoef(profiles)[np.triu_indices(100, 1)]
    assert np.median(corr) < 0.85, np.median(corr)
    assert np.mean(corr >= 0.95) < 0.05, f"{np.sum(corr >= 0.95)} pairs at r >= 0.95"
    assert corr.max() < 0.999


@pytest.mark.xfail(strict=True, reason=(
    "known gap, see docs/dataset.md: 136 of 4,950 pairs of mean daily profiles still "
    "correlate at r >= 0.95 (highest 0.990); every house's average day keeps the common shape "
    "of a home (low at night, evening peak after sunset)"))
def test_mean_daily_profiles_correlate_below_095():
    load = dataset().load_kw.reshape(100, DAYS, 48)
    weekend = np.array([(dt.date(meta()["calendar_year"], 1, 1) + dt.timedelta(days=d))
                        .isoweekday() >= 6 for d in range(DAYS)])
    for name, days in (("all days", slice(None)), ("weekdays", ~weekend),
                       ("weekend days", weekend)):
        r, i, j = _max_pairwise_correlation(load[:, days].mean(axis=1))
        assert r < 0.95, f"{name}: households {i} and {j}: r = {r:.3f}"


def test_community_load_has_a_seasonal_swing():
    daily = dataset().load_kw.sum(axis=0).reshape(DAYS, 48).sum(axis=1) * 0.5
    ratio = daily[season((12, 1, 2))].mean() / daily[season((6, 7, 8))].mean()
    assert ratio >= 1.15 or ratio <= 0.87, f"winter/summer = {ratio:.3f}"
    assert abs(ratio - meta()["summary"]["winter_summer_ratio"]) < 0.001


def test_summary_in_metadata_matches_the_files():
    s = meta()["summary"]
    yearly = yearly_kwh()
    assert abs(s["household_yearly_kwh_median"] - np.median(yearly)) < 0.1
    assert abs(s["solar_max_w_per_m2"] - dataset().solar.max()) < 1e-9


def test_committed_files_are_small():
    sizes = {p.name: p.stat().st_size for p in DATA.iterdir()}
    assert set(sizes) >= {"dataset.json", "solar.csv.gz", "load.csv.gz"}
    assert sum(sizes.values()) < 5 * 2**20, sizes


def test_gzip_headers_carry_no_time_and_no_name():
    for name in ("solar.csv.gz", "load.csv.gz"):
        head = (DATA / name).read_bytes()[:10]
        assert head[:3] == b"\x1f\x8b\x08"
        assert head[3] == 0, "FNAME or other flags set"
        assert head[4:8] == b"\0\0\0\0", "mtime not 0"


# --------------------------------------------------------------------------- regeneration

@cache
def _generator_module():
    """tools/make_dataset.py as the module `make_dataset` (its worker pool pickles by name).
    Importing it needs only numpy; simulating needs the dataset extra (see `_generator`)."""
    spec = importlib.util.spec_from_file_location("make_dataset", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_dataset"] = module
    spec.loader.exec_module(module)
    return module


def _generator():
    pytest.importorskip("pvlib", reason="regeneration needs the dataset extra "
                        "(pip install -e '.[dataset]' or make dataset)")
    pytest.importorskip("pandas", reason="regeneration needs the dataset extra")
    pytest.importorskip("richardsonpy", reason="regeneration needs the dataset extra")
    return _generator_module()


# pvlib 0.16 calls a pandas 3.1 property that pandas deprecates; not the project's warning.
REGEN_WARNINGS = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@REGEN_WARNINGS
def test_regenerated_solar_file_is_identical(tmp_path):
    gen = _generator()
    poa = gen.plane_of_array(gen.load_weather())
    gen.write_gzip(tmp_path / "solar.csv.gz", gen.solar_text(poa))
    assert (tmp_path / "solar.csv.gz").read_bytes() == (DATA / "solar.csv.gz").read_bytes()


@REGEN_WARNINGS
@pytest.mark.parametrize("hid", [1, 100])
def test_regenerated_household_is_identical(hid):
    # Each household depends only on (seed, id): regenerating one reproduces its 365 rows
    # (about 15 s each).  The whole set: APIS_FULL_DATASET_TEST=1 (15-30 min).
    gen = _generator()
    rows = gen.household_rows(meta()["seed"], hid)
    committed = load_lines()[1 + (hid - 1) * DAYS: 1 + hid * DAYS]
    assert rows == committed


@REGEN_WARNINGS
@pytest.mark.skipif(os.environ.get("APIS_FULL_DATASET_TEST") != "1",
                    reason="full regeneration takes 15-30 min; set APIS_FULL_DATASET_TEST=1")
def test_full_regeneration_is_identical(tmp_path):
    gen = _generator()
    assert gen.main(["--seed", str(meta()["seed"]), "--out", str(tmp_path), "--plot", ""]) == 0
    for name in ("solar.csv.gz", "load.csv.gz"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
    new = json.loads((tmp_path / "dataset.json").read_text())
    old = meta()
    new.pop("generator_versions")
    assert new == {k: v for k, v in old.items() if k != "generator_versions"}


# --------------------------------------------------------------------------- household routines

@pytest.mark.parametrize("morning,evening", [(0, 0), (18, -18), (-18, 18), (5, 5), (-7, 3)])
def test_routine_clock_is_a_monotone_warp_of_the_day(morning, evening):
    gen = _generator_module()
    clock = gen.routine_clock({"morning_shift_slots": morning, "evening_shift_slots": evening})
    t = np.arange(gen.SLOTS)
    assert clock.shape == (gen.SLOTS,)
    assert np.all(np.diff(clock) >= 0), "the household's clock must not run backwards"
    # at 07:00 the household is `morning` slots behind the population's routine, at 20:00
    # `evening` slots (a positive shift = a later household)
    assert clock[gen.MORNING_SLOT] == gen.MORNING_SLOT - morning
    assert clock[gen.EVENING_SLOT] == gen.EVENING_SLOT - evening
    assert np.max(np.abs(clock - t)) <= max(abs(morning), abs(evening))
    if morning == evening:
        assert np.array_equal(clock, t - morning)


def _fake_statistics(rng):
    """A table shaped like the CREST one: rows [occupants, activity, 144 probabilities]."""
    rows = [[k, a] + list(rng.uniform(0.0, 0.01, 144)) for k in range(6) for a in range(6)]
    return {"wd": rows, "we": [list(r) for r in rows]}


def test_habits_set_when_and_how_often_each_activity_happens():
    gen = _generator_module()
    base = _fake_statistics(np.random.default_rng(0))
    p = gen.household_params(5, 1)
    mine = gen.routine_statistics(base, p)
    intensity = np.asarray(p["activity_intensity"])
    assert not np.allclose(intensity, 1.0)
    for day_type in ("wd", "we"):
        old, new = np.asarray(base[day_type]), np.asarray(mine[day_type])
        assert np.array_equal(old[:, :2], new[:, :2])
        # expected starts a day = the population's x the household's intensity for the activity
        np.testing.assert_allclose(new[:, 2:].sum(axis=1),
                                   old[:, 2:].sum(axis=1) * intensity[old[:, 1].astype(int)],
                                   rtol=1e-12)
        assert np.all((new[:, 2:] >= 0) & (new[:, 2:] <= 1))
        # ... but the time of day changes substantially
        assert np.abs(new[:, 2:] - old[:, 2:]).sum() > 0.3 * old[:, 2:].sum()


def test_households_get_their_own_routines_from_the_seed():
    gen = _generator_module()
    params = [gen.household_params(5, hid) for hid in range(1, 101)]
    assert params[0] == gen.household_params(5, 1), "not reproducible from (seed, id)"
    shifts = {(p["morning_shift_slots"], p["evening_shift_slots"]) for p in params}
    assert len(shifts) > 60
    home = sum(p["home_all_week"] for p in params)
    assert 15 <= home <= 45
    intensity = np.array([p["activity_intensity"] for p in params])
    assert abs(intensity.mean() - 1.0) < 0.1, "intensities must not change the mean use"
    assert sum(p["thermostat_setback"] for p in params) in range(30, 71)
    mult = [gen.habit_multipliers(p["habits"]) for p in params[:10]]
    assert all(m.shape == (gen.ACTIVITIES, gen.SLOTS) for m in mult)
    assert not np.allclose(mult[0], mult[1])


def test_setback_thermostat_follows_the_households_occupancy():
    gen = _generator_module()
    p = dict(gen.household_params(5, 1), has_ac=True, thermostat_setback=True, setback_k=4.0)
    n = 48 * 10
    hot, cold = np.full(n, 33.0), np.full(n, -5.0)
    ghi, base = np.zeros(n), np.full(n, 0.3)
    away_days = np.tile(np.r_[np.zeros(16), np.ones(32)], 10)  # nobody awake 00:00-08:00
    for temp in (hot, cold):
        always = gen.climate_load(p, base, np.ones(n), temp, ghi)
        mine = gen.climate_load(p, base, away_days, temp, ghi)
        fixed = gen.climate_load(dict(p, thermostat_setback=False), base, away_days, temp, ghi)
        np.testing.assert_array_equal(always, fixed)  # awake all day: the setback never acts
        night = away_days == 0
        assert np.all(mine[night] < fixed[night]), "the setback must save while nobody is up"
        np.testing.assert_array_equal(mine[~night], fixed[~night])
