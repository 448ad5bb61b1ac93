"""Direct-connect topology planning (``topoopt``): circuits between servers' NICs, no electrical path.

A direct-connect domain (:attr:`solver.formulation.Domain.direct`) has no always-on path, so the
single-hop hybrid model of :mod:`solver.formulation` does not describe it: traffic between servers without a
direct circuit is relayed through other servers (host forwarding, routed by the simulator on shortest
paths). The topology is engineered once per job the way TopoOpt (Wang et al., NSDI'23, section 4) does:

1. **Rings (TotientPerms).** ``ring_planes // 2`` rings over all servers, ring ``m`` visiting server
   ``(t * s_m) mod n`` at step ``t`` with a stride ``s_m`` coprime to ``n`` (so every ring is Hamiltonian:
   the all-reduce's ring and a connected backbone for relayed traffic). Strides are spread geometrically
   over ``1 .. n/2`` (short and long chords lower the diameter). A ring's circuits alternate between two
   NIC planes (a plane holds one port per server).
2. **Demand.** Ports left over take demand-driven circuits one at a time: the next goes to the server
   pair with the largest ``(D[a, b] + D[b, a]) / (circuits[a, b] + 1)`` (demand per circuit it would then
   have) whose servers have a free port on a common device; a pair that cannot get one is dropped
   (TopoOpt's demand-driven edges, greedy instead of its matching). With the step's aggregate demand the
   heavy collectives take the ports first; light pairs are relayed over them.
3. **Fill.** Ports still free after the demand is covered are paired along further strides (coprime ones
   first: more chords, shorter relayed paths) until no two servers have free ports on a common device.

Deterministic (no random choice). The concurrent-throughput alpha of a multi-hop topology is not
computed here (the simulator routes it); results report it as NaN with the circuit counts.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from rfabric.circuits import Circuit
from solver.formulation import Domain, Problem


def totient_strides(n: int, count: int) -> list[int]:
    """Up to ``count`` distinct strides in ``1 .. n // 2`` coprime to ``n``, spread geometrically, 1 first.

    >>> totient_strides(16, 3), totient_strides(2, 2), totient_strides(7, 10)
    ([1, 3, 5], [1], [1, 2, 3])
    """
    cands = [s for s in range(1, n // 2 + 1) if math.gcd(s, n) == 1]
    if count >= len(cands):
        return cands
    out: list[int] = []
    top = max(n / 2, 1.0)
    for i in range(count):
        target = top ** (i / count)
        for s in sorted(cands, key=lambda c: (abs(math.log(c) - math.log(target)), c)):
            if s not in out:
                out.append(s)
                break
    return sorted(out)


class _Ports:
    """Free ports of every (device, node) of a domain, taken in ascending order."""

    def __init__(self, dom: Domain) -> None:
        self.dom = dom
        self.free = [[list(p) for p in per] for per in dom.lower_ports]
        self.count = np.array([[len(p) for p in per] for per in dom.lower_ports], dtype=np.int64).reshape(
            len(dom.ocs), dom.n)
        self.circuits: list[Circuit] = []
        self.x = np.zeros((dom.n, dom.n), dtype=np.int64)

    def place(self, a: int, b: int, prefer: tuple[int, ...] = ()) -> bool:
        """One circuit between nodes ``a`` and ``b`` on the first device (``prefer`` first) with both free."""
        if a == b:
            return False
        cnt = self.count
        order = [k for k in prefer if 0 <= k < cnt.shape[0]]
        both = np.flatnonzero((cnt[:, a] > 0) & (cnt[:, b] > 0)).tolist()
        for k in order + both:
            if cnt[k, a] > 0 and cnt[k, b] > 0:
                pa = self.free[k][a].pop(0)
                pb = self.free[k][b].pop(0)
                cnt[k, a] -= 1
                cnt[k, b] -= 1
                self.circuits.append(Circuit(self.dom.ocs[k], min(pa, pb), max(pa, pb)))
                self.x[a, b] += 1
                self.x[b, a] += 1
                return True
        return False

    def any_free(self) -> bool:
        return bool(np.count_nonzero(self.count.sum(axis=0)) >= 2)


def plan_direct(p: Problem) -> tuple[np.ndarray, tuple[Circuit, ...], str]:
    """Circuits of a direct-connect domain for the (aggregate) demand of ``p`` (module docstring).

    Returns (symmetric circuit counts ``n x n``, circuits, a one-line account of what was placed).
    """
    dom = p.domain
    n = dom.n
    ports = _Ports(dom)
    if n < 2:
        return ports.x, (), "one server: no circuit"
    n_rings = max(dom.ring_planes, 0) // 2
    strides = totient_strides(n, n_rings)
    for m, s in enumerate(strides):
        order = (np.arange(n, dtype=np.int64) * s) % n
        for t in range(n if n > 2 else 1):
            a, b = int(order[t]), int(order[(t + 1) % n])
            ports.place(a, b, prefer=(2 * m + (t % 2),))
    ring_circuits = len(ports.circuits)
    S = np.triu(p.demand + p.demand.T, k=1)
    ia, ib = np.nonzero(S > 0)
    w = S[ia, ib]
    # one circuit at a time to the pair with the most demand per circuit it would have (ties: pair order)
    heap = [(-float(w[j]) / (ports.x[ia[j], ib[j]] + 1.0), j) for j in range(ia.size)]
    heapq.heapify(heap)
    while heap:
        _, j = heapq.heappop(heap)
        a, b = int(ia[j]), int(ib[j])
        if ports.place(a, b):
            heapq.heappush(heap, (-float(w[j]) / (ports.x[a, b] + 1.0), j))
    demand_circuits = len(ports.circuits) - ring_circuits
    coprime = totient_strides(n, n // 2)
    more = [s for s in coprime if s not in strides] + [s for s in range(1, n // 2 + 1) if s not in coprime] + strides
    progress = True
    while progress and ports.any_free():  # until no two servers share a device with free ports on both
        progress = False
        for s in more:
            has = ports.count.sum(axis=0) > 0
            for a in np.flatnonzero(has & has[(np.arange(n) + s) % n]).tolist():
                progress |= ports.place(a, (a + s) % n)
    fill = len(ports.circuits) - ring_circuits - demand_circuits
    msg = (f"direct-connect: {ring_circuits} ring circuits (strides {strides}), {demand_circuits} demand circuits, "
           f"{fill} filler; multi-hop alpha not modelled (the simulator relays through hosts)")
    return ports.x, tuple(ports.circuits), msg


__all__ = ["plan_direct", "totient_strides"]
