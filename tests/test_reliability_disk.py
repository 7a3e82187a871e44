"""Save All on a full disk and on a read-only one: a real server saving onto a small tmpfs.

The test mounts a 256 KiB tmpfs (it runs as root, as `make test` does; it is skipped, saying
why, where mounting is not allowed), points ``lastSavePath`` into it, fills it, and asks for
Save All: a 507 JSON error naming the setting, the previous save file intact (Load Last loads
it), no temporary file left, the emulator running.  Read-only: 500, the same promises.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fault_support import fill
from web_support import Server, start_server, write_dataset


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                           str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): "
                    "the full-disk test needs root and mount(8)")


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (make test runs as root)")
    where = tmp_path / "disk"
    _mount_tmpfs(where, "256k")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture()
def server(tmp_path: Path, small_disk: Path) -> Iterator[Server]:
    """A server (frozen power flow: its documents hold still) saving onto the small disk."""
    data = write_dataset(tmp_path / "data")
    srv = start_server(tmp_path / "serve", data, units=3,
                       env={"APIS_EMULATOR_LASTSAVEPATH": str(small_disk / "lastSave.json"),
                            "APIS_EMULATOR_DOUPDATES": "false"})
    yield srv
    srv.stop()


def _units(client: httpx.Client) -> dict[str, object]:
    units = client.get("/get/log").json()
    for doc in units.values():
        doc.pop("time")
        doc["emu"].pop("system_time")
    return dict(units)


def _still_running(client: httpx.Client) -> None:
    """The clock advances (waiting for the next runner tick, bounded) and the API answers."""
    first = client.get("/api/status").json()["emulated_s"]
    for _ in range(300):
        if client.get("/api/status").json()["emulated_s"] > first:
            break
        time.sleep(0.05)
    assert client.get("/api/status").json()["emulated_s"] > first
    assert client.get("/get/unit/E001").status_code == 200


def test_save_all_on_a_full_disk(server: Server, small_disk: Path) -> None:
    with server.client() as client:
        assert client.get("/set/emu/E001?rsoc=41").status_code == 200
        assert client.get("/save").status_code == 200
        saved = (small_disk / "lastSave.json").read_bytes()
        filler = fill(small_disk)
        for _ in range(20):  # more units: a larger save than the room left
            client.get("/add/unit")
        client.get("/set/emu/E001?rsoc=77")
        refused = client.get("/save")
        body = refused.json()
        assert refused.status_code == 507, body
        assert body["field"] == "lastSavePath" and body["value"] == str(small_disk /
                                                                          "lastSave.json")
        assert "previous save is kept" in body["error"] and body["accepted"]
        assert (small_disk / "lastSave.json").read_bytes() == saved
        assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "lastSave.json"]
        _still_running(client)
        assert len(client.get("/get/log").json()) == 23  # nothing was undone by the refusal
        loaded = client.get("/get/last")  # Load Last: the previous save, whole
        assert loaded.status_code == 200 and sorted(loaded.json()) == ["E001", "E002", "E003"]
        assert loaded.json()["E001"]["emu"]["rsoc"] == 41
        filler.unlink()  # room again: Save All works again
        client.get("/set/emu/E002?rsoc=66")
        assert client.get("/save").status_code == 200
        assert json.loads((small_disk / "lastSave.json").read_bytes()) != json.loads(saved)


def test_save_all_on_a_read_only_disk(server: Server, small_disk: Path) -> None:
    with server.client() as client:
        assert client.get("/save").status_code == 200
        saved = (small_disk / "lastSave.json").read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        before = _units(client)
        refused = client.get("/save")
        assert refused.status_code == 500 and refused.json()["field"] == "lastSavePath"
        assert "previous save is kept" in refused.json()["error"]
        assert (small_disk / "lastSave.json").read_bytes() == saved
        assert _units(client) == before
        _still_running(client)
