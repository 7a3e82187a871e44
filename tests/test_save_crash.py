"""Save All is atomic: a server killed (SIGKILL) at any moment leaves a complete save file."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from web_support import start_server, write_dataset

KILLS = 50
#: Two servers at a time, each killed KILLS / 2 times in a folder of its own: a start is
#: nearly all of a trial's time, one core's work, and the machine has two.
FOLDERS = 2


def _save_forever(url: str, stop: threading.Event, done: list[int]) -> None:
    with httpx.Client(base_url=url, timeout=2.0) as c:
        while not stop.is_set():
            try:
                if c.get("/save").status_code == 200:
                    done[0] += 1
            except httpx.HTTPError:
                return


def _kill_among_saves(folder: Path, data: Path, kills: int, seed: int) -> int:
    """``kills`` servers started on ``folder`` one after the other, each SIGKILLed while two
    clients Save All; after each kill the save file, if any, is whole; the last one loads
    into a fresh server.  The number of saves answered."""
    rng = random.Random(seed)
    save_file = folder / "jsontmp" / "lastSave.json"
    saves_seen = 0
    for _ in range(kills):
        server = start_server(folder, data, units=3)
        stop, done = threading.Event(), [0]
        savers = [threading.Thread(target=_save_forever, args=(server.url, stop, done))
                  for _ in range(2)]
        for t in savers:
            t.start()
        time.sleep(rng.uniform(0.02, 0.3))
        server.stop(signal.SIGKILL)
        stop.set()
        for t in savers:
            t.join()
        saves_seen += done[0]
        if save_file.exists():
            content = json.loads(save_file.read_bytes())  # complete, valid JSON
            assert sorted(content) == ["E001", "E002", "E003"]
            assert all(0 <= u["emu"]["rsoc"] <= 100 for u in content.values())
    # and the last file loads into a fresh server
    server = start_server(folder, data, units=1)
    try:
        r = httpx.get(server.url + "/get/last")
        assert r.status_code == 200 and sorted(r.json()) == ["E001", "E002", "E003"]
    finally:
        server.stop()
    return saves_seen


def test_sigkill_during_saves_never_leaves_a_broken_file(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", households=3)
    folders = [tmp_path / f"run{k}" for k in range(FOLDERS)]
    with ThreadPoolExecutor(FOLDERS) as pool:
        seen = list(pool.map(lambda k: _kill_among_saves(folders[k], data, KILLS // FOLDERS,
                                                         20261127 + k), range(FOLDERS)))
    assert sum(seen) > KILLS  # the kills did land among saves
