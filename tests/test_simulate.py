"""The headless run (runner.simulate and the CLI) and the same trajectory whatever the pacing.

power-flow-model §5: at the same Δt, the same inputs and commands give the same trajectory
whatever the acceleration, served (RealTimeRunner, driven here by a manual clock) or headless.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from apis_emulator.engine import LEDGER_FIELDS, Emulator
from apis_emulator.inputs import DAYS, load_dataset
from apis_emulator.recorders import INDIV_COLUMNS, SUMMARY_COLUMNS
from apis_emulator.runner import RealTimeRunner, simulate
from conftest import settings, write_dataset

L = {name: i for i, name in enumerate(LEDGER_FIELDS)}
ENERGIES = ("pv", "demand", "acin", "wasted", "acloss", "dcloss", "loss", "wg", "deltaBatt")


def community_inputs(seed: int = 7, households: int = 4):
    """Solar [W] with a daily bell and clouds; loads [kW] that vary by household and hour."""
    rng = np.random.default_rng(seed)
    bell = np.clip(np.sin((np.arange(24) - 6) / 12 * np.pi), 0, None)
    solar = 2500.0 * bell[None, :] * rng.uniform(0.3, 1.0, (DAYS, 24))
    load = rng.uniform(0.1, 1.5, (households, DAYS, 48))
    return solar, load


@pytest.fixture
def data_dir(tmp_path):
    solar, load = community_inputs()
    return write_dataset(tmp_path / "data", solar=solar, load=load, households=4)


def quiet(**kwargs):
    """simulate() options for tests: no bar, no database, no signal handlers."""
    return dict(progress=False, database=False, handle_signals=False, **kwargs)


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


# ---------------------------------------------------------------------- simulate()
def test_three_days_summary_matches_the_ledger(data_dir, tmp_path):
    """3 day rows + sum + avg, documented columns, energies equal to the engine's ledger."""
    dataset = load_dataset(data_dir)
    em = Emulator(settings(step=10.0), dataset, 3)
    em.set_dcdc("E001", mode="0x0014", dvg=350.0, dig=2.3)
    em.set_dcdc("E002", mode="0x0002", dig=1.0)
    result = simulate(em, 3, tmp_path / "out", indiv_interval=900.0, **quiet())
    assert result.steps == 3 * 8640 and em.step_index == 3 * 8640

    # the same run by hand, day by day, from the engine's own ledger
    twin = Emulator(settings(step=10.0), dataset, 3)
    twin.set_dcdc("E001", mode="0x0014", dvg=350.0, dig=2.3)
    twin.set_dcdc("E002", mode="0x0002", dig=1.0)
    expected = []
    for _ in range(3):
        ledger0, energy0 = twin.units.ledger.sum(axis=0), twin.units.energy.sum()
        twin.advance(8640)
        day = twin.units.ledger.sum(axis=0) - ledger0
        expected.append({"pv": day[L["pv"]], "demand": day[L["load"]], "acin": day[L["acin"]],
                         "wasted": day[L["wasted"]], "acloss": day[L["acloss"]],
                         "dcloss": day[L["dcloss"]], "loss": day[L["acloss"]] + day[L["dcloss"]],
                         "wg": day[L["wg_in"]], "deltaBatt": twin.units.energy.sum() - energy0,
                         "avgrsoc": float(np.mean(twin.units.rsoc))})
    np.testing.assert_array_equal(twin.units.energy, em.units.energy)

    rows = read_csv(tmp_path / "out" / "summary.csv")
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    assert [r[0] for r in rows[1:]] == ["2019/01/01", "2019/01/02", "2019/01/03", "sum", "avg"]
    table = [dict(zip(SUMMARY_COLUMNS, r, strict=True)) for r in rows[1:]]
    for row, want in zip(table[:3], expected, strict=True):
        for name, value in want.items():
            assert float(row[name]) == pytest.approx(value, rel=1e-6, abs=1e-6), name
        e = {k: float(row[k]) for k in ENERGIES}
        # the ratios of power-flow-model §7 from the row's own energies
        assert float(row["ssr_real"]) == pytest.approx(
            (e["demand"] - e["acin"] + e["deltaBatt"]) / e["demand"])
        assert float(row["ssr_pv"]) == pytest.approx((e["pv"] + e["deltaBatt"]) / e["demand"])
        assert float(row["sor"]) == pytest.approx(e["pv"] / (e["pv"] + e["wasted"]))
        assert float(row["r_utility"]) == pytest.approx((e["acin"] - e["deltaBatt"]) / e["demand"])
        # the DC grid was busy: the discharging unit's 350 W went to the reference
        assert e["wg"] > 0.0
    total, avg = table[3], table[4]
    for name in ENERGIES:
        days = sum(float(r[name]) for r in table[:3])
        assert float(total[name]) == pytest.approx(days, rel=1e-9)
        assert float(avg[name]) == pytest.approx(days / 3, rel=1e-9)
    # the sum of the days is the whole ledger of the run
    assert float(total["pv"]) == pytest.approx(em.units.ledger[:, L["pv"]].sum(), rel=1e-6)
    assert float(total["acin"]) == pytest.approx(em.units.ledger[:, L["acin"]].sum(), rel=1e-6)
    assert float(total["avgrsoc"]) == pytest.approx(
        np.mean([float(r["avgrsoc"]) for r in table[:3]]))


def test_individual_log_one_row_per_unit_per_interval(data_dir, tmp_path):
    em = Emulator(settings(step=10.0), load_dataset(data_dir), 3)
    simulate(em, 3, tmp_path / "out", indiv_interval=900.0, **quiet())
    rows = read_csv(tmp_path / "out" / "indivLog.csv")
    assert tuple(rows[0]) == INDIV_COLUMNS
    body = rows[1:]
    assert len(body) == 3 * 3 * 96  # 3 units × 3 days × 96 quarter-hours
    per_time = Counter(r[1] for r in body)
    assert len(per_time) == 3 * 96 and set(per_time.values()) == {3}
    assert body[0][1] == "2019/01/01-00:15:00" and body[-1][1] == "2019/01/04-00:00:00"
    assert [r[0] for r in body[:3]] == ["E001", "E002", "E003"]
    # the last block shows the engine's state at the end
    last = {r[0]: r for r in body[-3:]}
    for i, unit_id in enumerate(em.ids):
        assert float(last[unit_id][3]) == pytest.approx(em.units.rsoc[i], abs=1e-4)


def test_no_individual_log_when_interval_is_zero(data_dir, tmp_path):
    em = Emulator(settings(step=60.0), load_dataset(data_dir), 2)
    simulate(em, 1, tmp_path / "out", indiv_interval=None, **quiet())
    assert (tmp_path / "out" / "summary.csv").exists()
    assert not (tmp_path / "out" / "indivLog.csv").exists()


def test_zero_denominator_gives_an_empty_cell(tmp_path):
    """No load and no sun: the ratios have a zero denominator and stay empty."""
    dataset = load_dataset(write_dataset(tmp_path / "dark", solar=0.0, load=0.0))
    em = Emulator(settings(step=300.0), dataset, 2)
    simulate(em, 2, tmp_path / "out", indiv_interval=None, **quiet())
    rows = read_csv(tmp_path / "out" / "summary.csv")
    assert len(rows) == 1 + 2 + 2
    for row in rows[1:]:
        cells = dict(zip(SUMMARY_COLUMNS, row, strict=True))
        assert cells["demand"] == "0.0" and cells["pv"] == "0.0"
        for name in ("ssr_real", "ssr_pv", "sor", "r_utility"):
            assert cells[name] == "", (row[0], name)
        assert float(cells["loss"]) > 0.0  # the system still loses energy


def test_partial_last_day_gets_a_row(data_dir, tmp_path):
    em = Emulator(settings(step=60.0, start="2019-05-01T18:00:00"), load_dataset(data_dir), 2)
    simulate(em, 1, tmp_path / "out", indiv_interval=None, **quiet())
    labels = [r[0] for r in read_csv(tmp_path / "out" / "summary.csv")[1:]]
    assert labels == ["2019/05/01", "2019/05/02", "sum", "avg"]


# ---------------------------------------------------------------------- same trajectory
#: Commands at step indices: a voltage reference (soft start), a discharging and a charging
#: unit, a live dvg change, a second reference and apis-main's hand-over, an emu setting.
COMMANDS = {
    37: [("set_dcdc", "E001", dict(mode="0x0014", dvg=350.0, dig=2.3, drg=0.0))],
    61: [("set_dcdc", "E002", dict(mode="0x0002", dig=2.0))],
    1001: [("set_dcdc", "E003", dict(mode="0x0041", dig=1.5))],
    4000: [("set_dcdc", "E001", dict(dvg=380.0))],
    6007: [("set_dcdc", "E001", dict(drg=0.039)),
           ("set_dcdc", "E004", dict(mode="0x0014", dvg=380.0, dig=2.3, drg=0.039))],
    6100: [("set_dcdc", "E001", dict(dig=1.3))],
    6101: [("set_dcdc", "E001", dict(dig=0.29999995))],
    6102: [("set_dcdc", "E001", dict(mode="0x0000", dig=0.0, drg=0.0)),
           ("set_dcdc", "E004", dict(drg=0.0))],
    8000: [("set_dcdc", "E002", dict(mode="0x0000")), ("set_emu", "E003", {"rsoc": 15.0})],
}
END = 10800
STATE = ("energy", "ledger", "out", "vg", "ig", "wg", "bypass", "ac_charge", "mode")


def apply(em, step):
    for method, unit_id, values in COMMANDS.get(step, []):
        if method == "set_emu":
            em.set_emu(unit_id, values)
        else:
            getattr(em, method)(unit_id, **values)


def capture(em):
    state = {name: getattr(em.units, name).copy() for name in STATE}
    state.update(rsoc=em.units.rsoc.copy(), step=em.step_index, now=em.now,
                 bus=em.bus_voltage)
    return state


def stops():
    return sorted(set(COMMANDS) | {END})


def run_direct(em):
    seen = {}
    for stop in stops():
        em.advance(stop - em.step_index)
        seen[stop] = capture(em)
        apply(em, stop)
    return seen


def run_headless(em, out):
    seen = {}
    for stop in stops():
        days = (stop - em.step_index) * em.dt / 86400.0
        simulate(em, days, out, indiv_interval=None, **quiet())
        seen[stop] = capture(em)
        apply(em, stop)
    return seen


def run_real_time(em, accelerations):
    """The real runner, its clock advanced by hand one sleeptime at a time; at a command's
    step the clock stops exactly there.  ``accelerations`` cycles over the segments."""
    now = [0.0]
    runner = RealTimeRunner(em, accelerations[0], 1.0, clock=lambda: now[0])
    seen = {}
    for k, stop in enumerate(stops()):
        acc = runner.acceleration
        sleeptime = max(1.0, em.dt / acc)  # one tick ≥ one step at low acceleration
        t_stop = now[0] + (stop - em.step_index) * em.dt / acc
        while em.step_index < stop:
            now[0] = min(now[0] + sleeptime, t_stop)
            ran = runner.tick()
            assert ran > 0 or now[0] < t_stop, "the runner did not run the due steps"
        assert em.step_index == stop, "the runner ran past the command's step"
        seen[stop] = capture(em)
        apply(em, stop)
        runner.set_acceleration(accelerations[(k + 1) % len(accelerations)])
    assert runner.behind_s == 0.0
    return seen


def assert_same(reference, other, label):
    assert reference.keys() == other.keys()
    for stop, want in reference.items():
        got = other[stop]
        assert (got["step"], got["now"]) == (want["step"], want["now"]), (label, stop)
        assert got["bus"] == pytest.approx(want["bus"], rel=1e-9, abs=1e-9), (label, stop)
        for name in (*STATE, "rsoc"):
            np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-9,
                                       err_msg=f"{label}: {name} at step {stop}")


@pytest.fixture(scope="module")
def trajectory_data(tmp_path_factory):
    solar, load = community_inputs(seed=11)
    return load_dataset(write_dataset(tmp_path_factory.mktemp("traj"), solar=solar, load=load,
                                      households=4))


@pytest.mark.parametrize("dt", [1.0, 10.0])
def test_same_trajectory_whatever_the_pacing(trajectory_data, tmp_path, dt):
    """Direct advance, headless simulate() and the real-time runner at accelerations 1, 10 and
    3600 (and one changing between commands) agree to 1e-9 at every command and at the end."""

    def new():
        return Emulator(settings(step=dt, start="2019-06-01T05:00:00"), trajectory_data, 4)

    reference = run_direct(new())
    # the run did something: the grid was up, batteries moved, the hand-over happened
    assert reference[4000]["bus"] == pytest.approx(350.0)
    assert reference[6100]["bus"] == pytest.approx(380.0, abs=0.039 * 380.0)
    assert not np.allclose(reference[END]["energy"], reference[37]["energy"])
    assert_same(reference, run_headless(new(), tmp_path / "out"), "headless")
    for accelerations in ([1.0], [10.0], [3600.0], [10.0, 3600.0, 1.0]):
        assert_same(reference, run_real_time(new(), accelerations), f"acc {accelerations}")


def test_trajectory_differs_when_a_command_moves(trajectory_data):
    """The comparison above can fail: the same commands one step later give other numbers."""
    em = Emulator(settings(step=10.0, start="2019-06-01T05:00:00"), trajectory_data, 4)
    reference = run_direct(em)
    late = Emulator(settings(step=10.0, start="2019-06-01T05:00:00"), trajectory_data, 4)
    late.advance(1000)
    late.set_dcdc("E001", mode="0x0014", dvg=350.0, dig=2.3, drg=0.0)
    late.set_dcdc("E002", mode="0x0002", dig=2.0)
    late.advance(2)
    late.set_dcdc("E003", mode="0x0041", dig=1.5)
    late.advance(END - late.step_index)
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(late.units.energy, reference[END]["energy"], rtol=1e-9)


# ---------------------------------------------------------------------- the CLI
def run_cli(tmp_path, *args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIS_EMULATOR_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "apis_emulator", "simulate", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_cli_simulate_writes_the_files(data_dir, tmp_path):
    out = tmp_path / "result"
    proc = run_cli(tmp_path, "--data", str(data_dir), "--units", "3", "--days", "2",
                   "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    summary = read_csv(out / "summary.csv")
    assert tuple(summary[0]) == SUMMARY_COLUMNS
    assert [r[0] for r in summary[1:]] == ["2019/01/01", "2019/01/02", "sum", "avg"]
    import pyarrow.parquet as pq

    indiv = pq.read_table(out / "indivLog.parquet")  # the default format (issue 11)
    assert indiv.num_rows == 3 * 2 * 96  # the default interval: 900 s
    assert indiv.column_names == list(INDIV_COLUMNS)
    assert (tmp_path / "log").is_dir()


@pytest.mark.parametrize("args, env, message", [
    (["--step", "-5"], {}, "setting step=-5.0 is not accepted: a number > 0"),
    ([], {"APIS_EMULATOR_BATTERYSIZE": "big"}, "setting batterySize='big' is not accepted"),
    ([], {"APIS_EMULATOR_NOSUCH": "1"}, "setting APIS_EMULATOR_NOSUCH='1' is not accepted"),
    (["--start", "2019-02-30T00:00:00"], {}, "setting start='2019-02-30T00:00:00'"),
])
def test_cli_bad_setting_exits_2_with_the_message(data_dir, tmp_path, args, env, message):
    proc = run_cli(tmp_path, "--data", str(data_dir), "--days", "1", "--out",
                   str(tmp_path / "o"), "--no-progress", *args, env_extra=env)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "o" / "summary.csv").exists()


def test_cli_bad_data_set_exits_2_naming_the_file(tmp_path):
    broken = write_dataset(tmp_path / "broken", unit="lux")
    proc = run_cli(tmp_path, "--data", str(broken), "--days", "1", "--no-progress")
    assert proc.returncode == 2
    assert f"{broken / 'dataset.json'}: solar.unit 'lux' unknown" in proc.stderr
