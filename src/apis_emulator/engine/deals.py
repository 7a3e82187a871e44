"""The record of one deal, as the deal log (deals.csv, the ``deals`` table) keeps it.

Here, beside the engine, because both the controllers that make deals and the recorders that
write them use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DealRecord", "DEAL_COLUMNS", "END_REASONS", "TIME_FORMAT"]

#: Times in deal logs, as in the individual log.
TIME_FORMAT = "%Y/%m/%d-%H:%M:%S"
#: Columns of deals.csv and of the ``deals`` table, in order.
DEAL_COLUMNS = ("deal_id", "created", "activated", "started", "ended", "request_unit", "type",
                "charge_unit", "discharge_unit", "request_wh", "accept_wh", "deal_wh",
                "cumulated_wh", "end_reason")
#: Why a deal ended: its amount was delivered, it was stopped or refused, or the run ended.
END_REASONS = ("amount", "force_stop", "ramp_timeout", "direction", "capacity", "run_end")


@dataclass(frozen=True)
class DealRecord:
    """One finished deal, as deals.csv writes it (times as text, energies [Wh])."""

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
        return tuple(getattr(self, name) for name in DEAL_COLUMNS)
