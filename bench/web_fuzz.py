"""Generated requests at length: ≥ 10,000 schemathesis cases against a real server.

The same harness as ``tests/test_web_fuzz.py`` (:class:`Fuzzer`: schemathesis's checks, the
JSON error of every 4xx, the state unchanged by a refusal, the clock's pace), but every failure
is counted and the run goes on; prints cases, cases/s, statuses per path, failures by kind, and
the server's resident memory before and after.  Loopback only; bounded by the case count.

    .venv/bin/python bench/web_fuzz.py [--cases 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from test_web_fuzz import FUZZ_ENV, UNITS, Fuzzer, run_cases  # noqa: E402
from web_support import start_server, write_dataset  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` [MB] from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _kind(exc: BaseException) -> str:
    """A short name of a failure: schemathesis's check titles, or the assertion's first line."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(sorted({str(getattr(e, "title", type(e).__name__))
                                 for e in exc.exceptions}))
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]


def main() -> int:
    """Run the cases and print the figures; 1 if any case failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    failures: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], str] = {}

    with tempfile.TemporaryDirectory(prefix="web-fuzz-") as tmp:
        data = write_dataset(Path(tmp) / "data")
        server = start_server(Path(tmp) / "serve", data, units=UNITS, env=FUZZ_ENV)
        try:
            fuzzer = Fuzzer(server.url, server.cwd / "jsontmp" / "lastSave.json")

            def record(case: Any, exc: BaseException) -> None:
                key = (case.operation.path, _kind(exc))
                failures[key] += 1
                examples.setdefault(key, case.as_curl_command(base_url=server.url))

            rss_before = rss_mb(server.process.pid)
            started = time.perf_counter()
            run_cases(fuzzer, examples=args.cases, seed=args.seed, shrink=False,
                      on_failure=record)
            wall = time.perf_counter() - started
            rss_after = rss_mb(server.process.pid)
            alive = server.process.poll() is None
        finally:
            server.stop()
    _report(fuzzer, wall, rss_before, rss_after, alive, failures, examples)
    return 1 if failures or not alive else 0


def _report(fuzzer: Fuzzer, wall: float, rss_before: float, rss_after: float, alive: bool,
            failures: Counter[tuple[str, str]], examples: dict[tuple[str, str], str]) -> None:
    cases = sum(fuzzer.statuses.values())
    print(f"cases: {cases} in {wall:.1f} s ({cases / wall:.0f} cases/s, each with its "
          "state read before and after)")
    print(f"refusals compared before/after: {fuzzer.refusals_checked}")
    print(f"server RSS: {rss_before:.0f} MB before, {rss_after:.0f} MB after; "
          f"{'running' if alive else 'EXITED'}")
    by_path: dict[str, Counter[int]] = {}
    for (path, status), n in fuzzer.statuses.items():
        by_path.setdefault(path, Counter())[status] += n
    print("\n| path | cases | statuses |\n|---|---:|---|")
    for path in sorted(by_path):
        shown = ", ".join(f"{s}×{n}" for s, n in sorted(by_path[path].items()))
        print(f"| `{path}` | {sum(by_path[path].values())} | {shown} |")
    print(f"\nfailures: {sum(failures.values())}")
    for (path, kind), n in failures.most_common():
        print(f"  {n} × {path}: {kind}\n      {examples[(path, kind)]}")


if __name__ == "__main__":
    sys.exit(main())
