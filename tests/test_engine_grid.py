"""The DC grid (power-flow-model §6): references, soft start, dvg changes, hand-over, overload.

Sign convention: ig > 0 flows from the grid into the unit; a voltage reference (0x0014) supplies
the balance, so Σ ig = 0 whenever one is on the grid.
"""

from __future__ import annotations

import numpy as np
import pytest

from apis_emulator.engine import RAMP_SECONDS, solve_grid
from apis_emulator.engine.render import dcdc_status_view, unit_document
from apis_emulator.modes import Mode
from apis_emulator.runner import RealTimeRunner

WAIT, DISCHARGE, VOLTAGE_REFERENCE, CHARGE = Mode

DROOP = 0.039  # apis-main's hwConfig droopRatio, sent during the hand-over


def grid(*units):
    """solve_grid on (mode, dvg, dig, drg) tuples."""
    mode, dvg, dig, drg = (np.array(col, dtype=float) for col in zip(*units, strict=True))
    return solve_grid(mode.astype(np.int64), dvg, dig, drg)


@pytest.fixture
def community(make_emulator):
    """Four units on 4 households, Δt = 1 s, the grid down."""
    return make_emulator(4, solar=0.0, load=0.5, households=4)


def grid_up(em, unit_id="E001", dvg=350.0):
    em.set_dcdc(unit_id, mode="0x0014", dvg=dvg, dig=2.3, drg=0.0)
    em.advance(int(RAMP_SECONDS / em.dt) + 1, power_flow=False)
    assert em.bus_voltage == dvg and em.ramp_voltage is None


# ---------------------------------------------------------------------- solve_grid
def test_no_reference_means_grid_down():
    """Without a 0x0014 unit vg = 0 and every ig = 0, whatever the others ask."""
    v, ig = grid((DISCHARGE, 350, 2.0, 0), (CHARGE, 350, 1.0, 0), (WAIT, 350, 2.3, 0))
    assert v == 0.0
    assert list(ig) == [0.0, 0.0, 0.0]


def test_one_stiff_reference_takes_the_balance():
    """vg = dvg; ig_ref = −Σ(others) (the reference emulator's rule)."""
    v, ig = grid((VOLTAGE_REFERENCE, 360, 2.3, 0), (DISCHARGE, 350, 2.0, 0),
                 (CHARGE, 350, 1.5, 0), (CHARGE, 350, 0.25, 0), (WAIT, 350, 1.0, 0))
    assert v == 360.0
    # others: −2 + 1.5 + 0.25 + 0 = −0.25 → the reference draws 0.25 A
    np.testing.assert_allclose(ig, [0.25, -2.0, 1.5, 0.25, 0.0], atol=1e-12)


def test_two_equal_droop_references_share_equally():
    """Same dvg, dig and drg: each carries half of the balance; vg droops by the same share."""
    v, ig = grid((VOLTAGE_REFERENCE, 350, 2.3, DROOP), (VOLTAGE_REFERENCE, 350, 2.3, DROOP),
                 (CHARGE, 350, 2.0, 0))
    np.testing.assert_allclose(ig, [-1.0, -1.0, 2.0], atol=1e-12)
    # each at 1/2.3 of its limit: vg = 350 − (1/2.3)·0.039·350
    assert v == pytest.approx(350.0 - 1.0 / 2.3 * DROOP * 350.0)


def test_reference_at_its_limit_holds_it_and_the_other_takes_the_rest():
    """A: dig 1 A, drg 0.01; B: dig 2.3 A, drg 0.039; the chargers draw 2 A."""
    v, ig = grid((VOLTAGE_REFERENCE, 350, 1.0, 0.01), (VOLTAGE_REFERENCE, 350, 2.3, DROOP),
                 (CHARGE, 350, 2.0, 0))
    # unclipped A would give 1.26 A > 1 A: A holds −1 A, B supplies the other 1 A,
    # at which B's droop is (1/2.3)·0.039·350 = 5.935 V
    np.testing.assert_allclose(ig, [-1.0, -1.0, 2.0], atol=1e-12)
    assert v == pytest.approx(350.0 - 1.0 / 2.3 * DROOP * 350.0)


def test_stiff_reference_holds_voltage_beside_a_droop_one():
    """drg = 0 holds vg = dvg: a droop reference at the same dvg then carries nothing."""
    v, ig = grid((VOLTAGE_REFERENCE, 350, 2.3, 0.0), (VOLTAGE_REFERENCE, 350, 2.3, DROOP),
                 (DISCHARGE, 350, 1.0, 0))
    assert v == 350.0
    np.testing.assert_allclose(ig, [1.0, 0.0, -1.0], atol=1e-12)


@pytest.mark.parametrize("mode, dig, ref_ig", [
    (CHARGE, 2.0, -2.3),     # three chargers want 6 A, the reference gives its 2.3 A at most
    (DISCHARGE, 2.0, 2.3),   # three dischargers push 6 A, the reference takes 2.3 A at most
])
def test_overload_scales_the_converters_and_keeps_kirchhoff(mode, dig, ref_ig):
    v, ig = grid((VOLTAGE_REFERENCE, 350, 2.3, 0), (mode, 350, dig, 0), (mode, 350, dig, 0),
                 (mode, 350, dig, 0), (WAIT, 350, 2.0, 0))
    assert ig.sum() == pytest.approx(0.0, abs=1e-12)
    assert ig[0] == pytest.approx(ref_ig)
    # the three converters are scaled alike: each carries 2.3/3 A
    np.testing.assert_allclose(ig[1:4], [-ref_ig / 3] * 3)
    assert ig[4] == 0.0
    assert v == 350.0


def test_overload_in_the_emulator(community):
    em = community
    grid_up(em)
    for unit_id in ("E002", "E003", "E004"):
        em.set_dcdc(unit_id, mode="0x0041", dig=2.0)
    assert em.units.ig.sum() == pytest.approx(0.0, abs=1e-12)
    assert em.units.ig[0] == pytest.approx(-2.3)
    np.testing.assert_allclose(em.units.wg, em.units.vg * em.units.ig)


# ---------------------------------------------------------------------- soft start
@pytest.mark.parametrize("dvg", [350.0, 380.0])
@pytest.mark.parametrize("dt", [1.0, 10.0])
def test_soft_start_rises_over_120_s(make_emulator, dvg, dt):
    """A down grid rises linearly from 0 to dvg over 120 emulated s, in any Δt."""
    em = make_emulator(2, load=0.5, households=2, step=dt)
    em.set_dcdc("E002", mode="0x0041", dig=1.0)
    em.set_dcdc("E001", mode="0x0014", dvg=dvg, dig=2.3)
    assert em.bus_voltage == 0.0
    assert unit_document(em, 0)["dcdc"]["meter"]["vg"] == 0.0
    seen = []
    while em.emulated_s < 200.0:
        em.advance(1)
        seen.append((em.emulated_s, em.bus_voltage))
        # Kirchhoff holds during the ramp; wg follows the ramping voltage
        assert em.units.ig.sum() == pytest.approx(0.0, abs=1e-12)
        np.testing.assert_allclose(em.units.wg, em.units.vg * em.units.ig)
        np.testing.assert_array_equal(em.units.vg, em.bus_voltage)
    for t, v in seen:
        # vg = dvg · t / 120 in proportion to the span, then dvg
        assert v == pytest.approx(min(dvg, dvg * t / RAMP_SECONDS), abs=1e-9)
    # apis-main waits ≤ 180 emulated s for vg ≥ dvg − 4; it is not there before ~118 s
    first_ok = min(t for t, v in seen if v >= dvg - 4.0)
    assert 110.0 <= first_ok <= 120.0


def test_soft_start_in_the_unit_document(community):
    """/get/dcdc/status shows the rising voltage after 60 s: half of dvg."""
    em = community
    em.set_dcdc("E001", mode="0x0014", dvg=350.0, dig=2.3)
    em.advance(60)
    meter = dcdc_status_view(unit_document(em, 3))["meter"]
    assert meter["vg"] == pytest.approx(175.0)


@pytest.mark.parametrize("acceleration, after_one_tick", [
    (3600.0, 350.0),  # more than 120 emulated s per tick: up at once, as in the reference
    (10.0, 350.0 * 10.0 / 120.0),  # 10 emulated s per wall second
])
def test_soft_start_with_the_real_time_runner(community, acceleration, after_one_tick):
    em = community
    now = [0.0]
    runner = RealTimeRunner(em, acceleration, 1.0, clock=lambda: now[0])
    em.set_dcdc("E001", mode="0x0014", dvg=350.0, dig=2.3)
    now[0] += 1.0
    runner.tick()
    assert em.bus_voltage == pytest.approx(after_one_tick)


def test_reference_leaving_takes_the_grid_down_and_a_new_one_ramps_again(community):
    em = community
    grid_up(em)
    em.set_dcdc("E002", mode="0x0002", dig=1.0)
    em.set_dcdc("E001", mode="0x0000")
    assert em.bus_voltage == 0.0
    assert list(em.units.ig) == [0.0] * 4 and list(em.units.wg) == [0.0] * 4
    em.set_dcdc("E003", mode="0x0014", dvg=350.0, dig=2.3)
    em.advance(30)
    assert em.bus_voltage == pytest.approx(350.0 * 30 / 120)


# ---------------------------------------------------------------------- live grid
def test_dvg_changes_on_a_live_grid_settle_at_once(community):
    """apis-main's authorization steps and the step down to 310 V are there at once."""
    em = community
    grid_up(em)
    em.set_dcdc("E002", mode="0x0041", dig=1.0)
    for target in (330.0, 340.0, 360.0, 370.0, 350.0, 310.0):
        em.set_dcdc_voltage("E001", target, drg=0.0)
        np.testing.assert_array_equal(em.units.vg, target)
        meter = dcdc_status_view(unit_document(em, 1))["meter"]
        assert meter["vg"] == target
        assert meter["wg"] == pytest.approx(target * 1.0)
        assert em.ramp_voltage is None


def test_second_reference_on_a_live_grid_does_not_ramp(community):
    em = community
    grid_up(em)
    em.set_dcdc("E002", mode="0x0014", dvg=350.0, dig=2.3, drg=DROOP)
    assert em.bus_voltage == 350.0 and em.ramp_voltage is None


def test_every_meter_follows_a_set_at_once(community):
    """A set on one unit recomputes the reference's meter too, before any step."""
    em = community
    grid_up(em)
    em.set_dcdc("E002", mode="0x0041", dig=2.0)
    assert unit_document(em, 0)["dcdc"]["meter"]["ig"] == pytest.approx(-2.0)
    em.set_dcdc_current("E002", 1.0)
    assert unit_document(em, 0)["dcdc"]["meter"]["ig"] == pytest.approx(-1.0)
    assert unit_document(em, 0)["dcdc"]["meter"]["wg"] == pytest.approx(-350.0)
    # wb of the reference = wg − DCDischargeLoss 55
    assert unit_document(em, 0)["dcdc"]["meter"]["wb"] == pytest.approx(-405.0)


# ---------------------------------------------------------------------- hand-over
def test_voltage_reference_hand_over(community):
    """apis-main's hand-over (contract c.9): Σ ig = 0 throughout, the old one's |ig| ≤ its dig
    and ≈ 0 at the end, the bus within the droop band."""
    em = community
    grid_up(em, "E001")
    em.set_dcdc("E002", mode="0x0002", dig=1.0)  # a deal: E002 discharges 1 A,
    em.set_dcdc("E003", mode="0x0041", dig=2.0)  # E003 charges 2 A, the reference gives 1 A

    def check(old_dig):
        ig = em.units.ig
        assert ig.sum() == pytest.approx(0.0, abs=1e-9)
        assert abs(ig[0]) <= old_dig + 1e-12
        assert abs(em.bus_voltage - 350.0) <= DROOP * 350.0 + 1e-9
        np.testing.assert_allclose(em.units.wg, em.bus_voltage * ig)

    # 1. old VR WillHandOver: voltage?dvg=350.0&drg=0.039
    em.set_dcdc_voltage("E001", 350.0, drg=DROOP)
    check(2.3)
    # 2. new VR WillTakeOver: mode=0x0014&dvg=350.0&dig=2.3&drg=0.039
    em.set_dcdc("E004", mode="0x0014", dvg=350.0, dig=2.3, drg=DROOP)
    assert em.ramp_voltage is None  # the grid is up: no soft start
    check(2.3)
    assert em.units.ig[0] == pytest.approx(em.units.ig[3])  # equal droop: equal shares
    # 3. old VR DidHandOver: its dig stepped 2.3 → 1.3 → 0.29999995 → 0
    for dig in (1.3, 0.29999995, 0.0):
        em.set_dcdc_current("E001", dig)
        check(dig)
        em.advance(1)  # time passes between the steps; nothing drifts
        check(dig)
    # Checkpoint: | |ig| − 0 | ≤ 0.125 A, here exactly 0
    assert em.units.ig[0] == pytest.approx(0.0, abs=1e-12)
    assert em.units.ig[3] == pytest.approx(-1.0)
    em.set_dcdc("E001", mode="0x0000", dvg=350.0, dig=0.0, drg=0.0)
    check(0.0)
    # 4. new VR DidTakeOver: voltage?dvg=350.0&drg=0 → the bus is back at 350 V exactly
    em.set_dcdc_voltage("E004", 350.0, drg=0.0)
    assert em.bus_voltage == 350.0
    np.testing.assert_allclose(em.units.ig, [0.0, -1.0, 2.0, -1.0], atol=1e-12)
