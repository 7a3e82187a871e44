"""What the write-fault and crash tests share: real faults (a small tmpfs, an immutable
folder, a PostgreSQL server that stops and starts again) and checks of what a run left behind.

Nothing here is mocked: the tmpfs is mounted, the folder made immutable with chattr(1) (the
kernel then refuses writes even through files already open, which neither chmod, ignored by
root, nor a read-only remount, refused while files are open for writing, can do), the server
is Debian's PostgreSQL stopped with pg_ctl.  Every wait is bounded.
"""

from __future__ import annotations

import csv
import errno
import glob
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from recorders_helpers import free_port


def wait_until(what: str, check: Callable[[], Any], timeout: float = 60.0,
               every: float = 0.1) -> Any:
    """``check()``'s first true value; fails naming ``what`` after ``timeout`` [s]."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(every)


# ---------------------------------------------------------------------------------- disks
def mount_tmpfs(where: Path, size: str) -> None:
    """A tmpfs of ``size`` at ``where`` (root only; skipped, saying why, elsewhere)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (make test runs as root)")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                           str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; its path."""
    filler = disk / "filler"
    block = b"\0" * 4096
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def immutable(paths: list[Path], on: bool) -> None:
    """chattr +i / -i: the kernel refuses every write, open files included (ext4)."""
    found = [str(p) for p in paths if p.exists()]
    done = subprocess.run(["chattr", "+i" if on else "-i", *found], capture_output=True,
                          text=True)
    if done.returncode != 0 and on:
        pytest.skip(f"chattr +i is not supported here: {done.stderr.strip()}")


# ---------------------------------------------------------------------------------- checks
@dataclass
class CsvCheck:
    """What a CSV file holds: whole rows, and whether its last line was cut."""

    rows: int  # complete data rows
    cut: int  # a last line without its newline (0 or 1)
    bad: list[str]  # rows with the wrong number of cells


def check_csv(path: Path, columns: tuple[str, ...]) -> CsvCheck:
    """Read ``path``: the header must be ``columns``, every row as many cells."""
    data = path.read_bytes()
    cut = 0 if not data or data.endswith(b"\n") else 1
    lines = data.decode("utf-8").split("\n")
    if cut:
        lines = lines[:-1]
    rows = list(csv.reader(line for line in lines if line))
    bad = [] if rows and tuple(rows[0]) == columns else [f"header {rows[:1]}"]
    bad += [",".join(r) for r in rows[1:] if len(r) != len(columns)]
    return CsvCheck(rows=max(0, len(rows) - 1), cut=cut, bad=bad)


def check_sqlite(path: Path) -> tuple[str, int]:
    """(``PRAGMA integrity_check``'s answer, rows of every run: unit states, day rows,
    sum and avg, deals) of the database file."""
    db = sqlite3.connect(path)
    try:
        answer = str(db.execute("PRAGMA integrity_check").fetchone()[0])
        rows = sum(int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                   for table in ("unit_states", "daily_summary", "run_totals", "deals"))
        return answer, rows
    finally:
        db.close()


# ---------------------------------------------------------------------------------- PostgreSQL
def _server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).resolve().parent if pg_ctl else None


class PostgresServer:
    """A PostgreSQL server of its own on 127.0.0.1 and a free port, which a test stops and
    starts again on the same port and data directory (as the postgres user when root)."""

    def __init__(self) -> None:
        bindir = _server_bin()
        if bindir is None:
            pytest.skip("PostgreSQL server binaries not found: `make test` installs Debian's "
                        "postgresql")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="apis-emulator-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E",
                  "UTF8")
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        command = [str(self.bindir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0 and check:
            text = self.log.read_text() if self.log.exists() else ""
            pytest.fail(f"{tool} {' '.join(args)} failed: {done.stderr}\n{text[-2000:]}")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} "
                  "-c unix_socket_directories='' -c fsync=off", "start")

    def stop(self) -> None:
        """A fast stop: every session is ended, as an administrator's restart does."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop",
                  check=False)
        shutil.rmtree(self.root, ignore_errors=True)
