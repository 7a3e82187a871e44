"""The sweep file: keys classified, values checked, runs expanded and named (no Dask here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from apis_emulator.cli import main
from apis_emulator.sweep import SweepFileError, load_sweep


def sweep_doc(sweep_data: Path, axes: dict | None = None, **sections) -> dict:
    """A sweep document: 1 day of 4 units on the test data set, with these axes."""
    doc = {"sweep": {"days": 1, "units": 4, "data": str(sweep_data)}, "axes": axes or {}}
    for name, table in sections.items():
        doc.setdefault(name, {})
        if isinstance(table, dict):
            doc[name].update(table)
        else:
            doc[name] = table
    return doc


def test_product_then_explicit_runs(sweep_data):
    """Every combination of the axes, in file order, then the [[runs]] tables; columns of both."""
    sweep = load_sweep(sweep_doc(sweep_data, {"batterySize": [2400.0, 4800.0],
                                            "initialRsoc": [30.0, 70.0]},
                                 runs=[{"batterySize": 9600.0, "pvc_sol_reg": 5.0}]))
    assert [r.labels for r in sweep.rows] == [
        {"batterySize": 2400.0, "initialRsoc": 30.0, "pvc_sol_reg": None},
        {"batterySize": 2400.0, "initialRsoc": 70.0, "pvc_sol_reg": None},
        {"batterySize": 4800.0, "initialRsoc": 30.0, "pvc_sol_reg": None},
        {"batterySize": 4800.0, "initialRsoc": 70.0, "pvc_sol_reg": None},
        {"batterySize": 9600.0, "initialRsoc": 50.0, "pvc_sol_reg": 5.0}]  # effective values
    assert sweep.columns == ("batterySize", "initialRsoc", "pvc_sol_reg")
    assert len(sweep.runs) == 5 and len({r.run_id for r in sweep.runs}) == 5
    assert sweep.runs[0].params["settings"]["batterySize"] == 2400.0
    assert sweep.runs[0].params["settings"]["step"] == 10.0  # simulate's default Δt


def test_no_axes_is_one_run(sweep_data):
    """A file with neither axes nor runs is the one run of its [sweep] and [settings]."""
    sweep = load_sweep(sweep_doc(sweep_data, settings={"batterySize": 3000.0}))
    assert len(sweep.runs) == 1 and sweep.rows[0].labels == {}
    assert sweep.runs[0].params["settings"]["batterySize"] == 3000.0


def test_run_id_is_a_hash_of_the_full_parameters(sweep_data, tmp_path):
    """Equal parameters (however written, wherever the data set lives) give equal ids."""
    first = load_sweep(sweep_doc(sweep_data, {"batterySize": [4800]}))
    written_as_float = load_sweep(sweep_doc(sweep_data, {"batterySize": [4800.0]}))
    default_value = load_sweep(sweep_doc(sweep_data))  # 4800 Wh is the default
    copy = shutil.copytree(sweep_data, tmp_path / "copy")
    moved = load_sweep(sweep_doc(copy, {"batterySize": [4800.0]}))
    other = load_sweep(sweep_doc(sweep_data, {"batterySize": [4801.0]}))
    ids = {s.runs[0].run_id for s in (first, written_as_float, default_value, moved)}
    assert len(ids) == 1 and len(first.runs[0].run_id) == 12
    assert other.runs[0].run_id not in ids


def test_linked_axis_and_per_unit_override(sweep_data):
    """A list of tables sets several keys together; units.<id>.<key> overrides one unit."""
    sweep = load_sweep(sweep_doc(sweep_data, {
        "losses": [{"label": "spec", "DCChargeLoss": 71.0, "DCDischargeLoss": 55.0},
                   {"DCChargeLoss": 20.0, "DCDischargeLoss": 15.0}],
        "units": {"E002": {"batterySize": [1000.0]}}}))
    assert [r.labels["losses"] for r in sweep.rows] == [
        "spec", "DCChargeLoss=20.0, DCDischargeLoss=15.0"]
    settings = sweep.runs[1].params["settings"]
    assert (settings["DCChargeLoss"], settings["DCDischargeLoss"]) == (20.0, 15.0)
    assert settings["units"] == {"E002": {"batterySize": 1000.0}}
    assert sweep.columns == ("losses", "units.E002.batterySize")


def test_sweep_options_are_run_parameters(sweep_data):
    """days, units, step, indiv-interval… are part of the run (flag names, dashes allowed)."""
    sweep = load_sweep(sweep_doc(sweep_data, {"days": [1, 2]},
                                 sweep={"step": 5.0, "indiv-interval": 600}))
    first, second = (run.params for run in sweep.runs)
    assert (first["days"], second["days"]) == (1.0, 2.0)
    assert first["settings"]["step"] == 5.0 and first["indiv_interval"] == 600.0
    assert first["units"] == 4 and first["controller"] == "none"


BAD = [
    # (sections, the key the message must name, a piece of what is accepted)
    ({"axes": {"batterysize": [1.0]}}, "axes.batterysize", "a setting name"),
    ({"axes": {"batterySize": [2400.0, -1]}}, "axes.batterySize=-1", "(0, 1e+07]"),
    ({"axes": {"batterySize": 4800.0}}, "axes.batterySize=4800.0", "a non-empty list"),
    ({"axes": {"batterySize": []}}, "axes.batterySize=[]", "a non-empty list"),
    ({"sweep": {"days": 0}}, "sweep.days=0", "a number of days > 0"),
    ({"sweep": {"units": 2.5}}, "sweep.units=2.5", "a whole number >= 1"),
    ({"sweep": {"controller": "bogus"}}, "sweep.controller='bogus'", "one of none"),
    ({"sweep": {"indiv_format": "xlsx"}}, "sweep.indiv_format='xlsx'", "one of csv, parquet"),
    ({"sweep": {"workers": 3}}, "sweep.workers=3", "a run option"),
    ({"settings": {"nope": 1}}, "settings.nope=1", "a setting name of docs/settings.md"),
    ({"settings": {"r": 2.0}}, "settings.r=2.0", "[0, 1]"),
    ({"axes": {"units": {"E009": {"batterySize": [1.0]}}}}, "axes.units.E009.batterySize",
     "a unit of the run: E001 … E004"),
    ({"runs": [{"UPS_TRIGGER_BATT_ON": 10.0}]}, "runs[0].UPS_TRIGGER_BATT_ON=10.0",
     "UPS_TRIGGER_BATT_OFF"),
    ({"runs": [{"days": -1}]}, "runs[0].days=-1", "> 0"),
    ({"axes": {"start": ["yesterday"]}}, "axes.start='yesterday'", "a date and time"),
    ({"axes": {"data": ["/no/such/dir"]}}, "axes.data='/no/such/dir'", "a data-set directory"),
    ({"axes": {"losses": [{"label": "x"}]}}, "axes.losses", "at least one key"),
    ({"axis": {"batterySize": [1.0]}}, "axis=", "one of the sections"),
]


@pytest.mark.parametrize(("sections", "key", "accepted"), BAD)
def test_bad_sweep_is_refused_naming_the_key(sweep_data, sections, key, accepted):
    """A bad name or value stops the sweep before anything runs: key, value, what is accepted."""
    doc = sweep_doc(sweep_data)
    doc.pop("axes")
    for name, table in sections.items():
        doc[name] = {**doc.get(name, {}), **table} if isinstance(table, dict) else table
    with pytest.raises(SweepFileError) as caught:
        load_sweep(doc)
    assert key in str(caught.value) and accepted in str(caught.value)


def gridcurrent(values: list) -> dict:
    """The axis policy.mediator.deal.gridCurrentA as TOML's dotted key makes it."""
    return {"policy": {"mediator": {"deal": {"gridCurrentA": values}}}}


def test_policy_axis_edits_a_copy_of_the_shipped_policy(sweep_data):
    """A dotted axis changes that field of the run's policy; every unit stays a member, as
    with the shipped policy; without a controller the field is irrelevant and both rows
    share one run."""
    sweep = load_sweep(sweep_doc(sweep_data, {"controller": ["none", "apis"],
                                            **gridcurrent([1, 2.0])}))
    none_1, none_2, apis_1, apis_2 = sweep.rows
    assert none_1.run_id == none_2.run_id and len(sweep.runs) == 3
    by_id = {run.run_id: run.params for run in sweep.runs}
    assert by_id[none_1.run_id].get("policy") is None
    policies = [by_id[row.run_id]["policy"] for row in (apis_1, apis_2)]
    assert [p["mediator"]["deal"]["gridCurrentA"] for p in policies] == [1, 2]  # ints, as the file
    assert policies[0]["memberUnitIds"] == ["E001", "E002", "E003", "E004"]
    assert by_id[apis_1.run_id]["settings"]["step"] == 5.0  # simulate's step with a controller
    assert apis_2.labels == {"controller": "apis", "policy.mediator.deal.gridCurrentA": 2.0}


def test_shipped_files_unedited_are_simulates_defaults(sweep_data):
    """Without a file or an edit, scenario and policy are None: build_controller's defaults."""
    params = load_sweep(sweep_doc(sweep_data, sweep={"controller": "apis"})).runs[0].params
    assert params["scenario"] is None and params["policy"] is None
    assert (params["seed"], params["time_scale"], params["operation_mode"]) == (
        0, 1.0, "autonomous")


CONTROLLER_BAD = [
    # (axes, the key the message must name, a piece of what is accepted)
    (gridcurrent([-1.0]), "axes.policy.mediator.deal.gridCurrentA=-1 ", "a number in [0.001"),
    (gridcurrent(["1"]), "axes.policy.mediator.deal.gridCurrentA='1'", "a number, like"),
    ({"policy": {"mediator": {"deal": {"gridCurrent": [1]}}}},
     "axes.policy.mediator.deal.gridCurrent=1", "policy.mediator.deal has"),
    ({"policy": {"nowhere": {"x": [1]}}}, "axes.policy.nowhere.x=1", "policy has"),
    ({"scenario": {"acceptSelection": {"strategy": [7]}}},
     "axes.scenario.acceptSelection.strategy=7", "a string, like the file's value"),
    ({"operation_mode": ["sleepy"]}, "axes.operation_mode='sleepy'", "autonomous"),
]


@pytest.mark.parametrize(("axes", "key", "accepted"), CONTROLLER_BAD)
def test_bad_controller_fields_are_refused(sweep_data, axes, key, accepted):
    """A field not in apis-main's file, of another type, or refused by the rules: the key."""
    with pytest.raises(SweepFileError) as caught:
        load_sweep(sweep_doc(sweep_data, {"controller": ["apis"], **axes}))
    assert key in str(caught.value) and accepted in str(caught.value)


def test_cli_refuses_a_bad_file_before_anything_runs(sweep_data, tmp_path, capsys, monkeypatch):
    """``apis-emulator sweep BAD --out DIR``: exit 2, the message names key and value, no DIR."""
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[sweep]\ndays = 1\ndata = "{sweep_data}"\n\n[axes]\n'
                   'batterySize = [2400.0, "big"]\n', encoding="utf-8")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "axes.batterySize='big'" in err and "bad.toml" in err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_invalid_toml(tmp_path, capsys, monkeypatch):
    """A file that is not TOML is refused with the parser's reason."""
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text("[axes\n", encoding="utf-8")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "valid TOML" in capsys.readouterr().err


def test_relative_paths_are_relative_to_the_file(sweep_data, tmp_path):
    """data = "data" in a file next to the data set finds it, wherever the command runs."""
    here = tmp_path / "study"
    shutil.copytree(sweep_data, here / "data")
    (here / "s.toml").write_text('[sweep]\ndays = 1\nunits = 2\ndata = "data"\n',
                                 encoding="utf-8")
    sweep = load_sweep(here / "s.toml")
    assert sweep.runs[0].data == str((here / "data").resolve())


def test_dry_run_checks_and_counts(sweep_data, tmp_path, capfd, monkeypatch):
    """``sweep FILE --out DIR --dry-run``: exit 0, the runs counted, nothing written."""
    monkeypatch.chdir(tmp_path)
    study = tmp_path / "study.toml"
    study.write_text(f'[sweep]\ndays = 1\nunits = 2\ndata = "{sweep_data}"\n\n[axes]\n'
                     'batterySize = [2400.0, 4800.0]\ninitialRsoc = [40.0, 60.0]\n',
                     encoding="utf-8")
    assert main(["sweep", str(study), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    assert "4 combinations, 4 runs, 4 to run" in capfd.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_worked_example_of_the_docs_parses():
    """docs/examples/sharing-pays.toml (docs/sweeps.md): 16 rows, 12 runs; every run at 5 s;
    the deal current and the losses land where the runs read them."""
    example = Path(__file__).parents[1] / "docs" / "examples" / "sharing-pays.toml"
    sweep = load_sweep(example)
    assert sweep.columns == ("controller", "policy.mediator.deal.gridCurrentA", "batterySize",
                             "converter")
    assert len(sweep.rows) == 16 and len(sweep.runs) == 12
    params = [run.params for run in sweep.runs]
    assert all(p["days"] == 365.0 and p["units"] == 100 and p["settings"]["step"] == 5.0
               for p in params)
    sharing = [p for p in params if p["controller"] == "apis"]
    currents = sorted(p["policy"]["mediator"]["deal"]["gridCurrentA"] for p in sharing)
    assert currents == [1] * 4 + [2] * 4 and all(type(c) is int for c in currents)  # as the file
    assert sorted({(p["settings"]["DCChargeLoss"], p["settings"]["DCDischargeLoss"])
                   for p in params}) == [(20.0, 15.0), (71.0, 55.0)]
    assert {r.labels["converter"] for r in sweep.rows} == {"spec", "low"}


def test_config_is_simulates_settings_file(sweep_data, tmp_path):
    """config = a settings file, as `simulate --config`: under [settings] and the axes, its
    path relative to the sweep file, its dataSet used when the sweep names none, its step kept
    with a controller; the same run as the same values written in [settings]."""
    here = tmp_path / "study"
    shutil.copytree(sweep_data, here / "data")
    (here / "base.toml").write_text('dataSet = "data"\nbatterySize = 3000.0\n'
                                    'UPS_TRIGGER_AC_ON = 15.0\nstep = 2.0\n', encoding="utf-8")
    (here / "s.toml").write_text('[sweep]\ndays = 1\nunits = 4\nconfig = "base.toml"\n'
                                 'controller = "apis"\n\n[settings]\nbatterySize = 3500.0\n',
                                 encoding="utf-8")
    run = load_sweep(here / "s.toml").runs[0]
    assert run.data == str((here / "data").resolve())
    settings = run.params["settings"]
    assert (settings["batterySize"], settings["UPS_TRIGGER_AC_ON"], settings["step"]) == (
        3500.0, 15.0, 2.0)
    same = load_sweep(sweep_doc(here / "data", sweep={"controller": "apis"}, settings={
        "batterySize": 3500.0, "UPS_TRIGGER_AC_ON": 15.0, "step": 2.0}))
    assert same.runs[0].run_id == run.run_id


@pytest.mark.parametrize(("config", "key"), [
    (None, "sweep.config='missing.toml'"),
    ("batterySize = -5.0\n", "batterySize (in sweep.config = "),
    ("nope = 1\n", "nope (in sweep.config = "),
])
def test_a_bad_config_is_refused_naming_it(sweep_data, tmp_path, config, key):
    """A missing settings file names the option; a bad key in it names the key and the file."""
    if config is not None:
        (tmp_path / "missing.toml").write_text(config, encoding="utf-8")
    with pytest.raises(SweepFileError) as caught:
        load_sweep(sweep_doc(sweep_data, sweep={"config": str(tmp_path / "missing.toml")}))
    assert key.replace("'missing.toml'", repr(str(tmp_path / "missing.toml"))) in str(
        caught.value)
