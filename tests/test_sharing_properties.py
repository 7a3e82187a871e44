"""apis-main's deal rules over random communities (hypothesis): invariants of a sharing run.

Random small communities (3–8 units, random initial rsoc, PV size and household load; no sun,
a flat or a bell-shaped day of sun) run 1–2 emulated days headless with the built-in apis
controller (timeScale 1 or 10, simulate's default step), under the shipped files with a few
decision fields drawn too (large-capacity units, deal amounts, deal current, voltage-reference
side, accept strategy).  Checked:

- the community ledger closes: per unit and day, PV used + AC in + DC grid in = load + losses
  + Δ stored (as in test_engine_properties.py), and the DC grid's energy sums to 0 over the
  units (what one converter gives the bus another takes);
- Σ ig = 0 at every step: the grid currents are written only when the grid is solved
  (Emulator._apply_grid), and stay as they are across the steps in between, so the check runs
  after every solve;
- no unit ever holds more than 2 deals, charges in one activated deal while discharging in
  another, or has converters that disagree with the deals (checked after every wake-up of the
  controller, the only moments deals change, and again from deals.csv's intervals);
- every deal ended by ``amount`` has cumulated_wh > deal_wh;
- the same seed writes the same deals.csv byte for byte, and the lazy controller the same
  deals.csv as one woken at every step (``lazy=False``).
"""

from __future__ import annotations

import csv
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from apis_emulator.config import Settings
from apis_emulator.control import (
    ApisController,
    build_controller,
    controller_step,
    shipped_policy,
    shipped_scenario,
)
from apis_emulator.control.base import ControlView
from apis_emulator.engine import LEDGER_FIELDS, Emulator, Mode
from apis_emulator.inputs import DAYS
from apis_emulator.runner.headless import simulate
from conftest import assert_units_balance, dataset_from_arrays, settings

L = {name: i for i, name in enumerate(LEDGER_FIELDS)}
PV_SIZE = Settings().default_pv_size  # [m²·(-)] the PV of a default unit
HOURS = np.arange(24)
BELL = np.clip(np.sin((HOURS - 6) / 12 * np.pi), 0.0, None)
EVENING = (np.arange(48) >= 34) & (np.arange(48) < 46)  # 17:00–23:00

COMMUNITY = {
    "seed": st.integers(0, 2**16),
    "units": st.integers(3, 8),
    # one short and one full unit: there is sharing from the start
    "rsoc": st.tuples(st.floats(15.0, 55.0), st.floats(80.0, 100.0),
                      *[st.floats(15.0, 100.0)] * 6),
    "pv": st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=8, max_size=8),
    "sun": st.sampled_from(["none", "flat", "bell"]),
    "sun_w": st.sampled_from([300.0, 1500.0, 4000.0]),
    "load_kw": st.lists(st.sampled_from([0.0, 0.1, 0.3, 0.6]), min_size=3, max_size=3),
    "evening": st.booleans(),  # household loads only in the evening (× 3)
    "days": st.integers(1, 2),
    "time_scale": st.sampled_from([1.0, 10.0]),
    # policy and scenario fields the rules read (shipped values first)
    "large": st.lists(st.integers(1, 8), max_size=2),
    "amounts": st.sampled_from([(50, 50, 50), (100, 100, 100), (50, 300, 50)]),
    "current_a": st.sampled_from([1.0, 2.0]),
    "vr_side": st.sampled_from(["chargeUnit", "dischargeUnit"]),
    "strategy": st.sampled_from(["pointAndAmount", "amount"]),
}
community = st.fixed_dictionaries(COMMUNITY)


def build(c: dict[str, Any], step: float | None = None) -> tuple[Emulator, ApisController]:
    """The community and its apis controller (every unit a member)."""
    solar = {"none": 0.0, "flat": c["sun_w"], "bell": c["sun_w"] * BELL}[c["sun"]]
    shape = np.where(EVENING, 3.0, 0.0) if c["evening"] else np.ones(48)
    load = np.array(c["load_kw"])[:, None, None] * shape[None, None, :] * np.ones((3, DAYS, 1))
    ids = [f"E{k:03d}" for k in range(1, c["units"] + 1)]
    per_unit = {u: {"initialRsoc": c["rsoc"][k], "pvc_sol_reg": c["pv"][k] * PV_SIZE}
                for k, u in enumerate(ids)}
    em = Emulator(settings(step=step or controller_step(c["time_scale"]), units=per_unit),
                  dataset_from_arrays(solar, load, 3), c["units"])
    policy = shipped_policy()
    del policy["memberUnitIds"]  # every unit is a member
    policy["largeCapacityUnitIds"] = [f"E{k:03d}" for k in c["large"]]
    deal = policy["mediator"]["deal"]
    deal["amountMinWh"], deal["amountMaxWh"], deal["amountUnitWh"] = c["amounts"]
    deal["gridCurrentA"] = c["current_a"]
    policy["gridMaster"]["voltageReferenceSide"] = c["vr_side"]
    scenario = shipped_scenario()
    scenario["acceptSelection"]["strategy"] = c["strategy"]
    controller = build_controller("apis", em, scenario=scenario, policy=policy, seed=c["seed"],
                                  time_scale=c["time_scale"])
    assert controller is not None
    return em, controller


def deals_csv(em: Emulator, controller: ApisController, days: float, out: Path,
              compiled: bool = False) -> bytes:
    """The run's deals.csv: the Python controller (whose wake-ups the checks here instrument),
    or with ``compiled`` its compiled rules (tests/test_sharing_compiled.py)."""
    simulate(em, days, out, indiv_interval=None, progress=False, summary=False, database=False,
             handle_signals=False, controller=controller, compiled=compiled)
    return (out / "deals.csv").read_bytes()


# ---------------------------------------------------------------------- live checks
def watch_kirchhoff(em: Emulator, sums: list[float]) -> None:
    """After every grid solve: Σ ig (the currents then hold until the next solve)."""
    solve = em._apply_grid

    def solved(*args: Any, **kwargs: Any) -> None:
        solve(*args, **kwargs)
        ig = em.units.ig
        sums.append(abs(float(ig.sum())) / max(1.0, float(np.abs(ig).sum())))

    em._apply_grid = solved  # type: ignore[method-assign]


def check_deals(controller: ApisController, view: ControlView) -> None:
    """Interlock, direction and the converters against the controller's deals now."""
    status = controller.status(view)
    deals = status["active"]
    held = Counter(u for d in deals for u in (d["charge_unit"], d["discharge_unit"]))
    assert max(held.values(), default=0) <= controller.policy.deal_capacity <= 2, deals
    live = [d for d in deals if d["state"] != "new"]
    charging = {d["charge_unit"] for d in live}
    discharging = {d["discharge_unit"] for d in live}
    assert not charging & discharging, deals
    snap = view.snapshot
    vr = status["voltage_reference"]
    running: Counter[str] = Counter()  # current of the running deals per unit [A]
    for d in live:
        if d["state"] == "started":
            running[d["charge_unit"]] += d["current_a"]
            running[d["discharge_unit"]] += d["current_a"]
    for i, uid in enumerate(snap.ids):
        mode, dig, ig = Mode(int(snap.mode[i])), float(snap.dig[i]), float(snap.ig[i])
        if uid == vr:
            assert mode == Mode.VOLTAGE_REFERENCE
        elif running[uid]:  # a unit in k running deals of 1 A carries k A its way
            want = Mode.CHARGE if uid in charging else Mode.DISCHARGE
            sign = 1.0 if want == Mode.CHARGE else -1.0
            assert (mode, dig) == (want, float(running[uid])), (uid, deals)
            if snap.vg[i] > 0.0:
                assert ig == sign * dig
        else:
            assert mode == Mode.WAIT and ig == 0.0, (uid, deals)
    assert (snap.mode == Mode.VOLTAGE_REFERENCE).sum() == (vr is not None)


def instrument(em: Emulator, controller: ApisController,
               marks: list[tuple[np.ndarray, np.ndarray, dict[str, float]]],
               sums: list[float]) -> None:
    """Checks after every wake-up, Σ ig after every solve, ledgers at every midnight."""
    settled: Callable[[ControlView], None] = controller.settled
    take_day = controller.take_day

    def settled_and_checked(view: ControlView) -> None:
        settled(view)
        check_deals(controller, view)

    def day(view: ControlView) -> dict[str, float]:
        shared = take_day(view)
        marks.append((view.snapshot.ledger.copy(), view.snapshot.energy.copy(), shared))
        return shared

    controller.settled = settled_and_checked  # type: ignore[method-assign]
    controller.take_day = day  # type: ignore[method-assign]
    watch_kirchhoff(em, sums)


# ---------------------------------------------------------------------- deals.csv checks
def read_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(data.decode().splitlines()))


def check_intervals(rows: list[dict[str, str]]) -> None:
    """From the log: ≤ 2 deals held per unit from creation to end, and no unit on both sides
    of two activated deals at once (times are whole seconds: half-open intervals never
    overlap falsely)."""
    for row in rows:
        t = row["created"]
        for unit in (row["charge_unit"], row["discharge_unit"]):
            held = [r for r in rows if unit in (r["charge_unit"], r["discharge_unit"])
                    and r["created"] <= t < r["ended"]]
            assert len(held) <= 2, held
        if not row["activated"]:
            continue
        t = row["activated"]
        live = [r for r in rows if r["activated"] and r["activated"] <= t < r["ended"]]
        for u in (row["charge_unit"], row["discharge_unit"]):
            sides = {r["charge_unit"] == u for r in live if u in (r["charge_unit"],
                                                                  r["discharge_unit"])}
            assert len(sides) <= 1, (u, live)


# ---------------------------------------------------------------------- the properties
@hsettings(max_examples=6, deadline=None,
           suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(community)
def test_sharing_invariants(c):
    """Ledger closes, Σ ig = 0, ≤ 2 deals and one direction per unit, amount deals > deal_wh."""
    em, controller = build(c)
    marks: list[tuple[np.ndarray, np.ndarray, dict[str, float]]] = [
        (em.units.ledger.copy(), em.units.energy.copy(), {})]
    sums: list[float] = []
    instrument(em, controller, marks, sums)
    with tempfile.TemporaryDirectory() as tmp:
        first = deals_csv(em, controller, c["days"], Path(tmp))
    # Kirchhoff after every solve of the grid
    assert max(sums, default=0.0) <= 1e-9
    # the ledger closes per unit and day; the DC grid moves energy between units only
    assert len(marks) == c["days"] + 2  # each midnight, then the closing call
    for (ledger0, energy0, _), (ledger1, energy1, shared) in zip(marks, marks[1:],
                                                                strict=False):
        day = ledger1 - ledger0
        stored = energy1 - energy0
        assert_units_balance(day, stored)
        grid = day[:, L["wg"]]
        assert abs(grid.sum()) <= 1e-6 * (np.abs(grid).sum() + 1.0)
        if shared:  # what deals put into batteries is less than they took out (losses)
            assert shared["shared_in"] <= shared["shared_out"] + 1e-9
    rows = read_rows(first)
    event(f"deals: {'none' if not rows else '< 100' if len(rows) < 100 else '>= 100'}")
    for row in rows:
        if row["end_reason"] == "amount":
            assert float(row["cumulated_wh"]) > float(row["deal_wh"]), row
    check_intervals(rows)
    if any(row["activated"] for row in rows):  # a reference was commanded: the grid was solved
        assert sums


determinism = st.fixed_dictionaries({
    **COMMUNITY,
    "units": st.integers(3, 5),
    "days": st.just(1),
    # coarse steps keep the every-step reference affordable; the periods span 1–2 steps
    "scale_step": st.sampled_from([(6.0, 30.0), (10.0, 60.0), (1.0, 30.0)]),
})


@hsettings(max_examples=3, deadline=None,
           suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(determinism)
def test_same_seed_and_lazy_controller_write_the_same_deals(c):
    """Same seed: same deals.csv byte for byte; lazy (default) equals lazy=False (every step)
    and the compiled rules."""
    c = {**c, "time_scale": c["scale_step"][0]}
    step = c["scale_step"][1]
    with tempfile.TemporaryDirectory() as tmp:
        em, lazy = build(c, step)
        assert lazy.lazy
        expected = deals_csv(em, lazy, 1, Path(tmp) / "lazy")
        assert deals_csv(*build(c, step), 1, Path(tmp) / "again") == expected
        event("deals: " + ("some" if len(expected.splitlines()) > 1 else "none"))
        em, eager = build(c, step)
        eager.lazy = False
        assert deals_csv(em, eager, 1, Path(tmp) / "eager") == expected
        # the compiled rules, twice: the same seed, the same bytes as the Python controller
        for k in range(2):
            assert deals_csv(*build(c, step), 1, Path(tmp) / f"compiled{k}",
                             compiled=True) == expected
