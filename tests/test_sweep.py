"""Sweeps on real Dask clusters: a LocalCluster of 2 workers, and `dask scheduler` + 2 `dask
worker` processes on loopback; the same numbers as `simulate`, resumable, failures recorded,
nothing lost to a killed worker."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numba
import pytest

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")  # a dependency of distributed
SchedulerPlugin = pytest.importorskip("distributed.diagnostics.plugin").SchedulerPlugin

from apis_emulator.report import report  # noqa: E402
from apis_emulator.sweep import load_sweep, pending_runs, run_sweep  # noqa: E402
from apis_emulator.sweep.cluster import local_cluster  # noqa: E402
from apis_emulator.sweep.task import KPIS, SHARING_KPIS, TMP_PREFIX, check_worker, is_done  # noqa: E402

DASK = Path(sys.executable).parent / "dask"


def two_by_two(sweep_data: Path, **sweep_options) -> dict:
    """2 days of 4 units: battery size × no controller / apis-main's rules."""
    return {"sweep": {"days": 2, "units": 4, "data": str(sweep_data), **sweep_options},
            "settings": {"UPS_TRIGGER_AC_ON": 20.0},
            "axes": {"batterySize": [2400.0, 4800.0], "controller": ["none", "apis"]}}


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def results_only(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows without ``wall_s``: the runs' parameters and KPIs, not how long they took."""
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]


def records(table) -> list[dict]:
    """The DataFrame's rows as dicts, empty cells (NaN) as None."""
    return [{k: None if isinstance(v, float) and v != v else v for k, v in row.items()}
            for row in table.to_dict("records")]


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def simulate_commands(sweep_data: Path, here: Path, runs: dict[str, dict]) -> dict[str, Path]:
    """Each run by the `apis-emulator simulate` command itself, as separate processes at once.

    ``runs``: name → {"controller": …, "step": … (optional), any setting: value}; every run
    has 4 units for 2 days on ``sweep_data`` with ``UPS_TRIGGER_AC_ON = 20.0``, its settings
    in a ``--config`` file, no individual log.  Returns name → the run's output folder.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIS_EMULATOR_")}
    started = {}
    for name, run in runs.items():
        folder = here / name
        folder.mkdir(parents=True)
        settings = {"UPS_TRIGGER_AC_ON": 20.0, **{k: v for k, v in run.items()
                                                  if k not in ("controller", "step")}}
        (folder / "settings.toml").write_text(
            "".join(f"{k} = {float(v)!r}\n" for k, v in settings.items()), encoding="utf-8")
        flags = ["--step", str(run["step"])] if "step" in run else []
        started[name] = subprocess.Popen(
            [sys.executable, "-m", "apis_emulator", "simulate", "--units", "4", "--days", "2",
             "--data", str(sweep_data), "--config", str(folder / "settings.toml"),
             "--controller", run.get("controller", "none"), "--indiv-interval", "0",
             "--no-progress", "--out", str(folder / "out"), *flags],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for proc in started.values():
        output = proc.communicate(timeout=300)[0].decode()
        assert proc.returncode == 0, output
    return {name: here / name / "out" for name in runs}


def outputs(folder: Path) -> dict[str, bytes]:
    """The files a run wrote, by name (the sweep's run.json aside)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "run.json"}


@pytest.fixture(scope="module")
def local_sweep(sweep_data, tmp_path_factory):
    """The 2×2 sweep run by run_sweep on a LocalCluster of 2 workers it starts and stops."""
    out = tmp_path_factory.mktemp("local") / "sweep"
    table = run_sweep(two_by_two(sweep_data), out, workers=2)
    return out, table


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes on loopback, for the tests that share it."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as dask_client:
        yield dask_client


def _start(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as fh:
        return subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(processes: list[subprocess.Popen]) -> None:
    for proc in processes:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the worker's nanny and its child
    for proc in processes:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def dask_processes(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes on loopback (free ports); address."""
    here = tmp_path_factory.mktemp("dask")
    info = here / "scheduler.json"
    loopback = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]
    processes = [_start([str(DASK), "scheduler", "--port", "0", *loopback,
                         "--scheduler-file", str(info)], here / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for k in range(2):
            processes.append(_start([str(DASK), "worker", "--scheduler-file", str(info),
                                     "--nthreads", "1", "--name", f"w{k}", *loopback],
                                    here / f"worker{k}.log"))
        address = json.loads(info.read_text())["address"]
        with distributed.Client(address) as probe:
            probe.wait_for_workers(2, timeout=60)
        yield address
    finally:
        _stop(processes)


def test_local_cluster_gives_the_numbers_of_simulate(local_sweep, sweep_data, tmp_path):
    """Each run of the 2×2 sweep on a LocalCluster of 2 workers wrote what four
    `apis-emulator simulate` commands of the same parameters write, bit for bit, and its row
    has the KPIs of that run's `sum` row exactly."""
    out, table = local_sweep
    rows = records(table)
    assert [(r["status"], r["batterySize"], r["controller"]) for r in rows] == [
        ("ok", 2400.0, "none"), ("ok", 2400.0, "apis"), ("ok", 4800.0, "none"),
        ("ok", 4800.0, "apis")]
    plain = simulate_commands(sweep_data, tmp_path, {
        r["run_id"]: {"controller": r["controller"], "batterySize": r["batterySize"]}
        for r in rows})
    for row in rows:
        assert outputs(out / "runs" / row["run_id"]) == outputs(plain[row["run_id"]])
        total = next(r for r in read_rows(plain[row["run_id"]] / "summary.csv")
                     if r["time"] == "sum")
        assert {k: row[k] for k in (*KPIS, *SHARING_KPIS)} == {
            k: float(total[k]) if total[k] else None for k in (*KPIS, *SHARING_KPIS)}
    assert rows[3]["deals"] > 0  # sharing happened (2400 Wh batteries never reach 2880 Wh)
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(r["run_id"] for r in rows)
    assert sorted(outputs(out / "runs" / rows[1]["run_id"])) == ["deals.csv", "summary.csv"]


def _signatures() -> dict[str, int]:
    """In a worker: how many typed versions each of our compiled functions has loaded."""
    from numba.core.registry import CPUDispatcher

    return {f"{name}.{attr}": len(obj.signatures)
            for name, module in list(sys.modules.items()) if name.startswith("apis_emulator")
            for attr, obj in vars(module).items() if isinstance(obj, CPUDispatcher)}


def _worker_setup(dask_worker) -> dict:
    """In a worker: what the sweep's WORKER_CONFIG changes."""
    return {"profiler": "profile" in dask_worker.periodic_callbacks,
            "malloc_trim": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "numba_threads": numba.config.NUMBA_NUM_THREADS,  # type: ignore[attr-defined]
            "tick_ms": dask_worker.periodic_callbacks["tick"].callback_time}


def test_the_local_clusters_workers_are_ready_for_runs(sweep_data, tmp_path, monkeypatch):
    """The sweep's own LocalCluster: no statistical profiler, glibc's own malloc settings, one
    numba thread and a once-a-second event-loop tick in its workers; after the warm-up every
    compiled function a run calls is loaded, so a worker's first run (with and without a
    controller) loads or compiles nothing and costs what a later one does."""
    # a default LocalCluster started earlier in this process leaves Dask's value here
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    out = tmp_path / "sweep"
    (out / "runs").mkdir(parents=True)
    with local_cluster(1) as cluster, distributed.Client(cluster) as dask_client:
        (setup,) = dask_client.run(_worker_setup).values()
        assert setup == {"profiler": False, "malloc_trim": None, "numba_threads": 1,
                         "tick_ms": 1000}
        dask_client.run(check_worker, str(out / "runs"))
        (warm,) = dask_client.run(_signatures).values()
        table = records(run_sweep(two_by_two(sweep_data), out, client=dask_client))
        (after,) = dask_client.run(_signatures).values()
    assert [row["status"] for row in table] == ["ok"] * 4
    loaded = {name for name, n in warm.items() if n}
    assert {"apis_emulator.control.compiled_rules.advance",
            "apis_emulator.control.compiled_rules.take_day",
            "apis_emulator.control.compiled_rules.close",
            "apis_emulator.engine.kernel.run_steps_serial"} <= loaded
    assert after == warm


def test_the_table_has_its_columns_in_csv_and_parquet(local_sweep):
    """runs.csv: run_id, status, the axes, the KPIs with the shared energy and deals, wall_s,
    error; runs.parquet holds the same rows."""
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    out, table = local_sweep
    with open(out / "runs.csv", newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header == ["run_id", "status", "batterySize", "controller", "pv", "demand", "acin",
                      "wasted", "loss", "ssr_real", "ssr_pv", "sor", "shared_in", "shared_out",
                      "deals", "wall_s", "error"]
    assert list(table.columns) == header
    parquet = pandas.read_parquet(out / "runs.parquet")
    assert list(parquet.columns) == header
    assert records(parquet) == records(table)
    assert all(r["error"] is None for r in records(parquet))


def test_dask_scheduler_and_workers_give_the_same_table(local_sweep, dask_processes, sweep_data,
                                                        tmp_path):
    """The same sweep on `dask scheduler` + 2 `dask worker`: the same runs.csv (wall times
    aside) and the same run folders."""
    out = tmp_path / "sweep"
    run_sweep(two_by_two(sweep_data), out, scheduler=dask_processes)
    local_out, _ = local_sweep
    assert results_only(read_rows(out / "runs.csv")) == results_only(
        read_rows(local_out / "runs.csv"))
    for run in (local_out / "runs").iterdir():
        assert (out / "runs" / run.name / "summary.csv").read_bytes() == (
            run / "summary.csv").read_bytes()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _kill_mid_run(client, runs_dir: Path, killed: dict) -> None:
    """Wait until a worker runs a run that has started writing its folder; SIGKILL that
    worker; record the run and the partial folders it left (no run.json: cut short)."""
    def executing(dask_worker) -> list[str]:  # nested: sent by value to `dask worker`
        return [str(ts.key) for ts in dask_worker.state.executing]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for worker, keys in client.run(executing).items():
            run_ids = [key.split("-")[2] for key in keys if key.startswith("apis-run-")]
            partial = [p for r in run_ids for p in runs_dir.glob(f"{TMP_PREFIX}{r}-*")
                       if (p / "summary.csv").is_file()]
            if partial:
                pid = client.run(os.getpid, workers=[worker])[worker]
                os.kill(pid, signal.SIGKILL)
                while not _gone(pid):
                    time.sleep(0.01)
                killed.update(run_ids=run_ids, left=[
                    p.name for p in partial if p.is_dir() and not (p / "run.json").exists()])
                return
        time.sleep(0.02)


def test_a_killed_worker_loses_nothing(dask_processes, sweep_data, tmp_path):
    """SIGKILL of a `dask worker` in the middle of a run: Dask runs its task again, every run
    completes, the killed one with the numbers of `simulate`, and no partial folder is left."""
    sweep = {"sweep": {"days": 2, "units": 4, "data": str(sweep_data), "step": 0.02},
             "settings": {"UPS_TRIGGER_AC_ON": 20.0},
             "axes": {"batterySize": [2400.0, 4800.0], "initialRsoc": [30.0, 70.0]}}
    # Δt 0.02 s: runs of about 1.5 s, long enough to kill a worker in the middle of one
    out = tmp_path / "sweep"
    killed: dict = {}
    with distributed.Client(dask_processes) as watcher:
        killer = threading.Thread(target=_kill_mid_run, args=(watcher, out / "runs", killed))
        killer.start()
        table = run_sweep(sweep, out, scheduler=dask_processes)
        killer.join()
    assert killed.get("left"), f"no worker was killed in the middle of a run: {killed}"
    rows = records(table)
    assert [r["status"] for r in rows] == ["ok"] * 4
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(r["run_id"] for r in rows)
    victim = next(r for r in rows if r["run_id"] in killed["run_ids"])
    plain = simulate_commands(sweep_data, tmp_path / "plain", {"victim": {
        "step": 0.02, "batterySize": victim["batterySize"],
        "initialRsoc": victim["initialRsoc"]}})
    assert outputs(out / "runs" / victim["run_id"]) == outputs(plain["victim"])


class DataDependencies(SchedulerPlugin):  # type: ignore[misc, valid-type]
    """On the scheduler: the data each run task depends on when it starts, and where it is."""

    name = "sweep-test-data-dependencies"

    def __init__(self) -> None:
        self.started: list[dict] = []

    async def start(self, scheduler) -> None:
        self.scheduler = scheduler

    def transition(self, key, start, finish, *args, **kwargs) -> None:
        if finish == "processing" and str(key).startswith("apis-run-"):
            deps = self.scheduler.tasks[key].dependencies
            self.started.append({str(d.key): sorted(w.address for w in d.who_has or ())
                                 for d in deps})


def _started(dask_scheduler) -> list[dict]:
    return dask_scheduler.plugins[DataDependencies.name].started


def test_the_data_set_goes_to_each_worker_once_and_the_bar_shows_the_dashboard(
        client, sweep_data, tmp_path, capsys):
    """The data set is scattered to the workers before any run starts, and every run task
    refers to that one copy (it is not shipped with each task).  The progress bar counts runs
    done / total and shows the Dask dashboard's address."""
    client.register_plugin(DataDependencies())
    try:
        run_sweep(two_by_two(sweep_data), tmp_path / "sweep", client=client, progress=True)
        started = client.run_on_scheduler(_started)
    finally:
        client.unregister_scheduler_plugin(DataDependencies.name)
    workers = sorted(client.scheduler_info()["workers"])
    assert len(started) == 4 and all(len(deps) == 1 for deps in started)
    assert len({key for deps in started for key in deps}) == 1  # the same data for all
    # scattered before any run starts (held by a worker, not shipped with the task); a worker
    # still joining when it was broadcast gets it on its first run (seen once in CI)
    assert all(holders and set(holders) <= set(workers)
               for deps in started for holders in deps.values())
    assert next(iter(started[0])).startswith("DataSet-")
    err = capsys.readouterr().err
    assert "4/4" in err and f"dashboard={client.dashboard_link}" in err


def _inject_fault(battery_wh: float | None) -> None:
    """On a worker: runs with this battery size write half their days, then raise (None:
    undo)."""
    import apis_emulator.runner as runner

    original = runner.__dict__.get("_sweep_test_simulate", runner.simulate)
    runner._sweep_test_simulate = original
    if battery_wh is None:
        runner.simulate = original
        return

    def simulate(emulator, days, out_dir, **kwargs):
        if emulator.settings.batterySize != battery_wh:
            return original(emulator, days, out_dir, **kwargs)
        original(emulator, days / 2, out_dir, **kwargs)
        raise RuntimeError(f"injected fault in the run with a {battery_wh} Wh battery")

    runner.simulate = simulate


def test_a_run_that_raises_is_an_error_row_and_is_run_again(client, sweep_data, tmp_path):
    """A run that raises becomes an `error` row with its message and no folder; the others
    finish.  The next invocation runs only what failed or is missing; done runs keep their
    files untouched (same modification times)."""
    out = tmp_path / "sweep"
    client.run(_inject_fault, 2400.0)
    try:
        first = records(run_sweep(two_by_two(sweep_data), out, client=client))
    finally:
        client.run(_inject_fault, None)
    failed = [r for r in first if r["status"] == "error"]
    assert [r["batterySize"] for r in failed] == [2400.0, 2400.0]
    assert all("RuntimeError: injected fault in the run with a 2400.0 Wh battery" in r["error"]
               and r["pv"] is None for r in failed)
    done = sorted(p.name for p in (out / "runs").iterdir())
    assert done == sorted(r["run_id"] for r in first if r["status"] == "ok")  # no partial one

    shutil.rmtree(out / "runs" / done[0])  # a missing run, besides the two failed ones
    before = mtimes(out / "runs" / done[1])
    second = records(run_sweep(two_by_two(sweep_data), out, client=client))
    assert [r["status"] for r in second] == ["ok"] * 4
    assert mtimes(out / "runs" / done[1]) == before
    assert [r for r in second if r["run_id"] in done[1:]] == [
        r for r in first if r["run_id"] in done[1:]]  # the same values, wall times included
    third_before = mtimes(out / "runs")
    run_sweep(two_by_two(sweep_data), out, client=client)  # nothing left to run
    assert mtimes(out / "runs") == third_before


def test_the_function_returns_dicts_without_pandas(local_sweep, tmp_path, monkeypatch,
                                                  sweep_data):
    """Without pandas the Python function returns a list of dicts (the same rows)."""
    out = tmp_path / "copy"
    shutil.copytree(local_sweep[0], out)
    monkeypatch.setitem(sys.modules, "pandas", None)
    rows = run_sweep(two_by_two(sweep_data), out)  # all done: no Dask needed
    assert isinstance(rows, list) and [r["run_id"] for r in rows] == list(
        local_sweep[1]["run_id"])
    assert rows[0]["ssr_real"] == local_sweep[1]["ssr_real"][0]


def test_report_on_a_sweep_folder(local_sweep, tmp_path):
    """`report DIR` on a sweep: a table row per run in report.md and a PNG per KPI."""
    result = report(local_sweep[0], tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "4 ok, 0 failed" in text and "Axes: batterySize, controller" in text
    assert all(run_id in text for run_id in local_sweep[1]["run_id"])
    assert sorted(p.name for p in (tmp_path / "report").glob("*.png")) == sorted(
        f"sweep_{k}.png" for k in (*KPIS, *SHARING_KPIS, "shared_loss"))
    assert result.files["report"] == tmp_path / "report" / "report.md"


def _as_a_background_job() -> None:
    """A shell starts background jobs (a CI script's `cmd &`) with SIGINT ignored; Python
    keeps it so unless the command handles it itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(("to_group", "signum"), [(True, signal.SIGINT),
                                                  (False, signal.SIGTERM)])
def test_ctrl_c_leaves_only_complete_runs(sweep_data, tmp_path, to_group, signum):
    """Ctrl-C in a terminal (SIGINT to the command's process group, its local Dask workers
    included; even when started as a background job, with SIGINT ignored), or SIGTERM to the
    command, once a run is done: exit 130, only complete run
    folders, their rows in runs.csv, and the rest still to run."""
    sweep = tmp_path / "s.toml"
    sweep.write_text(f'[sweep]\ndays = 2\nunits = 4\nstep = 0.05\ndata = "{sweep_data}"\n\n'
                     "[axes]\nbatterySize = [" + ", ".join(str(1200.0 * k) for k in range(2, 16))
                     + "]\n",
                     encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "apis_emulator", "sweep", str(sweep),
                             "--out", str(out), "--workers", "2", "--no-progress"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=_as_a_background_job)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not any(
            p.is_dir() and not p.name.startswith(".") for p in (out / "runs").glob("*")):
        time.sleep(0.05)
    if to_group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 130, output
    assert "Traceback" not in output, output
    folders = list((out / "runs").iterdir())
    assert folders and all(is_done(p) for p in folders), output
    rows = read_rows(out / "runs.csv")
    assert sorted(r["run_id"] for r in rows) == sorted(p.name for p in folders)
    assert len(rows) < 14 and len(load_sweep(sweep).runs) == 14
    assert len(pending_runs(load_sweep(sweep), out)) == 14 - len(rows)
