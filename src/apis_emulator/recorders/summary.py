"""Daily summary of the community (specification §7.1 saveToSummaryToCSV; power-flow-model §7).

One row per emulated day, energies in [Wh] summed over the units, then a ``sum`` and an ``avg``
row when the run closes.  Rows are computed from engine snapshots (differences of each unit's
energy ledger), written and synced as each day ends: nothing waits in memory for the exit.
A ratio whose denominator is zero is an empty cell.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine import LEDGER_FIELDS, Snapshot
from .worker import AppendFile, SinkWorker

__all__ = ["SUMMARY_COLUMNS", "SHARED_COLUMNS", "DayRow", "DailySummary", "SummaryCSV", "ratios"]

SUMMARY_COLUMNS = ("time", "pv", "demand", "acin", "wasted", "acloss", "dcloss", "loss",
                   "avgrsoc", "wg", "deltaBatt", "ssr_real", "ssr_pv", "sor", "r_utility",
                   "shared_in", "shared_out", "deals")
#: Columns filled by a built-in controller's deals (empty cells without one): energy delivered
#: to charging batteries [Wh], taken from discharging batteries [Wh], deals that ended.
SHARED_COLUMNS = ("shared_in", "shared_out", "deals")
_L = {name: i for i, name in enumerate(LEDGER_FIELDS)}
#: Ledger columns that only grow while a unit runs: a fall means the unit was reset or reloaded.
_MONOTONE = np.array([_L[name] for name in ("pv", "load", "wasted", "acloss", "dcloss")])
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

    @property
    def day(self) -> str | None:
        """The day as ISO text (``2019-01-31``), None for the ``sum`` and ``avg`` rows."""
        return self.time.replace("/", "-") if self.time[:1].isdigit() else None

    def cells(self) -> list[str]:
        """The row as CSV cells (empty for a missing value)."""
        out = [self.time]
        for column in SUMMARY_COLUMNS[1:]:
            value = self.values.get(column)
            out.append("" if value is None else repr(float(value)))
        return out


@dataclass(frozen=True)
class _Base:
    """Each unit's ledger and stored energy where the summary's current day began."""

    ids: tuple[str, ...]
    ledger: np.ndarray  # units × LEDGER_FIELDS [Wh]
    energy: np.ndarray  # [Wh]

    @classmethod
    def of(cls, snap: Snapshot) -> _Base:
        return cls(snap.ids, snap.ledger, snap.energy)  # a snapshot's arrays are read-only

    def rows_for(self, snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        """The baseline rows of ``snap``'s units, in its order; a unit the baseline does not
        know starts from its own values (no change counted)."""
        if snap.ids == self.ids:
            return self.ledger, self.energy
        position = {uid: i for i, uid in enumerate(self.ids)}
        ledger, energy = snap.ledger.copy(), snap.energy.copy()
        for i, uid in enumerate(snap.ids):
            j = position.get(uid)
            if j is not None:
                ledger[i], energy[i] = self.ledger[j], self.energy[j]
        return ledger, energy


class DailySummary:
    """Turns snapshots taken at day ends into summary rows (pure, no I/O).

    Energies are differences of each unit's ledger (the engine's own running sums), so the
    rows add up exactly to the ledger.  ``deltaBatt`` is the change of the stored energy of all
    units [Wh]: with equal battery sizes it equals power-flow-model §7's
    (avgrsoc − previous avgrsoc) · Σ batterySize / 100, and it stays exact when sizes differ or
    units come and go.
    """

    def __init__(self, first: Snapshot):
        self._base = _Base.of(first)
        self._carry = np.zeros(len(LEDGER_FIELDS))  # [Wh] of segments closed by rebase()
        self._carry_delta = 0.0  # [Wh]
        self._rows: list[DayRow] = []  # day rows only: a year is 365 small rows
        self.last_step = first.step

    @property
    def rows(self) -> tuple[DayRow, ...]:
        """The day rows so far."""
        return tuple(self._rows)

    def _segment(self, snap: Snapshot) -> tuple[np.ndarray, float]:
        """Ledger and stored-energy change of the units since the baseline [Wh]: the units'
        changes added one after the other in the snapshot's order, as a loop over them adds
        them (``np.add.accumulate`` is sequential; ``np.sum`` adds pairwise, other bits)."""
        ledger_before, energy_before = self._base.rows_for(snap)
        changes = np.empty((len(snap.ids) + 1, len(LEDGER_FIELDS)))
        changes[0] = self._carry
        np.subtract(snap.ledger, ledger_before, out=changes[1:])
        stored = np.empty(len(snap.ids) + 1)
        stored[0] = self._carry_delta
        np.subtract(snap.energy, energy_before, out=stored[1:])
        return np.add.accumulate(changes)[-1], float(np.add.accumulate(stored)[-1])

    def _row(self, snap: Snapshot, label: str,
             shared: Mapping[str, float] | None = None) -> DayRow:
        ledger, delta = self._segment(snap)
        avg = float(np.mean(snap.rsoc)) if len(snap.ids) else 0.0
        values: dict[str, float | None] = {
            "pv": ledger[_L["pv"]], "demand": ledger[_L["load"]], "acin": ledger[_L["acin"]],
            "wasted": ledger[_L["wasted"]], "acloss": ledger[_L["acloss"]],
            "dcloss": ledger[_L["dcloss"]],
            "loss": ledger[_L["acloss"]] + ledger[_L["dcloss"]], "avgrsoc": avg,
            "wg": ledger[_L["wg_in"]], "deltaBatt": delta}
        values.update(ratios(ledger[_L["pv"]], ledger[_L["load"]], ledger[_L["acin"]],
                             ledger[_L["wasted"]], delta))
        values.update({k: (shared or {}).get(k) for k in SHARED_COLUMNS})
        return DayRow(label, {k: (float(v) if v is not None else None)
                              for k, v in values.items()})

    def rebase(self, before: Snapshot, after: Snapshot) -> None:
        """The units were replaced between ``before`` and ``after`` (reset, load, add,
        remove): keep what was counted up to ``before`` and go on from there.

        A unit that goes on (same id, its ledger not restarted) goes on from its ``before``
        values, exactly; a new, reset or reloaded unit from its ``after`` values, which leaves
        out at most the steps between the change and ``after`` for that unit.
        """
        self._carry, self._carry_delta = self._segment(before)
        ledger, energy = _Base.of(before).rows_for(after)
        # a unit whose running sums went back was reset or reloaded: from its after values
        restarted = ~np.all(after.ledger[:, _MONOTONE] >= ledger[:, _MONOTONE], axis=1)
        ledger, energy = ledger.copy(), energy.copy()
        ledger[restarted], energy[restarted] = after.ledger[restarted], after.energy[restarted]
        self._base = _Base(after.ids, ledger, energy)

    def day_row(self, snap: Snapshot, label: str,
                shared: Mapping[str, float] | None = None) -> DayRow:
        """The row for the time since the previous call, labelled ``label``; ``shared``: a
        controller's totals of the day (SHARED_COLUMNS)."""
        row = self._row(snap, label, shared)
        self._base = _Base.of(snap)
        self._carry = np.zeros(len(LEDGER_FIELDS))
        self._carry_delta = 0.0
        self.last_step = snap.step
        self._rows.append(row)
        return row

    def closing_rows(self) -> list[DayRow]:
        """The ``sum`` and ``avg`` rows over the day rows so far."""
        return self._closing(self._rows)

    def so_far(self, snap: Snapshot) -> dict[str, float | None]:
        """Totals since the start, the day in progress included (§4.2.4's "stats so far");
        changes nothing."""
        rows = list(self._rows)
        if snap.step != self.last_step:
            rows.append(self._row(snap, "now"))
        closing = self._closing(rows)
        return dict(closing[0].values) if closing else {}

    @staticmethod
    def _closing(rows: list[DayRow]) -> list[DayRow]:
        if not rows:
            return []
        sums = {k: float(sum(r.values[k] or 0.0 for r in rows)) for k in _ENERGIES}
        n = len(rows)
        mean_rsoc = float(np.mean([r.values["avgrsoc"] or 0.0 for r in rows]))
        total: dict[str, float | None] = {**sums, "avgrsoc": mean_rsoc}
        total.update(ratios(sums["pv"], sums["demand"], sums["acin"], sums["wasted"],
                            sums["deltaBatt"]))
        avg: dict[str, float | None] = {k: sums[k] / n for k in _ENERGIES}
        avg["avgrsoc"] = mean_rsoc
        avg.update(ratios(sums["pv"] / n, sums["demand"] / n, sums["acin"] / n,
                          sums["wasted"] / n, sums["deltaBatt"] / n))
        for k in SHARED_COLUMNS:
            given = [r.values[k] for r in rows if r.values.get(k) is not None]
            total[k] = float(sum(given)) if given else None  # type: ignore[arg-type]
            avg[k] = total[k] / n if given else None  # type: ignore[operator]
        return [DayRow("sum", total), DayRow("avg", avg)]


class SummaryCSV(SinkWorker):
    """Writes summary rows to a CSV file from a thread of its own: each batch of rows in a
    single ``write``, then ``fsync`` (a day row is rare and precious)."""

    output = "summary"

    def __init__(self, path: str | os.PathLike[str], max_items: int = 64, block: bool = True):
        self.path = Path(path)
        super().__init__(f"summary CSV {self.path}", max_items=max_items, block=block)
        self._file = AppendFile(self.path, _line(list(SUMMARY_COLUMNS)))
        self.start()

    @property
    def where(self) -> Path:
        """The CSV file."""
        return self.path

    def write(self, rows: Sequence[DayRow]) -> bool:
        """Queue summary rows; False if the queue was full and they were dropped."""
        return self.put(tuple(rows))

    def log_rows(self, rows: Sequence[DayRow]) -> None:
        """Summary rows to the file."""
        self.write(rows)

    def rows_in(self, item: tuple[DayRow, ...]) -> int:
        """Rows of one hand-over (a day's, or sum and avg)."""
        return len(item)

    def handle(self, batch: list[tuple[DayRow, ...]]) -> None:
        """Write a batch of rows in one write, then sync (in the sink's thread)."""
        self._file.append(b"".join(_line(r.cells()) for rows in batch for r in rows))
        self._file.sync()

    def recover(self) -> None:
        """Make the file anew if it was removed."""
        self._file.reopen_if_gone()

    def finish(self) -> None:
        """Flush, sync and close the file."""
        self._file.close()


def _line(cells: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue().encode("utf-8")
