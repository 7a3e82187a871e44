"""The apis controller's rules compiled, for headless runs (control/compiled_rules.py).

:class:`CompiledApis` takes a fresh :class:`~.apis.ApisController` (its scenario, policy, seed,
House-Keeping phases, Grid Master phase and random generator) and runs the same rules in
compiled code between the physics steps: the schedule hands it whole stretches of steps up to
the next sample or midnight.  It serves runs whose community and settings stay as they are
(headless); a served run, where units come and go and the mode and acceleration change, keeps
the Python controller.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..engine import Emulator
from ..engine.emulator import RAMP_SECONDS
from ..engine.kernel import unwatched
from ..engine.stepper import single_stiff_reference
from ..errors import InvalidValueError
from . import compiled_rules as cr
from .apis import ApisController, _entry_edges
from .base import END_REASONS, DealRecord
from .files import OPERATION_MODES, Policy, Scenario, Slot, _seconds

__all__ = ["CompiledApis", "compiles"]

_ADVANCE: Callable[..., int] = cr.advance  # numba types its arguments
#: Beyond this many units the negotiations' accept table (units² entries) is not worth it.
MAX_UNITS = 2000
_NO_LIMIT = 2**62
_TYPES = ("", "charge", "discharge")  # a deal's type by its code (TYPE: 1 charge, 2 discharge)


def compiles(controller: object, emulator: Emulator) -> bool:
    """Whether ``controller`` can run compiled on ``emulator`` from now on: a fresh apis
    controller, at most MAX_UNITS units, a grid with at most one stiff voltage reference."""
    if not isinstance(controller, ApisController) or controller._deals \
            or controller._negotiations or controller._pending_scale is not None:
        return False
    u = emulator.units
    return 0 < len(u) <= MAX_UNITS and bool(single_stiff_reference(u.mode, u.drg, u.dvg))


class CompiledApis:
    """apis-main's deal rules, compiled, stepping ``emulator`` (see the module docstring)."""

    name = "apis"

    def __init__(self, controller: ApisController, emulator: Emulator):
        if not compiles(controller, emulator):
            raise InvalidValueError("controller", controller.name,
                                    "a fresh apis controller on at most "
                                    f"{MAX_UNITS} units (the compiled rules)")
        self.reference = controller
        self.emulator = emulator
        self.ids: tuple[str, ...] = tuple(emulator.units.ids)
        controller._join(self.ids)
        self._stepping = emulator.stepping()
        st = self._stepping
        n = len(self.ids)
        self._engine = (st.dt, st.params, st.losses, st.ugv, st.load_kw, st.house, st.pv_gain,
                        st.energy, st.capacity, st.bypass, st.ac_charge, st.out, st.ledger,
                        st.mode, st.dvg, st.dig, st.drg, st.vg, st.ig, st.wg, st.dcdc_loss,
                        st.grid, unwatched(n))
        self._state = self._initial_state(controller, st.capacity)
        self._scenario = _scenario_arrays(controller.scenario, self.ids, controller.policy)
        self._policy, self._policy_int = _policy_vectors(controller)
        self._fin_room = self._state[9].shape[0] + 1  # every deal may end in one wake

    # ------------------------------------------------------------------ state
    def _initial_state(self, c: ApisController, capacity: np.ndarray) -> tuple[Any, ...]:
        ids, p = self.ids, c.policy
        n = len(ids)
        nominal = np.full(n, p.nominal_wh) if p.nominal_wh is not None else capacity.copy()
        member = np.array([p.member_unit_ids is None or u in p.member_unit_ids for u in ids])
        large = np.array([u in p.large_capacity_unit_ids for u in ids])
        rank = np.empty(n, dtype=np.int64)
        rank[np.argsort(np.array(ids, dtype=object), kind="stable")] = np.arange(n)
        floats = np.zeros(cr.N_F)
        floats[cr.GM_LAST], floats[cr.CLOCK] = c._gm_last, math.nan
        floats[cr.PROMISED], floats[cr.WOKEN_AT] = math.inf, math.nan
        ints = np.zeros(cr.N_I, dtype=np.int64)
        ints[cr.MASTER], ints[cr.VR], ints[cr.TABLE_VERSION] = -1, -1, -1
        ints[cr.TRIPPED], ints[cr.WATCH_TABLE], ints[cr.GM_VERSION] = 1, -1, -1
        deals = n * p.deal_capacity + 4
        open_per_unit = math.ceil(p.negotiation_s / p.house_keeping_s) + 1
        negotiations = n * open_per_unit + 1
        ints[cr.N_FREE] = negotiations  # every row of accepts free
        groups = np.zeros((4, cr.N_G), dtype=np.int64)
        groups[:, cr.G_TABLE] = -1  # none found yet
        return (nominal, member, np.zeros(n, dtype=np.int64),
                np.zeros((n, cr.N_TI), dtype=np.int64), np.zeros(n), floats, ints,
                np.array([c._phases[u] for u in ids]), np.full(n, -math.inf),
                np.zeros((deals, cr.N_DF)), np.zeros((deals, cr.N_DI), dtype=np.int64),
                np.zeros((negotiations, 2)), large,
                np.zeros((max(4 * deals, 1024), 5)),
                np.zeros((max(4 * deals, 1024), cr.N_DI), dtype=np.int64),
                np.zeros((negotiations, cr.N_NI), dtype=np.int64),
                np.full((negotiations, n), -1, dtype=np.int64), np.zeros((negotiations, n)),
                rank, np.arange(negotiations, dtype=np.int64), np.full(n, -math.inf),
                # the units with a chance; scratch rows (currents, totals, rsoc bands), modes
                np.zeros(n, dtype=np.int64), np.zeros((4, n)), np.zeros(n, dtype=np.int64),
                # a heap of the units with a chance: next House-Keeping tick [s], unit
                np.zeros(n), np.zeros(n, dtype=np.int64),
                # the accepts' best ranks per request kind and strategy (compiled_rules._groups)
                np.zeros((4, 2, n), dtype=np.int64), groups, np.zeros((4, 2, 2)))

    def _args(self) -> tuple[Any, ...]:
        return (self._engine, self._state, self._scenario, self._policy, self._policy_int,
                self.reference._rng)

    # ------------------------------------------------------------------ running
    def advance(self, n_steps: int) -> list[DealRecord]:
        """Wake and step ``n_steps`` steps; the deals that finished meanwhile."""
        em = self.emulator
        if tuple(em.units.ids) != self.ids or em.units.energy is not self._stepping.energy:
            raise InvalidValueError("units", len(em.units), "the units the compiled rules "
                                    "started with (add, remove, reset and load need the "
                                    "Python controller)")
        finished: list[DealRecord] = []
        left = int(n_steps)
        while left > 0:
            solar, load_j, load_f = em.sample_inputs(left)
            ran = int(_ADVANCE(em.step_index, left, solar, load_j, load_f, *self._args(),
                               self._fin_room))
            em.stepped(ran, self._stepping)
            left -= ran
            finished += self.take_finished()
        return finished

    def take_finished(self) -> list[DealRecord]:
        """Deals finished since the last call, oldest first."""
        ints, ff, fi = self._state[6], self._state[13], self._state[14]
        count = int(ints[cr.N_FIN])
        ints[cr.N_FIN] = 0
        # plain lists: a year has 10⁵–10⁶ deals, and numpy scalars cost per element
        return [self._record(t, k) for t, k in zip(ff[:count].tolist(), fi[:count].tolist(),
                                                    strict=True)]

    def take_day(self) -> dict[str, float]:
        """Shared energies [Wh] and deals since the last call (ticks up to now)."""
        shared_in, shared_out, deals = cr.take_day(self.emulator.emulated_s, self._state,
                                                   self._policy)
        return {"shared_in": float(shared_in), "shared_out": float(shared_out),
                "deals": float(deals)}

    def close(self) -> list[DealRecord]:
        """The last wake-up, then every deal ends at the last tick with reason run_end."""
        em = self.emulator
        cr.wake_now(em.emulated_s, (em.step_index - 1) * em.dt, em.dt, *self._args())
        done = self.take_finished()
        cr.close(em.emulated_s, self._state, self._policy)
        return done + self.take_finished()

    def _record(self, times: list[float], ints: list[int]) -> DealRecord:
        text, ids = self.reference._times.text, self.ids
        return DealRecord(
            f"D{ints[cr.NUMBER]:07d}", text(times[0]), text(times[1]), text(times[2]),
            text(times[3]), ids[ints[cr.REQUEST_UNIT]], _TYPES[ints[cr.TYPE]],
            ids[ints[cr.CHARGE]], ids[ints[cr.DISCHARGE]], ints[cr.REQUEST_WH],
            ints[cr.ACCEPT_WH], ints[cr.DEAL_WH], times[4], END_REASONS[ints[cr.REASON]])


# ---------------------------------------------------------------------- files as arrays
def _policy_vectors(c: ApisController) -> tuple[np.ndarray, np.ndarray]:
    p = c.policy
    floats = np.zeros(cr.N_P)
    floats[cr.HK_S], floats[cr.NEG_S], floats[cr.GM_S] = (c.house_keeping_s, c.negotiation_s,
                                                           c.main_loop_s)
    floats[cr.DEAL_CURRENT] = p.deal_grid_current_a
    floats[cr.SUM_MAX] = p.sum_of_deal_grid_current_max_a
    floats[cr.GRID_V], floats[cr.GRID_V_MAX] = p.grid_voltage_v, p.grid_voltage_max_v
    floats[cr.ALLOWANCE], floats[cr.RAMP_TIMEOUT_S] = (p.grid_voltage_allowance_v,
                                                        p.ramp_timeout_s)
    floats[cr.LOWER_RSOC], floats[cr.UPPER_RSOC] = (p.discharge_lower_rsoc,
                                                     p.charge_upper_rsoc)
    floats[cr.VR_SIDE_CHARGE] = p.voltage_reference_side == "chargeUnit"
    floats[cr.REF_SIDE_CHARGE] = p.reference_side == "chargeUnit"
    floats[cr.GRID_CURRENT_CAPACITY] = p.grid_current_capacity_a
    floats[cr.START_OF_DAY] = c._start_of_day
    floats[cr.RAMP_SECONDS] = RAMP_SECONDS
    ints = np.zeros(cr.N_PI, dtype=np.int64)
    ints[cr.AMOUNT_MIN], ints[cr.AMOUNT_MAX] = p.amount_min_wh, p.amount_max_wh
    ints[cr.AMOUNT_UNIT], ints[cr.DEAL_CAPACITY] = p.amount_unit_wh, p.deal_capacity
    ints[cr.OPERATION_MODE] = OPERATION_MODES.index(c.operation_mode)
    return floats, ints


def _unit(pair: str | None, ids: Sequence[str]) -> int:
    """A pairUnitId as a position: −1 none, −2 a unit that is not in the run."""
    if pair is None:
        return -1
    return ids.index(pair) if pair in ids else -2


def _scenario_arrays(scenario: Scenario, ids: Sequence[str], policy: Policy) -> tuple[Any, ...]:
    slots = scenario.slots
    n_slots, k_max = len(slots), max(len(s.statuses) for s in slots)
    start = np.array([_seconds(s.start) for s in slots])
    end = np.array([_seconds(s.end) for s in slots])
    nk = np.array([len(s.statuses) for s in slots], dtype=np.int64)
    lo = np.full((n_slots, k_max), -_NO_LIMIT, dtype=np.int64)
    hi = np.full((n_slots, k_max), _NO_LIMIT, dtype=np.int64)
    rq_type = np.zeros((n_slots, k_max), dtype=np.int64)
    rq_limit = np.zeros((n_slots, k_max), dtype=np.int64)
    rq_point = np.full((n_slots, k_max), np.nan)
    rq_pair = np.full((n_slots, k_max), -1, dtype=np.int64)
    ac_has = np.zeros((n_slots, k_max, 2), dtype=np.bool_)
    ac_limit = np.zeros((n_slots, k_max, 2), dtype=np.int64)
    ac_point = np.full((n_slots, k_max, 2), np.nan)
    ac_pair = np.full((n_slots, k_max, 2), -1, dtype=np.int64)
    for s, slot in enumerate(slots):
        for k, (low, high, name) in enumerate(slot.statuses):
            lo[s, k] = -_NO_LIMIT if low is None else low
            hi[s, k] = _NO_LIMIT if high is None else high
            req = slot.request.get(name)
            if req is not None:
                rq_type[s, k] = 1 if req.type == "charge" else 2
                rq_limit[s, k] = req.limit_wh
                rq_point[s, k] = np.nan if req.point_per_wh is None else req.point_per_wh
                rq_pair[s, k] = _unit(req.pair_unit_id, ids)
            for side, kind in enumerate(("charge", "discharge")):
                acc = slot.accept.get(name, {}).get(kind)
                if acc is not None:
                    ac_has[s, k, side] = True
                    ac_limit[s, k, side] = acc.limit_wh
                    ac_point[s, k, side] = np.nan if acc.point_per_wh is None \
                        else acc.point_per_wh
                    ac_pair[s, k, side] = _unit(acc.pair_unit_id, ids)
    pairs = np.array([bool((rq_pair[s] != -1).any() or (ac_pair[s] != -1).any())
                      for s in range(n_slots)])
    strategy = np.array([1 if s.strategy == "pointAndAmount" else 0 for s in slots],
                        dtype=np.int64)
    return (start, end, nk, lo, hi, rq_type, rq_limit, rq_point, rq_pair, ac_has, ac_limit,
            ac_point, ac_pair, pairs, strategy, *_edge_arrays(slots, policy))


def _edge_arrays(slots: Sequence[Slot], policy: Policy) -> tuple[np.ndarray, ...]:
    """Per slot and request kind, the marks of R and the bands between them within which a
    unit enters no role that could complete a pair (apis._entry_edges, accepts included)."""
    edges = [[_entry_edges(slot, policy, kind) for kind in (1, 2)] for slot in slots]
    width = max(len(m) for pair in edges for m, _, _ in pair)
    marks = np.full((len(slots), 2, max(width, 1)), np.inf)
    lows = np.full((len(slots), 2, width + 1), -np.inf)
    highs = np.full((len(slots), 2, width + 1), np.inf)
    counts = np.zeros((len(slots), 2), dtype=np.int64)
    for s, pair in enumerate(edges):
        for kind, (m, low, high) in enumerate(pair):
            counts[s, kind] = len(m)
            marks[s, kind, :len(m)], lows[s, kind, :len(low)], highs[s, kind, :len(high)] = \
                m, low, high
    return marks, counts, lows, highs
