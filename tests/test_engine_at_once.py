"""What follows a command at once, and where an interval-mean sample sits in time."""

from __future__ import annotations

import numpy as np
import pytest

from apis_emulator.engine import OUT_FIELDS, Emulator
from conftest import dataset_from_arrays, settings

FLOW, DCLOSS = OUT_FIELDS.index("flow"), OUT_FIELDS.index("dcloss")


def test_battery_flow_follows_a_dcdc_change_before_the_next_step(make_emulator) -> None:
    em = make_emulator(3, solar=0.0, load=0.5)
    em.set_dcdc("E001", mode="0x0014", dvg=350.0, dig=2.3, drg=0.0)
    em.advance(200)  # the grid is up; every unit has stepped
    flow = em.units.out[:, FLOW].copy()
    dcloss = em.units.out[:, DCLOSS].copy()
    em.set_dcdc("E002", mode="0x0002", dvg=380.0, dig=1.0, drg=0.0)
    # E002 gives 350 W and now loses 55 W instead of 4.5 W; E001 takes the 350 W
    assert em.units.out[1, FLOW] == pytest.approx(flow[1] - 350.0 - (55.0 - 4.5))
    assert em.units.out[1, DCLOSS] == pytest.approx(dcloss[1] + 55.0 - 4.5)
    assert em.units.out[0, FLOW] == pytest.approx(flow[0] + 350.0)
    assert em.units.out[2, FLOW] == pytest.approx(flow[2])
    # and the next step agrees with what was shown
    shown = em.units.out[:, FLOW].copy()
    em.advance(1)
    assert em.units.out[:, FLOW] == pytest.approx(shown, abs=1e-6)


@pytest.mark.parametrize("samples, peak_minute", [
    ("instant", 12 * 60),  # the 12:00 value is the reading at 12:00
    ("interval-mean", 12 * 60 + 30),  # the 12:00 value is the mean of 12:00–13:00
])
def test_interval_means_sit_in_the_middle_of_their_interval(samples: str,
                                                            peak_minute: int) -> None:
    solar = np.zeros((365, 24))
    solar[:, 12] = 1000.0  # one hour of sun a day
    ds = dataset_from_arrays(solar=solar, load=0.0)
    ds.meta["solar"] = {"samples": samples}
    em = Emulator(settings(step=60.0), ds, 1)
    pv = []
    for _ in range(24 * 60):
        em.advance(1)
        pv.append(em.units.out[0, OUT_FIELDS.index("pv")] + em.units.out[0, -1])
    # the step ending at minute m shows the PV at its middle, minute m - 0.5
    assert int(np.argmax(pv)) + 1 == pytest.approx(peak_minute, abs=1)
