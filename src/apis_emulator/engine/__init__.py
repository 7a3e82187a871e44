"""The emulation engine: units' state as arrays, the power-flow step, the DC grid, the clock.

Pure: no I/O beyond reading its own packaged template, no HTTP, no threads, no globals.
"""

from .emulator import EMU_SETTABLE, RAMP_SECONDS, Emulator, Snapshot
from .grid import CHARGE, DISCHARGE, VOLTAGE_REFERENCE, WAIT, solve_bus, solve_grid
from .kernel import LEDGER_FIELDS, OUT_FIELDS

__all__ = ["Emulator", "Snapshot", "EMU_SETTABLE", "RAMP_SECONDS", "solve_grid", "solve_bus",
           "WAIT", "DISCHARGE", "VOLTAGE_REFERENCE", "CHARGE", "OUT_FIELDS", "LEDGER_FIELDS"]
