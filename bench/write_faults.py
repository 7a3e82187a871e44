"""Write faults during a served run: how soon each is reported, what the clock does meanwhile,
how many rows are lost, how soon writing resumes once the fault has passed.

    .venv/bin/python bench/write_faults.py [--hold 10] [--only full,readonly,removed,postgres]

A real ``serve 3`` (1 emulated hour a wall second, a sample every emulated minute: 180 rows a
wall second for the individual log and as many for the database) records into the folder of
each fault, which lasts ``--hold`` wall seconds:

- ``full``: a 1 MiB tmpfs, filled by a file, then the file removed (root; mount(8));
- ``readonly``: the folder and its files made immutable with chattr +i, then -i (ext4);
- ``removed``: the folder deleted (rm -r); it is not given back: the sinks make it anew;
- ``postgres``: the database a PostgreSQL server of its own, stopped with ``pg_ctl -m fast``
  and started again on the same port and data.

Printed per fault and sink: seconds from the fault to its report in ``/api/status``, the
clock's measured speed during the fault (emulated s per wall s over the whole hold, against
the acceleration) and the emulated time it dropped (``behind_s``), rows not written, seconds
from the end of the fault to rows written again, and after a clean stop: exit status, "cannot
write" log lines, whole CSV files, SQLite's integrity check.  Nothing is asserted;
tests/test_reliability_recording.py checks the promises, docs/reliability.md keeps the figures.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))  # the faults and checks are the tests' own

import httpx  # noqa: E402

from apis_emulator.recorders import INDIV_COLUMNS  # noqa: E402
from fault_support import (  # noqa: E402
    PostgresServer,
    check_csv,
    check_sqlite,
    fill,
    immutable,
    mount_tmpfs,
    unmount,
)
from recorders_helpers import write_dataset  # noqa: E402
from web_support import Server, start_server  # noqa: E402

ACCELERATION = 3600.0
KINDS = ("individual log", "SQLite database", "PostgreSQL database")


def serve(root: Path, data: Path, out: Path, dburl: str | None = None) -> Server:
    env = {"APIS_EMULATOR_SUMMARYPATH": str(out / "summary.csv"),
           "APIS_EMULATOR_INDIVLOGPATH": str(out / "indivLog.csv"),
           "APIS_EMULATOR_INDIVLOGINTERVAL": "60", "APIS_EMULATOR_SAVEINDIVIDUALTODB": "true",
           "APIS_EMULATOR_DBURL": dburl or f"sqlite:///{out / 'apis.sqlite'}"}
    return start_server(root / "serve", data, units=3, env=env,
                        extra=["--acceleration", str(ACCELERATION)])


def sinks(client: httpx.Client) -> dict[str, dict[str, Any]]:
    found = client.get("/api/status").json()["recording"]
    return {k: v for name, v in found.items() for k in KINDS if name.startswith(k)}


def wait(check: Callable[[], bool], timeout: float = 120.0) -> float | None:
    """Seconds until ``check()`` holds, or None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def trial(name: str, server: Server, start: Callable[[], None], end: Callable[[], None] | None,
          hold: float, files: Path | None) -> None:
    """Apply a fault for ``hold`` seconds and print what each sink did; ``end`` None: the
    fault is never lifted (the sinks mend it), writing again is timed from its start."""
    with server.client() as client:
        wait(lambda: all(s["rows_written"] > 0 for s in sinks(client).values()))
        before = client.get("/api/status").json()
        began = time.monotonic()
        start()
        reported = {k: wait(lambda k=k: sinks(client)[k]["fault"] is not None, hold)
                    for k in sinks(client)}
        back = _writing_again(client, began) if end is None else {}
        time.sleep(max(0.0, hold - (time.monotonic() - began)))
        during = client.get("/api/status").json()
        speed = (during["emulated_s"] - before["emulated_s"]) / (time.monotonic() - began)
        if end is not None:
            end()
            back = _writing_again(client, time.monotonic())
        last = sinks(client)
    code = server.stop()
    log = server.log()
    dropped = during["behind_s"] - before["behind_s"]
    for kind, status in last.items():
        if name == "postgres" and kind != "PostgreSQL database":
            continue  # the CSV log of that run meets no fault
        lines = len(re.findall(re.escape(kind) + r" \S+ cannot write", log))
        print(f"| {name} | {kind} | {_s(reported[kind])} | {speed:,.0f} of "
              f"{ACCELERATION:,.0f} | {dropped:.0f} | {status['not_written']:,} | "
              f"{_s(back[kind])} | {status['faults']} | {lines} | {code} | "
              f"{_files(files, kind)} |", flush=True)


def _writing_again(client: httpx.Client, since: float) -> dict[str, float | None]:
    """Per sink, [s] from ``since`` until it writes rows again without a fault."""
    written = {k: s["rows_written"] for k, s in sinks(client).items()}
    return {k: _since(since, wait(lambda k=k: sinks(client)[k]["fault"] is None
                                  and sinks(client)[k]["rows_written"] > written[k]))
            for k in written}


def _since(when: float, waited: float | None) -> float | None:
    """[s] from ``when`` to the end of a wait that just returned (None: it timed out)."""
    return None if waited is None else time.monotonic() - when


def _s(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.1f}"


def _files(out: Path | None, kind: str) -> str:
    if out is None or kind == "PostgreSQL database":
        return "–"
    if kind == "SQLite database":
        return f"integrity {check_sqlite(out / 'apis.sqlite')[0]}"
    found = check_csv(out / "indivLog.csv", INDIV_COLUMNS)
    return f"{found.rows:,} whole rows, cut {found.cut}, bad {len(found.bad)}"


def run(kind: str, root: Path, data: Path, hold: float) -> None:
    work = root / kind
    if kind == "full":
        disk = work / "disk"
        mount_tmpfs(disk, "1m")
        try:
            filler: list[Path] = []
            trial(kind, serve(work, data, disk), lambda: filler.append(fill(disk)),
                  lambda: filler[0].unlink(), hold, disk)
        finally:
            unmount(disk)
    elif kind == "readonly":
        out = work / "out"
        locked = [out, *(out / n for n in ("summary.csv", "indivLog.csv", "apis.sqlite",
                                            "apis.sqlite-wal"))]
        try:
            trial(kind, serve(work, data, out), lambda: immutable(locked, True),
                  lambda: immutable(locked, False), hold, out)
        finally:
            immutable(locked, False)
    elif kind == "removed":
        out = work / "out"
        trial(kind, serve(work, data, out), lambda: shutil.rmtree(out), None, hold, out)
    else:
        pg = PostgresServer()
        try:
            trial(kind, serve(work, data, work / "out", pg.url), pg.stop, pg.start, hold, None)
        finally:
            pg.remove()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=10.0, help="[s] each fault lasts")
    parser.add_argument("--only", default="full,readonly,removed,postgres")
    args, _ = parser.parse_known_args(argv)
    load = subprocess.run(["cat", "/proc/loadavg"], capture_output=True, text=True).stdout
    print(f"write faults, held {args.hold:g} s each; load average {load.split()[0]}")
    print("| fault | sink | reported after [s] | clock during the fault [emulated s / s] | "
          "emulated time dropped [s] | rows not written | writing again after [s] | "
          "failed attempts | 'cannot write' lines | exit | files after the stop |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="apis-emulator-faults-") as tmp:
        root = Path(tmp)
        data = write_dataset(root / "dataset", households=3)
        for kind in args.only.split(","):
            run(kind, root, data, args.hold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
