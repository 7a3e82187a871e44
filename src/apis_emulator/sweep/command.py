"""``apis-emulator sweep SWEEP.toml --out DIR [--workers N | --scheduler ADDRESS]``."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["add_sweep_parser", "sweep_command"]

log = logging.getLogger("apis_emulator")


def add_sweep_parser(sub: Any) -> None:
    """Add the ``sweep`` subcommand to the CLI's subparsers."""
    p = sub.add_parser("sweep", help="many headless runs as Dask tasks; a table of their KPIs")
    p.add_argument("file", metavar="SWEEP.toml",
                   help="sweep file: [sweep], [settings], [axes], [[runs]] (docs/sweeps.md)")
    p.add_argument("--out", required=True, help="the sweep's folder: runs/, runs.csv")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int,
                       help="worker processes of the local Dask cluster (default: the cores)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="an existing Dask scheduler, tcp://HOST:PORT (DIR on a shared "
                            "filesystem)")
    p.add_argument("--retries", type=int, default=1,
                   help="times Dask re-runs a run that raised (default 1)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the file and count the runs to do; run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--logging-config", help="a logging.conf to use instead of the shipped one")


def _quiet_dask() -> None:
    """Dask's INFO lines (every worker started and closed) drown the sweep's own."""
    import distributed  # noqa: F401  (it sets its loggers' levels when imported)

    for name in [n for n in logging.root.manager.loggerDict if n.startswith("distributed")]:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.WARNING)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the sweep the way Ctrl-C does (the table of finished runs is written),
    and so does SIGINT even when the command was started with it ignored: a shell starts
    background jobs so, and Python then leaves it ignored (Ctrl-C to the job's group did
    nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt)
                for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def sweep_command(args: argparse.Namespace) -> int:
    """Run the ``sweep`` subcommand: 0 all runs ok, 1 some failed, 130 interrupted."""
    from .api import load_sweep, pending_runs, run_sweep

    if log.getEffectiveLevel() > logging.DEBUG:
        _quiet_dask()
    plan = load_sweep(args.file)
    todo = pending_runs(plan, args.out)
    log.info("sweep %s: %d combinations, %d runs, %d to run into %s", args.file, len(plan.rows),
             len(plan.runs), len(todo), args.out)
    if args.dry_run:
        return 0
    try:
        with _sigterm_as_interrupt():
            table = run_sweep(plan, args.out, workers=args.workers, scheduler=args.scheduler,
                              retries=args.retries, progress=not args.no_progress)
    except KeyboardInterrupt:
        log.warning("sweep interrupted: finished runs are in %s/runs.csv; the same command "
                    "runs the rest", args.out)
        return 130
    rows = table.to_dict("records") if hasattr(table, "to_dict") else table
    failed = [r for r in rows if r["status"] != "ok"]
    for row in failed:
        log.error("run %s failed: %s", row["run_id"], row["error"])
    log.info("sweep done: %d rows, %d failed; %s/runs.csv", len(rows), len(failed), args.out)
    return 1 if failed else 0
