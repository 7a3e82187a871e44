"""Individual log (specification §7.1 saveIndividualToCSV): one row per unit per interval.

Rows are formatted and written by a writer thread fed through a bounded queue, so the engine
keeps stepping while text is made (memory stays bounded: a full queue makes the producer wait).
Each block is flushed as a whole; a crash loses at most the blocks not yet written.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np

from ..engine import OUT_FIELDS, Snapshot
from .textfmt import encode_column, format_rows

__all__ = ["INDIV_COLUMNS", "IndividualCSV", "individual_block"]

INDIV_COLUMNS = ("id", "time", "display", "rsoc", "pvc_charge_power", "ups_output_power",
                 "charge_discharge_power", "wg", "p2")
_O = {name: i for i, name in enumerate(OUT_FIELDS)}


def individual_block(snap: Snapshot) -> tuple[tuple[str, ...], tuple[str, ...], str, np.ndarray]:
    """What one snapshot contributes: ids, displays, time text and the numbers (n × 6)."""
    out = snap.out
    numbers = np.column_stack([snap.rsoc, out[:, _O["pv"]], out[:, _O["load"]],
                               np.abs(out[:, _O["flow"]]), snap.wg, out[:, _O["p2"]]])
    return snap.ids, snap.displays, snap.time.strftime("%Y/%m/%d-%H:%M:%S"), numbers


_DECIMALS = np.array([4, 3, 3, 3, 3, 3], dtype=np.int64)


class _Encoder:
    """Keeps the byte form of the id and display columns while the units stay the same."""

    def __init__(self) -> None:
        self._key: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._cols: tuple = ()

    def __call__(self, ids: tuple[str, ...], displays: tuple[str, ...], when: str,
                 numbers: np.ndarray) -> bytes:
        if self._key != (ids, displays):
            self._key = (ids, displays)
            self._cols = (encode_column(ids), encode_column(displays))
        return format_rows(self._cols[0], encode_column([when]), self._cols[1], numbers,
                           _DECIMALS)


class IndividualCSV:
    """Appends the rows of each snapshot to a CSV file, written by a thread of its own."""

    def __init__(self, path: str | os.PathLike[str], max_blocks: int = 256):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "wb")
        self._fh.write((",".join(INDIV_COLUMNS) + "\n").encode())
        self._encode = _Encoder()
        self._fh.flush()
        self._queue: queue.Queue[tuple | None] = queue.Queue(maxsize=max_blocks)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="indivlog-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                self._fh.write(self._encode(*item))
                if self._queue.empty():
                    self._fh.flush()
            except BaseException as exc:  # reported to the producer on its next call
                self._error = exc

    def write(self, snap: Snapshot) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(individual_block(snap))

    def close(self) -> None:
        if self._fh.closed:
            return
        self._queue.put(None)
        self._thread.join()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        if self._error is not None:
            raise self._error
