"""apis-main's deal rules as a built-in controller (shared/docs/apis-main-sharing.md).

Each unit runs House-Keeping every ``houseKeepingPeriodMsec × timeScale``: in autonomous mode,
with fewer deals than its interlock capacity, it classifies its remaining energy
R = int(nominal · rsoc / 100) by the scenario's ``batteryStatus``, and asks for a deal when its
status has a request with an amount > amountMinWh.  Every other unit answers at once from its
own R (accept amounts > amountMinWh); after ``negotiationTimeoutMsec × timeScale`` the requester
chooses (``amount`` / ``pointAndAmount``, ties broken by the seed) and a 50 Wh deal is created if
both ends are still under their interlock capacity.  One Grid Master runs every
``mainLoopPeriodMsec × timeScale``: it refuses deals that break the direction rule or the 100 A
total, makes the first deal's charging side the voltage reference (the grid ramps up), starts
later deals in the same tick, integrates each deal's energy on the reference side's battery
meter wb at its ticks and ends it when the sum is strictly greater than the amount, or aborts
it when rsoc(discharger) < 20 % or rsoc(charger) > 95 %.

Between events nothing is evaluated: the controller asks to be woken at the next tick that can
change something and gives the engine the band of remaining energy within which no unit can
start a new opportunity; the engine stops the moment a battery leaves its band.  The deal
energy is integrated in closed form between ticks (wb is constant there), so skipping a tick
changes no number.  Times are emulated seconds since the start of the run.
"""

from __future__ import annotations

import heapq
import math
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine import ConverterCommand, Mode
from ..engine.deals import DealTimes
from ..errors import InvalidValueError
from .base import ControlView, DealRecord, Plan
from .files import OPERATION_MODES, Condition, Policy, Scenario, Slot

__all__ = ["ApisController", "Deal"]

_EPS = 1e-9  # [s] times closer than this are the same moment
_NEW, _RAMPING, _STARTED = "new", "ramping", "started"


@dataclass
class Deal:
    """A deal between a charging and a discharging unit (times [s since the start])."""

    deal_id: str
    created: float
    request_unit: str
    type: str  # the request's type: "charge" or "discharge"
    charge_unit: str
    discharge_unit: str
    request_wh: int
    accept_wh: int
    deal_wh: int
    current_a: float
    activated: float | None = None
    started: float | None = None
    state: str = _NEW  # new, ramping (activated, waiting for the grid) or started
    ended: float | None = None
    end_reason: str = ""
    # energies at a tick t: base + rate · (t − base_t) / 3600, wb being constant between ticks
    base_t: float = 0.0
    base: tuple[float, float, float] = (0.0, 0.0, 0.0)  # (counted, delivered, taken) [Wh]
    rates: tuple[float, float, float] = (0.0, 0.0, 0.0)  # [W]: reference side, charger, −discharger
    booked: tuple[float, float] = (0.0, 0.0)  # delivered, taken already in a daily summary [Wh]
    end_tick: float = math.inf  # the first tick at which the amount is passed [s]
    cumulated: float = 0.0  # counted on the reference side by the last processed tick [Wh]
    delivered: float = 0.0  # into the charging battery [Wh]
    taken: float = 0.0  # out of the discharging battery [Wh]

    def ends(self) -> tuple[str, str]:
        """(charge unit, discharge unit)."""
        return self.charge_unit, self.discharge_unit

    def energy_at(self, t: float) -> tuple[float, float, float]:
        """(counted, delivered, taken) [Wh] by the tick at ``t``."""
        if self.started is None or t < self.base_t:
            return self.cumulated, self.delivered, self.taken
        span = (t - self.base_t) / 3600.0
        return (self.base[0] + self.rates[0] * span, self.base[1] + self.rates[1] * span,
                self.base[2] + self.rates[2] * span)

    def rebase(self, t: float, rates: tuple[float, float, float]) -> None:
        """From the tick at ``t`` on, the energies grow at ``rates`` [W]."""
        self.base_t = t
        self.base = (self.cumulated, self.delivered, self.taken)
        self.rates = rates


@dataclass
class _Negotiation:
    due: float
    requester: str
    type: str
    amount: int
    point: float | None
    pair: str | None
    accepts: list[tuple[str, int, float | None]]  # (unit, amount [Wh], point)


@dataclass(frozen=True)
class _Table:
    """The units as the rules see them at one moment (arrays in the view's unit order)."""

    ids: tuple[str, ...]
    r: np.ndarray  # remaining Wh, int
    rsoc: np.ndarray  # [%]
    free: np.ndarray  # may request / accept: autonomous, member, under the interlock capacity
    req_type: np.ndarray  # 0 none, 1 charge, 2 discharge
    req_amount: np.ndarray
    acc_charge: np.ndarray  # accept amount of a charge accept, or -1
    acc_discharge: np.ndarray
    pos: dict[str, int]  # unit id → position


class ApisController:
    """apis-main's decisions for every unit of the community (see the module docstring).

    Parameters
    ----------
    scenario, policy : Scenario, Policy
        From apis-main's files (:func:`~apis_emulator.control.files.read_scenario`, ...).
    start : datetime
        Emulated time at elapsed 0 (for the scenario's time-of-day slots and the deal log).
    seed : int
        Tie-breaks among equal accepts and each unit's House-Keeping phase.
    time_scale : float
        apis-main's wall-clock periods × this = emulated periods (1: real hardware; the
        acceleration: apis-main against a served emulator).
    operation_mode : str
        The global operation mode at the start (apis-main ships "stop"; an operator sets it).
    lazy : bool
        Wake only when something can change (the default); False wakes at every step and
        watches nothing: the reference the tests hold the lazy runs to.
    """

    name = "apis"

    def __init__(self, scenario: Scenario, policy: Policy, start: Any, seed: int = 0,
                 time_scale: float = 1.0, operation_mode: str = "autonomous", lazy: bool = True):
        self.scenario, self.policy, self.start = scenario, policy, start
        self._times = DealTimes(start)
        self.seed = int(seed)
        self.lazy = lazy
        self._rng = np.random.default_rng([self.seed, 0])
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        self._start_of_day = (start - midnight).total_seconds()
        self._edges: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._scale = _checked_scale(time_scale)
        self._pending_scale: float | None = None
        self.operation_mode = _checked_mode(operation_mode)
        self._phases: dict[str, float] = {}  # House-Keeping lattice of each unit [s]
        self._hk_done: dict[str, float] = {}  # last House-Keeping tick evaluated [s]
        gm_phase = float(np.random.default_rng([self.seed, 1]).random())
        self._gm_last = (gm_phase - 1.0) * self.main_loop_s  # last Grid Master tick passed
        self._deals: list[Deal] = []
        self._negotiations: list[_Negotiation] = []
        self._vr: str | None = None  # the voltage-reference unit
        self._master: Deal | None = None
        self._count = 0
        self._finished: list[DealRecord] = []
        self.recent: deque[dict[str, Any]] = deque(maxlen=50)
        self._day = {"shared_in": 0.0, "shared_out": 0.0, "deals": 0.0}
        self._dirty_units = False
        self._reset_all = False
        self._released = False  # manual mode: the converters are handed over
        self._processed_gm = False
        self._held_by: dict[str, int] = {}  # deals per unit
        self._version = 0  # changes with every deal made, started or ended, every mode change
        self._running_cache: tuple[int, list[Deal]] = (-1, [])
        self._cached: tuple[Any, int, _Table | None, np.ndarray | None] = (None, -1, None, None)
        self._clock = math.nan  # [s] events before this moment are past (set by plan)
        self._promised = math.inf  # [s] the wake-up the last plan asked for

    # ------------------------------------------------------------------ periods [s]
    @property
    def time_scale(self) -> float:
        """Emulated seconds per second of apis-main's clock."""
        return self._pending_scale or self._scale

    def set_time_scale(self, value: float) -> None:
        """Follow a new acceleration from the next Grid Master tick on."""
        self._pending_scale = _checked_scale(value)

    def set_operation_mode(self, mode: str) -> None:
        """The global operation mode: autonomous, heteronomous, stop or manual."""
        self.operation_mode = _checked_mode(mode)
        self._version += 1
        if mode == "manual" and not self._deals:
            self._released = True  # nothing to wind down: the converters are handed over

    @property
    def house_keeping_s(self) -> float:
        """House-Keeping period [s of emulated time]."""
        return self.policy.house_keeping_s * self._scale

    @property
    def negotiation_s(self) -> float:
        """Negotiation window [s of emulated time]."""
        return self.policy.negotiation_s * self._scale

    @property
    def main_loop_s(self) -> float:
        """Grid Master main-loop period [s of emulated time]."""
        return self.policy.main_loop_s * self._scale

    # ------------------------------------------------------------------ the seam
    def plan(self, view: ControlView) -> Plan:
        """The next moment that can change something, and the bands to watch until then."""
        self._join(view.snapshot.ids)
        self._catch_up(view)
        table = self._table(view)
        wake = min(self._next_negotiation(), self._next_gm(view, table),
                   self._next_house_keeping(view, table), self._next_slot_change(view))
        if self._dirty_units:
            wake = view.elapsed
        if not self.lazy:
            wake = min(wake, view.elapsed + _EPS)  # the next step
        self._promised = wake
        return Plan(wake, self._watch(view, table) if self.lazy else None)

    def _catch_up(self, view: ControlView) -> None:
        """Time moved on since the last plan: nothing could happen before the wake-up it
        promised (or before the last step, when a battery left its band during it)."""
        # an event due within the last step acts now, on the state now (as without skipping)
        recent = view.elapsed - view.step + 1e-6
        if math.isnan(self._clock):
            self._clock = view.elapsed
        else:
            self._clock = max(self._clock, min(self._promised, recent))

    def wake(self, view: ControlView) -> list[ConverterCommand]:
        """Run every event due by ``view.elapsed`` in time order; the converter commands."""
        self._join(view.snapshot.ids)
        self._catch_up(view)
        self._processed_gm = False
        if self._dirty_units:
            self._drop_missing(view)
        now = view.elapsed + _EPS
        queue = self._due_by(view, now)
        while queue:
            due, kind, which = heapq.heappop(queue)
            self._clock = due
            version = self._version
            if kind == 0:
                self._end_negotiation(view, due)
            elif kind == 1:
                self._ask(view, which, due)
                self._queue_new_negotiations(queue, now)
            else:
                self._gm_tick(view, self._table(view), due)
            if self._version != version:  # the deals changed: so may every chance
                queue = self._due_by(view, now)
        self._clock = view.elapsed  # everything up to now is accounted for
        return self._commands(view)

    def _due_by(self, view: ControlView, now: float) -> list[tuple[float, int, int]]:
        """Events due by ``now`` from ``self._clock`` on, as a heap of (time, kind, unit):
        negotiations ending (0), House-Keeping ticks of units with a chance (1), the next
        Grid Master tick that can change something (2)."""
        table = self._table(view)
        queue = [(n.due, 0, -1) for n in self._negotiations if n.due <= now]
        chances = self._opportunities(table, self._slot(view.elapsed))
        if len(chances):
            ticks = self._hk_ticks(table, chances, self._clock)
            queue += [(float(t), 1, int(i)) for t, i in zip(ticks, chances, strict=True)
                      if t <= now]
        gm = self._next_gm(view, table)
        if gm <= now:
            queue.append((gm, 2, -1))
        heapq.heapify(queue)
        return queue

    def _queue_new_negotiations(self, queue: list[tuple[float, int, int]], now: float) -> None:
        if self._negotiations and self._negotiations[-1].due <= now:
            heapq.heappush(queue, (self._negotiations[-1].due, 0, -1))

    def settled(self, view: ControlView) -> None:
        """Converters changed: each running deal's rates from now on (wb of the new state)."""
        if not self._processed_gm:
            return
        wb = view.snapshot.wb
        pos = {u: i for i, u in enumerate(view.snapshot.ids)}
        total = self._currents()  # a unit's meter is shared in proportion to the currents
        for d in self._running():
            into = float(wb[pos[d.charge_unit]]) * d.current_a / total[d.charge_unit]
            out = -float(wb[pos[d.discharge_unit]]) * d.current_a / total[d.discharge_unit]
            counted = into if self.policy.reference_side == "chargeUnit" else out
            d.rebase(self._gm_last, (counted, into, out))
            d.end_tick = self._amount_tick(d)

    def units_replaced(self, reason: str, old_ids: Sequence[str]) -> None:
        """Reset and load take every unit's converter away; add/remove only their own."""
        self._dirty_units = True
        if reason in ("reset", "load"):
            self._reset_all = True

    def take_day(self, view: ControlView) -> dict[str, float]:
        """Shared energies [Wh] and finished deals since the last call (ticks up to now)."""
        t = self._last_tick_at(view.elapsed)
        for d in self._running():
            _, delivered, taken = d.energy_at(t)
            self._book(d, delivered, taken)
        day, self._day = self._day, {"shared_in": 0.0, "shared_out": 0.0, "deals": 0.0}
        return day

    def take_finished(self) -> list[DealRecord]:
        """Deals finished since the last call, oldest first."""
        done, self._finished = self._finished, []
        return done

    def close(self, view: ControlView) -> list[DealRecord]:
        """End every deal at the last tick with reason ``run_end``."""
        t = self._last_tick_at(view.elapsed)
        for d in list(self._deals):
            self._integrate(d, t)
            self._end(d, t, "run_end")
        return self.take_finished()

    def status(self, view: ControlView) -> dict[str, Any]:
        """Active and recently finished deals, the mode and the voltage reference."""
        t = self._last_tick_at(view.elapsed)
        active = []
        for d in self._deals:
            cum = d.energy_at(t)[0]
            active.append({**self._describe(d), "state": d.state, "cumulated_wh": cum})
        return {"controller": self.name, "operation_mode": self.operation_mode,
                "time_scale": self.time_scale, "voltage_reference": self._vr,
                "active": active, "finished": list(self.recent),
                "today": self._today(t), "units": self._unit_status(view)}

    def _today(self, t: float) -> dict[str, float]:
        """The day's shared energies [Wh] and deals so far, counting nothing."""
        today = dict(self._day)
        for d in self._running():
            _, delivered, taken = d.energy_at(t)
            today["shared_in"] += delivered - d.booked[0]
            today["shared_out"] += taken - d.booked[1]
        return today

    def _unit_status(self, view: ControlView) -> dict[str, dict[str, Any]]:
        """Each unit's battery status class (the scenario's name) and remaining Wh R."""
        table = self._table(view)
        slot = self._slot(view.elapsed)
        held = self._held(table.ids)
        return {uid: {"status": slot.status(int(table.r[i])) if slot else None,
                      "remaining_wh": int(table.r[i]), "deals": int(held[i])}
                for i, uid in enumerate(table.ids)}

    # ------------------------------------------------------------------ units
    def _join(self, ids: Sequence[str]) -> None:
        for uid in ids:
            if uid not in self._phases:
                number = "".join(ch for ch in uid if ch.isdigit())
                key = int(number) if number else zlib.crc32(uid.encode())
                self._phases[uid] = float(np.random.default_rng([self.seed, 2, key]).random())
                self._hk_done[uid] = -math.inf

    def _drop_missing(self, view: ControlView) -> None:
        present = set(view.snapshot.ids)
        t = self._last_tick_at(view.elapsed)
        for d in list(self._deals):
            if self._reset_all or not set(d.ends()) <= present:
                self._integrate(d, t)
                self._end(d, t, "force_stop")
        self._dirty_units = self._reset_all = False

    # ------------------------------------------------------------------ the rules' view
    def _slot(self, elapsed: float) -> Slot | None:
        """The scenario's slot at the emulated time of day (whole seconds, as apis-main's
        ``HH:mm:ss`` text compares)."""
        return self.scenario.slot_at(math.floor(self._start_of_day + elapsed + 1e-6) % 86400)

    def _table(self, view: ControlView) -> _Table:
        """The rules' view of the units, once per snapshot and deal set."""
        snap, version, table, _ = self._cached
        if snap is view.snapshot and version == self._version and table is not None:
            return table
        table = self._make_table(view)
        self._cached = (view.snapshot, self._version, table, None)
        return table

    def _make_table(self, view: ControlView) -> _Table:
        snap = view.snapshot
        ids = snap.ids
        rsoc = snap.rsoc
        nominal = self.policy.nominal_wh if self.policy.nominal_wh is not None \
            else snap.capacity
        r = np.floor(nominal * rsoc / 100.0).astype(np.int64)
        n = len(ids)
        held = self._held(ids)
        free = held < self.policy.deal_capacity
        if self.operation_mode != "autonomous":
            free[:] = False
        members = self.policy.member_unit_ids
        if members is not None:
            free &= np.array([u in members for u in ids], dtype=bool)
        slot = self._slot(view.elapsed)
        req_type = np.zeros(n, dtype=np.int64)
        req_amount = np.zeros(n, dtype=np.int64)
        acc_c = np.full(n, -1, dtype=np.int64)
        acc_d = np.full(n, -1, dtype=np.int64)
        if slot is not None:
            status = _statuses(slot, r)
            for k, (_, _, name) in enumerate(slot.statuses):
                here = status == k
                if not here.any():
                    continue
                cond = slot.request.get(name)
                if cond is not None:
                    req_type[here] = 1 if cond.type == "charge" else 2
                    req_amount[here] = _amount(cond.type, cond.limit_wh, r[here])
                accepts = slot.accept.get(name, {})
                if "charge" in accepts:
                    acc_c[here] = _amount("charge", accepts["charge"].limit_wh, r[here])
                if "discharge" in accepts:
                    acc_d[here] = _amount("discharge", accepts["discharge"].limit_wh, r[here])
        return _Table(ids, r, rsoc, free, req_type, req_amount, acc_c, acc_d,
                      {u: i for i, u in enumerate(ids)})

    def _held(self, ids: Sequence[str]) -> np.ndarray:
        """How many deals (any state) each unit holds: what its interlock counts."""
        held = self._held_by
        return np.array([held.get(u, 0) for u in ids], dtype=np.int64)

    def _hold(self, d: Deal, by: int) -> None:
        for u in d.ends():
            self._held_by[u] = self._held_by.get(u, 0) + by
        self._version += 1

    def _requesters(self, table: _Table) -> np.ndarray:
        """Positions of units that would send a request now."""
        minimum = max(self.policy.amount_min_wh, 0)
        return np.flatnonzero(table.free & (table.req_type > 0) & (table.req_amount > minimum))

    def _accepts(self, table: _Table, requester: int, req_type: int,
                 slot: Slot | None) -> list[tuple[str, int, float | None]]:
        """Every accept the others would send to a request of ``requester`` (charge: 1)."""
        if slot is None:
            return []
        amounts = table.acc_discharge if req_type == 1 else table.acc_charge
        ok = table.free & (amounts > self.policy.amount_min_wh)
        ok[requester] = False
        kind = "discharge" if req_type == 1 else "charge"
        requester_id = table.ids[requester]
        pair = self._request_condition(slot, table, requester)
        found = []
        for i in np.flatnonzero(ok):
            uid = table.ids[i]
            if pair is not None and pair.pair_unit_id not in (None, uid):
                continue
            cond = self._accept_condition(slot, table, int(i), kind)
            if cond is None or cond.pair_unit_id not in (None, requester_id):
                continue
            found.append((uid, int(amounts[i]), cond.point_per_wh))
        return found

    def _request_condition(self, slot: Slot, table: _Table, i: int) -> Condition | None:
        name = slot.status(int(table.r[i]))
        return slot.request.get(name) if name is not None else None

    def _accept_condition(self, slot: Slot, table: _Table, i: int,
                          kind: str) -> Condition | None:
        name = slot.status(int(table.r[i]))
        return slot.accept.get(name, {}).get(kind) if name is not None else None

    # ------------------------------------------------------------------ House-Keeping
    def _hk_tick_after(self, uid: str, t: float) -> float:
        """The unit's first House-Keeping tick at or after ``t``."""
        period = self.house_keeping_s
        phase = self._phases[uid] * period
        k = math.ceil((t - phase) / period - _EPS)
        return phase + k * period

    def _opportunities(self, table: _Table, slot: Slot | None) -> np.ndarray:
        """Positions of units whose request would find at least one accept now."""
        snap, version, cached, chances = self._cached
        if cached is table and chances is not None:
            return chances
        chances = self._find_opportunities(table, slot)
        self._cached = (snap, version, cached, chances)
        return chances

    def _find_opportunities(self, table: _Table, slot: Slot | None) -> np.ndarray:
        found = []
        for kind in (1, 2):
            asking = self._requesters(table)
            asking = asking[table.req_type[asking] == kind]
            if not len(asking):
                continue
            if slot is not None and _has_pairs(slot):
                found += [i for i in asking if self._accepts(table, int(i), kind, slot)]
                continue
            amounts = table.acc_discharge if kind == 1 else table.acc_charge
            giving = table.free & (amounts > self.policy.amount_min_wh)
            others = int(giving.sum()) - giving[asking].astype(np.int64)  # not itself
            found += list(asking[others > 0])
        return np.array(sorted(found), dtype=np.int64)

    def _hk_ticks(self, table: _Table, chances: np.ndarray, since: float) -> np.ndarray:
        """Each unit's first House-Keeping tick at or after ``since`` it has not had yet."""
        period = self.house_keeping_s
        ids = [table.ids[i] for i in chances]
        phase = np.array([self._phases[u] for u in ids]) * period
        done = np.array([self._hk_done[u] for u in ids])
        after = np.maximum(since, done + period / 2)
        ticks: np.ndarray = phase + np.ceil((after - phase) / period - _EPS) * period
        return ticks

    def _next_house_keeping(self, view: ControlView, table: _Table) -> float:
        """The first tick of a unit whose request would find an accept now."""
        chances = self._opportunities(table, self._slot(view.elapsed))
        if not len(chances):
            return math.inf
        return float(self._hk_ticks(table, chances, self._clock).min())

    def _ask(self, view: ControlView, i: int, tick: float) -> None:
        """House-Keeping of the unit at position ``i`` at ``tick``: its request goes out with
        every accept it gets now; the negotiation ends ``negotiation_s`` later."""
        table = self._table(view)
        slot = self._slot(view.elapsed)
        uid = table.ids[i]
        self._hk_done[uid] = tick
        req_type = int(table.req_type[i])
        accepts = self._accepts(table, i, req_type, slot)
        cond = self._request_condition(slot, table, i) if slot else None
        if not accepts or cond is None:
            return
        self._negotiations.append(_Negotiation(
            tick + self.negotiation_s, uid, "charge" if req_type == 1 else "discharge",
            int(table.req_amount[i]), cond.point_per_wh, cond.pair_unit_id, accepts))

    # ------------------------------------------------------------------ negotiation
    def _next_negotiation(self) -> float:
        return min((n.due for n in self._negotiations), default=math.inf)

    def _end_negotiation(self, view: ControlView, due: float) -> None:
        ready = [n for n in self._negotiations if n.due <= due + _EPS]
        self._negotiations = [n for n in self._negotiations if n.due > due + _EPS]
        for neg in sorted(ready, key=lambda n: (n.due, n.requester)):
            self._conclude(view, neg)

    def _conclude(self, view: ControlView, neg: _Negotiation) -> None:
        table = self._table(view)
        pos = table.pos
        i = pos.get(neg.requester)
        if i is None or not table.free[i]:
            return  # the requester's gates hold at choose time too (MediatorAcceptsHandling)
        slot = self._slot(neg.due)
        chosen = self._choose(neg, slot.strategy if slot else "amount")
        if chosen is None:
            return
        amount = self._deal_amount(neg.amount, chosen[1])
        other = chosen[0]
        if amount <= 0 or other not in pos or not self._interlock_free(neg.requester, other):
            return  # dropped silently (DealManagement: no retry)
        charge, discharge = (neg.requester, other) if neg.type == "charge" else \
            (other, neg.requester)
        self._count += 1
        deal = Deal(f"D{self._count:07d}", neg.due, neg.requester, neg.type, charge,
                    discharge, neg.amount, chosen[1], amount, self.policy.deal_grid_current_a)
        self._deals.append(deal)
        self._hold(deal, +1)

    def _choose(self, neg: _Negotiation, strategy: str) -> tuple[str, int, float | None] | None:
        """The accept the requester picks (SimpleScenarioEvaluationImpl.chooseAccept)."""
        accepts = [a for a in neg.accepts if neg.pair is None or a[0] == neg.pair]
        if strategy == "pointAndAmount":
            if neg.point is None:
                return None  # apis-main would fail unboxing a missing price: no deal
            if neg.type == "charge":
                ok = [a for a in accepts if a[2] is not None and a[2] <= neg.point]
                keys = [(-a[2], a[1]) for a in ok]  # type: ignore[operator]
            else:
                ok = [a for a in accepts if a[2] is not None and a[2] >= neg.point]
                keys = [(a[2], a[1]) for a in ok]
        else:
            ok = [a for a in accepts if a[1] > 0]
            keys = [(a[1],) for a in ok]  # type: ignore[misc]
        if not ok:
            return None
        best = max(keys)
        ties = [a for a, k in zip(ok, keys, strict=True) if k == best]
        # arrival order on the event bus decides among equals: the seed stands in for it
        return ties[int(self._rng.integers(len(ties)))] if len(ties) > 1 else ties[0]

    def _deal_amount(self, requested: int, accepted: int) -> int:
        p = self.policy
        amount = min(requested, accepted, p.amount_max_wh)
        amount = (amount // p.amount_unit_wh) * p.amount_unit_wh
        return amount if amount >= p.amount_min_wh else 0

    def _interlock_free(self, *units: str) -> bool:
        held = self._held(units)
        return bool((held < self.policy.deal_capacity).all())

    # ------------------------------------------------------------------ Grid Master
    def _running(self) -> list[Deal]:
        """The started deals (once per change of the deals)."""
        version, running = self._running_cache
        if version != self._version:
            running = [d for d in self._deals if d.state == _STARTED]
            self._running_cache = (self._version, running)
        return running

    def _activated(self, but: Deal | None = None) -> list[Deal]:
        return [d for d in self._deals if d.state != _NEW and d is not but]

    def _last_tick_at(self, t: float) -> float:
        """The last Grid Master tick at or before ``t``."""
        period = self.main_loop_s
        k = math.floor((t - self._gm_last) / period + _EPS)
        return self._gm_last + max(k, 0) * period

    def _next_gm(self, view: ControlView, table: _Table) -> float:
        """The first Grid Master tick that can change something."""
        period = self.main_loop_s
        first = self._gm_last + period
        if first < self._clock - _EPS:  # ticks skipped while nothing could happen
            skipped = math.ceil((self._clock - self._gm_last) / period - _EPS)
            first = self._gm_last + skipped * period
        if self._pending_scale is not None:
            return first
        if any(d.state != _STARTED for d in self._deals):
            return first
        if self._deals and self.operation_mode in ("stop", "manual"):
            return first
        if self._force_condition(table):
            return first
        return min((d.end_tick for d in self._running()), default=math.inf)

    def _force_condition(self, table: _Table) -> bool:
        pos = table.pos
        p = self.policy
        return any(table.rsoc[pos[d.discharge_unit]] < p.discharge_lower_rsoc
                   or table.rsoc[pos[d.charge_unit]] > p.charge_upper_rsoc
                   for d in self._running())

    def _amount_tick(self, d: Deal) -> float:
        """The first tick at which the deal's energy is strictly greater than its amount."""
        if d.rates[0] <= 0.0:
            return math.inf
        period = self.main_loop_s
        first = self._gm_last + period
        reach = d.base_t + (d.deal_wh - d.base[0]) * 3600.0 / d.rates[0]
        k = max(0, math.floor((reach - first) / period) - 1)
        t = first + k * period
        while d.energy_at(t)[0] <= d.deal_wh:
            t += period
        return t

    def _gm_tick(self, view: ControlView, table: _Table, due: float) -> None:
        """One Grid Master main loop at tick ``due`` (ticks before it changed nothing)."""
        period = self.main_loop_s
        tick = self._gm_last + max(1, round((due - self._gm_last) / period)) * period
        self._gm_last = tick
        self._processed_gm = True
        for d in self._running():
            self._integrate(d, tick)
        if self.operation_mode in ("stop", "manual"):
            for d in list(self._deals):  # a global error in apis-main: every deal is scrammed
                self._end(d, tick, "force_stop")
        # DealExecution sorts the running master deal last: a deal activated in this tick still
        # sees it running (a later deal, no ramp), and takes the grid over if it ends
        master = [d for d in self._running() if d is self._master]
        self._cumulation(table, tick, [d for d in self._running() if d is not self._master])
        for d in sorted(self._activated(), key=lambda d: d.created):
            if d.state == _RAMPING:
                self._ramping(view, d, tick)
        for d in sorted([d for d in self._deals if d.state == _NEW], key=lambda d: d.created):
            self._activation(d, tick)
        self._cumulation(table, tick, [d for d in master if d.ended is None])
        self._apply_scale(view, tick)

    def _integrate(self, d: Deal, t: float) -> None:
        d.cumulated, d.delivered, d.taken = d.energy_at(t)

    def _cumulation(self, table: _Table, tick: float, deals: list[Deal]) -> None:
        """End deals whose energy passed their amount; abort those past the rsoc limits."""
        pos = table.pos
        p = self.policy
        for d in sorted(deals, key=lambda d: d.created):
            if d.deal_wh < d.cumulated:
                self._end(d, tick, "amount")
            elif (table.rsoc[pos[d.discharge_unit]] < p.discharge_lower_rsoc
                  or table.rsoc[pos[d.charge_unit]] > p.charge_upper_rsoc):
                self._end(d, tick, "force_stop")

    def _ramping(self, view: ControlView, d: Deal, tick: float) -> None:
        """The first deal waits for the grid: vg >= dvg − allowance, or it times out."""
        p = self.policy
        vg = float(view.snapshot.vg.max()) if len(view.snapshot.vg) else 0.0
        if vg >= p.grid_voltage_v - p.grid_voltage_allowance_v:
            self._start(d, tick)
        elif tick - (d.activated or tick) >= p.ramp_timeout_s:
            self._end(d, tick, "ramp_timeout")

    def _activation(self, d: Deal, tick: float) -> None:
        """DealActivation: validate, then start at once or become the first (ramping) deal."""
        active = self._activated(but=d)
        if any(x.charge_unit == d.discharge_unit or x.discharge_unit == d.charge_unit
               for x in active):
            self._end(d, tick, "direction")
            return
        total = sum(x.current_a for x in active) + d.current_a
        if total > self.policy.sum_of_deal_grid_current_max_a + 1e-12:
            self._end(d, tick, "capacity")
            return
        if not active:
            d.activated, d.state = tick, _RAMPING
            self._version += 1
            self._master = d
            self._vr = self._master_side(d)
            return
        if not any(x.state == _STARTED for x in active):
            return  # later deals wait until the first one has started
        d.activated = tick
        large = self.policy.large_capacity_unit_ids
        if self._vr not in large and (set(d.ends()) & large):
            self._vr = d.charge_unit if d.charge_unit in large else d.discharge_unit
            self._master = d
        self._start(d, tick)

    def _master_side(self, d: Deal) -> str:
        large = self.policy.large_capacity_unit_ids
        if d.discharge_unit in large and d.charge_unit not in large:
            return d.discharge_unit
        return d.charge_unit if self.policy.voltage_reference_side == "chargeUnit" \
            else d.discharge_unit

    def _start(self, d: Deal, tick: float) -> None:
        d.started, d.state = tick, _STARTED
        self._version += 1
        self._day["deals"] += 1  # a deal counts on the day its current starts to flow
        d.cumulated = d.delivered = d.taken = 0.0
        d.rebase(tick, (0.0, 0.0, 0.0))  # the rates come in settled(), once converters are set

    def _end(self, d: Deal, tick: float, reason: str) -> None:
        """Stop, deactivate and dispose of a deal in one go; the voltage reference follows."""
        d.ended, d.end_reason = tick, reason
        self._deals.remove(d)
        self._hold(d, -1)
        self._book(d, d.delivered, d.taken)
        record = self._record(d)
        self._finished.append(record)
        self.recent.appendleft({**self._describe(d), "cumulated_wh": d.cumulated,
                                "ended": record.ended, "end_reason": reason})
        if d is self._master or not self._activated():
            self._new_master()

    def _book(self, d: Deal, delivered: float, taken: float) -> None:
        """Count what the deal moved since it was last counted into the day's totals."""
        self._day["shared_in"] += delivered - d.booked[0]
        self._day["shared_out"] += taken - d.booked[1]
        d.booked = (delivered, taken)

    def _new_master(self) -> None:
        """DealDeactivation: newest deal with the voltage reference, else with a large-capacity
        unit, else the newest; no deal left: the reference goes to WAIT and the grid down."""
        rest = sorted(self._activated(), key=lambda d: d.created, reverse=True)
        if not rest:
            self._master, self._vr = None, None
            return
        large = self.policy.large_capacity_unit_ids
        pick = next((d for d in rest if self._vr in d.ends()), None) or next(
            (d for d in rest if set(d.ends()) & large), None) or rest[0]
        self._master = pick
        if self._vr not in pick.ends():
            self._vr = self._master_side(pick)

    def _apply_scale(self, view: ControlView, tick: float) -> None:
        """A new time scale takes effect at this tick: lattices re-anchored, rates kept."""
        if self._pending_scale is None:
            return
        ratio = self._pending_scale / self._scale
        for uid in self._phases:  # the same fraction of a period stays to each next tick
            nxt = self._hk_tick_after(uid, tick)
            self._phases[uid] = ((tick + (nxt - tick) * ratio) / (self.house_keeping_s * ratio)
                                 ) % 1.0
        self._scale = self._pending_scale
        self._pending_scale = None

    # ------------------------------------------------------------------ converters
    def _desired(self) -> dict[str, tuple[Mode, float]]:
        """Each dealing unit's mode and current [A] from the deals (others wait)."""
        want: dict[str, tuple[Mode, float]] = {}
        for d in self._running():
            for uid, mode in ((d.charge_unit, Mode.CHARGE), (d.discharge_unit, Mode.DISCHARGE)):
                _, current = want.get(uid, (mode, 0.0))
                want[uid] = (mode, current + d.current_a)
        if self._vr is not None:
            want[self._vr] = (Mode.VOLTAGE_REFERENCE, self.policy.grid_current_capacity_a)
        return want

    @property
    def drives_converters(self) -> bool:
        """Whether the converters are the controller's (not in manual mode once released)."""
        return not (self.operation_mode == "manual" and self._released)

    def _commands(self, view: ControlView) -> list[ConverterCommand]:
        """Commands for every converter that is not as the deals want it; in manual mode,
        once every deal has ended, none: the converters are handed over."""
        if self.operation_mode == "manual":
            if self._released:
                return []
            if not self._deals:
                self._released = True
        else:
            self._released = False
        snap = view.snapshot
        p = self.policy
        volts = {Mode.VOLTAGE_REFERENCE: p.grid_voltage_v, Mode.CHARGE: p.grid_voltage_v,
                 Mode.DISCHARGE: p.grid_voltage_max_v}
        mode = np.full(len(snap.ids), int(Mode.WAIT))
        dig, dvg = snap.dig.copy(), snap.dvg.copy()
        pos = {u: i for i, u in enumerate(snap.ids)}
        for uid, (m, current) in self._desired().items():
            i = pos[uid]
            mode[i], dig[i], dvg[i] = m, current, volts[m]
        differs = (snap.mode != mode) | (np.abs(snap.dig - dig) > 1e-9) | \
            (np.abs(snap.dvg - dvg) > 1e-9)
        out = []
        for j in np.flatnonzero(differs):
            m = Mode(int(mode[j]))
            if m == Mode.WAIT:
                out.append(ConverterCommand(snap.ids[j], m))
            else:
                out.append(ConverterCommand(snap.ids[j], m, dvg=float(dvg[j]),
                                            dig=float(dig[j]), drg=0.0))
        return out

    # ------------------------------------------------------------------ waking
    def _next_slot_change(self, view: ControlView) -> float:
        marks = self.scenario.boundaries_s()
        if not marks:
            return math.inf
        midnight = (view.time - view.time.replace(hour=0, minute=0, second=0,
                                                  microsecond=0)).total_seconds()
        later = [m for m in marks if m > midnight + _EPS]
        ahead = (later[0] if later else 86400.0 + marks[0]) - midnight
        return view.elapsed + ahead

    def _watch(self, view: ControlView, table: _Table) -> np.ndarray:
        """Per unit: the band of R (and rsoc) within which no new opportunity can arise."""
        n = len(table.ids)
        watch = np.empty((n, 5))
        nominal = self.policy.nominal_wh
        watch[:, 0] = nominal if nominal is not None else view.snapshot.capacity
        watch[:, 1], watch[:, 2] = -np.inf, np.inf
        watch[:, 3], watch[:, 4] = -np.inf, np.inf
        slot = self._slot(view.elapsed)
        if slot is not None and self.operation_mode == "autonomous":
            for kind in (1, 2):  # charge requests, discharge requests
                self._watch_pair(slot, table, kind, watch)
        self._watch_force(table, watch)
        return watch

    def _watch_pair(self, slot: Slot, table: _Table, kind: int, watch: np.ndarray) -> None:
        """Requests of ``kind`` need accepts of the other kind: watch entries into whichever
        side could complete a pair that does not exist now."""
        chances = self._opportunities(table, slot)
        # a pair exists: its House-Keeping tick is planned, and only a new requester's own
        # tick could come earlier; none: whichever side enters may complete one
        paired = bool((table.req_type[chances] == kind).any())
        key = (self.scenario.slots.index(slot), kind + 2 * paired)
        if key not in self._edges:
            self._edges[key] = _entry_edges(slot, self.policy, kind, accepts=not paired)
        marks, lows, highs = self._edges[key]
        segment = np.searchsorted(marks, table.r, side="right")
        free = table.free
        watch[free, 1] = np.maximum(watch[free, 1], lows[segment[free]])
        watch[free, 2] = np.minimum(watch[free, 2], highs[segment[free]])

    def _watch_force(self, table: _Table, watch: np.ndarray) -> None:
        """Running deals: wake when a discharger falls below, a charger rises above, its limit."""
        pos = table.pos
        p = self.policy
        for d in self._running():
            i, j = pos[d.discharge_unit], pos[d.charge_unit]
            watch[i, 3] = max(watch[i, 3], p.discharge_lower_rsoc)
            watch[j, 4] = min(watch[j, 4], p.charge_upper_rsoc)

    # ------------------------------------------------------------------ records
    def _currents(self) -> dict[str, float]:
        """Each unit's current [A] over its running deals."""
        total: dict[str, float] = {}
        for x in self._running():
            for u in x.ends():
                total[u] = total.get(u, 0.0) + x.current_a
        return total

    def _text(self, t: float | None) -> str:
        return self._times.text(t)

    def _describe(self, d: Deal) -> dict[str, Any]:
        return {"deal_id": d.deal_id, "created": self._text(d.created),
                "activated": self._text(d.activated), "started": self._text(d.started),
                "request_unit": d.request_unit, "type": d.type, "charge_unit": d.charge_unit,
                "discharge_unit": d.discharge_unit, "deal_wh": d.deal_wh,
                "current_a": d.current_a, "master": d is self._master}

    def _record(self, d: Deal) -> DealRecord:
        return DealRecord(d.deal_id, self._text(d.created), self._text(d.activated),
                          self._text(d.started), self._text(d.ended), d.request_unit, d.type,
                          d.charge_unit, d.discharge_unit, d.request_wh, d.accept_wh, d.deal_wh,
                          float(d.cumulated), d.end_reason)


# ---------------------------------------------------------------------- helpers
def _checked_scale(value: float) -> float:
    try:
        scale = float(value)
    except (TypeError, ValueError):
        scale = math.nan
    if not math.isfinite(scale) or scale <= 0:
        raise InvalidValueError("time_scale", value, "a number > 0")
    return scale


def _checked_mode(mode: str) -> str:
    if mode not in OPERATION_MODES:
        raise InvalidValueError("operation_mode", mode, f"one of {', '.join(OPERATION_MODES)}")
    return mode


def _amount(kind: str, limit: int, r: Any) -> Any:
    return (limit - r) if kind == "charge" else (r - limit)


def _statuses(slot: Slot, r: np.ndarray) -> np.ndarray:
    """Index of each unit's status in the slot (file order, first match), or −1."""
    status = np.full(r.shape, -1, dtype=np.int64)
    for k, (lo, hi, _) in enumerate(slot.statuses):
        match = status < 0
        if lo is not None:
            match &= r >= lo
        if hi is not None:
            match &= r < hi
        status[match] = k
    return status


def _has_pairs(slot: Slot) -> bool:
    """Whether any condition of the slot names a partner (pairUnitId)."""
    conds = list(slot.request.values()) + [c for a in slot.accept.values() for c in a.values()]
    return any(c.pair_unit_id is not None for c in conds)


def _entry_edges(slot: Slot, policy: Policy, kind: int,
                 accepts: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For requests of ``kind`` (1 charge, 2 discharge): the marks of R where a role may change,
    and per segment between them (``searchsorted(marks, R, "right")``) the band [low, high] of
    R within which a unit enters neither the requesters nor (with ``accepts``) the acceptors
    it is not yet."""
    minimum = policy.amount_min_wh
    accept_kind = "discharge" if kind == 1 else "charge"
    request_kind = "charge" if kind == 1 else "discharge"
    marks = _marks(slot, minimum)

    def role(r: int) -> tuple[bool, bool]:
        name = slot.status(r)
        if name is None:
            return False, False
        req = slot.request.get(name)
        acc = slot.accept.get(name, {}).get(accept_kind)
        asks = req is not None and req.type == request_kind and \
            _amount(req.type, req.limit_wh, r) > minimum
        gives = accepts and acc is not None and _amount(acc.type, acc.limit_wh, r) > minimum
        return asks, gives

    starts = [marks[0] - 1, *marks]  # an R inside each segment
    roles = [role(r) for r in starts]
    n = len(roles)
    lows, highs = np.full(n, -np.inf), np.full(n, np.inf)
    for k in range(n):
        up = next((t for t in range(k + 1, n) if _gains(roles[k], roles[t])), None)
        down = next((t for t in range(k - 1, -1, -1) if _gains(roles[k], roles[t])), None)
        if up is not None:
            highs[k] = marks[up - 1] - 1
        if down is not None:
            lows[k] = marks[down]
    return np.array(marks, dtype=np.float64), lows, highs


def _gains(now: tuple[bool, bool], then: tuple[bool, bool]) -> bool:
    return (then[0] and not now[0]) or (then[1] and not now[1])


def _marks(slot: Slot, minimum: int) -> list[int]:
    """Every R at which some role may change in this slot (sorted)."""
    marks: set[int] = set()
    for lo, hi, _ in slot.statuses:
        marks.update(x for x in (lo, hi) if x is not None)
    conds = list(slot.request.values()) + [c for a in slot.accept.values() for c in a.values()]
    for c in conds:  # charge: limit − R > min ⇔ R < limit − min; discharge: R > limit + min
        marks.add(c.limit_wh - minimum if c.type == "charge" else c.limit_wh + minimum + 1)
    return sorted(marks)
