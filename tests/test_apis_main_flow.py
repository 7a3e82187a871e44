"""apis-main's calls for a deal, as in the contract's wire trace (apis-main-contract.md c.11).

Each request is sent as apis-main builds it (Java number texts, GET), and after every call the
checks apis-main makes hold: Kirchhoff on the bus, wg = vg·ig, the Checkpoint windows and the
LocalSafetyEvaluation of every unit's /get/unit.
"""

from __future__ import annotations

import time
from collections.abc import Set
from pathlib import Path

import httpx
import pytest

from web_support import Server, local_safety_errors, start_server, write_dataset

UNITS = ("E001", "E002", "E003")


@pytest.fixture()
def server(tmp_path: Path):
    data = write_dataset(tmp_path / "data", households=3)
    # Δt 1 s and 10 emulated s a tick, as at the default acceleration 10 (a tick a second),
    # in ticks of 0.25 s: acceleration 40, the grid's ramp (120 emulated s) in 3 s, not 12
    srv = start_server(tmp_path / "run", data, units=3, extra=["--acceleration", "40"],
                       env={"APIS_EMULATOR_SLEEPTIME": "0.25"})
    yield srv
    srv.stop()


def emulated_seconds(text: str) -> float:
    return time.mktime(time.strptime(text, "%Y/%m/%d-%H:%M:%S"))


def check_bus(c: httpx.Client, dynamic: Set[str] = frozenset(UNITS)) -> dict[str, dict]:
    """Kirchhoff, wg = vg·ig and apis-main's safety checks over every unit."""
    units = {u: c.get(f"/get/unit/{u}").json() for u in UNITS}
    meters = [u["dcdc"]["meter"] for u in units.values()]
    assert abs(sum(m["ig"] for m in meters)) < 1e-9
    for m in meters:
        assert m["wg"] == pytest.approx(m["vg"] * m["ig"], abs=1e-9)
    assert len({m["vg"] for m in meters}) == 1  # one bus
    for unit_id, unit in units.items():
        assert local_safety_errors(unit, dynamic=unit_id in dynamic) == [], unit_id
    return units


def checkpoint(c: httpx.Client, unit: str, vg: float | None = None,
               ig: float | None = None) -> None:
    """apis-main's Checkpoint: 100 ms later, up to 3 reads, |vg−t| ≤ 4 V, ||ig|−t| ≤ 0.125 A."""
    for _ in range(3):
        time.sleep(0.1)
        meter = c.get(f"/get/dcdc/status/{unit}").json()["meter"]
        ok_vg = vg is None or abs(meter["vg"] - vg) <= 4.0
        ok_ig = ig is None or abs(abs(meter["ig"]) - ig) <= 0.125
        if ok_vg and ok_ig:
            return
    pytest.fail(f"checkpoint of {unit} failed: {meter} (vg {vg}, ig {ig})")


def set_mode(c: httpx.Client, unit: str, query: str, operation_mode: str) -> dict:
    r = c.get(f"/set/dcdc/{unit}?{query}")
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["status"]["operationMode"] == operation_mode  # apis-main's only reply check
    return reply


def step_current(c: httpx.Client, unit: str, targets: list[str]) -> None:
    """GridCurrentStepping: each reply must echo param.dig (apis-main re-reads it)."""
    for text in targets:
        reply = c.get(f"/set/dcdc/current/{unit}?dig={text}").json()
        assert reply["param"]["dig"] == pytest.approx(float(text))
        assert set(reply) == {"meter", "param"}


def ramp_up(c: httpx.Client) -> None:
    """VR set on a down grid; vg must reach dvg − 4 within 180 emulated seconds."""
    set_mode(c, "E001", "mode=0x0014&dvg=350.0&dig=2.3&drg=0", "Grid Autonomy")
    start = emulated_seconds(c.get("/get/unit/E001").json()["time"])
    seen = []
    for _ in range(400):  # apis-main polls every 5 s; we poll faster and look at emulated time
        unit = c.get("/get/unit/E001").json()
        seen.append(unit["dcdc"]["meter"]["vg"])
        if unit["dcdc"]["meter"]["vg"] >= 346.0:
            assert emulated_seconds(unit["time"]) - start <= 180.0
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"no ramp-up: {seen[-5:]}")
    assert seen[0] < 346.0 and any(0 < v < 346 for v in seen)  # it rose, it did not jump


def test_deal_call_by_call(server: Server) -> None:
    with server.client() as c:
        for u in UNITS:  # poll: all idle, grid down
            assert c.get(f"/get/unit/{u}").json()["dcdc"]["meter"]["vg"] <= 320
        check_bus(c)
        ramp_up(c)
        check_bus(c)
        # authorization: 3 random targets then back; each settles before the 300 ms checkpoint
        for target in ("370.0", "330.0", "340.0", "360.0", "350.0"):
            sent = time.monotonic()
            reply = c.get(f"/set/dcdc/voltage/E001?dvg={target}&drg=0").json()
            assert reply["vdis"]["dvg"] == float(target)
            checkpoint(c, "E001", vg=float(target))
            assert time.monotonic() - sent < 0.3 + 0.5  # + request times on a busy machine
        check_bus(c)
        # deal 1: E002 discharges 1 A into E001 (VR)
        set_mode(c, "E002", "mode=0x0002&dvg=380.0&dig=1.0&drg=0", "Heteronomy CV")
        step_current(c, "E002", ["1.0"])
        checkpoint(c, "E002", ig=1.0)
        units = check_bus(c)
        assert units["E002"]["dcdc"]["meter"]["ig"] == pytest.approx(-1.0)
        assert units["E001"]["dcdc"]["meter"]["ig"] == pytest.approx(1.0)
        # deal 2: E003 charges 1 A; E002 steps to 2 A
        set_mode(c, "E003", "mode=0x0041&dvg=350.0&dig=1.0&drg=0", "Heteronomy CV")
        step_current(c, "E003", ["1.0"])
        checkpoint(c, "E003", ig=1.0)
        step_current(c, "E002", ["2.0"])
        checkpoint(c, "E002", ig=2.0)
        units = check_bus(c)
        assert units["E001"]["dcdc"]["meter"]["ig"] == pytest.approx(1.0)
        assert units["E003"]["dcdc"]["meter"]["wg"] == pytest.approx(350.0)
        # deal 2 ends; then deal 1
        step_current(c, "E002", ["1.0"])
        checkpoint(c, "E002", ig=1.0)
        step_current(c, "E003", ["0.0"])
        checkpoint(c, "E003", ig=0.0)
        set_mode(c, "E003", "mode=0x0000&dvg=350.0&dig=0.0&drg=0", "Waiting")
        step_current(c, "E002", ["0.0"])
        checkpoint(c, "E002", ig=0.0)
        set_mode(c, "E002", "mode=0x0000&dvg=350.0&dig=0.0&drg=0", "Waiting")
        check_bus(c)
        c.get("/set/dcdc/voltage/E001?dvg=310.0&drg=0")
        checkpoint(c, "E001", vg=310.0)
        set_mode(c, "E001", "mode=0x0000&dvg=350.0&dig=0.0&drg=0", "Waiting")
        units = check_bus(c)
        assert all(u["dcdc"]["meter"]["vg"] == 0.0 for u in units.values())  # grid idle
        assert all(u["dcdc"]["meter"]["ig"] == 0.0 for u in units.values())


def test_voltage_reference_hand_over(server: Server) -> None:
    """VR moves E001 → E003 while E002 discharges: two references for a moment (drg 0.039)."""
    with server.client() as c:
        ramp_up(c)
        set_mode(c, "E002", "mode=0x0002&dvg=380.0&dig=1.0&drg=0", "Heteronomy CV")
        step_current(c, "E002", ["1.0"])
        checkpoint(c, "E002", ig=1.0)
        c.get("/set/dcdc/voltage/E001?dvg=350.0&drg=0.039")  # WillHandOver
        set_mode(c, "E003", "mode=0x0014&dvg=350.0&dig=2.3&drg=0.039", "Grid Autonomy")
        units = check_bus(c, dynamic={"E002"})
        shares = [units[u]["dcdc"]["meter"]["ig"] for u in ("E001", "E003")]
        assert shares == pytest.approx([0.5, 0.5])  # equal droop: equal shares
        for text in ("1.3", "0.29999995", "0.0"):  # DidHandOver: the old VR steps down
            step_current(c, "E001", [text])
            units = check_bus(c, dynamic={"E002"})
            assert abs(units["E001"]["dcdc"]["meter"]["ig"]) <= float(text) + 1e-9
        checkpoint(c, "E001", ig=0.0)
        set_mode(c, "E001", "mode=0x0000&dvg=350.0&dig=0.0&drg=0", "Waiting")
        c.get("/set/dcdc/voltage/E003?dvg=350.0&drg=0")  # DidTakeOver: droop back to 0
        units = check_bus(c)
        assert units["E003"]["dcdc"]["meter"]["vg"] == 350.0
        assert units["E003"]["dcdc"]["meter"]["ig"] == pytest.approx(1.0)
        assert units["E001"]["dcdc"]["meter"]["ig"] == 0.0
