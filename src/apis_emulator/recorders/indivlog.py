"""Individual log (specification §7.1 saveIndividualToCSV): one row per unit per interval.

Columns (power-flow-model §7): id, time, display, rsoc [%], pvc_charge_power [W],
ups_output_power [W], charge_discharge_power [W, absolute], wg [W, > 0 = from the DC grid into
the unit], p2 [W, from the AC mains].  Rows are formatted (compiled, :mod:`.textfmt`) and written
by the sink's own thread; each batch of whole rows goes to the file in a single ``write``, so a
killed process leaves only complete rows behind.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..engine import OUT_FIELDS, Sample, Snapshot
from .textfmt import encode_column, format_table
from .worker import AppendFile, SinkWorker

if TYPE_CHECKING:
    from .httpsink import UnitDocuments

__all__ = ["INDIV_COLUMNS", "INDIV_TIME_FORMAT", "UnitsBlock", "IndividualCSV"]

INDIV_COLUMNS = ("id", "time", "display", "rsoc", "pvc_charge_power", "ups_output_power",
                 "charge_discharge_power", "wg", "p2")
INDIV_TIME_FORMAT = "%Y/%m/%d-%H:%M:%S"
_O = {name: i for i, name in enumerate(OUT_FIELDS)}
_DECIMALS = np.array([4, 3, 3, 3, 3, 3], dtype=np.int64)


@dataclass(frozen=True)
class UnitsBlock:
    """The per-unit values of one snapshot, shared read-only by every per-unit sink.

    ``numbers`` has one row per unit and the columns ``INDIV_COLUMNS[3:]``: rsoc [%], then
    powers [W].  It is made on first use from the snapshot's read-only arrays, so in the
    sink's thread while the stepping goes on (the compiled step releases the interpreter
    lock); the block keeps only the arrays it needs (10 numbers a unit).
    """

    time: dt.datetime
    ids: tuple[str, ...]
    displays: tuple[str, ...]
    energy: np.ndarray = field(repr=False)  # [Wh]
    capacity: np.ndarray = field(repr=False)  # [Wh]
    out: np.ndarray = field(repr=False)  # columns OUT_FIELDS [W]
    wg: np.ndarray = field(repr=False)  # [W], > 0 into the unit

    @classmethod
    def of(cls, snap: Sample) -> UnitsBlock:
        """The block of one sample or snapshot (its arrays are read-only: no copy here)."""
        return cls(snap.time, snap.ids, snap.displays, snap.energy, snap.capacity, snap.out,
                   snap.wg)

    @cached_property
    def numbers(self) -> np.ndarray:
        """(units, 6): rsoc exactly as :attr:`Snapshot.rsoc`, pv, load, |flow|, wg, p2."""
        return numbers_of([self])

    def __len__(self) -> int:
        return len(self.ids)


def numbers_of(blocks: list[UnitsBlock]) -> np.ndarray:
    """The numbers of ``blocks`` one after the other, (rows, 6), computed in one pass over
    their stacked arrays (not block by block)."""
    if len(blocks) == 1:
        energy, capacity, out, wg = blocks[0].energy, blocks[0].capacity, blocks[0].out, \
            blocks[0].wg
    else:
        energy, capacity = (np.concatenate([b.energy for b in blocks]),
                            np.concatenate([b.capacity for b in blocks]))
        out, wg = np.concatenate([b.out for b in blocks]), np.concatenate([b.wg for b in blocks])
    numbers = np.empty((len(energy), 6))
    np.multiply(energy, 100.0, out=numbers[:, 0])
    np.divide(numbers[:, 0], capacity, out=numbers[:, 0])
    numbers[:, 1] = out[:, _O["pv"]]
    numbers[:, 2] = out[:, _O["load"]]
    np.abs(out[:, _O["flow"]], out=numbers[:, 3])
    numbers[:, 4] = wg
    numbers[:, 5] = out[:, _O["p2"]]
    numbers.setflags(write=False)
    return numbers


class _Encoder:
    """Formats runs of blocks of the same units, keeping the byte form of their id and
    display columns while the units stay the same."""

    def __init__(self) -> None:
        self._key: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._cols: tuple[tuple[np.ndarray, np.ndarray], ...] = ()

    def __call__(self, blocks: list[UnitsBlock]) -> bytes:
        """The CSV lines of ``blocks`` (all of the same units), in one compiled pass."""
        first = blocks[0]
        if self._key != (first.ids, first.displays):
            self._key = (first.ids, first.displays)
            self._cols = (encode_column(first.ids), encode_column(first.displays))
        units = len(first)
        unit_row = np.tile(np.arange(units, dtype=np.int64), len(blocks))
        times = encode_column([b.time.strftime(INDIV_TIME_FORMAT) for b in blocks])
        time_row = np.repeat(np.arange(len(blocks), dtype=np.int64), units)
        numbers = numbers_of(blocks)
        return format_table((*self._cols[0], unit_row), (*times, time_row),
                            (*self._cols[1], unit_row), numbers, _DECIMALS)


def same_units(blocks: list[UnitsBlock]) -> list[list[UnitsBlock]]:
    """``blocks`` in runs of consecutive blocks of the same units (ids and displays)."""
    runs: list[list[UnitsBlock]] = []
    for block in blocks:
        if runs and (block.ids, block.displays) == (runs[-1][0].ids, runs[-1][0].displays):
            runs[-1].append(block)
        else:
            runs.append([block])
    return runs


class IndividualCSV(SinkWorker):
    """Appends the rows of each :class:`UnitsBlock` to a CSV file (rsoc to 4 decimals, powers
    to 3), from a thread of its own.  A batch of blocks is formatted in one compiled pass and
    written in one ``write``.  The data reach the kernel when the queue runs empty (or every
    ``max_batch`` blocks); ``fsync`` every ``sync_interval`` wall seconds and at close.
    ``gather``: blocks the producer hands over together (see :class:`~.worker.SinkWorker`).
    """

    output = "indivLog"

    def __init__(self, path: str | os.PathLike[str], max_items: int = 256, block: bool = True,
                 sync_interval: float = 10.0, gather: int = 1):
        self.path = Path(path)
        super().__init__(f"individual log {self.path}", max_items=max_items, block=block,
                         gather=gather)
        self._file = AppendFile(self.path, (",".join(INDIV_COLUMNS) + "\n").encode())
        self._encode = _Encoder()
        self._sync_interval = sync_interval
        self._last_sync = self.clock()
        self._dirty = False
        self.rows = 0
        self.start()

    @property
    def where(self) -> Path:
        """The CSV file."""
        return self.path

    def write(self, item: UnitsBlock | Snapshot) -> bool:
        """Queue the rows of one block (a snapshot is turned into its block)."""
        return self.put(item if isinstance(item, UnitsBlock) else UnitsBlock.of(item))

    def log_units(self, block: UnitsBlock, documents: UnitDocuments | None) -> None:
        """The block's rows to the file."""
        self.write(block)

    def rows_in(self, item: UnitsBlock) -> int:
        """A block's rows: one per unit."""
        return len(item)

    def handle(self, batch: list[UnitsBlock]) -> None:
        """Write a batch of blocks in one write (in the sink's thread)."""
        data = b"".join(self._encode(run) for run in same_units([b for b in batch if len(b)]))
        self._file.append(data)
        self.rows += sum(len(b) for b in batch)
        self._dirty = True
        self.idle()

    def recover(self) -> None:
        """Make the file anew if it was removed."""
        self._file.reopen_if_gone()

    def idle(self) -> None:
        """fsync at most every ``sync_interval`` seconds, when something was written."""
        if self._dirty and self.clock() - self._last_sync >= self._sync_interval:
            self._file.sync()
            self._dirty = False
            self._last_sync = self.clock()

    def finish(self) -> None:
        """Flush, sync and close the file."""
        self._file.close()
