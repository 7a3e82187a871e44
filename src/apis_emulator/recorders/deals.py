"""The deal log: one row per deal of a built-in controller (``deals.csv``).

Columns :data:`~apis_emulator.engine.deals.DEAL_COLUMNS`; a row is written when its deal ends
(delivered, stopped, refused, or open at the end of the run), each batch in one write, then
synced: rows are rare (a few thousand a day) and a crash keeps every whole row before it.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from ..engine.deals import DEAL_COLUMNS, DealRecord
from .worker import AppendFile, SinkWorker

__all__ = ["DealsCSV"]


class DealsCSV(SinkWorker):
    """Writes deal rows to a CSV file from a thread of its own."""

    output = "deals"

    def __init__(self, path: str | os.PathLike[str], max_items: int = 1024, block: bool = True):
        self.path = Path(path)
        super().__init__(f"deal log {self.path}", max_items=max_items, block=block)
        self._file = AppendFile(self.path, _lines([DEAL_COLUMNS]))
        self.start()

    @property
    def where(self) -> Path:
        """The CSV file."""
        return self.path

    def log_deals(self, records: Sequence[DealRecord]) -> None:
        """Finished deals to the file."""
        self.put(tuple(records))

    def rows_in(self, item: tuple[DealRecord, ...]) -> int:
        """Deals of one hand-over."""
        return len(item)

    def handle(self, batch: list[tuple[DealRecord, ...]]) -> None:
        """Write a batch of deal rows in one write, then sync (in the sink's thread)."""
        self._file.append(_lines([r.row() for records in batch for r in records]))
        self._file.sync()

    def recover(self) -> None:
        """Make the file anew if it was removed."""
        self._file.reopen_if_gone()

    def finish(self) -> None:
        """Flush, sync and close the file."""
        self._file.close()


def _lines(rows: Sequence[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return buffer.getvalue().encode("utf-8")
