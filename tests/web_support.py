"""Real servers for the web tests: `python -m apis_emulator serve` on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["write_dataset", "free_port", "Server", "start_server", "local_safety_errors"]


def write_dataset(directory: Path, households: int = 4, pv_peak_w: float = 2000.0,
                  load_kw: tuple[float, float, int] = (0.2, 0.1, 4), name: str = "test") -> Path:
    """A small data set: a bell of PV around noon (output in W); half-hour loads
    ``base + step · ((k + house) mod period)`` [kW] from ``load_kw = (base, step, period)``."""
    directory.mkdir(parents=True, exist_ok=True)
    day = [max(0.0, pv_peak_w * (1 - ((h - 12) / 6) ** 2)) for h in range(24)]
    (directory / "solar.csv").write_text(
        "\n".join(",".join(f"{v:.1f}" for v in day) for _ in range(365)) + "\n")
    base, step, period = load_kw
    lines = ["date,house,a,b,c,d," + ",".join(f"h{k}" for k in range(48))]
    for house in range(1, households + 1):
        values = ",".join(f"{base + step * ((k + house) % period):.3f}" for k in range(48))
        lines += [f"{20190101 + d},{house},0,0,0,0,{values}" for d in range(365)]
    (directory / "load.csv").write_text("\n".join(lines) + "\n")
    (directory / "dataset.json").write_text(json.dumps(
        {"name": name, "solar": {"file": "solar.csv", "unit": "W"},
         "load": {"file": "load.csv", "layout": "rows"}}))
    return directory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    cwd: Path
    log_path: Path

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0, **kwargs)  # type: ignore[arg-type]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_server(cwd: Path, data: Path, units: int = 4, env: dict[str, str] | None = None,
                 extra: list[str] | None = None, timeout: float = 60.0) -> Server:
    """Start a server and wait until it answers /get/acc."""
    port = free_port()
    cwd.mkdir(parents=True, exist_ok=True)
    log_path = cwd / "server.out"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("APIS_EMULATOR_")}
    full_env.update(env or {})
    command = [sys.executable, "-m", "apis_emulator", "serve", str(units), "--port", str(port),
               "--data", str(data), *(extra or [])]
    with open(log_path, "wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=full_env, stdout=out,
                                   stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", cwd, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + "/get/acc", timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"server did not answer within {timeout} s:\n{server.log()}")


# apis-main's LocalSafetyEvaluation (shared/docs/apis-main-contract.md b.2), with exe/hwConfig.json
RANGES = {"tmp": (0.0, 45.0), "vg": (-4.0, 380.0), "vb": (32.0, 58.4), "ig": (-2.35, 2.35),
          "ib": (-20.0, 20.0)}
OPERATION_MODES = {"0x0000": "Waiting", "0x0014": "Grid Autonomy", "0x0041": "Heteronomy CV",
                   "0x0002": "Heteronomy CV"}


def local_safety_errors(unit: dict, dynamic: bool = True) -> list[str]:
    """The checks apis-main runs on every /get/unit result; [] when all pass."""
    errors = []
    dcdc = unit["dcdc"]
    meter = dcdc["meter"]
    for key, (lo, hi) in RANGES.items():
        value = meter.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            errors.append(f"meter.{key} missing or not a number: {value!r}")
        elif not lo <= value <= hi:
            errors.append(f"meter.{key}={value} outside [{lo}, {hi}]")
    status = dcdc["status"]
    if status.get("alarmState") == "Heavy alarm":
        errors.append("Heavy alarm")
    mode = status.get("status")
    if OPERATION_MODES.get(mode) != status.get("operationMode"):
        errors.append(f"status {mode!r} with operationMode {status.get('operationMode')!r}")
    bos = unit["emu"].get("battery_operation_status")
    if bos is not None and (not isinstance(bos, int | float) or int(bos) != 3):
        errors.append(f"battery_operation_status={bos!r}")
    dig, dvg = dcdc["param"].get("dig"), dcdc["vdis"].get("dvg")
    if not isinstance(dig, int | float) or not isinstance(dvg, int | float):
        errors.append("dcdc.param.dig or dcdc.vdis.dvg missing")
        return errors
    if dynamic:
        errors += _dynamic_errors(mode, meter["vg"], meter["ig"], dig, dvg)
    return errors


def _dynamic_errors(mode: str, vg: float, ig: float, dig: float, dvg: float) -> list[str]:
    if mode == "0x0000" and abs(ig) > 0.125:
        return [f"WAIT with ig={ig}"]
    if mode == "0x0014" and abs(vg - dvg) > 4:
        return [f"VR with vg={vg}, dvg={dvg}"]
    if mode == "0x0041" and (abs(ig - dig) > 0.125 or not 300 <= vg <= 380):
        return [f"CHARGE with ig={ig}, dig={dig}, vg={vg}"]
    if mode == "0x0002" and (abs(ig + dig) > 0.125 or not 300 <= vg <= 380):
        return [f"DISCHARGE with ig={ig}, dig={dig}, vg={vg}"]
    return []
