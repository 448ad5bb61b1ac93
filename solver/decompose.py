"""Port level: turn circuit counts between nodes into concrete OCS port pairs (duplex circuits).

For one domain, :func:`realise` first splits the counts over the OCSes (per-OCS counts ``Y[k]``, ``U[k]``
within every node's ports on OCS ``k``), then gives each OCS's circuits concrete ports.

**Fast path** (a few ms for a thousand circuits):

1. **Keep.** Every circuit of the previous assignment whose node pair still wants a circuit stays where
   it is (same OCS).
2. **Layers (König).** The remaining counts are oriented so every node sends and receives about half of
   its circuits (Euler orientation of the odd remainder), the directed multigraph is padded to a regular
   bipartite one and split into permutations (one ``linear_sum_assignment`` each; König's theorem says
   they exist). A permutation uses at most two ports per node, so it fits whole on an OCS offering every
   node two free ports ("double slot"), or, alternating along its paths and even cycles, on two OCSes
   offering one port each ("paired slot"; an odd cycle leaves one circuit to step 3).
3. **Place.** Circuits left over, pair by pair outward from the most constrained pairs (least slack between
   the ports a pair shares on the OCSes and its circuits; the rest by hop distance from them, then busiest
   first), go to the OCS with both ends free and the most free ports, then, when no
   OCS has both ends free, through a Kempe-chain swap between two OCSes.
4. **Walk.** Circuits still left over are placed by eviction (:func:`_walk`, the seeded random
   recolouring walk of edge colouring): at P = 128 with one port per pod per OCS it places the 11 of
   1,003 circuits the steps above leave on a sparse MoE phase in ~0.1 s.

**Exact step** (only when the fast path leaves circuits out): an integer program over per-OCS circuits,
solved with HiGHS (warm-started with the fast path's split),

    maximise   M * (sum y + sum u) + sum w + sum wu
    subject to sum_k y[k,e] <= need[e]                 (pair e)
               sum_k u[k,i] <= need_z[i]               (node i)
               sum_{e ni i} y[k,e] + u[k,i] <= P[k,i]  (OCS k, node i: its ports on k)
               sum_i u[k,i] <= U[k]                    (OCS k: its upper ports)
               w[k,e] <= y[k,e], w <= prev[k,e]  (and likewise wu for upper circuits)

with ``M`` larger than the number of previous circuits, so it realises as many circuits as any per-OCS
split can and, among those, keeps the most previous circuits in place. With one port per node per OCS this
is edge colouring, which duplex circuits can fail (a triangle over two OCSes): a circuit is reported
**dropped** only when this program proves no split holds it (``proven``), or, if a limit stopped it first,
with that said in ``reason``. Its limits are deterministic work limits, so the circuits are the same on
every machine whatever its load: a program with more than ``max_columns`` integer columns is not started
(the fast path's split stands; 24k columns at 65,536 GPUs, where HiGHS's root alone outlasts seconds) and
branch and bound stops after ``node_limit`` nodes. The wall-clock ``time_limit_s`` is only a safety net,
reported (``timed_out``, and in ``reason``) if it ever fires.

Then **fill** (ports left free by dropped circuits are paired again where ``weight`` > 0) and **ports**:
within one OCS a node's ports are interchangeable, so the previous circuits of each (OCS, pair) stay on
their exact ports up to the new count and the rest take free ports in ascending order. ``realise`` never
raises on valid input (counts, ports and previous circuits of the domain); counts beyond a node's ports
are reported dropped like any other unrealisable circuit.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import dijkstra

from rfabric.circuits import Circuit, CircuitAssignment
from solver.formulation import Domain
from solver.ocs_split import as_split, empty_split, lookup, shared_ocs, sym_split, upper_entries, upper_total
from solver.options import NODE_LIMIT, OCS_MAX_COLUMNS, SAFETY_NET_NOTE, TIME_LIMIT_S


@dataclass(frozen=True, slots=True, eq=False)
class Realisation:
    """The circuits of one domain and what became of the requested counts.

    ``split`` is the per-OCS split ``(Y, U)``: ``Y[k]`` symmetric node-pair counts on OCS ``k``
    (``K x n x n``, a sparse ``scipy.sparse.coo_array``: see :mod:`solver.ocs_split`), ``U[k, i]`` upper
    circuits of node ``i`` on OCS ``k`` (dense ``K x n``).
    """

    circuits: tuple[Circuit, ...]
    x: np.ndarray  # realised node-pair counts (symmetric)
    z: np.ndarray  # realised upper circuits per node
    kept: int  # circuits left exactly in place from the previous assignment
    dropped: int  # requested circuits not realised
    refilled: int  # circuits added on ports freed by dropped ones
    requested: int = 0  # circuits requested (node pairs + upper)
    method: str = "fast"  # "fast" | "exact" (the per-OCS integer program) | "split" (a given per-OCS split)
    proven: bool = True  # no per-OCS split realises more (always true when nothing is dropped)
    reason: str = ""  # why circuits were dropped ("" when none)
    split: tuple[sp.coo_array, np.ndarray] | None = None
    timed_out: bool = False  # the exact step was stopped by the wall-clock safety net (load-dependent)


def _circuit_key(c: Circuit) -> tuple[str, int, int]:
    """The order of :class:`Circuit` (its fields in turn) as a plain tuple: sorting compares in C."""
    return (c.ocs, c.port_a, c.port_b)


def _port_maps(domain: Domain) -> tuple[dict[int, int], ...]:
    """Per OCS: port -> node index (``-1`` for an upper port); :attr:`Domain.port_nodes`."""
    return domain.port_nodes


def _classify(domain: Domain, previous: CircuitAssignment | None,
              maps: tuple[dict[int, int], ...] | None = None) -> list[tuple[int, int, int, Circuit]]:
    """``(ocs index, a, b, circuit)`` of the previous circuits inside ``domain``; ``b = -1`` for an upper
    circuit of node ``a``. Circuits between two ports of one node, two upper ports or unknown ports are left out."""
    if previous is None:
        return []
    kidx = {o: k for k, o in enumerate(domain.ocs)}
    maps = maps if maps is not None else _port_maps(domain)
    out = []
    for c in previous.circuits:
        k = kidx.get(c.ocs)
        if k is None:
            continue
        a, b = maps[k].get(c.port_a), maps[k].get(c.port_b)
        if a is None or b is None or (a < 0 and b < 0):
            continue
        if a >= 0 and b >= 0:
            if a != b:
                out.append((k, min(a, b), max(a, b), c))
        else:
            out.append((k, max(a, b), -1, c))
    return out


def previous_counts(domain: Domain, previous: CircuitAssignment | None) -> tuple[np.ndarray, np.ndarray]:
    """Node-pair counts ``x`` (``n x n``) and upper counts ``z`` of the previous assignment's circuits in ``domain``."""
    n = domain.n
    x = np.zeros((n, n), dtype=np.int64)
    z = np.zeros(n, dtype=np.int64)
    cl = _classify(domain, previous)
    if cl:
        a = np.fromiter((c[1] for c in cl), dtype=np.int64, count=len(cl))
        b = np.fromiter((c[2] for c in cl), dtype=np.int64, count=len(cl))
        low = b >= 0
        np.add.at(x, (a[low], b[low]), 1)
        np.add.at(x, (b[low], a[low]), 1)
        z += np.bincount(a[~low], minlength=n)
    return x, z


def ocs_counts(domain: Domain, assignment: CircuitAssignment | None) -> tuple[sp.coo_array, np.ndarray]:
    """Per-OCS counts ``(Y, U)`` of an assignment's circuits in ``domain``: ``Y`` sparse symmetric
    ``K x n x n`` (:mod:`solver.ocs_split`), ``U`` dense ``K x n``."""
    n, K = domain.n, len(domain.ocs)
    U = np.zeros((K, n), dtype=np.int64)
    cl = _classify(domain, assignment)
    kk = np.fromiter((c[0] for c in cl), dtype=np.int64, count=len(cl))
    a = np.fromiter((c[1] for c in cl), dtype=np.int64, count=len(cl))
    b = np.fromiter((c[2] for c in cl), dtype=np.int64, count=len(cl))
    low = b >= 0
    np.add.at(U, (kk[~low], a[~low]), 1)
    return sym_split(K, n, kk[low], a[low], b[low], 1), U


def _fits(domain: Domain, Y: sp.coo_array, U: np.ndarray) -> bool:
    """Whether a per-OCS split stays within every node's ports and every OCS's upper ports."""
    k, a, b = Y.coords
    v = Y.data
    if v.min(initial=0) < 0 or U.min(initial=0) < 0:
        return False
    if np.any(a == b) or not np.array_equal(v, lookup(Y, k, b, a)):  # symmetric, empty diagonal
        return False
    used = Y.sum(axis=2)  # K x n ports used per (OCS, node)
    cap = domain.port_matrix
    cap_up = np.array([len(u) for u in domain.upper_ports], dtype=np.int64)
    return bool(np.all(used + U <= cap) and np.all(U.sum(axis=1) <= cap_up))


def realise(domain: Domain, x: np.ndarray, z: np.ndarray | None = None, previous: CircuitAssignment | None = None,
            weight: np.ndarray | None = None, *, time_limit_s: float = TIME_LIMIT_S,
            split: tuple[Any, np.ndarray] | None = None, node_limit: int = NODE_LIMIT,
            max_columns: int = OCS_MAX_COLUMNS) -> Realisation:
    """Concrete circuits for counts ``x`` (symmetric ``n x n``, node pairs) and ``z`` (upper, per node).

    ``previous``: circuits to keep in place where the counts allow. ``weight`` (``n x n``, e.g. demand)
    ranks pairs for refilling ports freed by dropped circuits. ``split``: a per-OCS split of exactly these
    counts (from the per-OCS MILP), used when the fast path falls short and it fits (the fast path keeps
    more previous circuits in place). The exact step is bounded deterministically: it is not started when
    it has more than ``max_columns`` integer columns (0: no bound), and stops after ``node_limit``
    branch-and-bound nodes (0: none); ``time_limit_s`` is only a wall-clock safety net (``timed_out`` says
    it fired: the result may then depend on the machine's load).
    Never raises on valid input; see the module docstring for what ``dropped`` and ``proven`` mean.
    """
    n, K = domain.n, len(domain.ocs)
    xin = np.clip(np.asarray(x, dtype=np.int64).reshape(n, n), 0, None)
    need = np.triu(np.maximum(xin, xin.T), k=1)
    need = need + need.T
    needz = np.zeros(n, dtype=np.int64) if z is None else np.clip(np.asarray(z, dtype=np.int64).reshape(n), 0, None)
    requested = int(np.triu(need, k=1).sum() + needz.sum())
    maps = _port_maps(domain)
    prev = _classify(domain, previous, maps)
    method, proven, reason, timed_out = "fast", True, "", False

    def count(Ya: sp.coo_array, Ua: np.ndarray) -> int:
        return upper_total(Ya) + int(Ua.sum())

    if prev and len(prev) == requested:  # the counts are the previous circuits': they all stay in place
        same = _as_previous(domain, need, needz, prev, requested)
        if same is not None:
            return same
    Y, U = _fast(domain, need, needz, prev, walk=False)
    got = count(Y, U)
    if got < requested and split is not None:
        Ys, Us = as_split(split[0]), np.asarray(split[1], dtype=np.int64)
        if (Ys.shape == (K, n, n) and Us.shape == (K, n) and _fits(domain, Ys, Us)
                and np.array_equal(Ys.sum(axis=0), need) and np.array_equal(Us.sum(axis=0), needz)):
            Y, U, got, method = Ys.copy(), Us.copy(), requested, "split"
    # small programs first (exact, and previous circuits may move), big ones after the eviction walk
    ncols = _exact_columns(domain, need) if got < requested else 0
    small = ncols <= EXACT_FIRST_COLUMNS
    too_big = max_columns > 0 and ncols > max_columns
    if got < requested and (not small or too_big):
        Yw, Uw = _fast(domain, need, needz, prev, walk=True)
        if count(Yw, Uw) > got:
            Y, U, got = Yw, Uw, count(Yw, Uw)
    if got < requested and too_big:  # the deterministic fallback: the fast path's split stands
        proven = False
        reason = (f"{requested - got} of {requested} circuits not placed by the fast path; the per-OCS integer "
                  f"program ({ncols} columns > solver.ocs_max_columns {max_columns}) was not started")
    elif got < requested:
        Ye, Ue, proven_max, status, timed_out = _exact(domain, need, needz, prev, (Y, U), time_limit_s, node_limit)
        if Ye is not None and Ue is not None and count(Ye, Ue) >= got and _fits(domain, Ye, Ue):
            Y, U, got, method = Ye, Ue, count(Ye, Ue), "exact"
        proven = proven_max <= got
        if got < requested and small and not proven:
            Yw, Uw = _fast(domain, need, needz, prev, walk=True)
            if count(Yw, Uw) > got:
                Y, U, got, method = Yw, Uw, count(Yw, Uw), "fast"
                proven = proven_max <= got
        if got < requested:
            reason = (f"no split over the OCSes' ports holds more than {got} of the {requested} requested "
                      "circuits (proven by the per-OCS integer program)" if proven else
                      f"{requested - got} of {requested} circuits not placed: the per-OCS integer program "
                      f"stopped ({status}) with at most {min(proven_max, requested)} provably realisable")
            if timed_out:
                reason += f" ({SAFETY_NET_NOTE} of {time_limit_s:g} s fired: may differ between runs)"
    if not _fits(domain, Y, U):  # pragma: no cover - every path keeps to the ports by construction
        Y, U = empty_split(K, n), np.zeros((K, n), dtype=np.int64)
        proven, reason = False, "internal error: the split exceeded the ports; nothing realised"
    dropped = requested - count(Y, U)
    refilled = 0
    if dropped and weight is not None:
        Y, refilled = _refill(domain, Y, U, weight)
    circuits, kept = _ports(domain, Y, U, prev)
    return Realisation(circuits=tuple(sorted(circuits, key=_circuit_key)), x=Y.sum(axis=0), z=U.sum(axis=0), kept=kept,
                       dropped=dropped, refilled=refilled, requested=requested, method=method,
                       proven=proven or dropped == 0, reason=reason, split=(Y, U), timed_out=timed_out)


def _as_previous(domain: Domain, need: np.ndarray, needz: np.ndarray, prev: list[tuple[int, int, int, Circuit]],
                 requested: int) -> Realisation | None:
    """The realisation that keeps every previous circuit, when the counts are exactly theirs (else None).

    What the fast path and :func:`_ports` give in that case (every previous circuit kept on its ports,
    nothing else placed), without their per-circuit work: a phase that keeps its circuits costs little.
    """
    n, K = domain.n, len(domain.ocs)
    arr = np.array([(k, a, b) for k, a, b, _ in prev], dtype=np.int64).reshape(-1, 3)
    low = arr[:, 2] >= 0
    xp = np.zeros((n, n), dtype=np.int64)
    np.add.at(xp, (arr[low, 1], arr[low, 2]), 1)
    np.add.at(xp, (arr[low, 2], arr[low, 1]), 1)
    zp = np.bincount(arr[~low, 1], minlength=n)
    if not (np.array_equal(xp, need) and np.array_equal(zp, needz)):
        return None
    Y = sym_split(K, n, arr[low, 0], arr[low, 1], arr[low, 2], 1)
    U = np.zeros((K, n), dtype=np.int64)
    np.add.at(U, (arr[~low, 0], arr[~low, 1]), 1)
    if not _fits(domain, Y, U):
        return None
    return Realisation(circuits=tuple(sorted((c for *_, c in prev), key=_circuit_key)), x=Y.sum(axis=0), z=U.sum(axis=0),
                       kept=len(prev), dropped=0, refilled=0, requested=requested, split=(Y, U))


def _ports(domain: Domain, Y: sp.coo_array, U: np.ndarray,
           prev: list[tuple[int, int, int, Circuit]]) -> tuple[list[Circuit], int]:
    """Concrete circuits of a fitting split: previous circuits in place up to the counts, then ascending ports."""
    # work on the split's upper-triangle non-zeros (in (k, a, b) order) and build free-port sets only for
    # the (OCS, node) slots that are touched
    kk, aa, bb, vv = (t.tolist() for t in upper_entries(Y))
    rem = dict(zip(zip(kk, aa, bb, strict=True), vv, strict=True))
    remu = U.copy()
    free: dict[tuple[int, int], set[int]] = {}
    free_up: dict[int, set[int]] = {}

    def slot(k: int, a: int) -> set[int]:
        s = free.get((k, a))
        if s is None:
            s = free[(k, a)] = set(domain.lower_ports[k][a])
        return s

    def upper(k: int) -> set[int]:
        s = free_up.get(k)
        if s is None:
            s = free_up[k] = set(domain.upper_ports[k])
        return s

    circuits: list[Circuit] = []
    for k, a, b, c in prev:
        if b >= 0 and rem.get((k, min(a, b), max(a, b)), 0) > 0:
            rem[(k, min(a, b), max(a, b))] -= 1
            for port in (c.port_a, c.port_b):
                slot(k, a).discard(port)
                slot(k, b).discard(port)
            circuits.append(c)
        elif b < 0 and remu[k, a] > 0:
            remu[k, a] -= 1
            for port in (c.port_a, c.port_b):
                slot(k, a).discard(port)
                upper(k).discard(port)
            circuits.append(c)
    kept = len(circuits)
    pools: dict[tuple[int, int], list[int]] = {}

    def pool(k: int, a: int) -> list[int]:
        p = pools.get((k, a))
        if p is None:
            p = pools[(k, a)] = sorted(slot(k, a), reverse=True)
        return p

    by_ocs: dict[int, list[tuple[int, int, int]]] = {}
    for (k, a, b), m in rem.items():
        if m > 0:
            by_ocs.setdefault(k, []).append((a, b, m))
    for k in sorted(set(by_ocs) | set(np.flatnonzero(remu.sum(axis=1)).tolist())):
        name = domain.ocs[k]
        for a, b, m in by_ocs.get(k, ()):
            for _ in range(m):
                pa, pb = pool(k, a).pop(), pool(k, b).pop()
                circuits.append(Circuit(name, min(pa, pb), max(pa, pb)))
        ups = np.flatnonzero(remu[k]).tolist()
        if ups:
            up_pool = sorted(upper(k), reverse=True)
            for a in ups:
                for _ in range(int(remu[k, a])):
                    pa, pb = pool(k, a).pop(), up_pool.pop()
                    circuits.append(Circuit(name, min(pa, pb), max(pa, pb)))
    return circuits, kept


def _refill(domain: Domain, Y: sp.coo_array, U: np.ndarray, weight: np.ndarray) -> tuple[sp.coo_array, int]:
    """Pair ports left free where ``weight`` > 0, heaviest pairs first; returns the new split and circuits added."""
    cnt = domain.port_matrix - Y.sum(axis=2) - U
    w = np.asarray(weight, dtype=np.float64)
    w = np.maximum(w, w.T)
    live = np.flatnonzero(cnt.sum(axis=0) > 0)
    added = 0
    if live.size < 2:
        return Y, 0
    new: list[tuple[int, int, int]] = []
    sub = w[np.ix_(live, live)]
    ii, jj = np.nonzero(np.triu(sub > 0, k=1))
    order = np.argsort(-sub[ii, jj], kind="stable")
    for s, t in zip(ii[order].tolist(), jj[order].tolist(), strict=True):
        a, b = int(live[s]), int(live[t])
        while True:
            both = np.minimum(cnt[:, a], cnt[:, b])
            if both.max(initial=0) <= 0:
                break
            k = int(np.argmax(both))
            new.append((k, a, b))
            cnt[k, a] -= 1
            cnt[k, b] -= 1
            added += 1
    if not new:
        return Y, 0
    k0, a0, b0, v0 = upper_entries(Y)
    ks, as_, bs = (np.array(t, dtype=np.int64) for t in zip(*new, strict=True))
    K, n, _ = Y.shape
    return sym_split(K, n, np.concatenate([k0, ks]), np.concatenate([a0, as_]), np.concatenate([b0, bs]),
                     np.concatenate([v0, np.ones(ks.size, dtype=np.int64)])), added


#: per-OCS integer programs up to this many columns run before the eviction walk (they are exact, can move
#: previous circuits, and take milliseconds at this size); bigger ones run after it
EXACT_FIRST_COLUMNS = 4_000


def _exact_columns(domain: Domain, need: np.ndarray) -> int:
    """Integer columns of the per-OCS program for ``need``: (pair, OCS) combinations where both ends have ports."""
    ea, eb = np.nonzero(np.triu(need, k=1))
    return int(shared_ocs(domain.port_matrix, ea, eb)[0].size)


#: OCS choices tried per end when looking for a Kempe chain
KEMPE_TRIES = 4
#: evictions the random walk may spend per circuit left over (plus a fixed allowance)
WALK_STEPS = 50


def _walk(pending: list[tuple[int, int]], cnt: np.ndarray, placed: list[list[int]], adj: list[defaultdict[int, list[int]]],
          put: Callable[[int, int, int], None]) -> None:
    """Place left-over circuits by eviction (a seeded random walk, in place; leaves failures in ``pending``).

    A circuit ``a-b`` goes on an OCS where ``a`` has a free port, evicting a random circuit at ``b``
    there (or the other way round); the evicted circuit becomes the one to place. This is the classic
    recolouring walk for edge colouring: with exactly as many OCSes as a node's circuits a proper split may
    not exist (class-2 graphs), so the walk is bounded and the exact step decides what is left.
    """
    rng = np.random.default_rng(len(pending))
    steps = WALK_STEPS * len(pending) + 3000
    last = -1
    while pending and steps > 0:
        steps -= 1
        a, b = pending.pop(int(rng.integers(len(pending))))
        both = np.minimum(cnt[:, a], cnt[:, b])
        if both.max(initial=0) > 0:
            put(int(np.argmax(both)), a, b)
            continue
        opts = [(k, b) for k in np.flatnonzero(cnt[:, a] > 0).tolist()]
        opts += [(k, a) for k in np.flatnonzero(cnt[:, b] > 0).tolist()]
        opts = [(k, v) for k, v in opts if any(c != last for c in adj[k][v])]
        if not opts:
            pending.append((a, b))
            break
        k, full = opts[int(rng.integers(len(opts)))]
        movable = [c for c in adj[k][full] if c != last]
        cid = movable[int(rng.integers(len(movable)))]
        _, p, q = placed[cid]
        adj[k][p].remove(cid)
        adj[k][q].remove(cid)
        cnt[k, p] += 1
        cnt[k, q] += 1
        placed[cid][0] = -1
        put(k, a, b)
        last = len(placed) - 1
        pending.append((p, q))


def _fast(domain: Domain, need: np.ndarray, needz: np.ndarray, prev: list[tuple[int, int, int, Circuit]],
          walk: bool = True) -> tuple[sp.coo_array, np.ndarray]:
    """The fast path's split (keep, König layers, greedy + Kempe chains); may leave circuits out."""
    n, K = domain.n, len(domain.ocs)
    need = need.copy()
    needz = needz.copy()
    cnt = domain.port_matrix.copy()
    # free ports only fall below the port matrix, so this multiplier exceeds any cnt[k, a] + cnt[k, b] for the
    # whole call: scores rank by both-ends slots, then free ports (one max per call, not per circuit)
    big = 2 * int(cnt.max(initial=0)) + 2
    cnt_up = np.array([len(u) for u in domain.upper_ports], dtype=np.int64)
    kept: list[tuple[int, int, int]] = []  # (ocs, a, b) of previous lower circuits kept in place
    U = np.zeros((K, n), dtype=np.int64)
    # 1. keep previous circuits (on their OCS)
    for k, a, b, _ in prev:
        if b >= 0 and need[a, b] > 0 and cnt[k, a] > 0 and cnt[k, b] > 0:
            need[a, b] -= 1
            need[b, a] -= 1
            cnt[k, a] -= 1
            cnt[k, b] -= 1
            kept.append((k, a, b))
        elif b < 0 and needz[a] > 0 and cnt[k, a] > 0 and cnt_up[k] > 0:
            needz[a] -= 1
            cnt[k, a] -= 1
            cnt_up[k] -= 1
            U[k, a] += 1
    placed: list[list[int]] = []  # [ocs, a, b] of movable lower circuits
    # circuit ids per OCS and node, created on first use (K x n empty lists cost ~0.1 s at 96 x 512)
    adj: list[defaultdict[int, list[int]]] = [defaultdict(list) for _ in range(K)]

    def put(k: int, a: int, b: int) -> None:
        cid = len(placed)
        placed.append([k, a, b])
        adj[k][a].append(cid)
        adj[k][b].append(cid)
        cnt[k, a] -= 1
        cnt[k, b] -= 1

    def move(cid: int, to: int) -> None:
        k, a, b = placed[cid]
        adj[k][a].remove(cid)
        adj[k][b].remove(cid)
        cnt[k, a] += 1
        cnt[k, b] += 1
        placed[cid][0] = to
        adj[to][a].append(cid)
        adj[to][b].append(cid)
        cnt[to, a] -= 1
        cnt[to, b] -= 1

    def try_place(a: int, b: int) -> bool:
        both = np.minimum(cnt[:, a], cnt[:, b])
        cand = np.flatnonzero(both > 0)
        if cand.size:  # an OCS with both ends free: the one with the most such slots, then most free ports
            score = both[cand] * big + cnt[cand, a] + cnt[cand, b]
            put(int(cand[np.argmax(score)]), a, b)
            return True
        return kempe(a, b) or kempe(b, a)

    def kempe(a: int, b: int) -> bool:
        """Free a port of ``b`` on some OCS where ``a`` has one, by swapping a chain between two OCSes."""
        for al in np.flatnonzero(cnt[:, a] > 0).tolist()[:KEMPE_TRIES]:
            for be in np.flatnonzero(cnt[:, b] > 0).tolist()[:KEMPE_TRIES]:
                if al == be:
                    continue
                chain: list[int] = []
                seen: set[int] = set()
                v, colour, other = b, al, be
                ok = False
                for _ in range(2 * n + 2):
                    if v != b and cnt[other, v] > 0:
                        ok = True
                        break
                    nxt = [c for c in adj[colour][v] if c not in seen]
                    if not nxt:
                        break
                    cid = nxt[0]
                    seen.add(cid)
                    chain.append(cid)
                    _, p, q = placed[cid]
                    v = q if p == v else p
                    colour, other = other, colour
                if not ok or not chain:
                    continue
                cols = [placed[c][0] for c in chain]
                for c in chain:
                    move(c, be if placed[c][0] == al else al)
                if cnt.min() >= 0 and cnt[al, a] > 0 and cnt[al, b] > 0:
                    put(al, a, b)
                    return True
                for c, col in zip(chain, cols, strict=True):  # undo
                    move(c, col)
        return False

    # 2. whole permutations into double / paired slots
    for k, a, b in _layered(need, cnt):
        put(k, a, b)
        need[a, b] -= 1
        need[b, a] -= 1
    # 3. the remaining lower circuits, outward from the most constrained pairs (see _placement_order)
    iu, ju = np.nonzero(np.triu(need, k=1))
    order = _placement_order(domain, n, iu, ju, need[iu, ju])
    pending: list[tuple[int, int]] = []
    for a, b in zip(iu[order].tolist(), ju[order].tolist(), strict=True):
        for t in range(int(need[a, b])):
            if not try_place(a, b):
                pending += [(a, b)] * (int(need[a, b]) - t)  # a pair that failed once fails again
                break
    if pending and walk:
        _walk(pending, cnt, placed, adj, put)
    lower = kept + [(k, a, b) for k, a, b in placed if k >= 0]
    cols = np.array(lower, dtype=np.int64).reshape(-1, 3).T
    Y = sym_split(K, n, cols[0], cols[1], cols[2], 1)
    # upper circuits
    for a in np.flatnonzero(needz).tolist():
        for _ in range(int(needz[a])):
            both = np.minimum(cnt[:, a], cnt_up)
            if both.max(initial=0) <= 0:
                break
            k = int(np.argmax(both))
            cnt[k, a] -= 1
            cnt_up[k] -= 1
            U[k, a] += 1
    return Y, U


def _placement_order(domain: Domain, n: int, iu: np.ndarray, ju: np.ndarray, need: np.ndarray) -> np.ndarray:
    """The order step 3 of the fast path places pairs in: outward from the most constrained pairs.

    A pair's slack is the ports it shares on the OCSes minus its circuits. Where pairs differ in slack
    (a plant whose nodes do not all share the same OCSes), the pairs of least slack come first and the
    rest follow by their hop distance from them in the demand graph: along a ring or chain each pair then
    finds its end already fixed and takes the OCSes left to it, instead of an early pair taking OCSes a
    later, more constrained neighbour needs. Ties (and a plant where every pair has the same slack: the
    order by circuits alone) go to the busiest pair, then the lowest.
    """
    if iu.size == 0:
        return np.zeros(0, dtype=np.int64)
    slack = domain.pair_capacity(iu, ju) - need
    dist = np.zeros(iu.size, dtype=np.int64)
    if slack.min() < slack.max():
        tight = slack == slack.min()
        g = sp.coo_array((np.ones(2 * iu.size), (np.concatenate([iu, ju]), np.concatenate([ju, iu]))), shape=(n, n))
        src = np.unique(np.concatenate([iu[tight], ju[tight]]))
        node_d = dijkstra(g.tocsr(), directed=False, indices=src, unweighted=True, min_only=True)
        node_d = np.where(np.isfinite(node_d), node_d, n + 1).astype(np.int64)
        dist = np.minimum(node_d[iu], node_d[ju])
    return np.lexsort((ju, iu, -need, slack, dist))


def _exact(domain: Domain, need: np.ndarray, needz: np.ndarray, prev: list[tuple[int, int, int, Circuit]],
           start: tuple[sp.coo_array, np.ndarray], time_limit_s: float, node_limit: int = NODE_LIMIT
           ) -> tuple[sp.coo_array | None, np.ndarray | None, int, str, bool]:
    """The per-OCS integer program of the module docstring: ``(Y, U, provable maximum, status, timed out)``."""
    from solver.backends.highs import solve_arrays

    n, K = domain.n, len(domain.ocs)
    cap = domain.port_matrix
    cap_up = np.array([len(u) for u in domain.upper_ports], dtype=np.int64)
    requested = int(np.triu(need, k=1).sum() + needz.sum())
    ea, eb = np.nonzero(np.triu(need, k=1))
    ne = need[ea, eb]
    m = ea.size
    yk, ye = shared_ocs(cap, ea, eb)
    zn = np.flatnonzero(needz > 0)
    umask = (cap[:, zn] > 0) & (cap_up[:, None] > 0)
    uk, uz = np.nonzero(umask)
    ui = zn[uz]
    pk, pa, pb = np.array([(k, a, b) for k, a, b, _ in prev if b >= 0], dtype=np.int64).reshape(-1, 3).T
    prevY = sym_split(K, n, pk, pa, pb, 1)
    prevU = np.zeros((K, n), dtype=np.int64)
    for k, a, b, _ in prev:
        if b < 0:
            prevU[k, a] += 1
    py = lookup(prevY, yk, ea[ye], eb[ye])
    pu = prevU[uk, ui]
    wy = np.flatnonzero(py > 0)
    wu = np.flatnonzero(pu > 0)
    ny, nu, nwy, nwu = yk.size, uk.size, wy.size, wu.size
    ncol = ny + nu + nwy + nwu
    if ny + nu == 0:
        return empty_split(K, n), np.zeros((K, n), dtype=np.int64), 0, "nothing placeable", False
    M = float(len(prev) + 1)
    oy, ou, owy, owu = 0, ny, ny + nu, ny + nu + nwy
    cost = np.concatenate([np.full(ny + nu, M), np.ones(nwy + nwu)])
    y_hi = np.minimum(ne[ye], np.minimum(cap[yk, ea[ye]], cap[yk, eb[ye]])).astype(np.float64)
    u_hi = np.minimum(needz[ui], np.minimum(cap[uk, ui], cap_up[uk])).astype(np.float64)
    col_lo = np.zeros(ncol)
    col_hi = np.concatenate([y_hi, u_hi, np.minimum(py[wy], y_hi[wy]), np.minimum(pu[wu], u_hi[wu])])
    integer = np.zeros(ncol, dtype=bool)
    integer[: ny + nu] = True
    # one port row per (OCS, node) that has ports there (K x n rows would be mostly empty: 640k at 64K GPUs)
    live = cap.reshape(-1) > 0
    prow = np.cumsum(live) - 1  # row offset of (k, i) among the live slots
    r_pair, r_z, r_port = 0, m, m + zn.size
    r_up = r_port + int(live.sum())
    r_wy = r_up + K
    r_wu = r_wy + nwy
    nrow = r_wu + nwu
    zrow = np.full(n, -1, dtype=np.int64)
    zrow[zn] = np.arange(zn.size)
    ar_y, ar_u = np.arange(ny), np.arange(nu)
    rows = [r_pair + ye, r_z + zrow[ui], r_port + prow[yk * n + ea[ye]], r_port + prow[yk * n + eb[ye]],
            r_port + prow[uk * n + ui],
            r_up + uk, r_wy + np.arange(nwy), r_wy + np.arange(nwy), r_wu + np.arange(nwu), r_wu + np.arange(nwu)]
    cols = [oy + ar_y, ou + ar_u, oy + ar_y, oy + ar_y, ou + ar_u, ou + ar_u, owy + np.arange(nwy), oy + wy,
            owu + np.arange(nwu), ou + wu]
    vals = [np.ones(ny), np.ones(nu), np.ones(ny), np.ones(ny), np.ones(nu), np.ones(nu), np.ones(nwy), -np.ones(nwy),
            np.ones(nwu), -np.ones(nwu)]
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nrow, ncol))
    row_lo = np.full(nrow, -np.inf)
    row_hi = np.concatenate([ne, needz[zn], cap.reshape(-1)[live], cap_up, np.zeros(nwy + nwu)]).astype(np.float64)
    Ys, Us = start
    v0 = np.concatenate([lookup(Ys, yk, ea[ye], eb[ye]), Us[uk, ui]]).astype(np.float64)
    v0 = np.concatenate([v0, np.minimum(v0[wy], col_hi[owy:owu]), np.minimum(v0[ny + wu], col_hi[owu:])])
    out = solve_arrays(cost, A, row_lo, row_hi, col_lo, col_hi, integer, start=v0,
                       time_limit_s=max(float(time_limit_s), 0.05), mip_gap=0.0, node_limit=node_limit)
    ub = requested
    if math.isfinite(out.bound):
        ub = min(ub, int(math.floor(out.bound / M + 1e-7)))
    if out.values is None:
        return None, None, ub, out.message, out.timed_out
    v = np.rint(out.values).astype(np.int64)
    U = np.zeros((K, n), dtype=np.int64)
    # (ocs, pair) and (ocs, node) indices are distinct: plain assignment, no np.add.at
    Y = sym_split(K, n, yk, ea[ye], eb[ye], v[oy:ou])
    U[uk, ui] = v[ou:owy]
    return Y, U, ub, out.message, out.timed_out



# ------------------------------------------------------------------------------------------------
# König layers


def orient(need: np.ndarray) -> np.ndarray:
    """Directed counts ``M`` with ``M + M.T == need`` and every node's out/in degree within one of half.

    Even multiplicities split evenly; the odd remainder (a simple graph) follows Euler circuits after its
    odd-degree nodes are joined to a dummy node.
    """
    n = need.shape[0]
    half = need // 2
    M = np.triu(half, k=1) + np.tril(half, k=-1)
    odd = np.triu(need % 2, k=1)
    iu, ju = np.nonzero(odd)
    if iu.size:
        g = nx.MultiGraph()
        g.add_edges_from(zip(iu.tolist(), ju.tolist(), strict=True))
        dummy = n  # joins odd-degree nodes (even count) and, by double edges, every other component
        g.add_edges_from((v, dummy) for v in sorted(v for v, d in g.degree() if d % 2))
        for comp in sorted(nx.connected_components(g), key=min):
            if dummy not in comp:
                v = min(comp)
                g.add_edges_from([(v, dummy), (v, dummy)])
        for u, v in nx.eulerian_circuit(g, source=dummy):
            if u != dummy and v != dummy:
                M[u, v] += 1
    return M


def _permutations(M: np.ndarray) -> list[np.ndarray]:
    """Split directed counts into permutation layers (``perm[i] = j`` or -1), most circuits first."""
    n = M.shape[0]
    M = M.copy()
    deg = int(max(M.sum(axis=1).max(initial=0), M.sum(axis=0).max(initial=0)))
    if deg == 0:
        return []
    # pad to a deg-regular bipartite multigraph (north-west corner on the deficits)
    D = np.zeros_like(M)
    rdef = deg - M.sum(axis=1)
    cdef = deg - M.sum(axis=0)
    i = j = 0
    while i < n and j < n:
        t = min(rdef[i], cdef[j])
        D[i, j] += t
        rdef[i] -= t
        cdef[j] -= t
        if rdef[i] == 0:
            i += 1
        if cdef[j] == 0:
            j += 1
    layers = []
    for _ in range(deg):
        W = np.where(M > 0, 2.0, np.where(D > 0, 1.0, -1e6))
        rows, cols = linear_sum_assignment(W, maximize=True)
        real = M[rows, cols] > 0
        perm = np.full(n, -1, dtype=np.int64)
        perm[rows[real]] = cols[real]
        M[rows[real], cols[real]] -= 1
        pad = ~real & (D[rows, cols] > 0)
        D[rows[pad], cols[pad]] -= 1
        layers.append(perm)
    layers.sort(key=lambda p: -int((p >= 0).sum()))
    return layers


def _alternate(perm: np.ndarray) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Split a permutation layer into two matchings along its paths and cycles (odd cycles lose an edge)."""
    n = perm.size
    inv = np.full(n, -1, dtype=np.int64)
    has = perm >= 0
    inv[perm[has]] = np.flatnonzero(has)
    seen = np.zeros(n, dtype=bool)
    first: list[tuple[int, int]] = []
    second: list[tuple[int, int]] = []
    starts = [i for i in range(n) if perm[i] >= 0 and inv[i] < 0] + list(range(n))
    for s in starts:
        if seen[s] or perm[s] < 0:
            continue
        v, colour, length = s, 0, 0
        cyc: list[tuple[int, int, int]] = []
        while v >= 0 and not seen[v] and perm[v] >= 0:
            seen[v] = True
            w = int(perm[v])
            if w == v:
                break
            cyc.append((v, w, colour))
            colour ^= 1
            length += 1
            v = w
        closed = v == s and length > 0
        if closed and length % 2 == 1:
            cyc.pop()  # odd cycle: its last edge would touch the first one's colour
        for a, b, c in cyc:
            (first if c == 0 else second).append((a, b))
    return first, second


def _layered(need: np.ndarray, cnt: np.ndarray) -> list[tuple[int, int, int]]:
    """(ocs, a, b) placements of whole permutation layers into the slots the free ports offer."""
    involved = np.flatnonzero(need.sum(axis=1) > 0)
    if involved.size < 2:
        return []
    sub = cnt[:, involved]
    doubles = sub.min(axis=1) // 2
    singles = sub.min(axis=1) - 2 * doubles
    slots: list[tuple[int, ...]] = []
    for k in range(cnt.shape[0]):
        slots += [(k,)] * int(doubles[k])
    single = [k for k in range(cnt.shape[0]) if singles[k] > 0]
    slots += [(single[t], single[t + 1]) for t in range(0, len(single) - 1, 2)]
    if not slots:
        return []
    layers = _permutations(orient(need))
    out: list[tuple[int, int, int]] = []
    for perm, slot in zip(layers, slots, strict=False):
        if len(slot) == 1:
            out += [(slot[0], int(a), int(perm[a])) for a in np.flatnonzero(perm >= 0).tolist()]
        else:
            m1, m2 = _alternate(perm)
            out += [(slot[0], a, b) for a, b in m1] + [(slot[1], a, b) for a, b in m2]
    return out
