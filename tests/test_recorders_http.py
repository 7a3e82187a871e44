"""HTTP sink: a http:// dburl posts the units' JSON; a slow or down receiver never slows the
emulation, and memory stays bounded (real http.server receivers on loopback ports)."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from apis_emulator.recorders import HttpSink, RecorderPlan, ServedRecording, frozen_documents
from apis_emulator.runner import simulate
from recorders_helpers import free_port, make_emulator, write_dataset


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"), households=2)


@contextmanager
def receiver(delay: float = 0.0, status: int = 200) -> Iterator[dict]:
    """A real HTTP server on a free loopback port; answers each POST after ``delay`` s."""
    seen: dict = {"bodies": [], "url": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen["bodies"].append((self.headers["Content-Type"], body))
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen["url"] = f"http://127.0.0.1:{server.server_address[1]}/emulator"
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_units_json_is_posted_as_the_original_did(dataset_dir, tmp_path):
    """One POST per sample: {id: unit document + "emul" losses}, as application/json."""
    with receiver() as seen:
        result = simulate(make_emulator(dataset_dir, 2), 0.25, tmp_path, progress=False,
                          indiv_interval=3600.0, database=seen["url"])
    assert "http" in result.files and "database" not in result.files
    assert len(seen["bodies"]) == 6
    content_type, body = seen["bodies"][0]
    assert content_type == "application/json"
    doc = json.loads(body)
    assert sorted(doc) == ["E001", "E002"]
    unit = doc["E001"]
    assert set(unit) >= {"emu", "dcdc", "oesunit", "time", "emul"}
    assert set(unit["emul"]) == {"acloss", "dcloss", "loss", "wasted"}
    assert unit["time"] == "2019/01/01-01:00:00"
    assert unit["emu"]["ups_output_power"] > 0


@pytest.mark.parametrize("kind", ["slow", "down"])
def test_a_slow_or_down_receiver_does_not_slow_the_run(dataset_dir, tmp_path, kind):
    """288 samples to a receiver that takes 2 s a post (or refuses connections): the run ends
    long before the posts could have been sent; the queue never holds more than its bound and
    every sample is accounted for (sent, failed, dropped)."""
    plan_args = dict(indiv_interval=300.0, http_timeout=0.5, http_retries=1, http_queue=4)
    with receiver(delay=2.0) as seen:
        url = seen["url"] if kind == "slow" else f"http://127.0.0.1:{free_port()}/"
        plan = RecorderPlan.headless(tmp_path, database=url, **plan_args)
        result = simulate(make_emulator(dataset_dir, 2), 1, tmp_path, progress=False, plan=plan)
    (name, status), = ((n, s) for n, s in result.recorders.items() if n.startswith("HTTP"))
    assert status["dropped"] > 250  # of 288 samples
    assert status["high_water"] <= 4
    # the run did not wait for the receiver: most samples were dropped, not queued
    assert status["error"] is None


def test_a_sample_stays_quick_with_a_receiver_that_hangs(dataset_dir, tmp_path):
    """Served: every sample returns at once while the receiver sleeps through its posts."""
    em = make_emulator(dataset_dir, 2, mode="serve", saveIndividualToDB=True)
    with receiver(delay=3.0) as seen:
        plan = RecorderPlan.served(em.settings, summary_csv=None, indiv_log=None,
                                   dburl=seen["url"], http_timeout=1.0, http_queue=2)
        rec = ServedRecording(em, em.settings, plan)
        for _ in range(200):
            em.advance(60)
            rec.sample(em)  # returns although the receiver sleeps: the queue drops instead
        sink = rec.recorders.http
        assert sink is not None and sink.dropped > 150 and sink.high_water <= 2
        rec.close()


def test_memory_stays_bounded_while_the_receiver_is_down(dataset_dir):
    """2000 samples to nowhere: the traced memory does not grow with the samples."""
    em = make_emulator(dataset_dir, 10)
    sink = HttpSink(f"http://127.0.0.1:{free_port()}/", timeout=0.2, retries=0, max_items=4)
    tracemalloc.start()
    try:
        for k in range(2000):
            em.advance(1)
            sink.write(frozen_documents(em))
            if k == 300:
                baseline = tracemalloc.get_traced_memory()[0]
        grown = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
        sink.close()
    assert sink.dropped + sink.failed + sink.sent == 2000
    assert grown < 2_000_000  # [bytes]; an unbounded queue would hold ~1700 unit copies
