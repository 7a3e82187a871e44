"""apis-main's deal rules compiled with numba, run between the physics steps of a headless run.

The rules are those of :class:`~.apis.ApisController` (shared/docs/apis-main-sharing.md), the
readable reference that the served run uses; this is the same sequence of decisions on arrays,
so that a year of sharing costs what the physics costs.  ``tests/test_sharing_compiled.py``
holds the two to the same deal log, byte for byte.  Per step: the controller wakes at the
step's time and runs, in time order, every event due since its last wake (negotiations that end,
House-Keeping ticks of units whose request would find an accept, the Grid Master tick that can
change something), commands the converters, then the physics advances one step.

State lives in arrays (column names below); deals and negotiations are kept in creation order.
Times are emulated seconds since the start of the run, energies [Wh], currents [A].
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..engine.kernel import energy_band, run_steps_until
from ..engine.stepper import apply_grid
from ..modes import Mode

# deal columns: floats (DF) and integers (DI); NaN times are "not yet"
(CREATED, ACTIVATED, STARTED, ENDED, CURRENT, BASE_T, BASE0, BASE1, BASE2, RATE0, RATE1, RATE2,
 BOOKED0, BOOKED1, END_TICK, CUM, DELIV, TAKEN) = range(18)
N_DF = 18
(NUMBER, REQUEST_UNIT, TYPE, CHARGE, DISCHARGE, REQUEST_WH, ACCEPT_WH, DEAL_WH, STATE,
 REASON) = range(10)
N_DI = 10
NEW, RAMPING, STARTED_STATE = 0, 1, 2
AMOUNT, FORCE_STOP, RAMP_TIMEOUT, DIRECTION, CAPACITY, RUN_END = range(6)  # END_REASONS order
# per-unit table (TI) of the rules' view: remaining Wh, gates, request and accept amounts
R, FREE, RTYPE, RAMOUNT, ACC_C, ACC_D, STATUS, CHANCE = range(8)
N_TI = 8
# controller scalars: floats (fv) and integers (iv)
GM_LAST, CLOCK, PROMISED, DAY_IN, DAY_OUT, DAY_DEALS, WOKEN_AT, GM_NEED, GM_BEST = range(9)
N_F = 9
(COUNT, MASTER, VR, PROCESSED_GM, VERSION, N_DEALS, N_NEGS, N_FIN, TABLE_VERSION, TABLE_SLOT,
 N_CHANCE, TRIPPED, WAKES, TABLES, BLOCKS, PHYSICS_STEPS, N_FREE, EVENTS, ASKS, CONCLUSIONS,
 GM_TICKS, WATCH_TABLE, SETTLES, GM_VERSION, GM_TABLE, GM_SETTLE, HEAP_N, NEG_HEAD) = range(28)
N_I = 28
#: counters of the work done (bench/sharing_year.py prints them)
COUNTERS = ("WAKES", "EVENTS", "ASKS", "CONCLUSIONS", "GM_TICKS", "TABLES", "BLOCKS",
            "PHYSICS_STEPS")
# Open negotiations are a ring in NF/NI from row iv[NEG_HEAD], iv[N_NEGS] long, by due time
# (asks come in time order): the first to end is at the head, and one ends without moving the
# others.  Columns: floats (NF: due, point) and integers (NI: requester, type, amount, pair,
# row of its accepts in NA/NP, a row the negotiation holds until it ends: no n-wide rows move;
# whether the row holds the chosen few (GROUPED) or every unit's accept)
N_NI = 6
GROUPED = 5
# the accepts' best ranks per table (request kind × strategy): counts of the best and the
# second-best group, the table they were found for, its slot, how many units accept at all
G_N1, G_N2, G_TABLE, G_SLOT, G_GIVING = range(5)
N_G = 5
# policy: floats (P) and integers (PI)
(HK_S, NEG_S, GM_S, DEAL_CURRENT, SUM_MAX, GRID_V, GRID_V_MAX, ALLOWANCE, RAMP_TIMEOUT_S,
 LOWER_RSOC, UPPER_RSOC, VR_SIDE_CHARGE, REF_SIDE_CHARGE, GRID_CURRENT_CAPACITY, START_OF_DAY,
 RAMP_SECONDS) = range(16)
N_P = 16
AMOUNT_MIN, AMOUNT_MAX, AMOUNT_UNIT, DEAL_CAPACITY, OPERATION_MODE = range(5)
N_PI = 5
AUTONOMOUS, HETERONOMOUS, STOP, MANUAL = range(4)  # files.OPERATION_MODES order

_WAIT, _DISCHARGE, _REFERENCE, _CHARGE = (int(Mode.WAIT), int(Mode.DISCHARGE),
                                          int(Mode.VOLTAGE_REFERENCE), int(Mode.CHARGE))
_EPS = 1e-9
_NONE = -1  # no pairUnitId
_BIG = 2**62


# ---------------------------------------------------------------------- the rules' view
@njit(cache=True)
def slot_at(elapsed, start_of_day, sl_start, sl_end):  # pragma: no cover - compiled
    """The scenario slot at ``elapsed`` (whole seconds of the day), or −1."""
    second = math.floor(start_of_day + elapsed + 1e-6) % 86400
    for s in range(sl_start.shape[0]):
        if sl_start[s] <= second < sl_end[s]:
            return s
    return -1


@njit(cache=True)
def _table(elapsed, E, C, S, P, PI):  # pragma: no cover - compiled
    """Fill the table TI (and rsoc) from the batteries, the deals and the slot now, and the
    engine's energy bands: within them no unit takes up a role that could complete a pair and
    no running deal passes an rsoc limit (a quiet step needs no wake-up while every unit stays
    in its band)."""
    energy, capacity = E[7], E[8]
    nominal, member, held, TI, rsoc = C[0], C[1], C[2], C[3], C[4]
    iv = C[6]
    sl_start, sl_end, nk, st_lo, st_hi, rq_type, rq_limit = S[0], S[1], S[2], S[3], S[4], \
        S[5], S[6]
    ac_has, ac_limit = S[9], S[10]
    s = slot_at(elapsed, P[START_OF_DAY], sl_start, sl_end)
    autonomous = PI[OPERATION_MODE] == AUTONOMOUS
    for i in range(energy.shape[0]):
        rsoc[i] = 100.0 * energy[i] / capacity[i]
        r = np.int64(math.floor(nominal[i] * rsoc[i] / 100.0))
        TI[i, R] = r
        TI[i, FREE] = 1 if (autonomous and member[i] and held[i] < PI[DEAL_CAPACITY]) else 0
        TI[i, RTYPE], TI[i, RAMOUNT], TI[i, ACC_C], TI[i, ACC_D] = 0, 0, -1, -1
        TI[i, STATUS], TI[i, CHANCE] = -1, 0
        if s < 0:
            continue
        for k in range(nk[s]):
            if st_lo[s, k] <= r < st_hi[s, k]:
                TI[i, STATUS] = k
                break
        k = TI[i, STATUS]
        if k < 0:
            continue
        if rq_type[s, k] == 1:
            TI[i, RTYPE], TI[i, RAMOUNT] = 1, rq_limit[s, k] - r
        elif rq_type[s, k] == 2:
            TI[i, RTYPE], TI[i, RAMOUNT] = 2, r - rq_limit[s, k]
        if ac_has[s, k, 0]:
            TI[i, ACC_C] = ac_limit[s, k, 0] - r
        if ac_has[s, k, 1]:
            TI[i, ACC_D] = r - ac_limit[s, k, 1]
    _chances(s, TI, S[8], S[9], S[11], S[12], S[13], PI)
    iv[TABLE_VERSION] = iv[VERSION]
    iv[TABLES] += 1
    iv[TABLE_SLOT] = s
    chance = C[21]  # the units with a chance, in id order
    iv[N_CHANCE] = 0
    for i in range(energy.shape[0]):
        if TI[i, CHANCE]:
            chance[iv[N_CHANCE]] = i
            iv[N_CHANCE] += 1
    _heap_build(C[5], iv, C[24], C[25], C[20], C[7], C[8], chance, P[HK_S])


@njit(cache=True)
def _watch(s, watch, capacity, nominal, TI, iv, DI, soc_lo, soc_hi, marks, n_marks, lows,
           highs, P):  # pragma: no cover - compiled
    """The engine's energy band per unit (kernel.energy_band): for a free unit the R within
    which it enters no role that could complete a pair (ApisController._watch_pair, with no
    pair now); the rsoc within which no running deal must be forced to stop."""
    n = TI.shape[0]
    soc_lo[:], soc_hi[:] = -np.inf, np.inf
    for d in range(iv[N_DEALS]):
        if DI[d, STATE] == STARTED_STATE:
            soc_lo[DI[d, DISCHARGE]] = P[LOWER_RSOC]
            soc_hi[DI[d, CHARGE]] = P[UPPER_RSOC]
    for i in range(n):
        r_lo, r_hi = -np.inf, np.inf
        if s >= 0 and TI[i, FREE]:
            r = TI[i, R]
            for kind in range(2):
                segment = 0  # searchsorted(marks, R, "right")
                while segment < n_marks[s, kind] and marks[s, kind, segment] <= r:
                    segment += 1
                r_lo = max(r_lo, lows[s, kind, segment])
                r_hi = min(r_hi, highs[s, kind, segment])
        watch[i, 0], watch[i, 1] = energy_band(nominal[i], r_lo, r_hi, soc_lo[i], soc_hi[i],
                                               capacity[i])


@njit(cache=True)
def _chances(s, TI, rq_pair, ac_has, ac_point, ac_pair, has_pairs,
             PI):  # pragma: no cover - compiled
    """TI[:, CHANCE]: a unit whose request would find at least one accept now."""
    n = TI.shape[0]
    minimum = max(PI[AMOUNT_MIN], 0)
    for kind in (1, 2):
        column = ACC_D if kind == 1 else ACC_C
        giving = 0
        for j in range(n):
            if TI[j, FREE] and TI[j, column] > PI[AMOUNT_MIN]:
                giving += 1
        for i in range(n):
            if not (TI[i, FREE] and TI[i, RTYPE] == kind and TI[i, RAMOUNT] > minimum):
                continue
            if has_pairs[s]:  # the slot names partners: look at each accept
                TI[i, CHANCE] = 1 if _accepts(i, s, TI, rq_pair, ac_has, ac_point, ac_pair,
                                              PI[AMOUNT_MIN], None, None) > 0 else 0
            else:
                self_gives = 1 if (TI[i, FREE] and TI[i, column] > PI[AMOUNT_MIN]) else 0
                TI[i, CHANCE] = 1 if giving - self_gives > 0 else 0


@njit(cache=True)
def _accepts(i, s, TI, rq_pair, ac_has, ac_point, ac_pair, amount_min, amounts,
             points):  # pragma: no cover - compiled
    """Every accept the others send to the request of unit ``i`` (into ``amounts`` and
    ``points`` by unit when given, −1 elsewhere); how many.  The arrays one by one, not the
    state tuples: numba counts a reference to every array of a tuple at each call."""
    kind = TI[i, RTYPE]
    column = ACC_D if kind == 1 else ACC_C
    side = 1 if kind == 1 else 0  # the accept's type: discharge for a charge request
    pair = rq_pair[s, TI[i, STATUS]]
    found = 0
    for j in range(TI.shape[0]):
        if amounts is not None:
            amounts[j] = -1
        if j == i or not TI[j, FREE] or TI[j, column] <= amount_min:
            continue
        if pair != _NONE and pair != j:
            continue
        k = TI[j, STATUS]
        if k < 0 or not ac_has[s, k, side] or (ac_pair[s, k, side] != _NONE
                                               and ac_pair[s, k, side] != i):
            continue
        found += 1
        if amounts is not None:
            amounts[j] = TI[j, column]
            points[j] = ac_point[s, k, side]
    return found


@njit(cache=True)
def _stale(iv):  # pragma: no cover - compiled
    """Whether the deals changed since the table was made (call ``_table`` then; a check
    apart, so that the table's many arguments pass only when it must be made)."""
    return iv[TABLE_VERSION] != iv[VERSION]


# ---------------------------------------------------------------------- timing
@njit(cache=True)
def _next_hk(i, since, ticks, phases, hk_done, period):  # pragma: no cover - compiled
    """Unit i's first House-Keeping tick at or after ``since`` it has not had yet, kept in
    ``ticks`` (C[20]) while it lies ahead: the clock only moves on, and only the unit's own
    tick moves it."""
    if ticks[i] < since:
        ticks[i] = _hk_tick(phases[i], hk_done[i], since, period)
    return ticks[i]


@njit(cache=True)
def _hk_tick(phase, done, since, period):  # pragma: no cover - compiled
    """The first House-Keeping tick at or after ``since`` of a unit whose loop has ``phase``
    (a fraction of the period) and whose last tick was at ``done``: not that one again."""
    start = phase * period
    after = max(since, done + period / 2)
    return start + math.ceil((after - start) / period - _EPS) * period


@njit(cache=True)
def _heap_build(fv, iv, keys, units, ticks, phases, hk_done, chance,
                period):  # pragma: no cover - compiled
    """The units with a chance as a min-heap of (next House-Keeping tick, unit) in C[24],
    C[25]: the next asking unit in O(log N) per event instead of a scan of them all."""
    since = fv[CLOCK]
    n = iv[N_CHANCE]
    for c in range(n):
        i = chance[c]
        if ticks[i] < since:  # as _next_hk (which would count references to 3 arrays)
            ticks[i] = _hk_tick(phases[i], hk_done[i], since, period)
        units[c], keys[c] = i, ticks[i]
    iv[HEAP_N] = n
    _sift_down(n // 2 - 1, keys, units, n)


@njit(cache=True)
def _sift_down(top, keys, units, n):  # pragma: no cover - compiled
    """Restore heap order below positions top, top − 1, …, 0 in turn (0 alone: the root
    changed; n // 2 − 1: the whole heap, bottom-up, in one call where a call per node would
    count references); equal ticks in id order (the scan's order)."""
    for start in range(top, -1, -1):
        k = start
        while True:
            child = 2 * k + 1
            if child >= n:
                break
            if child + 1 < n and (keys[child + 1] < keys[child] or (
                    keys[child + 1] == keys[child] and units[child + 1] < units[child])):
                child += 1
            if not (keys[child] < keys[k] or (keys[child] == keys[k] and
                                              units[child] < units[k])):
                break
            keys[k], keys[child] = keys[child], keys[k]
            units[k], units[child] = units[child], units[k]
            k = child


@njit(cache=True, inline="always")  # per event: arrays one by one (see _accepts)
def _next_ask(fv, iv, keys, units, ticks, phases, hk_done, period):  # pragma: no cover
    """(tick, unit): the first House-Keeping tick of a unit with a chance, (inf, −1) none.
    A top the clock has passed takes its unit's next tick (as _next_hk does)."""
    n = iv[HEAP_N]
    if n == 0:
        return np.inf, -1
    while keys[0] < fv[CLOCK]:
        keys[0] = _next_hk(units[0], fv[CLOCK], ticks, phases, hk_done, period)
        _sift_down(0, keys, units, n)
    return keys[0], units[0]


@njit(cache=True, inline="always")  # per event and step: no call that counts references
def _next_gm(fv, iv, DF, DI, TF, P, PI):  # pragma: no cover - compiled
    """The first Grid Master tick that can change something (C[5], C[6], C[9], C[10], C[4]).
    What the deals allow is found again only when the deals, the table (rsoc) or the
    rates changed."""
    first = _gm_first(fv[GM_LAST], fv[CLOCK], P[GM_S])
    if iv[GM_VERSION] != iv[VERSION] or iv[GM_TABLE] != iv[TABLES] or \
            iv[GM_SETTLE] != iv[SETTLES]:
        fv[GM_NEED], fv[GM_BEST] = _gm_scan(iv, DF, DI, TF, P, PI)
        iv[GM_VERSION], iv[GM_TABLE], iv[GM_SETTLE] = iv[VERSION], iv[TABLES], iv[SETTLES]
    return first if fv[GM_NEED] else fv[GM_BEST]


@njit(cache=True)
def _gm_first(gm_last, clock, period):  # pragma: no cover - compiled
    """The first Grid Master tick after ``gm_last`` not before the clock (ticks skipped while
    nothing could happen)."""
    first = gm_last + period
    if first < clock - _EPS:
        first = gm_last + math.ceil((clock - gm_last) / period - _EPS) * period
    return first


@njit(cache=True)
def _gm_scan(iv, DF, DI, TF, P, PI):  # pragma: no cover - compiled
    """(1 when the next tick can change something, else 0; the first tick a deal's amount is
    passed at)."""
    n = iv[N_DEALS]
    for d in range(n):
        if DI[d, STATE] != STARTED_STATE:
            return 1.0, np.inf
    if n > 0 and (PI[OPERATION_MODE] == STOP or PI[OPERATION_MODE] == MANUAL):
        return 1.0, np.inf
    best = np.inf
    for d in range(n):
        if TF[DI[d, DISCHARGE]] < P[LOWER_RSOC] or TF[DI[d, CHARGE]] > P[UPPER_RSOC]:
            return 1.0, np.inf
        best = min(best, DF[d, END_TICK])
    return 0.0, best


@njit(cache=True)
def _earliest(C, P, PI):  # pragma: no cover - compiled
    """The plan's wake-up: the next negotiation end, Grid Master or House-Keeping tick."""
    iv, NF = C[6], C[11]
    best = NF[iv[NEG_HEAD], 0] if iv[N_NEGS] > 0 else np.inf  # the ring's first
    best = min(best, _next_gm(C[5], C[6], C[9], C[10], C[4], P, PI))
    return min(best, _next_ask(C[5], iv, C[24], C[25], C[20], C[7], C[8], P[HK_S])[0])


@njit(cache=True)
def _last_tick_at(t, C, P):  # pragma: no cover - compiled
    fv = C[5]
    period = P[GM_S]
    k = math.floor((t - fv[GM_LAST]) / period + _EPS)
    return fv[GM_LAST] + max(k, 0) * period


# ---------------------------------------------------------------------- deals
@njit(cache=True)
def _row(number, DI, iv):  # pragma: no cover - compiled
    """The row of deal ``number``, or −1: rows are in creation order, numbers ascending."""
    lo, hi = 0, iv[N_DEALS]
    while lo < hi:
        mid = (lo + hi) // 2
        if DI[mid, NUMBER] < number:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < iv[N_DEALS] and DI[lo, NUMBER] == number else -1


@njit(cache=True)
def _energy_at(d, t, DF):  # pragma: no cover - compiled
    """(counted, delivered, taken) of deal row d by the tick at t."""
    if np.isnan(DF[d, STARTED]) or t < DF[d, BASE_T]:
        return DF[d, CUM], DF[d, DELIV], DF[d, TAKEN]
    span = (t - DF[d, BASE_T]) / 3600.0
    return (DF[d, BASE0] + DF[d, RATE0] * span, DF[d, BASE1] + DF[d, RATE1] * span,
            DF[d, BASE2] + DF[d, RATE2] * span)


@njit(cache=True)
def _integrate(d, t, DF):  # pragma: no cover - compiled
    DF[d, CUM], DF[d, DELIV], DF[d, TAKEN] = _energy_at(d, t, DF)


@njit(cache=True)
def _book(d, delivered, taken, C):  # pragma: no cover - compiled
    fv, DF = C[5], C[9]
    fv[DAY_IN] += delivered - DF[d, BOOKED0]
    fv[DAY_OUT] += taken - DF[d, BOOKED1]
    DF[d, BOOKED0], DF[d, BOOKED1] = delivered, taken


@njit(cache=True)
def _hold(d, by, held, DI, iv):  # pragma: no cover - compiled
    held[DI[d, CHARGE]] += by
    held[DI[d, DISCHARGE]] += by
    iv[VERSION] += 1


@njit(cache=True)
def _end(d, tick, reason, C, P):  # pragma: no cover - compiled
    """Stop, record and dispose of deal row d; the voltage reference follows."""
    iv, DF, DI, FF, FI = C[6], C[9], C[10], C[13], C[14]
    DF[d, ENDED] = tick
    DI[d, REASON] = reason
    _hold(d, -1, C[2], DI, iv)
    _book(d, DF[d, DELIV], DF[d, TAKEN], C)
    f = iv[N_FIN]
    FF[f, 0], FF[f, 1], FF[f, 2], FF[f, 3], FF[f, 4] = (DF[d, CREATED], DF[d, ACTIVATED],
                                                       DF[d, STARTED], tick, DF[d, CUM])
    FI[f, :] = DI[d, :]
    iv[N_FIN] = f + 1
    was_master = DI[d, NUMBER] == iv[MASTER]
    n = iv[N_DEALS]
    for e in range(d, n - 1):  # keep creation order
        DF[e, :] = DF[e + 1, :]
        DI[e, :] = DI[e + 1, :]
    iv[N_DEALS] = n - 1
    activated = 0
    for e in range(n - 1):
        if DI[e, STATE] != NEW:
            activated += 1
    if was_master or activated == 0:
        _new_master(C, P)


@njit(cache=True)
def _master_side(d, C, P):  # pragma: no cover - compiled
    large, DI = C[12], C[10]
    if large[DI[d, DISCHARGE]] and not large[DI[d, CHARGE]]:
        return DI[d, DISCHARGE]
    return DI[d, CHARGE] if P[VR_SIDE_CHARGE] else DI[d, DISCHARGE]


@njit(cache=True)
def _new_master(C, P):  # pragma: no cover - compiled
    """Newest deal with the voltage reference, else with a large-capacity unit, else the
    newest; none: the reference goes to WAIT."""
    iv, DI, large = C[6], C[10], C[12]
    order = _newest_first(C)
    if order.shape[0] == 0:
        iv[MASTER], iv[VR] = -1, -1
        return
    pick = -1
    for d in order:
        if iv[VR] >= 0 and (DI[d, CHARGE] == iv[VR] or DI[d, DISCHARGE] == iv[VR]):
            pick = d
            break
    if pick < 0:
        for d in order:
            if large[DI[d, CHARGE]] or large[DI[d, DISCHARGE]]:
                pick = d
                break
    if pick < 0:
        pick = order[0]
    iv[MASTER] = DI[pick, NUMBER]
    if not (DI[pick, CHARGE] == iv[VR] or DI[pick, DISCHARGE] == iv[VR]):
        iv[VR] = _master_side(pick, C, P)


@njit(cache=True)
def _newest_first(C):  # pragma: no cover - compiled
    """Rows of activated deals by creation time, newest first; equal times in list order
    (a stable descending sort)."""
    iv, DF, DI = C[6], C[9], C[10]
    rows = [d for d in range(iv[N_DEALS]) if DI[d, STATE] != NEW]
    out = np.empty(len(rows), dtype=np.int64)
    k, end = 0, len(rows)
    while end > 0:
        start = end - 1
        while start > 0 and DF[rows[start - 1], CREATED] == DF[rows[end - 1], CREATED]:
            start -= 1
        for e in range(start, end):
            out[k] = rows[e]
            k += 1
        end = start
    return out


@njit(cache=True)
def _start(d, tick, C):  # pragma: no cover - compiled
    fv, iv, DF, DI = C[5], C[6], C[9], C[10]
    DF[d, STARTED] = tick
    DI[d, STATE] = STARTED_STATE
    iv[VERSION] += 1
    fv[DAY_DEALS] += 1.0  # a deal counts on the day its current starts to flow
    DF[d, CUM] = DF[d, DELIV] = DF[d, TAKEN] = 0.0
    DF[d, BASE_T] = tick
    DF[d, BASE0] = DF[d, BASE1] = DF[d, BASE2] = 0.0
    DF[d, RATE0] = DF[d, RATE1] = DF[d, RATE2] = 0.0


# ---------------------------------------------------------------------- negotiation
# The functions run per event take the arrays they use one by one: numba counts a reference
# to every array of a state tuple at each call (≈ 70 for E, C and S), a third of the time.
@njit(cache=True)
def _keep_order(m, iv, NF, NI):  # pragma: no cover - compiled
    """The ring stays in order of due time when the negotiation just put at its end (row m)
    ends before the one ahead of it (it never does while the clock only moves on)."""
    cap = NF.shape[0]
    while m != iv[NEG_HEAD]:
        ahead = (m - 1) % cap
        if NF[ahead, 0] <= NF[m, 0]:
            return
        _swap_rows(m, ahead, NF, NI)
        m = ahead


@njit(cache=True)
def _swap_rows(a, b, NF, NI):  # pragma: no cover - compiled
    for c in range(NF.shape[1]):
        NF[a, c], NF[b, c] = NF[b, c], NF[a, c]
    for c in range(NI.shape[1]):
        NI[a, c], NI[b, c] = NI[b, c], NI[a, c]


@njit(cache=True)
def _offers(i, s, strategy, point, TI, ac_has, ac_point, iv, GU, GI, GF, units, amounts,
            amount_min):  # pragma: no cover - compiled
    """The accepts unit i's request gets in a slot that names no partners, reduced to what
    the requester's choice (_choose) can pick: how many units accept (0: no negotiation),
    and into ``units``/``amounts`` the count and the units of the best rank with their
    amounts (none when the price rules them out).  The ranks of the table are found once
    (_groups); a request costs the length of its tie, not a scan of every unit."""
    kind = TI[i, RTYPE]
    q = (kind - 1) * 2 + strategy
    if GI[q, G_TABLE] != iv[TABLES] or GI[q, G_SLOT] != s:
        _groups(q, kind, strategy, s, TI, ac_has, ac_point, amount_min, GU, GI, GF)
        GI[q, G_TABLE] = iv[TABLES]
    column, side = (ACC_D, 1) if kind == 1 else (ACC_C, 0)
    k = TI[i, STATUS]
    gives = TI[i, FREE] and TI[i, column] > amount_min and k >= 0 and ac_has[s, k, side]
    found = GI[q, G_GIVING] - (1 if gives else 0)
    units[0] = 0
    if found == 0 or (strategy == 1 and np.isnan(point)):
        return found  # (no price: apis-main fails to unbox it, the negotiation ends empty)
    g, skip = 0, -1
    for c in range(GI[q, G_N1]):
        if GU[q, 0, c] == i:
            skip = i
    if skip >= 0 and GI[q, G_N1] == 1:
        g, skip = 1, -1  # the requester alone has the best rank: the next one
    count = GI[q, G_N1] if g == 0 else GI[q, G_N2]
    if strategy == 1:
        p = -GF[q, g, 0] if kind == 1 else GF[q, g, 0]
        if count == 0 or (kind == 1 and p > point) or (kind != 1 and p < point):
            return found  # the best price is beyond the limit: so is every other
    for c in range(count):
        j = GU[q, g, c]
        if j != skip:
            units[0] += 1
            units[units[0]], amounts[units[0]] = j, TI[j, column]
    return found


@njit(cache=True)
def _groups(q, kind, strategy, s, TI, ac_has, ac_point, amount_min, GU, GI,
            GF):  # pragma: no cover - compiled
    """The units that accept a request of ``kind`` in slot s, by the rank of _key (without
    the requester's price, which only cuts ranks off): the best and the second-best rank
    and who holds each, in unit order; how many accept."""
    column, side = (ACC_D, 1) if kind == 1 else (ACC_C, 0)
    n1 = n2 = giving = 0
    b1 = b2 = c1 = c2 = 0.0
    for j in range(TI.shape[0]):
        k = TI[j, STATUS]
        if not TI[j, FREE] or TI[j, column] <= amount_min or k < 0 or not ac_has[s, k, side]:
            continue
        giving += 1
        ok, k1, k2 = _key(TI[j, column], ac_point[s, k, side], j, _NONE, strategy, kind == 1,
                          np.nan)
        if not ok:
            continue
        if n1 == 0 or k1 > b1 or (k1 == b1 and k2 > b2):  # a new best: the old one is next
            for c in range(n1):
                GU[q, 1, c] = GU[q, 0, c]
            n2, c1, c2 = n1, b1, b2
            GU[q, 0, 0], n1, b1, b2 = j, 1, k1, k2
        elif k1 == b1 and k2 == b2:
            GU[q, 0, n1] = j
            n1 += 1
        elif n2 == 0 or k1 > c1 or (k1 == c1 and k2 > c2):
            GU[q, 1, 0], n2, c1, c2 = j, 1, k1, k2
        elif k1 == c1 and k2 == c2:
            GU[q, 1, n2] = j
            n2 += 1
    GI[q, G_N1], GI[q, G_N2], GI[q, G_SLOT], GI[q, G_GIVING] = n1, n2, s, giving
    GF[q, 0, 0], GF[q, 0, 1], GF[q, 1, 0], GF[q, 1, 1] = b1, b2, c1, c2


@njit(cache=True, inline="always")
def _ask(i, tick, elapsed, hk_done, ticks, iv, TI, NF, NI, NA, NP, free, sl_start, sl_end,
         rq_type, rq_point, rq_pair, ac_has, ac_point, ac_pair, has_pairs, strategies, GU, GI,
         GF, P, PI):  # pragma: no cover - compiled
    """House-Keeping of unit i: its request goes out with every accept it gets now."""
    hk_done[i] = tick
    iv[ASKS] += 1
    ticks[i] = -np.inf  # its next tick is found anew
    s = slot_at(elapsed, P[START_OF_DAY], sl_start, sl_end)
    if s < 0 or TI[i, STATUS] < 0 or rq_type[s, TI[i, STATUS]] == 0:
        return
    if iv[N_NEGS] >= NA.shape[0]:
        raise ValueError("more open negotiations than the compiled rules hold")
    m = (iv[NEG_HEAD] + iv[N_NEGS]) % NF.shape[0]  # the ring's end
    row = free[iv[N_FREE] - 1]  # a free row of accepts
    point = rq_point[s, TI[i, STATUS]]
    grouped = not has_pairs[s]
    if grouped:  # the choice is the best rank's: known now, drawn among ties at the end
        ends = slot_at(tick + P[NEG_S], P[START_OF_DAY], sl_start, sl_end)
        strategy = strategies[ends] if ends >= 0 else 0
        if _offers(i, s, strategy, point, TI, ac_has, ac_point, iv, GU, GI, GF, NA[row],
                   NP[row], PI[AMOUNT_MIN]) == 0:
            return
    elif _accepts(i, s, TI, rq_pair, ac_has, ac_point, ac_pair, PI[AMOUNT_MIN], NA[row],
                  NP[row]) == 0:
        return
    iv[N_FREE] -= 1
    NI[m, 4], NI[m, GROUPED] = row, grouped
    NF[m, 0], NF[m, 1] = tick + P[NEG_S], point
    NI[m, 0], NI[m, 1], NI[m, 2] = i, TI[i, RTYPE], TI[i, RAMOUNT]
    NI[m, 3] = rq_pair[s, TI[i, STATUS]]
    iv[N_NEGS] += 1
    _keep_order(m, iv, NF, NI)


@njit(cache=True, inline="always")
def _conclude(m, held, TI, iv, NF, NI, NA, NP, DF, DI, sl_start, sl_end, strategies, P, PI,
              rng):  # pragma: no cover - compiled
    """The requester chooses among its accepts; a deal if both are under their interlock
    (on a table made after the last change of the deals)."""
    requester = NI[m, 0]
    if not TI[requester, FREE]:
        return
    row = NI[m, 4]
    if NI[m, GROUPED]:
        ties = NA[row, 0]
        if ties == 0:
            return
        pick = 0 if ties == 1 else rng.integers(0, ties)  # as _choose draws among ties
        other, accepted = NA[row, 1 + pick], np.int64(NP[row, 1 + pick])
    else:
        s = slot_at(NF[m, 0], P[START_OF_DAY], sl_start, sl_end)
        strategy = strategies[s] if s >= 0 else 0
        other = _choose(m, strategy, NF, NI, NA, NP, rng)
        if other < 0:
            return
        accepted = NA[row, other]
    amount = min(NI[m, 2], accepted, PI[AMOUNT_MAX])
    amount = (amount // PI[AMOUNT_UNIT]) * PI[AMOUNT_UNIT]
    if amount < PI[AMOUNT_MIN]:
        amount = 0
    if amount <= 0 or held[requester] >= PI[DEAL_CAPACITY] or \
            held[other] >= PI[DEAL_CAPACITY]:
        return  # dropped silently (no retry)
    charge, discharge = (requester, other) if NI[m, 1] == 1 else (other, requester)
    iv[COUNT] += 1
    d = iv[N_DEALS]
    DF[d, :] = 0.0
    DF[d, CREATED], DF[d, ACTIVATED], DF[d, STARTED], DF[d, ENDED] = NF[m, 0], np.nan, \
        np.nan, np.nan
    DF[d, CURRENT], DF[d, END_TICK] = P[DEAL_CURRENT], np.inf
    DI[d, NUMBER], DI[d, REQUEST_UNIT], DI[d, TYPE] = iv[COUNT], requester, NI[m, 1]
    DI[d, CHARGE], DI[d, DISCHARGE], DI[d, REQUEST_WH] = charge, discharge, NI[m, 2]
    DI[d, ACCEPT_WH], DI[d, DEAL_WH], DI[d, STATE], DI[d, REASON] = accepted, amount, NEW, -1
    iv[N_DEALS] = d + 1
    _hold(d, 1, held, DI, iv)


@njit(cache=True, inline="always")
def _choose(m, strategy, NF, NI, NA, NP, rng):  # pragma: no cover - compiled
    """The accept the requester picks (amount, or pointAndAmount); ties by the seed."""
    row, pair, charge, point = NI[m, 4], NI[m, 3], NI[m, 1] == 1, NF[m, 1]
    if strategy == 1 and np.isnan(point):
        return -1  # apis-main would fail unboxing a missing price: no deal
    best, b1, b2, ties = -1, 0.0, 0.0, 0
    for j in range(NA.shape[1]):
        ok, k1, k2 = _key(NA[row, j], NP[row, j], j, pair, strategy, charge, point)
        if not ok:
            continue
        if best < 0 or k1 > b1 or (k1 == b1 and k2 > b2):
            best, b1, b2, ties = j, k1, k2, 1
        elif k1 == b1 and k2 == b2:
            ties += 1
    if ties <= 1:
        return best
    pick = rng.integers(0, ties)  # arrival order on the event bus: the seed stands in for it
    for j in range(NA.shape[1]):
        ok, k1, k2 = _key(NA[row, j], NP[row, j], j, pair, strategy, charge, point)
        if ok and k1 == b1 and k2 == b2:
            if pick == 0:
                return j
            pick -= 1
    return best


@njit(cache=True)
def _key(amount, p, j, pair, strategy, charge, point):  # pragma: no cover - compiled
    """Whether the requester may pick unit j's accept of ``amount`` [Wh] at price ``p``, and
    the accept's rank (larger first): (−p for a charge request, p otherwise; amount), or
    (amount, 0).  Scalars only: a call per unit must not count references to arrays."""
    if amount < 0 or (pair != _NONE and j != pair):
        return False, 0.0, 0.0
    if strategy != 1:
        return amount > 0, float(amount), 0.0
    if np.isnan(p) or (charge and p > point) or (not charge and p < point):
        return False, 0.0, 0.0
    return True, (-p if charge else p), float(amount)


# ---------------------------------------------------------------------- Grid Master
@njit(cache=True)
def _gm_tick(due, vg_max, C, P, PI):  # pragma: no cover - compiled
    """One Grid Master main loop at the tick of ``due``."""
    fv, iv, DF, DI = C[5], C[6], C[9], C[10]
    period = P[GM_S]
    tick = fv[GM_LAST] + max(1.0, np.rint((due - fv[GM_LAST]) / period)) * period
    fv[GM_LAST] = tick
    iv[PROCESSED_GM] = 1
    iv[GM_TICKS] += 1
    for d in range(iv[N_DEALS]):
        if DI[d, STATE] == STARTED_STATE:
            _integrate(d, tick, DF)
    if PI[OPERATION_MODE] == STOP or PI[OPERATION_MODE] == MANUAL:
        while iv[N_DEALS] > 0:  # a global error in apis-main: every deal is scrammed
            _end(0, tick, FORCE_STOP, C, P)
    # the running master deal is processed last (DealExecution's order)
    master = -1
    others = []
    for d in range(iv[N_DEALS]):
        if DI[d, STATE] == STARTED_STATE:
            if DI[d, NUMBER] == iv[MASTER]:
                master = DI[d, NUMBER]
            else:
                others.append(DI[d, NUMBER])
    for number in others:
        d = _row(number, DI, iv)  # most deals go on: test before a call that carries C
        if d >= 0 and _cumulation_end(DI[d, DEAL_WH], DF[d, CUM], C[4][DI[d, DISCHARGE]],
                                      C[4][DI[d, CHARGE]], P[LOWER_RSOC],
                                      P[UPPER_RSOC]) >= 0:
            _cumulation(number, tick, C, P)
    activated = [DI[d, NUMBER] for d in range(iv[N_DEALS]) if DI[d, STATE] != NEW]
    for number in activated:
        d = _row(number, C[10], C[6])
        if d >= 0 and DI[d, STATE] == RAMPING:
            _ramping(d, tick, vg_max, C, P)
    fresh = [DI[d, NUMBER] for d in range(iv[N_DEALS]) if DI[d, STATE] == NEW]
    for number in fresh:
        d = _row(number, C[10], C[6])
        if d >= 0:
            _activation(d, tick, C, P)
    if master >= 0:
        _cumulation(master, tick, C, P)


@njit(cache=True)
def _cumulation(number, tick, C, P):  # pragma: no cover - compiled
    """End a deal whose energy passed its amount; abort it past the rsoc limits."""
    DF, DI, TF = C[9], C[10], C[4]
    d = _row(number, C[10], C[6])
    if d < 0:
        return
    reason = _cumulation_end(DI[d, DEAL_WH], DF[d, CUM], TF[DI[d, DISCHARGE]],
                             TF[DI[d, CHARGE]], P[LOWER_RSOC], P[UPPER_RSOC])
    if reason >= 0:
        _end(d, tick, reason, C, P)


@njit(cache=True)
def _cumulation_end(deal_wh, cumulated, rsoc_out, rsoc_in, lower, upper):  # pragma: no cover
    """Why a running deal ends at a Grid Master tick (AMOUNT, FORCE_STOP), or −1."""
    if deal_wh < cumulated:
        return AMOUNT
    if rsoc_out < lower or rsoc_in > upper:
        return FORCE_STOP
    return -1


@njit(cache=True)
def _ramping(d, tick, vg_max, C, P):  # pragma: no cover - compiled
    """The first deal waits for the grid: vg >= dvg − allowance, or it times out."""
    DF = C[9]
    if vg_max >= P[GRID_V] - P[ALLOWANCE]:
        _start(d, tick, C)
        return
    activated = DF[d, ACTIVATED] if DF[d, ACTIVATED] != 0.0 else tick  # (activated or tick)
    if tick - activated >= P[RAMP_TIMEOUT_S]:
        _end(d, tick, RAMP_TIMEOUT, C, P)


@njit(cache=True)
def _activation(d, tick, C, P):  # pragma: no cover - compiled
    """Validate (direction, total current), then start at once or ramp up as the first."""
    iv, DF, DI, large = C[6], C[9], C[10], C[12]
    total = 0.0
    active = 0
    started = 0
    for x in range(iv[N_DEALS]):
        if x == d or DI[x, STATE] == NEW:
            continue
        if DI[x, CHARGE] == DI[d, DISCHARGE] or DI[x, DISCHARGE] == DI[d, CHARGE]:
            _end(d, tick, DIRECTION, C, P)
            return
    for x in range(iv[N_DEALS]):
        if x == d or DI[x, STATE] == NEW:
            continue
        total += DF[x, CURRENT]
        active += 1
        if DI[x, STATE] == STARTED_STATE:
            started += 1
    if total + DF[d, CURRENT] > P[SUM_MAX] + 1e-12:
        _end(d, tick, CAPACITY, C, P)
        return
    if active == 0:
        DF[d, ACTIVATED] = tick
        DI[d, STATE] = RAMPING
        iv[VERSION] += 1
        iv[MASTER] = DI[d, NUMBER]
        iv[VR] = _master_side(d, C, P)
        return
    if started == 0:
        return  # later deals wait until the first one has started
    DF[d, ACTIVATED] = tick
    vr_large = iv[VR] >= 0 and large[iv[VR]]
    if not vr_large and (large[DI[d, CHARGE]] or large[DI[d, DISCHARGE]]):
        iv[VR] = DI[d, CHARGE] if large[DI[d, CHARGE]] else DI[d, DISCHARGE]
        iv[MASTER] = DI[d, NUMBER]
    _start(d, tick, C)


# ---------------------------------------------------------------------- waking
@njit(cache=True)
def _wake(elapsed, E, C, S, P, PI, rng):  # pragma: no cover - compiled
    """Run every event due by ``elapsed`` in time order (as ApisController.wake).  The state's
    arrays are taken out of their tuples once here (see the note on negotiation)."""
    held, TI, TF, fv, iv, DF, DI, NF, NI = C[2], C[3], C[4], C[5], C[6], C[9], C[10], C[11], \
        C[15]
    NA, NP, rank, free, ticks, keys, units = C[16], C[17], C[18], C[19], C[20], C[24], C[25]
    phases, hk_done, hk_s = C[7], C[8], P[HK_S]
    sl_start, sl_end, rq_type, rq_point, rq_pair = S[0], S[1], S[5], S[7], S[8]
    ac_has, ac_point, ac_pair, has_pairs, strategies = S[9], S[11], S[12], S[13], S[14]
    GU, GI, GF = C[26], C[27], C[28]
    iv[PROCESSED_GM] = 0
    now = elapsed + _EPS
    vg = E[17]
    vg_max = vg.max() if vg.shape[0] else 0.0
    gm_s = P[GM_S]
    # The choice of the next event is written out, not called: an inlined call counts a
    # reference to each array it takes, and this runs some 5 million times a year.
    while True:
        if iv[TABLE_VERSION] != iv[VERSION]:  # _stale
            _table(elapsed, E, C, S, P, PI)
        due, kind, which = np.inf, 3, -1
        if iv[N_NEGS] > 0 and NF[iv[NEG_HEAD], 0] <= now:  # the ring's first ends first
            due, kind = NF[iv[NEG_HEAD], 0], 0
        if iv[HEAP_N] > 0:  # _next_ask
            while keys[0] < fv[CLOCK]:
                i = units[0]
                ticks[i] = _hk_tick(phases[i], hk_done[i], fv[CLOCK], hk_s)
                keys[0] = ticks[i]
                _sift_down(0, keys, units, iv[HEAP_N])
            t = keys[0]
            if t <= now and (t < due or (t == due and kind > 1)):
                due, kind, which = t, 1, units[0]
        gm = _gm_first(fv[GM_LAST], fv[CLOCK], gm_s)  # _next_gm
        if iv[GM_VERSION] != iv[VERSION] or iv[GM_TABLE] != iv[TABLES] or \
                iv[GM_SETTLE] != iv[SETTLES]:
            fv[GM_NEED], fv[GM_BEST] = _gm_scan(iv, DF, DI, TF, P, PI)
            iv[GM_VERSION], iv[GM_TABLE], iv[GM_SETTLE] = iv[VERSION], iv[TABLES], iv[SETTLES]
        if not fv[GM_NEED]:
            gm = fv[GM_BEST]
        if gm <= now and gm < due:
            due, kind = gm, 2
        if kind == 3:
            break
        fv[CLOCK] = due
        iv[EVENTS] += 1
        if kind == 0:  # every negotiation ending by then, by (due, requester id)
            cap = NF.shape[0]
            while True:
                m = -1  # those ending by then are the ring's first ones
                for k in range(iv[N_NEGS]):
                    x = (iv[NEG_HEAD] + k) % cap
                    if NF[x, 0] > due + _EPS:
                        break
                    if m < 0 or NF[x, 0] < NF[m, 0] or (
                            NF[x, 0] == NF[m, 0] and rank[NI[x, 0]] < rank[NI[m, 0]]):
                        m = x
                if m < 0:
                    break
                if iv[TABLE_VERSION] != iv[VERSION]:
                    _table(elapsed, E, C, S, P, PI)
                _conclude(m, held, TI, iv, NF, NI, NA, NP, DF, DI, sl_start, sl_end, strategies,
                          P, PI, rng)
                iv[CONCLUSIONS] += 1
                free[iv[N_FREE]] = NI[m, 4]  # its row of accepts is free again
                iv[N_FREE] += 1
                if m != iv[NEG_HEAD]:  # the head takes its place: both end by now
                    _swap_rows(m, iv[NEG_HEAD], NF, NI)
                iv[NEG_HEAD] = (iv[NEG_HEAD] + 1) % cap
                iv[N_NEGS] -= 1
        elif kind == 1:
            _ask(which, due, elapsed, hk_done, ticks, iv, TI, NF, NI, NA, NP, free, sl_start,
                 sl_end, rq_type, rq_point, rq_pair, ac_has, ac_point, ac_pair, has_pairs,
                 strategies, GU, GI, GF, P, PI)
            # the unit's next tick takes its place at the top of the heap
            ticks[which] = _hk_tick(phases[which], hk_done[which], fv[CLOCK], hk_s)
            keys[0] = ticks[which]
            _sift_down(0, keys, units, iv[HEAP_N])
        else:
            _gm_tick(due, vg_max, C, P, PI)
    fv[CLOCK] = elapsed


@njit(cache=True)
def _command(E, C, P):  # pragma: no cover - compiled
    """Set every converter that is not as the deals want it; the grid once."""
    mode, dvg, dig, drg, grid, ugv = E[13], E[14], E[15], E[16], E[21], E[3]
    iv, DF, DI = C[6], C[9], C[10]
    n = mode.shape[0]
    want, current = C[23], C[22][0]
    want[:], current[:] = _WAIT, 0.0
    for d in range(iv[N_DEALS]):
        if DI[d, STATE] == STARTED_STATE:
            want[DI[d, CHARGE]] = _CHARGE
            current[DI[d, CHARGE]] += DF[d, CURRENT]
            want[DI[d, DISCHARGE]] = _DISCHARGE
            current[DI[d, DISCHARGE]] += DF[d, CURRENT]
    if iv[VR] >= 0:
        want[iv[VR]], current[iv[VR]] = _REFERENCE, P[GRID_CURRENT_CAPACITY]
    changed = False
    for i in range(n):
        m = want[i]
        if m == _WAIT:
            if mode[i] == _WAIT:
                continue
            mode[i] = _WAIT
        else:
            volts = P[GRID_V_MAX] if m == _DISCHARGE else P[GRID_V]
            if mode[i] == m and abs(dig[i] - current[i]) <= 1e-9 and \
                    abs(dvg[i] - volts) <= 1e-9:
                continue
            becomes_reference = m == _REFERENCE and mode[i] != _REFERENCE
            mode[i], dvg[i], dig[i], drg[i] = m, volts, current[i], 0.0
            if becomes_reference:
                if np.isnan(grid[1]) and grid[0] < ugv[i]:  # a down grid ramps up
                    grid[1], grid[2] = grid[0], dvg[i] / P[RAMP_SECONDS]
                changed = True
                continue
        if not np.isnan(grid[1]) and grid[1] >= ugv[i]:
            grid[1] = np.nan  # the grid is up: a change settles at once
        changed = True
    if changed:
        apply_grid(mode, dvg, dig, drg, E[17], E[18], E[19], E[20], E[11], E[2], grid)


@njit(cache=True)
def _settled(E, C, P):  # pragma: no cover - compiled
    """After a Grid Master tick: each running deal's rates from the new meters."""
    iv, DF, DI, fv = C[6], C[9], C[10], C[5]
    if not iv[PROCESSED_GM]:
        return
    iv[SETTLES] += 1
    wg, loss = E[19], E[20]
    total = C[22][1]
    total[:] = 0.0
    for d in range(iv[N_DEALS]):
        if DI[d, STATE] == STARTED_STATE:
            total[DI[d, CHARGE]] += DF[d, CURRENT]
            total[DI[d, DISCHARGE]] += DF[d, CURRENT]
    for d in range(iv[N_DEALS]):
        if DI[d, STATE] != STARTED_STATE:
            continue
        c, x = DI[d, CHARGE], DI[d, DISCHARGE]
        into = (wg[c] - loss[c]) * DF[d, CURRENT] / total[c]
        out = -(wg[x] - loss[x]) * DF[d, CURRENT] / total[x]
        DF[d, BASE_T] = fv[GM_LAST]
        DF[d, BASE0], DF[d, BASE1], DF[d, BASE2] = DF[d, CUM], DF[d, DELIV], DF[d, TAKEN]
        DF[d, RATE0] = into if P[REF_SIDE_CHARGE] else out
        DF[d, RATE1], DF[d, RATE2] = into, out
        DF[d, END_TICK] = _amount_tick(d, fv[GM_LAST], DF, DI, P)


@njit(cache=True)
def _amount_tick(d, gm_last, DF, DI, P):  # pragma: no cover - compiled
    """The first tick at which the deal's energy is strictly greater than its amount."""
    if DF[d, RATE0] <= 0.0:
        return np.inf
    period = P[GM_S]
    first = gm_last + period
    reach = DF[d, BASE_T] + (DI[d, DEAL_WH] - DF[d, BASE0]) * 3600.0 / DF[d, RATE0]
    k = max(0, math.floor((reach - first) / period) - 1)
    t = first + k * period
    base_t, base, rate, cum = DF[d, BASE_T], DF[d, BASE0], DF[d, RATE0], DF[d, CUM]
    while (base + rate * ((t - base_t) / 3600.0) if t >= base_t else cum) <= DI[d, DEAL_WH]:
        t += period  # (_energy_at of a started deal, without a call per tick)
    return t


@njit(cache=True)
def _control(elapsed, previous, step, E, C, S, P, PI, rng):  # pragma: no cover - compiled
    """One wake-up at ``elapsed`` with the clock the reference's plan gives it, the commands,
    the rates, and the next plan's promise."""
    fv, iv = C[5], C[6]
    iv[WAKES] += 1
    iv[TABLE_VERSION] = -1  # the batteries moved
    if np.isnan(fv[CLOCK]):
        fv[CLOCK] = elapsed
    else:
        recent = elapsed - step + 1e-6
        fv[CLOCK] = max(previous, min(fv[PROMISED], recent))
        if _stale(C[6]):
            _table(elapsed, E, C, S, P, PI)
        promised = min(_earliest(C, P, PI), elapsed + _EPS)
        fv[CLOCK] = max(fv[CLOCK], min(promised, recent))
    _wake(elapsed, E, C, S, P, PI, rng)
    _command(E, C, P)
    _settled(E, C, P)
    if _stale(C[6]):
        _table(elapsed, E, C, S, P, PI)
    fv[PROMISED] = min(_earliest(C, P, PI), elapsed + _EPS)
    fv[WOKEN_AT] = elapsed


@njit(cache=True, inline="always")  # per step: arrays one by one (see negotiation)
def _quiet(elapsed, previous, fv, iv, NF, DF, DI, TF, sl_start, sl_end, P,
           PI):  # pragma: no cover - compiled
    """Whether the wake-up at ``elapsed`` would find nothing to do: woken one step ago, every
    unit in its band, the same slot, no unit with a chance, no negotiation ending and no Grid
    Master tick that can change something by now."""
    if fv[WOKEN_AT] != previous or iv[TRIPPED] or iv[TABLE_VERSION] != iv[VERSION] or \
            iv[N_CHANCE] > 0:
        return False
    now = elapsed + _EPS
    if slot_at(elapsed, P[START_OF_DAY], sl_start, sl_end) != iv[TABLE_SLOT]:
        return False
    if iv[N_NEGS] > 0 and NF[iv[NEG_HEAD], 0] <= now:
        return False
    return _next_gm(fv, iv, DF, DI, TF, P, PI) > now


@njit(cache=True, inline="always")
def _quiet_steps(k, n_steps, step0, dt, grid, fv, iv, NF, DF, DI, TF, P,
                 PI):  # pragma: no cover - compiled
    """How many steps from step k on may run before the next wake-up that can find work
    (1 when the next one may: a unit with a chance, a rising grid)."""
    if iv[N_CHANCE] > 0 or not np.isnan(grid[1]) or iv[TABLE_VERSION] != iv[VERSION]:
        return 1
    event = _next_gm(fv, iv, DF, DI, TF, P, PI)
    if iv[N_NEGS] > 0:
        event = min(event, NF[iv[NEG_HEAD], 0])
    steps = n_steps - k
    if event < np.inf:
        steps = min(steps, max(1, math.ceil((event - (step0 + k) * dt) / dt) + 1))
        while steps > 1 and (step0 + k + steps - 1) * dt + _EPS >= event:
            steps -= 1  # every wake-up skipped inside must come before the event
    return steps


@njit(cache=True, inline="always")
def _in_slot(k, limit, step0, dt, iv, sl_start, sl_end, P):  # pragma: no cover - compiled
    """How many of ``limit`` steps from step k have their wake-ups in the table's slot (the
    wake-ups skipped in a block must stay in it)."""
    for j in range(1, limit):
        if slot_at((step0 + k + j) * dt, P[START_OF_DAY], sl_start, sl_end) != iv[TABLE_SLOT]:
            return j
    return limit


@njit(cache=True)
def advance(step0, n_steps, solar, load_j, load_f, E, C, S, P, PI, rng,
            fin_room):  # pragma: no cover - compiled
    """Wake and step ``n_steps`` times from step ``step0``; stops early (returning the steps
    run) when fewer than ``fin_room`` rows are left for finished deals.  Stretches of steps
    whose wake-ups would find nothing to do run as one block of physics: up to the next
    wake-up that can find work, stopping after a step that takes a unit out of its band."""
    dt = E[0]
    TF, fv, iv, DF, DI, NF, FF = C[4], C[5], C[6], C[9], C[10], C[11], C[13]
    nominal, TI, scratch = C[0], C[3], C[22]
    sl_start, sl_end, marks, n_marks, lows, highs = S[0], S[1], S[15], S[16], S[17], S[18]
    grid = E[21]
    load_kw, house, pv_gain, wg, dcdc_loss, p = E[4], E[5], E[6], E[19], E[20], E[1]
    energy, capacity, bypass, ac_charge, out, ledger, bands = E[7], E[8], E[9], E[10], \
        E[11], E[12], E[22]
    k = 0
    while k < n_steps:
        elapsed = (step0 + k) * dt
        if fv[WOKEN_AT] != elapsed:
            previous = (step0 + k - 1) * dt
            if iv[TRIPPED] and fv[WOKEN_AT] == previous:
                # a unit left its band: its role may have changed, perhaps to nothing new
                iv[TRIPPED], iv[TABLE_VERSION] = 0, -1
                if _stale(iv):
                    _table(elapsed, E, C, S, P, PI)
            if _quiet(elapsed, previous, fv, iv, NF, DF, DI, TF, sl_start, sl_end, P, PI):
                # what the wake-up would leave: the clock now, the promise one instant on
                fv[CLOCK], fv[PROMISED], fv[WOKEN_AT] = elapsed, elapsed + _EPS, elapsed
            else:
                if FF.shape[0] - iv[N_FIN] < fin_room:
                    return k
                _control(elapsed, previous, dt, E, C, S, P, PI, rng)
        steps = _quiet_steps(k, n_steps, step0, dt, grid, fv, iv, NF, DF, DI, TF, P, PI)
        if iv[WATCH_TABLE] != iv[TABLES]:  # the bands of a new table
            _watch(iv[TABLE_SLOT], bands, capacity, nominal, TI, iv, DI, scratch[2],
                   scratch[3], marks, n_marks, lows, highs, P)
            iv[WATCH_TABLE] = iv[TABLES]
        size = _in_slot(k, steps, step0, dt, iv, sl_start, sl_end, P)
        ran, left = run_steps_until(dt, solar[k:k + size], load_j[k:k + size],
                                    load_f[k:k + size], load_kw, house, pv_gain, wg,
                                    dcdc_loss, p, energy, capacity, bypass, ac_charge, out,
                                    ledger, bands)
        iv[BLOCKS] += 1
        iv[PHYSICS_STEPS] += ran
        iv[TRIPPED] = 1 if left else 0
        if ran > 1:  # the wake-ups skipped inside the block
            last = (step0 + k + ran - 1) * dt
            fv[CLOCK], fv[PROMISED], fv[WOKEN_AT] = last, last + _EPS, last
        k += ran
        if not np.isnan(grid[1]):  # the grid rises step by step
            grid[1] += grid[2] * dt
            apply_grid(E[13], E[14], E[15], E[16], E[17], E[18], E[19], E[20], E[11], E[2],
                       grid)
    return n_steps


@njit(cache=True)
def wake_now(elapsed, previous, step, E, C, S, P, PI, rng):  # pragma: no cover - compiled
    """The wake-up at ``elapsed`` if it has not happened (the last one, before the end)."""
    fv = C[5]
    if fv[WOKEN_AT] != elapsed:
        _control(elapsed, previous, step, E, C, S, P, PI, rng)


@njit(cache=True)
def take_day(elapsed, C, P):  # pragma: no cover - compiled
    """Count what running deals moved by the last tick; the day's (in, out, deals)."""
    fv, iv, DF, DI = C[5], C[6], C[9], C[10]
    t = _last_tick_at(elapsed, C, P)
    for d in range(iv[N_DEALS]):
        if DI[d, STATE] == STARTED_STATE:
            _, delivered, taken = _energy_at(d, t, DF)
            _book(d, delivered, taken, C)
    day = (fv[DAY_IN], fv[DAY_OUT], fv[DAY_DEALS])
    fv[DAY_IN] = fv[DAY_OUT] = fv[DAY_DEALS] = 0.0
    return day


@njit(cache=True)
def close(elapsed, C, P):  # pragma: no cover - compiled
    """End every deal at the last tick (run_end)."""
    iv, DF = C[6], C[9]
    t = _last_tick_at(elapsed, C, P)
    while iv[N_DEALS] > 0:
        _integrate(0, t, DF)
        _end(0, t, RUN_END, C, P)
