"""Recorders: they consume engine snapshots and write the summary, the logs, the database."""

from .indivlog import INDIV_COLUMNS, IndividualCSV, individual_block
from .summary import SUMMARY_COLUMNS, DailySummary, DayRow, SummaryCSV, ratios

__all__ = ["INDIV_COLUMNS", "IndividualCSV", "individual_block", "SUMMARY_COLUMNS",
           "DailySummary", "DayRow", "SummaryCSV", "ratios"]
