"""Fast CSV text for numeric blocks, compiled (numba): a year of rows in seconds, not minutes.

Python's float formatting costs about half a microsecond a number, which made the individual
log of a year-long run of 100 units cost longer than the run itself.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["format_rows", "format_table", "TextColumn", "encode_column", "csv_field"]

_NEEDS_QUOTES = frozenset(',"\r\n')


def csv_field(text: str) -> str:
    """``text`` as one CSV field (RFC 4180): quoted, with quotes doubled, only when needed."""
    if _NEEDS_QUOTES.isdisjoint(text):
        return text
    return '"' + text.replace('"', '""') + '"'


def encode_column(texts: tuple[str, ...] | list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings as CSV fields in a zero-padded byte matrix, and their lengths (the formatter's
    input); a text with a comma, a quote or a line break is quoted."""
    raw = [csv_field(t).encode("utf-8") for t in texts]
    width = max((len(r) for r in raw), default=0)
    matrix = np.zeros((len(raw), max(width, 1)), dtype=np.uint8)
    for i, r in enumerate(raw):
        matrix[i, :len(r)] = np.frombuffer(r, dtype=np.uint8)
    return matrix, np.array([len(r) for r in raw], dtype=np.int64)


@njit(cache=True, nogil=True)
def _put_fixed(buf: np.ndarray, pos: int, value: float, decimals: int,
               digits: np.ndarray) -> int:  # pragma: no cover - compiled
    scale = 10 ** decimals
    negative = value < 0.0
    scaled = np.int64(abs(value) * scale + 0.5)
    if negative and scaled != 0:
        buf[pos] = 45  # '-'
        pos += 1
    whole = scaled // scale
    n = 0
    while True:
        digits[n] = 48 + whole % 10
        whole //= 10
        n += 1
        if whole == 0:
            break
    for k in range(n - 1, -1, -1):
        buf[pos] = digits[k]
        pos += 1
    if decimals > 0:
        buf[pos] = 46  # '.'
        pos += 1
        frac = scaled % scale
        for k in range(decimals - 1, -1, -1):
            buf[pos + k] = 48 + frac % 10
            frac //= 10
        pos += decimals
    return pos


@njit(cache=True, nogil=True)
def _format(a: np.ndarray, a_len: np.ndarray, a_row: np.ndarray, b: np.ndarray,
            b_len: np.ndarray, b_row: np.ndarray, c: np.ndarray, c_len: np.ndarray,
            c_row: np.ndarray, numbers: np.ndarray,
            decimals: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    n_rows, n_cols = numbers.shape
    size = n_rows * (a.shape[1] + b.shape[1] + c.shape[1] + 3 + n_cols * 24 + 1)
    buf = np.empty(size, dtype=np.uint8)
    digits = np.empty(24, dtype=np.uint8)
    pos = 0
    for i in range(n_rows):
        for text, length, row in ((a, a_len, a_row[i]), (b, b_len, b_row[i]),
                                  (c, c_len, c_row[i])):
            for k in range(length[row]):
                buf[pos] = text[row, k]
                pos += 1
            buf[pos] = 44  # ','
            pos += 1
        for j in range(n_cols):
            value = numbers[i, j]
            if value == value and abs(value) < 1e14:  # NaN or out of range: an empty field
                pos = _put_fixed(buf, pos, value, decimals[j], digits)
            buf[pos] = 44 if j < n_cols - 1 else 10
            pos += 1
    return buf[:pos]


#: A text column for :func:`format_table`: the encoded texts (:func:`encode_column`) and, per
#: row of the table, which of them it shows.
TextColumn = tuple[np.ndarray, np.ndarray, np.ndarray]


def format_table(first: TextColumn, second: TextColumn, third: TextColumn,
                 numbers: np.ndarray, decimals: np.ndarray) -> bytes:
    """CSV lines: three text columns, each (matrix, lengths, row index per line), then the
    numbers in fixed point with ``decimals[j]`` digits; NaN or |value| >= 1e14 gives an empty
    field.  One compiled pass over the whole table."""
    text: bytes = _format(*first, *second, *third,
                          np.ascontiguousarray(numbers, dtype=np.float64),
                          np.asarray(decimals, dtype=np.int64)).tobytes()
    return text


def format_rows(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray],
                third: tuple[np.ndarray, np.ndarray], numbers: np.ndarray,
                decimals: np.ndarray) -> bytes:
    """CSV lines: three text columns (from :func:`encode_column`, one text per row; a one-row
    column repeats) then the numbers (see :func:`format_table`)."""
    rows = np.arange(numbers.shape[0], dtype=np.int64)
    zeros = np.zeros_like(rows)
    a, b, c = ((m, n, zeros if m.shape[0] == 1 else rows) for m, n in (first, second, third))
    return format_table(a, b, c, numbers, decimals)
