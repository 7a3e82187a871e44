"""Running the engine: paced against the wall clock (served), or as fast as possible (headless).

Both call the same :meth:`Emulator.advance` with the same Δt; the acceleration only decides how
many steps run per wall second, so the trajectory does not depend on it.
"""

from .headless import SimulationResult, simulate
from .realtime import MAX_ACCELERATION, RealTimeRunner, check_acceleration

__all__ = ["RealTimeRunner", "check_acceleration", "MAX_ACCELERATION", "simulate",
           "SimulationResult"]
