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

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.series import DAYS, DataSet
from ..errors import DataFileError

__all__ = ["DataSet", "load_dataset", "read_solar_csv", "read_load_csv", "DAYS",
           "DEFAULT_DATASET_DIR", "SOLAR_UNITS"]

SOLAR_UNITS = ("W/m2", "W")
LOAD_LAYOUTS = ("rows", "wide")
ROWS_FIRST_VALUE_COLUMN = 7  # 1-based column of the first half-hourly value in the rows layout
DEFAULT_DATASET_DIR = Path(__file__).resolve().parent.parent / "data" / "default"


def _open_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(path, "file not found") from None
    except OSError as exc:
        raise DataFileError(path, f"cannot be read ({exc.strerror})") from None
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataFileError(path, f"broken gzip data ({exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFileError(path, f"not UTF-8 text (byte {exc.start})") from None


def _lines(text: str) -> list[tuple[int, list[str]]]:
    """Non-empty lines as (1-based line number, cells)."""
    return [(n, line.split(",")) for n, line in enumerate(text.splitlines(), start=1)
            if line.strip()]


def _parse_row(path: Path, line_no: int, cells: list[str], first_col: int = 1) -> np.ndarray:
    """Numbers of ``cells``; a bad cell names its 1-based column (cells[0] is first_col)."""
    try:
        values = [float(c) for c in cells]
    except ValueError:
        values = []
        for col, cell in enumerate(cells, start=first_col):
            try:
                values.append(float(cell))
            except ValueError:
                raise DataFileError(path, f"{cell.strip()!r} is not a number", line_no,
                                    col) from None
    # one vectorised check per row (a check per value took seconds for 100 households), and
    # an array per row, not a list of float objects: a fifth of the memory
    row = np.array(values, dtype=np.float64)
    ok = np.isfinite(row) & (row >= 0)
    if not ok.all():
        first = int(np.argmin(ok))
        raise DataFileError(path, f"{cells[first].strip()!r} is not a finite number >= 0",
                            line_no, first + first_col)
    return row


def _looks_numeric(cells: list[str]) -> bool:
    try:
        [float(c) for c in cells if c.strip()]
    except ValueError:
        return False
    return True


def read_solar_csv(path: str | Path) -> np.ndarray:
    """Read the solar file: 365 rows × k values (24 hourly in §9), no header → (365·k,)."""
    path = Path(path)
    rows = _lines(_open_text(path))
    if rows and not _looks_numeric(rows[0][1]):
        rows = rows[1:]  # tolerate one header row
    if len(rows) != DAYS:
        raise DataFileError(path, f"has {len(rows)} data rows; a solar file has {DAYS} (days)")
    width = len(rows[0][1])
    if width < 1 or 1440 % width:
        raise DataFileError(path, f"has {width} values per row; expected 24 (hourly)",
                            rows[0][0])
    values = []
    for line_no, cells in rows:
        if len(cells) != width:
            raise DataFileError(path, f"has {len(cells)} values; expected {width} like line "
                                f"{rows[0][0]}", line_no, min(len(cells), width) + 1)
        values.append(_parse_row(path, line_no, cells))
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _guess_layout(rows: list[tuple[int, list[str]]], has_header: bool) -> str:
    width = len(rows[0][1])
    if width % 48 == 0 and not has_header:
        return "wide"
    if width >= ROWS_FIRST_VALUE_COLUMN - 1 + 48:
        return "rows"
    return "wide"


def read_load_csv(path: str | Path, layout: str = "auto") -> np.ndarray:
    """Read the household-load file [kW] → array (households, 365·48)."""
    path = Path(path)
    rows = _lines(_open_text(path))
    if not rows:
        raise DataFileError(path, "is empty")
    has_header = not _looks_numeric(rows[0][1])
    if layout == "auto":
        layout = _guess_layout(rows, has_header)
    if layout not in LOAD_LAYOUTS:
        raise DataFileError(path, f"layout {layout!r} unknown; accepted: {', '.join(LOAD_LAYOUTS)}")
    body = rows[1:] if has_header else rows
    if not body:
        raise DataFileError(path, "has a header but no data rows")
    return _read_rows_layout(path, body) if layout == "rows" else _read_wide_layout(path, body)


def _read_rows_layout(path: Path, body: list[tuple[int, list[str]]]) -> np.ndarray:
    first = ROWS_FIRST_VALUE_COLUMN - 1
    per_house: dict[str, list[np.ndarray]] = {}
    for line_no, cells in body:
        if len(cells) < first + 48:
            raise DataFileError(path, f"has {len(cells)} columns; the rows layout needs "
                                f"{first + 48} (household id in column 2, 48 values from "
                                f"column {first + 1})", line_no, len(cells) + 1)
        house = cells[1].strip()
        if not house:
            raise DataFileError(path, "household id is empty", line_no, 2)
        per_house.setdefault(house, []).append(
            _parse_row(path, line_no, cells[first:first + 48], first_col=first + 1))
    for house, days in per_house.items():
        if len(days) != DAYS:
            raise DataFileError(path, f"household {house} has {len(days)} rows; each household "
                                f"needs {DAYS} (one per day)")
    return np.asarray(list(per_house.values()), dtype=np.float64).reshape(len(per_house), -1)


def _read_wide_layout(path: Path, body: list[tuple[int, list[str]]]) -> np.ndarray:
    width = len(body[0][1])
    if width % 48:
        raise DataFileError(path, f"has {width} columns; the wide layout needs 48 per household",
                            body[0][0])
    if len(body) != DAYS:
        raise DataFileError(path, f"has {len(body)} data rows; the wide layout needs {DAYS}")
    values = []
    for line_no, cells in body:
        if len(cells) != width:
            raise DataFileError(path, f"has {len(cells)} columns; expected {width}", line_no,
                                min(len(cells), width) + 1)
        values.append(_parse_row(path, line_no, cells))
    days = np.asarray(values, dtype=np.float64).reshape(DAYS, width // 48, 48)
    return days.transpose(1, 0, 2).reshape(width // 48, DAYS * 48)


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
    solar = read_solar_csv(directory / meta["solar"].get("file", "solar.csv"))
    load_kw = read_load_csv(directory / meta["load"].get("file", "load.csv"),
                            meta["load"].get("layout", "auto"))
    return DataSet(solar=solar, solar_unit=solar_unit, load_kw=load_kw, meta=meta,
                   path=str(directory))
