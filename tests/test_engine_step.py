"""One physics step against numbers computed by hand from power-flow-model §2–§6.

Reference settings (conftest.REFERENCE): constantSystemLoss 17.5, DCCstLoss 4.5, DCChargeLoss 71,
DCDischargeLoss 55, battModeLoss 0.140·load + 129, transLoss 0.027·load + 57, bypassModeLoss
0.033·load + 67, ACChargeLoss 10, ACChargeAmount 150, BATT_OFF 30, BATT_ON 35, AC_OFF 25,
AC_ON 20, batteryVoltage 48 V, batterySize 4800 Wh.  Solar is given in W (pv_gain 1), constant,
so every interpolated sample is exactly the constant.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from apis_emulator.engine import OUT_FIELDS
from apis_emulator.engine.kernel import LEDGER_FIELDS
from apis_emulator.engine.render import unit_document, unit_view

OUT = {name: i for i, name in enumerate(OUT_FIELDS)}
L = {name: i for i, name in enumerate(LEDGER_FIELDS)}

# One unit, converter waiting (wg = 0, L_dcdc = DCCstLoss 4.5), Δt = 3600 s so W·1 h = Wh.
# Columns: start rsoc [%], PV [W], load [kW] → pv used, p2, acloss, dcloss, flow, wasted [W],
# stored energy after the step [Wh], UPS mode (2 battery, 5 bypass).
ONE_HOUR_CASES = {
    # battery mode: rsoc 50 > BATT_ON
    #   dcloss = 17.5 + 4.5 + 129 + 0.140·500 = 221;  acloss = 57;  p2 = acloss = 57
    #   flow = 0 + 300 + 57 − 500 − 57 − 221 = −421;  E = 2400 − 421 = 1979
    "battery mode": (50.0, 300.0, 0.5, dict(pv=300.0, p2=57.0, acloss=57.0, dcloss=221.0,
                                            flow=-421.0, wasted=0.0), 1979.0, 2),
    # bypass mode: rsoc 28 ≤ BATT_OFF 30, > AC_ON 20 (no AC charging)
    #   dcloss = 17.5 + 4.5 = 22;  acloss = 57 + 67 + (0.033 + 0.027)·500 = 154
    #   p2 = 500 + 154 = 654;  flow = 300 + 654 − 500 − 154 − 22 = 278;  E = 1344 + 278 = 1622
    "bypass mode": (28.0, 300.0, 0.5, dict(pv=300.0, p2=654.0, acloss=154.0, dcloss=22.0,
                                           flow=278.0, wasted=0.0), 1622.0, 5),
    # AC charging: rsoc 15 ≤ AC_ON 20 (and bypass)
    #   dcloss = 22;  acloss = 154 + 10 = 164;  p2 = 654 + 150 + 10 = 814
    #   flow = 0 + 814 − 500 − 164 − 22 = 128;  E = 720 + 128 = 848
    "AC charging": (15.0, 0.0, 0.5, dict(pv=0.0, p2=814.0, acloss=164.0, dcloss=22.0,
                                         flow=128.0, wasted=0.0), 848.0, 5),
    # full battery, PV surplus: rsoc 100, battery mode
    #   dcloss = 221, acloss = p2 = 57;  flow = 2000 + 57 − 500 − 57 − 221 = 1279
    #   all of it would overfill: wasted = 1279, PV used = 2000 − 1279 = 721, flow = 0
    "full, PV surplus": (100.0, 2000.0, 0.5, dict(pv=721.0, p2=57.0, acloss=57.0,
                                                  dcloss=221.0, flow=0.0, wasted=1279.0),
                         4800.0, 2),
    # nearly full: rsoc 90 (E = 4320), same flow 1279 → 4320 + 1279 = 5599 > 4800
    #   excess = 799 W over the hour: wasted = 799, PV used = 1201, flow = 1279 − 799 = 480
    "nearly full": (90.0, 2000.0, 0.5, dict(pv=1201.0, p2=57.0, acloss=57.0, dcloss=221.0,
                                            flow=480.0, wasted=799.0), 4800.0, 2),
    # empty battery: rsoc 31 (E = 1488), battery mode, load 2 kW, no PV
    #   dcloss = 17.5 + 4.5 + 129 + 0.140·2000 = 431;  acloss = p2 = 57
    #   flow = 57 − 2000 − 57 − 431 = −2431 → E would be 1488 − 2431 = −943
    #   shortfall 943 W from AC: p2 = 57 + 943 = 1000, flow = −1488, E = 0
    "empty battery": (31.0, 0.0, 2.0, dict(pv=0.0, p2=1000.0, acloss=57.0, dcloss=431.0,
                                           flow=-1488.0, wasted=0.0), 0.0, 2),
}


@pytest.mark.parametrize("case", list(ONE_HOUR_CASES))
def test_one_hour_step_by_hand(make_emulator, case):
    """Engine arrays and ledger after one Δt = 3600 s step equal the hand computation."""
    rsoc, solar, load, expected, energy, ups_mode = ONE_HOUR_CASES[case]
    em = make_emulator(1, solar=solar, load=load, step=3600.0, initialRsoc=rsoc)
    em.advance(1)
    out = em.units.out[0]
    for name, value in dict(expected, load=load * 1000.0).items():
        assert out[OUT[name]] == pytest.approx(value, abs=1e-9), name
    assert em.units.energy[0] == pytest.approx(energy, abs=1e-9)
    assert em.units.rsoc[0] == pytest.approx(100.0 * energy / 4800.0, abs=1e-12)
    # the ledger holds the same powers × 1 h [Wh]
    ledger = em.units.ledger[0]
    for name, column in (("pv", "pv"), ("p2", "acin"), ("wasted", "wasted"),
                         ("acloss", "acloss"), ("dcloss", "dcloss")):
        assert ledger[L[column]] == pytest.approx(expected[name], abs=1e-9), column
    assert ledger[L["load"]] == pytest.approx(load * 1000.0, abs=1e-9)
    # the rendered document shows the same numbers
    doc = unit_document(em, 0)
    assert doc["emu"]["charge_discharge_power"] == pytest.approx(abs(expected["flow"]))
    assert doc["emu"]["battery_current"] == pytest.approx(expected["flow"] / 48.0)
    assert doc["emu"]["pvc_charge_power"] == pytest.approx(expected["pv"])
    assert doc["emu"]["ups_output_power"] == pytest.approx(load * 1000.0)
    assert doc["emu"]["rsoc"] == pytest.approx(100.0 * energy / 4800.0)
    assert doc["emu"]["ups_operation_mode"]["mode"] == ups_mode
    assert doc["dcdc"]["powermeter"]["p2"] == pytest.approx(expected["p2"])
    assert doc["dcdc"]["powermeter"]["kwh2"] == pytest.approx(expected["p2"] / 1000.0)


def test_one_second_step_battery_mode(make_emulator):
    """Δt = 1 s: the same powers, the energy moves by flow/3600 Wh (no rounding of rsoc)."""
    em = make_emulator(1, solar=300.0, load=0.5, initialRsoc=50.0)
    em.advance(1)
    # flow = −421 W (see "battery mode" above) for 1 s: E = 2400 − 421/3600
    assert em.units.energy[0] == pytest.approx(2400.0 - 421.0 / 3600.0, abs=1e-12)
    assert em.units.rsoc[0] == pytest.approx(100.0 * (2400.0 - 421.0 / 3600.0) / 4800.0)
    assert em.emulated_s == 1.0


def test_small_discharge_moves_rsoc_at_one_second(make_emulator):
    """500 W for 1 s changes rsoc by 0.0029 %: kept, not rounded away (defect of §8)."""
    em = make_emulator(1, solar=0.0, load=0.0, initialRsoc=50.0,
                       constantSystemLoss=500.0 - 4.5 - 129.0, transLoss_c=0.0)
    em.advance(1)
    # dcloss = (500 − 4.5 − 129) + 4.5 + 129 + 0 = 500;  acloss = p2 = 0;  flow = −500
    assert em.units.out[0, OUT["flow"]] == pytest.approx(-500.0)
    assert 50.0 - em.units.rsoc[0] == pytest.approx(100.0 * 500.0 / 3600.0 / 4800.0)


def test_ups_hysteresis_holds_between_thresholds(make_emulator):
    """Bypass turns on at ≤ 30 %, stays on until ≥ 35 %; AC charging on at ≤ 20 %, off at ≥ 25 %."""
    em = make_emulator(1, solar=0.0, load=0.5, step=60.0, initialRsoc=30.5)
    assert not em.units.bypass[0]
    seen = []
    for _ in range(2000):
        em.advance(1)
        seen.append((em.units.rsoc[0], bool(em.units.bypass[0]), bool(em.units.ac_charge[0])))
    # the UPS state of a step is decided by the rsoc at its start
    for (rsoc_before, _, _), (_, bypass, ac) in zip(seen, seen[1:], strict=False):
        if rsoc_before <= 30.0:
            assert bypass
        if rsoc_before >= 35.0:
            assert not bypass
        if rsoc_before <= 20.0:
            assert ac
        if rsoc_before >= 25.0:
            assert not ac
    # it went into bypass, AC charged from ≤ 20 % and kept charging in the dead band up to 25 %
    assert any(b for _, b, _ in seen) and any(a for _, _, a in seen)
    band = [a for r, _, a in seen if 20.5 < r < 24.5]
    assert band and any(band) and not all(band)


# ---------------------------------------------------------------------- DC/DC modes
# Four units (4 households of 0.5 kW, PV 300 W, rsoc 50, battery mode), Δt = 1 s.
# E001 0x0014 voltage reference at dvg 350, E002 0x0002 dig 2, E003 0x0041 dig 3, E004 0x0000.
# Columns: mode, vg [V], ig [A], wg = vg·ig [W], wb = wg − L_dcdc [W], ib = wb/48 [A],
#          flow after one step [W].
# base dcloss (battery mode) = 17.5 + 129 + 0.140·500 = 216.5;  acloss = p2 = 57
DC_EXPECTED = {
    # reference takes the balance: ig = −(−2 + 3 + 0) = −1;  wg = −350;  wb = −350 − 55 = −405
    #   flow = −350 + 300 + 57 − 500 − 57 − (216.5 + 55) = −821.5
    "E001": ("0x0014", 350.0, -1.0, -350.0, -405.0, -405.0 / 48.0, -821.5),
    # discharging 2 A: wg = −700;  wb = −700 − 55 = −755
    #   flow = −700 + 300 − 500 − 271.5 = −1171.5
    "E002": ("0x0002", 350.0, -2.0, -700.0, -755.0, -755.0 / 48.0, -1171.5),
    # charging 3 A: wg = 1050;  wb = 1050 − 71 = 979
    #   flow = 1050 + 300 − 500 − (216.5 + 71) = 562.5
    "E003": ("0x0041", 350.0, 3.0, 1050.0, 979.0, 979.0 / 48.0, 562.5),
    # waiting: ig = 0, wg = 0;  wb = −4.5
    #   flow = 300 − 500 − (216.5 + 4.5) = −421
    "E004": ("0x0000", 350.0, 0.0, 0.0, -4.5, -4.5 / 48.0, -421.0),
}
STATUS = {"0x0000": ("Waiting", "Waiting", "off"),
          "0x0002": ("Heteronomy CV Discharging", "Heteronomy CV", "discharge"),
          "0x0014": ("Grid Autonomy Mode", "Grid Autonomy", "discharge"),
          "0x0041": ("Heteronomy CV Charging - grid current limited", "Heteronomy CV", "charge")}


@pytest.fixture
def dc_community(make_emulator):
    em = make_emulator(4, solar=300.0, load=0.5, households=4, initialRsoc=50.0)
    em.set_dcdc("E001", mode="0x0014", dvg=350.0, dig=2.3, drg=0.0)
    em.set_dcdc("E002", mode="0x0002", dig=2.0)
    em.set_dcdc("E003", mode="0x0041", dig=3.0)
    em.advance(200, power_flow=False)  # let the soft start of the down grid finish
    assert em.ramp_voltage is None
    return em


def test_dc_modes_meters_by_hand(dc_community):
    """vg, ig, wg, wb, ib of each mode, in the arrays and in the rendered document."""
    em = dc_community
    for i, (unit_id, (code, vg, ig, wg, wb, ib, _)) in enumerate(DC_EXPECTED.items()):
        assert em.units.ids[i] == unit_id
        assert (em.units.vg[i], em.units.ig[i], em.units.wg[i]) == pytest.approx((vg, ig, wg))
        meter = unit_document(em, i)["dcdc"]["meter"]
        assert meter["vg"] == pytest.approx(vg)
        assert meter["ig"] == pytest.approx(ig)
        assert meter["wg"] == pytest.approx(wg)
        assert meter["wb"] == pytest.approx(wb)
        assert meter["ib"] == pytest.approx(ib)
        assert meter["vb"] == 48.0
        status = unit_document(em, i)["dcdc"]["status"]
        assert (status["status"], status["statusName"], status["operationMode"],
                status["runningState"]) == (code, *STATUS[code])
    assert em.units.ig.sum() == pytest.approx(0.0, abs=1e-12)


def test_dc_modes_one_step_by_hand(dc_community):
    """The battery flow of each mode after one step of 1 s."""
    em = dc_community
    em.advance(1)
    for i, (_, *_, flow) in enumerate(DC_EXPECTED.values()):
        assert em.units.out[i, OUT["flow"]] == pytest.approx(flow, abs=1e-9)
        assert em.units.energy[i] == pytest.approx(2400.0 + flow / 3600.0, abs=1e-12)
        # the ledger's grid energy is wg · 1 s; only what is received counts as wg_in
        wg = DC_EXPECTED[em.units.ids[i]][3]
        assert em.units.ledger[i, L["wg"]] == pytest.approx(wg / 3600.0)
        assert em.units.ledger[i, L["wg_in"]] == pytest.approx(max(wg, 0.0) / 3600.0)


def test_empty_battery_discharging_to_dc_grid_takes_shortfall_from_ac(make_emulator):
    """rsoc 0 (bypass, AC charging) while pushing 2 A at 350 V into the grid, Δt = 3600 s."""
    em = make_emulator(2, solar=0.0, load=0.5, households=2, step=3600.0, initialRsoc=0.0)
    em.set_dcdc("E001", mode="0x0014", dvg=350.0, dig=2.3)
    em.set_dcdc("E002", mode="0x0002", dig=2.0)
    em.advance(1, power_flow=False)  # 3600 s ≫ the 120 s soft start
    em.advance(1)
    out = em.units.out[1]
    # dcloss = 17.5 + 55 = 72.5;  acloss = 57 + 67 + 0.060·500 + 10 = 164
    # p2 = 500 + 154 + 150 + 10 = 814;  flow = −700 + 814 − 500 − 164 − 72.5 = −622.5
    # E would be −622.5 Wh: the shortfall 622.5 W comes from AC, p2 = 814 + 622.5 = 1436.5
    assert out[OUT["dcloss"]] == pytest.approx(72.5)
    assert out[OUT["acloss"]] == pytest.approx(164.0)
    assert out[OUT["p2"]] == pytest.approx(1436.5)
    assert out[OUT["flow"]] == pytest.approx(0.0, abs=1e-9)
    assert em.units.energy[1] == 0.0
    assert em.units.ledger[1, L["acin"]] == pytest.approx(1436.5)
    assert unit_document(em, 1)["dcdc"]["powermeter"]["p2"] == pytest.approx(1436.5)


# ---------------------------------------------------------------------- the document
NUMBER, STRING, BOOL = "number", "string", "bool"
DOC_TYPES = {
    **{f"emu.{k}": NUMBER for k in (
        "charge_discharge_power", "rsoc", "battery_rsoc", "battery_voltage", "battery_current",
        "pvc_charge_voltage", "pvc_charge_current", "pvc_charge_power", "ups_input_voltage",
        "ups_output_voltage", "ups_output_current", "ups_output_power", "ups_output_frequency",
        "ups_operation_mode.parameter", "ups_operation_mode.mode", "ups_operation_mode.stop_mode",
        "ups_operation_schedule", "system_time.year", "system_time.month", "system_time.day",
        "system_time.hour", "system_time.minute", "dischargeable_time.hour",
        "dischargeable_time.minute")},
    **{f"dcdc.status.{k}": STRING for k in (
        "status", "statusName", "operationMode", "runningState", "alarm", "alarmState")},
    **{f"dcdc.powermeter.{k}": NUMBER for k in ("p1", "p2", "v1", "i1", "kwh1", "kwh2")},
    **{f"dcdc.meter.{k}": NUMBER for k in ("vg", "ig", "wg", "vb", "ib", "wb", "tmp")},
    "dcdc.vdis.dvg": NUMBER, "dcdc.vdis.drg": NUMBER,
    **{f"dcdc.param.{k}": NUMBER for k in ("dig", "ogv", "ugv", "cib", "obv", "ubv")},
    **{f"oesunit.{k}": STRING for k in ("id", "display", "ip", "ipv6_ll", "ipv6_g", "mac", "sn",
                                        "budo")},
    "oesunit.on": BOOL, "time": STRING,
}
UNIT_VIEW_DCDC = {"status": {"status", "alarmState", "operationMode"},
                  "meter": {"wg", "tmp", "vb", "wb", "vg", "ib", "ig"},
                  "vdis": {"dvg", "drg"}, "param": {"dig"}}


def _at(doc, path):
    for key in path.split("."):
        doc = doc[key]
    return doc


def _check_type(value, kind):
    if kind == NUMBER:
        return type(value) in (int, float)
    return type(value) is {STRING: str, BOOL: bool}[kind]


def test_document_keys_and_json_types(dc_community):
    """Every key of unit-json.md is there with its JSON type, as plain Python values."""
    em = dc_community
    em.advance(1)
    for i in range(len(em.units)):
        doc = unit_document(em, i)
        for path, kind in DOC_TYPES.items():
            value = _at(doc, path)
            assert _check_type(value, kind), f"{path}={value!r} is not a JSON {kind}"
        assert json.loads(json.dumps(doc)) == doc
    doc = unit_document(em, 0)
    assert doc["oesunit"]["id"] == "E001"
    assert doc["time"] == "2019/01/01-00:03:21"  # 200 s of soft start + 1 step
    assert doc["emu"]["system_time"] == {"year": 2019, "month": 1, "day": 1, "hour": 0,
                                         "minute": 3}


def test_unit_view_trims_dcdc(dc_community):
    """/get/unit keeps emu, oesunit, time and the trimmed dcdc parts."""
    doc = unit_document(dc_community, 2)
    view = unit_view(doc)
    assert set(view) == set(doc)
    assert {k: set(v) for k, v in view["dcdc"].items()} == UNIT_VIEW_DCDC
    assert view["emu"] == doc["emu"]
    assert view["dcdc"]["meter"]["ig"] == 3.0 and view["dcdc"]["status"]["status"] == "0x0041"
    for part, keys in UNIT_VIEW_DCDC.items():
        for key in keys:
            assert _check_type(view["dcdc"][part][key], NUMBER if part != "status" else STRING)


def test_shown_values_match_arrays_after_many_steps(dc_community):
    """Rendering is a view: it does not change the arrays and agrees with them."""
    em = dc_community
    em.advance(500)
    before = em.units.out.copy(), em.units.energy.copy()
    docs = [unit_document(em, i) for i in range(4)]
    np.testing.assert_array_equal(em.units.out, before[0])
    np.testing.assert_array_equal(em.units.energy, before[1])
    for i, doc in enumerate(docs):
        assert doc["emu"]["battery_current"] == em.units.out[i, OUT["flow"]] / 48.0
        assert doc["emu"]["rsoc"] == em.units.rsoc[i]
