"""Individual log as Parquet, for long runs: a directory of part files, each valid once closed.

A Parquet file is readable only once its footer is written, so the log is a directory
(``indivLog.parquet/``) of parts ``part-00000.parquet``, ``part-00001.parquet``, …  The part in
progress is written as a hidden ``.part-NNNNN.parquet.tmp`` (Parquet readers skip names that
start with a dot) and renamed once closed: a killed process leaves only valid, complete parts,
and loses at most the part in progress — at most ``part_seconds`` of wall time or
``rows_per_file`` rows.  Read the whole log with ``pyarrow.parquet.read_table(directory)``.

Columns as the CSV log (:data:`~.indivlog.INDIV_COLUMNS`): ``id`` and ``display`` strings
(dictionary-encoded),
``time`` a timestamp [s] of emulated local time, the six numbers as float64 (rsoc [%], powers
[W]).  Needs pyarrow (``pip install 'apis-emulator[parquet]'``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .indivlog import INDIV_COLUMNS, UnitsBlock, numbers_of
from .worker import RecorderError, SinkWorker

if TYPE_CHECKING:
    from .httpsink import UnitDocuments

__all__ = ["IndividualParquet", "import_pyarrow"]


_NO_PYARROW = ("the Parquet individual log needs pyarrow: install it with "
               "pip install 'apis-emulator[parquet]' (or pip install pyarrow), "
               "or choose the CSV log (simulate --indiv-format csv, or a .csv indivLogPath)")


def import_pyarrow() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or RecorderError saying how to install them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise RecorderError(_NO_PYARROW) from None
    return pa, pq


def check_pyarrow() -> None:
    """RecorderError saying how to install pyarrow if it cannot be imported; it is not
    imported here (a third of a second: the writer's thread imports it)."""
    try:
        found = importlib.util.find_spec("pyarrow") is not None
    except ValueError:
        found = False
    if not found:
        raise RecorderError(_NO_PYARROW)


class IndividualParquet(SinkWorker):
    """Writes :class:`UnitsBlock` rows into Parquet part files in ``directory``.

    Parameters
    ----------
    directory : path
        Created if missing; parts of an earlier run in it are removed.
    rows_per_file : int
        A part is closed after this many rows.
    part_seconds : float
        [s] wall time after which a part with rows in it is closed even if not full.
    row_group_rows : int
        Rows buffered in memory before they are written as one row group.
    gather : int
        Blocks the producer hands over together (see :class:`~.worker.SinkWorker`).

    The numbers are written as they are (float64, full precision), with the byte-stream-split
    encoding and zstd: a year of 100 units at 900 s is about a quarter of the CSV's size.
    """

    output = "indivLog"

    def __init__(self, directory: str | os.PathLike[str], rows_per_file: int = 1_000_000,
                 part_seconds: float = 60.0, row_group_rows: int = 65_536,
                 max_items: int = 256, block: bool = True, gather: int = 1):
        check_pyarrow()
        self.path = Path(directory)
        super().__init__(f"individual log {self.path}", max_items=max_items, block=block,
                         gather=gather)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            for old in [*self.path.glob("part-*.parquet"), *self.path.glob(".part-*.tmp")]:
                old.unlink()
        except OSError as exc:
            raise RecorderError(f"cannot prepare {self.path}: {exc.strerror}") from None
        self.rows_per_file = int(rows_per_file)
        self.part_seconds = float(part_seconds)
        self.row_group_rows = int(row_group_rows)
        self.parts: list[Path] = []
        self.rows = 0
        self._pa: Any = None  # pyarrow and its schema, imported by the writer's thread
        self._pq: Any = None
        self._schema: Any = None
        self._buffer: list[UnitsBlock] = []
        self._buffered = 0
        self._writer: Any = None
        self._tmp: Path | None = None
        self._part_rows = 0
        self._part_started = 0.0
        self._taken = self._closed_here = self._earlier = 0  # a batch's rows (handle)
        self.start()

    @property
    def where(self) -> Path:
        """The directory of parts."""
        return self.path

    def write(self, block: UnitsBlock) -> bool:
        """Queue one block; False if the queue was full and it was dropped."""
        return self.put(block)

    def log_units(self, block: UnitsBlock, documents: UnitDocuments | None) -> None:
        """The block's rows to the parts."""
        self.write(block)

    # ------------------------------------------------------------------ writer thread
    def rows_in(self, item: UnitsBlock) -> int:
        """A block's rows: one per unit."""
        return len(item)

    def handle(self, batch: list[UnitsBlock]) -> None:
        """Buffer a batch of blocks; write a part when it is full.  A write fault gives up
        the part in progress (its rows are counted in :meth:`lost_in_fault`)."""
        self._taken = self._closed_here = 0  # rows of this batch: into a part, in closed parts
        self._earlier = self._part_rows  # rows of earlier batches in the part in progress
        try:
            for block in batch:
                if len(block):
                    self._take(block)
            if self._close_if_old():
                self._part_closed()
        except self.write_faults:
            self._abort_part()
            raise

    def _take(self, block: UnitsBlock) -> None:
        if self._writer is None:
            self._open_part()
        self._buffer.append(block)
        self._buffered += len(block)
        self._part_rows += len(block)
        self._taken += len(block)
        self.rows += len(block)
        if self._buffered >= self.row_group_rows:
            self._write_buffer()
        if self._part_rows >= self.rows_per_file:
            self._close_part()
            self._part_closed()

    def _part_closed(self) -> None:
        """A part closed while handling a batch: what it took is written for good."""
        self._closed_here, self._earlier = self._taken, 0

    def lost_in_fault(self, rows: int) -> int:
        """The batch's rows not in a closed part, and those of earlier batches that the
        given-up part held (they were counted as written)."""
        self.rows_written += self._closed_here - self._earlier
        return rows - self._closed_here + self._earlier

    def idle(self) -> None:
        """Write the buffered rows as a part when they have waited long enough."""
        self._closing_or_abort(self._close_if_old)

    def finish(self) -> None:
        """Write the last part and close."""
        self._closing_or_abort(self._close_last)

    def _close_last(self) -> None:
        if self._writer is not None:
            self._close_part()

    def _closing_or_abort(self, action: Any) -> None:
        """``action()`` outside :meth:`handle`; on a write fault the part in progress is
        given up and its rows, counted as written, are counted as not written."""
        try:
            action()
        except self.write_faults:
            lost = self._part_rows
            self._abort_part()
            self.rows_written -= lost
            self.not_written += lost
            raise

    def _close_if_old(self) -> bool:
        """Close the part in progress if it is ``part_seconds`` old; True if it was."""
        if self._writer is not None and self.clock() - self._part_started >= self.part_seconds:
            self._close_part()
            return True
        return False

    def _abort_part(self) -> None:
        """Give up the part in progress (a write fault): close and remove what can be."""
        writer, tmp = self._writer, self._tmp
        self._writer = self._tmp = None
        self._buffer, self._buffered, self._part_rows = [], 0, 0
        try:
            if writer is not None:
                writer.close()
        except Exception:  # the fault is reported by the caller
            pass
        try:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        except OSError:  # a read-only or removed folder: nothing readable is left anyway
            pass

    def _import(self) -> None:
        """pyarrow and the schema, once (in the writer's thread)."""
        if self._pa is not None:
            return
        pa, self._pq = import_pyarrow()
        text = pa.dictionary(pa.int32(), pa.string())
        self._schema = pa.schema([("id", text), ("time", pa.timestamp("s")), ("display", text)]
                                 + [(name, pa.float64()) for name in INDIV_COLUMNS[3:]])
        self._pa = pa

    def _open_part(self) -> None:
        self._import()
        self.path.mkdir(parents=True, exist_ok=True)  # made anew if it was removed
        number = len(self.parts)
        self._tmp = self.path / f".part-{number:05d}.parquet.tmp"
        self._writer = self._pq.ParquetWriter(
            self._tmp, self._schema, compression="zstd",
            use_byte_stream_split=list(INDIV_COLUMNS[3:]), use_dictionary=["id", "display"])
        self._part_rows = 0
        self._part_started = self.clock()

    def _write_buffer(self) -> None:
        """The buffered blocks as one row group, its columns made from numpy buffers."""
        if not self._buffer:
            return
        blocks, self._buffer, self._buffered = self._buffer, [], 0
        seconds = np.repeat(np.array([b.time for b in blocks], dtype="datetime64[s]")
                            .astype(np.int64), [len(b) for b in blocks])
        numbers = numbers_of(blocks).T.copy()  # a column a row
        columns = [self._texts(blocks, "ids"), self._array(self._pa.timestamp("s"), seconds),
                   self._texts(blocks, "displays")]
        columns += [self._array(self._pa.float64(), column) for column in numbers]
        self._writer.write_table(self._pa.Table.from_arrays(columns, schema=self._schema))

    def _array(self, kind: Any, values: np.ndarray) -> Any:
        """An Arrow array over a contiguous numpy array, without a copy.

        ``pyarrow.array`` would do the same, but its first call sets up pyarrow's conversion
        machinery: 40 MB more resident memory for the rest of the run.
        """
        values = np.ascontiguousarray(values)
        return self._pa.Array.from_buffers(kind, len(values), [None, self._pa.py_buffer(values)])

    def _strings(self, texts: list[str]) -> Any:
        """An Arrow string array of ``texts`` from its offsets and UTF-8 bytes."""
        raw = [t.encode("utf-8") for t in texts]
        offsets = np.zeros(len(raw) + 1, dtype=np.int32)
        np.cumsum([len(r) for r in raw], out=offsets[1:])
        return self._pa.Array.from_buffers(self._pa.string(), len(raw), [
            None, self._pa.py_buffer(offsets), self._pa.py_buffer(b"".join(raw))])

    def _texts(self, blocks: list[UnitsBlock], name: str) -> Any:
        """A dictionary-encoded text column: the unit ids once, then small integers (a run
        of blocks of the same units shares its codes)."""
        values: dict[str, int] = {}
        indices = []
        last: tuple[tuple[str, ...], np.ndarray] | None = None
        for block in blocks:
            texts: tuple[str, ...] = getattr(block, name)
            if last is None or last[0] != texts:
                last = (texts, np.array([values.setdefault(t, len(values)) for t in texts],
                                        dtype=np.int32))
            indices.append(last[1])
        codes = self._array(self._pa.int32(), np.concatenate(indices))
        return self._pa.DictionaryArray.from_arrays(codes, self._strings(list(values)))

    def _close_part(self) -> None:
        self._write_buffer()
        self._writer.close()
        tmp = self._tmp
        assert tmp is not None
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        final = self.path / f"part-{len(self.parts):05d}.parquet"
        os.replace(tmp, final)
        self._writer = self._tmp = None
        self._part_rows = 0
        self.parts.append(final)
