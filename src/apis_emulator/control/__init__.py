"""Controllers: what commands the converters when no apis-main does (decide only, no I/O).

``build_controller("apis", ...)`` reproduces apis-main's deal rules from its own scenario,
policy and hwConfig content (dicts; :mod:`apis_emulator.inputs` reads the files);
``"none"`` leaves the converters to whoever calls the Web API, as before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidValueError
from .apis import ApisController, Deal
from .base import DEAL_COLUMNS, END_REASONS, Controller, ControlView, DealRecord, Plan
from .files import OPERATION_MODES, Policy, Scenario, read_policy, read_scenario
from .shipped import shipped_hw_config, shipped_policy, shipped_scenario

__all__ = ["build_controller", "controller_step", "CONTROLLERS", "Controller", "ControlView",
           "Plan", "DealRecord",
           "DEAL_COLUMNS", "END_REASONS", "ApisController", "Deal", "Policy", "Scenario",
           "OPERATION_MODES", "read_policy", "read_scenario", "shipped_scenario",
           "shipped_policy", "shipped_hw_config"]

def controller_step(time_scale: float = 1.0) -> float:
    """The physics step [s] a headless run with the shipped apis-main periods takes by default:
    House-Keeping and Grid Master ticks (5 s × time_scale) fall on steps; at most 10 s."""
    return min(10.0, 5.0 * time_scale)


#: Names ``--controller`` accepts.
CONTROLLERS = ("none", "apis")


def build_controller(name: str, start: Any, *, scenario: Mapping[str, Any] | None = None,
                     policy: Mapping[str, Any] | None = None,
                     hw_config: Mapping[str, Any] | None = None, seed: int = 0,
                     time_scale: float = 1.0,
                     operation_mode: str = "autonomous") -> ApisController | None:
    """The controller called ``name`` ("none" → None), from apis-main's files' content.

    ``scenario``, ``policy`` and ``hw_config`` default to apis-main's shipped files; with the
    shipped policy every unit is a member (it lists E001–E004 only).  ``start`` is the
    emulated time at the start of the run (for the scenario's slots and the deal log), or the
    Emulator whose ``start_time`` it is.  Files are read by
    :func:`apis_emulator.inputs.read_apis_json`; pass their content.
    """
    start = getattr(start, "start_time", start)
    if not isinstance(start, dt.datetime):
        raise InvalidValueError("start", start, "a datetime (the run's emulated start)")
    for field, value in (("scenario", scenario), ("policy", policy), ("hw_config", hw_config)):
        if value is not None and not isinstance(value, Mapping):
            raise InvalidValueError(field, value, "the file's content as a dict: read the file "
                                    "with apis_emulator.inputs.read_apis_json(path)")
    if name not in CONTROLLERS:
        raise InvalidValueError("controller", name, f"one of {', '.join(CONTROLLERS)}")
    if name == "none":
        return None
    hw = {**shipped_hw_config(), **(hw_config or {})}
    rules = read_policy(policy if policy is not None else shipped_policy(), hw,
                        all_members=policy is None)
    plan = read_scenario(scenario if scenario is not None else shipped_scenario())
    return ApisController(plan, rules, start, seed=seed, time_scale=time_scale,
                          operation_mode=operation_mode)
