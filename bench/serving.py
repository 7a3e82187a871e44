"""A real server for the benchmarks: a ``serve`` command line on a free loopback port.

Shared by bench/http_load.py, bench/http_limits.py and bench/soak.py: start the process, wait
until it answers, read its resident memory, open files and threads from /proc, stop it with
SIGTERM (the clean stop that writes the recorders' closing rows).  Not a benchmark itself
(bench/run_all.py leaves it out).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

__all__ = ["free_port", "start_server", "stop_server", "rss_mb", "open_fds", "threads",
           "cpu_s"]


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(command: list[str], cwd: Path, output: IO[bytes] | int = subprocess.DEVNULL,
                 timeout: float = 120.0, src: Path | None = None,
                 ) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``python <command> --port P`` in ``cwd``; (process, base URL) once /get/acc answers.

    ``command`` is what follows the interpreter (``["-m", "apis_emulator", "serve", "100"]``).
    The caller's ``APIS_EMULATOR_*`` variables are left out, so a shell's settings do not change
    what is measured.  ``timeout`` [s] covers numba loading the cached kernel on a busy machine.
    ``src``: another checkout's ``src`` to serve (``PYTHONPATH`` comes before the editable
    install), e.g. a clean worktree of the commit measured while the checkout is being edited.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIS_EMULATOR_")}
    if src is not None:
        env["PYTHONPATH"] = str(src.resolve())
    process = subprocess.Popen([sys.executable, *command, "--port", str(port)], cwd=cwd,
                               env=env, stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url + "/get/acc", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_server(process, timeout=5.0)
    raise RuntimeError(f"the server did not start (exit {process.returncode}): "
                       f"{' '.join(command)}")


def stop_server(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout`` [s]; the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` [MB] (/proc/PID/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds(pid: int) -> int:
    """Open file descriptors of ``pid`` (files, sockets, pipes): /proc/PID/fd."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid: int) -> int:
    """Threads of ``pid``: /proc/PID/task."""
    return len(os.listdir(f"/proc/{pid}/task"))


def cpu_s(pid: int) -> float:
    """CPU time ``pid`` has used so far, user + system, all threads [s] (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
