"""Helpers of the page tests: a tiny data set, a real server process, Debian's chromium.

Imported by tests/test_page_*.py (the fixtures live in those modules and call these helpers).
Every server runs as ``python -m apis_emulator serve`` on a free loopback port with its working
directory in tmp_path, so its log/ and jsontmp/ land there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from web_support import Server, start_server, write_dataset

__all__ = ["chromium_browser", "CHROMIUM", "CHROMIUM_ARGS", "PageServer", "write_page_dataset",
           "start_page_server", "launch_chromium", "NetworkLog", "open_page"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def write_page_dataset(directory: Path, households: int = 4) -> Path:
    """Solar: 365 rows × 24 hourly W (a bell around noon); load: 365 rows per household."""
    return write_dataset(directory, households, pv_peak_w=1500.0, load_kw=(0.25, 0.05, 5),
                         name="page-test")


class PageServer(Server):
    """A running ``apis_emulator serve`` process (web_support.Server) with JSON reads."""

    def get(self, path: str) -> Any:
        """GET ``path`` from the API (as apis-main would: no browser headers); JSON body."""
        response = httpx.get(self.url + path, timeout=15.0)
        response.raise_for_status()
        return response.json()

    def unit(self, unit_id: str) -> dict[str, Any]:
        return self.get("/get/log")[unit_id]


def start_page_server(cwd: Path, data: Path, units: int, acceleration: float,
                      extra: list[str] | None = None, timeout: float = 90.0) -> PageServer:
    """Start a server at ``acceleration`` and wait until it answers."""
    server = start_server(cwd, data, units=units, timeout=timeout,
                          extra=["--acceleration", str(acceleration), *(extra or [])])
    return PageServer(server.process, server.url, server.cwd, server.log_path)


@pytest.fixture(scope="module", name="browser")
def chromium_browser() -> Iterator[Any]:
    """``browser``: Debian's chromium for a test module (import this fixture into it)."""
    with sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()


def launch_chromium(playwright: Any) -> Any:
    """Debian's chromium (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
                           "(apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@dataclass
class NetworkLog:
    """Every URL the browser requested, and the page's script errors."""

    urls: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def foreign(self, base: str) -> list[str]:
        """Requests that went anywhere but the emulator at ``base``."""
        return [u for u in self.urls if not u.startswith(base + "/")]

    def paths(self, base: str) -> list[str]:
        return [u[len(base):] for u in self.urls if u.startswith(base + "/")]


@contextmanager
def open_page(browser: Any, server: PageServer, query: str = "", log: NetworkLog | None = None,
              viewport: tuple[int, int] = (1400, 1000)) -> Iterator[tuple[Any, NetworkLog]]:
    """A fresh page on the server's ``/``, with its first values drawn; dialogs are accepted."""
    log = log if log is not None else NetworkLog()
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.on("request", lambda request: log.urls.append(request.url))
    page.on("pageerror", lambda exc: log.errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        page.goto(f"{server.url}/{query}")
        page.wait_for_selector("body[data-ready]", timeout=30_000)
        yield page, log
    finally:
        context.close()
