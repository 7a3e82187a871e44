"""The page's card window (/api/units with order, filter, offset, limit) and the DC grid summary
(/api/status grid), in-process against the arrays, without a browser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apis_emulator.engine import Emulator
from apis_emulator.web.app import create_app
from test_page_parts import Client

UNITS = 30


@pytest.fixture()
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    em = make_emulator(n_units=UNITS, solar=700.0, load=0.3, households=5,
                       start="2019-05-01T10:00:00")
    em.set_dcdc("E001", mode="0x0014", dvg=350, dig=2.3, drg=0.0)
    for unit_id, dig in (("E004", 1.0), ("E007", 2.0), ("E011", 0.5)):
        em.set_dcdc(unit_id, mode="0x0002", dvg=350, dig=dig)
    em.set_dcdc("E020", mode="0x0041", dvg=350, dig=1.5)
    for k in range(1, UNITS + 1):
        em.set_emu(f"E{k:03d}", {"rsoc": float((k * 37) % 90 + 5)})  # all different
    em.advance(200)
    return em


@pytest.fixture()
def client(emulator: Emulator) -> Client:
    return Client(create_app(emulator, emulator.settings, run_in_background=False))


def _all(client: Client) -> dict[str, Any]:
    table: dict[str, Any] = client.get("/api/units").json()
    return table


def test_window_is_a_slice_of_the_sorted_matching_units(client: Client) -> None:
    """rsoc ascending from the 5th, 7 of them: the same units as sorting every unit here."""
    table = _all(client)
    order = sorted(range(UNITS), key=lambda i: table["rsoc"][i])
    window = client.get("/api/units", params={"fields": "rsoc,mode", "order": "rsoc-asc",
                                              "offset": "5", "limit": "7"}).json()
    assert window["ids"] == [table["ids"][i] for i in order[5:12]]
    assert window["rsoc"] == sorted(window["rsoc"])
    assert (window["total"], window["matched"], window["offset"]) == (UNITS, UNITS, 5)
    assert set(window) == {"time", "version", "ids", "rsoc", "mode", "total", "matched",
                           "offset"}


@pytest.mark.parametrize(("text", "expected"), [
    ("e00", ["E001", "E002", "E003", "E004", "E005", "E006", "E007", "E008", "E009"]),  # ids
    ("GIVE", ["E004", "E007", "E011"]),  # a role, in any case
    ("0x0041", ["E020"]),  # a mode code
    ("nobody", []),  # nothing matches
])
def test_filter_matches_id_name_mode_and_role(client: Client, text: str,
                                              expected: list[str]) -> None:
    window = client.get("/api/units", params={"filter": text, "limit": "100"}).json()
    assert window["ids"] == expected
    assert window["matched"] == len(expected)


def test_orders_by_power_and_role(client: Client) -> None:
    """|grid power| descending and by role (REF, GIVE, TAKE, WAIT), ties in id order."""
    table = _all(client)
    strongest = client.get("/api/units", params={"order": "wg-abs", "limit": "3"}).json()
    expected = sorted(range(UNITS), key=lambda i: -abs(table["wg"][i]))[:3]
    assert strongest["ids"] == [table["ids"][i] for i in expected]
    roles = client.get("/api/units", params={"order": "mode", "limit": "6"}).json()
    assert roles["ids"] == ["E001", "E004", "E007", "E011", "E020", "E002"]


@pytest.mark.parametrize(("query", "field", "accepted"), [
    ({"order": "random"}, "order", "one of id, rsoc-desc"),  # no such order
    ({"offset": "-1"}, "offset", "a whole number >= 0"),  # before the first unit
    ({"limit": "0"}, "limit", "a whole number in [1, "),  # an empty window
    ({"filter": "x" * 101}, "filter", "a text of at most 100 characters"),  # too long
])
def test_window_refusals_name_the_parameter(client: Client, query: dict[str, str], field: str,
                                            accepted: str) -> None:
    answer = client.get("/api/units", params=query)
    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert answer.json()["accepted"].startswith(accepted)


def test_grid_summary_counts_and_sums(client: Client, emulator: Emulator) -> None:
    """The DC grid view's summary: the reference, the givers strongest first, the sums [W]."""
    grid = client.get("/api/status").json()["grid"]
    u = emulator.units
    wg = {uid: float(u.wg[i]) for i, uid in enumerate(u.ids)}
    assert grid["ref"]["n"] == 1 and grid["ref"]["ids"] == ["E001"]
    assert grid["ref"]["w"] == pytest.approx(-wg["E001"])
    assert grid["ref"]["units"][0]["dvg"] == 350.0
    assert grid["give"]["n"] == 3
    assert [x["id"] for x in grid["give"]["units"]] == ["E007", "E004", "E011"]  # 2, 1, 0.5 A
    assert grid["give"]["w"] == pytest.approx(sum(abs(wg[k]) for k in ("E004", "E007", "E011")))
    assert [x["id"] for x in grid["take"]["units"]] == ["E020"]
    assert grid["wait"] == UNITS - 5
    active = ("E001", "E004", "E007", "E011", "E020")
    assert grid["max_w"] == pytest.approx(max(50.0, *(abs(wg[k]) for k in active)))
