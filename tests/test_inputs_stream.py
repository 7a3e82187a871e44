"""The data-set reader as a stream (issue 11): blocks of lines, every number once in memory.

A load file is read a block of text at a time (``inputs.textrows.CHUNK_BYTES``); these tests
make the blocks small so that households, lines and bad cells fall across block boundaries,
and check that the numbers are those of ``float`` to the last bit.
"""

from __future__ import annotations

import gzip
import tracemalloc

import numpy as np
import pytest

from apis_emulator.errors import DataFileError
from apis_emulator.inputs import DAYS, read_load_csv, read_solar_csv, textrows
from conftest import load_array, write_load


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of about 1 kB of text: a few lines each."""
    monkeypatch.setattr(textrows, "CHUNK_BYTES", 1000)


def random_load(households: int, seed: int = 3) -> np.ndarray:
    """(households, 365, 48) [kW] with many digits, so that rounding would show."""
    return np.random.default_rng(seed).uniform(0, 3, (households, DAYS, 48))


@pytest.mark.parametrize("layout", ["rows", "wide"])
def test_small_blocks_read_every_number_to_the_last_bit(tmp_path, small_blocks, layout):
    """Households cut across blocks; the values are float(text) exactly."""
    load = random_load(3)
    path = write_load(tmp_path / "load.csv", load, layout)
    got = read_load_csv(path, layout)
    assert got.shape == (3, DAYS * 48)
    assert got.tobytes() == load.reshape(3, -1).tobytes()


def test_rows_of_households_may_interleave(tmp_path, small_blocks):
    """A household's rows in the order they come, wherever they are in the file."""
    load = random_load(2)
    path = write_load(tmp_path / "load.csv", load)
    header, *body = path.read_text().splitlines()
    first, second = body[:DAYS], body[DAYS:]
    mixed = [line for pair in zip(second, first, strict=True) for line in pair]
    path.write_text("\n".join([header, *mixed]) + "\n")
    got = read_load_csv(path)
    np.testing.assert_array_equal(got, load[::-1].reshape(2, -1))  # household 2 came first


def test_crlf_bom_blank_lines_and_gzip(tmp_path, small_blocks):
    """Windows line ends, a byte-order mark, blank lines and gzip change nothing."""
    load = random_load(2)
    text = write_load(tmp_path / "plain.csv", load).read_text()
    lines = text.splitlines()
    lines.insert(100, "")
    lines.insert(500, "   ")
    packed = gzip.compress(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    (tmp_path / "load.csv.gz").write_bytes(packed)
    np.testing.assert_array_equal(read_load_csv(tmp_path / "load.csv.gz"), load.reshape(2, -1))


def test_a_bad_cell_in_a_later_block_names_its_line(tmp_path, small_blocks):
    """Line numbers count across blocks (and blank lines)."""
    path = write_load(tmp_path / "load.csv", load_array(0.5, 2))
    lines = path.read_text().splitlines()
    lines.insert(3, "")
    cells = lines[600].split(",")
    cells[20] = "x1"
    lines[600] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError) as info:
        read_load_csv(path)
    assert (info.value.line, info.value.column) == (601, 21)
    assert "'x1' is not a number" in str(info.value)


def test_not_utf8_in_a_later_block_names_its_byte(tmp_path, small_blocks):
    path = write_load(tmp_path / "load.csv", load_array(0.5, 1))
    raw = bytearray(path.read_bytes())
    raw[5000] = 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match=r"not UTF-8 text \(byte 5000\)"):
        read_load_csv(path)


def test_solar_read_from_blocks(tmp_path, small_blocks):
    solar = np.random.default_rng(5).uniform(0, 900, (DAYS, 24))
    path = tmp_path / "solar.csv"
    path.write_text("".join(",".join(repr(float(v)) for v in row) + "\n" for row in solar))
    assert read_solar_csv(path).tobytes() == solar.reshape(-1).tobytes()


def test_a_load_file_is_held_once(tmp_path, monkeypatch):
    """Peak memory while reading 40 households stays near one copy of their numbers (the old
    reader held the text, its cells and two copies of the numbers: over 4 copies)."""
    monkeypatch.setattr(textrows, "CHUNK_BYTES", 1 << 16)
    households = 40
    path = write_load(tmp_path / "load.csv", load_array(0.5, households))
    numbers = households * DAYS * 48 * 8  # [B] of float64
    tracemalloc.start()
    try:
        load = read_load_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert load.shape == (households, DAYS * 48)
    assert peak < 1.5 * numbers, (peak, numbers)
