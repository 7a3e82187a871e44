"""The JSON error every refusal answers with, for the app, the guard and the HTTP layer alike.

``{"error": message, "field": what was refused, "value": the value sent, "accepted": the rule}``
(its schema is ``Error`` in the OpenAPI description, web/openapi.py).
"""

from __future__ import annotations

import math
from typing import Any

import orjson

__all__ = ["error_body", "raw_error"]


def error_body(message: str, field: str, value: Any, accepted: str) -> bytes:
    """The JSON of every error answer: what was refused, the field, the value sent, the rule."""
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)  # JSON has no NaN/inf: show the text that was sent
    return orjson.dumps({"error": message, "field": field, "value": value, "accepted": accepted})


async def raw_error(send: Any, status: int, body: bytes, close: bool = False) -> None:
    """Answer an ASGI request with ``status`` and the JSON ``body`` (before any router);
    ``close``: and close the connection (its request's body is not read)."""
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
