"""The page's own endpoints and parts without a browser: check, units table, history, pace."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Callable

import httpx
import numpy as np
import pytest

from apis_emulator.engine import Emulator
from apis_emulator.engine.rules import check_command as check_unit_values
from apis_emulator.runner.pace import PaceMeter
from apis_emulator.web.app import create_app
from apis_emulator.web.history import History
from conftest import assert_same_state, state_of


@pytest.fixture()
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    em = make_emulator(n_units=3, solar=800.0, load=0.3, households=3)
    em.advance(90)
    return em


class Client:
    """A synchronous client calling the ASGI app in-process (no server, no lifespan)."""

    def __init__(self, app: object):
        self.transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]

    def get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport,
                                         base_url="http://page.test") as c:
                return await c.get(path, params=params)

        return asyncio.run(call())


@pytest.fixture()
def client(emulator: Emulator) -> Client:
    return Client(create_app(emulator, emulator.settings, run_in_background=False))


# one row per case: values the page would send for E001, and whether the API accepts them
CASES = [
    ({"mode": "0x0014", "dvg": "350", "dig": "2.3", "drg": "0"}, True),  # a voltage reference
    ({"mode": "0x0002", "dvg": "350.0", "dig": "1.0E-1", "p1": "120"}, True),  # Java's numbers
    ({"mode": "0x0014", "dvg": "2000", "dig": "2.3"}, False),  # dvg above 1000 V
    ({"mode": "0x0042", "dvg": "350", "dig": "1"}, False),  # no such mode code
    ({"mode": "0x0002", "dvg": "350", "dig": "abc"}, False),  # not a number
    ({"mode": "0x0002", "dvg": "350", "dig": "-1"}, False),  # negative current
    ({"mode": "0x0002", "dvg": "350", "dig": "inf"}, False),  # infinite
    ({"mode": "0x0002", "dvg": "350", "dig": "1", "drg": "1.5"}, False),  # droop above 1
    ({"mode": "0x0002", "dvg": "350", "dig": "1", "drg": ""}, False),  # emptied field
    ({"mode": "0x0002", "dvg": "350", "dig": "1", "p2": "2e6"}, False),  # meter out of range
    ({"dvg": "350", "dig": "1"}, False),  # /set/dcdc needs the mode
    ({"rsoc": "40"}, True),  # rsoc alone
    ({"rsoc": "1e-4", "ups_output_power": "300"}, True),  # two EMU values
    ({"rsoc": "101"}, False),  # rsoc above 100 %
    ({"rsoc": "nan"}, False),  # NaN
    ({"ups_output_power": "-5"}, False),  # negative power
    ({"charge_discharge_power": "x"}, False),  # not a number
]


def _set_path(values: dict[str, str]) -> str:
    return "/set/emu/E001" if "rsoc" in values or "ups_output_power" in values \
        or "charge_discharge_power" in values else "/set/dcdc/E001"


@pytest.mark.parametrize(("values", "accepted"), CASES)
def test_check_agrees_with_the_api(client: Client, emulator: Emulator,
                                   values: dict[str, str], accepted: bool) -> None:
    """/api/check refuses exactly what /set/* refuses, with the same message, changing nothing."""
    before = state_of(emulator)
    check = client.get("/api/check/E001", params=values)
    assert_same_state(before, state_of(emulator))
    applied = client.get(_set_path(values), params=values)
    assert (check.status_code == 200) is accepted
    assert (applied.status_code == 200) is accepted
    if not accepted:
        assert check.status_code == applied.status_code == 400
        assert check.json()["error"] == applied.json()["error"]
        assert check.json()["value"] == applied.json()["value"]
        assert check.json()["errors"][0]["field"] == applied.json()["field"]
        assert_same_state(before, state_of(emulator))


def test_check_lists_every_refused_field() -> None:
    """All of a unit's refusals at once, so the page can show each next to its field."""
    errors = check_unit_values({"mode": "0x0002", "dvg": "2000", "dig": "x", "rsoc": "-1",
                                "color": "red"})
    assert [e.field for e in errors] == ["dvg", "dig", "rsoc", "color"]
    assert check_unit_values({"mode": "0x0000", "dvg": "0", "dig": "0", "rsoc": "100"}) == []


def test_check_unknown_unit_is_404(client: Client) -> None:
    response = client.get("/api/check/E999", params={"rsoc": "50"})
    assert response.status_code == 404
    assert response.json()["field"] == "oesid"


def test_units_table_matches_the_documents(client: Client) -> None:
    """/api/units: one column per field, the same numbers as /get/log (rounded to 1 mW)."""
    client.get("/set/dcdc/E001", params={"mode": "0x0014", "dvg": "350", "dig": "2.3"})
    client.get("/set/dcdc/E002", params={"mode": "0x0041", "dvg": "350", "dig": "1.5"})
    table = client.get("/api/units").json()
    docs = client.get("/get/log").json()
    assert table["ids"] == ["E001", "E002", "E003"]
    for i, unit_id in enumerate(table["ids"]):
        doc = docs[unit_id]
        dcdc, emu = doc["dcdc"], doc["emu"]
        expected = {"display": doc["oesunit"]["display"], "mode": dcdc["status"]["status"],
                    "rsoc": emu["rsoc"], "pv": emu["pvc_charge_power"],
                    "load": emu["ups_output_power"], "p2": dcdc["powermeter"]["p2"],
                    "flow": emu["battery_current"] * emu["battery_voltage"],
                    "p1": dcdc["powermeter"]["p1"], "vg": dcdc["meter"]["vg"],
                    "ig": dcdc["meter"]["ig"], "wg": dcdc["meter"]["wg"],
                    "wb": dcdc["meter"]["wb"], "dvg": dcdc["vdis"]["dvg"],
                    "dig": dcdc["param"]["dig"], "drg": dcdc["vdis"]["drg"],
                    "bypass": emu["ups_operation_mode"]["mode"] == 5}
        for key, value in expected.items():
            if isinstance(value, float):
                assert table[key][i] == pytest.approx(value, abs=6e-4), (unit_id, key)
            else:
                assert table[key][i] == value, (unit_id, key)
    assert table["ig"][1] == 1.5
    assert client.get("/api/units", params={"fields": "rsoc,mode"}).json().keys() == {
        "time", "version", "ids", "rsoc", "mode"}
    refused = client.get("/api/units", params={"fields": "rsoc,nope"})
    assert refused.status_code == 400 and refused.json()["field"] == "fields"


def test_status_and_unit(client: Client, emulator: Emulator) -> None:
    status = client.get("/api/status").json()
    assert status["time"] == emulator.time_string()
    assert status["units"] == 3 and status["keeps_pace"] is True
    assert status["epoch"] - status["emulated_s"] == pytest.approx(
        emulator.start_time.replace(tzinfo=dt.UTC).timestamp())
    assert client.get("/api/unit/E002").json() == client.get("/get/log").json()["E002"]
    assert client.get("/api/unit/E009").status_code == 404


# ---------------------------------------------------------------------- history
def test_history_samples_once_per_spacing_in_a_bounded_ring(emulator: Emulator) -> None:
    """At most one sample per emulated minute; the oldest fall out; since= returns the rest."""
    history = History(size=4, spacing=60.0)
    times = []
    for _ in range(7):
        history.sample(emulator)
        history.sample(emulator)  # the same minute again: no new sample
        times.append(emulator.emulated_s)
        emulator.advance(60)
    series = history.unit_series("E001")
    assert list(series["t"]) == times[-4:]
    assert len(series["rsoc"]) == 4 and not np.isnan(series["rsoc"]).any()
    later = history.unit_series("E001", since=times[-2])
    assert list(later["t"]) == times[-1:]
    community = history.community_series()
    assert list(community["t"]) == times[-4:]
    assert community["pv"][-1] == pytest.approx(emulator.units.out[:, 0].sum(), rel=1e-9)


def test_history_follows_added_and_removed_units(emulator: Emulator) -> None:
    """A unit added later has no values before it came; a removed one none after it left."""
    history = History(size=50, spacing=60.0)
    history.sample(emulator)
    for _ in range(12):  # more units than the first column block holds
        emulator.add_unit()
    emulator.advance(60)
    history.sample(emulator)
    emulator.remove_unit()
    emulator.advance(60)
    history.sample(emulator)
    newest = emulator.ids[-1]
    assert newest == "E014"
    e015 = history.unit_series("E015")["rsoc"]
    assert math.isnan(e015[0]) and not math.isnan(e015[1]) and math.isnan(e015[2])
    assert not np.isnan(history.unit_series("E001")["rsoc"]).any()
    assert np.isnan(history.unit_series("E777")["rsoc"]).all()


def test_history_skips_the_state_before_the_first_step(
        make_emulator: Callable[..., Emulator]) -> None:
    em = make_emulator(n_units=1)
    history = History()
    history.sample(em)
    assert history.count == 0
    em.advance(1)
    history.sample(em)
    assert history.count == 1


def test_pace_meter_flags_dropped_time_and_stalls(emulator: Emulator) -> None:
    now = [0.0]
    meter = PaceMeter(clock=lambda: now[0], window=10.0)
    for k in range(5):
        now[0] = float(k)
        meter.record(emulator, behind_s=0.0)
    assert meter.status(0.0, sleeptime=1.0)["keeps_pace"] is True
    now[0] = 5.0
    meter.record(emulator, behind_s=30.0)
    assert meter.status(30.0, sleeptime=1.0)["keeps_pace"] is False
    for k in range(6, 20):
        now[0] = float(k)
        meter.record(emulator, behind_s=30.0)
    assert meter.status(30.0, sleeptime=1.0)["keeps_pace"] is True  # the drop left the window
    now[0] = 30.0
    assert meter.status(30.0, sleeptime=1.0)["keeps_pace"] is False  # no tick for 11 s
