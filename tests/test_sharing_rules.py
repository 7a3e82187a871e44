"""apis-main's deal rules (shared/docs/apis-main-sharing.md), each against hand-worked numbers.

Small communities on a data set without sun or load, so that a battery's remaining energy
R = int(4800 · rsoc / 100) is set by its initial rsoc (rsoc = R / 48) and drifts by at most
0.05 Wh per emulated second; R is set to x.9 where x must hold for a few seconds.  The
controller runs at timeScale 1 (House-Keeping and Grid Master every 5 s, negotiation 2 s),
driven by the runner's Schedule on 1 s steps.  The voltage reference's ramp is the emulator's
120 s; grid power per deal 1 A × 350 V; converter losses 55 W (voltage reference, DISCHARGE)
and 71 W (CHARGE), so a charging voltage reference's battery takes 295 W and a charging CC
unit's 279 W.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from apis_emulator.control import (
    ApisController,
    DealRecord,
    build_controller,
    shipped_policy,
    shipped_scenario,
)
from apis_emulator.control.base import TIME_FORMAT
from apis_emulator.engine import Emulator, Mode
from apis_emulator.runner.schedule import Schedule

START = dt.datetime(2019, 1, 1)
GM_S = 5.0  # Grid Master period at timeScale 1 [s]
VR_WB = 350.0 - 55.0  # battery side of a voltage reference taking 1 A at 350 V [W]
CC_WB = 350.0 - 71.0  # battery side of a CHARGE converter taking 1 A at 350 V [W]
ONE_DEAL = {"gridCurrentCapacityA": 1.5}  # hwConfig: int(1.5 / 1 A) = 1 deal per unit


def rsoc(remaining_wh: float) -> float:
    """The rsoc [%] of a 4800 Wh battery holding ``remaining_wh``."""
    return remaining_wh / 48.0


def seconds(text: str) -> float:
    """Emulated seconds since the start of a deal-log time."""
    return (dt.datetime.strptime(text, TIME_FORMAT) - START).total_seconds()


def put(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    tree[keys[-1]] = value


def policy(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The shipped policy, every unit a member, no large-capacity unit, ``changes`` (dotted)."""
    p = shipped_policy()
    del p["memberUnitIds"]
    p["largeCapacityUnitIds"] = []
    for dotted, value in (changes or {}).items():
        put(p, dotted, value)
    return p


def scenario(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The shipped scenario with ``changes`` (dotted, inside its one slot)."""
    s = shipped_scenario()
    for dotted, value in (changes or {}).items():
        put(s["00:00:00-24:00:00"], dotted, value)
    return s


def offer(limit: int, point: float = 10) -> dict[str, Any]:
    return {"limitWh": limit, "pointPerWh": point}


class Run:
    """A community, its apis controller and the Schedule driving them, with the deal log."""

    def __init__(self, em: Emulator, controller: ApisController):
        self.em, self.c = em, controller
        self.schedule = Schedule(em, controller)
        self.records: list[DealRecord] = []
        self.schedule.on_deals.append(self.records.extend)

    def step(self, n: int = 1) -> None:
        self.schedule.run(n)

    def until(self, condition: Callable[[], bool], limit: int) -> None:
        """Step (1 s) until ``condition`` holds; fail after ``limit`` steps."""
        for _ in range(limit):
            if condition():
                return
            self.step()
        assert condition(), f"not reached within {limit} s"

    def active(self) -> list[dict[str, Any]]:
        return self.c.status(self.schedule.view())["active"]

    def ended(self, reason: str | None = None) -> list[DealRecord]:
        return [r for r in self.records if reason is None or r.end_reason == reason]

    def unit(self, uid: str) -> tuple[Mode, float, float]:
        """(mode, dig, ig) of a unit's converter."""
        i = self.em.index(uid)
        u = self.em.units
        return Mode(int(u.mode[i])), float(u.dig[i]), float(u.ig[i])

    def all_wait(self) -> bool:
        u = self.em.units
        return bool((u.mode == Mode.WAIT).all() and (u.vg == 0.0).all() and (u.ig == 0.0).all())


@pytest.fixture
def community(make_emulator: Callable[..., Emulator]) -> Callable[..., Run]:
    """``community(R1, R2, …, seed=, policy_=, scenario_=, hw=)``: units E001… holding
    R1, R2 … Wh of 4800, no sun, no load, 1 s steps, the apis controller."""

    def make(*remaining: float, seed: int = 0, policy_: dict[str, Any] | None = None,
             scenario_: dict[str, Any] | None = None,
             hw: dict[str, Any] | None = None) -> Run:
        units = {f"E{k:03d}": {"initialRsoc": rsoc(r)} for k, r in enumerate(remaining, 1)}
        em = make_emulator(len(remaining), solar=0.0, load=0.0, step=1.0, units=units)
        c = build_controller("apis", em, scenario=scenario_, policy=policy_ or policy(),
                             hw_config=hw, seed=seed)
        assert c is not None
        return Run(em, c)

    return make


def first_deal(run: Run, limit: int = 12) -> DealRecord | None:
    """The first deal made within ``limit`` seconds (the run is closed), or None."""
    for _ in range(limit):
        if run.active() or run.records:
            break
        run.step()
    run.schedule.close()  # every deal ends (run_end) and is logged
    return min(run.records, key=lambda r: r.deal_id) if run.records else None


# ---------------------------------------------------------------------- classification
@pytest.mark.parametrize(("remaining", "asks"), [(2879.9, True), (2880.9, False)])
def test_status_class_by_truncated_remaining_wh(community, remaining, asks):
    """R = int(4800·rsoc/100): 2879.9 → 2879 is short (< 2880), 2880.9 → 2880 is scarce."""
    # short asks for 2930 − R: 51 Wh at R 2879 (> 50); scarce asks nothing
    s = scenario({"request.short.charge": offer(2930)})
    run = community(remaining, 4080.9, scenario_=s)
    deal = first_deal(run)
    if not asks:
        assert deal is None
        return
    assert (deal.request_unit, deal.type, deal.request_wh, deal.accept_wh, deal.deal_wh) == (
        "E001", "charge", 2930 - 2879, 4080 - 3600, 50)


@pytest.mark.parametrize(("requester", "responder", "expected"), [
    # short: charge request 2880 − R, sent only if > 50 (R ≤ 2829)
    (2829.9, 4080.9, ("charge", 51, 480)),
    (2830.9, 4080.9, None),
    # sufficient: discharge accept R − 3600, sent only if > 50 (R ≥ 3651)
    (2000.9, 3651.9, ("charge", 880, 51)),
    (2000.9, 3650.9, None),
    # excess: discharge request R − 4320 (R ≥ 4371); scarce accepts charge 3600 − R
    (4371.9, 3000.9, ("discharge", 51, 600)),
    (4370.9, 3000.9, None),
    # scarce: charge accept 3600 − R, sent only if > 50 (R ≤ 3549)
    (4400.9, 3549.9, ("discharge", 80, 51)),
    (4400.9, 3550.9, None),
])
def test_request_and_accept_amounts_and_strict_filters(community, requester, responder,
                                                      expected):
    """Request and accept amounts from the shipped limits, and the strict > 50 Wh filters."""
    run = community(requester, responder, hw=ONE_DEAL)
    run.step(12)  # two House-Keeping ticks and a negotiation
    run.c.set_operation_mode("heteronomous")  # nothing new; the deal runs to its end
    run.until(lambda: not run.active(), 1200)
    if expected is None:
        assert run.records == []
        return
    kind, asked, accepted = expected
    deal = run.records[0]
    assert (deal.request_unit, deal.type, deal.request_wh, deal.accept_wh, deal.deal_wh) == (
        "E001", kind, asked, accepted, 50)
    assert (deal.charge_unit, deal.discharge_unit) == (
        ("E001", "E002") if kind == "charge" else ("E002", "E001"))
    assert deal.end_reason == "amount"


# ---------------------------------------------------------------------- accept strategies
CHARGE_PRICES = {  # a charge request at 10 points/Wh; the discharging side's price by status
    "batteryStatus": {"4400-4800": "dear", "3800-4400": "mid", "3600-3800": "cheap",
                      "-2880": "short"},
    "request": {"short": {"charge": offer(2880, 10)}},
    "accept": {"dear": {"discharge": offer(3600, 12)}, "mid": {"discharge": offer(3600, 9)},
               "cheap": {"discharge": offer(3600, 8)}},
}
DISCHARGE_PRICES = {  # a discharge request at 10 points/Wh; the charging side's price by status
    "batteryStatus": {"4400-": "excess", "2000-3000": "fair", "1300-2000": "low",
                      "-1300": "poor"},
    "request": {"excess": {"discharge": offer(4300, 10)}},
    "accept": {"fair": {"charge": offer(3600, 9)}, "low": {"charge": offer(3600, 11)},
               "poor": {"charge": offer(1400, 12)}},
}


@pytest.mark.parametrize(("slot", "strategy", "units", "picked"), [
    # E002 cheap 100 Wh @8, E003 mid 600 @9, E004 dear 1000 @12 (> 10: not eligible), E005 mid
    # 400 @9: the lowest price wins whatever the amount
    (CHARGE_PRICES, "pointAndAmount", (2000.9, 3700.9, 4200.9, 4600.9, 4000.9), "E002"),
    # no cheap one: among the equal prices @9 the larger amount (600 of E003 over 400 of E005)
    (CHARGE_PRICES, "pointAndAmount", (2000.9, 3000.9, 4200.9, 4600.9, 4000.9), "E003"),
    # amount: the largest accept (1000 of E004), prices ignored
    (CHARGE_PRICES, "amount", (2000.9, 3700.9, 4200.9, 4600.9, 4000.9), "E004"),
    # discharge request of E001 (300 Wh): E002 poor 200 @12, E003 low 2000 @11, E004 fair
    # 1100 @9 (< 10: not eligible): the highest price wins
    (DISCHARGE_PRICES, "pointAndAmount", (4600.9, 1200.9, 1600.9, 2500.9), "E002"),
    (DISCHARGE_PRICES, "amount", (4600.9, 1200.9, 1600.9, 2500.9), "E003"),
])
def test_accept_strategies(community, slot, strategy, units, picked):
    """pointAndAmount: best eligible price, then the largest amount; amount: largest amount."""
    # a charge request takes the lowest price <= its own, a discharge request the highest >=
    s = {"acceptSelection": {"strategy": strategy}, "00:00:00-24:00:00": slot}
    run = community(*units, scenario_=s, hw=ONE_DEAL)
    deal = first_deal(run)
    assert deal is not None and deal.request_unit == "E001"
    assert (deal.discharge_unit if deal.type == "charge" else deal.charge_unit) == picked


@pytest.mark.parametrize(("where", "units", "charged", "picked"), [
    # E001's request names E003: E002's larger accept (600 Wh) is ignored
    ("request.short.charge", (2000.9, 4200.9, 3700.9), "E001", "E003"),
    # the sufficient units answer E004 only: E001 gets no accept, E004 the larger (E002)
    ("accept.sufficient.discharge", (2000.9, 4200.9, 3700.9, 2500.9), "E004", "E002"),
])
def test_pair_unit_id(community, where, units, charged, picked):
    """pairUnitId on a request keeps only that responder; on an accept, only that requester."""
    pair = "E003" if where.startswith("request") else "E004"
    s = scenario({where: {**offer(2880 if where.startswith("request") else 3600),
                          "pairUnitId": pair}})
    run = community(*units, scenario_=s, hw=ONE_DEAL)
    run.step(12)
    run.schedule.close()
    assert run.records and {(r.charge_unit, r.discharge_unit) for r in run.records} == {
        (charged, picked)}


def test_ties_are_broken_by_the_seed(community):
    """Three equal accepts (R 4000 each, 400 Wh @10): the seed picks; the same seed the same."""

    def pick(seed: int) -> str:
        run = community(2000.9, 4000.9, 4000.9, 4000.9, seed=seed, hw=ONE_DEAL)
        deal = first_deal(run)
        assert deal is not None and (deal.request_wh, deal.accept_wh) == (880, 400)
        return deal.discharge_unit

    picks = [pick(seed) for seed in range(8)]
    assert len(set(picks)) >= 2, picks
    assert [pick(seed) for seed in range(8)] == picks


# ---------------------------------------------------------------------- deal amount
@pytest.mark.parametrize(("limits", "units", "amount"), [
    # min(170, 260, max 100) = 100, a multiple of 100
    ((100, 100, 100), (2710.9, 3860.9), 100),
    # the shipped 50/50/50: every deal is 50 Wh
    ((50, 50, 50), (2710.9, 3860.9), 50),
    # min(170, 260, 200) = 170 → 150 in steps of 25
    ((10, 200, 25), (2710.9, 3860.9), 150),
    # a request of 49 is not sent when the minimum is 100
    ((100, 100, 100), (2831.9, 3860.9), None),
    # 49 > 40 is sent and accepted, but min(49, 260, 100) floors to 0 < 40: no deal
    ((40, 100, 100), (2831.9, 3860.9), None),
])
def test_deal_amount_rounding(community, limits, units, amount):
    """Deal = min(request, accept, amountMaxWh) floored to amountUnitWh, none if < amountMinWh."""
    low, high, unit = limits
    p = policy({"mediator.deal.amountMinWh": low, "mediator.deal.amountMaxWh": high,
                "mediator.deal.amountUnitWh": unit})
    run = community(*units, policy_=p, hw=ONE_DEAL)
    deal = first_deal(run)
    assert (deal.deal_wh if deal else None) == amount
    if deal:
        assert (deal.request_wh, deal.accept_wh) == (170, 260)


@pytest.mark.parametrize(("requested", "accepted", "limits", "amount"), [
    (170, 260, (100, 100, 100), 100),
    (260, 170, (100, 100, 100), 100),
    (99, 260, (50, 120, 100), 0),
    (49, 260, (40, 100, 100), 0),
    (170, 260, (50, 50, 50), 50),
    (51, 51, (50, 50, 50), 50),
])
def test_deal_amount_rule(community, requested, accepted, limits, amount):
    """The same rule called directly (Negotiation.java:200-209) on hand-worked amounts."""
    low, high, unit = limits
    p = policy({"mediator.deal.amountMinWh": low, "mediator.deal.amountMaxWh": high,
                "mediator.deal.amountUnitWh": unit})
    assert community(3000.9, policy_=p).c._deal_amount(requested, accepted) == amount


# ---------------------------------------------------------------------- interlock, activation
def test_interlock_drops_a_third_deal_at_creation(community):
    """E001 (sufficient) accepts three requests at once; the third deal finds it holding 2."""
    requesters = ("E002", "E003", "E004")
    for seed in range(200):  # House-Keeping phases: all three ask before any negotiation ends
        run = community(4080.9, 2000.9, 2000.9, 2000.9, seed=seed)
        run.c.plan(run.schedule.view())
        ticks = [run.c._hk_tick_after(u, 0.0) for u in requesters]
        if max(ticks) - min(ticks) < run.c.negotiation_s - 0.1:
            break
    else:
        pytest.fail("no seed puts the three requests within one negotiation")
    run.until(lambda: len(run.c._negotiations) == 3, 10)
    for neg in run.c._negotiations:  # E001 answered each of them
        assert [a[0] for a in neg.accepts] == ["E001"]
    run.until(lambda: not run.c._negotiations, 5)
    deals = run.active()
    assert len(deals) == 2 and all(d["discharge_unit"] == "E001" for d in deals)
    charged = {d["charge_unit"] for d in deals}
    left_out = set(requesters) - charged
    assert len(left_out) == 1
    assert [d["deal_id"] for d in deals] == ["D0000001", "D0000002"]  # the third never existed
    run.step(10)  # the one left out asks again, but E001 is busy: no answer, no deal
    assert {d["charge_unit"] for d in run.active()} == charged


DIRECTION = {  # E001 (mid) charges from E002 and is E003's cheapest discharger
    "acceptSelection": {"strategy": "pointAndAmount"},
    "00:00:00-24:00:00": {
        "batteryStatus": {"3000-": "high", "1500-3000": "mid", "-1500": "low"},
        "request": {"low": {"charge": offer(2000)}, "mid": {"charge": offer(3000)}},
        "accept": {"mid": {"discharge": offer(1000, 5)}, "high": {"discharge": offer(1000, 8)}},
    },
}


def test_direction_rule_at_activation(community):
    """E001 charges in one deal and discharges in another: the later one dies at activation."""
    run = community(2500.9, 4000.9, 1000.9, scenario_=DIRECTION)
    run.until(lambda: run.ended("direction"), 30)
    killed = run.ended("direction")[0]
    assert (killed.activated, killed.started, killed.cumulated_wh) == ("", "", 0.0)
    pair = {("E001", "E002"), ("E003", "E001")}
    assert (killed.charge_unit, killed.discharge_unit) in pair
    alive = [d for d in run.active() if d["state"] != "new"]
    assert len(alive) == 1
    other = alive[0]
    assert (other["charge_unit"], other["discharge_unit"]) in pair - {
        (killed.charge_unit, killed.discharge_unit)}
    assert other["created"] <= killed.created  # the first one made is the one that runs
    assert 0.0 <= seconds(killed.ended) - seconds(killed.created) <= GM_S  # its next tick


def test_total_current_cap_at_activation(community):
    """sumOfDealGridCurrentMaxA 1 A: a second 1 A deal is refused while one is active."""
    p = policy({"safety.sumOfDealGridCurrentMaxA": 1})
    run = community(2000.9, 4000.9, 2000.9, 4000.9, policy_=p, hw=ONE_DEAL)
    run.until(lambda: run.ended("capacity"), 30)
    refused = run.ended("capacity")[0]
    assert (refused.activated, refused.started) == ("", "")
    running = [d for d in run.active() if d["state"] != "new"]
    assert len(running) == 1
    assert {refused.charge_unit, refused.discharge_unit}.isdisjoint(
        {running[0]["charge_unit"], running[0]["discharge_unit"]})
    run.c.set_operation_mode("heteronomous")
    run.until(lambda: not run.active(), 1200)
    assert [r.end_reason for r in run.ended() if r.end_reason != "capacity"] == ["amount"]


def test_a_cap_below_one_deal_refuses_every_deal(community):
    """sumOfDealGridCurrentMaxA 0.5 A: even the first 1 A deal is refused (0 + 1 > 0.5)."""
    run = community(2000.9, 4000.9, policy_=policy({"safety.sumOfDealGridCurrentMaxA": 0.5}),
                    hw=ONE_DEAL)
    run.step(30)
    assert run.records and {r.end_reason for r in run.records} == {"capacity"}
    assert run.all_wait()


# ---------------------------------------------------------------------- ramp and start
def test_first_deal_ramps_on_the_charge_unit(community):
    """First deal: its charge unit holds the grid and it starts 120 s later, once vg ≥ 346 V."""
    # the grid rises 350 V in 120 s: ≥ 346 V after 118.6 s, the Grid Master's tick at +120 s
    run = community(2000.9, 4000.9, hw=ONE_DEAL)
    run.until(lambda: run.active() and run.active()[0]["state"] == "ramping", 15)
    assert run.unit("E001")[0] == Mode.VOLTAGE_REFERENCE and run.unit("E002")[0] == Mode.WAIT
    ramp = []
    run.until(lambda: ramp.append(float(run.em.units.vg[0])) or
              run.active()[0]["state"] == "started", 130)
    assert all(b > a for a, b in zip(ramp, ramp[1:], strict=False))  # rising, 350 V / 120 s
    assert ramp[-1] == 350.0
    assert 0 < sum(v >= 346.0 for v in ramp) <= GM_S  # started at the first tick it is up
    deal = run.active()[0]
    assert seconds(deal["started"]) - seconds(deal["activated"]) == 120.0
    assert run.unit("E002") == (Mode.DISCHARGE, 1.0, -1.0)
    mode, _, ig = run.unit("E001")
    assert (mode, ig) == (Mode.VOLTAGE_REFERENCE, 1.0)
    assert float(run.em.units.vg[0]) == 350.0


def test_first_deal_ramp_timeout(community):
    """rampUp.first.timeoutMsec 60000: the ramp (120 s) is not done at +60 s: ramp_timeout."""
    p = policy({"controller.dcdc.voltageReference.rampUp.first.timeoutMsec": 60000})
    run = community(2000.9, 4000.9, policy_=p, hw=ONE_DEAL)
    run.until(lambda: run.records, 80)
    deal = run.records[0]
    assert deal.end_reason == "ramp_timeout" and deal.started == ""
    assert seconds(deal.ended) - seconds(deal.activated) == 60.0
    assert run.all_wait()  # the reference goes back to WAIT, the grid down


def test_later_deals_start_in_the_tick_they_are_activated(community):
    """A second deal waits for the first to start, then is activated and started in that tick."""
    # E001 asks twice; both deals share its meter: (2·350 − 55) / 2 W each, 112 ticks > 50 Wh
    run = community(2000.9, 4000.9)
    run.until(lambda: len(run.active()) == 2, 15)
    first, second = run.active()
    assert second["activated"] == ""  # waits: the first deal has not started
    run.c.set_operation_mode("heteronomous")
    run.until(lambda: not run.active(), 1200)
    a, b = sorted(run.records, key=lambda r: r.deal_id)
    assert b.activated == b.started == a.started
    per_tick = (2 * 350.0 - 55.0) / 2 * GM_S / 3600.0
    ticks = math.floor(50.0 / per_tick) + 1
    assert ticks == 112
    for r in (a, b):
        assert r.end_reason == "amount"
        assert seconds(r.ended) - seconds(r.started) == ticks * GM_S
        assert r.cumulated_wh == pytest.approx(ticks * per_tick, rel=1e-9)


def test_a_deal_made_as_the_master_ends_starts_in_that_tick(community):
    """A deal new at the tick its master ends starts then (the master is processed last)."""
    # DealExecution sorts the running master deal last: the new deal still sees it running,
    # so it is a later deal (no ramp), and the reference moves to it when the master ends
    run = community(2000.9, 4000.9, 3000.9, 4000.9, hw=ONE_DEAL)
    run.until(lambda: run.active() and run.active()[0]["state"] == "started", 150)
    master = run.c._deals[0]
    end = master.started + 123 * GM_S  # 295 W: the 123rd tick passes 50 Wh
    # E003 turns short just before its House-Keeping tick in (end − 7, end − 2): its deal
    # (made 2 s later, within the master's last period) is new at the master's last tick
    asks = run.c._hk_tick_after("E003", end - 7.0 + 0.01)
    assert asks < end - 2.0
    run.until(lambda: run.em.emulated_s >= asks - 1.0, 800)
    run.em.set_emu("E003", {"rsoc": rsoc(2000.9)})
    volts = []
    run.until(lambda: volts.append(float(run.em.units.vg[0])) or run.records, 10)
    ended = run.records[0]
    assert (ended.charge_unit, ended.end_reason) == ("E001", "amount")
    new = run.active()[0]
    assert new["charge_unit"] == "E003"
    assert new["created"] < ended.ended == new["activated"] == new["started"]
    assert run.c.status(run.schedule.view())["voltage_reference"] == "E003"
    volts.append(float(run.em.units.vg[0]))
    assert set(volts) == {350.0}  # the grid never went down
    assert run.unit("E001")[0] == Mode.WAIT and run.unit("E003")[0] == Mode.VOLTAGE_REFERENCE


# ---------------------------------------------------------------------- running a deal
@pytest.mark.parametrize(("large", "reference", "wb"), [
    ([], "E001", VR_WB),  # the charge unit is the voltage reference: 295 W, 123 ticks
    (["E002"], "E002", CC_WB),  # only the discharger is large: it holds the grid; 279 W, 130
])
def test_deal_energy_on_the_charge_units_wb_with_strict_stop(community, large, reference, wb):
    """Σ wb·5 s/3600 of the charge unit per tick; ends at the first tick strictly over 50 Wh."""
    run = community(2000.9, 4000.9, policy_=policy({"largeCapacityUnitIds": large}),
                    hw=ONE_DEAL)
    run.until(lambda: run.active() and run.active()[0]["state"] == "started", 150)
    assert run.c.status(run.schedule.view())["voltage_reference"] == reference
    assert float(run.em.snapshot().wb[0]) == pytest.approx(wb, abs=1e-9)
    assert float(run.em.snapshot().wb[1]) == pytest.approx(-350.0 - 55.0, abs=1e-9)
    run.c.set_operation_mode("heteronomous")
    run.until(lambda: run.records, 700)
    deal = run.records[0]
    per_tick = wb * GM_S / 3600.0
    ticks = math.floor(50.0 / per_tick) + 1
    assert ticks == (123 if wb == VR_WB else 130)
    assert deal.end_reason == "amount"
    assert seconds(deal.ended) - seconds(deal.started) == ticks * GM_S
    assert deal.cumulated_wh == pytest.approx(ticks * per_tick, rel=1e-9)
    assert (ticks - 1) * per_tick <= 50.0 < deal.cumulated_wh
    assert deal.cumulated_wh - deal.deal_wh < per_tick
    assert run.all_wait()  # the last deal ended: every converter waits, the grid is down


@pytest.mark.parametrize(("unit", "value"), [("E002", 19.9), ("E001", 95.5)])
def test_force_stop(community, unit, value):
    """rsoc(discharger) < 20 or rsoc(charger) > 95: force_stop at the next tick, Wh so far kept."""
    run = community(2000.9, 4000.9, hw=ONE_DEAL)
    run.until(lambda: run.active() and run.active()[0]["state"] == "started", 150)
    run.step(60)
    run.em.set_emu(unit, {"rsoc": value})
    run.until(lambda: run.records, 6)
    deal = run.records[0]
    assert deal.end_reason == "force_stop"
    ticks = (seconds(deal.ended) - seconds(deal.started)) / GM_S
    assert ticks in (12.0, 13.0)  # the tick after 60 s of flow
    assert deal.cumulated_wh == pytest.approx(ticks * VR_WB * GM_S / 3600.0, rel=1e-9)
    assert run.all_wait()


def test_reference_moves_to_large_unit_and_two_deals_carry_2a(community):
    """Two deals carry 2 A; the reference moves to a large unit; the grid waits after the last."""
    # E002 charges from E003 twice (2 A each side); E004 then charges from E001 (large)
    p = policy({"largeCapacityUnitIds": ["E001"]})
    run = community(3700.9, 2000.9, 4000.9, 3000.9, policy_=p)
    run.until(lambda: len(run.active()) == 2 and
              all(d["state"] == "started" for d in run.active()), 150)
    assert {(d["charge_unit"], d["discharge_unit"]) for d in run.active()} == {("E002", "E003")}
    assert run.c.status(run.schedule.view())["voltage_reference"] == "E002"
    assert run.unit("E002") == (Mode.VOLTAGE_REFERENCE, 2.3, 2.0)
    assert run.unit("E003") == (Mode.DISCHARGE, 2.0, -2.0)
    run.em.set_emu("E004", {"rsoc": rsoc(2000.9)})  # E004 becomes short: only E001 answers
    run.until(lambda: len(run.active()) == 3 and run.active()[2]["state"] == "started", 15)
    third = run.active()[2]
    assert (third["charge_unit"], third["discharge_unit"]) == ("E004", "E001")
    assert third["activated"] == third["started"]
    assert 0.0 <= seconds(third["started"]) - seconds(third["created"]) <= GM_S
    assert run.c.status(run.schedule.view())["voltage_reference"] == "E001"
    assert run.unit("E001")[0] == Mode.VOLTAGE_REFERENCE
    assert run.unit("E002") == (Mode.CHARGE, 2.0, 2.0)
    assert run.unit("E003") == (Mode.DISCHARGE, 2.0, -2.0)
    assert run.unit("E004") == (Mode.CHARGE, 1.0, 1.0)
    assert run.unit("E001")[2] == -1.0 and float(np.sum(run.em.units.ig)) == 0.0
    assert set(run.em.units.vg) == {350.0}
    run.c.set_operation_mode("heteronomous")
    run.until(lambda: not run.active(), 1500)
    assert {r.end_reason for r in run.records} == {"amount"}
    assert run.c.status(run.schedule.view())["voltage_reference"] is None
    assert run.all_wait()
