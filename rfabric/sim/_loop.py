"""The event loop of :func:`rfabric.sim.engine.run_flows` for runs of events, compiled with numba.

:func:`run_events` carries out, entirely in compiled code, the same steps in the same order with the
same arithmetic as the engine's interpreted loop: arrivals due at ``t`` (zero-size flows drain at once),
the re-solve of the touched components (:func:`rfabric.sim._kernels.solve_rows` on the flows whose rates can
change), the utilisation sample, the next event, the advance and the drains with their stage releases;
and it keeps going event after event. It returns to Python only when a circuit change is due
(``t >= t_stop``: re-routing is Python's), when the utilisation buffer is full, when every flow is done,
when flows are stuck without a path, when a stage group listed in ``watch`` completes (a hook for
callers that gate work on it), or at an epoch boundary of a pipelined run. Results are bit-identical to the
interpreted loop (same operation order).

Phase instances (the pipelined step, :class:`rfabric.sim.engine.InstanceGraph`) run inside the kernel too
(:class:`Instances`): a second heap of instance starts and ends keyed like the engine's ``heapq`` entries
``(time, 0 = end / 1 = start, instance)``, predecessor counts, the release of an instance's first-stage
flows at its start, and its end once its last flow finished. The kernel returns to Python (status
``EPOCH``) only when the set of active epoch keys changed at an instant (or at the first instance event),
which is where the engine records an epoch and asks its epoch policy for circuits.

Pending arrivals are a binary heap keyed by (arrival time, insertion number) (:class:`Pending`): ``O(log n)``
per entry instead of a scan of every waiting flow at every event (quadratic in the flows of a long trace),
and the same order as the engine's list (flows due together arrive in the order they were released). An
entry is a run of flows released together and due at the same instant (a stage of a collective is one
entry, not one per flow: on the 16,384-GPU DeepSeek-V3 rollout, ~950k flows replayed over ~100 stages, the
per-flow heap took most of the run). Heap helpers take scalars or one tuple, not the heap arrays one by one:
every array argument of a compiled call costs atomic reference counts.

State travels in a few arrays so that one call can resume where the previous one stopped: ``ist``
(int64: active count, heap size, insertion counter, arrived count, drained count, ``act`` count,
utilisation samples, events, solves, iterations, flows drained, need_solve, full_solve, status, steps, size of
the instance heap, whether the epoch keys were snapshotted, blocked count, arrival counter, labels listed by the
last advance, whether :class:`Drains` is valid) and ``fst`` (float64: ``t``, peak utilisation, bytes on NVLink,
optical and electrical links, the touched components' next drain).

Per-event work on every routed active flow is one pass, the advance (and a compaction when flows drained):
the routed active flows (``act``) and the blocked ones are kept in arrival order as flows arrive and drain
(merged and split anew only after a re-route), and the next drain instant is the minimum over per-component
minima (:class:`Drains`) that the advance and the re-solves keep, not a scan. Both give the interpreted
loop's values bit for bit (the same flows in the same order; the same quotients, and a minimum is exact).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rfabric.sim._kernels import (
    _njit,
    add_load,
    count_bytes,
    drain_flows,
    move_one,
    next_drain,
    solve_rows,
)

# ist slots
(N_ACTIVE, HEAP_N, SEQ, N_ARR, N_DR, N_ACT, N_UT, EVENTS, SOLVES, ITERS, DRAINED, NEED, FULL, STATUS, STEPS, IH_N,
 EP_INIT, N_BLK, ASEQ, N_LAB, DM_OK) = range(21)
IST_SIZE = 21
# fst slots
T, PEAK, B_NV, B_OP, B_EL, TMIN = range(6)
FST_SIZE = 6
# statuses
DONE, CHANGE, FULL_BUFFER, STUCK, LIMIT, WATCHED, EPOCH = range(7)


class Instances(NamedTuple):
    """Phase-instance state of a pipelined run (all arrays empty, ``flow`` included, without one).

    Per flow: ``flow`` (its instance). Per instance (I): ``left`` (flows not drained yet; -1 once its end
    is scheduled), ``fin`` (latest flow finish, ``-inf``), ``start`` / ``comm`` / ``end`` (times, ``nan``
    until they happen), ``before`` / ``after`` (compute around its flows), ``dep_left`` (predecessors not
    ended), ``succ_ptr`` / ``succ`` (successors, CSR), ``first_ptr`` / ``first`` (first-stage flows, CSR),
    ``key`` (epoch key id), ``active``. Per key id: ``key_count`` (active instances), ``key_snap`` (the
    key set at the last ``EPOCH`` return). The instance heap: ``ht`` (time), ``hk`` (0 end, 1 start), ``hi``.
    """

    flow: np.ndarray
    left: np.ndarray
    fin: np.ndarray
    start: np.ndarray
    comm: np.ndarray
    end: np.ndarray
    before: np.ndarray
    after: np.ndarray
    dep_left: np.ndarray
    succ_ptr: np.ndarray
    succ: np.ndarray
    first_ptr: np.ndarray
    first: np.ndarray
    key: np.ndarray
    active: np.ndarray
    key_count: np.ndarray
    key_snap: np.ndarray
    ht: np.ndarray
    hk: np.ndarray
    hi: np.ndarray


class Replays(NamedTuple):
    """Replayed stage groups (:class:`rfabric.workload.StageReplay`; see :class:`rfabric.sim.engine._Replays`).

    Per stage group: ``mem`` (the materialised group whose flows it plays; itself for those), ``scale``
    (size factor), ``delay`` (its flows' delay, or -1: their own). Per flow: ``tsize`` (its own size),
    ``saved`` (its own play is in ``out[:4]``); ``out`` (6, F): own start, finish, path latency, optical
    share, then the bytes and optical bytes of its finished replays but the last (empty without replays).
    """

    mem: np.ndarray
    scale: np.ndarray
    delay: np.ndarray
    tsize: np.ndarray
    saved: np.ndarray
    out: np.ndarray


class Pending(NamedTuple):
    """The heap of pending arrivals: entries ``(time, insertion number)`` each standing for a run of flows
    released together that arrive at the same instant: ``src[w][p : p + c]`` with ``src`` 0 the flows by
    stage group (``sg_order``), 1 the first-stage flows by instance (:attr:`Instances.first`), 2 ``firsts``
    (the first stage of every chain, in flow order). Arrays ``ht`` (time), ``hs`` (insertion number),
    ``hp`` (``p``), ``hc`` (``c``), ``hw`` (``w``), of one entry per flow at most.
    """

    ht: np.ndarray
    hs: np.ndarray
    hp: np.ndarray
    hc: np.ndarray
    hw: np.ndarray
    firsts: np.ndarray


class Drains(NamedTuple):
    """When each component's first routed flow drains at the current rates, so that the next drain instant is a
    scan of the components instead of every routed flow.

    Per component label (L): ``cmin`` (smallest ``rem / rate`` of its routed flows of positive rate, ``inf``),
    ``stamp`` (the event whose advance set ``cmin``); ``labs`` (F + 1): the labels met by the last advance;
    ``alab`` (F + 1): the label of every routed active flow, alongside ``act`` (read in order, not gathered).
    The advance (:func:`_advance`) sets ``cmin`` of every label it meets; a re-solve recomputes the labels it
    touched from the flows it re-solved or kept (all routed flows of those labels). The minimum over them is
    bit-for-bit the one a scan of every routed flow gives (the same quotients, and a minimum is exact).
    """

    cmin: np.ndarray
    stamp: np.ndarray
    labs: np.ndarray
    alab: np.ndarray


def new_drains(n_labels: int, n: int) -> Drains:
    """Empty :class:`Drains` for ``n_labels`` components and ``n`` flows."""
    return Drains(np.full(n_labels, np.inf), np.full(n_labels, -1, dtype=np.int64), np.empty(n + 1, dtype=np.int64),
                  np.empty(n + 1, dtype=np.int64))


def new_pending(n: int, firsts: np.ndarray) -> Pending:
    """An empty :class:`Pending` heap for ``n`` flows; ``firsts`` as in the class."""
    i64 = np.int64
    return Pending(np.empty(n + 1), np.empty(n + 1, dtype=i64), np.empty(n + 1, dtype=i64),
                   np.empty(n + 1, dtype=i64), np.empty(n + 1, dtype=i64), np.asarray(firsts, dtype=i64))


def no_instances() -> Instances:
    """The empty :class:`Instances` of a run without phase instances."""
    f, i, b = np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.bool_)
    one = np.zeros(1, dtype=np.int64)
    return Instances(i, i, f, f, f, f, f, f, i, one, i, one, i, i, b, i, b, f, i, i)


@_njit(cache=True)
def _before(ta: float, ka: int, ia: int, tb: float, kb: int, ib: int) -> bool:
    """Entry ``(ta, ka, ia)`` before ``(tb, kb, ib)`` in (time, kind, instance) order (Python's tuple order in
    ``heapq``). Scalars only: a comparator taking the heap arrays costs two atomic reference counts per array
    and call, which dominated long runs of arrivals."""
    return ta < tb or (ta == tb and (ka < kb or (ka == kb and ia < ib)))


@_njit(cache=True)
def inst_push(ht: np.ndarray, hk: np.ndarray, hi: np.ndarray, n: int, t: float, k: int, i: int) -> int:
    """Push instance event ``(t, k, i)`` (``k``: 0 end, 1 start) on the instance heap; returns the new size."""
    j = n
    ht[j] = t
    hk[j] = k
    hi[j] = i
    while j > 0:
        p = (j - 1) // 2
        if not _before(ht[j], hk[j], hi[j], ht[p], hk[p], hi[p]):
            break
        ht[p], ht[j] = ht[j], ht[p]
        hk[p], hk[j] = hk[j], hk[p]
        hi[p], hi[j] = hi[j], hi[p]
        j = p
    return n + 1


@_njit(cache=True)
def inst_pop(ht: np.ndarray, hk: np.ndarray, hi: np.ndarray, n: int) -> int:
    """Remove the smallest (time, kind, instance) entry; returns the new size."""
    n -= 1
    ht[0] = ht[n]
    hk[0] = hk[n]
    hi[0] = hi[n]
    j = 0
    while True:
        a = 2 * j + 1
        b = a + 1
        m = j
        if a < n and _before(ht[a], hk[a], hi[a], ht[m], hk[m], hi[m]):
            m = a
        if b < n and _before(ht[b], hk[b], hi[b], ht[m], hk[m], hi[m]):
            m = b
        if m == j:
            break
        ht[m], ht[j] = ht[j], ht[m]
        hk[m], hk[j] = hk[j], hk[m]
        hi[m], hi[j] = hi[j], hi[m]
        j = m
    return n


@_njit(cache=True)
def _seg_swap(pq: Pending, a: int, b: int) -> None:
    pq.ht[a], pq.ht[b] = pq.ht[b], pq.ht[a]
    pq.hs[a], pq.hs[b] = pq.hs[b], pq.hs[a]
    pq.hp[a], pq.hp[b] = pq.hp[b], pq.hp[a]
    pq.hc[a], pq.hc[b] = pq.hc[b], pq.hc[a]
    pq.hw[a], pq.hw[b] = pq.hw[b], pq.hw[a]


@_njit(cache=True)
def seg_push(pq: Pending, n: int, t: float, s: int, p: int, c: int, w: int) -> int:
    """Push the run ``(t, s)`` of flows ``src[w][p : p + c]`` on the arrival heap; returns the new size."""
    ht = pq.ht
    hs = pq.hs
    j = n
    ht[j] = t
    hs[j] = s
    pq.hp[j] = p
    pq.hc[j] = c
    pq.hw[j] = w
    while j > 0:
        q = (j - 1) // 2
        if not (ht[j] < ht[q] or (ht[j] == ht[q] and hs[j] < hs[q])):
            break
        _seg_swap(pq, j, q)
        j = q
    return n + 1


@_njit(cache=True)
def seg_pop(pq: Pending, n: int) -> int:
    """Remove the smallest (time, insertion number) entry of the arrival heap; returns the new size."""
    ht = pq.ht
    hs = pq.hs
    n -= 1
    ht[0] = ht[n]
    hs[0] = hs[n]
    pq.hp[0] = pq.hp[n]
    pq.hc[0] = pq.hc[n]
    pq.hw[0] = pq.hw[n]
    j = 0
    while True:
        a = 2 * j + 1
        b = a + 1
        m = j
        if a < n and (ht[a] < ht[m] or (ht[a] == ht[m] and hs[a] < hs[m])):
            m = a
        if b < n and (ht[b] < ht[m] or (ht[b] == ht[m] and hs[b] < hs[m])):
            m = b
        if m == j:
            break
        _seg_swap(pq, m, j)
        j = m
    return n


@_njit(cache=True)
def release(pq: Pending, ist: np.ndarray, w: int, src: np.ndarray, p0: int, p1: int, base: float,
            delay: np.ndarray, dl: float) -> None:
    """Flows ``src[p0:p1]`` (``src`` number ``w`` of :class:`Pending`) arrive at ``base + dl`` (``dl >= 0``) or
    ``base + delay[f]``: one heap entry per run of consecutive flows due at the same instant.

    Arrivals pop in (time, release order), as a heap of one entry per flow keyed by (time, insertion) would
    give them: a run's flows are consecutive in release order and due together, so no other entry falls
    between them; a collective's stage (flows of one delay) is one entry instead of one per flow.
    """
    n = ist[HEAP_N]
    s = ist[SEQ]
    p = p0
    while p < p1:
        tt = base + (dl if dl >= 0.0 else delay[src[p]])
        q = p + 1
        while q < p1 and base + (dl if dl >= 0.0 else delay[src[q]]) == tt:
            q += 1
        n = seg_push(pq, n, tt, s, p, q - p, w)
        s += 1
        p = q
    ist[HEAP_N] = n
    ist[SEQ] = s


def pending_flows(pq: Pending, n: int, sg_order: np.ndarray, ins_first: np.ndarray) -> np.ndarray:
    """The flows of the first ``n`` entries of the arrival heap (for error messages)."""
    srcs = (sg_order, ins_first, pq.firsts)
    parts = [srcs[int(pq.hw[k])][int(pq.hp[k]):int(pq.hp[k] + pq.hc[k])] for k in range(n)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


@_njit(cache=True)
def instance_events(now: float, ist: np.ndarray, ins: Instances, delay: np.ndarray, pq: Pending) -> bool:
    """The engine's ``instance_events``: start and end the instances due at ``now`` (an end releases the
    successors whose last predecessor it was, at its own time; a start releases its first-stage flows at
    ``comm + delay``). Returns whether any instance event happened."""
    changed = False
    while ist[IH_N] > 0 and ins.ht[0] <= now:
        when = ins.ht[0]
        kind = ins.hk[0]
        i = ins.hi[0]
        ist[IH_N] = inst_pop(ins.ht, ins.hk, ins.hi, ist[IH_N])
        changed = True
        if kind == 0:  # end
            ins.end[i] = when
            if ins.active[i]:
                ins.active[i] = False
                ins.key_count[ins.key[i]] -= 1
            for p in range(ins.succ_ptr[i], ins.succ_ptr[i + 1]):
                j = ins.succ[p]
                ins.dep_left[j] -= 1
                if ins.dep_left[j] == 0:
                    ist[IH_N] = inst_push(ins.ht, ins.hk, ins.hi, ist[IH_N], when, 1, j)
            continue
        ins.start[i] = when
        comm = when + ins.before[i]
        ins.comm[i] = comm
        if not ins.active[i]:
            ins.active[i] = True
            ins.key_count[ins.key[i]] += 1
        if ins.left[i] == 0:
            ins.left[i] = -1
            ist[IH_N] = inst_push(ins.ht, ins.hk, ins.hi, ist[IH_N], comm + ins.after[i], 0, i)
        else:
            release(pq, ist, 1, ins.first, ins.first_ptr[i], ins.first_ptr[i + 1], comm, delay, -1.0)
    return changed


@_njit(cache=True)
def keys_changed(ins: Instances) -> bool:
    """Whether the set of epoch keys with an active instance differs from ``ins.key_snap``."""
    for k in range(ins.key_count.size):
        if (ins.key_count[k] > 0) != ins.key_snap[k]:
            return True
    return False


@_njit(cache=True)
def _drain(idx: np.ndarray, when: float, ist: np.ndarray, use_lat: bool, latency: np.ndarray, optical: np.ndarray,
           rem: np.ndarray, rate: np.ndarray, lat_used: np.ndarray, finish: np.ndarray, opt_share: np.ndarray,
           sg: np.ndarray, sg_finish: np.ndarray, sg_left: np.ndarray, sg_next: np.ndarray, sg_ptr: np.ndarray,
           sg_order: np.ndarray, delay: np.ndarray, pq: Pending, dr_buf: np.ndarray, dr_rate: np.ndarray, w_indptr: np.ndarray, w_indices: np.ndarray,
           w_data: np.ndarray, load: np.ndarray, group: np.ndarray, g_load: np.ndarray, inv_cap: np.ndarray,
           watch: np.ndarray, ins: Instances, size: np.ndarray, start: np.ndarray, rp: Replays) -> bool:
    """The engine's ``drain``: book-keeping, load removal, release of completed stages' successors (a replayed
    group re-arms its template's flows: the engine's ``_rearm``), and the end of instances whose last flow
    finished (at ``max(last finish, comm start) + after``).

    Returns whether a stage group marked in ``watch`` completed.
    """
    m = idx.size
    if m == 0:
        return False
    ist[DRAINED] += m
    nd = ist[N_DR]
    if nd + m > dr_buf.size:  # only with replays (a flow drains once per play): re-solve everything instead
        ist[FULL] = 1
        ist[N_DR] = 0
        ist[N_ARR] = 0
        nd = 0
    for i in range(m):
        dr_buf[nd + i] = idx[i]
        dr_rate[nd + i] = rate[idx[i]]
    ist[N_DR] = nd + m
    add_load(w_indptr, w_indices, w_data, idx, rate, -1.0, load, group, g_load, inv_cap)
    done_g = drain_flows(idx, when, use_lat, latency, optical, rem, rate, lat_used, finish, opt_share, sg,
                         sg_finish, sg_left)
    hit = False
    for i in range(done_g.size):
        g = done_g[i]
        if watch[g]:
            hit = True
        nx = sg_next[g]
        if nx < 0:
            continue
        ready = sg_finish[g]
        mg = rp.mem[nx]
        if mg == nx:
            release(pq, ist, 0, sg_order, sg_ptr[nx], sg_ptr[nx + 1], ready, delay, -1.0)
            continue
        sc = rp.scale[nx]
        dl = rp.delay[nx]
        for p in range(sg_ptr[mg], sg_ptr[mg + 1]):
            f = sg_order[p]
            if rp.saved[f]:
                rp.out[4, f] += size[f]
                rp.out[5, f] += size[f] * opt_share[f]
            else:
                rp.out[0, f] = start[f]
                rp.out[1, f] = finish[f]
                rp.out[2, f] = lat_used[f]
                rp.out[3, f] = opt_share[f]
                rp.saved[f] = True
            sg[f] = nx
            size[f] = rp.tsize[f] * sc
            rem[f] = size[f]
        release(pq, ist, 0, sg_order, sg_ptr[mg], sg_ptr[mg + 1], ready, delay, dl)
    ist[NEED] = 1
    if ins.flow.size:
        for i in range(m):
            f = idx[i]
            j = ins.flow[f]
            if finish[f] > ins.fin[j]:
                ins.fin[j] = finish[f]
            ins.left[j] -= 1
        for i in range(m):
            j = ins.flow[idx[i]]
            if ins.left[j] == 0:
                ins.left[j] = -1
                c = ins.comm[j]
                e = ins.fin[j] if ins.fin[j] >= c else c
                ist[IH_N] = inst_push(ins.ht, ins.hk, ins.hi, ist[IH_N], e + ins.after[j], 0, j)
    return hit


@_njit(cache=True)
def _advance(act: np.ndarray, nact: int, rate: np.ndarray, rem: np.ndarray, t: float, dt: float, drain_now: bool,
             t_drain: float, exact: float, eps: float, start: np.ndarray, mult: np.ndarray, nvlink: np.ndarray,
             optical: np.ndarray, gone: np.ndarray, label: np.ndarray, dm: Drains, ev: int
             ) -> tuple[int, float, float, float, int]:
    """:func:`rfabric.sim._kernels.advance` on ``act[:nact]`` (the same arithmetic in the same order) that also
    sets ``dm.cmin`` of the components of the flows left (stamp ``ev``, labels listed in ``dm.labs``).
    Returns (drained count, bytes on NVLink, optical, electrical, number of labels listed)."""
    c = t_drain + exact * (t_drain - t)
    nd = 0
    nv = 0.0
    op = 0.0
    el = 0.0
    nlab = 0
    cmin = dm.cmin
    stamp = dm.stamp
    labs = dm.labs
    alab = dm.alab
    for i in range(nact):
        f = act[i]
        ra = rate[f]
        r = rem[f]
        moved, due = move_one(r, ra, dt, drain_now, t, c, eps, t_drain, start[f])
        left = not due
        if due:
            gone[nd] = f
            nd += 1
        rn = r - moved
        rem[f] = rn
        nv, op, el = count_bytes(moved * mult[f], nvlink[f], optical[f], nv, op, el)
        if left:
            lb = alab[i]
            if stamp[lb] != ev:
                stamp[lb] = ev
                cmin[lb] = np.inf
                labs[nlab] = lb
                nlab += 1
            if ra > 0:
                y = rn / ra
                if y < cmin[lb]:
                    cmin[lb] = y
    return nd, nv, op, el, nlab


@_njit(cache=True)
def _touched_min(rows: np.ndarray, n: int, label: np.ndarray, rate: np.ndarray, rem: np.ndarray, cmin: np.ndarray
                 ) -> None:
    """Lower ``cmin`` of the labels of flows ``rows[:n]`` by their ``rem / rate`` (positive rates only)."""
    for i in range(n):
        f = rows[i]
        ra = rate[f]
        if ra > 0:
            y = rem[f] / ra
            lb = label[f]
            if y < cmin[lb]:
                cmin[lb] = y


@_njit(cache=True)
def _compact(act: np.ndarray, alab: np.ndarray, nact: int, gone: np.ndarray, nd: int) -> int:
    """Remove ``gone[:nd]`` (a subsequence of ``act[:nact]``, in its order) from ``act`` (and their labels from
    ``alab``); returns the new count."""
    i0 = 0
    while act[i0] != gone[0]:
        i0 += 1
    q = i0
    j = 0
    for i in range(i0, nact):
        f = act[i]
        if j < nd and f == gone[j]:
            j += 1
        else:
            act[q] = f
            alab[q] = alab[i]
            q += 1
    return q


@_njit(cache=True)
def _refilter(act: np.ndarray, nact: int, blk: np.ndarray, nb: int, aseq: np.ndarray, blocked: np.ndarray,
              rate: np.ndarray, tmp: np.ndarray, ist: np.ndarray, label: np.ndarray, alab: np.ndarray) -> int:
    """After re-routing: zero the rates of every active flow (``act[:nact]`` and the blocked ``blk[:nb]``), merge
    them in arrival order (``aseq``) and split them anew into ``act`` and ``blk`` by ``blocked``; returns the new
    ``act`` count (sets ``ist[N_ACT]``, ``ist[N_BLK]``). ``tmp`` is scratch."""
    i = 0
    j = 0
    m = 0
    while i < nact or j < nb:
        if j >= nb or (i < nact and aseq[act[i]] < aseq[blk[j]]):
            tmp[m] = act[i]
            i += 1
        else:
            tmp[m] = blk[j]
            j += 1
        rate[tmp[m]] = 0.0
        m += 1
    na = 0
    nb = 0
    for k in range(m):
        f = tmp[k]
        if blocked[f]:
            blk[nb] = f
            nb += 1
        else:
            act[na] = f
            alab[na] = label[f]
            na += 1
    ist[N_ACT] = na
    ist[N_BLK] = nb
    return na


@_njit(cache=True)
def run_events(ist: np.ndarray, fst: np.ndarray, t_stop: float, max_steps: int, eps: float, exact: float, tie: float,
               use_lat: bool,
               # routes and the solve
               w_indptr: np.ndarray, w_indices: np.ndarray, w_data: np.ndarray, s_indptr: np.ndarray,
               s_indices: np.ndarray, s_data: np.ndarray, cap_s: np.ndarray, mark: np.ndarray, inv_cap: np.ndarray,
               group: np.ndarray, load: np.ndarray, g_load: np.ndarray, inv_gcap: np.ndarray, latency: np.ndarray,
               optical: np.ndarray, nvlink: np.ndarray, blocked: np.ndarray, empty_route: np.ndarray,
               label: np.ndarray, lab_thr: np.ndarray,
               # flows
               size: np.ndarray, mult: np.ndarray, delay: np.ndarray, rem: np.ndarray, rate: np.ndarray,
               start: np.ndarray, finish: np.ndarray, lat_used: np.ndarray, opt_share: np.ndarray,
               is_active: np.ndarray,
               # stages
               sg: np.ndarray, sg_finish: np.ndarray, sg_left: np.ndarray, sg_next: np.ndarray, sg_ptr: np.ndarray,
               sg_order: np.ndarray, watch: np.ndarray,
               # buffers
               active: np.ndarray, act: np.ndarray, aseq: np.ndarray, dm: Drains, pq: Pending, arr_buf: np.ndarray, dr_buf: np.ndarray, dr_rate: np.ndarray, sub: np.ndarray, fixed: np.ndarray,
               gone: np.ndarray, due: np.ndarray, ut_t: np.ndarray, ut_v: np.ndarray, ins: Instances,
               rp: Replays) -> int:
    """Run events from ``fst[T]`` until a stop condition; returns (and stores in ``ist[STATUS]``) the status."""
    t = fst[T]
    status = LIMIT
    while ist[STEPS] < max_steps:
        # --- everything that happens at t: arrivals (zero-size ones drain at once)
        if ist[N_UT] >= ut_t.size:
            status = FULL_BUFFER
            break
        hit = False
        inst_ev = False
        while (ist[HEAP_N] > 0 and pq.ht[0] <= t) or (ist[IH_N] > 0 and ins.ht[0] <= t):
            if ist[IH_N] > 0 and ins.ht[0] <= t:
                inst_ev |= instance_events(t, ist, ins, delay, pq)
                continue
            nd = 0
            n = ist[HEAP_N]
            while n > 0 and pq.ht[0] <= t:
                w = pq.hw[0]
                src = sg_order if w == 0 else (ins.first if w == 1 else pq.firsts)
                for p in range(pq.hp[0], pq.hp[0] + pq.hc[0]):
                    due[nd] = src[p]
                    nd += 1
                n = seg_pop(pq, n)
            ist[HEAP_N] = n
            nact = ist[N_ACT]
            nb = ist[N_BLK]
            sq = ist[ASEQ]
            nz = 0
            a0 = ist[N_ARR]
            if a0 + nd > arr_buf.size:  # only with replays (a flow arrives once per play): re-solve everything
                ist[FULL] = 1
                ist[N_ARR] = 0
                ist[N_DR] = 0
                a0 = 0
            for i in range(nd):
                f = due[i]
                start[f] = t
                arr_buf[a0 + i] = f
                if size[f] <= 0 or empty_route[f]:
                    gone[nz] = f  # scratch: the zero-size / zero-route flows, in order
                    nz += 1
                else:
                    aseq[f] = sq
                    sq += 1
                    if blocked[f]:
                        active[nb] = f
                        nb += 1
                    else:
                        act[nact] = f
                        dm.alab[nact] = label[f]
                        nact += 1
                    is_active[f] = True
            ist[N_ARR] = a0 + nd
            ist[N_ACT] = nact
            ist[N_BLK] = nb
            ist[ASEQ] = sq
            ist[N_ACTIVE] = nact + nb
            ist[NEED] = 1
            if nz:
                hit |= _drain(gone[:nz], t, ist, use_lat, latency, optical, rem, rate, lat_used, finish,
                              opt_share, sg, sg_finish, sg_left, sg_next, sg_ptr, sg_order, delay, pq, dr_buf,
                              dr_rate, w_indptr, w_indices, w_data, load, group, g_load, inv_cap, watch, ins, size,
                              start, rp)
        if hit:
            status = WATCHED
            break
        if inst_ev and (ist[EP_INIT] == 0 or keys_changed(ins)):
            status = EPOCH
            break
        if t >= t_stop:
            status = CHANGE
            break
        if ist[N_ACTIVE] == 0 and ist[HEAP_N] == 0 and ist[IH_N] == 0:
            status = DONE
            break
        ist[STEPS] += 1
        # --- rates
        if ist[NEED]:
            nact = ist[N_ACT]
            ns = 0
            nk = 0
            if ist[FULL]:
                # the routes may have changed: every active flow in arrival order, split anew by ``blocked``
                nact = _refilter(act, nact, active, ist[N_BLK], aseq, blocked, rate, fixed, ist, label, dm.alab)
                for i in range(nact):
                    sub[i] = act[i]
                ns = nact
            else:
                nd = ist[N_DR]
                for i in range(nd):
                    lb = label[dr_buf[i]]
                    v = dr_rate[i] * (1.0 - tie)
                    if v < lab_thr[lb]:
                        lab_thr[lb] = v
                narr = ist[N_ARR]
                for i in range(narr):
                    lab_thr[label[arr_buf[i]]] = -np.inf
                # split_by_threshold on act, its labels read alongside
                for i in range(nact):
                    th = lab_thr[dm.alab[i]]
                    if th < np.inf:
                        f = act[i]
                        if rate[f] < th:
                            fixed[nk] = f
                            nk += 1
                        else:
                            sub[ns] = f
                            ns += 1
                for i in range(nd):
                    lab_thr[label[dr_buf[i]]] = np.inf
                for i in range(narr):
                    lab_thr[label[arr_buf[i]]] = np.inf
                add_load(w_indptr, w_indices, w_data, sub[:ns], rate, -1.0, load, group, g_load, inv_cap)
            if ns:
                r, k = solve_rows(s_indptr, s_indices, s_data, sub[:ns], cap_s, mark, fixed[:nk], rate)
                for i in range(ns):
                    rate[sub[i]] = r[i]
                ist[SOLVES] += 1
                ist[ITERS] += k
            if ist[FULL]:
                load[:] = 0.0
                g_load[:] = 0.0
                ist[DM_OK] = 0
            elif ist[DM_OK]:  # the touched components' next drains, from every routed flow they have
                nd = ist[N_DR]
                narr = ist[N_ARR]
                for i in range(nd):
                    dm.cmin[label[dr_buf[i]]] = np.inf
                for i in range(narr):
                    dm.cmin[label[arr_buf[i]]] = np.inf
                _touched_min(sub, ns, label, rate, rem, dm.cmin)
                _touched_min(fixed, nk, label, rate, rem, dm.cmin)
                m = np.inf
                for i in range(nd):
                    y = dm.cmin[label[dr_buf[i]]]
                    if y < m:
                        m = y
                for i in range(narr):
                    y = dm.cmin[label[arr_buf[i]]]
                    if y < m:
                        m = y
                fst[TMIN] = m
            pk = add_load(w_indptr, w_indices, w_data, sub[:ns], rate, 1.0, load, group, g_load, inv_cap)
            if pk > fst[PEAK]:
                fst[PEAK] = pk
            ist[NEED] = 0
            ist[FULL] = 0
            ist[N_ARR] = 0
            ist[N_DR] = 0
        ist[EVENTS] += 1
        # --- utilisation now (holds until the next event)
        u = ist[N_UT]
        ut_t[u] = t
        for gi in range(g_load.size):
            x = g_load[gi]
            ut_v[u, gi] = (x if x > 0.0 else 0.0) * inv_gcap[gi]
        ist[N_UT] = u + 1
        # --- next event
        nact = ist[N_ACT]
        if ist[DM_OK]:  # the components' minima (touched ones recomputed at the solve)
            m = fst[TMIN]
            for i in range(ist[N_LAB]):
                y = dm.cmin[dm.labs[i]]
                if y < m:
                    m = y
            t_drain = t + m if nact else np.inf
        else:
            t_drain = t + next_drain(act[:nact], rate, rem) if nact else np.inf
        fst[TMIN] = np.inf
        t_arr = pq.ht[0] if ist[HEAP_N] > 0 else np.inf
        if ist[IH_N] > 0 and ins.ht[0] < t_arr:
            t_arr = ins.ht[0]
        t_next = t_drain
        if t_arr < t_next:
            t_next = t_arr
        if t_stop < t_next:
            t_next = t_stop
        if not np.isfinite(t_next):
            status = STUCK
            break
        dt = t_next - t
        nd, b_nv, b_op, b_el, nlab = _advance(act, nact, rate, rem, t, dt, t_next == t_drain, t_drain, exact, eps,
                                              start, mult, nvlink, optical, gone, label, dm, ist[EVENTS])
        ist[N_LAB] = nlab
        ist[DM_OK] = 1
        if nd:  # drop the drained flows from ``act`` (order kept)
            nact = _compact(act, dm.alab, nact, gone, nd)
            ist[N_ACT] = nact
            ist[N_ACTIVE] = nact + ist[N_BLK]
        fst[B_NV] += b_nv
        fst[B_OP] += b_op
        fst[B_EL] += b_el
        t = t_next
        fst[T] = t
        if nd:
            for i in range(nd):
                is_active[gone[i]] = False
            if _drain(gone[:nd], t, ist, use_lat, latency, optical, rem, rate, lat_used, finish, opt_share,
                      sg, sg_finish, sg_left, sg_next, sg_ptr, sg_order, delay, pq, dr_buf, dr_rate,
                      w_indptr, w_indices, w_data, load, group, g_load, inv_cap, watch, ins, size, start, rp):
                status = WATCHED
                break
    fst[T] = t
    ist[STATUS] = status
    return status


__all__ = ["run_events", "seg_push", "seg_pop", "release", "inst_push", "inst_pop", "Instances", "Replays", "Pending",
           "new_pending", "pending_flows", "no_instances"]
