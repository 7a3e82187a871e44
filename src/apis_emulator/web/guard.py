"""Who may talk to the emulator (specification §11), enforced by the server itself.

- An optional allow-list of client addresses/networks (settings ``allow``): others get 403.
- The ``Host`` a request names must be one the server is reachable by: ``localhost`` (and
  names under the reserved ``.localhost`` and ``.test``), an IP address, or a name of the
  setting ``allowedHosts``.  A web
  page on a name its owner points at 127.0.0.1 (DNS rebinding) is "same origin" for the browser,
  so only the name it sends tells it apart: such a request gets 403 naming the setting.
- State-changing paths refuse cross-site browser requests: a browser sends ``Sec-Fetch-Site``
  and ``Origin`` with them, so a web page elsewhere cannot drive the emulator through someone's
  browser; apis-main (which sends neither) and the emulator's own page (same origin) pass.
- A GET carries no body: a request announcing one is refused (400) before any handler.

Every refusal is the JSON error of web/answers.py, naming the header or setting refused.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .answers import error_body, raw_error
from .routes import Route, state_changing_prefixes

__all__ = ["RequestGuard", "Refusal", "HostCheck"]

log = logging.getLogger(__name__)

_SAFE_FETCH_SITES = {b"same-origin", b"none"}
#: Special-use domains nobody can register (RFC 6761): no page elsewhere is served under them,
#: so they cannot be rebound; browsers resolve .localhost to loopback themselves.
_RESERVED = (".localhost", ".test")


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the answer's status, message, field, value and rule."""

    status: int
    message: str
    field: str
    value: Any
    accepted: str
    close: bool = False  #: close the connection after the answer (a body is left unread)

    def body(self) -> bytes:
        """The JSON error of this refusal."""
        return error_body(self.message, self.field, self.value, self.accepted)


@dataclass(frozen=True)
class HostCheck:
    """Whether a ``Host`` header names this server: localhost, a name under .localhost or
    .test, an IP address, or a name of ``allowed`` (the setting allowedHosts: exact names,
    ``.suffix`` for a name and the names under it, ``*`` for any)."""

    allowed: tuple[str, ...] = ()

    def accepts(self, host: str) -> bool:
        """Whether ``host`` (a Host header's name, without its port) is accepted."""
        name = host.lower().rstrip(".")
        if name == "localhost" or name.endswith(_RESERVED) or _is_address(name):
            return True
        return any(a == "*" or name == a or (a.startswith(".") and (name.endswith(a)
                                                                     or name == a[1:]))
                   for a in self.allowed)

    def refusal(self, raw: bytes | None) -> Refusal | None:
        """The 403 for a Host header naming another server (None: accepted, or no Host)."""
        if raw is None:
            return None  # HTTP/1.0 without Host: not a browser
        header = raw.decode("latin-1")
        if self.accepts(_host_name(header)):
            return None
        listed = ", ".join(self.allowed) or "none"
        accepted = ("localhost (or a name under .localhost or .test), an IP address, or a name "
                    f"of the setting allowedHosts (now: {listed})")
        return Refusal(403, f"Host {header!r} is not a name of this server: to reach it under "
                            "this name, add the name to the setting allowedHosts "
                            "(APIS_EMULATOR_ALLOWEDHOSTS or the settings file)",
                       "Host", header, accepted)


def _host_name(header: str) -> str:
    """The name of a Host header: without its port; an IPv6 literal without brackets."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _networks(allow: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(a, strict=False) for a in allow]


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("latin-1")


class RequestGuard:
    """Pure ASGI middleware (cheap on the hot path: a few header look-ups)."""

    def __init__(self, app: Any, allow: Iterable[str] = (),
                 routes: Mapping[str, Route] | None = None,
                 allowed_hosts: Iterable[str] = ()):
        self.app = app
        self.networks = _networks(allow)
        self.guarded = state_changing_prefixes(routes)
        self.hosts = HostCheck(tuple(allowed_hosts))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        log.warning("%d %s %s: %s", refusal.status, scope.get("client"), scope.get("path"),
                    refusal.message)
        await raw_error(send, refusal.status, refusal.body(), close=refusal.close)

    def _refusal(self, scope: dict[str, Any]) -> Refusal | None:
        """Why the request of ``scope`` is refused, or None to serve it."""
        headers = dict(scope.get("headers") or [])
        return (self._client(scope) or self.hosts.refusal(headers.get(b"host"))
                or _with_body(headers)
                or (self._cross_site(headers) if scope["path"].startswith(self.guarded)
                    else None))

    def _client(self, scope: dict[str, Any]) -> Refusal | None:
        if not self.networks:
            return None
        client = scope.get("client")
        try:
            address = ipaddress.ip_address(client[0]) if client else None
        except ValueError:
            address = None
        if address is not None and any(address in n for n in self.networks):
            return None
        shown = client[0] if client else "?"
        return Refusal(403, f"client {shown} is not in the allow-list (setting allow)",
                       "allow", shown, "a client in " + ", ".join(map(str, self.networks)))

    @staticmethod
    def _cross_site(headers: Mapping[bytes, bytes]) -> Refusal | None:
        site = headers.get(b"sec-fetch-site")
        if site is not None and site not in _SAFE_FETCH_SITES:
            return Refusal(403, f"cross-site request ({_text(site)}) to a state-changing path",
                           "Sec-Fetch-Site", _text(site), "same-origin or none")
        origin = headers.get(b"origin")
        if origin == b"null":
            return Refusal(403, "request from an opaque origin to a state-changing path",
                           "Origin", "null", "the emulator's own origin")
        host = _text(headers.get(b"host")) or ""
        if origin is not None and urlsplit(_text(origin) or "").netloc != host:
            return Refusal(403, "request from another origin to a state-changing path",
                           "Origin", _text(origin), f"the emulator's own origin (http://{host})")
        return None


def _with_body(headers: Mapping[bytes, bytes]) -> Refusal | None:
    """A request that announces a body (every path is a GET, which has none)."""
    length = headers.get(b"content-length")
    if b"transfer-encoding" in headers:
        return Refusal(400, "a request body is not accepted: every path is a GET",
                       "Transfer-Encoding", _text(headers[b"transfer-encoding"]),
                       "no body (no Transfer-Encoding, Content-Length 0 or none)", close=True)
    if length is not None and length.strip() not in (b"0", b""):
        return Refusal(400, "a request body is not accepted: every path is a GET",
                       "Content-Length", _text(length), "0 or none (no body)", close=True)
    return None
