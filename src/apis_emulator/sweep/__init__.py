"""Sweeps: many headless runs as Dask tasks, on a local cluster or any Dask cluster.

``run_sweep(file_or_dict, out_dir)`` checks the sweep, runs each missing run as the same headless
run as ``simulate`` into ``out_dir/runs/<run_id>/`` and returns the runs table; see
docs/sweeps.md.  Dask is imported only when runs are submitted.
"""

from .api import load_sweep, pending_runs, run_sweep
from .cluster import ClusterError
from .errors import SweepFileError
from .resolve import Row, Run, Sweep

__all__ = ["run_sweep", "load_sweep", "pending_runs", "Sweep", "Run", "Row", "SweepFileError",
           "ClusterError"]
