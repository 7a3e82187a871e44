"""What a run records and where: :class:`RecorderPlan`, made from the settings or from flags.

A plan is pure data; :func:`~.sinks.open_sinks` turns it into sinks.  Three ways to make one:
:meth:`RecorderPlan.served` (the §7.1 settings, as ``serve`` does), :meth:`RecorderPlan.headless`
(everything into ``--out DIR``), and :meth:`RecorderPlan.for_simulate` (the settings' switches
into ``--out DIR``, the flags of ``simulate`` overriding them).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import SettingsError
from .database import parse_dburl

__all__ = ["RecorderPlan", "HEADLESS_FILES", "INDIV_FORMATS", "HEADLESS_FORMAT",
           "headless_format"]

log = logging.getLogger(__name__)

#: File names inside ``simulate --out DIR`` (``report`` reads them there).
HEADLESS_FILES = {"summary": "summary.csv", "indivLog.csv": "indivLog.csv",
                  "indivLog.parquet": "indivLog.parquet", "database": "apis-emulator.sqlite",
                  "deals": "deals.csv"}
INDIV_FORMATS = ("csv", "parquet")
#: Individual-log interval [s] of a headless run when the settings leave it empty.
HEADLESS_INTERVAL = 900.0
#: Individual-log format of ``simulate`` when neither a flag nor ``indivLogPath`` chooses:
#: columnar, about a quarter of the CSV's size, read by pandas, polars, DuckDB, R's arrow.
HEADLESS_FORMAT = "parquet"


@dataclass(frozen=True)
class RecorderPlan:
    """Which outputs a run writes, and where; None switches an output off.

    ``indiv_log`` ending in ``.parquet`` is a directory of Parquet parts, else a CSV file.
    ``indiv_interval`` [s] of emulated time between two individual-log (and database, HTTP)
    samples.  ``blocking``: a full queue makes the producer wait (headless, nothing lost) or
    drops the item with a count and a log line (served: the event loop never waits).
    ``keep_previous``: files of an earlier run at the same paths are renamed aside (served)
    instead of being replaced (headless: ``--out DIR`` is the run).
    ``gather_rows``: per-unit rows an individual log's producer gathers before it hands them
    to the writer's thread (blocking sinks only; served: 1, every sample at once).
    ``queue_rows``: what an individual log's queue holds at most [rows], whatever the number
    of units (with ``queue_items`` [samples]).
    """

    mode: str = "simulate"
    summary_csv: Path | None = None
    indiv_log: Path | None = None
    deals_csv: Path | None = None  # the deal log of a built-in controller
    indiv_interval: float | None = None
    dburl: str | None = None
    blocking: bool = True
    keep_previous: bool = False
    queue_items: int = 4096  # blocks; served writers drop (and count) only beyond this
    gather_rows: int = 1
    queue_rows: int = 1 << 19
    parquet_rows_per_file: int = 1_000_000
    parquet_part_seconds: float = 60.0
    http_timeout: float = 3.0
    http_retries: int = 2
    http_queue: int = 8

    def __post_init__(self) -> None:
        if self.dburl is not None:
            parse_dburl(self.dburl)  # a wrong URL fails at the start, naming dburl
        if self.indiv_interval is not None and not self.indiv_interval > 0:
            raise SettingsError("indivLogInterval", self.indiv_interval, "a number of s > 0")

    @property
    def samples_units(self) -> bool:
        """Whether anything wants the per-unit samples."""
        return bool(self.indiv_interval) and (self.indiv_log is not None or
                                              self.dburl is not None)

    def indiv_queue(self, units: int) -> tuple[int, int]:
        """(queue capacity [samples], samples gathered per hand-over) of an individual log
        of ``units`` units."""
        units = max(1, int(units))
        gather = max(1, self.gather_rows // units) if self.blocking else 1
        return min(self.queue_items, max(2 * gather, self.queue_rows // units)), gather

    @classmethod
    def served(cls, settings: Any, **overrides: Any) -> RecorderPlan:
        """From the §7.1 settings: saveToSummaryToCSV → summaryPath, saveIndividualToCSV →
        indivLogPath, saveIndividualToDB → dburl; interval settings.indivLogInterval (60 s)."""
        values: dict[str, Any] = dict(
            mode="serve",
            summary_csv=Path(settings.summaryPath) if settings.saveToSummaryToCSV else None,
            indiv_log=Path(settings.indivLogPath) if settings.saveIndividualToCSV else None,
            indiv_interval=float(settings.indivLogInterval or 60.0),
            dburl=settings.dburl if settings.saveIndividualToDB else None,
            blocking=False, keep_previous=True)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def headless(cls, out_dir: str | os.PathLike[str], summary: bool = True,
                 indiv_interval: float | None = HEADLESS_INTERVAL, indiv_format: str = "csv",
                 database: bool | str | None = True, **overrides: Any) -> RecorderPlan:
        """Everything into ``out_dir``: summary.csv, indivLog.csv (or indivLog.parquet/) and
        apis-emulator.sqlite; ``database`` may instead be a dburl (postgresql://, http://).
        The individual log's rows go to its thread in blocks of 65,536."""
        if indiv_format not in INDIV_FORMATS:
            raise SettingsError("indiv_format", indiv_format, f"one of {', '.join(INDIV_FORMATS)}")
        out = Path(out_dir)
        dburl = None
        if isinstance(database, str):
            dburl = database
        elif database:
            dburl = "sqlite:///" + str(out / HEADLESS_FILES["database"])
        values: dict[str, Any] = dict(
            mode="simulate", summary_csv=out / HEADLESS_FILES["summary"] if summary else None,
            indiv_log=(out / HEADLESS_FILES[f"indivLog.{indiv_format}"]) if indiv_interval
            else None,
            indiv_interval=indiv_interval or None, dburl=dburl, blocking=True,
            gather_rows=65_536)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def for_simulate(cls, settings: Settings, out_dir: str | os.PathLike[str], *,
                     summary: bool | None = None, indiv_interval: float | None = None,
                     indiv_format: str | None = None, database: bool | str | None = None,
                     **overrides: Any) -> RecorderPlan:
        """A headless run's plan from the §7.1 settings, each flag given (not None) winning.

        Files go into ``out_dir`` under :data:`HEADLESS_FILES` names (``report`` reads them
        there).  summary: ``saveToSummaryToCSV``.  Individual log: ``saveIndividualToCSV``,
        every ``indivLogInterval`` [s] (900 when empty; the flag 0 turns sampling off), in
        the format of ``indivLogPath``'s suffix when the settings set it, else
        :data:`HEADLESS_FORMAT` (Parquet; CSV when pyarrow is missing).  Database: ``dburl``
        when ``saveIndividualToDB``; the flag ``database`` is True (apis-emulator.sqlite in
        ``out_dir``), False (none) or a dburl.  ``overrides``: any other plan field.
        """
        interval = settings.indivLogInterval or HEADLESS_INTERVAL
        if indiv_interval is not None:
            interval = indiv_interval
        if indiv_format is None:
            indiv_format = headless_format(settings.indivLogPath)
        if database is None:
            database = settings.dburl if settings.saveIndividualToDB else False
        if not settings.saveIndividualToCSV:
            overrides = {"indiv_log": None, **overrides}  # the database may still sample
        return cls.headless(
            out_dir, summary=settings.saveToSummaryToCSV if summary is None else summary,
            indiv_interval=interval or None, indiv_format=indiv_format, database=database,
            **overrides)


def headless_format(indiv_log_path: str) -> str:
    """The individual-log format of ``simulate`` without a flag: that of ``indivLogPath``
    when the settings changed it from its default, else :data:`HEADLESS_FORMAT` (CSV, with a
    log line, when pyarrow cannot be imported)."""
    default = Settings.__dataclass_fields__["indivLogPath"].default
    if indiv_log_path != default:
        return "parquet" if indiv_log_path.endswith(".parquet") else "csv"
    if HEADLESS_FORMAT == "parquet" and importlib.util.find_spec("pyarrow") is None:
        log.warning("pyarrow is missing: the individual log is written as CSV "
                    "(pip install 'apis-emulator[parquet]' for the default Parquet log)")
        return "csv"
    return HEADLESS_FORMAT
