"""The data set's arrays as the engine reads them: a year of solar and household-load series.

A neutral record: the readers in ``inputs`` build it from files, the engine only samples it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DataSet", "DAYS"]

#: Days of a data set's year (a leap day replays 28 February).
DAYS = 365


@dataclass(frozen=True)
class DataSet:
    """Solar and household-load series of one year.

    ``solar`` has ``DAYS · samples_per_day`` values [W/m² or W, see ``solar_unit``];
    ``load_kw`` has shape (households, DAYS · samples_per_day) [kW].
    """

    solar: np.ndarray
    solar_unit: str
    load_kw: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    @property
    def households(self) -> int:
        """Number of households in the load series."""
        return int(self.load_kw.shape[0])

    @property
    def solar_interval(self) -> float:
        """Time between two solar samples [s]."""
        return DAYS * 86400.0 / int(self.solar.shape[0])

    @property
    def load_interval(self) -> float:
        """Time between two load samples [s]."""
        return DAYS * 86400.0 / int(self.load_kw.shape[1])

    @property
    def solar_shift(self) -> float:
        """Where a solar sample sits after its interval's start [s] (half an interval for means)."""
        return self._shift("solar", self.solar_interval)

    @property
    def load_shift(self) -> float:
        """Where a load sample sits after its interval's start [s]."""
        return self._shift("load", self.load_interval)

    def _shift(self, series: str, interval: float) -> float:
        part = self.meta.get(series, {})
        return 0.5 * interval if part.get("samples") == "interval-mean" else 0.0

    @property
    def name(self) -> str:
        """The data set's name (metadata, else its folder)."""
        return str(self.meta.get("name", self.path.rstrip("/").rsplit("/", 1)[-1] or "data set"))
