"""Port level: turn circuit counts between nodes into concrete OCS port pairs (duplex circuits).

Steps, for one domain:

1. **Keep.** Every circuit of the previous assignment whose node pair still wants a circuit stays exactly
   where it is (same OCS, same ports). This keeps ``sum min(x, x_prev)`` circuits, the most possible.
2. **Layers (König).** The remaining counts are oriented so every node sends and receives about half of
   its circuits (Euler orientation of the odd remainder), the directed multigraph is padded to a regular
   bipartite one and split into permutations (one ``linear_sum_assignment`` each; König's theorem says
   they exist). A permutation uses at most two ports per node, so it fits whole on an OCS offering every
   node two free ports ("double slot"), or, alternating along its paths and even cycles, on two OCSes
   offering one port each ("paired slot"; an odd cycle leaves one circuit to step 3).
3. **Place.** Circuits left over are given OCSes greedily (the OCS with the most free ports for the
   scarcer end), then, when no OCS has both ends free, by a Kempe-chain swap between two OCSes (move an
   alternating chain of circuits from OCS a to OCS b and back). With one port per node per OCS this is
   edge colouring, which duplex circuits can fail (a triangle over two OCSes): such circuits are
   **dropped and counted**, never forced.
4. **Fill.** Ports left free by dropped circuits are paired again where there is demand.
5. **Ports.** Each OCS's circuits take their nodes' free ports in ascending order.

The counts are realised at the OCS level first (steps 2-3 move counts, not ports), so a swap never strands
a port. Costs a few ms for a thousand circuits.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy.optimize import linear_sum_assignment

from rfabric.circuits import Circuit, CircuitAssignment
from solver.formulation import Domain


@dataclass(frozen=True, slots=True, eq=False)
class Realisation:
    """The circuits of one domain and what became of the requested counts."""

    circuits: tuple[Circuit, ...]
    x: np.ndarray  # realised node-pair counts (symmetric)
    z: np.ndarray  # realised upper circuits per node
    kept: int  # circuits left exactly in place from the previous assignment
    dropped: int  # requested circuits that no OCS could hold (duplex / per-OCS port limits)
    refilled: int  # circuits added on ports freed by dropped ones


def _port_maps(domain: Domain) -> list[dict[int, int]]:
    """Per OCS: port -> node index (``-1`` for an upper port)."""
    out = []
    for per, up in zip(domain.lower_ports, domain.upper_ports, strict=True):
        m = {port: i for i, ports in enumerate(per) for port in ports}
        m.update({port: -1 for port in up})
        out.append(m)
    return out


def previous_counts(domain: Domain, previous: CircuitAssignment | None) -> tuple[np.ndarray, np.ndarray]:
    """Node-pair counts ``x`` and upper counts ``z`` of the previous assignment's circuits in ``domain``."""
    n = domain.n
    x = np.zeros((n, n), dtype=np.int64)
    z = np.zeros(n, dtype=np.int64)
    if previous is None:
        return x, z
    kidx = {o: k for k, o in enumerate(domain.ocs)}
    maps = _port_maps(domain)
    for c in previous.circuits:
        k = kidx.get(c.ocs)
        if k is None:
            continue
        a, b = maps[k].get(c.port_a), maps[k].get(c.port_b)
        if a is None or b is None or (a < 0 and b < 0):
            continue
        if a >= 0 and b >= 0:
            if a != b:
                x[a, b] += 1
                x[b, a] += 1
        else:
            z[max(a, b)] += 1
    return x, z


def realise(domain: Domain, x: np.ndarray, z: np.ndarray | None = None, previous: CircuitAssignment | None = None,
            weight: np.ndarray | None = None) -> Realisation:
    """Concrete circuits for counts ``x`` (symmetric, node pairs) and ``z`` (upper, per node).

    ``weight`` (node x node, e.g. demand) ranks pairs for refilling ports freed by dropped circuits.
    """
    n, K = domain.n, len(domain.ocs)
    need = np.array(x, dtype=np.int64, copy=True)
    np.fill_diagonal(need, 0)
    needz = np.zeros(n, dtype=np.int64) if z is None else np.array(z, dtype=np.int64, copy=True)
    free_ports = [[set(ports) for ports in per] for per in domain.lower_ports]
    free_up = [set(up) for up in domain.upper_ports]
    maps = _port_maps(domain)
    kidx = {o: k for k, o in enumerate(domain.ocs)}
    fixed: list[Circuit] = []
    # 1. keep previous circuits in place
    if previous is not None:
        for c in previous.circuits:
            k = kidx.get(c.ocs)
            if k is None:
                continue
            a, b = maps[k].get(c.port_a), maps[k].get(c.port_b)
            if a is None or b is None:
                continue
            if a >= 0 and b >= 0 and a != b and need[a, b] > 0:
                need[a, b] -= 1
                need[b, a] -= 1
                free_ports[k][a].discard(c.port_a)
                free_ports[k][b].discard(c.port_b)
                fixed.append(c)
            elif (a < 0) != (b < 0) and needz[max(a, b)] > 0:
                i = max(a, b)
                needz[i] -= 1
                lower_port, upper_port = (c.port_a, c.port_b) if a >= 0 else (c.port_b, c.port_a)
                free_ports[k][i].discard(lower_port)
                free_up[k].discard(upper_port)
                fixed.append(c)
    kept = len(fixed)
    cnt = np.array([[len(s) for s in per] for per in free_ports], dtype=np.int64).reshape(K, n)
    cnt_up = np.array([len(s) for s in free_up], dtype=np.int64)
    placed: list[list[int]] = []  # [ocs, a, b] of movable lower circuits
    adj: list[list[list[int]]] = [[[] for _ in range(n)] for _ in range(K)]  # circuit ids per OCS and node

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
        if both.max(initial=0) > 0:
            k = int(np.argmax(both * (n + 1) * 4 + cnt[:, a] + cnt[:, b]))
            put(k, a, b)
            return True
        return kempe(a, b) or kempe(b, a)

    def kempe(a: int, b: int) -> bool:
        """Free a port of ``b`` on some OCS where ``a`` has one, by swapping a chain between two OCSes."""
        for al in np.flatnonzero(cnt[:, a] > 0).tolist()[:4]:
            for be in np.flatnonzero(cnt[:, b] > 0).tolist()[:4]:
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
                before = cnt.copy()
                cols = [placed[c][0] for c in chain]
                for c in chain:
                    move(c, be if placed[c][0] == al else al)
                if cnt.min() >= 0 and cnt[al, a] > 0 and cnt[al, b] > 0:
                    put(al, a, b)
                    return True
                for c, col in zip(chain, cols, strict=True):  # undo
                    move(c, col)
                if not np.array_equal(cnt, before):  # pragma: no cover - undo is exact
                    raise RuntimeError("Kempe undo failed")
        return False

    # 2. whole permutations into double / paired slots
    for k, a, b in _layered(need, cnt):
        put(k, a, b)
        need[a, b] -= 1
        need[b, a] -= 1
    # 3. place the remaining lower circuits, busiest pairs first
    iu, ju = np.nonzero(np.triu(need, k=1))
    order = np.lexsort((ju, iu, -need[iu, ju]))
    dropped = 0
    for a, b in zip(iu[order].tolist(), ju[order].tolist(), strict=True):
        for _ in range(int(need[a, b])):
            if not try_place(a, b):
                dropped += 1
    # upper circuits
    up_placed: list[tuple[int, int]] = []
    for a in np.flatnonzero(needz).tolist():
        for _ in range(int(needz[a])):
            both = np.minimum(cnt[:, a], cnt_up)
            if both.max(initial=0) <= 0:
                dropped += 1
                continue
            k = int(np.argmax(both))
            cnt[k, a] -= 1
            cnt_up[k] -= 1
            up_placed.append((k, a))
    # 4. refill ports freed by dropped circuits where there is demand
    refilled = 0
    if dropped and weight is not None:
        w = np.asarray(weight, dtype=np.float64)
        w = np.maximum(w, w.T)
        live = np.flatnonzero(cnt.sum(axis=0) > 0)
        if live.size > 1:
            sub = w[np.ix_(live, live)]
            ii, jj = np.nonzero(np.triu(sub > 0, k=1))
            order = np.argsort(-sub[ii, jj], kind="stable")
            for s, t in zip(ii[order].tolist(), jj[order].tolist(), strict=True):
                a, b = int(live[s]), int(live[t])
                while True:
                    both = np.minimum(cnt[:, a], cnt[:, b])
                    if both.max(initial=0) <= 0:
                        break
                    put(int(np.argmax(both)), a, b)
                    refilled += 1
    # 5. concrete ports, ascending
    pools = [[sorted(s, reverse=True) for s in per] for per in free_ports]
    up_pools = [sorted(s, reverse=True) for s in free_up]
    circuits = list(fixed)
    for k, a, b in sorted(placed):
        pa, pb = pools[k][a].pop(), pools[k][b].pop()
        circuits.append(Circuit(domain.ocs[k], min(pa, pb), max(pa, pb)))
    for k, a in sorted(up_placed):
        pa, pb = pools[k][a].pop(), up_pools[k].pop()
        circuits.append(Circuit(domain.ocs[k], min(pa, pb), max(pa, pb)))
    xr, zr = previous_counts(domain, CircuitAssignment.of(circuits))
    return Realisation(circuits=tuple(sorted(circuits)), x=xr, z=zr, kept=kept, dropped=dropped, refilled=refilled)


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
