"""The error a bad sweep file raises."""

from __future__ import annotations

from ..errors import EmulatorError

__all__ = ["SweepFileError"]


class SweepFileError(EmulatorError):
    """A key of a sweep file is wrong: names the file, the key, the value and what is accepted."""

    def __init__(self, key: str, value: object, accepted: str, source: str = ""):
        self.key, self.value, self.accepted, self.source = key, value, accepted, source
        where = f"sweep file {source}: " if source else "sweep: "
        super().__init__(f"{where}{key}={value!r} is not accepted: {accepted}")

    def in_source(self, source: str) -> SweepFileError:
        """The same error, naming the file it came from."""
        return SweepFileError(self.key, self.value, self.accepted, source)
