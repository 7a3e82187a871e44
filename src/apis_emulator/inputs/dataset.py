"""Readers for the data set of specification §4.2.3 and §9.

A data set is a directory with ``dataset.json`` (metadata) beside a solar file and a load file,
or just the two CSV files ``sample_solar_data.csv`` and ``sample_load_data.csv`` of the original.

- Solar: 365 rows (days) × 24 hourly values from 00:00, no header.  ``solar.unit`` in the metadata
  says whether they are irradiance [W/m²] (turned into power by §7.1's formula) or PV output [W].
- Load: household loads [kW], 48 half-hourly values per day from 00:00, in one of two layouts:
  ``rows`` — a header row, then one row per household-day: column 2 the household id, columns
  7–54 the 48 values, 365 consecutive rows per household (the original reader's layout);
  ``wide`` — 365 rows, households side by side in blocks of 48 columns (§9's prose).
Files may be gzip-compressed (``.gz``).  A malformed file fails with its path, line and column.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.series import DAYS, DataSet
from ..errors import DataFileError
from .decimals import Scan, scan_lines
from .textrows import Line, line_blocks, looks_numeric, max_lines, numbered_lines, parse_block

__all__ = ["DataSet", "load_dataset", "read_solar_csv", "read_load_csv", "DAYS",
           "DEFAULT_DATASET_DIR", "SOLAR_UNITS"]

SOLAR_UNITS = ("W/m2", "W")
LOAD_LAYOUTS = ("rows", "wide")
ROWS_FIRST_VALUE_COLUMN = 7  # 1-based column of the first half-hourly value in the rows layout
DEFAULT_DATASET_DIR = Path(__file__).resolve().parent.parent / "data" / "default"


def read_solar_csv(path: str | Path) -> np.ndarray:
    """Read the solar file: 365 rows × k values (24 hourly in §9), no header → (365·k,)."""
    path = Path(path)
    rows = list(numbered_lines(path))  # 365 short lines
    if rows and not looks_numeric(rows[0][1].split(",")):
        rows = rows[1:]  # tolerate one header row
    if len(rows) != DAYS:
        raise DataFileError(path, f"has {len(rows)} data rows; a solar file has {DAYS} (days)")
    width = _cells(rows[0])
    if width < 1 or 1440 % width:
        raise DataFileError(path, f"has {width} values per row; expected 24 (hourly)",
                            rows[0][0])
    for line_no, text in rows:
        if text.count(",") + 1 != width:
            cells = text.count(",") + 1
            raise DataFileError(path, f"has {cells} values; expected {width} like line "
                                f"{rows[0][0]}", line_no, min(cells, width) + 1)
    return parse_block(path, rows, 0, width).reshape(-1)


def _cells(line: Line) -> int:
    """Number of cells of a line."""
    return line[1].count(",") + 1


def _guess_layout(width: int, has_header: bool) -> str:
    if width % 48 == 0 and not has_header:
        return "wide"
    if width >= ROWS_FIRST_VALUE_COLUMN - 1 + 48:
        return "rows"
    return "wide"


def read_load_csv(path: str | Path, layout: str = "auto") -> np.ndarray:
    """Read the household-load file [kW] → array (households, 365·48).

    The file is read as a stream, a block of lines at a time: only the numbers are held, once.
    """
    path = Path(path)
    blocks = (block for block in line_blocks(path) if block)
    first = next(blocks, None)
    if first is None:
        raise DataFileError(path, "is empty")
    head = first[0]
    has_header = not looks_numeric(head[1].split(","))
    if layout == "auto":
        layout = _guess_layout(_cells(head), has_header)
    if layout not in LOAD_LAYOUTS:
        raise DataFileError(path, f"layout {layout!r} unknown; accepted: {', '.join(LOAD_LAYOUTS)}")
    if has_header:
        first = first[1:] or next(blocks, [])
    if not first:
        raise DataFileError(path, "has a header but no data rows")
    body = itertools.chain([first], blocks)
    return _read_rows_layout(path, body) if layout == "rows" else _read_wide_layout(path, body)


def _household_runs(path: Path, block: list[Line],
                    scan: Scan) -> Iterator[tuple[str, int, int]]:
    """(household id, start, stop) of each run of lines of one household in a rows-layout
    block; every line must have all its columns and an id (column 2)."""
    first = ROWS_FIRST_VALUE_COLUMN - 1
    short = np.flatnonzero(scan.cells < first + 48)
    if short.size:
        line_no, cells = block[short[0]][0], int(scan.cells[short[0]])
        raise DataFileError(path, f"has {cells} columns; the rows layout needs "
                            f"{first + 48} (household id in column 2, 48 values from "
                            f"column {first + 1})", line_no, cells + 1)
    starts = [int(i) for i in np.flatnonzero(scan.key_change)] + [len(block)]
    for start, stop in itertools.pairwise(starts):
        house = block[start][1].split(",", 2)[1].strip()
        if not house:
            raise DataFileError(path, "household id is empty", block[start][0], 2)
        yield house, start, stop


def _read_rows_layout(path: Path, body: Iterator[list[Line]]) -> np.ndarray:
    """Each block's rows written straight into (households, 365, 48), a household's rows in
    the order they come.

    The array is made for as many households as the file's lines could hold: its pages are
    only backed by memory once written, so the numbers are held once and never copied.
    """
    first = ROWS_FIRST_VALUE_COLUMN - 1
    # a data line has at least 53 commas, 48 values, an id and its line break: 103 bytes
    capacity = max_lines(path, shortest=first + 48 + 48 + 1) // DAYS + 1
    load = np.empty((capacity, DAYS, 48), dtype=np.float64)
    rows: dict[str, int] = {}  # household id → rows so far; its index is its order
    index: dict[str, int] = {}
    for block in body:
        scan = scan_lines([text for _, text in block], first, 48, key=1)
        runs = list(_household_runs(path, block, scan))
        values = parse_block(path, block, first, 48, scan)
        for house, start, stop in runs:
            h, done = index.setdefault(house, len(index)), rows.get(house, 0)
            rows[house] = done + stop - start
            if h >= len(load):  # more households than the bound (odd line ends or gzip)
                load = np.concatenate([load, np.empty_like(load)])
            if rows[house] <= DAYS:
                load[h, done:rows[house]] = values[start:stop]
    for house, days in rows.items():
        if days != DAYS:
            raise DataFileError(path, f"household {house} has {days} rows; each household "
                                f"needs {DAYS} (one per day)")
    return load[:len(rows)].reshape(len(rows), DAYS * 48)


def _read_wide_layout(path: Path, body: Iterator[list[Line]]) -> np.ndarray:
    """Day rows of households side by side, written straight into (households, 365, 48)."""
    first = next(body)
    width = _cells(first[0])
    if width % 48:
        raise DataFileError(path, f"has {width} columns; the wide layout needs 48 per household",
                            first[0][0])
    load = np.empty((width // 48, DAYS, 48), dtype=np.float64)
    days = 0
    for block in itertools.chain([first], body):
        if days + len(block) > DAYS:
            days += len(block) + sum(len(b) for b in body)
            break
        scan = scan_lines([text for _, text in block], 0, width)
        wrong = np.flatnonzero(scan.cells != width)
        if wrong.size:
            line_no, cells = block[wrong[0]][0], int(scan.cells[wrong[0]])
            raise DataFileError(path, f"has {cells} columns; expected {width}", line_no,
                                min(cells, width) + 1)
        values = parse_block(path, block, 0, width, scan)
        load[:, days:days + len(block), :] = values.reshape(len(block), -1, 48).transpose(1, 0, 2)
        days += len(block)
    if days != DAYS:
        raise DataFileError(path, f"has {days} data rows; the wide layout needs {DAYS}")
    return load.reshape(width // 48, DAYS * 48)


def _read_meta(directory: Path) -> dict[str, Any]:
    meta_path = directory / "dataset.json"
    if not meta_path.exists():
        # the original's layout: data/input/Sample/sample_{solar,load}_data.csv
        return {"solar": {"file": "sample_solar_data.csv", "unit": "W"},
                "load": {"file": "sample_load_data.csv", "layout": "auto"},
                "name": directory.name}
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFileError(meta_path, f"invalid JSON ({exc.msg})", exc.lineno, exc.colno) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("solar"), dict) or not isinstance(
            meta.get("load"), dict):
        raise DataFileError(meta_path, 'needs the objects "solar" and "load"')
    return meta


def load_dataset(path: str | Path | None = None) -> DataSet:
    """Read a data-set directory; ``None`` or ``"default"`` = the embedded default data set."""
    directory = DEFAULT_DATASET_DIR if path in (None, "default") else Path(str(path))
    if not directory.is_dir():
        raise DataFileError(directory, "is not a directory holding a data set")
    meta = _read_meta(directory)
    solar_unit = meta["solar"].get("unit", "W/m2")
    if solar_unit not in SOLAR_UNITS:
        raise DataFileError(directory / "dataset.json",
                            f"solar.unit {solar_unit!r} unknown; accepted: "
                            f"{', '.join(SOLAR_UNITS)}")
    solar_path = directory / meta["solar"].get("file", "solar.csv")
    load_path = directory / meta["load"].get("file", "load.csv")
    layout = meta["load"].get("layout", "auto")
    cached = _parsed_cache(solar_path, load_path, layout)
    arrays = _read_cached(cached) if cached else None
    if arrays is None:
        arrays = read_solar_csv(solar_path), read_load_csv(load_path, layout)
        if cached:
            _write_cached(cached, *arrays)
    solar, load_kw = arrays
    return DataSet(solar=solar, solar_unit=solar_unit, load_kw=load_kw, meta=meta,
                   path=str(directory))


#: Load files from this size [bytes] on are parsed once and kept as arrays in the cache
#: folder: parsing the default data set's (3.3 MB) costs ~0.5 s of every run's start, reading
#: the arrays back ~10 ms.  Small files are parsed each time (no cache entry per test folder).
CACHE_MIN_BYTES = 1_000_000
_CACHE_FORMAT = 1  # bump when the parsed arrays change meaning


def cache_dir() -> Path | None:
    """The folder of parsed data sets: ``APIS_DATASET_CACHE_DIR`` (empty: no cache), else
    ``$XDG_CACHE_HOME/apis-emulator`` or ``~/.cache/apis-emulator``.  (Not an
    ``APIS_EMULATOR_`` name: those are settings, and an unknown one stops the start.)"""
    chosen = os.environ.get("APIS_DATASET_CACHE_DIR")
    if chosen is not None:
        return Path(chosen) if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "apis-emulator"


def _parsed_cache(solar_path: Path, load_path: Path, layout: str) -> Path | None:
    """The cache file of these two files as they are now (their paths, sizes and times of
    change name it: an edited file is parsed again), or None (no cache, files too small or
    unreadable: the readers then report the error)."""
    folder = cache_dir()
    try:
        stats = [solar_path.stat(), load_path.stat()]
    except OSError:
        return None
    if folder is None or stats[1].st_size < CACHE_MIN_BYTES:
        return None
    key = json.dumps([_CACHE_FORMAT, layout] + [
        [str(p.resolve()), st.st_size, st.st_mtime_ns] for p, st in
        zip((solar_path, load_path), stats, strict=True)])
    return folder / f"dataset-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"


def _read_cached(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The parsed arrays, or None when there is no such entry or it cannot be read whole."""
    try:
        with np.load(path, allow_pickle=False) as entry:
            arrays = entry["solar"], entry["load_kw"]
        os.utime(path)  # recently used: kept when the cache is trimmed
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    return arrays


def _write_cached(path: Path, solar: np.ndarray, load_kw: np.ndarray) -> None:
    """Keep the arrays for the next run; written beside and renamed, so that a run killed
    meanwhile leaves no half entry.  A cache that cannot be written is no error."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.savez(fh, solar=solar, load_kw=load_kw)
        os.replace(tmp, path)
        _trim(path.parent)
    except OSError:
        tmp.unlink(missing_ok=True)


CACHE_KEEP = 4  # entries kept: the data sets in use, not every temporary one ever read


def _trim(folder: Path) -> None:
    """Remove all but the CACHE_KEEP most recently used entries."""
    entries = sorted(folder.glob("dataset-*.npz"), key=lambda p: p.stat().st_mtime_ns,
                     reverse=True)
    for old in entries[CACHE_KEEP:]:
        old.unlink(missing_ok=True)
