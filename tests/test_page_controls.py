"""The page's controls in Debian's chromium against a real server (specification §4.1).

The server here runs at acceleration 0.001, so its state stands still between two requests: a
value on the page can be compared with the API exactly.  Each top-bar button and each unit
button is clicked and its effect is checked through the API afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
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

expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageServer]:
    data = write_page_dataset(tmp_path_factory.mktemp("data"), households=4)
    srv = start_page_server(tmp_path_factory.mktemp("serve"), data, units=4, acceleration=0.001)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def network() -> NetworkLog:
    """Every request the browser made in this module."""
    return NetworkLog()


@pytest.fixture()
def clean(server: PageServer) -> PageServer:
    """Standard units (4 of them) and the test's acceleration, set through the API."""
    server.get("/restart")
    server.get("/set/acc/0.001")
    return server


@pytest.fixture()
def page(browser: Any, clean: PageServer, network: NetworkLog) -> Iterator[Any]:
    """The page with Auto Refresh off (so only the clicked buttons read or change)."""
    with open_page(browser, clean, "?auto=0", network) as (pg, log):
        yield pg
    assert log.foreign(clean.url) == [], "the page requested another host"
    assert log.errors == [], f"script errors: {log.errors}"


def cards(page: Any) -> Any:
    return page.locator("#cards .card")


def open_unit(page: Any, unit_id: str) -> None:
    page.locator(f'#cards .card[data-unit="{unit_id}"]').click()
    expect(page.locator("#d-id")).to_have_text(unit_id)
    expect(page.locator("#f-dvg")).not_to_have_value("")


def fill(page: Any, values: dict[str, str]) -> None:
    for key, value in values.items():
        if key == "mode":
            page.select_option("#f-mode", value)
        else:
            page.fill(f"#f-{key}", value)


# ---------------------------------------------------------------------- what is shown
def test_page_shows_every_unit_with_its_fields(page: Any, clean: PageServer) -> None:
    """Cards for E001–E004; the details hold ①–⑩ as fields and ⑪–⑱ with their units."""
    expect(cards(page)).to_have_count(4)
    assert cards(page).evaluate_all("cs => cs.map(c => c.dataset.unit)") == [
        "E001", "E002", "E003", "E004"]
    expect(page.locator("#emu-time")).to_have_text(clean.get("/api/status")["time"]
                                                   .replace("-", " "))
    expect(page.locator("#pace")).to_contain_text("keeps pace")
    open_unit(page, "E002")
    unit = clean.unit("E002")
    labels = page.locator("#unit-form label").all_inner_texts()
    for label in ("Charge discharge power", "rsoc", "ups output power", "pvc charge power",
                  "Powermeter all", "Powermeter p2", "Status", "Grid current", "Grid voltage",
                  "Droop ratio"):
        assert any(label in text for text in labels), label
    assert page.input_value("#f-mode") == unit["dcdc"]["status"]["status"]
    assert float(page.input_value("#f-dvg")) == unit["dcdc"]["vdis"]["dvg"]
    assert float(page.input_value("#f-dig")) == unit["dcdc"]["param"]["dig"]
    assert float(page.input_value("#f-rsoc")) == pytest.approx(unit["emu"]["rsoc"], abs=0.01)
    meters = page.locator("#details").inner_text()
    for label in ("Grid power", "Grid current", "Grid voltage", "Battery power",
                  "Battery current", "Battery voltage", "Battery status", "Operating power"):
        assert label in meters, label
    meter = unit["dcdc"]["meter"]
    assert float(page.inner_text("#m-vb")) == pytest.approx(meter["vb"], abs=0.05)
    assert float(page.inner_text("#m-op")) == pytest.approx(meter["wb"] - meter["wg"], abs=0.05)
    assert float(page.inner_text("#m-rsoc")) == pytest.approx(unit["emu"]["rsoc"], abs=0.005)


# ---------------------------------------------------------------------- top bar
def test_read_all_shows_changes_made_elsewhere(page: Any, clean: PageServer) -> None:
    """Read All: the cards and the open details show what the emulator holds now."""
    open_unit(page, "E001")
    clean.get("/set/emu/E003?rsoc=12.5")
    clean.get("/set/dcdc/E001?mode=0x0014&dvg=350&dig=2.3&drg=0")
    e003 = page.locator('#cards .card[data-unit="E003"] .soc-v')
    expect(e003).not_to_have_text("12.5 %")
    page.click("#read-all")
    expect(e003).to_have_text("12.5 %")
    expect(page.locator('#cards .card[data-unit="E001"] .tag')).to_have_text("REF")
    expect(page.locator("#f-mode")).to_have_value("0x0014")


def test_set_all_sends_every_units_entered_values(page: Any, clean: PageServer) -> None:
    """Set All: values entered for two units replace theirs; the others stay as they were."""
    open_unit(page, "E001")
    fill(page, {"mode": "0x0014", "dvg": "350", "dig": "2.3", "rsoc": "61"})
    open_unit(page, "E002")
    fill(page, {"mode": "0x0002", "dig": "1", "p1": "120"})
    expect(page.locator('#cards .card.edited')).to_have_count(2)
    page.click("#set-all")
    expect(page.locator('#cards .card.edited')).to_have_count(0)
    e001, e002 = clean.unit("E001"), clean.unit("E002")
    assert e001["dcdc"]["status"]["status"] == "0x0014"
    assert e001["emu"]["rsoc"] == pytest.approx(61.0)
    assert e002["dcdc"]["status"]["status"] == "0x0002"
    assert e002["dcdc"]["param"]["dig"] == 1.0
    assert e002["dcdc"]["powermeter"]["p1"] == 120.0
    assert e002["dcdc"]["meter"]["ig"] == pytest.approx(-1.0)
    assert clean.unit("E003")["dcdc"]["status"]["status"] == "0x0000"


def test_set_all_with_a_refused_value_sets_nothing(page: Any, clean: PageServer) -> None:
    """Set All: one refused value anywhere → its message is shown and no unit changes."""
    before = clean.get("/get/log")
    open_unit(page, "E001")
    fill(page, {"rsoc": "70"})
    open_unit(page, "E004")
    fill(page, {"mode": "0x0041", "dig": "250"})
    page.click("#set-all")
    error = page.locator('.err[data-err="dig"]')
    expect(error).to_have_text("dig=250.0 is not accepted: a finite number in [0, 100] [A]")
    expect(page.locator("#d-id")).to_have_text("E004")
    expect(page.locator('#cards .card[data-unit="E004"]')).to_have_class(
        "card m-WAIT open edited refused")
    after = clean.get("/get/log")
    for unit_id in ("E001", "E004"):
        assert after[unit_id]["emu"]["rsoc"] == before[unit_id]["emu"]["rsoc"]
        assert after[unit_id]["dcdc"]["status"] == before[unit_id]["dcdc"]["status"]
        assert after[unit_id]["dcdc"]["param"] == before[unit_id]["dcdc"]["param"]


def test_save_all_then_load_last(page: Any, clean: PageServer) -> None:
    """Save All writes jsontmp/lastSave.json; Load Last brings those units back."""
    clean.get("/set/emu/E002?rsoc=42")
    clean.get("/set/dcdc/E002?mode=0x0041&dvg=350&dig=1.5")
    page.click("#save-all")
    expect(page.locator("#message")).to_contain_text("Saved 4 units")
    saved = clean.cwd / "jsontmp" / "lastSave.json"
    assert saved.exists()
    clean.get("/set/emu/E002?rsoc=90")
    clean.get("/set/dcdc/E002?mode=0x0000&dvg=350&dig=2")
    clean.get("/add/unit")
    page.click("#load-last")
    expect(page.locator("#message")).to_contain_text("Loaded 4 units")
    e002 = clean.unit("E002")
    assert e002["emu"]["rsoc"] == pytest.approx(42.0)
    assert e002["dcdc"]["status"]["status"] == "0x0041"
    assert e002["dcdc"]["param"]["dig"] == 1.5
    assert sorted(clean.get("/get/log")) == ["E001", "E002", "E003", "E004"]
    expect(cards(page)).to_have_count(4)
    expect(page.locator('#cards .card[data-unit="E002"] .soc-v')).to_have_text("42.0 %")


def test_reset_restores_the_standard_units(page: Any, clean: PageServer) -> None:
    """Reset: every unit back to the standard parameters (waiting converter, initial rsoc)."""
    clean.get("/set/dcdc/E001?mode=0x0014&dvg=350&dig=2.3&drg=0")
    clean.get("/set/dcdc/E003?mode=0x0041&dvg=350&dig=1")
    clean.get("/set/emu/E003?rsoc=5")
    clean.get("/add/unit")
    page.click("#read-all")
    expect(cards(page)).to_have_count(5)
    page.click("#reset")
    expect(cards(page)).to_have_count(4)
    units = clean.get("/get/log")
    assert sorted(units) == ["E001", "E002", "E003", "E004"]
    for unit in units.values():
        assert unit["dcdc"]["status"]["status"] == "0x0000"
        assert unit["emu"]["rsoc"] == pytest.approx(50.0)
        assert unit["dcdc"]["meter"]["vg"] == 0.0
    expect(page.locator('#cards .card[data-unit="E003"] .tag')).to_have_text("WAIT")


def test_add_and_remove_unit_change_the_cards(page: Any, clean: PageServer) -> None:
    """Add Unit appends E005 (id = highest + 1); Remove Unit removes the highest id."""
    expect(cards(page)).to_have_count(4)
    page.click("#add-unit")
    expect(cards(page)).to_have_count(5)
    expect(page.locator('#cards .card[data-unit="E005"]')).to_be_visible()
    assert sorted(clean.get("/get/log")) == ["E001", "E002", "E003", "E004", "E005"]
    page.click("#add-unit")
    expect(cards(page)).to_have_count(6)
    expect(page.locator("#unit-count")).to_have_text("6")
    page.click("#remove-unit")
    page.click("#remove-unit")
    page.click("#remove-unit")
    expect(cards(page)).to_have_count(3)
    assert sorted(clean.get("/get/log")) == ["E001", "E002", "E003"]
    assert page.locator('#cards .card[data-unit="E004"]').count() == 0


def test_set_acceleration_rate(page: Any, clean: PageServer) -> None:
    """Set Acceleration Rate: the field's number becomes /get/acc; a refused one changes nothing."""
    page.fill("#acc", "20")
    page.click("#set-acc")
    expect(page.locator("#message")).to_contain_text("Acceleration set to 20")
    assert clean.get("/get/acc") == 20
    page.fill("#acc", "-3")
    page.click("#set-acc")
    expect(page.locator("#acc-error")).to_have_text(
        "acceleration='-3' is not accepted: a finite number > 0 and <= 1e+06")
    assert clean.get("/get/acc") == 20
    clean.get("/set/acc/0.001")


# ---------------------------------------------------------------------- per unit
def test_set_with_new_values_changes_the_unit(page: Any, clean: PageServer) -> None:
    """Set: every entered value (EMU and converter) replaces the unit's own."""
    clean.get("/set/dcdc/E001?mode=0x0014&dvg=350&dig=2.3&drg=0")
    open_unit(page, "E003")
    fill(page, {"rsoc": "37.5", "mode": "0x0041", "dig": "1.25", "dvg": "352", "drg": "0.05",
                "p1": "410"})
    expect(page.locator('.field[data-field="rsoc"]')).to_have_class("field f-emu dirty")
    page.click("#d-set")
    expect(page.locator("#message")).to_have_text("Set E003")
    unit = clean.unit("E003")
    assert unit["emu"]["rsoc"] == pytest.approx(37.5)
    dcdc = unit["dcdc"]
    assert dcdc["status"]["status"] == "0x0041"
    assert (dcdc["param"]["dig"], dcdc["vdis"]["dvg"], dcdc["vdis"]["drg"]) == (1.25, 352.0, 0.05)
    assert dcdc["powermeter"]["p1"] == 410.0
    assert dcdc["meter"]["ig"] == pytest.approx(1.25)
    expect(page.locator("#f-rsoc")).to_have_value("37.5")
    expect(page.locator('.field.dirty')).to_have_count(0)
    expect(page.locator('#cards .card[data-unit="E003"] .tag')).to_have_text("TAKE")
    expect(page.locator("#m-ig")).to_have_text("1.250")


def test_refused_value_shows_its_message_and_changes_nothing(page: Any,
                                                              clean: PageServer) -> None:
    """A refused value: the API's message next to the field; neither it nor the others apply."""
    before = clean.unit("E002")
    open_unit(page, "E002")
    fill(page, {"rsoc": "20", "mode": "0x0002", "dvg": "2000", "dig": "abc"})
    page.click("#d-set")
    expect(page.locator('.err[data-err="dvg"]')).to_have_text(
        "dvg=2000.0 is not accepted: a finite number in [0, 1000] [V]")
    expect(page.locator('.err[data-err="dig"]')).to_have_text(
        "dig='abc' is not accepted: a number, e.g. 350.0, 2.3 or 1.0E-4")
    expect(page.locator('.field[data-field="dvg"]')).to_have_class("field f-dcdc dirty invalid")
    expect(page.locator('.err[data-err="rsoc"]')).to_have_text("")
    after = clean.unit("E002")
    assert after["emu"]["rsoc"] == before["emu"]["rsoc"]
    assert after["dcdc"]["status"] == before["dcdc"]["status"]
    assert after["dcdc"]["vdis"] == before["dcdc"]["vdis"]
    assert after["dcdc"]["param"] == before["dcdc"]["param"]
    # the API says the same when asked directly
    direct = __import__("httpx").get(clean.url + "/set/dcdc/E002?mode=0x0002&dvg=2000&dig=1")
    assert direct.status_code == 400
    assert direct.json()["error"] == "dvg=2000.0 is not accepted: a finite number in [0, 1000] [V]"
    # corrected values go through
    fill(page, {"dvg": "350", "dig": "1"})
    expect(page.locator('.err[data-err="dvg"]')).to_have_text("")
    page.click("#d-set")
    expect(page.locator("#message")).to_have_text("Set E002")
    unit = clean.unit("E002")
    assert unit["emu"]["rsoc"] == pytest.approx(20.0)
    assert unit["dcdc"]["status"]["status"] == "0x0002"


def test_read_discards_edits_and_shows_the_unit(page: Any, clean: PageServer) -> None:
    """Read: the unit's fields show the emulator's values again (unsent edits dropped)."""
    open_unit(page, "E004")
    fill(page, {"dvg": "300"})
    clean.get("/set/dcdc/E004?mode=0x0000&dvg=345&dig=2")
    page.click("#d-read")
    expect(page.locator("#f-dvg")).to_have_value("345")
    expect(page.locator("#f-dig")).to_have_value("2")
    expect(page.locator(".field.dirty")).to_have_count(0)
    expect(page.locator('#cards .card.edited')).to_have_count(0)


def _ramp_up(server: PageServer) -> None:
    """Let the emulated clock run until the DC grid has risen to its voltage (120 s)."""
    server.get("/set/acc/600")
    deadline = time.monotonic() + 20.0
    while server.get("/api/status")["bus_voltage"] < 350.0 and time.monotonic() < deadline:
        time.sleep(0.1)
    server.get("/set/acc/0.001")
    assert server.get("/api/status")["bus_voltage"] == 350.0


def test_dc_grid_view_shows_reference_givers_and_takers(page: Any, clean: PageServer) -> None:
    """The DC grid view: who holds the voltage, who gives, who takes, and the watts."""
    clean.get("/set/dcdc/E001?mode=0x0014&dvg=350&dig=2.3&drg=0")
    clean.get("/set/dcdc/E002?mode=0x0002&dvg=350&dig=1")
    clean.get("/set/dcdc/E003?mode=0x0041&dvg=350&dig=1")
    _ramp_up(clean)
    page.click("#read-all")
    summary = page.locator("#grid-summary")
    expect(summary).to_contain_text("1 REF (E001)")
    expect(summary).to_contain_text("1 giving 350 W")
    expect(summary).to_contain_text("1 taking 350 W")
    expect(summary).to_contain_text("1 waiting")
    nodes = page.locator("#grid-view .node").evaluate_all("ns => ns.map(n => n.dataset.unit)")
    assert sorted(nodes) == ["E001", "E002", "E003"]
    page.locator('#grid-view .node[data-unit="E003"]').click()
    expect(page.locator("#d-id")).to_have_text("E003")


def test_network_log_holds_the_emulator_only(network: NetworkLog, server: PageServer,
                                             tmp_path: Path) -> None:
    """Every request the browser made in this module went to the emulator's own address."""
    assert len(network.urls) > 50
    assert network.foreign(server.url) == []
    paths = network.paths(server.url)
    assert any(p.startswith("/static/vendor/uplot/") for p in paths)
    assert any(p.startswith("/set/dcdc/") for p in paths)
