"""Headless years with apis-main's deal rules built in: wall time, where it goes, tick cost.

```
.venv/bin/python bench/sharing_year.py                   # 100 houses, a year, with and without
.venv/bin/python bench/sharing_year.py --units 1000      # 1,000 houses
.venv/bin/python bench/sharing_year.py --tick-cost       # cost of one control wake-up vs N
.venv/bin/python bench/sharing_year.py --work --days 1   # the compiled rules' work vs N
```

Each year runs the real command line in a child process
(`python -m apis_emulator simulate --units N --days D --controller apis --indiv-interval 0
--no-progress`, at the controller's default Δt = 5 s, timeScale 1), then the same without the
controller at the same Δt.  Printed: the whole process's wall time, the run's own time ("done
in"), peak memory, deals per day and kWh shared.  ``--profile`` runs the controller's year in
this process under cProfile and prints the time per part (kernel, controller, recorders).
``--work`` runs the compiled rules in this process on 100, 300 and 1,000 houses from 1 May
and prints their counters (control/compiled_rules.py ``COUNTERS``) and the CPU time per day,
per event and per unit: how the cost grows with the community.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import os
import pstats
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _run(units: int, days: float, out: Path, controller: bool) -> dict[str, float]:
    cmd = [sys.executable, "-m", "apis_emulator", "simulate", "--units", str(units), "--days",
           str(days), "--out", str(out), "--indiv-interval", "0", "--no-progress", "--step", "5"]
    if controller:
        cmd += ["--controller", "apis"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(output)
    done = re.search(r"done in ([0-9.]+) s", output)
    figures = {"wall": wall, "run": float(done.group(1)) if done else float("nan"),
               "peak_mb": _peak_mb()}
    figures.update(_sharing(out))
    return figures


def _peak_mb() -> float:
    """The largest resident size of any child so far [MB] (ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def _sharing(out: Path) -> dict[str, float]:
    rows = list(csv.DictReader((out / "summary.csv").open()))
    total = next(r for r in rows if r["time"] == "sum")
    days = len(rows) - 2

    def get(key: str) -> float:
        return float(total[key]) if total.get(key) else 0.0

    return {"days": days, "deals_per_day": get("deals") / max(days, 1),
            "shared_in_kwh": get("shared_in") / 1000, "shared_out_kwh": get("shared_out") / 1000,
            "ssr_real": get("ssr_real"), "acin_kwh": get("acin") / 1000,
            "wasted_kwh": get("wasted") / 1000}


def year(units: int, days: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for controller in (True, False):
            f = _run(units, days, Path(tmp) / ("apis" if controller else "none"), controller)
            name = "apis" if controller else "none"
            print(f"{units} houses, {days:g} days, controller {name}: wall {f['wall']:.1f} s "
                  f"(run {f['run']:.1f} s), peak {f['peak_mb']:.0f} MB; "
                  f"{f['deals_per_day']:.0f} deals/day, shared in {f['shared_in_kwh']:.1f} kWh, "
                  f"out {f['shared_out_kwh']:.1f} kWh, AC in {f['acin_kwh']:.0f} kWh, "
                  f"wasted PV {f['wasted_kwh']:.0f} kWh, ssr_real {f['ssr_real']:.4f}",
                  flush=True)


def profile(units: int, days: float) -> None:
    """Where the time of a year with the controller goes."""
    from apis_emulator.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        prof = cProfile.Profile()
        prof.enable()
        main(["simulate", "--units", str(units), "--days", str(days), "--out", tmp,
              "--indiv-interval", "0", "--no-progress", "--controller", "apis"])
        prof.disable()
    stats = pstats.Stats(prof)
    parts = {"kernel (numba step)": ("kernel.py",), "controller": ("control/",),
             "schedule/engine glue": ("schedule.py", "emulator.py", "grid.py"),
             "recorders": ("recorders/",), "data set": ("dataset.py",)}
    total = max(v[3] for v in stats.stats.values())  # type: ignore[attr-defined]
    for name, keys in parts.items():
        own = sum(v[2] for k, v in stats.stats.items()  # type: ignore[attr-defined]
                  if any(key in k[0] for key in keys))
        print(f"  {name:24s} {own:7.1f} s own time ({100 * own / total:4.1f} %)")
    print(f"  {'total':24s} {total:7.1f} s")


def tick_cost(sizes: list[int]) -> None:
    """Median cost of one plan + wake of the controller at N units (a sunny morning)."""

    from apis_emulator.config import load_settings
    from apis_emulator.control import build_controller
    from apis_emulator.engine import Emulator
    from apis_emulator.inputs import load_dataset
    from apis_emulator.runner.schedule import Schedule

    settings = load_settings(None, overrides={"start": "2019-06-01T00:00:00", "step": 5.0})
    settings = settings.with_defaults_for("simulate")
    data = load_dataset(settings.dataSet)
    for n in sizes:
        em = Emulator(settings, data, n)
        em.advance(int(9 * 3600 / 5))  # 09:00: requesters and acceptors on both sides
        controller = build_controller("apis", em)
        schedule = Schedule(em, controller)
        costs = []
        for _ in range(30):
            view = schedule.view()
            t0 = time.perf_counter()
            controller.plan(view)
            controller.wake(view)
            costs.append(time.perf_counter() - t0)
            schedule.run(1)
        med = float(np.median(costs)) * 1e3
        print(f"  {n:6d} units: plan + wake {med:8.2f} ms, per unit {1e3 * med / n:7.2f} µs",
              flush=True)


def compiled_work(sizes: list[int], days: int, start: str) -> None:
    """The compiled rules' work and CPU time per day at each size (one process, warm)."""
    from apis_emulator.config import load_settings
    from apis_emulator.control import build_controller
    from apis_emulator.control import compiled_rules as cr
    from apis_emulator.control.compiled import CompiledApis
    from apis_emulator.engine import Emulator
    from apis_emulator.inputs import load_dataset

    settings = load_settings(None, overrides={"start": start, "step": 5.0})
    settings = settings.with_defaults_for("simulate")
    data = load_dataset(settings.dataSet)
    for n in sizes:
        em = Emulator(settings, data, n)
        rules = CompiledApis(build_controller("apis", em), em)  # type: ignore[arg-type]
        rules.advance(1)  # loads the compiled code
        cpu, deals = time.process_time(), 0
        for _ in range(days):
            deals += len(rules.advance(int(86400 / em.dt)))
            rules.take_day()
        cpu = (time.process_time() - cpu) / days
        counts = {name: int(rules._state[6][getattr(cr, name)]) / days for name in cr.COUNTERS}
        per_event = 1e6 * cpu / max(counts["EVENTS"], 1)
        print(f"  {n:5d} units: {cpu:7.2f} s CPU/day, {deals / days:8.0f} deals/day, "
              f"{per_event:6.2f} µs/event, {1e3 * cpu / n:6.1f} ms/unit/day; per day "
              + ", ".join(f"{k.lower()} {v:,.0f}" for k, v in counts.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--days", type=float, default=365.0)
    parser.add_argument("--profile", action="store_true", help="time per part, in process")
    parser.add_argument("--tick-cost", action="store_true", help="control cost vs units")
    parser.add_argument("--work", action="store_true",
                        help="the compiled rules' work and CPU per day vs units")
    parser.add_argument("--start", default="2019-05-01T00:00:00", help="--work's first day")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    if args.tick_cost:
        tick_cost([100, 1000, 10000])
    elif args.work:
        compiled_work([100, 300, 1000], max(1, int(args.days)), args.start)
    elif args.profile:
        profile(args.units, args.days)
    else:
        year(args.units, args.days)


if __name__ == "__main__":
    main()
