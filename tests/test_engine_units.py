"""Units: add, remove, more units than households, reset, save/load, refused commands."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest

from apis_emulator.engine import OUT_FIELDS, load_state, save_state
from apis_emulator.engine.render import unit_document
from apis_emulator.errors import InvalidValueError, StateFileError, UnknownUnitError
from conftest import assert_same_state, state_of

OUT = {name: i for i, name in enumerate(OUT_FIELDS)}


@pytest.fixture
def em(make_emulator):
    """Three units on three households with different loads; a little history."""
    em = make_emulator(3, solar=800.0, load=np.array([0.3, 0.6, 0.9])[:, None, None],
                       households=3, step=60.0)
    em.set_dcdc("E001", mode="0x0014", dvg=350.0, dig=2.3)
    em.set_dcdc("E002", mode="0x0002", dig=1.0)
    em.advance(100)
    return em


# ---------------------------------------------------------------------- add / remove
def test_add_unit_takes_highest_id_plus_one(em):
    assert em.add_unit() == "E004"
    assert em.ids == ["E001", "E002", "E003", "E004"]
    i = em.index("E004")
    # the standard parameters: waiting converter, configured rsoc, vg of the live grid
    assert em.units.rsoc[i] == pytest.approx(50.0)
    assert unit_document(em, i)["dcdc"]["status"]["status"] == "0x0000"
    assert unit_document(em, i)["oesunit"]["id"] == "E004"
    assert em.units.vg[i] == em.bus_voltage
    assert em.units.ig.sum() == pytest.approx(0.0, abs=1e-12)


def test_remove_unit_removes_highest_id(em):
    assert em.remove_unit() == "E003"
    assert em.ids == ["E001", "E002"]
    assert em.add_unit() == "E003"


def test_remove_last_unit_then_refuse(make_emulator):
    em = make_emulator(1)
    assert em.remove_unit() == "E001"
    assert em.ids == []
    with pytest.raises(InvalidValueError, match="at least one unit"):
        em.remove_unit()
    em.advance(10)  # an empty community still runs its clock
    assert em.add_unit() == "E001"


def test_add_after_load_state_with_other_ids(em):
    """Ids come from the ids present, not from the count (defect of power-flow-model §8)."""
    saved = save_state(em)
    state = {"E005": saved["E001"], "E010": saved["E002"]}
    load_state(em, json.loads(json.dumps(state)))
    assert em.ids == ["E005", "E010"]
    assert em.add_unit() == "E011"
    assert em.remove_unit() == "E011"
    assert em.remove_unit() == "E010"
    assert em.ids == ["E005"]


def test_add_after_a_gap_in_the_middle(em):
    saved = save_state(em)
    load_state(em, {"E001": saved["E001"], "E003": saved["E003"]})
    assert em.add_unit() == "E004"
    assert em.remove_unit() == "E004"
    assert em.remove_unit() == "E003"
    assert em.ids == ["E001"]


def test_added_unit_has_its_converter_loss_at_once(em):
    """A new waiting unit: wb = −DCCstLoss 4.5 W, and its first step counts that loss."""
    i = em.index(em.add_unit())
    assert unit_document(em, i)["dcdc"]["meter"]["wb"] == pytest.approx(-4.5)
    em.advance(1)
    # battery mode at rsoc 50: dcloss = 17.5 + 4.5 + 129 + 0.140·300 (household 1, 0.3 kW)
    assert em.units.out[i, OUT["dcloss"]] == pytest.approx(17.5 + 4.5 + 129.0 + 0.140 * 300.0)


def test_removing_the_reference_takes_the_grid_down(make_emulator):
    em = make_emulator(3, households=3)
    em.set_dcdc("E003", mode="0x0014", dvg=350.0, dig=2.3)
    em.set_dcdc("E001", mode="0x0041", dig=1.0)
    em.advance(200, power_flow=False)
    assert em.bus_voltage == 350.0
    assert em.remove_unit() == "E003"
    assert em.bus_voltage == 0.0
    assert list(em.units.vg) == [0.0, 0.0] and list(em.units.ig) == [0.0, 0.0]


def test_added_unit_keeps_physics_of_others(em):
    """Adding a unit changes nobody's stored energy or ledger."""
    before = em.units.energy.copy(), em.units.ledger.copy()
    em.add_unit()
    np.testing.assert_array_equal(em.units.energy[:3], before[0])
    np.testing.assert_array_equal(em.units.ledger[:3], before[1])


# ---------------------------------------------------------------------- households
def test_more_units_than_households_maps_modulo_and_warns(make_emulator, caplog):
    loads = np.array([0.3, 0.6])[:, None, None]
    with caplog.at_level(logging.WARNING, logger="apis_emulator"):
        em = make_emulator(5, load=loads, households=2)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, "no warning about units beyond the households"
    text = warnings[0].getMessage()
    assert "3 unit(s)" in text and "2 households" in text and "E003" in text
    assert list(em.units.house) == [0, 1, 0, 1, 0]
    em.advance(1)
    np.testing.assert_allclose(em.units.out[:, OUT["load"]], [300.0, 600.0, 300.0, 600.0, 300.0])


def test_add_unit_beyond_households_warns(make_emulator, caplog):
    em = make_emulator(2, households=2)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="apis_emulator"):
        em.add_unit()
    assert any("E003" in r.getMessage() for r in caplog.records)
    assert em.units.house[2] == 0


def test_no_warning_when_households_suffice(make_emulator, caplog):
    with caplog.at_level(logging.WARNING, logger="apis_emulator"):
        make_emulator(3, households=3)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_default_number_of_units_is_households(make_emulator):
    assert make_emulator(None, households=4).ids == ["E001", "E002", "E003", "E004"]


# ---------------------------------------------------------------------- reset
def test_reset_restores_standard_units(em, make_emulator):
    em.add_unit()
    em.set_emu("E002", {"rsoc": 90.0})
    em.reset()
    fresh = make_emulator(3, solar=800.0, load=np.array([0.3, 0.6, 0.9])[:, None, None],
                          households=3, step=60.0)
    assert em.ids == fresh.ids
    for name in ("energy", "capacity", "mode", "dvg", "dig", "drg", "vg", "ig", "wg", "bypass",
                 "ac_charge", "house", "pv_gain", "ledger"):
        np.testing.assert_array_equal(getattr(em.units, name), getattr(fresh.units, name), name)
    assert em.bus_voltage == 0.0 and em.ramp_voltage is None
    np.testing.assert_array_equal(em.units.dcdc_loss, 4.5)
    # the grid is down after a reset: a new reference rises from 0 V again
    em.set_dcdc("E002", mode="0x0014", dvg=350.0, dig=2.3)
    em.advance(1)  # Δt = 60 s: half of the 120 s soft start
    assert em.bus_voltage == pytest.approx(175.0)


# ---------------------------------------------------------------------- save / load
def test_save_change_load_restores_exactly(em):
    saved = json.loads(json.dumps(save_state(em)))  # as written to and read from lastSave.json
    before = state_of(em)
    em.advance(500)
    em.set_emu("E003", {"rsoc": 3.0})
    em.set_dcdc("E002", mode="0x0041", dig=2.0)
    em.add_unit()
    load_state(em, saved)
    after = state_of(em)
    # the clock is not part of a unit's state: it goes on
    before["step"] = after["step"]
    # the energy counter is saved as kWh on top of the ledger: equal up to the last digit
    np.testing.assert_allclose(after["arrays"].pop("kwh_base"), before["arrays"].pop("kwh_base"),
                               rtol=1e-12, atol=1e-12)
    assert_same_state(before, after)


def test_load_state_then_steps_follow_the_same_trajectory(em, make_emulator):
    saved = json.loads(json.dumps(save_state(em)))
    em.advance(300)
    expected = em.units.energy.copy(), em.units.ledger.copy()
    em.advance(1000)
    load_state(em, saved)
    em.step_index -= 1300  # back to the moment of the save
    em.advance(300)
    np.testing.assert_array_equal(em.units.energy, expected[0])
    np.testing.assert_allclose(em.units.ledger, expected[1], rtol=1e-12)


def test_load_state_refuses_bad_documents_and_changes_nothing(em):
    saved = save_state(em)
    before = state_of(em)
    bad = json.loads(json.dumps(saved))
    bad["E002"]["dcdc"]["status"]["status"] = "0x9999"
    with pytest.raises(StateFileError, match="0x9999"):
        load_state(em, bad)
    bad = json.loads(json.dumps(saved))
    bad["E003"]["emu"]["rsoc"] = 150.0
    del bad["E003"]["emulator"]
    with pytest.raises(StateFileError, match="rsoc"):
        load_state(em, bad)
    for state in ({}, [], "x", {"E001": 5}):
        with pytest.raises(StateFileError):
            load_state(em, state)
    assert_same_state(before, state_of(em))


# ---------------------------------------------------------------------- refused commands
NAN, INF = math.nan, math.inf
BAD_DCDC = [
    # (keyword arguments, field named in the message, accepted range in the message)
    (dict(mode="0x0003"), "mode", "0x0000, 0x0002, 0x0014, 0x0041"),  # unknown mode code
    (dict(mode="Waiting"), "mode", "0x0000, 0x0002, 0x0014, 0x0041"),  # a name, not a code
    (dict(dvg=NAN), "dvg", "[0, 1000]"),  # not a number
    (dict(dvg=INF), "dvg", "[0, 1000]"),  # infinite
    (dict(dvg=1000.5), "dvg", "[0, 1000]"),  # above range
    (dict(dvg="abc"), "dvg", "[0, 1000]"),  # text
    (dict(dig=-0.1), "dig", "[0, 100]"),  # negative current
    (dict(dig=-INF), "dig", "[0, 100]"),
    (dict(drg=1.5), "drg", "[0, 1]"),  # droop above 1
    (dict(p1=1e7), "p1", "[-1e+06, 1e+06]"),
    (dict(p2=NAN), "p2", "[-1e+06, 1e+06]"),
    # a valid mode with a bad current: nothing at all is applied
    (dict(mode="0x0041", dig=NAN), "dig", "[0, 100]"),
    (dict(mode="0x0014", dvg=350.0, dig=2.3, drg=-1.0), "drg", "[0, 1]"),
]


@pytest.mark.parametrize("kwargs, name, accepted", BAD_DCDC)
def test_set_dcdc_refuses_bad_values_and_changes_nothing(em, kwargs, name, accepted):
    before = state_of(em)
    with pytest.raises(InvalidValueError) as info:
        em.set_dcdc("E003", **kwargs)
    assert info.value.field == name
    assert str(info.value).startswith(f"{name}=")
    assert accepted in str(info.value)
    assert_same_state(before, state_of(em))


BAD_EMU = [
    ({"rsoc": -1.0}, "rsoc", "[0, 100]"),  # below range
    ({"rsoc": 100.01}, "rsoc", "[0, 100]"),  # above range
    ({"rsoc": NAN}, "rsoc", "[0, 100]"),
    ({"rsoc": "fifty"}, "rsoc", "[0, 100]"),
    ({"rsoc": None}, "rsoc", "[0, 100]"),
    ({"ups_output_power": INF}, "ups_output_power", "[0, 1e+06]"),
    ({"pvc_charge_power": -5.0}, "pvc_charge_power", "[0, 1e+06]"),
    ({"battery_voltage": 12.0}, "battery_voltage", "rsoc, charge_discharge_power"),  # unknown
    ({"rsoc": 40.0, "bogus": 1}, "bogus", "one of the keys"),  # a good key and a bad one
    ({"rsoc": 40.0, "charge_discharge_power": NAN}, "charge_discharge_power", "[0, 1e+06]"),
    ({}, "query", "at least one of"),  # nothing to set
]


@pytest.mark.parametrize("values, name, accepted", BAD_EMU)
def test_set_emu_refuses_bad_values_and_changes_nothing(em, values, name, accepted):
    before = state_of(em)
    with pytest.raises(InvalidValueError) as info:
        em.set_emu("E002", values)
    assert info.value.field == name
    assert accepted in str(info.value)
    assert_same_state(before, state_of(em))


@pytest.mark.parametrize("call", [
    lambda em: em.set_dcdc("E999", mode="0x0000"),
    lambda em: em.set_dcdc_voltage("E000", 350.0),
    lambda em: em.set_dcdc_current("e001", 1.0),
    lambda em: em.set_emu("E4", {"rsoc": 50.0}),
    lambda em: em.index(""),
])
def test_unknown_unit_is_refused_and_changes_nothing(em, call):
    before = state_of(em)
    with pytest.raises(UnknownUnitError) as info:
        call(em)
    assert "unknown unit" in str(info.value) and "E001, E002, E003" in str(info.value)
    assert_same_state(before, state_of(em))


def test_unknown_unit_wins_over_bad_value(em):
    """A bad value for an unknown unit names the unit (checked first)."""
    with pytest.raises(UnknownUnitError, match="E999"):
        em.set_dcdc("E999", dvg=NAN)


def test_good_values_are_applied(em):
    em.set_emu("E002", {"rsoc": 12.5, "pvc_charge_power": 99.0})
    assert em.units.rsoc[1] == pytest.approx(12.5)
    assert unit_document(em, 1)["emu"]["pvc_charge_power"] == 99.0
    em.set_dcdc("E003", mode="0x0041", dig=1.5, dvg=360.0, drg=0.039, p1=10.0, p2=20.0)
    doc = unit_document(em, 2)["dcdc"]
    assert (doc["status"]["status"], doc["param"]["dig"], doc["vdis"]["dvg"],
            doc["vdis"]["drg"], doc["powermeter"]["p1"], doc["powermeter"]["p2"]) == (
        "0x0041", 1.5, 360.0, 0.039, 10.0, 20.0)
    assert doc["meter"]["ig"] == pytest.approx(1.5)
