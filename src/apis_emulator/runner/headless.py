"""Headless batch run: the same step as the served run, as fast as the machine allows."""

from __future__ import annotations

import dataclasses
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..control import Controller
from ..engine import Emulator
from ..errors import InvalidValueError
from ..recorders import RecorderPlan, Recorders, day_label, frozen_documents, run_info
from ..recorders.plan import HEADLESS_FILES
from .schedule import Schedule

__all__ = ["simulate", "SimulationResult"]

log = logging.getLogger(__name__)


@dataclass
class SimulationResult:
    """What a headless run did; energies [Wh]."""

    days: float
    steps: int
    wall_s: float
    out_dir: Path
    files: dict[str, Any] = field(default_factory=dict)
    totals: dict[str, float | None] = field(default_factory=dict)
    #: The signal (SIGINT/SIGTERM) that stopped the run early, or None.
    interrupted: int | None = None
    #: Per sink: items written, dropped, queue high-water mark, error.
    recorders: dict[str, dict[str, Any]] = field(default_factory=dict)


@contextmanager
def _stop_on_signals(enabled: bool) -> Iterator[dict[str, int]]:
    """While inside: SIGINT/SIGTERM only ask the loop to stop (``flag["signal"]``)."""
    flag: dict[str, int] = {}
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def ask_to_stop(signum: int, frame: object) -> None:
        if "signal" not in flag:
            log.warning("%s: stopping after the current step; writing the partial day and the "
                        "closing rows", signal.Signals(signum).name)
        flag["signal"] = signum

    previous = {s: signal.signal(s, ask_to_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def simulate(emulator: Emulator, days: float, out_dir: str | Path,
             indiv_interval: float | None = 900.0, progress: bool = True,
             summary: bool = True, *, database: bool | str | None = True,
             indiv_format: str = "csv", handle_signals: bool = True,
             plan: RecorderPlan | None = None,
             controller: Controller | None = None,
             compiled: bool = True) -> SimulationResult:
    """Run ``days`` of emulated time as fast as possible, writing the outputs as it goes.

    Into ``out_dir``: the daily summary (``summary.csv``, a row at every emulated midnight and
    for the partial last day, then the ``sum`` and ``avg`` rows), the individual log
    (``indivLog.csv``, or ``indivLog.parquet/`` with ``indiv_format="parquet"``; a block every
    ``indiv_interval`` emulated seconds; None or 0: no log) and the database
    (``apis-emulator.sqlite``; ``database`` may instead be a dburl — postgresql://, http://—
    or False).  ``plan`` replaces all of these choices.  With a ``controller`` (the built-in
    apis-main rules, :func:`apis_emulator.control.build_controller`) the converters follow its
    deals and ``deals.csv`` logs every deal.

    SIGINT/SIGTERM (with ``handle_signals``, in the main thread) stop the stepping; the partial
    day and the closing rows are written, everything is flushed and closed, and the result says
    ``interrupted``.
    """
    if not (isinstance(days, int | float) and math.isfinite(days) and days > 0):
        raise InvalidValueError("days", days, "a number of days > 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    em = emulator
    plan = plan or RecorderPlan.headless(out, summary=summary, indiv_interval=indiv_interval,
                                         indiv_format=indiv_format, database=database)
    if controller is not None and plan.deals_csv is None:
        plan = dataclasses.replace(plan, deals_csv=out / HEADLESS_FILES["deals"])
    end_step = em.step_index + int(round(days * 86400.0 / em.dt))
    recorders = Recorders(plan, em.snapshot(), run_info(em, "simulate"))
    schedule = _schedule(em, plan, recorders, controller, compiled)
    started = time.perf_counter()
    bar = tqdm(total=end_step - em.step_index, unit="step", unit_scale=True, disable=not progress,
               desc=f"simulate {len(em.units)} units", mininterval=0.5)
    chunk = max(1, int(round(86400.0 / em.dt)))  # a day at a time: progress and signals
    stopped: int | None = None
    try:
        with _stop_on_signals(handle_signals) as flag:
            while em.step_index < end_step and "signal" not in flag:
                bar.update(schedule.run(min(chunk, end_step - em.step_index)))
            stopped = flag.get("signal")
    except BaseException:
        bar.close()
        try:
            _close(schedule, recorders)
        except Exception as exc:  # the first error is the one to show
            log.error("closing the recorders after an error: %s", exc)
        raise
    bar.close()
    closing = _close(schedule, recorders)
    wall = time.perf_counter() - started
    totals = closing[0].values if closing else {}
    return SimulationResult(days=days, steps=em.step_index, wall_s=wall, out_dir=out,
                            files=recorders.files, totals=totals, interrupted=stopped,
                            recorders=recorders.status())


def _schedule(em: Emulator, plan: RecorderPlan, recorders: Recorders,
              controller: Controller | None, compiled: bool) -> Schedule:
    """The run's events: samples and midnights to the recorders, deals to the deal log."""
    every = plan.indiv_interval if plan.samples_units else None
    schedule = Schedule(em, controller, sample_every=every, compiled=compiled)

    def sample(e: Emulator) -> None:
        recorders.log_units(e.snapshot(), frozen_documents(e))

    def midnight(e: Emulator, shared: dict[str, float]) -> None:
        recorders.end_day(e.snapshot(), day_label(e.now), shared if controller else None)

    if recorders.wants_documents:  # the HTTP sink: the run stops at each sample
        schedule.on_sample.append(sample)
    else:  # the kernel keeps the samples on its way
        schedule.on_sample_values.append(recorders.log_units)
    schedule.on_midnight.append(midnight)
    schedule.on_deals.append(recorders.log_deals)
    return schedule


def _close(schedule: Schedule, recorders: Recorders) -> list[Any]:
    """Open deals end (run_end), then the partial day and the closing rows."""
    shared = schedule.close()
    return recorders.close(schedule.emulator.snapshot(), shared)
