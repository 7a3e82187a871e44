"""The record of one deal, as the deal log (deals.csv, the ``deals`` table) keeps it.

Here, beside the engine, because both the controllers that make deals and the recorders that
write them use it.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, NamedTuple

__all__ = ["DealRecord", "DealTimes", "DEAL_COLUMNS", "END_REASONS", "TIME_FORMAT"]

#: Times in deal logs, as in the individual log.
TIME_FORMAT = "%Y/%m/%d-%H:%M:%S"
#: Columns of deals.csv and of the ``deals`` table, in order.
DEAL_COLUMNS = ("deal_id", "created", "activated", "started", "ended", "request_unit", "type",
                "charge_unit", "discharge_unit", "request_wh", "accept_wh", "deal_wh",
                "cumulated_wh", "end_reason")
#: Why a deal ended: its amount was delivered, it was stopped or refused, or the run ended.
END_REASONS = ("amount", "force_stop", "ramp_timeout", "direction", "capacity", "run_end")


class DealRecord(NamedTuple):
    """One finished deal, as deals.csv writes it (times as text, energies [Wh]).  A named
    tuple: a year of a community makes 10⁵–10⁶ of them."""

    deal_id: str
    created: str
    activated: str
    started: str
    ended: str
    request_unit: str
    type: str
    charge_unit: str
    discharge_unit: str
    request_wh: int
    accept_wh: int
    deal_wh: int
    cumulated_wh: float
    end_reason: str

    def row(self) -> tuple[Any, ...]:
        """The values in DEAL_COLUMNS order."""
        return tuple(self)


class DealTimes:
    """A deal's times as text: ``start`` + t [s] in TIME_FORMAT, exactly as strftime shows it
    (to the whole second), with the date part made once per day (a year has 10⁶ of them)."""

    def __init__(self, start: dt.datetime):
        self.start = start
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        self._midnight = midnight
        self._base = int((start - midnight).total_seconds())  # [s] start after its midnight
        self._dates: dict[int, str] = {}
        self._clock: dict[int, str] = {}  # "HH:MM:SS" by second of the day

    def text(self, t: float | None) -> str:
        """The time ``t`` [s since start] as text; "" for None or NaN (not yet)."""
        if t is None or math.isnan(t):
            return ""
        whole = math.floor(t)
        if t - whole > 0.999999 or self.start.microsecond:
            # timedelta rounds to the microsecond, which may carry into the next second
            when = self.start + dt.timedelta(seconds=t)
            return when.strftime(TIME_FORMAT)
        day, second = divmod(self._base + whole, 86400)
        date = self._dates.get(day)
        if date is None:
            when = self._midnight + dt.timedelta(days=day)
            date = self._dates[day] = when.strftime(TIME_FORMAT.split("%H")[0])
        clock = self._clock.get(second)
        if clock is None:
            hour, rest = divmod(second, 3600)
            clock = self._clock[second] = f"{hour:02d}:{rest // 60:02d}:{rest % 60:02d}"
        return date + clock
