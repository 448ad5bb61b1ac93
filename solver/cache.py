"""Memoised domain solves: a problem's signature and a bounded LRU of the circuit counts it solved to."""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from solver.formulation import Problem
from solver.options import SolverOptions

# ------------------------------------------------------------------------------------------------
# Cache


@dataclass(frozen=True, slots=True, eq=False)
class CachedCounts:
    x: np.ndarray
    z: np.ndarray
    termination: str
    stage: str
    bound: float
    heuristic_alpha: float
    rows: int
    cols: int
    nonzeros: int
    message: str
    alt: tuple[np.ndarray, np.ndarray] | None = None  # the heuristic's counts when the MILP's won
    alpha: float = float("nan")  # alpha of (x, z) when known (saves re-solving the transit routing LP)
    split: tuple[Any, np.ndarray] | None = None  # per-OCS split of (x, z) (sparse Y, dense U: solver.ocs_split)


@dataclass
class SolveCache:
    """Solved circuit counts by a signature of the (quantised, normalised) problem; LRU, explicit object.

    Demands are normalised by their own busiest node, so a phase that repeats with the same pattern (every
    training step, every weight sync) hits even when its byte counts drift within ``quantise``.
    """

    max_entries: int = 256
    hits: int = 0
    misses: int = 0
    _store: OrderedDict[str, CachedCounts] = field(default_factory=OrderedDict)

    def get(self, key: str) -> CachedCounts | None:
        e = self._store.get(key)
        if e is None:
            self.misses += 1
            return None
        self._store.move_to_end(key)
        self.hits += 1
        return e

    def put(self, key: str, entry: CachedCounts) -> None:
        self._store[key] = entry
        self._store.move_to_end(key)
        while len(self._store) > self.max_entries:
            self._store.popitem(last=False)

    def __len__(self) -> int:
        return len(self._store)


#: signatures already computed, per problem (dropped with it) and options
_SIGNATURES: weakref.WeakKeyDictionary[Problem, dict[SolverOptions, str]] = weakref.WeakKeyDictionary()


def signature(p: Problem, options: SolverOptions) -> str:
    """Hash of a domain problem, quantised to ``options.quantise`` of its largest demand (remembered per
    problem and options: problems are not mutated)."""
    memo = _SIGNATURES.get(p)
    if memo is None:
        memo = _SIGNATURES[p] = {}
    got = memo.get(options)
    if got is None:
        got = memo[options] = _signature(p, options)
    return got


def _signature(p: Problem, options: SolverOptions) -> str:
    h = hashlib.sha256()
    d = p.domain
    h.update(d.digest)
    src, dst, dv = p.nonzeros
    big = max(float(dv.max(initial=0.0)), float(p.ext_out.max(initial=0.0)), float(p.ext_in.max(initial=0.0)))
    step = options.quantise * big if options.quantise > 0 and big > 0 else 0.0
    # the demand matrix by its non-zero (quantised) entries: the same key for the same quantised matrix
    q = np.rint(dv / step).astype(np.int64) if step > 0 else dv
    keep = q != 0
    h.update(repr(p.demand.shape).encode())
    for arr in (src[keep], dst[keep], q[keep]):
        h.update(np.ascontiguousarray(arr).tobytes())
    for arr in (p.ext_out, p.ext_in):
        qa = np.rint(arr / step).astype(np.int64) if step > 0 else arr
        h.update(np.ascontiguousarray(qa).tobytes())
    for arr in (p.eps_out, p.eps_in, p.budget):
        h.update(np.ascontiguousarray(arr).tobytes())
    track = p.x_prev is not None and (p.penalty > 0 or p.max_changed >= 0)
    if track:
        h.update(np.ascontiguousarray(p.x_prev).tobytes())
        h.update(np.ascontiguousarray(p.z_prev if p.z_prev is not None else np.zeros(p.n)).tobytes())
    opts = (options.backend, options.pulp_solver, options.model, options.mip_gap, options.node_limit,
            options.reconfig_penalty if track else 0.0, options.max_changed if track else -1, options.min_alpha,
            options.time_limit_s, options.seed, options.ocs_max_columns)
    h.update(repr(opts).encode())
    return h.hexdigest()
