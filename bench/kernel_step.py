"""The compiled step alone: nanoseconds per unit and step, by version of the kernel.

A synthetic community (varied PV, loads, batteries full and empty, some units on the DC grid)
runs a day of Δt 10 s in process, best of ``--repeat`` calls:

- ``run_steps_serial`` / ``run_steps_parallel``: the headless and served kernel, with a band
  watched (a controller) and without (``None``: the step compiled without the check);
- ``run_steps_until``: the compiled controller's block of physics (all units side by side).

CPU time is the process's (both threads); wall time is the call's.  Nothing is asserted.

    .venv/bin/python bench/kernel_step.py                  # 100 and 1,000 units
    .venv/bin/python bench/kernel_step.py --units 64 10000 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from apis_emulator.config import Settings
from apis_emulator.engine import kernel

STEPS = 8640  # a day at Δt 10 s


def community(n_units: int, seed: int = 1) -> dict[str, Any]:
    """The kernel's arguments for ``n_units`` units on 100 households."""
    rng = np.random.default_rng(seed)
    k = np.arange(STEPS)
    capacity = rng.choice([2400.0, 4800.0, 9600.0], n_units)
    return {
        "dt": 10.0,
        "solar_w": np.clip(np.sin(np.linspace(0.0, np.pi, STEPS)), 0.0, None) * 900.0,
        "load_j": (k // 180 % 48).astype(np.int64), "load_f": (k % 180) / 180.0,
        "load_kw": rng.random((100, 48)) * 2.5, "house": rng.integers(0, 100, n_units),
        "pv_gain": rng.random(n_units) * 8.0,
        "wg": rng.choice([0.0, 0.0, 300.0, -300.0], n_units),
        "dcdc_loss": rng.random(n_units) * 60.0, "p": kernel.params_vector(Settings()),
        "energy": capacity * rng.random(n_units), "capacity": capacity,
        "bypass": rng.random(n_units) < 0.3, "ac_charge": rng.random(n_units) < 0.2,
        "out": np.zeros((n_units, 7)), "ledger": np.zeros((n_units, 8)),
    }


def measure(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best (CPU, wall) seconds of ``call`` over ``repeat`` runs, after one to load it."""
    call()
    best = (np.inf, np.inf)
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        call()
        best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
    return best


def variants(args: dict[str, Any]) -> dict[str, Callable[[], object]]:
    n_units = args["energy"].shape[0]
    band = kernel.unwatched(n_units)
    trip = np.empty(n_units, np.int64)
    none = kernel.Recording.none(n_units)

    def steps(fn: Callable[..., object], watch: np.ndarray | None) -> Callable[[], object]:
        return lambda: fn(*args.values(), watch, trip, none.at, none.energy, none.out)

    return {
        "serial, no band": steps(kernel.run_steps_serial, None),
        "serial, band": steps(kernel.run_steps_serial, band),
        "parallel, no band": steps(kernel.run_steps_parallel, None),
        "parallel, band": steps(kernel.run_steps_parallel, band),
        "until (all units)": lambda: kernel.run_steps_until(*args.values(), band),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; a day of Δt 10 s "
          f"({STEPS} steps), best of {options.repeat}")
    print(f"{'units':>6}  {'kernel':20} {'CPU ns/unit-step':>17} {'wall ms/day':>12}")
    for n_units in options.units:
        args = community(n_units)
        for name, call in variants(args).items():
            cpu, wall = measure(call, options.repeat)
            print(f"{n_units:>6}  {name:20} {cpu / (STEPS * n_units) * 1e9:>17.1f} "
                  f"{wall * 1e3:>12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
