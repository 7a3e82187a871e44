"""Small data sets and helpers for the recorder tests (written into tmp_path, never shipped)."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

DAYS = 365


def write_dataset(directory: Path, households: int = 3, pv_peak_w: float = 2500.0) -> Path:
    """A data set in the specification's formats: solar in [W] (365 × 24, no header) and
    household loads in [kW] (the rows layout, a header row, 365 rows per household)."""
    directory.mkdir(parents=True, exist_ok=True)
    solar_lines = []
    for day in range(DAYS):
        season = 0.6 + 0.4 * math.cos(2 * math.pi * (day - 172) / DAYS)
        row = [max(0.0, math.sin(math.pi * (h - 6) / 12)) * pv_peak_w * season if 6 <= h <= 18
               else 0.0 for h in range(24)]
        solar_lines.append(",".join(f"{v:.1f}" for v in row))
    (directory / "solar.csv").write_text("\n".join(solar_lines) + "\n")
    load_lines = ["date,household,a,b,c,d," + ",".join(f"v{k}" for k in range(48))]
    for house in range(1, households + 1):
        for day in range(DAYS):
            values = [0.25 + 0.1 * house + 0.4 * (1 + math.sin(2 * math.pi * (k - 14 + day % 7)
                                                              / 48)) for k in range(48)]
            load_lines.append(f"{20190101 + day},{house},0,0,0,0,"
                              + ",".join(f"{v:.3f}" for v in values))
    (directory / "load.csv").write_text("\n".join(load_lines) + "\n")
    (directory / "dataset.json").write_text(json.dumps(
        {"name": "recorder-test", "solar": {"file": "solar.csv", "unit": "W"},
         "load": {"file": "load.csv", "layout": "rows"}}))
    return directory


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_emulator(dataset_dir: Path, units: int = 3, mode: str = "simulate", **changes):
    """An emulator on the data set in ``dataset_dir`` with the settings of ``mode``."""
    from apis_emulator.config import Settings
    from apis_emulator.engine import Emulator
    from apis_emulator.inputs import load_dataset

    settings = Settings(dataSet=str(dataset_dir), **changes).with_defaults_for(mode)
    return Emulator(settings, load_dataset(dataset_dir), units)


def read_csv(path: Path) -> list[list[str]]:
    """All rows of a CSV file (header included); fails on a last line without its newline."""
    import csv

    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path} ends in the middle of a row"
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def ledger_by_day(dataset_dir: Path, units: int, days: int, **changes) -> list[dict]:
    """The engine's own ledger differences per emulated day [Wh], from a separate emulator
    stepped midnight to midnight (no recorder involved)."""
    import datetime as dt

    from apis_emulator.engine import LEDGER_FIELDS

    em = make_emulator(dataset_dir, units, **changes)
    before = em.units.ledger.sum(axis=0).copy()
    energy = em.units.energy.sum()
    found = []
    for _ in range(days):
        midnight = dt.datetime.combine(em.now.date() + dt.timedelta(days=1), dt.time())
        em.advance(em.steps_until(midnight))
        after = em.units.ledger.sum(axis=0).copy()
        row = dict(zip(LEDGER_FIELDS, after - before, strict=True))
        row["deltaBatt"] = em.units.energy.sum() - energy
        row["avgrsoc"] = float(em.units.rsoc.mean())
        found.append(row)
        before, energy = after, em.units.energy.sum()
    return found
