"""The command rules: every value a client may set, with its accepted range, written once.

The engine's setters, the Web API's parameters and their OpenAPI text, the page's form check and
Load Last's validation all read these tables, so a range changes in one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InvalidValueError
from ..modes import MODE_CODES

__all__ = ["Rule", "DCDC_RULES", "EMU_RULES", "MODE_ACCEPTED", "DCDC_REQUIRED", "NUMBER_ACCEPTED",
           "checked_number",
           "check_command", "required"]


@dataclass(frozen=True)
class Rule:
    """A settable number: name, closed range [lo, hi], unit and what it means."""

    name: str
    lo: float
    hi: float
    unit: str
    meaning: str

    @property
    def accepted(self) -> str:
        """What is accepted, as error messages and the API's text say it."""
        unit = f" [{self.unit}]" if self.unit else ""
        return f"a finite number in [{self.lo:g}, {self.hi:g}]{unit}"

    @property
    def description(self) -> str:
        """One line for the OpenAPI description and the page's hints."""
        unit = f" [{self.unit}]" if self.unit else ""
        return f"{self.meaning}{unit}, {self.lo:g}–{self.hi:g}"

    def check(self, value: object) -> float:
        """``value`` as a float within the rule; InvalidValueError naming the field otherwise."""
        return checked_number(self.name, value, self.lo, self.hi, self.accepted)


def checked_number(name: str, value: object, lo: float, hi: float,
                   accepted: str | None = None) -> float:
    """``value`` as a float in [lo, hi], or InvalidValueError naming ``name`` and the range."""
    text = accepted or f"a finite number in [{lo:g}, {hi:g}]"
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidValueError(name, value, text) from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise InvalidValueError(name, value, text)
    return number


def _table(*rules: Rule) -> dict[str, Rule]:
    return {rule.name: rule for rule in rules}


#: ``/set/dcdc`` (and its voltage/current paths, the page's form, saved documents).
DCDC_RULES = _table(
    Rule("dvg", 0.0, 1000.0, "V", "DC grid target voltage"),
    Rule("dig", 0.0, 100.0, "A", "DC grid current"),
    Rule("drg", 0.0, 1.0, "-", "droop ratio (0.039 = 3.9 %)"),
    Rule("p1", -1e6, 1e6, "W", "power meter p1"),
    Rule("p2", -1e6, 1e6, "W", "power meter p2"),
)
#: ``/set/emu``: rsoc, or the shown powers (they hold until the next step).
EMU_RULES = _table(
    Rule("rsoc", 0.0, 100.0, "%", "relative state of charge"),
    Rule("charge_discharge_power", 0.0, 1e6, "W", "shown battery power"),
    Rule("ups_output_power", 0.0, 1e6, "W", "shown UPS output power"),
    Rule("pvc_charge_power", 0.0, 1e6, "W", "shown PV power"),
)
#: What a parameter that is not a number at all is told (as the Web API's parser says it).
NUMBER_ACCEPTED = "a number, e.g. 350.0, 2.3 or 1.0E-4"
#: What ``mode`` accepts.
MODE_ACCEPTED = f"one of {', '.join(MODE_CODES)}"

#: What ``/set/dcdc`` needs in every request (the other converter values are optional).
DCDC_REQUIRED = ("mode", "dvg", "dig")


def required(name: str) -> str:
    """The accepted text of a value that ``/set/dcdc`` requires."""
    return "required: " + (MODE_ACCEPTED if name == "mode" else DCDC_RULES[name].accepted)


def check_command(values: Mapping[str, object]) -> list[InvalidValueError]:
    """Every refusal ``/set/dcdc`` and ``/set/emu`` would give for ``values`` ([] = accepted).

    Converter keys (mode and DCDC_RULES) go to ``/set/dcdc``, which needs DCDC_REQUIRED
    together; EMU_RULES keys go to ``/set/emu``.
    """
    errors: list[InvalidValueError] = []
    for name, raw in values.items():
        try:
            _check_one(name, raw)
        except InvalidValueError as exc:
            errors.append(exc)
    if any(k == "mode" or k in DCDC_RULES for k in values):
        errors += [InvalidValueError(k, None, required(k)) for k in DCDC_REQUIRED
                   if k not in values]
    return errors


def _check_one(name: str, raw: object) -> None:
    if name == "mode":
        if raw not in MODE_CODES:
            raise InvalidValueError("mode", raw, MODE_ACCEPTED)
    elif name in DCDC_RULES or name in EMU_RULES:
        rule = DCDC_RULES.get(name) or EMU_RULES[name]
        rule.check(_parsed(name, raw))
    else:
        keys = ", ".join(("mode", *DCDC_RULES, *EMU_RULES))
        raise InvalidValueError(name, raw, f"one of the keys {keys}")


def _parsed(name: str, raw: object) -> float:
    """``raw`` as the Web API parses a query value: a float, or refused as not a number."""
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidValueError(name, raw, NUMBER_ACCEPTED) from None
