"""The four DC/DC converter modes of the specification, as one named enum.

Every layer (settings, grid, documents, Web API, page, controllers) names a mode through
:class:`Mode`; the wire codes (``0x0000`` …) are written here once.
"""

from __future__ import annotations

from enum import IntEnum

from .errors import InvalidValueError

__all__ = ["Mode", "MODE_CODES"]


class Mode(IntEnum):
    """A converter mode; the integer is the engine's array code, ``code`` the wire code."""

    WAIT = 0  #: 0x0000: no current
    DISCHARGE = 1  #: 0x0002: pushes dig into the grid (ig = −dig)
    VOLTAGE_REFERENCE = 2  #: 0x0014: holds the grid at dvg (CV), takes the balance
    CHARGE = 3  #: 0x0041: draws dig from the grid (ig = +dig)

    @property
    def code(self) -> str:
        """The wire code of specification §5, e.g. ``"0x0014"``."""
        return _CODES[self]

    @property
    def tag(self) -> str:
        """The page's short tag: WAIT, GIVE, REF or TAKE."""
        return ("WAIT", "GIVE", "REF", "TAKE")[self]

    @classmethod
    def from_code(cls, code: object, field: str = "mode") -> Mode:
        """The mode of a wire code; InvalidValueError naming ``field`` otherwise."""
        for mode in cls:
            if code == mode.code:
                return mode
        raise InvalidValueError(field, code, f"one of {', '.join(MODE_CODES)}")


_CODES = ("0x0000", "0x0002", "0x0014", "0x0041")
#: The wire codes in the engine's order (index = Mode value).
MODE_CODES: tuple[str, ...] = _CODES
