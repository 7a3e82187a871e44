"""Numeric CSV read as a stream: blocks of lines parsed in compiled code into float64.

A data set's text is never held whole: a file (plain or gzip) is read, decoded and parsed
:data:`CHUNK_BYTES` at a time and only the numbers are kept.  A 1,000-household load file
(110 MB of text) is then held once, as 140 MB of float64, instead of as bytes, text, lists of
cells and arrays.  Plain decimals are parsed by :mod:`.decimals` (the same bits as ``float``);
a line with any other cell by ``numpy.loadtxt`` (correctly rounded too); a malformed cell is
found again by a plain per-cell parse of its line, which names its line and column.
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
from .decimals import Scan, scan_lines

__all__ = ["CHUNK_BYTES", "Line", "line_blocks", "max_lines", "numbered_lines", "parse_block",
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


def max_lines(path: Path, shortest: int) -> int:
    """An upper bound of the lines of ``path`` whose data lines are at least ``shortest``
    bytes long (line break included); the count need not be exact, only not too small.

    A plain file: its line breaks (LF, CR) + 1, counted without decoding.  A gzip file: its
    text size (the gzip trailer) over ``shortest`` + 1, so that it is not decompressed twice;
    a trailer that cannot be right (a multi-member file, 4 GiB or more) falls back to counting.
    """
    stream, zipped = _open_binary(path)
    try:
        if zipped:
            size = _gzip_text_size(path)
            if size >= path.stat().st_size:
                return size // max(1, shortest) + 2
        return 1 + sum(data.count(b"\n") + data.count(b"\r")
                       for data in _reads(stream, path, zipped, CHUNK_BYTES))
    finally:
        stream.close()


def _gzip_text_size(path: Path) -> int:
    """The uncompressed size modulo 2³² that ends a gzip file (ISIZE, RFC 1952)."""
    with open(path, "rb") as fh:
        fh.seek(-4, 2)
        return int.from_bytes(fh.read(4), "little")


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


def parse_block(path: Path, block: list[Line], first: int, width: int,
                scan: Scan | None = None) -> np.ndarray:
    """Columns ``first`` … ``first + width − 1`` (0-based) of every line → (lines, width).

    The caller has checked that each line has enough cells (``scan``: its compiled pass over
    ``block``, if it made one).  Every value must be a finite number >= 0; a bad cell raises
    DataFileError naming its line and 1-based column.
    """
    scan = scan or scan_lines([text for _, text in block], first, width)
    values = scan.values
    if scan.slow.any():  # more digits, exponents, spaces, texts: the exact parsers
        rows = np.flatnonzero(scan.slow)
        values[rows] = _parse_exactly(path, [block[i] for i in rows], first, width)
    ok = np.isfinite(values) & (values >= 0)
    if not ok.all():
        row, col = np.unravel_index(int(np.argmin(ok.reshape(-1))), ok.shape)
        line_no, text = block[int(row)]
        cell = text.split(",")[first + int(col)].strip()
        raise DataFileError(path, f"{cell!r} is not a finite number >= 0", line_no,
                            first + int(col) + 1)
    return values


def _parse_exactly(path: Path, block: list[Line], first: int, width: int) -> np.ndarray:
    """Lines the compiled path left (numpy's parser, correctly rounded like ``float``)."""
    try:
        values: np.ndarray = np.loadtxt(
            io.StringIO("\n".join(text for _, text in block)), delimiter=",",
            usecols=range(first, first + width), dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        values = _parse_cells(path, block, first, width)  # names the bad cell
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
