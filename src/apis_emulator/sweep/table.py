"""The runs table: one row per combination of the sweep, written as runs.csv and runs.parquet."""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .resolve import Sweep
from .task import KPIS, SHARING_KPIS

__all__ = ["table_columns", "table_rows", "write_table", "as_frame", "read_table"]

log = logging.getLogger(__name__)


def table_columns(sweep: Sweep) -> list[str]:
    """run_id, status, the axes, the KPIs (with the shared energy when sharing), wall_s, error."""
    kpis = (*KPIS, *SHARING_KPIS) if sweep.sharing else KPIS
    return ["run_id", "status", *sweep.columns, *kpis, "wall_s", "error"]


def table_rows(sweep: Sweep, results: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A row per combination whose run has a result (``ok`` values or ``error`` text)."""
    columns = table_columns(sweep)
    rows = []
    for row in sweep.rows:
        result = results.get(row.run_id)
        if result is None:
            continue
        values: dict[str, Any] = dict.fromkeys(columns)
        values.update(row.labels)
        values.update({k: v for k, v in result.items() if k in values})
        values["run_id"] = row.run_id
        rows.append(values)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file: never a half-written table."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _uniform(values: Sequence[Any]) -> list[Any]:
    """A column with one type for Parquet: numbers as floats, else text (None stays None)."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, bool) for v in present) or all(
            isinstance(v, int) and not isinstance(v, bool) for v in present):
        return list(values)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return [None if v is None else float(v) for v in values]
    return [None if v is None else _cell(v) for v in values]


def _write_parquet(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> bool:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        log.warning("runs.parquet not written: pyarrow is missing "
                    "(pip install 'apis-emulator[parquet]')")
        return False
    table = pa.table({c: pa.array(_uniform([r[c] for r in rows])) for c in columns})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    _replace(path, sink.getvalue())
    return True


def write_table(out: Path, rows: list[dict[str, Any]], columns: list[str]) -> dict[str, Path]:
    """Write runs.csv (and runs.parquet when pyarrow is there); return the files written."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_cell(r[c]) for c in columns] for r in rows)
    _replace(out / "runs.csv", text.getvalue().encode("utf-8"))
    files = {"runs.csv": out / "runs.csv"}
    if _write_parquet(out / "runs.parquet", rows, columns):
        files["runs.parquet"] = out / "runs.parquet"
    return files


def as_frame(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    """A pandas DataFrame of the rows, or the rows themselves when pandas is missing."""
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows, columns=columns)


def _parse(cell: str) -> Any:
    if cell == "":
        return None
    if cell in ("true", "false"):
        return cell == "true"
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            pass
    return cell


def read_table(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and rows of a runs.csv, cells parsed back to numbers where they are."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        columns = next(reader, [])
        rows = [dict(zip(columns, (_parse(c) if k not in (0, len(columns) - 1) else c or None
                                   for k, c in enumerate(cells)), strict=True))
                for cells in reader]
    return columns, rows
