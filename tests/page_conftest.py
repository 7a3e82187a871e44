"""Helpers of the browser tests: a tiny data set, a real server process, Debian's chromium.

Imported by tests/test_page_*.py and tests/test_web_hosts.py.  Every server runs as
``python -m apis_emulator serve`` on a free loopback port with its working directory in
tmp_path, so its log/ and jsontmp/ land there.  The browser is one chromium for the whole
session (tests/conftest.py's ``browser`` fixture over :class:`PlaywrightSession`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from web_support import Server, start_server, write_dataset

__all__ = ["PlaywrightSession", "CHROMIUM", "CHROMIUM_ARGS", "PageServer", "write_page_dataset",
           "start_page_server", "launch_chromium", "NetworkLog", "open_page", "wait_for_paths"]

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
                      extra: list[str] | None = None, timeout: float = 90.0,
                      env: dict[str, str] | None = None) -> PageServer:
    """Start a server at ``acceleration`` and wait until it answers."""
    server = start_server(cwd, data, units=units, timeout=timeout, env=env,
                          extra=["--acceleration", str(acceleration), *(extra or [])])
    return PageServer(server.process, server.url, server.cwd, server.log_path)


class PlaywrightSession:
    """One Playwright driver and one chromium for the whole test session.

    Playwright's sync API keeps its event loop marked as the thread's running loop between
    its calls (its dispatcher greenlet waits inside that loop), and ``asyncio.run`` refuses to
    start while a loop is marked running: a session-long driver would break every later test
    that runs a coroutine.  So the loop is marked running only while a test that uses the
    browser holds it (:meth:`lent`), as Playwright expects, and unmarked between those tests.
    """

    def __init__(self) -> None:
        self._manager = sync_playwright()
        self.playwright = self._manager.start()
        self._loop = asyncio.get_running_loop()  # Playwright's, marked running by start()
        self._browser: Any = None
        asyncio._set_running_loop(None)

    @contextmanager
    def lent(self) -> Iterator[Any]:
        """The Playwright driver, its loop marked running until the block ends."""
        asyncio._set_running_loop(self._loop)
        try:
            yield self.playwright
        finally:
            asyncio._set_running_loop(None)

    def chromium(self) -> Any:
        """Debian's chromium with CHROMIUM_ARGS, launched on first use (call within lent)."""
        if self._browser is None:
            self._browser = launch_chromium(self.playwright)
        return self._browser

    def close(self) -> None:
        with self.lent():
            if self._browser is not None:
                self._browser.close()
        asyncio._set_running_loop(self._loop)
        self._manager.__exit__(None, None, None)  # ends the loop and unmarks it


def launch_chromium(playwright: Any, extra_args: tuple[str, ...] = ()) -> Any:
    """Debian's chromium (never a downloaded browser), with CHROMIUM_ARGS and ``extra_args``."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
                           "(apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM,
                                      args=[*CHROMIUM_ARGS, *extra_args])


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


def wait_for_paths(page: Any, log: NetworkLog, base: str, start: int,
                   done: Callable[[list[str]], bool], timeout_ms: float = 20_000) -> list[str]:
    """The paths requested from ``base`` since ``log.urls[start]``, once ``done(paths)``
    holds; fails after ``timeout_ms`` (the page's events are taken in while it waits)."""
    waited = 0.0
    while True:
        paths = [u[len(base):] for u in log.urls[start:] if u.startswith(base + "/")]
        if done(paths):
            return paths
        if waited >= timeout_ms:
            pytest.fail(f"waited {timeout_ms / 1000:g} s for the page's requests: {paths}")
        page.wait_for_timeout(100)
        waited += 100
