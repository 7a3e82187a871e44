"""Who may talk to the emulator (specification §11), enforced by the server itself.

- An optional allow-list of client addresses/networks (settings ``allow``): others get 403.
- State-changing paths refuse cross-site browser requests: a browser sends ``Sec-Fetch-Site``
  and ``Origin`` with them, so a web page elsewhere cannot drive the emulator through someone's
  browser; apis-main (which sends neither) and the emulator's own page (same origin) pass.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from .routes import Route, state_changing_prefixes

__all__ = ["RequestGuard"]

log = logging.getLogger(__name__)

_SAFE_FETCH_SITES = {b"same-origin", b"none"}


def _networks(allow: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(a, strict=False) for a in allow]


class RequestGuard:
    """Pure ASGI middleware (cheap on the hot path: a few header look-ups)."""

    def __init__(self, app: Any, allow: Iterable[str] = (),
                 routes: Mapping[str, Route] | None = None):
        self.app = app
        self.networks = _networks(allow)
        self.guarded = state_changing_prefixes(routes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reason = self._refusal(scope)
        if reason is None:
            await self.app(scope, receive, send)
            return
        log.warning("403 %s %s: %s", scope.get("client"), scope.get("path"), reason)
        body = orjson.dumps({"error": reason})
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, scope: dict[str, Any]) -> str | None:
        if self.networks:
            client = scope.get("client")
            try:
                address = ipaddress.ip_address(client[0]) if client else None
            except ValueError:
                address = None
            if address is None or not any(address in n for n in self.networks):
                return f"client {client[0] if client else '?'} is not in the allow-list"
        if scope["path"].startswith(self.guarded):
            return self._cross_site(scope)
        return None

    @staticmethod
    def _cross_site(scope: dict[str, Any]) -> str | None:
        headers = dict(scope.get("headers") or [])
        site = headers.get(b"sec-fetch-site")
        if site is not None and site not in _SAFE_FETCH_SITES:
            return f"cross-site request ({site.decode(errors='replace')}) to a state-changing path"
        origin = headers.get(b"origin")
        if origin is not None and origin != b"null":
            host = headers.get(b"host", b"").decode(errors="replace")
            if urlsplit(origin.decode(errors="replace")).netloc != host:
                return "request from another origin to a state-changing path"
        elif origin == b"null":
            return "request from an opaque origin to a state-changing path"
        return None
