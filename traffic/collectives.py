"""Collective algorithms as flows: every algorithm decides which GPU pairs talk, in which order.

Each builder takes ``groups``, an integer array of shape ``(G, n)``: ``G`` independent instances of the
same collective, each over ``n`` GPUs (row ``i`` lists the GPU ids of instance ``i`` in rank order), and
returns a :class:`~rfabric.workload.FlowSet` whose chain ``i`` is instance ``i``. Everything is vectorised
over instances and ranks.

Sizes (``size_bytes``, a scalar or one value per instance) follow the NCCL conventions:

=================  ==========================================  =====================================
collective         ``size_bytes`` is                           bytes each rank sends (n ranks)
=================  ==========================================  =====================================
all_reduce         the buffer on every rank                    ring, tree, halving-doubling:
                                                               ``2 (n-1)/n S`` (tree: on average)
reduce_scatter     the input on every rank (output ``S/n``)    ``(n-1)/n S``
all_gather         the gathered output (input ``S/n``)         ``(n-1)/n S``
all_to_all         what every rank sends in total, ``S/n``     ``(n-1)/n S``
                   to each rank (itself included)
broadcast          the buffer at the root                      ``(n-1) S`` in total
=================  ==========================================  =====================================

Step granularity (``stages``):

``"exact"``
    One chain stage per algorithm step (a ring all-reduce has ``2(n-1)`` stages of ``S/n``), as the
    algorithm runs it. Used by hand-checked tests and small cross-checks; ``O(n)`` more flows.
``"coalesced"``
    Steps that use the same pairs are merged into one stage (a ring's ``2(n-1)`` steps become one stage
    of flows carrying ``2(n-1)/n S``; a tree's levels run pipelined, all at once). In a fluid model with
    constant rates this finishes at the same time as the exact schedule on a ring (every step moves the
    same bytes over the same path); only the per-step latency is lost, which ``step_latency_s`` adds
    back as a start delay of ``(steps - 1) * step_latency_s``. Halving-doubling always runs its
    ``2 log2 n`` steps exactly (they use different pairs).

>>> import numpy as np
>>> fs = all_reduce(np.array([[0, 1, 2, 3]]), 4e6, algorithm="ring", stages="exact")
>>> len(fs), int(fs.stage.max()) + 1, float(fs.size_bytes[0])
(24, 6, 1000000.0)
>>> fs = all_reduce(np.array([[0, 1, 2, 3]]), 4e6, algorithm="ring")
>>> len(fs), fs.size_bytes.tolist()
(4, [6000000.0, 6000000.0, 6000000.0, 6000000.0])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rfabric.errors import InvalidArgumentError
from rfabric.workload import FlowSet

STAGES = ("coalesced", "exact")

#: algorithms of each collective; the first is the default
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "all_reduce": ("ring", "double_binary_tree", "halving_doubling", "hierarchical"),
    "reduce_scatter": ("ring", "halving_doubling"),
    "all_gather": ("ring", "halving_doubling"),
    "all_to_all": ("direct", "hierarchical"),
    "broadcast": ("tree",),
    "p2p": ("direct",),
}


class _Parts:
    """Accumulates flows as (row, src, dst, size, stage, delay) columns, then builds one FlowSet."""

    def __init__(self) -> None:
        self.cols: list[tuple[np.ndarray, ...]] = []

    def add(self, row: Any, src: Any, dst: Any, size: Any, stage: Any, delay: Any = 0.0, mult: Any = 1) -> None:
        src = np.asarray(src, dtype=np.int64)
        shape = src.shape
        if src.size == 0:
            return

        def b(x: Any, dt: Any) -> np.ndarray:
            return np.broadcast_to(np.asarray(x, dtype=dt), shape).ravel()

        self.cols.append((b(row, np.int64), src.ravel(), b(dst, np.int64), b(size, np.float64), b(stage, np.int64),
                          b(delay, np.float64), b(mult, np.int64)))

    def flowset(self, tag: str) -> FlowSet:
        if not self.cols:
            return FlowSet.empty()
        row, src, dst, size, stage, delay, mult = (np.concatenate(c) for c in zip(*self.cols, strict=True))
        keep = (size > 0) & (src != dst)
        row, src, dst, size, stage, delay, mult = (row[keep], src[keep], dst[keep], size[keep], stage[keep],
                                                   delay[keep], mult[keep])
        # deterministic order: chain, stage, src, dst
        order = np.lexsort((dst, src, stage, row))
        return FlowSet.build(src[order], dst[order], size[order], chain=row[order], stage=stage[order],
                             delay_s=delay[order], multiplicity=mult[order], tag=0, tags=(tag,))


def _prep(groups: Any, size_bytes: Any, delay_s: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.asarray(groups, dtype=np.int64)
    if g.ndim == 1:
        g = g[None, :]
    if g.ndim != 2:
        raise InvalidArgumentError("groups must be a (instances, ranks) array")
    if g.size and g.min() < 0:
        raise InvalidArgumentError("GPU ids must be >= 0")
    if g.shape[1] > 1:
        s = np.sort(g, axis=1)
        if np.any(s[:, 1:] == s[:, :-1]):
            raise InvalidArgumentError("a GPU appears twice in one collective group")
    size = np.broadcast_to(np.asarray(size_bytes, dtype=np.float64), (g.shape[0],)).copy()
    if np.any(size < 0) or not np.all(np.isfinite(size)):
        raise InvalidArgumentError("collective sizes must be finite and >= 0")
    delay = np.broadcast_to(np.asarray(delay_s, dtype=np.float64), (g.shape[0],)).copy()
    if np.any(delay < 0):
        raise InvalidArgumentError("delays must be >= 0")
    return g, size, delay


def _check_stages(stages: str) -> None:
    if stages not in STAGES:
        raise InvalidArgumentError(f"stages must be one of {STAGES}, not {stages!r}")


# --------------------------------------------------------------------------------------------------
# ring family


def _ring(parts: _Parts, g: np.ndarray, size: np.ndarray, delay: np.ndarray, steps: int, *, stages: str,
          stage0: int, step_latency_s: float, rows: np.ndarray | None = None) -> int:
    """``steps`` ring steps of ``size/n`` from every rank to the next; returns stages used."""
    G, n = g.shape
    if n < 2 or steps < 1:
        return 0
    rows = np.arange(G) if rows is None else rows
    src = g
    dst = np.roll(g, -1, axis=1)
    chunk = (size / n)[:, None]
    if stages == "exact":
        k = np.arange(steps)
        parts.add(np.broadcast_to(rows[:, None, None], (G, n, steps)),
                  np.broadcast_to(src[:, :, None], (G, n, steps)), np.broadcast_to(dst[:, :, None], (G, n, steps)),
                  np.broadcast_to(chunk[:, :, None], (G, n, steps)), np.broadcast_to(stage0 + k, (G, n, steps)),
                  np.where(k == 0, delay[:, None, None], 0.0) * np.ones((G, n, steps)))
        return steps
    parts.add(np.broadcast_to(rows[:, None], (G, n)), src, dst, np.broadcast_to(chunk * steps, (G, n)), stage0,
              np.broadcast_to((delay + (steps - 1) * step_latency_s)[:, None], (G, n)))
    return 1


def _halving_doubling(parts: _Parts, g: np.ndarray, size: np.ndarray, delay: np.ndarray, *, reduce: bool,
                      gather: bool, stage0: int) -> int:
    """Recursive halving (reduce-scatter) and/or recursive doubling (all-gather); n a power of two."""
    G, n = g.shape
    if n < 2:
        return 0
    if n & (n - 1):
        raise InvalidArgumentError(f"halving_doubling needs a power-of-two group size, not {n}")
    L = int(np.log2(n))
    rank = np.arange(n)
    rows = np.broadcast_to(np.arange(G)[:, None], (G, n))
    stage = stage0
    steps: list[tuple[int, float]] = []
    if reduce:
        steps += [(n >> (k + 1), 1.0 / (1 << (k + 1))) for k in range(L)]  # distance, fraction of S
    if gather:
        steps += [(1 << k, (1 << k) / n) for k in range(L)]
    for i, (dist, frac) in enumerate(steps):
        partner = rank ^ dist
        parts.add(rows, g, g[:, partner], np.broadcast_to((size * frac)[:, None], (G, n)), stage,
                  np.broadcast_to(delay[:, None], (G, n)) if i == 0 else 0.0)
        stage += 1
    return len(steps)


def _tree_edges(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Binary heap tree over positions 0..n-1: (child, parent, child depth) for every edge."""
    child = np.arange(1, n)
    parent = (child - 1) // 2
    depth = np.floor(np.log2(child + 1)).astype(np.int64)
    return child, parent, depth


def _double_binary_tree(parts: _Parts, g: np.ndarray, size: np.ndarray, delay: np.ndarray, *, stages: str,
                        stage0: int, step_latency_s: float) -> int:
    """Two binary trees, each reducing then broadcasting half the buffer.

    Tree A is the heap tree over ranks in order, tree B the same tree over ranks in reverse order, so the
    leaves of one are (mostly) inner nodes of the other, as in NCCL's double binary tree. Exact: one stage
    per tree level (reduce leaves-up, then broadcast root-down); coalesced: the pipelined fluid limit,
    every edge busy at once.
    """
    G, n = g.shape
    if n < 2:
        return 0
    child, parent, depth = _tree_edges(n)
    D = int(depth.max())
    half = (size / 2)[:, None]
    rows = np.broadcast_to(np.arange(G)[:, None], (G, n - 1))
    used = 0
    for perm in (np.arange(n), np.arange(n)[::-1]):
        c, p = g[:, perm[child]], g[:, perm[parent]]
        if stages == "exact":
            up = stage0 + (D - depth)  # deepest level first
            down = stage0 + D + depth - 1
            d0 = np.where(up == stage0, delay[:, None], 0.0)
            parts.add(rows, c, p, np.broadcast_to(half, c.shape), np.broadcast_to(up, c.shape), d0)
            parts.add(rows, p, c, np.broadcast_to(half, c.shape), np.broadcast_to(down, c.shape), 0.0)
            used = 2 * D
        else:
            d = np.broadcast_to((delay + (2 * D - 1) * step_latency_s)[:, None], c.shape)
            parts.add(rows, c, p, np.broadcast_to(half, c.shape), stage0, d)
            parts.add(rows, p, c, np.broadcast_to(half, c.shape), stage0, d)
            used = 1
    return used


def _by_server(g: np.ndarray, gpus_per_server: int) -> np.ndarray | None:
    """Members of each group as (G, servers, local) sorted by GPU id, or None if servers hold unequal counts."""
    s = np.sort(g, axis=1)
    srv = s // gpus_per_server
    G, n = s.shape
    counts = np.diff(np.flatnonzero(np.r_[True, srv[0, 1:] != srv[0, :-1], True]))
    local = int(counts[0])
    if n % local or np.any(counts != local):
        return None
    m = n // local
    out = s.reshape(G, m, local)
    sv = srv.reshape(G, m, local)
    if np.any(sv != sv[:, :, :1]) or (m > 1 and np.any(sv[:, 1:, 0] == sv[:, :-1, 0])):
        return None
    return out


def _hierarchical_all_reduce(parts: _Parts, g: np.ndarray, size: np.ndarray, delay: np.ndarray, *, stages: str,
                             stage0: int, step_latency_s: float, gpus_per_server: int) -> int:
    """NVLink reduce-scatter inside each server, ring all-reduce of ``S/l`` across servers between the GPUs
    with the same local index, NVLink all-gather: per rank ``2 (l-1)/l S + 2 (m-1)/(m l) S``."""
    G, n = g.shape
    h = _by_server(g, gpus_per_server)
    if h is None:
        raise InvalidArgumentError("hierarchical all-reduce needs the same number of group members in every server")
    _, m, local = h.shape
    kw: dict[str, Any] = {"stages": stages, "step_latency_s": step_latency_s}
    # intra-server reduce-scatter: G*m rings of `local` members
    intra = h.reshape(G * m, local)
    rows_intra = np.repeat(np.arange(G), m)
    used = _ring(parts, intra, np.repeat(size, m), np.repeat(delay, m), local - 1, stage0=stage0,
                 rows=rows_intra, **kw)
    # inter-server all-reduce among GPUs with the same local index: G*local rings of m members, S/local
    inter = h.transpose(0, 2, 1).reshape(G * local, m)
    first = used == 0
    used += _ring(parts, inter, np.repeat(size / local, local), np.repeat(delay if first else 0 * delay, local),
                  2 * (m - 1), stage0=stage0 + used, rows=np.repeat(np.arange(G), local), **kw)
    used += _ring(parts, intra, np.repeat(size, m), np.zeros(G * m), local - 1, stage0=stage0 + used,
                  rows=rows_intra, **kw)
    return used


# --------------------------------------------------------------------------------------------------
# public builders


def all_reduce(groups: Any, size_bytes: Any, *, algorithm: str = "ring", stages: str = "coalesced",
               delay_s: Any = 0.0, step_latency_s: float = 0.0, gpus_per_server: int = 8,
               tag: str = "all_reduce") -> FlowSet:
    """All-reduce of ``size_bytes`` on every rank of every group (see the module table)."""
    _check_stages(stages)
    g, size, delay = _prep(groups, size_bytes, delay_s)
    parts = _Parts()
    if algorithm == "ring":
        _ring(parts, g, size, delay, 2 * (g.shape[1] - 1), stages=stages, stage0=0, step_latency_s=step_latency_s)
    elif algorithm == "double_binary_tree":
        _double_binary_tree(parts, g, size, delay, stages=stages, stage0=0, step_latency_s=step_latency_s)
    elif algorithm == "halving_doubling":
        _halving_doubling(parts, g, size, delay, reduce=True, gather=True, stage0=0)
    elif algorithm == "hierarchical":
        _hierarchical_all_reduce(parts, g, size, delay, stages=stages, stage0=0, step_latency_s=step_latency_s,
                                 gpus_per_server=gpus_per_server)
    else:
        raise InvalidArgumentError(f"unknown all_reduce algorithm {algorithm!r}; known: {ALGORITHMS['all_reduce']}")
    return parts.flowset(tag)


def _scatter_or_gather(kind: str, groups: Any, size_bytes: Any, *, algorithm: str, stages: str, delay_s: Any,
                       step_latency_s: float, tag: str) -> FlowSet:
    """The n-1 ring steps (or log2 n halving/doubling rounds) shared by reduce-scatter and all-gather."""
    _check_stages(stages)
    g, size, delay = _prep(groups, size_bytes, delay_s)
    parts = _Parts()
    if algorithm == "ring":
        _ring(parts, g, size, delay, g.shape[1] - 1, stages=stages, stage0=0, step_latency_s=step_latency_s)
    elif algorithm == "halving_doubling":
        reduce = kind == "reduce_scatter"
        _halving_doubling(parts, g, size, delay, reduce=reduce, gather=not reduce, stage0=0)
    else:
        raise InvalidArgumentError(f"unknown {kind} algorithm {algorithm!r}; known: {ALGORITHMS[kind]}")
    return parts.flowset(tag)


def reduce_scatter(groups: Any, size_bytes: Any, *, algorithm: str = "ring", stages: str = "coalesced",
                   delay_s: Any = 0.0, step_latency_s: float = 0.0, tag: str = "reduce_scatter",
                   **_: Any) -> FlowSet:
    """Reduce-scatter of an ``size_bytes`` input per rank (each rank ends with ``S/n`` reduced)."""
    return _scatter_or_gather("reduce_scatter", groups, size_bytes, algorithm=algorithm, stages=stages,
                              delay_s=delay_s, step_latency_s=step_latency_s, tag=tag)


def all_gather(groups: Any, size_bytes: Any, *, algorithm: str = "ring", stages: str = "coalesced",
               delay_s: Any = 0.0, step_latency_s: float = 0.0, tag: str = "all_gather", **_: Any) -> FlowSet:
    """All-gather into an output of ``size_bytes`` (each rank contributes ``S/n``)."""
    return _scatter_or_gather("all_gather", groups, size_bytes, algorithm=algorithm, stages=stages,
                              delay_s=delay_s, step_latency_s=step_latency_s, tag=tag)


def _server_shift(parts: _Parts, rows: np.ndarray, h: np.ndarray, size: np.ndarray, stage: int,
                  delay: np.ndarray) -> None:
    """The symmetric exchange inside every server of ``h`` (``(G, m, local)`` members; each sends ``size[g]``
    to each of its ``local - 1`` server peers) as ``local`` flows ``l -> l+1`` of multiplicity ``local - 1``."""
    G, m, local = h.shape
    if local < 2:
        return
    shape = (G, m, local)
    parts.add(np.broadcast_to(rows[:, None, None], shape), h, np.roll(h, -1, axis=2),
              np.broadcast_to(size[:, None, None], shape), stage,
              np.broadcast_to(np.asarray(delay, dtype=np.float64).reshape(-1, 1, 1), shape), local - 1)


def all_to_all(groups: Any, size_bytes: Any, *, algorithm: str = "direct", stages: str = "coalesced",
               delay_s: Any = 0.0, step_latency_s: float = 0.0, gpus_per_server: int = 8,
               tag: str = "all_to_all", nvlink_shift: bool = False) -> FlowSet:
    """All-to-all where every rank sends ``size_bytes / n`` to every rank.

    ``direct``: every pair at once (exact: ``n-1`` shifted pairwise-exchange stages). ``hierarchical``:
    first over NVLink to the local GPU whose index matches the destination's (``m S/n`` per local peer),
    then across servers between GPUs of equal local index (``l S/n`` per remote peer): the network carries
    the same ``(m-1)/m S`` per rank with ``m-1`` instead of ``n-m`` remote peers.

    ``nvlink_shift`` (coalesced, groups with the same count of members in every server): the symmetric
    exchange inside each server -- ``l (l-1)`` flows of one size -- becomes ``l`` flows from each member to
    the next of its server with multiplicity ``l - 1``. Inside a server every GPU has one NVLink port to the
    server's NVSwitch (``gpu -> nvs -> gpu``), so each port carries the same number of flows of the same
    size either way, and max-min rates and finish times are the same (an exact reduction of the flow count
    for the NVLink star; the GPU pairs in the traffic matrix are not).
    """
    _check_stages(stages)
    g, size, delay = _prep(groups, size_bytes, delay_s)
    G, n = g.shape
    parts = _Parts()
    if n < 2:
        return FlowSet.empty()
    h = _by_server(g, gpus_per_server) if nvlink_shift and stages == "coalesced" else None
    if algorithm == "direct":
        shift = np.arange(1, n)
        i = np.arange(n)
        src = np.broadcast_to(g[:, :, None], (G, n, n - 1))
        dst = g[:, (i[:, None] + shift[None, :]) % n]
        chunk = np.broadcast_to((size / n)[:, None, None], (G, n, n - 1))
        rows = np.broadcast_to(np.arange(G)[:, None, None], (G, n, n - 1))
        if stages == "exact":
            st = np.broadcast_to(shift - 1, (G, n, n - 1))
            parts.add(rows, src, dst, chunk, st, np.where(st == 0, delay[:, None, None], 0.0))
        elif h is not None:
            cross = src // gpus_per_server != dst // gpus_per_server
            parts.add(rows[cross], src[cross], dst[cross], chunk[cross], 0,
                      np.broadcast_to(delay[:, None, None], (G, n, n - 1))[cross])
            _server_shift(parts, np.arange(G), h, size / n, 0, delay)
        else:
            parts.add(rows, src, dst, chunk, 0, np.broadcast_to(delay[:, None, None], (G, n, n - 1)))
    elif algorithm == "hierarchical":
        h = _by_server(g, gpus_per_server)
        if h is None:
            raise InvalidArgumentError("hierarchical all-to-all needs the same number of group members in every server")
        _, m, local = h.shape
        if local > 1 and nvlink_shift and stages == "coalesced":
            _server_shift(parts, np.arange(G), h, size * m / n, 0, delay)
        elif local > 1:  # stage 0: (s, l) -> (s, l') carrying m * S/n
            a = np.arange(local)
            src = np.broadcast_to(h[:, :, :, None], (G, m, local, local))
            dst = np.broadcast_to(h[:, :, None, :], (G, m, local, local))
            off = a[:, None] != a[None, :]
            sz = np.broadcast_to((size * m / n)[:, None, None, None], (G, m, local, local))
            rows = np.broadcast_to(np.arange(G)[:, None, None, None], (G, m, local, local))
            parts.add(rows[:, :, off], src[:, :, off], dst[:, :, off], sz[:, :, off], 0,
                      np.broadcast_to(delay[:, None, None, None], (G, m, local, local))[:, :, off])
        if m > 1:  # stage 1: (s, l') -> (s', l') carrying local * S/n
            s_idx = np.arange(m)
            off = s_idx[:, None] != s_idx[None, :]
            src = np.broadcast_to(h[:, :, None, :], (G, m, m, local))
            dst = np.broadcast_to(h[:, None, :, :], (G, m, m, local))
            sz = np.broadcast_to((size * local / n)[:, None, None, None], (G, m, m, local))
            rows = np.broadcast_to(np.arange(G)[:, None, None, None], (G, m, m, local))
            stage1 = 1 if local > 1 else 0
            parts.add(rows[:, off], src[:, off], dst[:, off], sz[:, off], stage1,
                      0.0 if stage1 else np.broadcast_to(delay[:, None, None, None], (G, m, m, local))[:, off])
    else:
        raise InvalidArgumentError(f"unknown all_to_all algorithm {algorithm!r}; known: {ALGORITHMS['all_to_all']}")
    return parts.flowset(tag)


def broadcast(groups: Any, size_bytes: Any, *, algorithm: str = "tree", root: int = 0, stages: str = "coalesced",
              delay_s: Any = 0.0, step_latency_s: float = 0.0, tag: str = "broadcast", **_: Any) -> FlowSet:
    """Binary-tree broadcast of ``size_bytes`` from rank ``root`` of each group: ``(n-1) S`` in total.

    Exact: one stage per tree level; coalesced: pipelined (every edge streams at once).
    """
    _check_stages(stages)
    if algorithm != "tree":
        raise InvalidArgumentError(f"unknown broadcast algorithm {algorithm!r}; known: {ALGORITHMS['broadcast']}")
    g, size, delay = _prep(groups, size_bytes, delay_s)
    G, n = g.shape
    if n < 2:
        return FlowSet.empty()
    if not 0 <= root < n:
        raise InvalidArgumentError(f"root must be in 0..{n - 1}")
    child, parent, depth = _tree_edges(n)
    pos = (np.arange(n) + root) % n
    c, p = g[:, pos[child]], g[:, pos[parent]]
    rows = np.broadcast_to(np.arange(G)[:, None], c.shape)
    sz = np.broadcast_to(size[:, None], c.shape)
    parts = _Parts()
    if stages == "exact":
        st = np.broadcast_to(depth - 1, c.shape)
        parts.add(rows, p, c, sz, st, np.where(st == 0, delay[:, None], 0.0))
    else:
        D = int(depth.max())
        parts.add(rows, p, c, sz, 0, np.broadcast_to((delay + (D - 1) * step_latency_s)[:, None], c.shape))
    return parts.flowset(tag)


def point_to_point(src: Any, dst: Any, size_bytes: Any, *, chain: Any = None, stage: Any = 0, delay_s: Any = 0.0,
                   tag: str = "p2p") -> FlowSet:
    """Independent transfers ``src[i] -> dst[i]`` (each its own chain unless ``chain`` is given)."""
    s = np.asarray(src, dtype=np.int64)
    d = np.broadcast_to(np.asarray(dst, dtype=np.int64), s.shape)
    if np.any(s == d):
        raise InvalidArgumentError("a point-to-point flow from a GPU to itself")
    parts = _Parts()
    parts.add(np.arange(s.size).reshape(s.shape) if chain is None else chain, s, d, size_bytes, stage, delay_s)
    return parts.flowset(tag)


BUILDERS: dict[str, Callable[..., FlowSet]] = {
    "all_reduce": all_reduce,
    "reduce_scatter": reduce_scatter,
    "all_gather": all_gather,
    "all_to_all": all_to_all,
    "broadcast": broadcast,
}


def collective(op: str, groups: Any, size_bytes: Any, *, algorithm: str | None = None, **kw: Any) -> FlowSet:
    """Dispatch by name: ``collective("all_reduce", groups, S, algorithm="ring", stages="exact")``."""
    if op not in BUILDERS:
        raise InvalidArgumentError(f"unknown collective {op!r}; known: {sorted(BUILDERS)}")
    algo = algorithm or ALGORITHMS[op][0]
    if op in ("reduce_scatter", "all_gather", "broadcast"):
        kw.pop("gpus_per_server", None)
    return BUILDERS[op](groups, size_bytes, algorithm=algo, **kw)


def then(first: FlowSet, second: FlowSet, *, delay_s: float = 0.0) -> FlowSet:
    """Run ``second`` after ``first`` in the same chains (chain ``i`` of both is the same instance):
    ``second``'s stages are shifted past ``first``'s last stage; its first stage waits ``delay_s`` more."""
    if not len(first):
        return second
    if not len(second):
        return first
    off = int(first.stage.max()) + 1
    d = second.delay_s + np.where(second.stage == second.stage.min(), delay_s, 0.0)
    tags = list(first.tags)
    for t in second.tags:
        if t not in tags:
            tags.append(t)
    remap = np.array([tags.index(t) for t in second.tags], dtype=np.int16)
    return FlowSet(src=np.concatenate([first.src, second.src]), dst=np.concatenate([first.dst, second.dst]),
                   size_bytes=np.concatenate([first.size_bytes, second.size_bytes]),
                   chain=np.concatenate([first.chain, second.chain]),
                   stage=np.concatenate([first.stage, second.stage + off]),
                   delay_s=np.concatenate([first.delay_s, d]),
                   multiplicity=np.concatenate([first.multiplicity, second.multiplicity]),
                   tag=np.concatenate([first.tag, remap[second.tag]]), tags=tuple(tags))


def split_over(fs_builder: Callable[[int, float], FlowSet], pieces: int, gap_s: float) -> FlowSet:
    """``pieces`` copies of a collective in the same chains, one after another, each waiting ``gap_s`` of
    compute first: e.g. a TP all-reduce per micro-batch. ``fs_builder(i, delay)`` builds piece ``i``."""
    out = fs_builder(0, gap_s)
    for i in range(1, pieces):
        out = then(out, fs_builder(i, 0.0), delay_s=gap_s)
    return out
