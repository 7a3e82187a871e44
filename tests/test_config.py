"""Settings: reference values, sources and their precedence, and refused values."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from apis_emulator.config import DEFAULT_MODES, Settings, load_settings
from apis_emulator.errors import SettingsError

NO_ENV: dict[str, str] = {}


def test_reference_values():
    """Every §7.1 parameter under its own name with the reference value."""
    s = load_settings(env=NO_ENV)
    expected = {
        "constantSystemLoss": 17.5, "DCCstLoss": 4.5, "DCChargeLoss": 71.0,
        "DCDischargeLoss": 55.0, "battModeLoss_a": 0.140, "battModeLoss_c": 129.0,
        "transLoss_a": 0.027, "transLoss_c": 57.0, "bypassModeLoss_a": 0.033,
        "bypassModeLoss_c": 67.0, "ACChargeLoss": 10.0, "UPS_TRIGGER_BATT_OFF": 30.0,
        "UPS_TRIGGER_BATT_ON": 35.0, "UPS_TRIGGER_AC_OFF": 25.0, "UPS_TRIGGER_AC_ON": 20.0,
        "batteryVoltage": 48.0, "ACChargeAmount": 150.0, "batterySize": 4800.0,
        "default_Area": 21.6, "r": 0.19, "pr": 0.9, "sleeptime": 1.0, "acceleration": 10.0,
        "doUpdates": True, "b_port": 4390, "b_host": "127.0.0.1"}
    assert {k: getattr(s, k) for k in expected} == expected
    assert dict(s.modes) == DEFAULT_MODES
    assert s.default_pv_size == pytest.approx(21.6 * 0.19 * 0.9)


def test_mode_dependent_defaults():
    """Δt 1 s and a 60 s log when served; 10 s and 900 s headless; explicit values kept."""
    s = load_settings(env=NO_ENV)
    assert (s.with_defaults_for("serve").step, s.with_defaults_for("serve").indivLogInterval) == (
        1.0, 60.0)
    assert (s.with_defaults_for("simulate").step,
            s.with_defaults_for("simulate").indivLogInterval) == (10.0, 900.0)
    assert s.replace(step=5.0).with_defaults_for("simulate").step == 5.0


# ---------------------------------------------------------------------- refused values
BAD = [
    # (key, value, words the message must contain)
    ("batteryVoltage", -48, "a number in (0, 10000]"),  # out of range, open lower bound
    ("batterySize", 0, "a number in (0, 1e+07]"),  # zero where > 0 is needed
    ("battModeLoss_a", 1.5, "a number in [0, 1]"),  # a factor above 1
    ("UPS_TRIGGER_AC_ON", 101, "a number in [0, 100]"),  # rsoc threshold above 100 %
    ("DCCstLoss", "abc", "a number in [0, 10000]"),  # not a number
    ("DCCstLoss", "nan", "a number in [0, 10000]"),  # NaN
    ("acceleration", "inf", "a number in (0, 1e+06]"),  # infinite
    ("acceleration", -1, "a number in (0, 1e+06]"),  # time backwards (defect §8)
    ("transLoss_c", True, "a number in [0, 10000]"),  # a bool is not a number
    ("b_port", 65536, "a whole number in [0, 65535]"),  # port out of range
    ("b_port", 4390.5, "a whole number in [0, 65535]"),  # not whole
    ("doUpdates", "maybe", "true or false"),  # wrong bool
    ("doUpdates", 2, "true or false"),
    ("start", "2019-13-01T00:00:00", "a date and time like 2019-01-01T00:00:00"),  # month 13
    ("start", "yesterday", "a date and time like"),
    ("step", 0, "a number > 0"),  # Δt must be positive
    ("step", "-1", "a number > 0"),
    ("initialRsoc", 150, "a number in [0, 100]"),
    ("dataSet", "", "a non-empty string"),
    ("modes", {"0x0000": "Waiting"}, "exactly the keys 0x0000, 0x0002, 0x0014, 0x0041"),
]


@pytest.mark.parametrize("key, value, accepted", BAD)
def test_bad_value_names_key_value_and_what_is_accepted(key, value, accepted):
    with pytest.raises(SettingsError) as info:
        load_settings(env=NO_ENV, overrides={key: value})
    message = str(info.value)
    assert info.value.key == key
    assert message.startswith(f"setting {key}={value!r} is not accepted: ")
    assert accepted in message


def test_unknown_key():
    with pytest.raises(SettingsError, match=r"setting batterysize=4800 .*a known setting name"):
        load_settings(env=NO_ENV, overrides={"batterysize": 4800})


def test_batt_on_below_batt_off():
    with pytest.raises(SettingsError) as info:
        load_settings(env=NO_ENV, overrides={"UPS_TRIGGER_BATT_ON": 25, "UPS_TRIGGER_BATT_OFF": 30})
    assert info.value.key == "UPS_TRIGGER_BATT_ON"
    assert "a value >= UPS_TRIGGER_BATT_OFF (30.0)" in str(info.value)


def test_ac_off_below_ac_on():
    with pytest.raises(SettingsError, match=r"UPS_TRIGGER_AC_OFF=10\.0 .*>= UPS_TRIGGER_AC_ON"):
        Settings(UPS_TRIGGER_AC_OFF=10, UPS_TRIGGER_AC_ON=20)


def test_per_unit_overrides_checked():
    s = load_settings(env=NO_ENV, overrides={"units": {"E002": {"batterySize": 9600}}})
    assert s.units == {"E002": {"batterySize": 9600.0}}
    with pytest.raises(SettingsError, match=r"units\.E002\.colour=.*one of the keys"):
        load_settings(env=NO_ENV, overrides={"units": {"E002": {"colour": 1}}})
    with pytest.raises(SettingsError, match=r"units\.E002\.initialRsoc=120"):
        load_settings(env=NO_ENV, overrides={"units": {"E002": {"initialRsoc": 120}}})


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_settings(env=NO_ENV).batterySize = 1.0  # type: ignore[misc]


# ---------------------------------------------------------------------- sources
def test_environment_variable_overrides_default():
    s = load_settings(env={"APIS_EMULATOR_BATTERYSIZE": "9600", "APIS_EMULATOR_doUpdates": "no",
                           "APIS_EMULATOR_start": "2020-03-01T06:00:00", "OTHER": "x"})
    assert s.batterySize == 9600.0
    assert s.doUpdates is False
    assert s.start_time.isoformat() == "2020-03-01T06:00:00"


def test_environment_variable_is_checked():
    with pytest.raises(SettingsError) as info:
        load_settings(env={"APIS_EMULATOR_DCCHARGELOSS": "lots"})
    assert info.value.key == "DCChargeLoss" and "'lots'" in str(info.value)


def test_unknown_environment_variable():
    with pytest.raises(SettingsError, match="APIS_EMULATOR_BATTERY_SIZE.*known setting name"):
        load_settings(env={"APIS_EMULATOR_BATTERY_SIZE": "9600"})


def test_real_environment_is_read(monkeypatch):
    monkeypatch.setenv("APIS_EMULATOR_ACCELERATION", "42")
    assert load_settings().acceleration == 42.0


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_file_precedence(tmp_path):
    """Defaults < TOML file < environment < flags (overrides)."""
    path = _toml(tmp_path, 'batterySize = 9600\nDCCstLoss = 5.0\nACChargeLoss = 11.0\n'
                           'dataSet = "mydata"\n[units.E001]\nbatterySize = 2400\n')
    s = load_settings(path, env={"APIS_EMULATOR_DCCSTLOSS": "6.0",
                                 "APIS_EMULATOR_ACCHARGELOSS": "12"},
                      overrides={"ACChargeLoss": 13.0, "step": None})
    assert s.batterySize == 9600.0  # from the file
    assert s.DCCstLoss == 6.0  # the environment beats the file
    assert s.ACChargeLoss == 13.0  # a flag beats both
    assert s.step is None  # a flag not given (None) changes nothing
    assert s.constantSystemLoss == 17.5  # untouched default
    assert s.units == {"E001": {"batterySize": 2400.0}}
    # a relative data-set path in the file is relative to the file
    assert Path(s.dataSet) == tmp_path / "mydata"


def test_toml_file_bad_value_names_key(tmp_path):
    path = _toml(tmp_path, 'UPS_TRIGGER_BATT_OFF = "thirty"\n')
    with pytest.raises(SettingsError, match="UPS_TRIGGER_BATT_OFF='thirty'"):
        load_settings(path, env=NO_ENV)


def test_toml_file_unknown_key(tmp_path):
    path = _toml(tmp_path, "batterysize = 9600\n")
    with pytest.raises(SettingsError, match="batterysize=9600.*known setting name"):
        load_settings(path, env=NO_ENV)


def test_toml_file_broken_or_missing(tmp_path):
    with pytest.raises(SettingsError, match=r"--config=.*valid TOML"):
        load_settings(_toml(tmp_path, "batterySize = = 1\n"), env=NO_ENV)
    with pytest.raises(SettingsError, match=r"--config=.*an existing TOML file"):
        load_settings(tmp_path / "missing.toml", env=NO_ENV)
