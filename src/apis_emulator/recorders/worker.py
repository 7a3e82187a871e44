"""The one pattern every sink follows: a thread of its own, fed through a bounded queue.

The producer (the headless loop, or the served runner on the event loop) only puts immutable
items in a queue; formatting, writing, committing and posting happen in the sink's thread.
The queue is bounded, so memory stays bounded: a *blocking* sink makes a producer that is
faster than the disk wait (headless: nothing lost), a *dropping* sink counts and logs what it
could not take (served: the event loop never waits).  An error in the thread is kept and raised
to the producer on its next call, or by :meth:`SinkWorker.close`.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import EmulatorError

if TYPE_CHECKING:
    from ..engine.deals import DealRecord
    from .httpsink import UnitDocuments
    from .indivlog import UnitsBlock
    from .summary import DayRow

__all__ = ["sync_and_close", "SinkWorker", "RecorderError", "write_all"]

log = logging.getLogger(__name__)

_STOP = object()


class _Gathered(list[Any]):
    """Items a producer gathered and handed over as one queue entry."""


def _add(batch: list[Any], entry: Any) -> None:
    """A queue entry's items to ``batch``."""
    if isinstance(entry, _Gathered):
        batch.extend(entry)
    else:
        batch.append(entry)


def sync_and_close(fd: int) -> int:
    """fsync and close a file descriptor opened by a sink (if still open); returns -1."""
    if fd >= 0:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return -1


class RecorderError(EmulatorError):
    """A recorder could not open or write its output (names the sink and the cause)."""


def write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to ``fd`` with as few ``write`` calls as the kernel allows (one for a
    regular file): a block of whole rows is never split across two writes by a buffer."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class SinkWorker:
    """Base class: a named sink whose :meth:`handle` runs in its own thread on batches.

    It offers what :class:`~.sinks.Sink` asks; a subclass overrides :meth:`log_units` and
    :meth:`log_rows` for the items it takes (the others are ignored) and sets ``output``.

    Parameters
    ----------
    name : str
        Shown in log messages and errors, e.g. ``"summary CSV data/output/summary.csv"``.
    max_items : int
        Capacity of the queue [items].
    block : bool
        True: a full queue makes :meth:`put` wait.  False: the item is dropped and counted.
    max_batch : int
        At most this many queued items are handed to one :meth:`handle` call.
    wake_interval : float
        [s] wall time after which an idle thread calls :meth:`idle` (time-based flushing).
    linger : float
        [s] the thread waits this long after the first item of a batch so that more items
        join it: fewer wake-ups, fewer switches of the interpreter lock between the producer
        and the writers (it tripled the time of a headless run with small blocks).
    gather : int
        Items the producer keeps and hands over together, as one queue entry (a blocking
        sink only; a served, dropping sink hands each item over at once).  A headless year
        of 100 units makes 35,040 samples: one queue hand-over per sample cost a sixth of a
        second per 10,000.  Kept items are written at :meth:`close`; a killed process loses
        them with the queue.
    gather_seconds : float
        [s] wall time after which gathered items are handed over even if fewer than
        ``gather`` (checked at each :meth:`put`): what a killed run loses stays small.
    """

    output = "sink"  # its key in Recorders.files
    wants_documents = False  # only the HTTP sink wants the units' documents

    def __init__(self, name: str, max_items: int = 256, block: bool = True,
                 max_batch: int = 256, wake_interval: float = 1.0, linger: float = 0.02,
                 clock: Callable[[], float] = time.monotonic, gather: int = 1,
                 gather_seconds: float = 0.1):
        self.name = name
        self.block = block
        self.max_batch = max(1, int(max_batch))
        self.wake_interval = wake_interval
        self.linger = linger
        self.clock = clock
        self.dropped = 0  # items not taken because the queue was full
        self.written = 0  # items handled
        self.high_water = 0  # most items queued at once
        self.error: BaseException | None = None
        self.gather = max(1, int(gather)) if block else 1
        self.gather_seconds = gather_seconds
        self._gathered: list[Any] = []
        self._gather_started = 0.0
        # a gathered entry holds `gather` items: the queue's bound stays in items
        self._queue: queue.Queue[Any] = queue.Queue(
            maxsize=max(2, int(max_items) // self.gather))
        self._last_drop_log = -1e18
        self._drops_logged = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"recorder:{name}", daemon=True)

    # ------------------------------------------------------------------ the Sink protocol
    def log_units(self, block: UnitsBlock, documents: UnitDocuments | None) -> None:
        """One individual-log sample; ignored unless the subclass takes it."""

    def log_rows(self, rows: Sequence[DayRow]) -> None:
        """Summary rows (a day's, or ``sum`` and ``avg``); ignored unless taken."""

    def log_deals(self, records: Sequence[DealRecord]) -> None:
        """Finished deals of a built-in controller; ignored unless taken."""

    def status(self) -> dict[str, Any]:
        """Items written, dropped, queue high-water mark, error."""
        return {"written": self.written, "dropped": self.dropped,
                "high_water": self.high_water,
                "error": None if self.error is None else str(self.error)}

    # ------------------------------------------------------------------ producer side
    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def put(self, item: Any) -> bool:
        """Queue ``item``; False if it was dropped (full queue of a dropping sink)."""
        self.raise_error()
        if self._closed:
            raise RecorderError(f"{self.name}: already closed")
        if self.gather > 1:
            if not self._gathered:
                self._gather_started = self.clock()
            self._gathered.append(item)
            if (len(self._gathered) < self.gather
                    and self.clock() - self._gather_started < self.gather_seconds):
                return True
            item, self._gathered = _Gathered(self._gathered), []
        if self.block:
            self._queue.put(item)
        else:
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self._count_drop()
                return False
        self.high_water = max(self.high_water, self._queue.qsize() * self.gather)
        return True

    def _count_drop(self) -> None:
        self.dropped += 1
        now = self.clock()
        if now - self._last_drop_log >= 60.0:
            log.warning("%s cannot keep up: %d item(s) dropped so far (queue of %d full)",
                        self.name, self.dropped, self._queue.maxsize)
            self._last_drop_log = now
            self._drops_logged = self.dropped

    def raise_error(self) -> None:
        """Raise the writer thread's error, if it had one, as RecorderError."""
        if self.error is not None:
            raise RecorderError(f"{self.name}: {self.error}") from self.error

    def close(self) -> None:
        """Write what is queued, then :meth:`finish` (flush, sync, close); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            if self._gathered:
                self._queue.put(_Gathered(self._gathered))
                self._gathered = []
            self._queue.put(_STOP)
            self._thread.join()
        try:
            self.finish()
        except BaseException as exc:
            if self.error is None:
                self.error = exc
        if self.dropped:
            log.warning("%s: %d item(s) dropped in all", self.name, self.dropped)
        self.raise_error()

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.wake_interval)
            except queue.Empty:
                self._guarded(self.idle)
                continue
            batch: list[Any] = []
            stop = item is _STOP
            if not stop:
                _add(batch, item)
                if self.linger > 0 and self._queue.qsize() < self.max_batch:
                    time.sleep(self.linger)
            while not stop and len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                stop = more is _STOP
                if not stop:
                    _add(batch, more)
            if batch and self.error is None:
                self._guarded(self.handle, batch)
                self.written += len(batch)
            if stop:
                return

    def _guarded(self, action: Callable[..., None], *args: Any) -> None:
        if self.error is not None:
            return
        try:
            action(*args)
        except BaseException as exc:  # kept, raised to the producer on its next call
            self.error = exc
            log.error("%s failed: %s", self.name, exc)

    # ------------------------------------------------------------------ to override
    def handle(self, batch: list[Any]) -> None:
        """Write a batch of items (called in the sink's thread)."""
        raise NotImplementedError

    def idle(self) -> None:
        """Called in the sink's thread when nothing came for ``wake_interval`` seconds."""

    def finish(self) -> None:
        """Flush, sync and close (called by :meth:`close` once the thread has ended)."""
