"""Benchmark: a headless year of 100 units with every recorder on, against recorders off.

    .venv/bin/python bench/recorders_year.py [--units 100] [--days 365] [--interval 900]
                                            [--postgres URL] [--keep DIR]

Each case runs in a fresh subprocess (so peak memory is its own), on a synthetic data set of
``--units`` households written to a temporary directory.  Printed per case: wall time [s], the
time relative to recorders off, peak resident memory [MiB] (ru_maxrss), and the bytes written
per output.  Cases:

- ``off``: no output at all (the day rows are still computed);
- ``sampled``: no output, but the run stops at every sample and takes the snapshot and the
  per-unit block the recorders would get (the engine's own cost of sampling);
- ``csv``: summary CSV and individual CSV;
- ``sqlite``: summary CSV and the SQLite database (per-unit states and daily summaries);
- ``parquet``: summary CSV and the individual log as Parquet parts;
- ``all``: every recorder of ``simulate --out DIR`` on — summary CSV, individual CSV, SQLite
  database (the default of ``simulate``);
- ``postgresql`` (with ``--postgres URL``): summary CSV, individual CSV, that PostgreSQL.

No figure here is asserted anywhere; tests never time anything.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulate_year import write_synthetic  # bench/ is on sys.path when run as a script

DAYS = 365


def _child(args: argparse.Namespace) -> None:
    """One case, in this process; prints one JSON line."""
    from apis_emulator.config import Settings
    from apis_emulator.engine import Emulator
    from apis_emulator.inputs import load_dataset
    from apis_emulator.recorders import RecorderPlan
    from apis_emulator.runner import simulate

    settings = Settings(dataSet=args.data).with_defaults_for("simulate")
    dataset = load_dataset(args.data)
    out = Path(args.out)
    plans = {
        "off": RecorderPlan(),
        "csv": RecorderPlan.headless(out, indiv_interval=args.interval, database=False),
        "sqlite": RecorderPlan.headless(out, indiv_interval=args.interval, indiv_log=None),
        "parquet": RecorderPlan.headless(out, indiv_interval=args.interval,
                                         indiv_format="parquet", database=False),
        "all": RecorderPlan.headless(out, indiv_interval=args.interval),
        "postgresql": RecorderPlan.headless(out, indiv_interval=args.interval,
                                            database=args.postgres),
    }
    warm = Emulator(settings, dataset, 2)  # compile/load the kernels outside the timing
    simulate(warm, 1, Path(tempfile.mkdtemp()), progress=False, database=False)
    emulator = Emulator(settings, dataset, args.units)
    if args.case == "sampled":
        _sampled(emulator, args)
        return
    started = time.perf_counter()
    result = simulate(emulator, args.days, out, progress=False, plan=plans[args.case])
    wall = time.perf_counter() - started
    sizes = {}
    for path in sorted(out.iterdir()):
        files = [path] if path.is_file() else list(path.rglob("*"))
        sizes[path.name] = sum(f.stat().st_size for f in files if f.is_file())
    if args.case == "postgresql":
        import psycopg

        with psycopg.connect(args.postgres) as db:
            sizes["postgresql tables (all runs in that database)"] = db.execute(
                "SELECT sum(pg_total_relation_size(t)) FROM unnest(ARRAY['runs', "
                "'unit_states', 'daily_summary', 'run_totals']) AS t").fetchone()[0]
    rows = {name: status["written"] for name, status in result.recorders.items()}
    print(json.dumps({"case": args.case, "wall_s": wall, "sizes": sizes, "items": rows,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "pv_kwh": (result.totals.get("pv") or 0) / 1000}))


def _sampled(emulator: object, args: argparse.Namespace) -> None:
    """Step to every sample and take what the recorders would get; write nothing."""
    from apis_emulator.recorders import UnitsBlock

    em = emulator
    every = int(round(args.interval / em.dt))  # type: ignore[attr-defined]
    steps = int(round(args.days * 86400 / em.dt))  # type: ignore[attr-defined]
    started = time.perf_counter()
    for _ in range(steps // every):
        em.advance(every)  # type: ignore[attr-defined]
        UnitsBlock.of(em.snapshot())  # type: ignore[attr-defined]
    wall = time.perf_counter() - started
    print(json.dumps({"case": "sampled", "wall_s": wall, "sizes": {}, "items": {},
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "pv_kwh": 0.0}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--days", type=float, default=365.0)
    parser.add_argument("--interval", type=float, default=900.0,
                        help="individual-log interval [s] (default 900, the headless default)")
    parser.add_argument("--postgres", help="also a case with this postgresql:// dburl")
    parser.add_argument("--keep", help="write the outputs under this directory and keep them")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        _child(args)
        return
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="recorders-bench-"))
    data = write_synthetic(root / "dataset", args.units)
    cases = ["off", "sampled", "csv", "sqlite", "parquet", "all"] + (["postgresql"] if args.postgres
                                                           else [])
    print(f"headless run: {args.units} units, {args.days:g} days, step 10 s, individual log "
          f"every {args.interval:g} s; {os.cpu_count()} CPU(s), load average "
          f"{os.getloadavg()[0]:.1f} at the start")
    results = []
    for case in cases:
        out = root / case
        command = [sys.executable, __file__, "--case", case, "--data", str(data), "--out",
                   str(out), "--units", str(args.units), "--days", str(args.days),
                   "--interval", str(args.interval)]
        if args.postgres:
            command += ["--postgres", args.postgres]
        line = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(line.strip().splitlines()[-1]))
    base = results[0]["wall_s"]
    print(f"{'case':<12}{'wall [s]':>10}{'× off':>8}{'peak RSS [MiB]':>16}  bytes written")
    for r in results:
        sizes = ", ".join(f"{name} {size / 1e6:,.1f} MB" for name, size in r["sizes"].items())
        print(f"{r['case']:<12}{r['wall_s']:>10.1f}{r['wall_s'] / base:>8.2f}"
              f"{r['peak_rss_mib']:>16.0f}  {sizes or '-'}")
    load = os.getloadavg()[0]
    busy = load > (os.cpu_count() or 1)
    print(f"load average {load:.1f} at the end"
          + (" (above the CPU count: every figure is slowed by other work)" if busy else ""))
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
