"""DNS rebinding and cross-origin commands, with a real Chromium against a real server.

Chromium reaches the emulator under another name with ``--host-resolver-rules`` (EVIL →
127.0.0.1), as a browser does after an attacker's DNS answer changed: the page under that name,
and a rebinding page's same-origin commands, are refused (403 naming ``allowedHosts``); a
command from a page on another origin is refused (403, cross-site); the emulator's own page,
apis-main's ``localhost:4390`` and IP addresses keep working.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from page_conftest import PageServer, PlaywrightSession, launch_chromium, open_page
from web_support import start_server, write_dataset

EVIL = "evil.example.com"  #: the attacker's name (any name but localhost, .localhost, .test)
#: Chromium's own protections of loopback from other pages, turned off for these tests.
LOCAL_NETWORK_CHECKS = ("LocalNetworkAccessChecks", "BlockInsecurePrivateNetworkRequests",
                        "PrivateNetworkAccessSendPreflights",
                        "PrivateNetworkAccessRespectPreflightResults")
#: What an attacker's page runs: a command and a read, same-origin from where it was served.
ATTACK = """<!doctype html><title>attack</title><script>
window.results = Promise.all([
  fetch(TARGET + '/set/emu/E001?rsoc=7', {mode: MODE}).then(r => r.status, e => 'blocked'),
  fetch(TARGET + '/get/log', {mode: MODE}).then(r => r.status, e => 'blocked'),
]);
</script>"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageServer]:
    """A server whose power flow is frozen: a unit's rsoc holds still unless it is set."""
    data = write_dataset(tmp_path_factory.mktemp("data"))
    srv = start_server(tmp_path_factory.mktemp("serve"), data, units=2,
                       env={"APIS_EMULATOR_DOUPDATES": "false"})
    yield PageServer(srv.process, srv.url, srv.cwd, srv.log_path)
    srv.stop()


@pytest.fixture(scope="module")
def rebinding_chromium(playwright_session: PlaywrightSession) -> Iterator[Any]:
    """Debian's chromium, resolving EVIL to 127.0.0.1 (a rebound DNS name), without its
    own Local Network Access checks (as Firefox, Safari or an older Chromium): a page from
    elsewhere may then reach loopback, and the emulator must refuse by itself.  Launched on
    the session's Playwright driver (tests/conftest.py), beside the page tests' chromium."""
    with playwright_session.lent() as playwright:
        chromium = launch_chromium(playwright, (
            f"--host-resolver-rules=MAP {EVIL} 127.0.0.1",
            "--disable-features=" + ",".join(LOCAL_NETWORK_CHECKS)))
    yield chromium
    with playwright_session.lent():
        chromium.close()


@pytest.fixture()
def browser(playwright_session: PlaywrightSession, rebinding_chromium: Any) -> Iterator[Any]:
    """This module's ``browser``: the rebinding chromium, Playwright's loop lent to the test."""
    with playwright_session.lent():
        yield rebinding_chromium


def _port(server: PageServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _rsoc(server: PageServer) -> float:
    return float(server.unit("E001")["emu"]["rsoc"])


def _attack(browser: Any, page_url: str, target: str, mode: str) -> list[Any]:
    """Open an attacker's page at ``page_url`` (served by the test, as the attacker's server
    did before the DNS answer changed) and return what its two fetches got."""
    context = browser.new_context()
    html = ATTACK.replace("TARGET", repr(target)).replace("MODE", repr(mode))
    context.route(page_url, lambda route: route.fulfill(body=html, content_type="text/html"))
    try:
        page = context.new_page()
        page.goto(page_url)
        return list(page.evaluate("window.results"))
    finally:
        context.close()


def test_the_page_under_another_name_is_refused(browser: Any, server: PageServer) -> None:
    """http://EVIL:PORT/ reaches the server (it resolves to 127.0.0.1) and gets 403."""
    context = browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(f"http://{EVIL}:{_port(server)}/")
        assert response.status == 403
        body = response.json()
        assert body["field"] == "Host" and body["value"] == f"{EVIL}:{_port(server)}"
        assert "allowedHosts" in body["error"] and "allowedHosts" in body["accepted"]
    finally:
        context.close()


def test_a_rebinding_page_can_neither_command_nor_read(browser: Any,
                                                        server: PageServer) -> None:
    """Same-origin fetches of a page served as EVIL: both 403, rsoc unchanged."""
    before = _rsoc(server)
    origin = f"http://{EVIL}:{_port(server)}"
    assert _attack(browser, origin + "/attack.html", origin, "same-origin") == [403, 403]
    assert _rsoc(server) == before != 7


def test_a_command_from_another_origin_is_refused(browser: Any, server: PageServer) -> None:
    """A page elsewhere (another loopback address) sends /set/… to 127.0.0.1: refused by the
    guard's cross-site check, which the server logs; the state is unchanged."""
    before = _rsoc(server)
    results = _attack(browser, "http://127.0.0.2:9/attack.html", server.url, "no-cors")
    assert results == [0, 0]  # opaque answers: the page learns nothing
    assert _rsoc(server) == before != 7
    assert "403" in server.log() and "cross-site request (cross-site)" in server.log()


def test_the_emulators_own_page_works(browser: Any, server: PageServer) -> None:
    """The page at 127.0.0.1 and at localhost loads, and its own commands are applied."""
    for base in (server.url, f"http://localhost:{_port(server)}"):
        named = PageServer(server.process, base, server.cwd, server.log_path)
        with open_page(browser, named) as (page, log):
            status = page.evaluate("fetch('/set/emu/E002?rsoc=61').then(r => r.status)")
            assert status == 200 and log.errors == []
        assert server.unit("E002")["emu"]["rsoc"] == 61


HOSTS = [
    # Host header, status
    ("localhost:4390", 200),  # apis-main's exe/config.json
    ("localhost", 200),
    ("127.0.0.1:4390", 200),
    ("[::1]:4390", 200),
    ("192.168.1.20:4390", 200),  # an address cannot be rebound: any is accepted
    ("app.localhost:4390", 200),  # browsers resolve .localhost to loopback themselves
    ("page.test", 200),  # a reserved name (RFC 6761): nobody outside can serve a page under it
    (f"{EVIL}:4390", 403),
    ("emulator.lan:4390", 403),  # a LAN name: only when allowedHosts lists it
    ("localhost.evil.example.com", 403),
    ("evil.test.example.com", 403),
]


def test_host_header_without_a_browser(server: PageServer) -> None:
    """Every path, reads included, checks the Host; the refusal names the setting."""
    for host, status in HOSTS:
        for path in ("/get/unit/E001", "/get/acc", "/"):
            response = httpx.get(server.url + path, headers={"Host": host})
            assert response.status_code == status, (host, path)
            if status == 403:
                assert response.json()["field"] == "Host" and "allowedHosts" in response.text


def test_allowed_hosts_setting_adds_lan_names(tmp_path: Path) -> None:
    """allowedHosts: an exact name, a .suffix for the names under it; others still refused."""
    data = write_dataset(tmp_path / "data")
    srv = start_server(tmp_path / "serve", data, units=1,
                       env={"APIS_EMULATOR_ALLOWEDHOSTS": "emulator.lan, .lab.example"})
    try:
        for host, status in (("emulator.lan:4390", 200), ("pc7.lab.example", 200),
                             ("lab.example", 200), ("xlab.example", 403), (EVIL, 403),
                             ("localhost:4390", 200)):
            response = httpx.get(srv.url + "/get/unit/E001", headers={"Host": host})
            assert response.status_code == status, host
        refused = httpx.get(srv.url + "/get/acc", headers={"Host": EVIL}).json()
        assert "emulator.lan, .lab.example" in refused["accepted"]
    finally:
        srv.stop()


@pytest.mark.parametrize("value", ["http://emulator.lan", "emulator.lan:4390", "a b/c"])
def test_a_wrong_allowed_hosts_entry_stops_the_start(value: str) -> None:
    from apis_emulator.config import load_settings
    from apis_emulator.errors import SettingsError

    with pytest.raises(SettingsError, match="allowedHosts"):
        load_settings(env={"APIS_EMULATOR_ALLOWEDHOSTS": value})
