"""A town served: 10,000 units at acceleration 10 and Δt 1 s start and answer apis-main's read
of the last unit and the whole log, plain or in gzip (timings: bench/served_town.py)."""

from __future__ import annotations

from pathlib import Path

import httpx

from web_support import local_safety_errors, start_server, write_dataset

UNITS = 10_000
PLAIN = {"Accept-Encoding": "identity"}  # httpx asks for gzip unless told otherwise


def test_ten_thousand_units_start_and_answer(tmp_path: Path) -> None:
    """/get/unit/E10000 as apis-main reads it, /get/log with every unit, gzip when asked."""
    data = write_dataset(tmp_path / "data", households=10)
    server = start_server(tmp_path / "serve", data, units=UNITS, timeout=120.0,
                          extra=["--acceleration", "10", "--step", "1"])
    try:
        with httpx.Client(base_url=server.url, timeout=60.0) as client:
            answer = client.get("/get/unit/E10000", headers=PLAIN)
            assert answer.status_code == 200
            assert "content-encoding" not in answer.headers
            unit = answer.json()
            assert unit["oesunit"]["id"] == "E10000"
            assert local_safety_errors(unit) == []
            plain = client.get("/get/log", headers=PLAIN)
            assert plain.status_code == 200
            assert "content-encoding" not in plain.headers
            docs = plain.json()
            assert len(docs) == UNITS
            assert list(docs)[0] == "E001" and list(docs)[-1] == "E10000"
            assert docs["E10000"]["oesunit"] == unit["oesunit"]
            assert docs["E10000"]["dcdc"]["status"]["status"] == "0x0000"  # waiting
            packed = client.get("/get/log", headers={"Accept-Encoding": "gzip"})
            assert packed.headers["content-encoding"] == "gzip"
            assert packed.num_bytes_downloaded < len(plain.content) / 4
            assert packed.json().keys() == docs.keys()
            status = client.get("/api/status").json()
            assert status["units"] == UNITS
        assert server.stop() == 0
    finally:
        server.stop()
