"""The built-in sharing controller, served: a real uvicorn server on a free loopback port, httpx.

Each test starts ``python -m apis_emulator serve 4 --controller apis`` in a temporary working
directory (web_support.start_server), at night on a small data set (no PV), and forces the
batteries' charge with ``/set/emu`` (allowed while the controller drives the converters): E001
at 95 % is *excess* and asks to discharge, E002 at 40 % is *short* and asks to charge, E003 and
E004 at 70 % are *scarce* (they only accept).  With the shipped scenario and policy, deals of
50 Wh between E001 and E002 follow one another for as long as the tests run.

The controller runs at a time scale of 60 (``--time-scale``: House-Keeping and Grid Master
every 300 emulated s, as when its clock follows an acceleration of 60) and the emulation at
acceleration 240 in ticks of 0.25 s: 60 emulated s a tick, as at acceleration 60 with the
default tick of 1 s, so the run is the one of acceleration 60, four times faster on the wall
clock.  A deal is made within a wall second or two, starts within ~3 s and is delivered ~3 s
later.  Every wait is bounded (a test fails instead of hanging) and nothing asserts on
wall-clock durations: "later" is always measured on the emulated clock (``/api/status``).
"""

from __future__ import annotations

import csv
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from apis_emulator.control import DEAL_COLUMNS, OPERATION_MODES
from web_support import Server, start_server, write_dataset

T = TypeVar("T")
TIME_SCALE = 60  # a 50 Wh deal at ~350 W runs over two Grid Master ticks: seen "started"
ACCELERATION = 4 * TIME_SCALE  # with SLEEPTIME: the run of acceleration TIME_SCALE, 4 × faster
SLEEPTIME = 0.25  # [s] wall time of a tick: 60 emulated s, as at acceleration 60 by default
WAIT_S = 45.0  # the longest a single wait may take before the test fails
FORCED_RSOC = {"E001": 95, "E002": 40, "E003": 70, "E004": 70}  # [%]
DCDC_COMMAND = "/set/dcdc/E003?mode=0x0041&dvg=350&dig=1&drg=0"
DEAL_KEYS = {"deal_id", "created", "activated", "started", "request_unit", "type",
             "charge_unit", "discharge_unit", "deal_wh", "current_a", "master", "state",
             "cumulated_wh"}


# ---------------------------------------------------------------------- helpers
def wait_for(read: Callable[[], T], done: Callable[[T], bool], what: str,
             timeout: float = WAIT_S) -> T:
    """Read until ``done(value)``; fail naming ``what`` (and the last value) after ``timeout``."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}; last value: {value!r}")
        time.sleep(0.25)
        value = read()
    return value


def start_sharing(root: Path, extra: list[str] | None = None) -> Server:
    """A served controller on 4 units at night, with the batteries forced as FORCED_RSOC."""
    data = write_dataset(root / "data", households=4, pv_peak_w=1500.0, load_kw=(0.25, 0.05, 5))
    server = start_server(root / "serve", data, units=4,
                          env={"APIS_EMULATOR_SLEEPTIME": str(SLEEPTIME)}, extra=[
        "--acceleration", str(ACCELERATION), "--time-scale", str(TIME_SCALE),
        "--start", "2019-06-01T02:00:00", "--controller", "apis", *(extra or [])])
    with server.client() as client:
        for unit_id, rsoc in FORCED_RSOC.items():
            client.get(f"/set/emu/{unit_id}?rsoc={rsoc}").raise_for_status()
    return server


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    srv = start_sharing(tmp_path)
    yield srv
    srv.stop()


@pytest.fixture()
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def deals(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/get/deals")
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def emulated_s(client: httpx.Client) -> float:
    return float(client.get("/api/status").json()["emulated_s"])


def ids(listed: list[dict[str, Any]]) -> set[str]:
    return {d["deal_id"] for d in listed}


def set_mode(client: httpx.Client, mode: str) -> None:
    response = client.get(f"/set/operationMode/{mode}")
    assert response.status_code == 200, response.text
    assert response.json() == {"controller": "apis", "operation_mode": mode}
    assert client.get("/get/operationMode").json()["operation_mode"] == mode


def running(client: httpx.Client) -> dict[str, Any]:
    """/get/deals once a deal has started (the converters carry its current)."""
    return wait_for(lambda: deals(client),
                    lambda d: any(x["state"] == "started" for x in d["active"]),
                    "a started deal")


def house_keeping_s(client: httpx.Client) -> float:
    """apis-main's House-Keeping period on the emulated clock [s]: 5 s × time scale."""
    return 5.0 * float(deals(client)["time_scale"])


# ---------------------------------------------------------------------- tests
def test_deals_start_and_are_delivered(client: httpx.Client) -> None:
    """Autonomous: E001 (excess) gives to E002 (short); a deal ends when its 50 Wh are counted."""
    first = running(client)
    assert first["controller"] == "apis" and first["operation_mode"] == "autonomous"
    deal = next(x for x in first["active"] if x["state"] == "started")
    assert set(deal) == DEAL_KEYS
    assert (deal["discharge_unit"], deal["charge_unit"]) == ("E001", "E002")
    assert deal["deal_wh"] == 50 and deal["current_a"] > 0
    assert first["voltage_reference"] in ("E001", "E002")
    assert first["units"]["E002"]["status"] == "short"
    assert first["units"]["E002"]["deals"] >= 1
    assert first["units"]["E003"]["status"] == "scarce" and first["units"]["E003"]["deals"] == 0
    done = wait_for(lambda: deals(client), lambda d: deal["deal_id"] in ids(d["finished"]),
                    f"{deal['deal_id']} to finish")
    ended = next(x for x in done["finished"] if x["deal_id"] == deal["deal_id"])
    assert ended["end_reason"] == "amount"
    assert ended["cumulated_wh"] > ended["deal_wh"]  # apis-main ends it once passed
    assert ended["ended"] >= ended["started"]  # same text format: compares as time
    assert done["today"]["deals"] >= 1
    assert done["today"]["shared_in"] > 0 and done["today"]["shared_out"] > 0
    assert client.get("/get/operationMode").json() == {
        "controller": "apis", "operation_mode": "autonomous", "accepted": list(OPERATION_MODES)}


def test_operation_mode_refusals(client: httpx.Client) -> None:
    """A mode that does not exist is a 400 naming the accepted ones; a cross-site page gets 403."""
    response = client.get("/set/operationMode/sleep")
    assert response.status_code == 400
    body = response.json()
    assert "sleep" in body["error"]
    for mode in OPERATION_MODES:
        assert mode in body["accepted"]
    response = client.get("/set/operationMode/stop", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert client.get("/get/operationMode").json()["operation_mode"] == "autonomous"


def test_heteronomous_makes_no_new_deal_and_lets_running_ones_finish(
        client: httpx.Client) -> None:
    """heteronomous: the deals listed right after the switch are all there will be.

    What is checked: every deal id in /get/deals (active and finished) from the switch on was
    already listed in the first /get/deals read after the switch answered; each deal active
    then ends with end_reason ``amount``; then, for three House-Keeping periods of emulated
    time after the last one ended (E002 still short: autonomous would have made a deal by
    then), no deal appears.  Back to autonomous, a new deal is made (the wait was long
    enough to see one).
    """
    running(client)
    set_mode(client, "heteronomous")
    known = deals(client)
    active = ids(known["active"])
    listed = active | ids(known["finished"])
    assert active, "the deals ran out before the switch: nothing to let finish"

    def read() -> dict[str, Any]:
        now = deals(client)
        seen = ids(now["active"]) | ids(now["finished"])
        assert seen <= listed, f"new deals in heteronomous mode: {sorted(seen - listed)}"
        return now

    after = wait_for(read, lambda d: not d["active"], "the running deals to finish")
    for deal in after["finished"]:
        if deal["deal_id"] in active:
            assert deal["end_reason"] == "amount", deal
    assert active <= ids(after["finished"])
    quiet_until = emulated_s(client) + 3 * house_keeping_s(client)

    def quiet() -> float:
        read()
        return emulated_s(client)

    wait_for(quiet, lambda t: t >= quiet_until, "three House-Keeping periods without a deal")
    assert deals(client)["units"]["E002"]["status"] == "short"  # it still asks for energy
    set_mode(client, "autonomous")
    wait_for(lambda: deals(client), lambda d: bool(ids(d["active"]) - listed),
             "a new deal back in autonomous mode")


def test_stop_ends_running_deals_then_manual_hands_the_converters_over(
        client: httpx.Client) -> None:
    """stop: the deals end (force_stop) and the converters stay the controller's (409);
    manual: an outside /set/dcdc is applied and stays applied."""
    started = running(client)
    refused = client.get(DCDC_COMMAND)
    assert refused.status_code == 409
    assert "/set/operationMode/manual" in refused.json()["error"]
    set_mode(client, "stop")
    active = ids(deals(client)["active"])
    assert active, f"the deals ended before stop: nothing was stopped ({started})"
    stopped = wait_for(lambda: deals(client), lambda d: not d["active"], "the deals to stop")
    reasons = {d["deal_id"]: d["end_reason"] for d in stopped["finished"]}
    assert {reasons[i] for i in active} == {"force_stop"}
    assert client.get(DCDC_COMMAND).status_code == 409  # stop: every converter held at WAIT
    set_mode(client, "manual")
    applied = client.get(DCDC_COMMAND)
    assert applied.status_code == 200, applied.text
    assert applied.json()["status"]["status"] == "0x0041"
    # two Grid Master ticks later the converter is still as the Web API set it
    later = emulated_s(client) + 2 * house_keeping_s(client)
    wait_for(lambda: emulated_s(client), lambda t: t >= later, "two Grid Master ticks")
    unit = client.get("/get/dcdc/E003").json()
    assert unit["status"]["status"] == "0x0041" and unit["param"]["dig"] == 1
    assert not deals(client)["active"]


def test_manual_ends_deals_before_handing_the_converters_over(client: httpx.Client) -> None:
    """manual while deals run: the deals end (force_stop), and /set/dcdc is refused (409) for
    as long as one is left, then applied (200).

    Deals only end in manual mode, so a deal still listed *after* an attempt was running
    during it: that attempt must have been refused.
    """
    running(client)
    assert client.get(DCDC_COMMAND).status_code == 409
    set_mode(client, "manual")

    def attempt() -> int:
        status = client.get(DCDC_COMMAND).status_code
        left = deals(client)["active"]
        assert status in (200, 409)
        assert status == 409 or not left, f"applied while {ids(left)} still run"
        return status

    wait_for(attempt, lambda status: status == 200, "the converters to be handed over")
    after = deals(client)
    assert not after["active"]
    assert after["finished"][0]["end_reason"] == "force_stop"
    assert client.get("/get/dcdc/E003").json()["status"]["status"] == "0x0041"


def test_deals_csv_after_sigterm(tmp_path: Path) -> None:
    """A clean stop writes every finished deal to data/output/deals.csv (beside the summary),
    and the deals still open as run_end."""
    srv = start_sharing(tmp_path)
    try:
        with srv.client() as client:
            listed = wait_for(lambda: deals(client), lambda d: len(d["finished"]) >= 2,
                              "two finished deals")
        assert srv.stop(signal.SIGTERM) == 0
    finally:
        srv.stop(signal.SIGKILL)
    folder = srv.cwd / "data" / "output"
    assert (folder / "summary.csv").exists()
    with open(folder / "deals.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == DEAL_COLUMNS
        rows = {row["deal_id"]: row for row in reader}
    for deal in listed["finished"]:
        row = rows[deal["deal_id"]]
        for key in ("created", "activated", "started", "ended", "request_unit", "type",
                    "charge_unit", "discharge_unit", "end_reason"):
            assert row[key] == str(deal[key]), (key, row, deal)
        assert int(row["deal_wh"]) == deal["deal_wh"]
        assert float(row["cumulated_wh"]) == pytest.approx(deal["cumulated_wh"])
    for deal in listed["active"]:  # ended later: by amount, or open at the stop
        assert rows[deal["deal_id"]]["end_reason"] in ("amount", "run_end")
    numbers = sorted(int(i[1:]) for i in rows)
    assert numbers == list(range(1, len(numbers) + 1))  # no deal lost, none twice


def test_without_a_controller(tmp_path: Path) -> None:
    """No --controller: no deals, no operation mode to set, /set/dcdc is the caller's."""
    data = write_dataset(tmp_path / "data", households=4)
    srv = start_server(tmp_path / "serve", data, units=4, extra=["--acceleration", "60"])
    try:
        with srv.client() as client:
            assert deals(client) == {"controller": "none", "operation_mode": None,
                                     "active": [], "finished": []}
            assert client.get("/get/operationMode").json() == {
                "controller": "none", "operation_mode": None, "accepted": list(OPERATION_MODES)}
            refused = client.get("/set/operationMode/autonomous")
            assert refused.status_code == 400
            assert "--controller apis" in refused.json()["accepted"]
            assert client.get(DCDC_COMMAND).status_code == 200
        assert srv.stop(signal.SIGTERM) == 0
    finally:
        srv.stop(signal.SIGKILL)
    assert not (srv.cwd / "data" / "output" / "deals.csv").exists()
