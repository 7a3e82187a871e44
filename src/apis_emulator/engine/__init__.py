"""The emulation engine: units' state as arrays, the power-flow step, the DC grid, the clock.

Pure: no I/O, no HTTP, no threads, no globals.
"""

from ..modes import Mode
from .emulator import RAMP_SECONDS, ConverterCommand, Emulator, Sample, Snapshot
from .grid import solve_bus, solve_grid
from .kernel import LEDGER_FIELDS, OUT_FIELDS
from .rules import DCDC_RULES, EMU_RULES, Rule
from .savefile import load_state, save_state
from .series import DAYS, DataSet

__all__ = ["Emulator", "Snapshot", "Sample", "ConverterCommand", "RAMP_SECONDS", "solve_grid",
           "solve_bus", "Mode", "OUT_FIELDS", "LEDGER_FIELDS", "DCDC_RULES", "EMU_RULES", "Rule",
           "save_state", "load_state", "DataSet", "DAYS"]
