"""The one pattern every sink follows: a thread of its own, fed through a bounded queue.

The producer (the headless loop, or the served runner on the event loop) only puts immutable
items in a queue; formatting, writing, committing and posting happen in the sink's thread.
The queue is bounded, so memory stays bounded: a *blocking* sink makes a producer that is
faster than the disk wait (headless: nothing lost), a *dropping* sink counts and logs what it
could not take (served: the event loop never waits).

A *write fault* (a full or read-only disk, a removed file, a lost database connection: the
sink's ``write_faults``) never stops the run: it is reported once, the rows it could not write
are counted (``not_written``), and the sink keeps taking its queue, so neither a served clock
nor a headless run ever waits for the fault to pass.  It retries after a bounded back-off
(``RETRY_FIRST`` doubling up to ``RETRY_MAX``), first calling :meth:`SinkWorker.recover`
(reopen a removed file, reconnect), and writes again once the output takes rows again.  Any
other error is a bug: it is kept and raised to the producer on its next call, or by
:meth:`SinkWorker.close`.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EmulatorError

if TYPE_CHECKING:
    from ..engine.deals import DealRecord
    from .httpsink import UnitDocuments
    from .indivlog import UnitsBlock
    from .summary import DayRow

__all__ = ["sync_and_close", "SinkWorker", "RecorderError", "write_all", "AppendFile",
           "RETRY_FIRST", "RETRY_MAX"]

log = logging.getLogger(__name__)

_STOP = object()
#: [s] the first retry after a write fault; each failed retry doubles the wait ...
RETRY_FIRST = 0.5
#: [s] ... up to this: the rows after a fault has passed are written again at most this late
#: (a restarted database, a disk with room again), and a lasting fault costs one attempt (a
#: failed write, or a connection refused within its timeout) every 8 s.
RETRY_MAX = 8.0
#: [s] a new fault with the same error is logged at most this often (a disk hovering at full
#: would flap between writing and not).
FAULT_LOG_INTERVAL = 60.0


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


class AppendFile:
    """A text file of whole rows that a sink appends to, which stays whole when writing fails.

    :meth:`append` writes a block of whole rows; if the write fails (a full disk may take part
    of the block before ``ENOSPC``) the file is cut back to where the block began, so it always
    ends at a row boundary.  A file removed while open (its folder deleted) takes writes that
    reach nothing: :meth:`append` notices (no name links to it any more) and raises
    ``FileNotFoundError``; :meth:`reopen_if_gone` then makes it anew at its path, header
    first.  OSError is what every failure raises (a sink's write fault).
    """

    def __init__(self, path: Path, header: bytes):
        self.path = path
        self.header = header
        self.fd = -1
        try:
            self._open(truncate=True)
        except OSError as exc:
            raise RecorderError(f"cannot create {path}: {exc.strerror}") from None

    def _open(self, truncate: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        fd = os.open(self.path, flags, 0o644)
        try:
            if os.fstat(fd).st_size == 0:
                write_all(fd, self.header)
        except OSError:
            os.close(fd)
            raise
        self.fd = fd

    def append(self, data: bytes) -> None:
        """``data`` (whole rows) at the end, in one ``write``; on failure the file is cut
        back to its size before, and OSError raised."""
        if self.fd < 0:
            raise FileNotFoundError(errno.ENOENT, "the file could not be made again",
                                    str(self.path))
        size = os.fstat(self.fd).st_size
        try:
            write_all(self.fd, data)
        except OSError:
            try:
                os.ftruncate(self.fd, size)
            except OSError:  # e.g. made immutable: then nothing was written either
                pass
            raise
        if os.fstat(self.fd).st_nlink == 0:
            raise FileNotFoundError(errno.ENOENT, "the file was removed while open",
                                    str(self.path))

    def reopen_if_gone(self) -> None:
        """Make the file anew at its path (header first) if it was removed (or never made
        again); appends to whatever file is there otherwise."""
        if self.fd >= 0 and os.fstat(self.fd).st_nlink > 0:
            return
        if self.fd >= 0:
            os.close(self.fd)  # its data went with the removed file: no sync
            self.fd = -1
        self._open(truncate=False)

    def sync(self) -> None:
        """fsync the file (if open)."""
        if self.fd >= 0:
            os.fsync(self.fd)

    def close(self) -> None:
        """fsync and close; idempotent."""
        self.fd = sync_and_close(self.fd)


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
    #: Errors of the output itself (disk full or read-only, file removed, connection lost):
    #: counted and retried, never raised; a database sink adds its driver's.
    write_faults: tuple[type[BaseException], ...] = (OSError,)

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
        self.rows_written = 0  # rows that reached the output
        self.not_written = 0  # rows that did not: dropped from a full queue, or a write fault
        self.faults = 0  # write faults met (each failed attempt)
        self.fault: str | None = None  # the write fault in force, None while writing works
        self.first_fault: str | None = None
        self._retry_at = 0.0
        self._retry_wait = RETRY_FIRST
        self._last_fault_log = -1e18
        self._last_fault_text = ""
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
        """Items written, dropped, queue high-water mark, error; rows written and not
        written [rows], write faults met and the one in force (None: writing works)."""
        return {"written": self.written, "dropped": self.dropped,
                "high_water": self.high_water,
                "error": None if self.error is None else str(self.error),
                "rows_written": self.rows_written, "not_written": self.not_written,
                "faults": self.faults, "fault": self.fault}

    def rows_in(self, item: Any) -> int:
        """Rows an item holds (a sample's units, a batch's day rows…); 1 unless told."""
        return 1

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
                self._count_drop(item)
                return False
        self.high_water = max(self.high_water, self._queue.qsize() * self.gather)
        return True

    def _count_drop(self, item: Any) -> None:
        self.dropped += 1
        self.not_written += self.rows_in(item)
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
        except self.write_faults as exc:  # e.g. the last sync failed: reported, not raised
            self._fault(exc)
        except BaseException as exc:
            if self.error is None:
                self.error = exc
        if self.dropped:
            log.warning("%s: %d item(s) dropped in all", self.name, self.dropped)
        if self.faults:
            log.warning("%s: %d row(s) written, %d not written (write faults: %d, the "
                        "first: %s; the last still in force: %s)", self.name,
                        self.rows_written, self.not_written, self.faults, self.first_fault,
                        self.fault or "none")
        self.raise_error()

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.wake_interval)
            except queue.Empty:
                if self.fault is None:  # nothing to flush or sync while writing fails
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
                self._write(batch, last=stop)
            if stop:
                return

    def _write(self, batch: list[Any], last: bool = False) -> None:
        """``handle(batch)``, or, while a fault is in force and its retry is not due (the
        last batch always tries), count the batch's rows as not written."""
        rows = sum(self.rows_in(item) for item in batch)
        if self.fault is not None and not last and self.clock() < self._retry_at:
            self.not_written += rows
            return
        if self._guarded(self._retried, batch, last):
            self.written += len(batch)
            self.rows_written += rows
            if self.fault is not None:
                log.warning("%s writes again (%d row(s) not written so far)", self.name,
                            self.not_written)
                self.fault, self._retry_wait = None, RETRY_FIRST
        elif self.error is None:  # a write fault: these rows, and what the sink lost with them
            self.not_written += self.lost_in_fault(rows)

    def _retried(self, batch: list[Any], last: bool) -> None:
        if self.fault is not None or last:  # last: the closing rows find a removed file
            self.recover()
        self.handle(batch)

    def _guarded(self, action: Callable[..., None], *args: Any) -> bool:
        """Run ``action`` in the sink's thread; False if it failed.  A write fault is
        counted and retried later; any other error is kept and raised to the producer on
        its next call."""
        if self.error is not None:
            return False
        try:
            action(*args)
        except self.write_faults as exc:
            self._fault(exc)
            return False
        except BaseException as exc:
            self.error = exc
            log.error("%s failed: %s", self.name, exc)
            return False
        return True

    def _fault(self, exc: BaseException) -> None:
        """A write fault: the first of a run of them is logged (at most once a minute);
        the next attempt waits a doubling, bounded time."""
        text = str(exc).strip() or type(exc).__name__
        self.faults += 1
        self.first_fault = self.first_fault or text
        now = self.clock()
        if self.fault is None and (now - self._last_fault_log >= FAULT_LOG_INTERVAL
                                   or text != self._last_fault_text):
            log.error("%s cannot write: %s; the run goes on, rows are counted as not "
                      "written and writing is retried (every %g s at most)", self.name, text,
                      RETRY_MAX)
            self._last_fault_log, self._last_fault_text = now, text
        elif self.fault is not None:
            self._retry_wait = min(RETRY_MAX, 2 * self._retry_wait)
        self.fault = text
        self._retry_at = now + self._retry_wait

    # ------------------------------------------------------------------ to override
    def handle(self, batch: list[Any]) -> None:
        """Write a batch of items (called in the sink's thread)."""
        raise NotImplementedError

    def idle(self) -> None:
        """Called in the sink's thread when nothing came for ``wake_interval`` seconds."""

    def finish(self) -> None:
        """Flush, sync and close (called by :meth:`close` once the thread has ended)."""

    def recover(self) -> None:
        """Before a retry after a write fault: reopen a removed file, reconnect…; raises a
        write fault if the output still cannot be written."""

    def lost_in_fault(self, rows: int) -> int:
        """Rows lost to a write fault in :meth:`handle` that was given ``rows`` rows: those,
        unless the sink lost more (rows it held for a file it had to give up)."""
        return rows
