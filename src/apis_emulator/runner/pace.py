"""Whether a served emulation keeps pace with acceleration × wall time (for the page)."""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..engine import Emulator

__all__ = ["PaceMeter"]


@dataclass
class PaceMeter:
    """Whether the emulation keeps pace with acceleration × wall time.

    A listener of the runner: records (wall time, emulated time, time dropped) at each tick;
    the emulation keeps pace while the runner dropped no emulated time within ``window`` wall
    seconds and the ticks still come.
    """

    clock: Callable[[], float]
    window: float = 10.0  # [s] of wall time
    ticks: collections.deque[tuple[float, float, float]] = field(
        default_factory=lambda: collections.deque(maxlen=256))

    def record(self, em: Emulator, behind_s: float) -> None:
        """Note a tick: wall time, emulated time, emulated time dropped so far."""
        now = self.clock()
        self.ticks.append((now, em.emulated_s, behind_s))
        while len(self.ticks) > 2 and now - self.ticks[0][0] > self.window:
            self.ticks.popleft()

    def status(self, behind_s: float, sleeptime: float) -> dict[str, Any]:
        """Whether the emulation keeps pace, its measured speed, the last tick's age."""
        now = self.clock()
        if not self.ticks:
            return {"keeps_pace": True, "actual": None, "last_tick_s": None}
        first, last = self.ticks[0], self.ticks[-1]
        span = last[0] - first[0]
        actual = (last[1] - first[1]) / span if span > 0 else None
        stalled = now - last[0] > 3.0 * sleeptime + 1.0
        dropped = behind_s > first[2]
        return {"keeps_pace": not (stalled or dropped), "actual": actual,
                "last_tick_s": now - last[0]}
