"""Benchmark: a sweep of 8 runs on Dask with 1 and 2 workers, against plain ``simulate`` runs.

    .venv/bin/python bench/sweep_scaling.py [--units 100] [--days 30]
                                            [--controller both|none|apis] [--repeat 1]

The study: the embedded default data set, ``--units`` houses for ``--days`` days, 8 runs:
``--controller both`` (default) battery size (2400, 4800, 7200, 9600 Wh) × controller (none,
apis) — runs of very different lengths; ``none``: 8 battery sizes without a controller;
``apis``: 8 seeds of apis-main's rules on the default 4800 Wh batteries — runs alike.  The
sweep's default outputs: the summary (and deals.csv with a controller), no individual log, no
database.

Printed:

- **plain**: each run as ``simulate`` does it (Emulator, controller, ``simulate()``), one
  after another in a fresh process started for each repeat, after the same warm-up as a
  sweep's worker (``check_worker``); the 8 runs' total [s] and the process's CPU time [s],
  taken in turn with the sweeps below so that all see the same load and the same code (the
  plain process and the workers import the checkout as it is when they start; the bench
  warns when the package's sources changed while it ran);
- **1 worker / 2 workers**: ``run_sweep`` on the sweep command's own LocalCluster
  (``sweep.cluster.local_cluster``) started beforehand (its start and the workers' warm-up
  are printed apart, as fixed costs), timed from the call to the returned table: checking
  the workers, sending the data set once, 8 tasks, the table written; and the CPU time of
  every process of the cluster (this one with the scheduler and the nannies, the workers)
  meanwhile.  Each into a fresh folder (nothing to resume); 1 and 2 workers in turn,
  ``--repeat`` times, the best sweep counts (the machine is shared: the best time is the one
  least slowed by others; the median is printed too);
- **paired**: the overhead per task measured pairwise: each run k as a plain run in a
  plain process and as the sweep's own task (``execute``) on a 1-worker cluster, one right
  after the other, both timed from the call to the answer, so each pair sees the same minute
  of the shared machine;
- **overhead per task**: (1-worker sweep − plain) / 8, absolute [ms] and relative to a plain
  run [%] (target ≤ 5 %); **in-task**: the tasks' own wall time (the table's wall_s) against
  plain; **CPU per task**: (CPU of the 1-worker sweep − CPU of the plain runs) / 8; and the
  **paired** overhead (median over the repeats), the one least moved by the other users of
  a shared machine: whole sequences taken ~25 s apart differ by ±10 % on their own here;
- **speed-up**: 1-worker / 2-worker sweep (target ≥ 1.8× on 2 cores);
- the 1-minute load average before each phase: the machine is shared, and a load above the
  number of cores slows every figure and the speed-up most.

Nothing here is asserted; tests never time anything.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psutil  # a dependency of distributed

import apis_emulator
from apis_emulator.control import build_controller
from apis_emulator.engine import Emulator
from apis_emulator.runner import simulate
from apis_emulator.sweep import Sweep, load_sweep, run_sweep
from apis_emulator.sweep.cluster import local_cluster
from apis_emulator.sweep.task import check_worker, execute

SIZES = (2400.0, 4800.0, 7200.0, 9600.0)


def study(units: int, days: float, controller: str) -> dict[str, Any]:
    """The sweep document of the 8 runs."""
    if controller == "both":  # runs of very different lengths: the tail shows
        axes: dict[str, Any] = {"batterySize": list(SIZES), "controller": ["none", "apis"]}
    elif controller == "none":  # 8 battery sizes, runs of about the same length
        axes = {"batterySize": [s + k * 600.0 for s in SIZES for k in (0, 1)]}
    else:  # 8 seeds of apis-main's rules on the shipped 4800 Wh batteries: alike runs
        axes = {"seed": list(range(8)), "controller": ["apis"]}
    return {"sweep": {"days": days, "units": units}, "axes": axes}


def load1() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def plain_run(sweep: Sweep, k: int, out: Path) -> float:
    """Run k of the sweep as ``simulate`` does; its wall time [s]."""
    from apis_emulator.config import Settings

    run = sweep.runs[k]
    started = time.perf_counter()
    params = dict(run.params)
    em = Emulator(Settings(**params["settings"]), sweep.datasets[run.data], params["units"])
    controller = build_controller(params["controller"], em, scenario=params.get("scenario"),
                                  policy=params.get("policy"), seed=params.get("seed", 0),
                                  time_scale=params.get("time_scale", 1.0))
    simulate(em, params["days"], out, indiv_interval=None, progress=False, database=False,
             handle_signals=False, controller=controller)
    return time.perf_counter() - started


def plain_sequence(doc: dict[str, Any], scratch: Path, r: int) -> tuple[list[float], float]:
    """In a fresh process: the worker's warm-up, then the 8 runs one after another (the r-th
    time); each run's wall time [s] and the CPU time of all 8 [s] (every thread)."""
    sweep = load_sweep(doc)
    check_worker(str(scratch))  # the same warm-up as a sweep's worker gets
    cpu = time.process_time()
    walls = [plain_run(sweep, k, scratch / f"plain{r}-{k}") for k in range(len(sweep.runs))]
    return walls, time.process_time() - cpu


def plain(doc: dict[str, Any], scratch: Path, r: int) -> tuple[list[float], float]:
    """:func:`plain_sequence` in a new process, started as the cluster's workers are: both
    import the code as it is now, so an edit of the checkout during the bench cannot make
    the plain runs and the tasks run different code.  Whole sequences are compared with whole
    sweeps: the sum of each run's best time over several repeats would be biased low by the
    runs' own spread."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(plain_sequence, doc, scratch, r).result()


@functools.cache
def _study(doc_json: str) -> Sweep:
    """The sweep of a plain process, read once (its data set with it) and warmed up."""
    sweep = load_sweep(json.loads(doc_json))
    check_worker(tempfile.gettempdir())  # the same warm-up as a sweep's worker gets
    return sweep


def plain_one(doc_json: str, k: int, out: Path) -> float:
    """In the plain process: run k; its wall time [s]."""
    return plain_run(_study(doc_json), k, out)


def paired(doc: dict[str, Any], scratch: Path, r: int) -> tuple[float, float]:
    """The overhead per task, paired: each run k as a plain run in a plain process and as the
    sweep's own task (``execute``: its folder, run.json, the result back) on a 1-worker
    cluster, one right after the other (which first alternates), both timed here from the
    call to the answer; (plain total, tasks total) [s].  Each pair sees the same minute of
    a shared machine, which whole sequences taken ~25 s apart do not."""
    from distributed import Client

    sweep, doc_json = load_sweep(doc), json.dumps(doc)
    runs_dir = scratch / f"paired{r}" / "runs"
    runs_dir.mkdir(parents=True)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool, \
            local_cluster(1) as cluster, Client(cluster) as client:
        pool.submit(_study, doc_json).result()
        client.run(check_worker, str(runs_dir))
        data = {path: client.scatter(ds, broadcast=True, hash=False)
                for path, ds in sweep.datasets.items()}
        plain_s = task_s = 0.0
        for k, run in enumerate(sweep.runs):
            for side in ((0, 1) if (k + r) % 2 == 0 else (1, 0)):
                started = time.perf_counter()
                if side == 0:
                    pool.submit(plain_one, doc_json, k, scratch / f"paired{r}" / f"p{k}").result()
                    plain_s += time.perf_counter() - started
                else:
                    client.submit(execute, run, data[run.data], str(runs_dir),
                                  pure=False).result()
                    task_s += time.perf_counter() - started
    return plain_s, task_s


def sources() -> str:
    """A digest of the package's source files (names, sizes, modification times)."""
    root = Path(apis_emulator.__file__).parent
    stat = sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in root.rglob("*.py"))
    return hashlib.sha256(repr(stat).encode()).hexdigest()[:12]


def cpu_of(procs: list[psutil.Process]) -> float:
    """CPU time [s] used so far by these processes, all their threads."""
    return sum(sum(p.cpu_times()[:2]) for p in procs)


def on_cluster(sweep: Sweep, workers: int, out: Path) -> tuple[float, float, float, float,
                                                                list[float]]:
    """(cluster start [s], kernel warm-up [s], sweep wall [s], CPU of this process and the
    workers during the sweep [s], the tasks' wall_s) on N workers."""
    from distributed import Client

    started = time.perf_counter()
    # the cluster exactly as the sweep command starts it
    with local_cluster(workers) as cluster, Client(cluster) as client:
        up = time.perf_counter() - started
        out.mkdir(parents=True)
        started = time.perf_counter()
        client.run(check_worker, str(out))  # loads the compiled kernel in every worker
        warm = time.perf_counter() - started
        procs = [psutil.Process()] + [psutil.Process(pid)
                                      for pid in client.run(os.getpid).values()]
        cpu = cpu_of(procs)
        started = time.perf_counter()
        table = run_sweep(sweep, out / "sweep", client=client)
        wall = time.perf_counter() - started
        cpu = cpu_of(procs) - cpu
    return up, warm, wall, cpu, list(table["wall_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--controller", choices=("both", "none", "apis"), default="both")
    parser.add_argument("--repeat", type=int, default=3,
                        help="times each measure is taken; the best one counts (default 3)")
    args, ignored = parser.parse_known_args(argv)
    if ignored:
        print(f"(ignoring {' '.join(ignored)})")
    doc = study(args.units, args.days, args.controller)
    sweep = load_sweep(doc)
    code = sources()
    n = len(sweep.runs)
    print(f"{n} runs of {args.units} units × {args.days:g} days (controller {args.controller}); "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}; best of {args.repeat}")
    scratch = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    try:
        sums: list[float] = []
        cpus: dict[int, list[float]] = {0: [], 1: [], 2: []}  # 0: the plain sequence
        walls: dict[int, list[float]] = {1: [], 2: []}
        tasks: list[float] = []
        pairs: list[tuple[float, float]] = []
        for repeat in range(args.repeat):  # plain, 1 and 2 workers in turn: the same load
            before = load1()
            runs, cpu = plain(doc, scratch, repeat)
            cpus[0].append(cpu)
            sums.append(sum(runs))
            print(f"plain: {sums[-1]:.2f} s, CPU {cpus[0][-1]:.2f} s (load1 {before}; runs "
                  f"{', '.join(f'{t:.2f}' for t in runs)})", flush=True)
            for workers in (1, 2):
                before = load1()
                up, warm, wall, cpu, task_s = on_cluster(sweep, workers,
                                                         scratch / f"w{workers}-{repeat}")
                walls[workers].append(wall)
                cpus[workers].append(cpu)
                if workers == 1:
                    tasks.append(sum(task_s))
                print(f"{workers} worker(s): sweep {wall:.2f} s, CPU {cpu:.2f} s  (load1 "
                      f"{before}; cluster start {up:.1f} s, warm-up {warm:.2f} s, apart)",
                      flush=True)
            before = load1()
            pairs.append(paired(doc, scratch, repeat))
            print(f"paired: plain {pairs[-1][0]:.2f} s, tasks {pairs[-1][1]:.2f} s "
                  f"({(pairs[-1][1] / pairs[-1][0] - 1) * 100:+.1f} %; load1 {before})",
                  flush=True)
        for name, pick in (("best", min), ("median", statistics.median)):
            total, one, two = pick(sums), pick(walls[1]), pick(walls[2])
            print(f"{name}: plain {total:.2f} s, 1 worker {one:.2f} s, 2 workers {two:.2f} s; "
                  f"overhead per task {(one - total) / n * 1000:+.0f} ms = "
                  f"{(one / total - 1) * 100:+.1f} % of a plain run (inside the tasks: "
                  f"{(pick(tasks) - total) / n * 1000:+.0f} ms); speed-up {one / two:.2f}×")
            cpu0, cpu1 = pick(cpus[0]), pick(cpus[1])
            print(f"{name} CPU: plain {cpu0:.2f} s, 1 worker {cpu1:.2f} s, 2 workers "
                  f"{pick(cpus[2]):.2f} s (client, scheduler and workers); per task "
                  f"{(cpu1 - cpu0) / n * 1000:+.0f} ms = {(cpu1 / cpu0 - 1) * 100:+.1f} %")
        overheads = sorted(task / plain_s - 1 for plain_s, task in pairs)
        diffs = sorted((task - plain_s) / n * 1000 for plain_s, task in pairs)
        print(f"paired overhead per task: {statistics.median(diffs):+.0f} ms = "
              f"{statistics.median(overheads) * 100:+.1f} % median, "
              f"{overheads[0] * 100:+.1f} to {overheads[-1] * 100:+.1f} % over the repeats")
        print(f"load1 now {load1()}")
        if sources() != code:
            print("WARNING: the package's sources changed during the bench (another edit of "
                  "the checkout): the phases may have run different code; run it again")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
