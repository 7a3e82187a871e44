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

import pytest

distributed = pytest.importorskip("distributed")

from apis_emulator.config import load_settings  # noqa: E402
from apis_emulator.control import build_controller, controller_step  # noqa: E402
from apis_emulator.engine import Emulator  # noqa: E402
from apis_emulator.inputs import load_dataset  # noqa: E402
from apis_emulator.report import report  # noqa: E402
from apis_emulator.runner import simulate  # noqa: E402
from apis_emulator.sweep import load_sweep, run_sweep  # noqa: E402
from apis_emulator.sweep.task import KPIS, SHARING_KPIS, TMP_PREFIX  # noqa: E402

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


def plain_simulate(sweep_data: Path, out: Path, days: float, units: int, controller: str = "none",
                   **settings) -> Path:
    """The same run by `simulate` itself (its default step with a controller); returns out."""
    values = {"UPS_TRIGGER_AC_ON": 20.0, **settings}
    if controller != "none":
        values.setdefault("step", controller_step(1.0))
    em = Emulator(load_settings(None, env={}, overrides=values).with_defaults_for("simulate"),
                  load_dataset(sweep_data), units)
    simulate(em, days, out, indiv_interval=None, progress=False, database=False,
             handle_signals=False, controller=build_controller(controller, em))
    return out


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
    """Each run of the 2×2 sweep wrote what a plain `simulate` run writes, bit for bit, and
    its row has the KPIs of that run's `sum` row exactly."""
    out, table = local_sweep
    rows = records(table)
    assert [(r["status"], r["controller"]) for r in rows] == [
        ("ok", "none"), ("ok", "apis"), ("ok", "none"), ("ok", "apis")]
    for row in rows:
        plain = plain_simulate(sweep_data, tmp_path / row["run_id"], 2, 4, row["controller"],
                               batterySize=row["batterySize"])
        assert outputs(out / "runs" / row["run_id"]) == outputs(plain)
        total = next(r for r in read_rows(plain / "summary.csv") if r["time"] == "sum")
        assert all(row[k] == float(total[k]) for k in (*KPIS, "shared_in", "shared_out")
                   if total[k])  # exactly, not approximately
        assert (row["deals"] is None) == (row["controller"] == "none")
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(r["run_id"] for r in rows)
    assert sorted(outputs(out / "runs" / rows[1]["run_id"])) == ["deals.csv", "summary.csv"]


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


def _kill_a_busy_worker(client, runs_dir: Path, killed: dict) -> None:
    """Wait until a run has been going for a while on a worker; SIGKILL that worker."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        busy = {w: keys for w, keys in client.processing().items()
                if any(str(k).startswith("apis-run-") for k in keys)}
        if busy and any(runs_dir.glob(f"{TMP_PREFIX}*")):
            time.sleep(0.4)  # well inside a run of about 1.5 s
            worker, keys = next(iter(busy.items()))
            pid = client.run(os.getpid, workers=[worker])[worker]
            killed.update(worker=worker, keys=list(keys), pid=pid)
            os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def test_a_killed_worker_loses_nothing(dask_processes, sweep_data, tmp_path):
    """SIGKILL of a worker mid-run: Dask runs its task elsewhere; every run completes with
    the numbers of `simulate`, and no partial folder is left."""
    sweep = {"sweep": {"days": 2, "units": 4, "data": str(sweep_data), "step": 0.02},
             "axes": {"batterySize": [2400.0, 4800.0], "initialRsoc": [30.0, 70.0]}}
    # Δt 0.02 s: runs of about 1.5 s, long enough to kill a worker in the middle of one
    out = tmp_path / "sweep"
    killed: dict = {}
    with distributed.Client(dask_processes) as watcher:
        killer = threading.Thread(target=_kill_a_busy_worker,
                                  args=(watcher, out / "runs", killed))
        killer.start()
        table = run_sweep(sweep, out, scheduler=dask_processes)
        killer.join()
    assert killed, "no worker was killed"
    rows = records(table)
    assert [r["status"] for r in rows] == ["ok"] * 4
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(r["run_id"] for r in rows)
    victim = next(r for r in rows if any(r["run_id"] in str(k) for k in killed["keys"]))
    plain = plain_simulate(sweep_data, tmp_path / "plain", 2, 4, step=0.02,
                           UPS_TRIGGER_AC_ON=20.0, batterySize=victim["batterySize"],
                           initialRsoc=victim["initialRsoc"])
    assert outputs(out / "runs" / victim["run_id"]) == outputs(plain)


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


def test_ctrl_c_leaves_only_complete_runs(sweep_data, tmp_path):
    """SIGINT to `apis-emulator sweep`: exit 130, only complete run folders, their rows."""
    sweep = tmp_path / "s.toml"
    sweep.write_text(f'[sweep]\ndays = 2\nunits = 4\nstep = 0.05\ndata = "{sweep_data}"\n\n'
                     "[axes]\nbatterySize = [2400.0, 3600.0, 4800.0, 6000.0, 7200.0, 8400.0]\n",
                     encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "apis_emulator", "sweep", str(sweep),
                             "--out", str(out), "--workers", "2", "--no-progress"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not any(
            p.is_dir() and not p.name.startswith(".") for p in (out / "runs").glob("*")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 130, output
    folders = [p for p in (out / "runs").iterdir()]
    assert folders and all((p / "run.json").is_file() for p in folders), output
    assert not [p for p in folders if p.name.startswith(TMP_PREFIX)]
    rows = read_rows(out / "runs.csv")
    assert sorted(r["run_id"] for r in rows) == sorted(p.name for p in folders)
    assert len(rows) < 6 and len(load_sweep(sweep).runs) == 6
