"""apis-main's scenario, policy and hwConfig, read into typed records (decision fields only).

Facts: shared/docs/apis-main-sharing.md §1 (file and line in apis-main for each field).  A wrong
field is refused with a message naming its dotted path in the file, the value and what is
accepted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidValueError

__all__ = ["Condition", "Slot", "Scenario", "Policy", "read_scenario", "read_policy",
           "STRATEGIES", "OPERATION_MODES"]

#: acceptSelection strategies; anything else means "amount" (SimpleScenarioEvaluationImpl:201).
STRATEGIES = ("amount", "pointAndAmount")
#: Global operation modes the built-in controller follows (StateHandling.java): autonomous
#: makes deals, heteronomous lets running ones finish, stop ends them; manual ends them and
#: hands the converters to whoever calls the Web API.
OPERATION_MODES = ("autonomous", "heteronomous", "stop", "manual")
TYPES = ("charge", "discharge")


@dataclass(frozen=True)
class Condition:
    """One request or accept condition: ``limitWh`` [Wh], ``pointPerWh``, ``pairUnitId``."""

    type: str
    limit_wh: int
    point_per_wh: float | None
    pair_unit_id: str | None


@dataclass(frozen=True)
class Slot:
    """A time-of-day slot ``from <= HH:MM:SS < to`` of the scenario."""

    start: str
    end: str
    statuses: tuple[tuple[int | None, int | None, str], ...]  # (lower, upper, name), file order
    request: Mapping[str, Condition]  # status → the request (charge wins over discharge)
    accept: Mapping[str, Mapping[str, Condition]]  # status → accept type → condition
    strategy: str

    def status(self, remaining_wh: int) -> str | None:
        """The first status whose range holds R (lower <= R < upper), or None."""
        for lo, hi, name in self.statuses:
            if (lo is None or lo <= remaining_wh) and (hi is None or remaining_wh < hi):
                return name
        return None


@dataclass(frozen=True)
class Scenario:
    """The slots of a scenario file, in file order."""

    slots: tuple[Slot, ...]

    def slot_at(self, second: int) -> Slot | None:
        """The first slot holding the time of day ``second`` [whole s after midnight]: apis-main
        compares ``HH:mm:ss`` texts, which order as the seconds do (``24:00:00`` = 86400)."""
        for slot in self.slots:
            if _seconds(slot.start) <= second < _seconds(slot.end):
                return slot
        return None

    def boundaries_s(self) -> tuple[float, ...]:
        """Times of day where the slot may change [s after midnight], sorted."""
        marks = {_seconds(s.start) for s in self.slots} | {_seconds(s.end) for s in self.slots}
        return tuple(sorted(m for m in marks if 0.0 < m < 86400.0))


@dataclass(frozen=True)
class Policy:
    """The decision fields of policy.json and hwConfig.json (times [s] of apis-main's clock)."""

    member_unit_ids: frozenset[str] | None  # None: every unit is a member
    large_capacity_unit_ids: frozenset[str]
    grid_voltage_v: float  # operationGridVoltageV [V]
    grid_voltage_max_v: float  # operationGridVoltageVRange.max [V] (DISCHARGE's dvg)
    grid_voltage_allowance_v: float  # ramp-up done at vg >= dvg − this [V]
    sum_of_deal_grid_current_max_a: float
    ramp_timeout_s: float  # rampUp.first.timeoutMsec, counted in emulated time
    house_keeping_s: float
    negotiation_s: float
    main_loop_s: float
    deal_grid_current_a: float
    amount_min_wh: int
    amount_max_wh: int
    amount_unit_wh: int
    discharge_lower_rsoc: float  # force stop below [%]
    charge_upper_rsoc: float  # force stop above [%]
    voltage_reference_side: str  # "chargeUnit" or "dischargeUnit"
    reference_side: str  # whose battery meter counts a deal's Wh
    grid_current_capacity_a: float  # hwConfig: converter limit [A] (VR dig)
    nominal_wh: float | None  # hwConfig batteryNominalCapacityWh; None: each unit's batterySize

    @property
    def deal_capacity(self) -> int:
        """Deals a unit may hold at once: floor(gridCurrentCapacityA / gridCurrentA)."""
        return int(self.grid_current_capacity_a / self.deal_grid_current_a)


def _seconds(hhmmss: str) -> float:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return h * 3600.0 + m * 60.0 + s


def _get(tree: Mapping[str, Any], path: str, kind: type | tuple[type, ...] = (int, float),
         default: Any = None, lo: float = -math.inf, hi: float = math.inf,
         where: str = "policy") -> Any:
    node: Any = tree
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            if default is None:
                raise InvalidValueError(f"{where}.{path}", None, "a value (the field is missing)")
            return default
        node = node[key]
    numeric = kind == (int, float)
    value: Any = node  # checked below
    if isinstance(value, bool) or not isinstance(node, kind) or (
            numeric and not (math.isfinite(value) and lo <= value <= hi)):
        accepted = f"a number in [{lo:g}, {hi:g}]" if numeric else f"a {kind}"
        raise InvalidValueError(f"{where}.{path}", node, accepted)
    return node


def _ids(tree: Mapping[str, Any], key: str, where: str) -> frozenset[str] | None:
    value = tree.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidValueError(f"{where}.{key}", value, "a list of unit ids")
    return frozenset(value)


def read_policy(policy: Mapping[str, Any], hw_config: Mapping[str, Any],
                all_members: bool = False) -> Policy:
    """The decision fields of ``policy`` and ``hw_config``; ``all_members`` ignores
    memberUnitIds (the shipped file lists E001–E004 only)."""
    def g(path: str, **kw: Any) -> Any:
        return _get(policy, path, **kw)

    side = g("gridMaster.voltageReferenceSide", kind=str, default="chargeUnit")
    ref = g("gridMaster.deal.referenceSide", kind=str, default="chargeUnit")
    nominal = hw_config.get("batteryNominalCapacityWh")
    if nominal is not None:
        nominal = _get(hw_config, "batteryNominalCapacityWh", lo=1.0, where="hwConfig")
    members = None if all_members else _ids(policy, "memberUnitIds", "policy")
    return Policy(
        member_unit_ids=members,
        large_capacity_unit_ids=_ids(policy, "largeCapacityUnitIds", "policy") or frozenset(),
        grid_voltage_v=g("operationGridVoltageV", lo=1.0, hi=1000.0),
        grid_voltage_max_v=g("operationGridVoltageVRange.max", lo=1.0, hi=1000.0),
        grid_voltage_allowance_v=g("gridVoltageAllowanceV", lo=0.0, hi=1000.0),
        sum_of_deal_grid_current_max_a=g("safety.sumOfDealGridCurrentMaxA", lo=0.0),
        ramp_timeout_s=g("controller.dcdc.voltageReference.rampUp.first.timeoutMsec",
                         lo=0.0) / 1000.0,
        house_keeping_s=g("user.houseKeepingPeriodMsec", lo=1.0) / 1000.0,
        negotiation_s=g("mediator.negotiationTimeoutMsec", lo=0.0) / 1000.0,
        main_loop_s=g("gridMaster.mainLoopPeriodMsec", lo=1.0) / 1000.0,
        deal_grid_current_a=g("mediator.deal.gridCurrentA", lo=0.001, hi=100.0),
        amount_min_wh=int(g("mediator.deal.amountMinWh", lo=0.0)),
        amount_max_wh=int(g("mediator.deal.amountMaxWh", lo=1.0)),
        amount_unit_wh=int(g("mediator.deal.amountUnitWh", lo=1.0)),
        discharge_lower_rsoc=g("gridMaster.deal.forceStopCondition.dischargeUnitLowerLimitRsoc",
                               lo=0.0, hi=100.0),
        charge_upper_rsoc=g("gridMaster.deal.forceStopCondition.chargeUnitUpperLimitRsoc",
                            lo=0.0, hi=100.0),
        voltage_reference_side="dischargeUnit" if side == "dischargeUnit" else "chargeUnit",
        reference_side="dischargeUnit" if ref == "dischargeUnit" else "chargeUnit",
        grid_current_capacity_a=_get(hw_config, "gridCurrentCapacityA", lo=0.001, hi=100.0,
                                     where="hwConfig"),
        nominal_wh=nominal)


# ---------------------------------------------------------------------- scenario
def _slot_key(key: str) -> tuple[str, str] | None:
    if "-" not in key or ":" not in key:
        return None
    start, end = key.split("-", 1)
    return start, end


def _range(key: str, where: str) -> tuple[int | None, int | None]:
    lo, _, hi = key.partition("-")
    try:
        return (int(lo) if lo.strip() else None), (int(hi) if hi.strip() else None)
    except ValueError:
        raise InvalidValueError(where, key, "a range 'lower-upper' of whole Wh") from None


def _condition(kind: str, value: Any, where: str) -> Condition:
    if not isinstance(value, Mapping):
        raise InvalidValueError(where, value, "an object with limitWh")
    limit = _get(value, "limitWh", kind=int, where=where)
    point = value.get("pointPerWh")
    if point is not None and (isinstance(point, bool) or not isinstance(point, int | float)):
        raise InvalidValueError(f"{where}.pointPerWh", point, "a number")
    pair = value.get("pairUnitId")
    return Condition(kind, limit, None if point is None else float(point),
                     None if pair is None else str(pair))


def _slot(start: str, end: str, body: Any, top_strategy: str, where: str) -> Slot:
    if not isinstance(body, Mapping) or not isinstance(body.get("batteryStatus"), Mapping):
        raise InvalidValueError(f"{where}.batteryStatus", None, "an object of ranges")
    statuses = tuple((*_range(k, f"{where}.batteryStatus.{k}"), str(v))
                     for k, v in body["batteryStatus"].items())
    request: dict[str, Condition] = {}
    for status, conds in (body.get("request") or {}).items():
        for kind in TYPES:  # charge wins when both are given (SimpleScenarioEvaluationImpl:43)
            if isinstance(conds, Mapping) and kind in conds:
                request[status] = _condition(kind, conds[kind], f"{where}.request.{status}.{kind}")
                break
    accept = {status: {kind: _condition(kind, c, f"{where}.accept.{status}.{kind}")
                       for kind, c in conds.items() if kind in TYPES}
              for status, conds in (body.get("accept") or {}).items() if isinstance(conds, Mapping)}
    selection = body.get("acceptSelection")
    strategy = selection.get("strategy") if isinstance(selection, Mapping) else top_strategy
    return Slot(start, end, statuses, request, accept,
                strategy if strategy in STRATEGIES else "amount")


def read_scenario(scenario: Mapping[str, Any]) -> Scenario:
    """The slots of ``scenario`` (apis-main's scenario.json content), in file order."""
    selection = scenario.get("acceptSelection")
    top = selection.get("strategy", "amount") if isinstance(selection, Mapping) else "amount"
    slots = []
    for key, body in scenario.items():
        bounds = _slot_key(key)
        if bounds is not None:
            slots.append(_slot(*bounds, body, top, f"scenario.{key}"))
    if not slots:
        raise InvalidValueError("scenario", "", "at least one 'HH:MM:SS-HH:MM:SS' slot")
    return Scenario(tuple(slots))
