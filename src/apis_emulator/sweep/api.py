"""The sweep from Python: check a sweep, run what is missing on Dask, write the runs table."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .cluster import connect, run_on_dask
from .resolve import Sweep, resolve
from .spec import read_sweep_file
from .table import as_frame, table_columns, table_rows, write_table
from .task import finished_row, is_done, remove_stale

__all__ = ["load_sweep", "run_sweep", "pending_runs"]

log = logging.getLogger(__name__)


def load_sweep(sweep: str | Path | Mapping[str, Any]) -> Sweep:
    """Read and check a sweep (a TOML file or the same document as a dict); runs nothing."""
    return resolve(read_sweep_file(sweep))


def pending_runs(sweep: Sweep, out_dir: str | Path) -> list[str]:
    """The ids of the runs of ``sweep`` that ``out_dir`` does not hold complete."""
    runs_dir = Path(out_dir) / "runs"
    return [run.run_id for run in sweep.runs if not is_done(runs_dir / run.run_id)]


def _add_done(plan: Sweep, runs_dir: Path, results: dict[str, dict[str, Any]]) -> None:
    for run in plan.runs:
        if run.run_id not in results and is_done(runs_dir / run.run_id):
            results[run.run_id] = {"status": "ok", **finished_row(runs_dir / run.run_id)}


def run_sweep(sweep: str | Path | Mapping[str, Any] | Sweep, out_dir: str | Path, *,
              workers: int | None = None, scheduler: str | None = None, client: Any = None,
              retries: int = 1, progress: bool = False) -> Any:
    """Run every missing run of a sweep as a Dask task and return the runs table.

    Each run is the same headless run as ``simulate`` and lands in ``out_dir/runs/<run_id>/``
    (summary.csv, deals.csv with a controller, the individual log only if the sweep asks for
    it, run.json with its full parameters).  Runs already complete there are not run again;
    failed ones are.  ``out_dir/runs.csv`` (and ``runs.parquet`` with pyarrow) get one row per
    combination, also when the sweep is interrupted (then only the finished ones).

    Parameters
    ----------
    sweep : path, dict or Sweep
        A sweep file (TOML: ``[sweep]``, ``[settings]``, ``[axes]``, ``[[runs]]``; see
        docs/sweeps.md), the same document as a dict (relative paths from the working
        directory), or the result of :func:`load_sweep`.
    out_dir : path
        The sweep's folder; with a Dask cluster given by address it must be on a filesystem
        that every worker sees at the same path.
    workers : int, optional
        Worker processes of the LocalCluster started (and stopped) here; default the number of
        cores.  Ignored with ``scheduler`` or ``client``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://HOST:PORT``): only submit and gather.
    client : distributed.Client, optional
        A client to use as it is (a notebook's own cluster).
    retries : int
        Times Dask runs a task again after it raised (a lost worker's tasks are re-run anyway).
    progress : bool
        Show a progress bar (runs done / total, and the dashboard address when there is one).

    Returns
    -------
    pandas.DataFrame or list of dict
        One row per combination: ``run_id``, ``status`` (``ok``/``error``), each axis, the
        KPIs of the run's ``sum`` row (energies [Wh]: pv, demand, acin, wasted, loss, and with
        sharing shared_in, shared_out; ratios [-]: ssr_real, ssr_pv, sor; deals [-]),
        ``wall_s`` [s] and ``error``.  A list of dicts when pandas is not installed.
    """
    plan = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
    out = Path(out_dir).resolve()
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    remove_stale(runs_dir)
    results: dict[str, dict[str, Any]] = {}
    _add_done(plan, runs_dir, results)
    todo = [run for run in plan.runs if run.run_id not in results]
    log.info("sweep %s: %d runs, %d done before, %d to run", plan.source, len(plan.runs),
             len(results), len(todo))
    columns = table_columns(plan)
    try:
        if todo:
            with connect(workers, scheduler, client) as dask_client:
                run_on_dask(dask_client, plan, todo, runs_dir, retries=retries,
                            progress=progress, results=results)
            remove_stale(runs_dir)  # attempts on workers that died
    except KeyboardInterrupt:
        if scheduler is None and client is None:  # our own workers are stopped by now
            remove_stale(runs_dir)
        raise
    finally:
        _add_done(plan, runs_dir, results)  # folders completed while we were stopping
        rows = table_rows(plan, results)
        write_table(out, rows, columns)
    return as_frame(rows, columns)
