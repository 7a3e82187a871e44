"""Crash trials: SIGKILL a served run or a headless ``simulate`` at random moments, check what
it left behind, and start the next run on the same files.

Shared by tests/test_recorders_crash.py (a bounded number of kills in ``make test``) and
bench/crash_trials.py (100 kills each, printing the figures of docs/reliability.md).

After each kill every output is checked: each CSV file is whole (its header, then rows of the
right number of cells, its last byte a newline: complete or cut at a row boundary), each
SQLite database passes ``PRAGMA integrity_check``, each Parquet part reads, the Save All file
parses.  The next trial starts on the same folder, which is the test of the next start: a
served run must answer, open its recorders (the earlier files set aside, the same database
opened again) and write rows; a headless one must start and write.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from apis_emulator.engine.deals import DEAL_COLUMNS
from apis_emulator.recorders import INDIV_COLUMNS, SUMMARY_COLUMNS
from fault_support import check_csv, check_sqlite
from web_support import Server, start_server

#: Columns of each CSV a run writes, by the start of its name (served runs set earlier files
#: aside as summary.<time>.csv…).
CSV_COLUMNS = {"summary": SUMMARY_COLUMNS, "indivLog": INDIV_COLUMNS, "deals": DEAL_COLUMNS}
MOMENTS = ("save", "day end", "log write")
#: Served: 2 emulated hours a wall second in ticks of 0.1 s; a sample every emulated minute
#: (360 rows a second for 3 units); each run starts 15 emulated minutes before a midnight.
ACCELERATION = 7200.0
START = "2019-01-01T23:45:00"


@dataclass
class Figures:
    """What the trials found; every count but kills, files and moments should stay 0."""

    kills: int = 0
    files_checked: int = 0
    cut_rows: int = 0  # a CSV whose last line lacks its newline: a row cut in the middle
    bad_rows: int = 0  # rows with the wrong number of cells, a wrong header, a broken part
    integrity_failures: int = 0  # SQLite databases failing PRAGMA integrity_check
    save_failures: int = 0  # a Save All file that does not parse
    next_start_failures: int = 0
    save_temp_files: int = 0  # Save All's temporary files left by kills (harmless)
    moments: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return (self.cut_rows + self.bad_rows + self.integrity_failures + self.save_failures
                + self.next_start_failures)

    def line(self) -> str:
        moments = ", ".join(f"{k} {v}" for k, v in sorted(self.moments.items()))
        return (f"kills {self.kills} ({moments}); files checked {self.files_checked}; "
                f"cut rows {self.cut_rows}; bad rows {self.bad_rows}; integrity failures "
                f"{self.integrity_failures}; unreadable saves {self.save_failures}; next-start "
                f"failures {self.next_start_failures}; save temp files left "
                f"{self.save_temp_files}")

    def problem(self, text: str) -> None:
        self.problems.append(text)

    @classmethod
    def merged(cls, parts: list[Figures]) -> Figures:
        """The figures of trials run side by side (in folders of their own), added up."""
        total = cls()
        for part in parts:
            for name in ("kills", "files_checked", "cut_rows", "bad_rows", "integrity_failures",
                         "save_failures", "next_start_failures", "save_temp_files"):
                setattr(total, name, getattr(total, name) + getattr(part, name))
            total.moments.update(part.moments)
            total.problems += part.problems
        return total


# ---------------------------------------------------------------------------------- checks
def check_outputs(folder: Path, figures: Figures, current_only: bool = True) -> None:
    """Check every output in ``folder`` (only the present run's names: earlier ones were
    checked after their own kill) and count what is wrong in ``figures``."""
    for path in sorted(folder.glob("*.csv")):
        kind = next((k for k in CSV_COLUMNS if path.name.startswith(k)), None)
        if kind is None or (current_only and path.name != f"{kind}.csv"):
            continue
        found = check_csv(path, CSV_COLUMNS[kind])
        figures.files_checked += 1
        figures.cut_rows += found.cut
        figures.bad_rows += len(found.bad)
        if found.cut or found.bad:
            figures.problem(f"{path}: cut {found.cut}, bad {found.bad[:3]}")
    for path in sorted(folder.glob("*.sqlite")):
        figures.files_checked += 1
        try:
            answer = check_sqlite(path)[0]
        except Exception as exc:  # a database that cannot even be read fails the check
            answer = str(exc)
        if answer != "ok":
            figures.integrity_failures += 1
            figures.problem(f"{path}: {answer}")
    _check_parquet(folder / "indivLog.parquet", figures)


def _check_parquet(folder: Path, figures: Figures) -> None:
    if not folder.is_dir():
        return
    import pyarrow.parquet as pq

    for part in sorted(folder.glob("part-*.parquet")):
        figures.files_checked += 1
        try:
            pq.read_metadata(part)
        except Exception as exc:
            figures.bad_rows += 1
            figures.problem(f"{part}: {exc}")


def check_save(folder: Path, figures: Figures) -> None:
    """The Save All file parses (a kill leaves the previous save or the new one); the
    temporary files that kills left in its folder are counted (the next start keeps them)."""
    save = folder / "lastSave.json"
    figures.save_temp_files = len(list(folder.glob(".lastSave.json.*.tmp")))
    if not save.exists():
        return
    figures.files_checked += 1
    try:
        json.loads(save.read_bytes())
    except ValueError as exc:
        figures.save_failures += 1
        figures.problem(f"{save}: {exc}")


# ---------------------------------------------------------------------------------- served
class ServedTrials:
    """Kill after kill of ``serve 3`` in one working folder, each start the next start of the
    run killed before it."""

    def __init__(self, workdir: Path, data: Path, rng: random.Random, units: int = 3):
        self.workdir, self.data, self.rng, self.units = workdir, data, rng, units
        self.figures = Figures()
        self.output = workdir / "data" / "output"

    def start(self) -> Server | None:
        """A server on the folder, answering and writing rows; None if it did not."""
        env = {"APIS_EMULATOR_SAVEINDIVIDUALTODB": "true",
               "APIS_EMULATOR_INDIVLOGINTERVAL": "60", "APIS_EMULATOR_SLEEPTIME": "0.1"}
        try:
            server = start_server(self.workdir, self.data, units=self.units, env=env,
                                  extra=["--acceleration", str(ACCELERATION),
                                         "--start", START])
        except RuntimeError as exc:
            self._start_failed(str(exc))
            return None
        with server.client() as client:
            if not _writes_rows(client):
                self._start_failed(server.log())
                server.stop(signal.SIGKILL)
                return None
            if (self.workdir / "jsontmp" / "lastSave.json").exists() and \
                    client.get("/get/last").status_code != 200:
                self._start_failed("Load Last refused the save left by the kill")
        return server

    def _start_failed(self, why: str) -> None:
        self.figures.next_start_failures += 1
        self.figures.problem(f"next start: {why[-2000:]}")

    def trial(self) -> bool:
        """Start, kill at a random moment, check; False if the start failed."""
        server = self.start()
        if server is None:
            return False
        moment = MOMENTS[self.figures.kills % len(MOMENTS)]
        with server.client() as client:
            if moment == "save":
                _kill_while_saving(server, client, self.rng)
            elif moment == "day end":
                _kill_at_midnight(server, client, self.rng)
            else:
                time.sleep(self.rng.uniform(0.0, 1.0))
                _kill(server)
        self.figures.kills += 1
        self.figures.moments[moment] += 1
        check_outputs(self.output, self.figures)
        check_save(self.workdir / "jsontmp", self.figures)
        return True

    def last_start(self) -> None:
        """The next start after the last kill, then a clean stop: exit 0, files closed."""
        server = self.start()
        if server is None:
            return
        if server.stop() != 0:
            self._start_failed(f"clean stop exited {server.process.returncode}")
        check_outputs(self.output, self.figures, current_only=False)


def _writes_rows(client: httpx.Client, timeout: float = 60.0) -> bool:
    """The recorders opened without an error and the individual log took rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get("/api/status").json().get("recording", {})
        if any("error" in s and s["error"] for s in status.values()):
            return False
        if any(name.startswith("individual log") and s.get("rows_written", 0) > 0
               for name, s in status.items()):
            return True
        time.sleep(0.05)
    return False


def _kill(server: Server) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(30)


def _kill_while_saving(server: Server, client: httpx.Client, rng: random.Random) -> None:
    """Save All again and again from a thread; the kill lands in one of them."""
    stop = threading.Event()

    def save() -> None:
        with httpx.Client(base_url=server.url, timeout=5.0) as saver:
            while not stop.is_set():
                try:
                    saver.get("/save")
                except httpx.HTTPError:
                    return
    saver = threading.Thread(target=save, daemon=True)
    saver.start()
    time.sleep(rng.uniform(0.05, 0.6))
    _kill(server)
    stop.set()
    saver.join(10)


def _kill_at_midnight(server: Server, client: httpx.Client, rng: random.Random) -> None:
    """Kill within a tick or two of the next emulated midnight, when the day row is written
    and the sample of midnight logged."""
    now = dt.datetime.strptime(client.get("/api/status").json()["time"], "%Y/%m/%d-%H:%M:%S")
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time())
    wall = (midnight - now).total_seconds() / ACCELERATION
    time.sleep(max(0.0, wall + rng.uniform(-0.1, 0.2)))
    _kill(server)


# ---------------------------------------------------------------------------------- headless
class SimulateTrials:
    """Kill after kill of ``simulate`` into one ``--out`` folder (CSV log and Parquet log in
    turn, SQLite on), each start the next start of the run killed before it."""

    def __init__(self, workdir: Path, data: Path, rng: random.Random, units: int = 3):
        self.workdir, self.data, self.rng, self.units = workdir, data, rng, units
        self.figures = Figures()
        self.out = workdir / "out"

    def _start(self, days: int) -> subprocess.Popen[bytes]:
        fmt = "csv" if self.figures.kills % 2 == 0 else "parquet"
        self.workdir.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [sys.executable, "-m", "apis_emulator", "simulate", "--data", str(self.data),
             "--out", str(self.out), "--days", str(days), "--units", str(self.units),
             "--indiv-interval", "60", "--db", "sqlite", "--indiv-format", fmt,
             "--no-progress"], cwd=self.workdir, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)

    def trial(self) -> bool:
        """Start, wait until it writes, kill at a random moment, check."""
        started = time.time_ns()
        proc = self._start(days=30)
        if not _simulate_writes(proc, self.out / "summary.csv", started):
            self._start_failed(proc)
            return False
        time.sleep(self.rng.uniform(0.0, 2.0))
        if proc.poll() is not None:  # it finished first: not a kill
            return True
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        _close_pipe(proc)
        self.figures.kills += 1
        self.figures.moments["simulate"] += 1
        check_outputs(self.out, self.figures)
        return True

    def _start_failed(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        _close_pipe(proc)
        self.figures.next_start_failures += 1
        self.figures.problem(f"next start: {error[-2000:]}")

    def last_start(self) -> None:
        """A whole short run after the last kill: exit 0, files closed and whole."""
        proc = self._start(days=2)
        try:
            _, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode != 0:
            self.figures.next_start_failures += 1
            self.figures.problem(f"last start exited {proc.returncode}: {err.decode()[-2000:]}")
        check_outputs(self.out, self.figures)


def _simulate_writes(proc: subprocess.Popen[bytes], summary: Path, started: int,
                     timeout: float = 60.0) -> bool:
    """Until this run (not the one killed before: modified after ``started`` [ns]) has
    written its first day row, so that the kill lands mid-run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            found = summary.stat()
        except FileNotFoundError:
            found = None
        if found is not None and found.st_mtime_ns > started and found.st_size > 250:
            return True
        time.sleep(0.02)
    return False


def _close_pipe(proc: subprocess.Popen[bytes]) -> None:
    if proc.stderr:
        proc.stderr.close()


def run_trials(trials: Any, kills: int, max_attempts: int | None = None) -> Figures:
    """``kills`` kills (fewer if starts fail ``max_attempts`` times), then the last start."""
    attempts = 0
    while trials.figures.kills < kills and attempts < (max_attempts or 2 * kills):
        attempts += 1
        trials.trial()
    trials.last_start()
    return trials.figures
