"""Serving: the app on uvicorn, with the real-time runner on the same event loop."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from ..config import Settings
from ..control import Controller
from ..engine import Emulator
from ..engine.kernel import warm_up
from ..recorders import ServedRecording
from ..runner import RealTimeRunner
from ..runner.schedule import Schedule
from .app import create_app
from .protocol import MAX_HEAD, LimitedHttpProtocol

__all__ = ["serve", "build_server"]

log = logging.getLogger(__name__)

#: [s] an idle kept-alive connection is closed after this: above apis-main's 5 s poll, so each
#: poller keeps its connection (docs/reliability.md, measured by bench/http_limits.py).
KEEP_ALIVE_S = 20
#: Connections and requests at once beyond which a request gets 503: far above what idle or
#: slow connections (closed after protocol.HEAD_TIMEOUT) can pile up to before they are closed.
MAX_CONNECTIONS = 4096


class _Server(uvicorn.Server):
    """uvicorn's server, but a SIGINT/SIGTERM stop exits 0 instead of re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM ask the server to stop (exit 0) while it runs."""
        previous = {sig: signal.signal(sig, self.handle_exit)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def build_server(emulator: Emulator, settings: Settings, controller: Controller | None = None,
                 follow_acceleration: bool = True) -> uvicorn.Server:
    """A uvicorn server for ``emulator``; SIGINT/SIGTERM stop it cleanly (lifespan shutdown).

    With a ``controller`` (the built-in apis-main rules) the converters follow its deals; with
    ``follow_acceleration`` its time scale follows ``/set/acc``.
    """
    recording = ServedRecording(emulator, settings, deals=controller is not None)
    schedule = Schedule(emulator, controller, sample_every=recording.sample_every)
    schedule.on_sample.append(recording.sample)
    schedule.on_midnight.append(recording.midnight)
    schedule.on_deals.append(recording.deals)
    runner = RealTimeRunner(emulator, settings.acceleration, settings.sleeptime,
                            do_updates=settings.doUpdates, schedule=schedule)
    if controller is not None and follow_acceleration:
        runner.on_acceleration.append(controller.set_time_scale)
    app = create_app(emulator, settings, runner)

    def close() -> None:  # open deals end (run_end), then the partial day and closing rows
        recording.close(schedule.close())

    app.state.web.on_shutdown.append(close)
    app.state.recording_status = recording.status  # /api/status shows it
    config = uvicorn.Config(app, host=settings.b_host, port=settings.b_port, log_config=None,
                            access_log=False, lifespan="on", timeout_graceful_shutdown=5,
                            loop="auto", http=LimitedHttpProtocol,
                            timeout_keep_alive=KEEP_ALIVE_S, limit_concurrency=MAX_CONNECTIONS,
                            h11_max_incomplete_event_size=MAX_HEAD)  # if run on h11 instead
    return _Server(config)


def serve(emulator: Emulator, settings: Settings, controller: Controller | None = None,
          follow_acceleration: bool = True) -> int:
    """Serve until stopped; 0 after a clean stop."""
    log.info("loading the physics kernels (the first start after installing compiles them: "
             "about 40 s)")
    seconds = warm_up()
    if seconds > 2.0:
        log.info("compiled the physics kernels in %.0f s (once: numba keeps them in its cache)",
                 seconds)
    log.info("serving %d units on http://%s:%d/ (data set %s, controller %s)",
             len(emulator.units), settings.b_host, settings.b_port, emulator.dataset.name,
             controller.name if controller else "none")
    server = build_server(emulator, settings, controller, follow_acceleration)
    server.run()
    return 0 if server.started else 1
