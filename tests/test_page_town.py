"""The page with 10,000 units (a town at acceleration 10, Δt 1 s) in Debian's chromium: only the
cards on screen are in the page and a refresh touches only those; scrolling, the filter, the
sort and the details panel work on every unit."""

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
    write_page_dataset,
)

expect.set_options(timeout=20_000)
UNITS = 10_000
#: Cards of one screen at the test's 1400 × 1000 viewport (3 columns × ≤ 11 rows, details open).
SCREENFUL = 60
#: Counts, for each refresh, the cards whose content changed (a MutationObserver).
WATCH_CARDS = """() => {
  window.touched = [];
  const seen = new Set();
  new MutationObserver((records) => {
    for (const r of records) {
      const card = (r.target.nodeType === 1 ? r.target : r.target.parentElement).closest('.card');
      if (card) seen.add(card.dataset.unit);
    }
  }).observe(document.getElementById('cards'),
             {subtree: true, childList: true, characterData: true, attributes: true});
  let last = document.body.dataset.version;
  new MutationObserver(() => {  // a refresh ends by setting body[data-version]
    if (document.body.dataset.version !== last) {
      last = document.body.dataset.version;
      window.touched.push(seen.size);
      seen.clear();
    }
  }).observe(document.body, {attributes: true, attributeFilter: ['data-version']});
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageServer]:
    data = write_page_dataset(tmp_path_factory.mktemp("data"), households=10)
    srv = start_page_server(tmp_path_factory.mktemp("serve"), data, units=UNITS,
                            acceleration=10, timeout=120.0,
                            extra=["--step", "1", "--start", "2019-05-01T09:00:00"])
    srv.get("/set/dcdc/E001?mode=0x0014&dvg=350&dig=2.3&drg=0")
    srv.get("/set/dcdc/E002?mode=0x0002&dvg=350&dig=1")
    srv.get("/set/dcdc/E003?mode=0x0041&dvg=350&dig=1")
    srv.get("/set/emu/E5000?rsoc=3")  # the emptiest battery of the town
    yield srv
    srv.stop()


def _cards(page: Any) -> Any:
    return page.locator("#cards .card")


def test_town_page(browser: Any, server: PageServer) -> None:
    """First values, refreshes touching one screen of cards, scrolling to E10000, the filter,
    the sort, the details panel with Set."""
    network = NetworkLog()
    with open_page(browser, server, "?every=1", network) as (page, log):
        expect(page.locator("#unit-count")).to_have_text(str(UNITS))
        expect(page.locator("#grid-summary")).to_contain_text("1 REF (E001)")
        expect(page.locator("#grid-summary")).to_contain_text(f"{UNITS - 3} waiting")
        assert 0 < _cards(page).count() <= SCREENFUL
        # refreshes: values advance, and each touches only cards on screen
        start = len(log.urls)
        page.evaluate(WATCH_CARDS)
        card = page.locator('#cards .card[data-unit="E002"]')
        shown = card.inner_text()
        expect(card).not_to_have_text(shown)
        page.wait_for_function("window.touched.length >= 3")
        touched = page.evaluate("window.touched")
        assert max(touched) <= SCREENFUL, touched
        assert max(touched) > 0, touched
        # and none of those refreshes (3 or more) read /get/… (the whole log: 13 MB)
        assert not any(p.startswith("/get/") for p in log.paths(server.url)[start:])
        # scrolled to the end: the last units, and still one screen of cards
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        expect(page.locator('#cards .card[data-unit="E10000"]')).to_be_visible()
        assert _cards(page).count() <= SCREENFUL
        # the filter: across every unit, not only those on screen
        page.evaluate("window.scrollTo(0, 0)")
        page.fill("#filter", "E1000")
        expect(_cards(page)).to_have_count(2)  # E1000 and E10000
        expect(page.locator("#unit-match")).to_have_text("2 match")
        page.fill("#filter", "take")
        expect(_cards(page)).to_have_count(1)
        expect(_cards(page).first).to_have_attribute("data-unit", "E003")
        page.fill("#filter", "")
        # the sort: the emptiest battery of 10,000 comes first
        page.select_option("#sort", "rsoc-asc")
        expect(_cards(page).first).to_have_attribute("data-unit", "E5000")
        page.select_option("#sort", "id")
        # the details of a unit found by the filter, and Set through them
        page.fill("#filter", "E10000")
        expect(_cards(page)).to_have_count(1)
        page.locator('#cards .card[data-unit="E10000"]').click()
        expect(page.locator("#d-id")).to_have_text("E10000")
        expect(page.locator("#f-dvg")).to_have_value(re.compile(r"^350"))
        unit = server.get("/get/unit/E10000")
        assert float(page.input_value("#f-rsoc")) == pytest.approx(unit["emu"]["rsoc"], abs=0.5)
        page.fill("#f-rsoc", "33")
        page.click("#d-set")
        expect(page.locator("#message")).to_contain_text("Set E10000")
        assert server.get("/get/unit/E10000")["emu"]["rsoc"] == pytest.approx(33.0, abs=0.5)
        expect(page.locator("#d-state")).to_contain_text("WAIT")
    assert network.foreign(server.url) == [], "the page requested another host"
    assert network.errors == [], f"script errors: {network.errors}"
