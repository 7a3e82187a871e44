"""Serving: the app on uvicorn, with the real-time runner on the same event loop."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from ..config import Settings
from ..engine import Emulator
from ..recorders import ServedRecording
from ..runner import RealTimeRunner
from .app import create_app

__all__ = ["serve", "build_server"]

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server, but a SIGINT/SIGTERM stop exits 0 instead of re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def build_server(emulator: Emulator, settings: Settings) -> uvicorn.Server:
    """A uvicorn server for ``emulator``; SIGINT/SIGTERM stop it cleanly (lifespan shutdown)."""
    runner = RealTimeRunner(emulator, settings.acceleration, settings.sleeptime,
                            do_updates=settings.doUpdates)
    app = create_app(emulator, settings, runner)
    recording = ServedRecording(emulator, settings)  # opens its files now, before serving
    runner.listeners.append(recording.on_tick)
    app.state.web.on_shutdown.append(recording.close)  # partial day + closing rows, flushed
    config = uvicorn.Config(app, host=settings.b_host, port=settings.b_port, log_config=None,
                            access_log=False, lifespan="on", timeout_graceful_shutdown=5,
                            loop="auto", http="auto")
    return _Server(config)


def serve(emulator: Emulator, settings: Settings) -> int:
    """Serve until stopped; 0 after a clean stop."""
    log.info("serving %d units on http://%s:%d/ (data set %s)", len(emulator.units),
             settings.b_host, settings.b_port, emulator.dataset.name)
    server = build_server(emulator, settings)
    server.run()
    return 0 if server.started else 1
