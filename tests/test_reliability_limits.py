"""The HTTP layer's limits on a real server: over-long heads, bodies on a GET, slow and idle
connections (web/protocol.py, web/guard.py; figures in docs/reliability.md)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apis_emulator.web.protocol import HEAD_TIMEOUT, MAX_HEAD, MAX_REQUEST_LINE
from apis_emulator.web.server import KEEP_ALIVE_S
from web_support import Server, start_server, write_dataset

ERROR_KEYS = {"error", "field", "value", "accepted"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose power flow is frozen, so its documents hold still between requests."""
    data = write_dataset(tmp_path_factory.mktemp("data"))
    srv = start_server(tmp_path_factory.mktemp("serve"), data, units=2,
                       env={"APIS_EMULATOR_DOUPDATES": "false"})
    yield srv
    srv.stop()


def _connect(server: Server) -> socket.socket:
    host, port = server.url.split("//")[1].split(":")
    return socket.create_connection((host, int(port)), timeout=HEAD_TIMEOUT + 10)


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one answer read from ``sock`` (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (an end of file, or a reset when it closed with our
    bytes unread)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _exchange(server: Server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with _connect(server) as sock:
        sock.sendall(request)
        return _answer(sock)


def _state(server: Server) -> dict[str, object]:
    """Every unit's document without its clock fields, and the acceleration."""
    status, _, body = _exchange(server, b"GET /get/log HTTP/1.1\r\nHost: localhost\r\n\r\n")
    units = json.loads(body)
    for doc in units.values():
        doc.pop("time")
        doc["emu"].pop("system_time")
    _, _, acc = _exchange(server, b"GET /get/acc HTTP/1.1\r\nHost: localhost\r\n\r\n")
    return {"units": units, "acceleration": json.loads(acc)}


LIMITS = [
    # request, status, field named
    (b"GET /set/emu/E001?rsoc=9&x=" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\nHost: localhost"
     b"\r\n\r\n", 414, "request line"),
    (b"GET /set/emu/E001?rsoc=9 HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * MAX_HEAD
     + b"\r\n\r\n", 431, "headers"),
    (b"GET /set/emu/E001?rsoc=9 HTTP/1.1\r\nHost: localhost\r\n" + b"X-Many: 1\r\n" * 2000
     + b"\r\n", 431, "headers"),
    (b"GET /set/emu/E001?rsoc=9 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello",
     400, "Content-Length"),
    (b"GET /set/emu/E001?rsoc=9 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n0\r\n\r\n", 400, "Transfer-Encoding"),
    (b"NOT HTTP AT ALL\r\n\r\n", 400, "request"),
]


@pytest.mark.parametrize(("request_bytes", "status", "field"), LIMITS)
def test_over_the_limits_is_refused_with_the_json_error(server: Server, request_bytes: bytes,
                                                        status: int, field: str) -> None:
    """Each gets its status and the JSON error; the command in it is not applied."""
    before = _state(server)
    got, headers, body = _exchange(server, request_bytes)
    error = json.loads(body)
    assert (got, error["field"]) == (status, field), error
    assert ERROR_KEYS <= set(error) and headers["content-type"] == "application/json"
    assert _state(server) == before


def test_a_body_on_a_get_is_not_read(server: Server) -> None:
    """A request announcing 100 MB of body: refused at once and the connection closed, so the
    body is never taken in."""
    with _connect(server) as sock:
        sock.sendall(b"GET /get/acc HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000000"
                     b"\r\n\r\n" + b"x" * 65536)
        status, headers, body = _answer(sock)
        assert status == 400 and headers["connection"] == "close"
        assert json.loads(body)["field"] == "Content-Length"
        assert _closed(sock)


def test_a_head_just_within_the_limits_is_served(server: Server) -> None:
    """A request line and headers just under the limits, and an empty body, are answered."""
    query = b"/get/acc?x=" + b"a" * (MAX_REQUEST_LINE - 40)
    padding = b"a" * (MAX_HEAD - MAX_REQUEST_LINE - 200)
    status, _, body = _exchange(server, b"GET " + query + b" HTTP/1.1\r\nHost: localhost\r\n"
                                b"X-Pad: " + padding + b"\r\nContent-Length: 0\r\n\r\n")
    assert status == 200 and json.loads(body) == 10  # the default acceleration


def test_slow_and_silent_connections_are_closed(server: Server) -> None:
    """A head that never ends gets 408 and is closed; a connection that sends nothing is
    closed; the server answers others meanwhile."""
    with _connect(server) as slow, _connect(server) as silent:
        slow.sendall(b"GET /get/acc HTTP/1.1\r\nHost: localhost\r\nX-a: ")
        assert _exchange(server, b"GET /get/acc HTTP/1.1\r\nHost: localhost\r\n\r\n")[0] == 200
        status, _, body = _answer(slow)
        assert status == 408 and json.loads(body)["field"] == "request"
        assert _closed(slow)
        assert _closed(silent)  # without an answer


def test_a_kept_alive_connection_outlives_apis_mains_poll_period(server: Server) -> None:
    """apis-main polls every 5 s over a kept-alive connection: it stays open between polls."""
    assert KEEP_ALIVE_S > 5
    with _connect(server) as sock:
        for poll in range(2):
            if poll:
                time.sleep(5.5)  # apis-main's period and then some, on the same connection
            sock.sendall(b"GET /get/unit/E001 HTTP/1.1\r\nHost: localhost:4390\r\n\r\n")
            status, headers, _ = _answer(sock)
            assert status == 200 and headers.get("connection") != "close"


def test_the_server_runs_on_after_every_refusal(server: Server, tmp_path: Path) -> None:
    """After the refusals above, a command and a read are answered as usual."""
    status, _, _ = _exchange(server, b"GET /set/emu/E002?rsoc=33 HTTP/1.1\r\nHost: x.localhost"
                             b"\r\n\r\n")
    assert status == 200
    assert _state(server)["units"]["E002"]["emu"]["rsoc"] == 33  # type: ignore[index]
