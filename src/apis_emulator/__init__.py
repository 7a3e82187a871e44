"""apis-emulator: the hardware of an energy-sharing community, emulated for apis-main."""

__version__ = "0.1.0"
__all__ = ["__version__"]
