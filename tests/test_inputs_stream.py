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
from apis_emulator.inputs import DAYS, decimals, read_load_csv, read_solar_csv, textrows
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


# ---------------------------------------------------------------------- compiled decimals
def decimal_texts(rng: np.random.Generator, count: int) -> list[str]:
    """Decimals of 1 to 15 significant digits, 0 to 12 after the point, some with a sign or
    leading zeros."""
    texts = []
    for _ in range(count):
        digits = "".join(rng.choice(list("0123456789"), int(rng.integers(1, 16))))
        point = int(rng.integers(0, len(digits) + 1))
        text = digits[:point] + "." + digits[point:] if rng.random() < 0.8 else digits
        texts.append(rng.choice(["", "", "-", "+", "00"]) + text)
    return texts


def test_compiled_decimals_are_float_to_the_last_bit():
    """Every decimal the compiled path takes is exactly float(text)."""
    texts = decimal_texts(np.random.default_rng(7), 6000)
    lines = [",".join(texts[i:i + 6]) for i in range(0, len(texts), 6)]
    scan = decimals.scan_lines(lines, 0, 6)
    expected = np.array([[float(t) for t in texts[i:i + 6]] for i in range(0, len(texts), 6)])
    fast = ~scan.slow
    assert fast.mean() > 0.99  # "." alone or "+" alone are the only misses
    assert scan.values[fast].tobytes() == expected[fast].tobytes()


@pytest.mark.parametrize(("cell", "slow"), [
    ("0.229", False),
    ("1234567890.12345", False),     # 15 significant digits
    ("0.1234567890123456", True),    # 16: left to the exact parser
    ("1e3", True),                   # exponent
    (" 1.5", True),                  # a space
    ("nan", True),
    ("", True),                      # an empty cell
    ("1.2.3", True),
])
def test_what_the_compiled_path_leaves_to_the_exact_parser(cell, slow):
    scan = decimals.scan_lines([f"a,{cell},7"], 1, 1)
    assert bool(scan.slow[0]) is slow
    if not slow:
        assert scan.values[0, 0] == float(cell)


def test_a_scan_counts_cells_and_sees_where_the_key_changes():
    lines = ["d,1,0.5", "d,1,0.5", "d,2,0.5", "d,22,0.5,", "d"]
    scan = decimals.scan_lines(lines, 2, 1, key=1)
    assert scan.cells.tolist() == [3, 3, 3, 4, 1]
    assert scan.key_change.tolist() == [True, False, True, True, True]
    assert scan.slow.tolist() == [False, False, False, False, True]  # too few cells


def test_long_decimals_still_read_exactly(tmp_path):
    """A load file written with repr (17 digits) goes through the exact parser: same bits."""
    load = random_load(2)
    path = write_load(tmp_path / "load.csv", load)
    assert read_load_csv(path).tobytes() == load.reshape(2, -1).tobytes()


def test_more_households_than_the_bound_still_read(tmp_path, monkeypatch):
    """A bound of the lines that is too small (odd line ends, a multi-member gzip) makes the
    array grow: the same numbers."""
    from apis_emulator.inputs import dataset

    monkeypatch.setattr(dataset, "max_lines", lambda path, shortest: 1)
    load = random_load(3)
    path = write_load(tmp_path / "load.csv", load)
    assert read_load_csv(path).tobytes() == load.reshape(3, -1).tobytes()


def test_the_bound_of_a_gzip_file_comes_from_its_trailer(tmp_path):
    text = write_load(tmp_path / "load.csv", load_array(0.5, 2)).read_bytes()
    (tmp_path / "load.csv.gz").write_bytes(gzip.compress(text))
    bound = textrows.max_lines(tmp_path / "load.csv.gz", shortest=103)
    assert bound == len(text) // 103 + 2 >= text.count(b"\n") + 1
