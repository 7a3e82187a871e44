"""Data sets: both load layouts, gzip, malformed files (path, line, column), the leap-year rule
and the wrap-around at the end of the 365 days."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import numpy as np
import pytest

from apis_emulator.engine import OUT_FIELDS, Emulator
from apis_emulator.errors import DataFileError
from apis_emulator.inputs import DAYS, load_dataset, read_load_csv, read_solar_csv
from conftest import load_array, settings, solar_array, write_dataset, write_load, write_solar

OUT = {name: i for i, name in enumerate(OUT_FIELDS)}


def lines_of(path):
    return path.read_text().splitlines()


def put_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------- good files
def test_rows_and_wide_layouts_read_the_same(tmp_path):
    load = np.random.default_rng(1).uniform(0, 2, (3, DAYS, 48)).round(3)
    rows = load_dataset(write_dataset(tmp_path / "rows", load=load, households=3, layout="rows"))
    wide = load_dataset(write_dataset(tmp_path / "wide", load=load, households=3, layout="wide"))
    np.testing.assert_array_equal(rows.load_kw, load.reshape(3, -1))
    np.testing.assert_array_equal(wide.load_kw, load.reshape(3, -1))
    assert rows.households == wide.households == 3
    assert rows.load_interval == 1800.0 and rows.solar_interval == 3600.0


def test_layout_guessed_without_metadata(tmp_path):
    load = load_array(0.25, 2)
    for layout in ("rows", "wide"):
        path = write_load(tmp_path / f"{layout}.csv", load, layout)
        np.testing.assert_array_equal(read_load_csv(path), load.reshape(2, -1))


def test_original_file_names_without_dataset_json(tmp_path):
    """The original's Sample directory: sample_{solar,load}_data.csv, solar in W."""
    write_solar(tmp_path / "sample_solar_data.csv", solar_array(100.0))
    write_load(tmp_path / "sample_load_data.csv", load_array(0.5, 2))
    ds = load_dataset(tmp_path)
    assert ds.solar_unit == "W" and ds.households == 2


def test_gzip_files_are_read(tmp_path):
    directory = write_dataset(tmp_path / "d", solar=7.0, load=0.5)
    for name in ("solar.csv", "load.csv"):
        raw = (directory / name).read_bytes()
        (directory / f"{name}.gz").write_bytes(gzip.compress(raw))
        (directory / name).unlink()
    meta = json.loads((directory / "dataset.json").read_text())
    meta["solar"]["file"], meta["load"]["file"] = "solar.csv.gz", "load.csv.gz"
    (directory / "dataset.json").write_text(json.dumps(meta))
    ds = load_dataset(directory)
    assert ds.solar[100] == 7.0 and ds.load_kw[0, 100] == 0.5


def test_irradiance_is_turned_into_power(make_dataset):
    """W/m² × default_Area · r · pr (§7.1); W is used as it is."""
    for unit, gain in (("W/m2", 21.6 * 0.19 * 0.9), ("W", 1.0)):
        em = Emulator(settings(), make_dataset(solar=500.0, unit=unit), 1)
        em.advance(1)
        assert em.units.out[0, OUT["pv"]] == pytest.approx(500.0 * gain)


def test_header_row_in_solar_file_tolerated(tmp_path):
    path = write_solar(tmp_path / "solar.csv", solar_array(3.0))
    put_lines(path, [",".join(f"h{k}" for k in range(24))] + lines_of(path))
    assert read_solar_csv(path).shape == (DAYS * 24,)


# ---------------------------------------------------------------------- bad files
def solar_file(tmp_path):
    return write_solar(tmp_path / "solar.csv", solar_array(1.0))


def load_file(tmp_path, households=2, layout="rows"):
    return write_load(tmp_path / "load.csv", load_array(0.5, households), layout)


def expect(call, path, message, line=None, column=None):
    with pytest.raises(DataFileError) as info:
        call()
    err = info.value
    text = str(err)
    assert err.path == str(path) and text.startswith(str(path))
    assert (err.line, err.column) == (line, column), text
    if line is not None:
        assert f", line {line}" in text
    if column is not None:
        assert f", column {column}" in text
    assert message in text
    return text


def test_solar_wrong_number_of_rows(tmp_path):
    path = solar_file(tmp_path)
    put_lines(path, lines_of(path)[:364])
    expect(lambda: read_solar_csv(path), path, "has 364 data rows; a solar file has 365")


def test_solar_non_number_cell(tmp_path):
    path = solar_file(tmp_path)
    lines = lines_of(path)
    cells = lines[4].split(",")
    cells[2] = "abc"
    lines[4] = ",".join(cells)
    put_lines(path, lines)
    expect(lambda: read_solar_csv(path), path, "'abc' is not a number", line=5, column=3)


@pytest.mark.parametrize("cell", ["-1.5", "nan", "inf"])
def test_solar_negative_or_not_finite(tmp_path, cell):
    path = solar_file(tmp_path)
    lines = lines_of(path)
    lines[99] = lines[99].rsplit(",", 1)[0] + "," + cell  # last of 24 values, line 100
    put_lines(path, lines)
    expect(lambda: read_solar_csv(path), path, f"'{cell}' is not a finite number >= 0",
           line=100, column=24)


def test_solar_wrong_column_count(tmp_path):
    path = solar_file(tmp_path)
    lines = lines_of(path)
    lines[9] = lines[9].rsplit(",", 1)[0]  # 23 values on line 10
    put_lines(path, lines)
    expect(lambda: read_solar_csv(path), path, "has 23 values; expected 24", line=10, column=24)


def test_solar_odd_width(tmp_path):
    path = tmp_path / "solar.csv"
    put_lines(path, [",".join(["1"] * 7)] * DAYS)
    expect(lambda: read_solar_csv(path), path, "has 7 values per row; expected 24", line=1)


def test_load_rows_non_number_cell(tmp_path):
    path = load_file(tmp_path)
    lines = lines_of(path)
    cells = lines[3].split(",")
    cells[8] = "0,5".replace(",", ";")  # "0;5" in column 9 (the 3rd half-hour)
    lines[3] = ",".join(cells)
    put_lines(path, lines)
    expect(lambda: read_load_csv(path), path, "'0;5' is not a number", line=4, column=9)


def test_load_rows_negative_value(tmp_path):
    path = load_file(tmp_path)
    lines = lines_of(path)
    cells = lines[400].split(",")
    cells[53] = "-0.2"  # column 54: the last half-hour
    lines[400] = ",".join(cells)
    put_lines(path, lines)
    expect(lambda: read_load_csv(path), path, "'-0.2' is not a finite number >= 0",
           line=401, column=54)


def test_load_rows_too_few_columns(tmp_path):
    path = load_file(tmp_path)
    lines = lines_of(path)
    lines[10] = lines[10].rsplit(",", 2)[0]  # 52 columns on line 11
    put_lines(path, lines)
    expect(lambda: read_load_csv(path), path, "has 52 columns; the rows layout needs 54",
           line=11, column=53)


def test_load_household_with_364_rows(tmp_path):
    path = load_file(tmp_path)
    lines = lines_of(path)
    del lines[DAYS + 5]  # one day of household 2
    put_lines(path, lines)
    expect(lambda: read_load_csv(path), path, "household 2 has 364 rows; each household needs 365")


def test_load_empty_household_id(tmp_path):
    path = load_file(tmp_path)
    lines = lines_of(path)
    cells = lines[2].split(",")
    cells[1] = " "
    lines[2] = ",".join(cells)
    put_lines(path, lines)
    expect(lambda: read_load_csv(path), path, "household id is empty", line=3, column=2)


def test_load_wide_wrong_column_count(tmp_path):
    path = load_file(tmp_path, layout="wide")
    lines = lines_of(path)
    lines[6] = lines[6] + ",0.5"  # 97 columns on line 7
    put_lines(path, lines)
    expect(lambda: read_load_csv(path, "wide"), path, "has 97 columns; expected 96",
           line=7, column=97)


def test_load_wide_width_not_a_multiple_of_48(tmp_path):
    path = tmp_path / "load.csv"
    put_lines(path, [",".join(["0.5"] * 50)] * DAYS)
    expect(lambda: read_load_csv(path, "wide"), path, "has 50 columns; the wide layout needs 48",
           line=1)


def test_load_wide_wrong_number_of_rows(tmp_path):
    path = load_file(tmp_path, layout="wide")
    put_lines(path, lines_of(path)[:300])
    expect(lambda: read_load_csv(path, "wide"), path,
           "has 300 data rows; the wide layout needs 365")


def test_load_unknown_layout_and_empty_file(tmp_path):
    path = load_file(tmp_path)
    expect(lambda: read_load_csv(path, "tall"), path, "layout 'tall' unknown; accepted: rows, wide")
    put_lines(path, [])
    expect(lambda: read_load_csv(path), path, "is empty")


def test_broken_gzip(tmp_path):
    path = tmp_path / "solar.csv.gz"
    packed = gzip.compress(solar_file(tmp_path).read_bytes())
    path.write_bytes(packed[:len(packed) // 2])  # cut short
    expect(lambda: read_solar_csv(path), path, "broken gzip data")
    path.write_bytes(b"\x1f\x8b" + b"not gzip at all")
    expect(lambda: read_solar_csv(path), path, "broken gzip data")


def test_not_utf8(tmp_path):
    path = tmp_path / "solar.csv"
    path.write_bytes(b"1,2\xff\n")
    expect(lambda: read_solar_csv(path), path, "not UTF-8 text")


def test_missing_file(tmp_path):
    expect(lambda: read_solar_csv(tmp_path / "nope.csv"), tmp_path / "nope.csv", "file not found")


def test_unknown_solar_unit(tmp_path):
    directory = write_dataset(tmp_path / "d", unit="kW")
    expect(lambda: load_dataset(directory), directory / "dataset.json",
           "solar.unit 'kW' unknown; accepted: W/m2, W")


def test_broken_dataset_json(tmp_path):
    directory = write_dataset(tmp_path / "d")
    (directory / "dataset.json").write_text('{"solar": {"unit": "W"},\n "load": }')
    expect(lambda: load_dataset(directory), directory / "dataset.json", "invalid JSON",
           line=2, column=10)
    (directory / "dataset.json").write_text('{"solar": "solar.csv"}')
    expect(lambda: load_dataset(directory), directory / "dataset.json",
           'needs the objects "solar" and "load"')


def test_not_a_directory(tmp_path):
    expect(lambda: load_dataset(tmp_path / "missing"), tmp_path / "missing",
           "is not a directory holding a data set")


# ---------------------------------------------------------------------- calendar
def day_numbered(tmp_path):
    """Solar = day number + 1 all day long (1 on 1 January … 365 on 31 December) [W]."""
    solar = np.repeat(np.arange(1.0, DAYS + 1)[:, None], 24, axis=1)
    return load_dataset(write_dataset(tmp_path / "days", solar=solar, load=0.5))


def pv_at(dataset, start: str, steps: int = 1, step: float = 1.0) -> float:
    em = Emulator(settings(start=start, step=step), dataset, 1)
    em.advance(steps)
    return float(em.units.out[0, OUT["pv"]])


@pytest.mark.parametrize("start, day", [
    ("2019-03-01T12:00:00", 60),  # common year: 1 March is day 60
    ("2020-03-01T12:00:00", 60),  # leap year: 1 March still uses the data of 1 March
    ("2020-02-28T12:00:00", 59),  # 28 February
    ("2020-02-29T12:00:00", 59),  # 29 February repeats 28 February: nothing shifts
    ("2020-12-31T12:00:00", 365),  # the last day of a leap year is not cut
    ("2019-12-31T12:00:00", 365),
    ("2021-01-01T12:00:00", 1),
])
def test_leap_year_rule(tmp_path, start, day):
    assert pv_at(day_numbered(tmp_path), start) == pytest.approx(day)


def test_leap_year_run_covers_every_day(tmp_path):
    """A whole leap year, hourly: Feb 29 repeats Feb 28 and 31 December gets its own data."""
    ds = day_numbered(tmp_path)
    em = Emulator(settings(start="2020-01-01T00:00:00", step=3600.0), ds, 1)
    seen = {}
    for _ in range(366 * 24):
        em.advance(1)
        when = em.now - dt.timedelta(seconds=1)
        if when.hour == 12:
            seen[when.date()] = em.units.out[0, OUT["pv"]]
    assert seen[dt.date(2020, 2, 29)] == pytest.approx(59.0)
    assert seen[dt.date(2020, 3, 1)] == pytest.approx(60.0)
    assert seen[dt.date(2020, 12, 31)] == pytest.approx(365.0)
    assert len(seen) == 366
    # the same year in one call: the leap day is handled inside a block of steps too
    whole = Emulator(settings(start="2020-01-01T00:00:00", step=3600.0), ds, 1)
    whole.advance(366 * 24)
    np.testing.assert_allclose(whole.units.ledger, em.units.ledger, rtol=1e-9)
    # 365 days of data, 366 days of calendar: 28 February's data twice
    assert whole.units.ledger[0, 0] == pytest.approx((sum(range(1, 366)) + 59) * 24, rel=1e-3)


def test_wrap_around_at_the_end_of_the_data(tmp_path):
    """After 31 December the data start again at 1 January, interpolated across the seam."""
    ds = day_numbered(tmp_path)
    assert pv_at(ds, "2019-12-31T23:00:00", steps=1) == pytest.approx(365.0 + (1.0 - 365.0) *
                                                                         0.5 / 3600.0)
    # the middle of the step 23:30:00 → 23:30:01 lies 1800.5 s after the 23:00 sample
    assert pv_at(ds, "2019-12-31T23:30:00") == pytest.approx(365.0 + (1.0 - 365.0) *
                                                             1800.5 / 3600.0)
    assert pv_at(ds, "2020-01-01T12:00:00") == pytest.approx(1.0)
    # a run that crosses the year end keeps going
    em = Emulator(settings(start="2019-12-30T00:00:00", step=900.0), ds, 1)
    em.advance(3 * 96 + 48)
    assert em.now == dt.datetime(2020, 1, 2, 12)
    # the last step's middle 11:52:30 on 2 January: the data of 2 January
    assert em.units.out[0, OUT["pv"]] == pytest.approx(2.0)


def test_load_interpolated_between_half_hour_samples(tmp_path):
    """Every half-hourly value is used (the reference dropped every other one)."""
    load = np.zeros((1, DAYS, 48))
    load[0, :, 1::2] = 1.0  # 0 kW on the hour, 1 kW at half past
    ds = load_dataset(write_dataset(tmp_path / "d", load=load))
    em = Emulator(settings(start="2019-06-01T10:00:00", step=900.0), ds, 1)
    shown = []
    for _ in range(4):
        em.advance(1)
        shown.append(em.units.out[0, OUT["load"]])
    # middles of the quarters: 10:07:30, 10:22:30, 10:37:30, 10:52:30
    np.testing.assert_allclose(shown, [250.0, 750.0, 750.0, 250.0])


# ---------------------------------------------------------------- parsed data sets kept
@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache folder of its own, used for files of any size."""
    from apis_emulator.inputs import dataset
    folder = tmp_path / "cache"
    monkeypatch.setenv("APIS_DATASET_CACHE_DIR", str(folder))
    monkeypatch.setattr(dataset, "CACHE_MIN_BYTES", 0)
    return folder


def test_a_parsed_data_set_is_read_back_from_the_cache(tmp_path, cache):
    """The second load reads the arrays the first one kept (an entry changed by hand shows
    through); an edited load file is parsed again under a new entry."""
    directory = write_dataset(tmp_path / "ds", solar=100.0, load=0.5, households=2)
    first = load_dataset(directory)
    (entry,) = cache.glob("dataset-*.npz")
    marked = first.load_kw.copy()
    marked[1, 7] = 9.25
    np.savez(entry, solar=first.solar, load_kw=marked)
    assert load_dataset(directory).load_kw[1, 7] == 9.25
    write_load(directory / "load.csv", load_array(0.75, 2))
    again = load_dataset(directory)
    assert np.all(again.load_kw == 0.75) and np.array_equal(again.solar, first.solar)
    assert len(list(cache.glob("dataset-*.npz"))) == 2


def test_a_broken_cache_entry_is_parsed_again(tmp_path, cache):
    """A cut entry (a crash of another tool, a full disk) is no error: the files are parsed."""
    directory = write_dataset(tmp_path / "ds", solar=100.0, load=0.5)
    expected = load_dataset(directory)
    (entry,) = cache.glob("dataset-*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    got = load_dataset(directory)
    assert np.array_equal(got.load_kw, expected.load_kw)
    assert np.array_equal(got.solar, expected.solar)
    assert np.array_equal(load_dataset(directory).load_kw, expected.load_kw)  # rewritten


def test_the_cache_is_off_with_an_empty_folder_name_and_keeps_few_entries(tmp_path, cache,
                                                                          monkeypatch):
    """APIS_DATASET_CACHE_DIR="" keeps nothing; otherwise only the most recently used
    entries stay (no entry per temporary data set ever read).  The variable is no setting:
    the settings accept it beside them (an unknown APIS_EMULATOR_ name would stop a start)."""
    from apis_emulator.config import load_settings
    from apis_emulator.inputs.dataset import CACHE_KEEP
    load_settings(env={"APIS_DATASET_CACHE_DIR": str(cache)})
    monkeypatch.setenv("APIS_DATASET_CACHE_DIR", "")
    load_dataset(write_dataset(tmp_path / "off", load=0.5))
    assert not cache.exists()
    monkeypatch.setenv("APIS_DATASET_CACHE_DIR", str(cache))
    for k in range(CACHE_KEEP + 2):
        load_dataset(write_dataset(tmp_path / f"ds{k}", load=0.1 * (k + 1)))
    assert len(list(cache.glob("dataset-*.npz"))) == CACHE_KEEP
    assert not list(cache.glob(".*.tmp"))
