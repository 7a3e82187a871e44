"""Headless batch run: the same step as the served run, as fast as the machine allows."""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..engine import Emulator
from ..errors import InvalidValueError
from ..recorders import DailySummary, DayRow, IndividualCSV, SummaryCSV

__all__ = ["simulate", "SimulationResult"]


@dataclass
class SimulationResult:
    """What a headless run did; energies [Wh]."""

    days: float
    steps: int
    wall_s: float
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    totals: dict[str, float | None] = field(default_factory=dict)


def _next_midnight(when: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(when.date() + dt.timedelta(days=1), dt.time())


def simulate(emulator: Emulator, days: float, out_dir: str | Path,
             indiv_interval: float | None = 900.0, progress: bool = True,
             summary: bool = True) -> SimulationResult:
    """Run ``days`` of emulated time as fast as possible, writing the outputs as it goes.

    The daily summary (``summary.csv``) gets a row at every emulated midnight and the partial
    last day, then the ``sum`` and ``avg`` rows; the individual log (``indivLog.csv``) gets a
    block every ``indiv_interval`` emulated seconds (None or 0: no individual log).
    """
    if not (isinstance(days, int | float) and math.isfinite(days) and days > 0):
        raise InvalidValueError("days", days, "a number of days > 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    em = emulator
    end_step = em.step_index + int(round(days * 86400.0 / em.dt))
    log_every = int(round(indiv_interval / em.dt)) if indiv_interval else 0
    days_summary = DailySummary(em.snapshot())
    files: dict[str, Path] = {}
    summary_csv = SummaryCSV(out / "summary.csv") if summary else None
    indiv_csv = IndividualCSV(out / "indivLog.csv") if log_every else None
    if summary_csv:
        files["summary"] = summary_csv.path
    if indiv_csv:
        files["indivLog"] = indiv_csv.path
    started = time.perf_counter()
    rows: list[DayRow] = []
    bar = tqdm(total=end_step - em.step_index, unit="step", unit_scale=True, disable=not progress,
               desc=f"simulate {len(em.units)} units", mininterval=0.5)
    try:
        next_day = em.step_index + em.steps_until(_next_midnight(em.now))
        next_log = em.step_index + log_every if log_every else end_step + 1
        while em.step_index < end_step:
            target = min(next_day, next_log, end_step)
            n = target - em.step_index
            em.advance(n)
            bar.update(n)
            if em.step_index == next_log:
                indiv_csv.write(em.snapshot())  # type: ignore[union-attr]
                next_log += log_every
            if em.step_index == next_day or em.step_index == end_step:
                label = (em.now - dt.timedelta(seconds=1)).strftime("%Y/%m/%d")
                row = days_summary.day_row(em.snapshot(), label)
                rows.append(row)
                if summary_csv:
                    summary_csv.write([row])
                next_day = em.step_index + em.steps_until(_next_midnight(em.now))
        closing = days_summary.closing_rows()
        if summary_csv:
            summary_csv.write(closing)
    finally:
        bar.close()
        if summary_csv:
            summary_csv.close()
        if indiv_csv:
            indiv_csv.close()
    wall = time.perf_counter() - started
    totals = closing[0].values if closing else {}
    return SimulationResult(days=days, steps=end_step, wall_s=wall, out_dir=out, files=files,
                            totals=totals)
