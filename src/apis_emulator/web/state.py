"""What the web layer holds beside the emulator: the runner, the save file, rendered caches.

Everything here runs on the event loop that owns the emulator; nothing is shared with threads
except immutable bytes handed to file writers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..config import Settings
from ..engine import Emulator
from ..engine.render import (
    all_documents,
    dcdc_status_view,
    dcdc_view,
    unit_document,
    unit_view,
)
from ..errors import MissingStateFileError, StateFileError
from ..runner import RealTimeRunner
from .compress import SharedGzip, accepts_gzip
from .log_render import IrregularDocuments, LogRenderer
from .routes import fast_paths, fast_prefixes

__all__ = ["WebState", "FastReads", "write_atomically", "read_state_file", "READ_VIEWS"]

log = logging.getLogger(__name__)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` so that a crash at any moment leaves the old file or the new one.

    A uniquely named temporary file in the same folder is written and fsynced, renamed over
    ``path`` (atomic on POSIX), and the folder is fsynced so the rename itself is durable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_state_file(path: Path) -> Any:
    """The JSON content of a save file; StateFileError if it is missing or not JSON."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise MissingStateFileError(f"no saved state at {path}: use Save All (/save) first"
                                    ) from None
    except (OSError, ValueError) as exc:
        raise StateFileError(f"{path} is not a valid save file: {exc}") from None


@dataclass
class WebState:
    """The emulator plus what the server needs around it."""

    emulator: Emulator
    settings: Settings
    runner: RealTimeRunner
    on_shutdown: list[Callable[[], Any]] = field(default_factory=list)
    _cache_version: int = -1
    _cache: dict[tuple[str, str], bytes] = field(default_factory=dict)
    _docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    save_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fast_prefixes: tuple[tuple[str, str], ...] = field(default_factory=fast_prefixes)
    fast_whole: frozenset[str] = field(default_factory=fast_paths)
    log_renderer: LogRenderer = field(default_factory=LogRenderer)
    gzipped: SharedGzip = field(default_factory=SharedGzip)

    @property
    def save_path(self) -> Path:
        """Where Save All writes and Load Last reads."""
        return Path(self.settings.lastSavePath)

    def _fresh(self) -> None:
        if self._cache_version != self.emulator.version:
            self._cache.clear()
            self._docs.clear()
            self._cache_version = self.emulator.version

    def document(self, unit_id: str) -> dict[str, Any]:
        """The unit's full document at the present version (rendered once per version)."""
        self._fresh()
        doc = self._docs.get(unit_id)
        if doc is None:
            doc = unit_document(self.emulator, self.emulator.index(unit_id))
            self._docs[unit_id] = doc
        return doc

    def rendered(self, kind: str, key: str, make: Callable[[], Any]) -> bytes:
        """JSON bytes of ``make()`` (bytes are taken as they are), cached until the emulator
        changes."""
        self._fresh()
        cached = self._cache.get((kind, key))
        if cached is None:
            made = make()
            cached = made if isinstance(made, bytes) else orjson.dumps(made)
            self._cache[(kind, key)] = cached
        return cached

    def all_units(self) -> bytes:
        """``/get/log`` as JSON bytes, rendered once per state from the arrays."""
        return self.rendered("log", "", self._render_log)

    def _render_log(self) -> bytes:
        try:
            return self.log_renderer.render(self.emulator)
        except IrregularDocuments as exc:  # documents of unusual shapes: one dict per unit
            log.debug("/get/log rendered unit by unit: %s", exc)
            return orjson.dumps(all_documents(self.emulator))

    async def all_units_gzip(self) -> bytes:
        """``/get/log`` in gzip, compressed once per state off the event loop."""
        return await self.gzipped.get(self.emulator.version, "log", self.all_units)

    def unit_read(self, kind: str, unit_id: str) -> bytes:
        """JSON of one of the per-unit read views (READ_VIEWS) of ``unit_id``."""
        view = READ_VIEWS[kind]
        return self.rendered(kind, unit_id, lambda: view(self.document(unit_id)))

    def fast_read(self, path: str) -> bytes | None:
        """The answer to a hot read path, or None to let the full router handle it."""
        if path in self.fast_whole:
            return self.all_units()
        for prefix, kind in self.fast_prefixes:
            if path.startswith(prefix):
                unit_id = path[len(prefix):]
                if self.emulator.has_unit(unit_id):
                    return self.unit_read(kind, unit_id)
                return None  # unknown unit, or a longer path: the router answers
        return None


#: Per-unit read views by kind (the same functions serve the router and the fast path).
READ_VIEWS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "unit": unit_view, "status": dcdc_status_view, "dcdc": dcdc_view,
    "emu": lambda doc: doc["emu"]}


class FastReads:
    """ASGI layer that answers the polled read paths straight from the render cache.

    apis-main polls /get/unit every 5 s per unit and the page polls /get/log; the full router's
    matching and parameter solving costs more than the answer itself.  Everything else, and
    every error, goes on to the router.
    """

    def __init__(self, app: Any, state: WebState):
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            headers = [(b"content-type", b"application/json")]
            if scope["path"] in self.state.fast_whole and accepts_gzip(scope):
                body: bytes | None = await self.state.all_units_gzip()
                headers += [(b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
            else:  # the polled per-unit reads (about 1 kB) are always sent plain
                body = self.state.fast_read(scope["path"])
            if body is not None:
                headers.append((b"content-length", str(len(body)).encode()))
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
