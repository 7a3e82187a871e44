"""The kernel's two compilations (serial and parallel) keep apart in numba's cache.

numba keys a cached function by its bytecode and closure, not by ``parallel=``: when both were
made from one Python function, whichever was compiled first was loaded for the other, and the
"parallel" kernel ran on one core.  Each test process here starts with an empty cache folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_CALL = """
import json, sys
import numpy as np
from apis_emulator.config import Settings
from apis_emulator.engine import kernel
n_units, n = 4, 10
arrays = dict(solar_w=np.full(n, 500.0), load_j=np.zeros(n, np.int64), load_f=np.zeros(n),
              load_kw=np.ones((1, 2)), house=np.zeros(n_units, np.int64),
              pv_gain=np.ones(n_units), wg=np.zeros(n_units), dcdc_loss=np.zeros(n_units),
              p=kernel.params_vector(Settings()), energy=np.full(n_units, 2000.0),
              capacity=np.full(n_units, 4800.0), bypass=np.zeros(n_units, bool),
              ac_charge=np.zeros(n_units, bool), out=np.zeros((n_units, 7)),
              ledger=np.zeros((n_units, 8)), watch=kernel.unwatched(n_units),
              trip=np.empty(n_units, np.int64))
record = kernel.Recording.none(n_units)
arrays.update(rec_at=record.at, rec_energy=record.energy, rec_out=record.out)
dispatcher = getattr(kernel, sys.argv[1])
dispatcher(10.0, *arrays.values())
stats = dispatcher.stats
print(json.dumps({"hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values()),
                  "energy": arrays["energy"].tolist()}))
"""


def _call(dispatcher: str, cache: Path) -> dict[str, object]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", _CALL, dispatcher], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_parallel_kernel_is_not_loaded_from_the_serial_ones_cache(tmp_path: Path) -> None:
    serial = _call("run_steps_serial", tmp_path)
    assert serial["misses"] == 1  # compiled and written to the empty cache
    parallel = _call("run_steps_parallel", tmp_path)
    assert (parallel["hits"], parallel["misses"]) == (0, 1)  # its own compilation
    assert parallel["energy"] == serial["energy"]  # the same arithmetic
    again = _call("run_steps_parallel", tmp_path)
    assert (again["hits"], again["misses"]) == (1, 0)  # and its own entry is found


def test_warm_up_readies_every_version_a_run_may_call(compiled_kernels: float,
                                                     make_emulator, monkeypatch) -> None:
    """After kernel.warm_up (run for the session by conftest, and by a server before it
    listens) the engine's calls compile nothing: serial and parallel, with and without a
    band, samples kept on the way, the block of the compiled controller's physics."""
    import numba
    import numpy as np

    from apis_emulator.engine import kernel

    dispatchers = (kernel.run_steps_serial, kernel.run_steps_parallel, kernel.run_steps_until)
    kernel.warm_up()  # again: nothing new in this process either way
    ready = [len(d.signatures) for d in dispatchers]
    threads = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    assert ready == [2, 2 if threads > 1 else 0, 1]
    for work in (kernel.PARALLEL_MIN_WORK, 0):  # serial, then parallel
        monkeypatch.setattr(kernel, "PARALLEL_MIN_WORK", work)
        em = make_emulator(n_units=3, step=10.0)
        em.advance(5)
        assert em.advance_sampled(6, [2, 4]) is not None
        em.advance_watched(5, np.array([[4800.0, 0.0, 1e9, 0.0, 100.0]] * 3))
        stepping = em.stepping()
        solar, load_j, load_f = em.sample_inputs(4)
        kernel.run_steps_until(em.dt, solar, load_j, load_f, stepping.load_kw, stepping.house,
                               stepping.pv_gain, stepping.wg, stepping.dcdc_loss,
                               stepping.params, stepping.energy, stepping.capacity,
                               stepping.bypass, stepping.ac_charge, stepping.out,
                               stepping.ledger, kernel.unwatched(3))
    assert [len(d.signatures) for d in dispatchers] == ready
