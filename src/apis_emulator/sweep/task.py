"""One run of a sweep, as a Dask task runs it: the same headless run as ``simulate``.

The run writes into a hidden temporary folder next to its final one and is renamed to
``runs/<run_id>/`` only when it is complete, so a stopped sweep or a killed worker leaves only
complete run folders.  A folder that exists with its ``run.json`` and the ``sum`` row of its
summary is done and never written again.
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, control
from ..config import Settings
from ..engine import Emulator
from ..inputs import DAYS, DataSet
from .controllers import build_controller
from .resolve import Run

__all__ = ["execute", "is_done", "finished_row", "read_kpis", "remove_stale", "KPIS",
           "SHARING_KPIS", "RUN_FILE", "TMP_PREFIX", "check_worker"]

#: KPI columns taken from the summary's ``sum`` row (energies [Wh], ratios [-]).
KPIS = ("pv", "demand", "acin", "wasted", "loss", "ssr_real", "ssr_pv", "sor")
#: Added with a built-in controller: energy into charging / out of discharging batteries by
#: deals [Wh], number of deals.
SHARING_KPIS = ("shared_in", "shared_out", "deals")
RUN_FILE = "run.json"
TMP_PREFIX = ".tmp-"


def _number(cell: str | None) -> float | None:
    return float(cell) if cell is not None and cell.strip() else None


def read_kpis(summary: Path) -> dict[str, Any] | None:
    """The KPIs of the ``sum`` row of a summary.csv; None when it has no ``sum`` row."""
    try:
        with open(summary, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.DictReader(fh) if row.get("time") == "sum"]
    except FileNotFoundError:
        return None
    if not rows:
        return None
    kpis: dict[str, Any] = {k: _number(rows[0].get(k)) for k in (*KPIS, *SHARING_KPIS)
                            if k in rows[0]}
    if isinstance(kpis.get("deals"), float) and kpis["deals"].is_integer():
        kpis["deals"] = int(kpis["deals"])
    return kpis


def _record(folder: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "wall_s" in record else None


def is_done(folder: Path) -> bool:
    """True when ``folder`` holds a complete run (its run.json and a summary with ``sum``)."""
    return _record(folder) is not None and read_kpis(folder / "summary.csv") is not None


def finished_row(folder: Path) -> dict[str, Any]:
    """The table values of a done run: its KPIs and the wall time it took [s]."""
    record = _record(folder) or {}
    return {"run_id": folder.name, "wall_s": record.get("wall_s"),
            **(read_kpis(folder / "summary.csv") or {})}


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _simulate_into(run: Run, dataset: DataSet, out: Path) -> None:
    from ..runner import simulate  # the runner imports the controllers: keep the import light

    params = run.params
    emulator = Emulator(Settings(**params["settings"]), dataset, params["units"])
    controller = build_controller(emulator, dict(params))
    extra = {"controller": controller} if controller is not None else {}
    simulate(emulator, params["days"], out, indiv_interval=params["indiv_interval"] or None,
             progress=False, database=False, handle_signals=False,
             indiv_format=params["indiv_format"], **extra)


def _publish(tmp: Path, final: Path) -> None:
    """Rename the complete ``tmp`` to ``final``; a done ``final`` (another attempt) wins."""
    try:
        os.rename(tmp, final)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        if is_done(final):
            return
        shutil.rmtree(final)  # an incomplete folder of ours: replace it
        os.rename(tmp, final)


def execute(run: Run, dataset: DataSet, runs_dir: str) -> dict[str, Any]:
    """Run ``run`` into ``runs_dir/<run_id>/`` unless it is done; return its table values."""
    final = Path(runs_dir) / run.run_id
    if is_done(final):
        return finished_row(final)
    tmp = Path(runs_dir) / f"{TMP_PREFIX}{run.run_id}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()  # not parents=True: the runs folder must be the one the client sees
    try:
        started = time.perf_counter()
        _simulate_into(run, dataset, tmp)
        record = {"run_id": run.run_id, "wall_s": time.perf_counter() - started,
                  "finished": dt.datetime.now().isoformat(timespec="seconds"),
                  "apis_emulator": __version__, "data_dir": run.data, "params": run.params}
        _write_synced(tmp / RUN_FILE, json.dumps(record, indent=1) + "\n")
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finished_row(final)


def remove_stale(runs_dir: Path) -> int:
    """Remove the temporary folders of runs that never completed; return how many."""
    stale = [p for p in runs_dir.glob(f"{TMP_PREFIX}*") if p.is_dir()]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)


def _warm_up() -> None:
    """A day of a two-unit run with the compiled apis rules and one without a controller, as
    a task runs them (a midnight and the run's end included): every compiled function a run
    calls is loaded from
    numba's cache — or compiled, when the cache is missing or stale — here, once per worker,
    and not in the worker's first task (seconds there when it compiles)."""
    from ..runner import simulate

    dataset = DataSet(solar=np.zeros(DAYS * 24), solar_unit="W",
                      load_kw=np.zeros((2, DAYS * 48)), meta={"name": "warm-up"})
    with tempfile.TemporaryDirectory(prefix="apis-warm-up-") as out:
        for name in ("apis", "none"):  # the rules, and the physics kernel alone
            em = Emulator(Settings(step=5.0), dataset, 2)
            simulate(em, 1, Path(out) / name, indiv_interval=None, progress=False,
                     database=False, handle_signals=False,
                     controller=control.build_controller(name, em))


def check_worker(runs_dir: str) -> dict[str, Any]:
    """What a worker sees (its apis-emulator version, ``runs_dir``); warms the kernel up."""
    _warm_up()
    return {"version": __version__, "sees_out": os.path.isdir(runs_dir)}
