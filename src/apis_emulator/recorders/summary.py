"""Daily summary of the community (specification §7.1 saveToSummaryToCSV; power-flow-model §7).

One row per emulated day, energies in [Wh] summed over the units, then a ``sum`` and an ``avg``
row when the run closes.  Rows are computed from engine snapshots (differences of each unit's
energy ledger), written and flushed as each day ends: nothing waits in memory for the exit.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from ..engine import LEDGER_FIELDS, Snapshot

__all__ = ["SUMMARY_COLUMNS", "DayRow", "DailySummary", "SummaryCSV", "ratios"]

SUMMARY_COLUMNS = ("time", "pv", "demand", "acin", "wasted", "acloss", "dcloss", "loss",
                   "avgrsoc", "wg", "deltaBatt", "ssr_real", "ssr_pv", "sor", "r_utility")
_L = {name: i for i, name in enumerate(LEDGER_FIELDS)}
_ENERGIES = ("pv", "demand", "acin", "wasted", "acloss", "dcloss", "loss", "wg", "deltaBatt")


def _div(numerator: float, denominator: float) -> float | None:
    """A ratio, or None (an empty cell) when the denominator is zero."""
    return numerator / denominator if denominator else None


def ratios(pv: float, demand: float, acin: float, wasted: float,
           delta_batt: float) -> dict[str, float | None]:
    """Self-sufficiency and utilisation ratios of power-flow-model §7."""
    return {"ssr_real": _div(demand - acin + delta_batt, demand),
            "ssr_pv": _div(pv + delta_batt, demand),
            "sor": _div(pv, pv + wasted),
            "r_utility": _div(acin - delta_batt, demand)}


@dataclass(frozen=True)
class DayRow:
    """One summary row; energies [Wh], avgrsoc [%]."""

    time: str
    values: dict[str, float | None]

    def cells(self) -> list[str]:
        out = [self.time]
        for column in SUMMARY_COLUMNS[1:]:
            value = self.values.get(column)
            out.append("" if value is None else repr(float(value)))
        return out


class DailySummary:
    """Turns snapshots taken at day ends into summary rows (pure, no I/O)."""

    def __init__(self, first: Snapshot):
        self._prev = self._by_unit(first)
        self._rows: list[DayRow] = []  # day rows only: a year is 365 small rows
        self._prev_rsoc = float(np.mean(first.rsoc)) if len(first.ids) else 0.0

    @staticmethod
    def _by_unit(snap: Snapshot) -> dict[str, tuple[np.ndarray, float]]:
        return {uid: (snap.ledger[i].copy(), float(snap.energy[i]))
                for i, uid in enumerate(snap.ids)}

    def day_row(self, snap: Snapshot, label: str) -> DayRow:
        """The row for the time since the previous call, labelled ``label``."""
        ledger = np.zeros(len(LEDGER_FIELDS))
        delta = 0.0
        for i, uid in enumerate(snap.ids):
            before, energy_before = self._prev.get(uid, (np.zeros(len(LEDGER_FIELDS)),
                                                         float(snap.energy[i])))
            ledger += snap.ledger[i] - before
            delta += float(snap.energy[i]) - energy_before
        avg = float(np.mean(snap.rsoc)) if len(snap.ids) else 0.0
        values: dict[str, float | None] = {
            "pv": ledger[_L["pv"]], "demand": ledger[_L["load"]], "acin": ledger[_L["acin"]],
            "wasted": ledger[_L["wasted"]], "acloss": ledger[_L["acloss"]],
            "dcloss": ledger[_L["dcloss"]],
            "loss": ledger[_L["acloss"]] + ledger[_L["dcloss"]], "avgrsoc": avg,
            "wg": ledger[_L["wg_in"]], "deltaBatt": delta}
        values.update(ratios(ledger[_L["pv"]], ledger[_L["load"]], ledger[_L["acin"]],
                             ledger[_L["wasted"]], delta))
        self._prev = self._by_unit(snap)
        self._prev_rsoc = avg
        row = DayRow(label, {k: (float(v) if v is not None else None) for k, v in values.items()})
        self._rows.append(row)
        return row

    def closing_rows(self) -> list[DayRow]:
        """The ``sum`` and ``avg`` rows over the day rows so far."""
        if not self._rows:
            return []
        total = {k: float(sum(r.values[k] or 0.0 for r in self._rows)) for k in _ENERGIES}
        total["avgrsoc"] = float(np.mean([r.values["avgrsoc"] or 0.0 for r in self._rows]))
        total.update(ratios(total["pv"], total["demand"], total["acin"], total["wasted"],
                            total["deltaBatt"]))
        n = len(self._rows)
        avg: dict[str, float | None] = {k: total[k] / n for k in _ENERGIES}
        avg["avgrsoc"] = total["avgrsoc"]
        avg.update(ratios(avg["pv"] or 0.0, avg["demand"] or 0.0, avg["acin"] or 0.0,
                          avg["wasted"] or 0.0, avg["deltaBatt"] or 0.0))
        summed: dict[str, float | None] = dict(total)
        return [DayRow("sum", summed), DayRow("avg", avg)]


class SummaryCSV:
    """Writes summary rows to a CSV file, each row flushed and synced as it is written."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = open(self.path, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh, lineterminator="\n")
        self._write([list(SUMMARY_COLUMNS)])

    def _write(self, rows: list[list[str]]) -> None:
        self._csv.writerows(rows)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def write(self, rows: list[DayRow]) -> None:
        self._write([r.cells() for r in rows])

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
