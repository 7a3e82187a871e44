"""Numeric CSV read as a stream: blocks of lines parsed by numpy's C parser into float64.

A data set's text is never held whole: a file (plain or gzip) is read, decoded and parsed
:data:`CHUNK_BYTES` at a time (``numpy.loadtxt``, correctly rounded like ``float``) and only
the numbers are kept.  A 1,000-household load file (110 MB of text) is then held once, as
140 MB of float64, instead of as bytes, text, lists of cells and arrays.  A malformed cell is
found again by a plain per-cell parse of its block, which names its line and column.
"""

from __future__ import annotations

import gzip
import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import DataFileError

__all__ = ["CHUNK_BYTES", "Line", "line_blocks", "count_lines", "numbered_lines", "parse_block",
           "looks_numeric"]

#: Bytes of text read, decoded and parsed at once: large enough for numpy's parser to pay
#: off, small next to a data set.
CHUNK_BYTES = 1 << 19

#: A non-empty line of a file: (its 1-based line number, its text without the line break).
Line = tuple[int, str]

_GZIP_MAGIC = b"\x1f\x8b"


def _open_binary(path: Path) -> tuple[BinaryIO, bool]:
    """The file's bytes as a stream (gzip decompressed) and whether it is gzip."""
    try:
        raw = open(path, "rb")  # returned to the caller, who closes it
        zipped = path.suffix == ".gz" or raw.peek(2)[:2] == _GZIP_MAGIC
        if not zipped:
            return raw, False
        raw.close()
        return gzip.open(path, "rb"), True  # type: ignore[return-value]
    except FileNotFoundError:
        raise DataFileError(path, "file not found") from None
    except OSError as exc:
        raise DataFileError(path, f"cannot be read ({exc.strerror})") from None


def line_blocks(path: Path, chunk_bytes: int | None = None) -> Iterator[list[Line]]:
    """The non-empty lines of ``path`` in blocks of about ``chunk_bytes`` (default
    :data:`CHUNK_BYTES`) of text.

    Read as a stream (gzip when it is gzip), decoded as UTF-8 a block at a time (a BOM
    dropped); broken gzip data and text that is not UTF-8 raise DataFileError.
    """
    stream, zipped = _open_binary(path)
    number = offset = 0  # lines and bytes before the block
    rest = b""
    try:
        for data in _reads(stream, path, zipped, chunk_bytes or CHUNK_BYTES):
            data = rest + data
            cut = data.rfind(b"\n") + 1
            block, rest = data[:cut], data[cut:]
            if block:
                lines, number = _decode(path, block, number, offset)
                offset += len(block)
                yield lines
        if rest:
            yield _decode(path, rest, number, offset)[0]
    finally:
        stream.close()


def _reads(stream: BinaryIO, path: Path, zipped: bool, size: int) -> Iterator[bytes]:
    """The stream's bytes in reads of ``size``; a broken gzip stream raises DataFileError."""
    try:
        while data := stream.read(size):
            yield data
    except (OSError, EOFError) as exc:
        if zipped:
            raise DataFileError(path, f"broken gzip data ({exc})") from None
        raise DataFileError(path, f"cannot be read ({exc})") from None


def _decode(path: Path, block: bytes, number: int, offset: int) -> tuple[list[Line], int]:
    """The non-empty lines of a block of whole lines, numbered from ``number + 1``, and the
    number of the block's last line."""
    try:
        text = block.decode("utf-8-sig" if offset == 0 else "utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(path, f"not UTF-8 text (byte {offset + exc.start})") from None
    lines = text.splitlines()
    return [(n, line) for n, line in enumerate(lines, start=number + 1)
            if line.strip()], number + len(lines)


def count_lines(path: Path) -> int:
    """The number of lines of ``path`` as its line breaks (LF, CR) + 1, read as a stream
    without decoding: an upper bound for LF, CRLF and CR line ends."""
    stream, zipped = _open_binary(path)
    try:
        return 1 + sum(data.count(b"\n") + data.count(b"\r")
                       for data in _reads(stream, path, zipped, CHUNK_BYTES))
    finally:
        stream.close()


def numbered_lines(path: Path) -> Iterator[Line]:
    """The non-empty lines of ``path``, one by one (see :func:`line_blocks`)."""
    return itertools.chain.from_iterable(line_blocks(path))


def looks_numeric(cells: list[str]) -> bool:
    """Whether every non-empty cell is a number (a header row is not)."""
    try:
        [float(c) for c in cells if c.strip()]
    except ValueError:
        return False
    return True


def parse_block(path: Path, block: list[Line], first: int, width: int) -> np.ndarray:
    """Columns ``first`` … ``first + width − 1`` (0-based) of every line → (lines, width).

    The caller has checked that each line has enough cells.  Every value must be a finite
    number >= 0; a bad cell raises DataFileError naming its line and 1-based column.
    """
    try:
        values = np.loadtxt(io.StringIO("\n".join(text for _, text in block)), delimiter=",",
                            usecols=range(first, first + width), dtype=np.float64,
                            comments=None, ndmin=2)
    except ValueError:
        values = _parse_cells(path, block, first, width)  # names the bad cell
    ok = np.isfinite(values) & (values >= 0)
    if not ok.all():
        row, col = np.unravel_index(int(np.argmin(ok.reshape(-1))), ok.shape)
        line_no, text = block[int(row)]
        cell = text.split(",")[first + int(col)].strip()
        raise DataFileError(path, f"{cell!r} is not a finite number >= 0", line_no,
                            first + int(col) + 1)
    return values


def _parse_cells(path: Path, block: list[Line], first: int, width: int) -> np.ndarray:
    """The slow, exact parse of ``block`` with ``float``: finds the cell that is no number."""
    values = np.empty((len(block), width), dtype=np.float64)
    for row, (line_no, text) in enumerate(block):
        cells = text.split(",")[first:first + width]
        for col, cell in enumerate(cells):
            try:
                values[row, col] = float(cell)
            except ValueError:
                raise DataFileError(path, f"{cell.strip()!r} is not a number", line_no,
                                    first + col + 1) from None
    return values
