"""One exception hierarchy for the whole emulator.

The web layer maps these to HTTP status codes in one place; the CLI prints them.
"""

from __future__ import annotations

import errno as _errno

__all__ = [
    "EmulatorError",
    "SettingsError",
    "DataFileError",
    "UnknownUnitError",
    "InvalidValueError",
    "StateFileError",
    "MissingStateFileError",
    "ControlledError",
    "SaveWriteError",
]


class EmulatorError(Exception):
    """Base class of every error the emulator raises on purpose."""


class SettingsError(EmulatorError):
    """A setting has a wrong value: names the key, the value and what is accepted."""

    def __init__(self, key: str, value: object, accepted: str):
        self.key, self.value, self.accepted = key, value, accepted
        super().__init__(f"setting {key}={value!r} is not accepted: {accepted}")


class DataFileError(EmulatorError):
    """A data file is missing or malformed: names its path, line and column."""

    def __init__(self, path: object, message: str, line: int | None = None,
                 column: int | None = None):
        self.path, self.line, self.column = str(path), line, column
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {message}")


class UnknownUnitError(EmulatorError, KeyError):
    """No unit has this id."""

    def __init__(self, unit_id: str, known: list[str]):
        self.unit_id = unit_id
        shown = ", ".join(known[:5]) + (", …" if len(known) > 5 else "")
        super().__init__(f"unknown unit {unit_id!r}; units are {shown or 'none'}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InvalidValueError(EmulatorError, ValueError):
    """A value given to the emulator is malformed or out of range."""

    def __init__(self, field: str, value: object, accepted: str):
        self.field, self.value, self.accepted = field, value, accepted
        super().__init__(f"{field}={value!r} is not accepted: {accepted}")


class StateFileError(EmulatorError):
    """A saved-state file (lastSave.json, the reset template) is invalid."""


class MissingStateFileError(StateFileError):
    """There is no saved-state file yet."""


class ControlledError(EmulatorError):
    """A command from outside while a built-in controller drives the converters (HTTP 409)."""


class SaveWriteError(EmulatorError):
    """Save All could not write its file; the previous save is kept.

    ``full`` when the file system is out of space or quota (HTTP 507), otherwise HTTP 500.
    """

    def __init__(self, path: object, cause: OSError):
        self.path = str(path)
        self.full = cause.errno in (_errno.ENOSPC, _errno.EDQUOT)
        reason = cause.strerror or str(cause)
        remedy = "free some space and save again" if self.full else "check the folder"
        super().__init__(f"Save All could not write {self.path}: {reason}; the previous save "
                         f"is kept: {remedy}")
