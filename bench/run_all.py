"""Run the benchmarks in bench/ one after another; each prints its own figures.

    python bench/run_all.py                                  # every benchmark
    python bench/run_all.py simulate_year http_load          # only these
    python bench/run_all.py simulate_year -- --units 100     # arguments after -- go to each

``make bench ARGS="simulate_year -- --days 30"`` passes ARGS here.  Each benchmark runs in a
process of its own (one does not warm the next one's caches); a failing one is reported and
the others still run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
#: Scripts in bench/ that are not benchmarks (serving: the helper that starts a server).
NOT_BENCHMARKS = frozenset({"run_all", "page_screenshot", "serving"})


def benchmarks() -> list[str]:
    """The names of the benchmark scripts in bench/, in alphabetical order."""
    return sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in NOT_BENCHMARKS)


def split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """``(names, args)``: benchmark names before ``--``, the arguments for each after it."""
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def run(name: str, args: list[str]) -> int:
    """Run one benchmark with ``args``; its exit status."""
    print(f"\n=== {name} {' '.join(args)}".rstrip(), flush=True)
    started = time.perf_counter()
    status = subprocess.call([sys.executable, str(BENCH / f"{name}.py"), *args],
                             cwd=BENCH.parent)
    print(f"=== {name}: exit {status} after {time.perf_counter() - started:.1f} s", flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks (all by default); 1 if any failed, 2 for an unknown name."""
    names, args = split_args(sys.argv[1:] if argv is None else argv)
    known = benchmarks()
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(known)}",
              file=sys.stderr)
        return 2
    failed = [n for n in names or known if run(n, args) != 0]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
