"""HTTP sink: a ``http://`` or ``https://`` dburl keeps the original emulator's behaviour.

The original posted the units' JSON (every unit's document as ``/get/log`` shows it, each with an
``emul`` object holding its losses) to ``dburl`` after each update.  Here the same JSON object,
``{"E001": {...unit document..., "emul": {"acloss", "dcloss", "loss", "wasted"}}, ...}``
(powers [W]), is posted once per individual-log interval, as ``application/json``, by a thread of
its own:

- each post has a timeout (``timeout`` s) and at most ``retries`` retries with a growing pause;
  a post that still fails is counted in ``failed`` and logged (at most once a minute);
- the queue is bounded (``max_items`` posts waiting); when it is full the new post is dropped,
  counted in ``dropped`` and logged: the emulation never waits for the receiver;
- at close, what is queued is still sent for at most ``close_timeout`` seconds, the rest is
  counted as dropped.

The documents are rendered in the sink's thread from a copy of the units' arrays taken at the
interval (:func:`frozen_documents`), so the producer only pays for the copy.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from ..engine.kernel import OUT_FIELDS
from ..engine.render import unit_document
from .worker import SinkWorker

if TYPE_CHECKING:
    import datetime as dt

    from ..config import Settings
    from ..engine import Emulator
    from ..engine.units import Units
    from .indivlog import UnitsBlock

__all__ = ["HttpSink", "UnitDocuments", "frozen_documents"]

log = logging.getLogger(__name__)
_O = {name: i for i, name in enumerate(OUT_FIELDS)}


class UnitDocuments:
    """The units of one moment, frozen (arrays copied), rendered to JSON on demand."""

    def __init__(self, units: Units, settings: Settings, now: dt.datetime):
        self.units, self.settings, self.now = units, settings, now

    def render(self) -> dict[str, Any]:
        """``{unit id: document + "emul" losses}`` as the original posted it."""
        docs = {}
        out = self.units.out
        for i, unit_id in enumerate(self.units.ids):
            doc = unit_document(self, i)
            acloss, dcloss = float(out[i, _O["acloss"]]), float(out[i, _O["dcloss"]])
            doc["emul"] = {"acloss": acloss, "dcloss": dcloss, "loss": acloss + dcloss,
                           "wasted": float(out[i, _O["wasted"]])}
            docs[unit_id] = doc
        return docs

    def body(self) -> bytes:
        """The JSON bytes to post."""
        return orjson.dumps(self.render())


def frozen_documents(emulator: Emulator) -> UnitDocuments:
    """A copy of what the documents are made of (tens of microseconds for 100 units)."""
    units = emulator.units
    return UnitDocuments(units.taken(slice(None)), emulator.settings, emulator.now)


class HttpSink(SinkWorker):
    """Posts :class:`UnitDocuments` as JSON to ``url``; never blocks the producer.

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` address.
    timeout : float
        [s] per post (connect and read).
    retries : int
        Further attempts after a failed post; pauses of ``backoff``, 2·``backoff``, … [s].
    max_items : int
        Posts that may wait in the queue; more are dropped and counted.
    close_timeout : float
        [s] at close for sending what is queued.
    """

    output = "http"
    wants_documents = True

    def __init__(self, url: str, timeout: float = 3.0, retries: int = 2, backoff: float = 0.25,
                 max_items: int = 8, close_timeout: float = 5.0):
        super().__init__(f"HTTP sink {url}", max_items=max_items, block=False, max_batch=1)
        self.url = url
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        self.close_timeout = float(close_timeout)
        self.sent = 0  # posts the receiver accepted (2xx)
        self.failed = 0  # posts given up after the retries
        self.attempts = 0
        self._deadline: float | None = None
        self._last_fail_log = -1e18
        self.start()

    @property
    def where(self) -> str:
        """The address posted to."""
        return self.url

    def write(self, docs: UnitDocuments) -> bool:
        """Queue one post; False if the queue was full and it was dropped."""
        return self.put(docs)

    def log_units(self, block: UnitsBlock, documents: UnitDocuments | None) -> None:
        """Post the documents (the per-unit rows are for the other sinks)."""
        if documents is not None:
            self.write(documents)

    def close(self) -> None:
        """Send what is queued for at most close_timeout seconds, then stop."""
        self._deadline = self.clock() + self.close_timeout
        super().close()
        log.info("%s: %d post(s) sent, %d failed, %d dropped", self.name, self.sent,
                 self.failed, self.dropped)

    def _late(self) -> bool:
        return self._deadline is not None and self.clock() >= self._deadline

    def handle(self, batch: list[UnitDocuments]) -> None:
        """Post each queued batch (in the sink's thread)."""
        for docs in batch:
            if self._late():
                self.dropped += 1
                continue
            self._post(docs.body())

    def _post(self, body: bytes) -> None:
        import urllib.error  # here: urllib.request costs a run without this sink 50 ms
        import urllib.request

        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
                if self._late():
                    break
            self.attempts += 1
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                self.sent += 1
                return
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code} {exc.reason}"
            except (urllib.error.URLError, OSError) as exc:
                error = str(getattr(exc, "reason", exc))
        self.failed += 1
        now = self.clock()
        if now - self._last_fail_log >= 60.0:
            log.warning("%s: post failed after %d attempt(s) (%s); %d failed so far",
                        self.name, self.retries + 1, error, self.failed)
            self._last_fail_log = now
