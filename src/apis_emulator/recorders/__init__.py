"""Recorders: they consume engine snapshots and write the summary, the logs, the database.

- :class:`Recorders` (with a :class:`RecorderPlan`): the facade the headless loop and the
  served runner feed, over a list of :class:`Sink`; :class:`ServedRecording` wraps it for the
  real-time runner.
- Sinks, each writing from a thread of its own behind a bounded queue: :class:`SummaryCSV`,
  :class:`IndividualCSV`, :class:`IndividualParquet`, :class:`SQLiteSink`,
  :class:`PostgresSink`, :class:`HttpSink`; :data:`SINK_OPENERS` is where they are chosen.
- :class:`DailySummary`: the pure computation of the daily rows (power-flow-model §7).

See docs/recorders.md.
"""

from .database import (
    DB_TABLES,
    DatabaseSink,
    PostgresSink,
    RunInfo,
    SQLiteSink,
    open_database,
    parse_dburl,
)
from .facade import HEADLESS_FILES, RecorderPlan, Recorders, day_label
from .httpsink import HttpSink, UnitDocuments, frozen_documents
from .indivlog import INDIV_COLUMNS, IndividualCSV, UnitsBlock
from .parquetlog import IndividualParquet
from .served import ServedRecording, run_info
from .sinks import SINK_OPENERS, Sink, SinkOpener, open_sinks
from .summary import SUMMARY_COLUMNS, DailySummary, DayRow, SummaryCSV, ratios
from .worker import RecorderError, SinkWorker

__all__ = ["Recorders", "RecorderPlan", "ServedRecording", "RecorderError", "RunInfo",
           "day_label", "run_info", "HEADLESS_FILES",
           "SummaryCSV", "IndividualCSV", "IndividualParquet", "SQLiteSink", "PostgresSink",
           "DatabaseSink", "HttpSink", "SinkWorker", "Sink", "SinkOpener", "SINK_OPENERS",
           "open_sinks", "open_database", "parse_dburl",
           "DB_TABLES", "UnitDocuments", "frozen_documents", "UnitsBlock", "INDIV_COLUMNS",
           "SUMMARY_COLUMNS", "DailySummary", "DayRow", "ratios"]
