"""Shared fixtures: tiny data sets written to tmp_path, and emulators built on them.

A data set is written in the specification's formats (power-flow-model §1, dataset.py):
solar 365 rows × 24 hourly values, load in the ``rows`` layout (header; household id in column
2; 48 half-hourly kW values from column 7) or the ``wide`` layout (households side by side in
blocks of 48 columns), plus ``dataset.json`` naming the solar unit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from apis_emulator.config import Settings
from apis_emulator.engine import LEDGER_FIELDS, Emulator
from apis_emulator.engine.kernel import warm_up
from apis_emulator.inputs import DAYS, DataSet, load_dataset

#: The reference settings of specification §7.1 that the hand-computed tests rely on.
REFERENCE = {"constantSystemLoss": 17.5, "DCCstLoss": 4.5, "DCChargeLoss": 71.0,
             "DCDischargeLoss": 55.0, "battModeLoss_a": 0.140, "battModeLoss_c": 129.0,
             "transLoss_a": 0.027, "transLoss_c": 57.0, "bypassModeLoss_a": 0.033,
             "bypassModeLoss_c": 67.0, "ACChargeLoss": 10.0, "ACChargeAmount": 150.0,
             "UPS_TRIGGER_BATT_OFF": 30.0, "UPS_TRIGGER_BATT_ON": 35.0,
             "UPS_TRIGGER_AC_OFF": 25.0, "UPS_TRIGGER_AC_ON": 20.0, "batteryVoltage": 48.0,
             "batterySize": 4800.0}


def solar_array(solar: float | np.ndarray) -> np.ndarray:
    """A (365, 24) solar table from a constant or anything that broadcasts to it."""
    return np.broadcast_to(np.asarray(solar, dtype=np.float64), (DAYS, 24)).copy()


def load_array(load: float | np.ndarray, households: int = 1) -> np.ndarray:
    """A (households, 365, 48) load table [kW] from a constant or a broadcastable array."""
    return np.broadcast_to(np.asarray(load, dtype=np.float64), (households, DAYS, 48)).copy()


def _cells(values: np.ndarray) -> str:
    return ",".join(repr(float(v)) for v in values)


def write_solar(path: Path, solar: np.ndarray) -> Path:
    path.write_text("".join(_cells(row) + "\n" for row in solar), encoding="utf-8")
    return path


def write_load(path: Path, load: np.ndarray, layout: str = "rows") -> Path:
    """Write a (households, 365, 48) table [kW] in the ``rows`` or ``wide`` layout."""
    lines = []
    if layout == "rows":
        lines.append("date,household_id,c2,c3,c4,c5," + ",".join(f"t{k}" for k in range(48)))
        for h, days in enumerate(load, start=1):
            lines += [f"{2019001 + d},{h},0,0,0,0,{_cells(day)}" for d, day in enumerate(days)]
    else:
        lines += [_cells(load[:, d, :].reshape(-1)) for d in range(DAYS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_dataset(directory: Path, solar: float | np.ndarray = 0.0,
                  load: float | np.ndarray = 0.5, unit: str = "W", households: int = 1,
                  layout: str = "rows") -> Path:
    """Write a data set directory: solar.csv, load.csv, dataset.json; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    write_solar(directory / "solar.csv", solar_array(solar))
    write_load(directory / "load.csv", load_array(load, households), layout)
    meta = {"name": directory.name, "solar": {"file": "solar.csv", "unit": unit},
            "load": {"file": "load.csv", "layout": layout}}
    (directory / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return directory


def dataset_from_arrays(solar: float | np.ndarray = 0.0, load: float | np.ndarray = 0.5,
                        households: int = 1, unit: str = "W") -> DataSet:
    """The same data set built in memory (for property tests that must not touch the disk)."""
    return DataSet(solar=solar_array(solar).reshape(-1), solar_unit=unit,
                   load_kw=load_array(load, households).reshape(households, -1),
                   meta={"name": "in-memory"}, path="")


def settings(**changes: Any) -> Settings:
    """Reference settings with a Δt of 1 s unless changed."""
    values: dict[str, Any] = {**REFERENCE, "step": 1.0}
    values.update(changes)
    return Settings(**values)


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., DataSet]:
    """``make_dataset(solar=0.0, load=0.5, unit="W", households=1, layout="rows")`` → DataSet.

    ``solar`` broadcasts to (365, 24) [W or W/m²], ``load`` to (households, 365, 48) [kW].
    Each call writes a fresh directory under tmp_path and reads it with ``load_dataset``.
    """
    counter = iter(range(1_000_000))

    def make(**kwargs: Any) -> DataSet:
        return load_dataset(write_dataset(tmp_path / f"dataset{next(counter)}", **kwargs))

    return make


@pytest.fixture
def make_emulator(make_dataset: Callable[..., DataSet]) -> Callable[..., Emulator]:
    """``make_emulator(n_units=None, solar=0.0, load=0.5, unit="W", households=1, **settings)``.

    Settings are the reference ones with Δt = 1 s; keyword arguments that name a setting
    (``step``, ``initialRsoc``, ``start`` …) change it.
    """

    def make(n_units: int | None = None, solar: float | np.ndarray = 0.0,
             load: float | np.ndarray = 0.5, unit: str = "W", households: int = 1,
             layout: str = "rows", **changes: Any) -> Emulator:
        dataset = make_dataset(solar=solar, load=load, unit=unit, households=households,
                               layout=layout)
        return Emulator(settings(**changes), dataset, n_units)

    return make


def state_of(em: Emulator) -> dict[str, Any]:
    """Everything an emulator holds, copied, for exact before/after comparisons."""
    u = em.units
    arrays = {name: getattr(u, name).copy() for name in u.array_fields()}
    return {"arrays": arrays, "ids": list(u.ids), "static": json.dumps(u.static),
            "step": em.step_index, "bus": em.bus_voltage, "ramp": em.ramp_voltage}


def assert_same_state(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Exactly equal, array by array (NaN nowhere expected)."""
    assert before["ids"] == after["ids"]
    assert before["static"] == after["static"]
    assert (before["step"], before["bus"], before["ramp"]) == (
        after["step"], after["bus"], after["ramp"])
    for name, array in before["arrays"].items():
        np.testing.assert_array_equal(after["arrays"][name], array, err_msg=name)


def assert_units_balance(day: np.ndarray, stored: np.ndarray) -> None:
    """Each unit's energy closes over a period: PV + AC in + DC grid = load + losses + stored.

    ``day``: the ledger's change over the period (units × LEDGER_FIELDS) [Wh]; ``stored``: the
    change of each battery's energy [Wh].
    """
    col = {name: i for i, name in enumerate(LEDGER_FIELDS)}
    inflow = day[:, col["pv"]] + day[:, col["acin"]] + day[:, col["wg"]]
    outflow = day[:, col["load"]] + day[:, col["acloss"]] + day[:, col["dcloss"]] + stored
    scale = np.abs(day).sum(axis=1) + np.abs(stored) + 1.0
    np.testing.assert_array_less(np.abs(inflow - outflow) / scale, 1e-6)


@pytest.fixture(scope="module")
def sweep_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-household data set with a daily bell of sun and varied loads (the sweep tests)."""
    rng = np.random.default_rng(3)
    bell = np.clip(np.sin((np.arange(24) - 6) / 12 * np.pi), 0, None)
    solar = 2500.0 * bell[None, :] * rng.uniform(0.3, 1.0, (DAYS, 24))
    load = rng.uniform(0.1, 1.5, (4, DAYS, 48))
    return write_dataset(tmp_path_factory.mktemp("sweepdata") / "data", solar=solar, load=load,
                         households=4)


# ---------------------------------------------------------------------- the compiled kernels
@pytest.fixture(scope="session", autouse=True)
def compiled_kernels() -> float:
    """Every version of the physics kernel compiled (or loaded) into numba's cache before the
    first test: a fresh checkout compiles them in about 40 s, and a server or run started by a
    test would otherwise compile them while its test waits (a server warms them before it
    listens, kernel.warm_up).  The seconds it took."""
    return warm_up()


# ---------------------------------------------------------------------- the browser tests
@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Any]:
    """One Playwright driver for the session (page_conftest.PlaywrightSession), started by
    the first test that needs a browser."""
    from page_conftest import PlaywrightSession  # playwright only where a browser is used

    session = PlaywrightSession()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture()
def browser(playwright_session: Any) -> Iterator[Any]:
    """``browser``: Debian's chromium, launched once for the whole session; each test opens
    contexts of its own (page_conftest.open_page)."""
    with playwright_session.lent():
        yield playwright_session.chromium()
