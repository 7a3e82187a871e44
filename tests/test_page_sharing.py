"""The page with the built-in sharing controller: deals, operation mode, battery status class.

A real ``serve 4 --controller apis`` process (night, small data set, batteries forced with
``/set/emu``: E001 excess gives to E002 short, E003/E004 scarce; see test_sharing_served.py)
and Debian's chromium.  Each check reads the server's own answer afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from page_conftest import (
    NetworkLog,
    PageServer,
    open_page,
    start_page_server,
    wait_for_paths,
    write_page_dataset,
)

expect.set_options(timeout=40_000)  # a deal is made, ramps up and starts within ~8 s
FORCED_RSOC = {"E001": 95, "E002": 40, "E003": 70, "E004": 70}  # [%]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageServer]:
    """The run of acceleration 60 (a Grid Master tick every 300 emulated s, ticks of the
    emulation of 60 emulated s), twice as fast on the wall clock: the controller's time scale
    kept at 60 (``--time-scale``), acceleration 120 in ticks of 0.5 s."""
    data = write_page_dataset(tmp_path_factory.mktemp("data"), households=4)
    srv = start_page_server(tmp_path_factory.mktemp("serve"), data, units=4, acceleration=120,
                            extra=["--start", "2019-06-01T02:00:00", "--controller", "apis",
                                   "--time-scale", "60"], env={"APIS_EMULATOR_SLEEPTIME": "0.5"})
    for unit_id, rsoc in FORCED_RSOC.items():
        srv.get(f"/set/emu/{unit_id}?rsoc={rsoc}")
    yield srv
    srv.stop()


@pytest.fixture()
def network() -> NetworkLog:
    return NetworkLog()


def _check_network(log: NetworkLog, server: PageServer) -> None:
    assert log.foreign(server.url) == [], "the page requested another host"
    assert log.errors == [], f"script errors: {log.errors}"


def test_active_deals_show_in_the_grid_view(browser: Any, server: PageServer,
                                            network: NetworkLog) -> None:
    """A started deal: its id, giver → taker, Wh of deal_wh and state, as /get/deals has it."""
    with open_page(browser, server, "?every=1&details=0", network) as (page, _):
        row = page.locator("#deals tbody tr.deal.st-started").first
        expect(row).to_be_visible()
        deal_id = row.get_attribute("data-deal")
        assert deal_id and re.fullmatch(r"D\d{7}", deal_id)
        expect(row.locator(".giver")).to_have_text("E001")
        expect(row.locator(".taker")).to_have_text("E002")
        expect(row.locator(".deal-wh")).to_have_text(re.compile(r"^\d+ / 50 Wh$"))
        expect(row.locator(".deal-state")).to_have_text("started")
        listed = server.get("/get/deals")
        deal = next(d for d in listed["active"] + listed["finished"] if d["deal_id"] == deal_id)
        assert (deal["discharge_unit"], deal["charge_unit"], deal["deal_wh"]) == \
            ("E001", "E002", 50)
        # E001, a large-capacity unit in the shipped policy, holds the grid voltage in its deals
        expect(page.locator('#cards .card[data-unit="E001"]')).to_have_class(
            re.compile(r"\bm-REF\b"))
        expect(page.locator('#cards .card[data-unit="E001"] .tag')).to_have_text("REF")
        expect(page.locator("#op-state")).to_have_attribute("data-mode", "autonomous")
        # the energy shared today, once a tick has counted some
        expect(page.locator("#shared-today")).to_have_text(re.compile(r"delivered \d+\.\d\d kWh"))
        expect(page.locator("#shared-today")).not_to_contain_text("delivered 0.00 kWh")
        expect(page.locator("#shared-today")).to_contain_text("deals started today")
        # a deal's unit opens its details
        row.locator(".taker a").click()
        expect(page.locator("#d-id")).to_have_text("E002")
    _check_network(network, server)
    assert "/get/deals" in network.paths(server.url)


def test_unit_details_show_the_battery_status_class(browser: Any, server: PageServer,
                                                    network: NetworkLog) -> None:
    """The details show the unit's status class and remaining Wh, as the controller sees them."""
    with open_page(browser, server, "?every=1#E002", network) as (page, _):
        status = page.locator("#d-sharing .bstatus")
        expect(status).to_have_text("short")
        expect(status).to_have_class(re.compile(r"\bbs-short\b"))
        expect(page.locator("#d-sharing")).to_contain_text("Wh remaining")
        shown = int(page.locator("#d-sharing b").first.inner_text().replace(",", ""))
        remaining = server.get("/get/deals")["units"]["E002"]["remaining_wh"]
        assert abs(shown - remaining) < 100  # a few emulated minutes apart at most
        page.locator('#cards .card[data-unit="E003"]').click()
        expect(page.locator("#d-id")).to_have_text("E003")
        expect(status).to_have_text("scarce")
        assert server.get("/get/deals")["units"]["E003"]["status"] == "scarce"
        # the converter is the controller's: the details say how to hand it over
        expect(page.locator("#d-sharing .driven")).to_contain_text("operation mode manual")
    _check_network(network, server)


def test_operation_mode_control_sets_the_mode(browser: Any, server: PageServer,
                                              network: NetworkLog) -> None:
    """Select + Apply sends /set/operationMode: the server's /get/operationMode agrees."""
    with open_page(browser, server, "?every=1&details=0", network) as (page, _):
        expect(page.locator("#op-mode")).to_have_value("autonomous")
        options = page.locator("#op-mode option").all_inner_texts()
        assert options == server.get("/get/operationMode")["accepted"]
        try:
            for mode in ("heteronomous", "stop", "autonomous"):
                page.select_option("#op-mode", mode)
                page.click("#op-apply")
                expect(page.locator("#op-state")).to_have_attribute("data-mode", mode)
                expect(page.locator("#message")).to_have_text(f"Operation mode set to {mode}")
                assert server.get("/get/operationMode")["operation_mode"] == mode
                expect(page.locator("#op-mode")).to_have_value(mode)
        finally:
            server.get("/set/operationMode/autonomous")
    _check_network(network, server)
    assert [p for p in network.paths(server.url) if p.startswith("/set/operationMode/")] == [
        "/set/operationMode/heteronomous", "/set/operationMode/stop",
        "/set/operationMode/autonomous"]


def test_deals_are_read_only_while_shown(browser: Any, server: PageServer,
                                         network: NetworkLog) -> None:
    """get/deals is read at each refresh only while the grid view is on screen or a unit's
    details are open (the other reads go on)."""
    with open_page(browser, server, "?every=1&details=0", network, viewport=(700, 450)) \
            as (page, log):
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function("!apisPage.state.gridVisible")
        page.wait_for_timeout(1500)  # a refresh already on its way may still read the deals
        start = len(log.urls)
        page.wait_for_timeout(4000)
        hidden = log.paths(server.url)[start:]
        assert sum(p.startswith("/api/units?") for p in hidden) >= 2, hidden  # refreshes went on
        assert "/get/deals" not in hidden, hidden
        # a unit's details need the deals (its status class): read at the next refreshes
        page.locator('#cards .card[data-unit="E004"]').click()
        expect(page.locator("#d-sharing .bstatus")).to_have_text(re.compile(r"\w+"))
        wait_for_paths(page, log, server.url, len(log.urls), lambda ps: "/get/deals" in ps,
                       timeout_ms=2500)
        # details closed and the grid view back on screen
        page.click("#d-close")
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_function("apisPage.state.gridVisible")
        wait_for_paths(page, log, server.url, len(log.urls), lambda ps: "/get/deals" in ps,
                       timeout_ms=2500)
    _check_network(network, server)


def test_page_without_a_controller_has_no_sharing_controls(
        browser: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No --controller: a short note instead of the sharing controls, and no get/deals read."""
    data = write_page_dataset(tmp_path_factory.mktemp("data-none"), households=4)
    srv = start_page_server(tmp_path_factory.mktemp("serve-none"), data, units=4,
                            acceleration=60)
    network = NetworkLog()
    try:
        with open_page(browser, srv, "?every=1#E001", network) as (page, log):
            expect(page.locator("#sharing-none")).to_contain_text("No sharing controller")
            for selector in ("#sharing", "#op-mode", "#op-apply", "#deals", "#d-sharing"):
                expect(page.locator(selector)).to_have_count(0)
            wait_for_paths(page, log, srv.url, len(log.urls),  # refreshes go on, 2 of them
                           lambda ps: sum(p.startswith("/api/units?") for p in ps) >= 2,
                           timeout_ms=5000)
        assert not [p for p in network.paths(srv.url) if p.startswith("/get/deals")]
        _check_network(network, srv)
    finally:
        srv.stop()
