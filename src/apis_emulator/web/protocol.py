"""The HTTP layer's own limits: how large and how slow a request's head may be.

uvicorn's httptools protocol (the fast one, used by default) bounds neither the size of a
request's head (request line and headers are buffered until they end) nor the time it may take
to arrive (a connection that sends nothing, or a byte now and then, is kept for good: slowloris).
:class:`LimitedHttpProtocol` adds both, and answers as the rest of the server does, with the
JSON error (web/answers.py), then closes the connection:

- a request line longer than :data:`MAX_REQUEST_LINE` bytes → 414;
- a head (request line and headers) longer than :data:`MAX_HEAD` bytes → 431;
- a head not complete :data:`HEAD_TIMEOUT` seconds after its first byte (or after the
  connection opened) → 408, or a plain close when nothing was sent at all.

The figures and why they were chosen are in docs/reliability.md (measured by
bench/http_limits.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .answers import error_body

__all__ = ["LimitedHttpProtocol", "MAX_REQUEST_LINE", "MAX_HEAD", "HEAD_TIMEOUT"]

#: [bytes] the longest request line (apis-main's longest is about 70 bytes).
MAX_REQUEST_LINE = 8192
#: [bytes] the largest head: request line and headers (a browser's is about 1 kB).
MAX_HEAD = 16384
#: [s] the longest a request's head may take to arrive.
HEAD_TIMEOUT = 10.0

_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 414: b"URI Too Long",
            431: b"Request Header Fields Too Large"}
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n")


def head_refusal(head: bytes) -> tuple[int, str, str, int, str] | None:
    """(status, message, field, size, accepted) when ``head`` (what came of a request's head so
    far, at most MAX_HEAD + 1 bytes) is over a limit; None while it is within them."""
    line_end = head.find(b"\n")
    line = len(head) if line_end < 0 else line_end
    if line > MAX_REQUEST_LINE:
        accepted = f"at most {MAX_REQUEST_LINE} bytes"
        return 414, f"the request line ({line} bytes) is too long: {accepted}", \
            "request line", line, accepted
    if len(head) > MAX_HEAD:
        accepted = f"at most {MAX_HEAD} bytes of request line and headers"
        return 431, f"the request line and headers are too long: {accepted}", \
            "headers", len(head), accepted
    return None


def _head_end(head: bytes) -> int:
    """Where the head ends in ``head`` (-1: not yet)."""
    ends = [i + len(e) for e in _HEAD_ENDS if (i := head.find(e)) >= 0]
    return min(ends) if ends else -1


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded, timed request head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = bytearray()  # the current request's head so far (bounded)
        self._in_head = True
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection must send a complete head within HEAD_TIMEOUT."""
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the head timer with the connection."""
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Count a head's bytes until it ends; refuse it when it is over a limit."""
        if self._in_head and not self._take_head(data):
            return
        super().data_received(data)

    def on_message_complete(self) -> None:
        """The request is read: the next bytes begin another head."""
        self._in_head, self._head = True, bytearray()
        super().on_message_complete()

    def _take_head(self, data: bytes) -> bool:
        """Add ``data`` to the head; False (and the connection answered) when over a limit."""
        if self._head_timer is None:
            self._arm_head_timer()
        self._head += data[:MAX_HEAD + 1 - len(self._head)]
        end = _head_end(bytes(self._head))
        refusal = head_refusal(bytes(self._head[:end] if end >= 0 else self._head))
        if refusal is not None:
            self._refuse(*refusal)
            return False
        if end >= 0:
            self._in_head, self._head = False, bytearray()
            self._cancel_head_timer()
        return True

    def send_400_response(self, msg: str) -> None:
        """A request httptools cannot parse: the JSON error, then close."""
        self._refuse(400, f"not an HTTP/1.1 request: {msg}", "request", None,
                     "an HTTP/1.1 request (GET path HTTP/1.1, headers, empty line)")

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if not self._head:
            self.transport.close()  # nothing sent: nothing to answer
            return
        accepted = f"a request line and headers sent within {HEAD_TIMEOUT:g} s"
        self._refuse(408, f"the request did not arrive within {HEAD_TIMEOUT:g} s",
                     "request", len(self._head), accepted)

    def _refuse(self, status: int, message: str, field: str, value: Any, accepted: str) -> None:
        """Answer ``status`` with the JSON error and close the connection."""
        self._cancel_head_timer()
        body = error_body(message, field, value, accepted)
        self.logger.warning("%d from %s: %s", status, self.client, message)
        self.transport.write(b"".join((
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body)))
        self.transport.close()
