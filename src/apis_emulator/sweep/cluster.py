"""Running a sweep's runs on Dask: a LocalCluster we start, or a cluster given by its address.

Dask places the tasks, re-runs a task whose worker died (on another worker) and retries a task
that raised (``retries``); this module only connects, sends the data sets once, submits one
task per run and collects what comes back.
"""

from __future__ import annotations

import logging
import os
import signal
import uuid
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .. import __version__
from ..errors import EmulatorError
from .resolve import Run, Sweep
from .task import check_worker, execute

__all__ = ["ClusterError", "connect", "local_cluster", "run_on_dask", "ignore_sigint",
           "priority", "WORKER_CONFIG"]

log = logging.getLogger(__name__)


class ClusterError(EmulatorError):
    """The Dask cluster cannot run the sweep (unreachable, or workers that cannot see DIR)."""


def ignore_sigint() -> None:
    """In a local worker: Ctrl-C is for the sweep command, which stops the workers itself."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the worker's main thread: leave it
        pass


#: Dask settings of the local cluster's workers (see :func:`local_cluster`; docs/sweeps.md,
#: "Figures", has the measurements).
WORKER_CONFIG: dict[str, Any] = {
    # Dask's statistical profiler samples the running task every 10 ms
    "distributed.worker.profile.enabled": False,
    # the nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which turns glibc's
    # adaptive mmap threshold off: every array over 128 kB of a run is a fresh mmap, ~30,000
    # page faults per 30-day run of 100 houses instead of ~100.  None: glibc's defaults
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # one worker per core runs one run at a time: the kernel's threads would only compete
    "distributed.nanny.pre-spawn-environ.NUMBA_NUM_THREADS": 1,
    # the worker's event loop wakes ~65 times a second (a 20 ms tick, a 100 ms memory
    # monitor, a 500 ms system monitor), each time taking the GIL from the run: half the run
    # thread's context switches.  A run is one long task; coarser checks lose nothing
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}


@contextmanager
def local_cluster(workers: int | None = None) -> Iterator[Any]:
    """The sweep's LocalCluster: ``workers`` processes (default: the cores), one thread each
    (a run holds the interpreter), loopback only, free ports, :data:`WORKER_CONFIG`."""
    import dask
    from distributed import LocalCluster

    n = workers or os.cpu_count() or 1
    if n < 1:
        raise ClusterError(f"--workers={n} is not accepted: a whole number >= 1")
    # the nanny hands the configuration in force here to the worker processes it starts
    with dask.config.set(WORKER_CONFIG), LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0") as cluster:
        yield cluster


@contextmanager
def _local_cluster(workers: int | None) -> Iterator[Any]:
    from distributed import Client

    with local_cluster(workers) as cluster, Client(cluster) as client:
        client.run(ignore_sigint)
        yield client


@contextmanager
def _remote(address: str) -> Iterator[Any]:
    from distributed import Client

    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"no Dask scheduler answers at {address!r} ({exc}); start one with "
                           f"`dask scheduler` or leave --scheduler out for a local cluster") \
            from None
    with client:
        yield client


@contextmanager
def connect(workers: int | None = None, scheduler: str | None = None,
            client: Any = None) -> Iterator[Any]:
    """A Dask client: the one given, one on ``scheduler``, or one on a LocalCluster we own."""
    if client is not None:
        yield client
    elif scheduler:
        with _remote(scheduler) as remote:
            yield remote
    else:
        with _local_cluster(workers) as local:
            yield local


def dashboard(client: Any) -> str | None:
    """The Dask dashboard's address (Dask says there when bokeh is missing), or None."""
    info = client.scheduler_info()
    port = info.get("services", {}).get("dashboard")
    if not port:
        return None
    host = info["address"].split("://")[-1].rsplit(":", 1)[0]
    return f"http://{host}:{port}/status"


def check_workers(client: Any, runs_dir: Path) -> None:
    """Refuse a cluster whose workers cannot import us or cannot see the runs folder."""
    try:
        seen = client.run(check_worker, str(runs_dir))
    except Exception as exc:  # a worker without apis-emulator fails to load the function
        raise ClusterError(f"the Dask workers cannot run apis-emulator ({type(exc).__name__}: "
                           f"{exc}); install it on every worker") from None
    blind = sorted(w for w, info in seen.items() if not info["sees_out"])
    if blind:
        raise ClusterError(f"worker(s) {', '.join(blind)} do not see {runs_dir}: the output "
                           f"folder must be on a filesystem all workers share, at the same path")
    for worker, info in seen.items():
        if info["version"] != __version__:
            log.warning("worker %s has apis-emulator %s, this client %s", worker,
                        info["version"], __version__)


def priority(run: Run) -> int:
    """A run's estimated cost: Dask starts the longest first, so fewer workers idle at the
    end (steps × units, ×10 with a controller, whose Python code dominates such a run)."""
    params = run.params
    steps = params["days"] * 86400.0 / params["settings"]["step"]
    return int(steps * params["units"] * (1 if params["controller"] == "none" else 10) / 1e3)


def _outcome(future: Any) -> dict[str, Any]:
    if future.status == "finished":
        return {"status": "ok", **future.result()}
    try:
        exc = future.exception()
    except Exception as cancelled:  # a cancelled future has no exception to give
        exc = cancelled
    return {"status": "error", "error": f"{type(exc).__name__}: {exc}".strip()}


def run_on_dask(client: Any, sweep: Sweep, todo: Sequence[Run], runs_dir: Path, *,
                retries: int, progress: bool, results: MutableMapping[str, dict[str, Any]]
                ) -> None:
    """Submit a task per run of ``todo`` and put each outcome into ``results`` as it comes."""
    from distributed import as_completed

    check_workers(client, runs_dir)
    link = dashboard(client)
    if link:
        log.info("Dask dashboard: %s", link)
    # each data set goes to every worker once; the tasks refer to it
    data = {path: client.scatter(sweep.datasets[path], broadcast=True, hash=False)
            for path in dict.fromkeys(run.data for run in todo)}
    token = uuid.uuid4().hex[:6]
    futures = {client.submit(execute, run, data[run.data], str(runs_dir), retries=retries,
                             key=f"apis-run-{run.run_id}-{token}", priority=priority(run)): run
               for run in sorted(todo, key=priority, reverse=True)}  # the first go out at once
    total = len(sweep.runs)
    bar = tqdm(total=total, initial=total - len(todo), unit="run", disable=not progress,
               desc="sweep", postfix={"dashboard": link} if link else None)
    try:
        for future in as_completed(futures):
            results[futures[future].run_id] = _outcome(future)
            bar.update(1)
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        bar.close()
