"""The page with 100 units on a running emulation: Auto Refresh, live plots, light requests."""

from __future__ import annotations

import re
import time
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

expect.set_options(timeout=20_000)
UNITS = 100


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageServer]:
    data = write_page_dataset(tmp_path_factory.mktemp("data"), households=10)
    srv = start_page_server(tmp_path_factory.mktemp("serve"), data, units=UNITS,
                            acceleration=300, extra=["--start", "2019-05-01T09:00:00"])
    srv.get("/set/dcdc/E001?mode=0x0014&dvg=350&dig=2.3&drg=0")
    srv.get("/set/dcdc/E002?mode=0x0002&dvg=350&dig=1")
    srv.get("/set/dcdc/E003?mode=0x0041&dvg=350&dig=1")
    yield srv
    srv.stop()


@pytest.fixture()
def network() -> NetworkLog:
    return NetworkLog()


def _check_network(log: NetworkLog, server: PageServer) -> None:
    assert log.urls, "no request recorded"
    assert log.foreign(server.url) == [], "the page requested another host"
    assert log.errors == [], f"script errors: {log.errors}"


def _clock(page: Any) -> str:
    return page.inner_text("#emu-time")


def test_page_opens_with_100_units(browser: Any, server: PageServer,
                                   network: NetworkLog) -> None:
    """100 cards, each with its values; filter and sort keep the layout usable."""
    with open_page(browser, server, "?auto=0", network) as (page, _):
        cards = page.locator("#cards .card")
        expect(cards).to_have_count(UNITS)
        expect(page.locator("#unit-count")).to_have_text(str(UNITS))
        last = page.locator('#cards .card[data-unit="E100"]')
        last.scroll_into_view_if_needed()
        expect(last.locator(".soc-v")).to_have_text(re.compile(r"^\d+\.\d %$"))
        expect(page.locator("#d-id")).to_have_text("E001")
        page.fill("#filter", "E05")
        expect(page.locator("#cards .card:visible")).to_have_count(10)
        page.fill("#filter", "take")
        expect(page.locator("#cards .card:visible")).to_have_count(1)
        page.fill("#filter", "")
        page.select_option("#sort", "rsoc-asc")
        values = page.locator("#cards .card .soc-v").all_inner_texts()
        numbers = [float(v.split()[0]) for v in values]
        assert numbers == sorted(numbers)
        page.locator('#cards .card[data-unit="E057"]').click()
        expect(page.locator("#d-id")).to_have_text("E057")
    _check_network(network, server)


def test_auto_refresh_shows_values_advancing(browser: Any, server: PageServer,
                                             network: NetworkLog) -> None:
    """Checked: the clock, cards and details follow the emulation; unchecked: they stand still."""
    with open_page(browser, server, "?every=1", network) as (page, _):
        assert page.is_checked("#auto-refresh")
        assert page.input_value("#refresh-every") == "1"
        first = _clock(page)
        card = page.locator('#cards .card[data-unit="E002"]')
        shown = card.inner_text()  # rsoc, PV, load, battery flow
        info = page.inner_text("#d-info")  # the open unit's document, with its time
        expect(page.locator("#emu-time")).not_to_have_text(first)
        expect(card).not_to_have_text(shown)
        expect(page.locator("#d-info")).not_to_have_text(info)
        # the page's clock follows the server's
        shown = time.strptime(_clock(page), "%Y/%m/%d %H:%M:%S")
        actual = time.strptime(server.get("/api/status")["time"], "%Y/%m/%d-%H:%M:%S")
        assert 0 <= time.mktime(actual) - time.mktime(shown) <= 3 * 300
        # unchecked: nothing moves while the emulation goes on
        page.uncheck("#auto-refresh")
        page.wait_for_timeout(1500)
        frozen = _clock(page)
        page.wait_for_timeout(3000)
        assert _clock(page) == frozen
        assert server.get("/api/status")["time"].replace("-", " ") != frozen
        page.check("#auto-refresh")
        expect(page.locator("#emu-time")).not_to_have_text(frozen)
        # default interval of the specification: 5 s
    with open_page(browser, server, "", network) as (page, _):
        assert page.input_value("#refresh-every") == "5"
        assert page.is_checked("#auto-refresh")
    _check_network(network, server)


def test_refresh_fetches_only_what_is_shown(browser: Any, server: PageServer,
                                            network: NetworkLog) -> None:
    """With 100 units a refresh is a handful of requests, never one per unit or the whole log."""
    with open_page(browser, server, "?every=1", network) as (page, log):
        paths = wait_for_paths(page, log, server.url, len(log.urls),  # 3 refreshes and more
                               lambda ps: sum(p.startswith("/api/units?") for p in ps) >= 4)
    refreshes = sum(1 for p in paths if p.startswith("/api/units?"))  # the cards' window
    assert refreshes >= 3, paths
    assert all(p.startswith(("/api/status", "/api/units", "/api/unit/E001", "/api/history",
                             "/static/favicon")) for p in paths), paths
    assert len(paths) <= 6 * refreshes
    assert not any(p.startswith("/get/") for p in paths)
    _check_network(network, server)


def test_live_plots_fill(browser: Any, server: PageServer, network: NetworkLog) -> None:
    """The community and unit plots hold the sampled history and grow with new samples."""
    with open_page(browser, server, "?every=1", network) as (page, _):
        expect(page.locator("#community-plot canvas")).to_have_count(1)
        expect(page.locator("#unit-plot canvas")).to_have_count(1)
        count = "() => apisPage.state.hist.community.t.length"
        page.wait_for_function(f"({count})() >= 3")
        before = page.evaluate(count)
        page.wait_for_function(f"({count})() > {before}")
        unit = page.evaluate("() => apisPage.state.hist.unit")
        assert len(unit["t"]) >= 3
        assert any(v is not None and v > 0 for v in unit["pv"])  # a May morning
        community = page.evaluate("() => apisPage.state.hist.community")
        assert max(v for v in community["dcgrid"] if v is not None) == pytest.approx(350, abs=1)
        expect(page.locator("#grid-summary")).to_contain_text("1 REF (E001)")
        expect(page.locator("#community-totals")).to_contain_text("kWh")
    _check_network(network, server)
