"""gzip for the clients that ask for it, without slowing the ones that do not.

Two ways, by size:

- ``/get/log`` (13 MB with 10,000 units) is compressed once per emulator version, in a worker
  thread (zlib releases the GIL, so the event loop goes on stepping and answering meanwhile),
  at level 1: 12 times smaller in ≈ 50 ms, where level 6 takes 2.7 times longer for 20 % less.
  Every client asking for the same version shares that one compression.
- Every other answer goes through Starlette's ``GZipMiddleware`` (``install_gzip``), which
  compresses a body of 1 kB or more when the request says ``Accept-Encoding: gzip`` (large
  bodies in a worker thread).

A request without ``Accept-Encoding: gzip`` (apis-main sends none) gets the plain body, as
before; the middleware only adds ``Vary: Accept-Encoding`` to its larger answers.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

__all__ = ["SharedGzip", "accepts_gzip", "gzip_bytes", "install_gzip", "LOG_LEVEL"]

LOG_LEVEL = 1  #: zlib level of /get/log (see the module docstring)
OTHER_LEVEL = 6  #: zlib level of the other answers (small: the level costs little)
MINIMUM_SIZE = 1024  #: [bytes] smaller answers are sent plain


def accepts_gzip(scope: dict[str, Any]) -> bool:
    """Whether the request's ``Accept-Encoding`` names gzip (or ``*``) with a quality > 0."""
    for name, value in scope.get("headers", ()):
        if name != b"accept-encoding":
            continue
        for coding in value.lower().split(b","):
            token, _, params = coding.partition(b";")
            if token.strip() in (b"gzip", b"*") and _quality(params) > 0:
                return True
    return False


def _quality(params: bytes) -> float:
    """The ``q`` of a coding's parameters (1 when absent or unreadable)."""
    for param in params.split(b";"):
        key, _, value = param.partition(b"=")
        if key.strip() == b"q":
            try:
                return float(value.strip())
            except ValueError:
                return 1.0
    return 1.0


def gzip_bytes(data: bytes, level: int = LOG_LEVEL) -> bytes:
    """``data`` in the gzip format."""
    packer = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@dataclass
class SharedGzip:
    """Compressions made once per emulator version and key, in a worker thread."""

    _version: int = -1
    _made: dict[str, asyncio.Future[bytes]] = field(default_factory=dict)

    async def get(self, version: int, key: str, plain: Callable[[], bytes]) -> bytes:
        """gzip of ``plain()`` (called on the event loop: it reads the emulator) at
        ``version``; a request for a version already being compressed waits for it."""
        if version != self._version:
            self._made.clear()
            self._version = version
        made = self._made.get(key)
        if made is None:
            made = asyncio.ensure_future(asyncio.to_thread(gzip_bytes, plain()))
            self._made[key] = made
        return await asyncio.shield(made)


def install_gzip(app: FastAPI) -> None:
    """Starlette's GZipMiddleware for every answer not served by the fast path."""
    app.add_middleware(GZipMiddleware, minimum_size=MINIMUM_SIZE, compresslevel=OTHER_LEVEL)
