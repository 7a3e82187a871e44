"""The real-time runner against a clock the test moves (the runner itself is real)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from apis_emulator.config import Settings
from apis_emulator.engine import Emulator
from apis_emulator.errors import InvalidValueError
from apis_emulator.inputs import load_dataset
from apis_emulator.runner import RealTimeRunner
from web_support import write_dataset


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def emulator(tmp_path: Path) -> Emulator:
    return Emulator(Settings(step=1.0), load_dataset(write_dataset(tmp_path, 2)), 2)


def test_emulated_time_is_acceleration_times_wall_time(emulator: Emulator) -> None:
    clock = Clock()
    runner = RealTimeRunner(emulator, 10, 1.0, clock=clock)
    for _ in range(30):
        clock.now += 0.37
        runner.tick()
    assert emulator.emulated_s == pytest.approx(10 * 0.37 * 30, abs=1.0)  # whole steps only
    assert runner.behind_s == 0


def test_lowering_the_acceleration_keeps_the_time_already_due(emulator: Emulator) -> None:
    clock = Clock()
    runner = RealTimeRunner(emulator, 1200, 1.0, clock=clock)
    clock.now += 0.9
    runner.set_acceleration(60)  # 1080 s were due at the old pace
    clock.now += 0.1
    runner.tick()
    assert emulator.emulated_s == 1080 + 6
    assert runner.behind_s == 0


def test_a_machine_that_cannot_keep_up_drops_and_reports(emulator: Emulator) -> None:
    clock = Clock()
    runner = RealTimeRunner(emulator, 10, 1.0, clock=clock, max_lag=5.0)
    clock.now += 60.0  # the loop was blocked for a minute
    assert runner.tick() == 50  # at most max_lag (5 s) at the set pace
    assert runner.behind_s == 550
    clock.now += 1.0
    assert runner.tick() == 10  # and then on pace again


@pytest.mark.parametrize("bad", ["-3", "0", "nan", "inf", "fast", None, 2e6])
def test_acceleration_is_validated(emulator: Emulator, bad: object) -> None:
    runner = RealTimeRunner(emulator, 10, 1.0, clock=Clock())
    with pytest.raises(InvalidValueError, match="acceleration"):
        runner.set_acceleration(bad)
    assert runner.acceleration == 10


def test_do_updates_false_moves_clock_and_ramp_but_not_the_power_flow(
        emulator: Emulator) -> None:
    clock = Clock()
    runner = RealTimeRunner(emulator, 10, 1.0, do_updates=False, clock=clock)
    energy = emulator.units.energy.copy()
    emulator.set_dcdc("E001", mode="0x0014", dvg=350.0, dig=2.3, drg=0.0)
    clock.now += 3.0
    runner.tick()
    assert emulator.emulated_s == 30
    assert emulator.bus_voltage == pytest.approx(87.5)  # a quarter of the 120-s soft start
    assert (emulator.units.energy == energy).all()


def test_run_stops_when_asked(emulator: Emulator) -> None:
    runner = RealTimeRunner(emulator, 100, 0.01)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(task, 2.0)

    asyncio.run(main())
    assert runner.ticks >= 3 and emulator.emulated_s > 0


def test_a_tick_never_takes_much_more_than_half_its_interval(tmp_path: Path) -> None:
    """At an acceleration the machine cannot follow, steps are dropped, not queued."""
    import time as wall

    emulator = Emulator(Settings(step=1.0), load_dataset(write_dataset(tmp_path, 2)), 1000)
    runner = RealTimeRunner(emulator, 1e6, 0.05)  # the real monotonic clock
    runner.tick()
    wall.sleep(0.05)
    runner.tick()  # learns the cost of a step
    wall.sleep(0.05)
    steps = runner.tick()
    assert 0 < steps < 1e6 * 0.05 / emulator.dt  # fewer than were due
    assert runner.behind_s > 0
