"""The per-OCS split of one domain's circuits, stored sparse.

A split gives, for every OCS ``k`` of a domain and node pair ``(a, b)``, the circuits ``Y[k, a, b]`` that
pair holds on that OCS. As a dense array it is ``K x n x n`` (``K`` OCSes, ``n`` nodes): at 65,536 GPUs the
ToR-level domain has ``K = 312`` and ``n = 2,048`` -- 9.75 GiB of int64 -- while a node has only a few
dozen ports, so at most ``sum(ports) / 2`` entries are non-zero (24,576 there). The split is therefore a
``scipy.sparse.coo_array`` of shape ``(K, n, n)`` (n-dimensional COO, SciPy >= 1.15), symmetric
(``Y[k, a, b] == Y[k, b, a]``, empty diagonal) and in canonical form (no duplicate or zero entries,
coordinates sorted row-major, i.e. in the order ``np.nonzero`` gives on the dense array). Reductions are
SciPy's own: ``Y.sum(axis=0)`` is the dense ``n x n`` node-pair count, ``Y.sum(axis=2)`` the dense
``K x n`` ports used per (OCS, node).

>>> Y = sym_split(2, 3, [0, 1], [0, 2], [1, 0], [1, 2])
>>> Y.sum(axis=0).tolist()
[[0, 1, 2], [1, 0, 0], [2, 0, 0]]
>>> lookup(Y, np.array([0, 1, 1]), np.array([1, 0, 1]), np.array([0, 2, 2])).tolist()
[1, 2, 0]
>>> upper_total(Y)
3
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from rfabric.errors import InvalidArgumentError

Split = sp.coo_array


def sym_split(K: int, n: int, k: Any, a: Any, b: Any, v: Any) -> sp.coo_array:
    """The symmetric split holding ``v[i]`` circuits of pair ``(a[i], b[i])`` on OCS ``k[i]``.

    Entries may repeat (they are summed) and come in either orientation; zero counts are dropped.
    Shape ``(K, n, n)``, int64.
    """
    k = np.asarray(k, dtype=np.int64).ravel()
    a = np.asarray(a, dtype=np.int64).ravel()
    b = np.asarray(b, dtype=np.int64).ravel()
    v = np.broadcast_to(np.asarray(v, dtype=np.int64), k.shape).ravel()
    keep = v != 0
    k, a, b, v = k[keep], a[keep], b[keep], v[keep]
    Y = sp.coo_array((np.concatenate([v, v]), (np.concatenate([k, k]), np.concatenate([a, b]),
                                              np.concatenate([b, a]))), shape=(int(K), int(n), int(n)))
    Y.sum_duplicates()
    if Y.data.size and not np.all(Y.data):  # repeated entries of opposite sign summed to zero
        nz = Y.data != 0
        Y = sp.coo_array((Y.data[nz], tuple(c[nz] for c in Y.coords)), shape=Y.shape)
        Y.sum_duplicates()
    return Y


def empty_split(K: int, n: int) -> sp.coo_array:
    """A split without circuits, shape ``(K, n, n)``."""
    z = np.zeros(0, dtype=np.int64)
    return sym_split(K, n, z, z, z, z)


def as_split(Y: Any) -> sp.coo_array:
    """``Y`` as a canonical sparse split: a dense ``K x n x n`` array (tests, callers of the old form) or a
    sparse array of that shape."""
    if isinstance(Y, sp.coo_array) and Y.ndim == 3:
        Y = Y.copy()
        Y.sum_duplicates()
        return Y
    d = np.asarray(Y, dtype=np.int64)
    if d.ndim != 3:
        raise InvalidArgumentError(f"a per-OCS split has shape (K, n, n), not {d.shape}")
    k, a, b = np.nonzero(d)
    out = sp.coo_array((d[k, a, b], (k, a, b)), shape=d.shape)
    out.sum_duplicates()
    return out


def _keys(Y: sp.coo_array) -> np.ndarray:
    _, n, _ = Y.shape
    k, a, b = Y.coords
    return (np.asarray(k, dtype=np.int64) * n + a) * n + b


def lookup(Y: sp.coo_array, k: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Y[k, a, b]`` for index arrays (int64; 0 where ``Y`` holds nothing). ``Y`` must be canonical."""
    _, n, _ = Y.shape
    q = (np.asarray(k, dtype=np.int64) * n + np.asarray(a, dtype=np.int64)) * n + np.asarray(b, dtype=np.int64)
    keys = _keys(Y)
    pos = np.searchsorted(keys, q)
    pos = np.minimum(pos, max(keys.size - 1, 0))
    hit = keys[pos] == q if keys.size else np.zeros(q.shape, dtype=bool)
    return np.where(hit, Y.data[pos] if keys.size else 0, 0).astype(np.int64)


def upper_entries(Y: sp.coo_array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(k, a, b, count)`` of the entries with ``a < b`` (each circuit once), in row-major order."""
    k, a, b = Y.coords
    up = a < b
    return (np.asarray(k[up], dtype=np.int64), np.asarray(a[up], dtype=np.int64), np.asarray(b[up], dtype=np.int64),
            np.asarray(Y.data[up], dtype=np.int64))


def upper_total(Y: sp.coo_array) -> int:
    """Circuits in the split (each node pair counted once)."""
    _, a, b = Y.coords
    return int(Y.data[a < b].sum())


def shared_ocs(cap: np.ndarray, ea: np.ndarray, eb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero((cap[:, ea] > 0) & (cap[:, eb] > 0))`` without the dense ``K x pairs`` mask.

    ``cap`` is the ``K x n`` port matrix of a domain, ``(ea[e], eb[e])`` node pairs. Returns ``(k, e)``
    (int64, row-major order): OCS ``k`` has ports at both ends of pair ``e``. Built from a sparse
    (OCS, node) incidence, so its cost is the pairs times the OCSes a node reaches, not times all OCSes.
    """
    ea = np.asarray(ea, dtype=np.int64)
    eb = np.asarray(eb, dtype=np.int64)
    if ea.size == 0 or cap.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    P = sp.csc_array((np.asarray(cap) > 0).astype(np.int8))
    both = P[:, ea].multiply(P[:, eb]).tocoo()
    k = np.asarray(both.coords[0], dtype=np.int64)
    e = np.asarray(both.coords[1], dtype=np.int64)
    keep = both.data != 0
    k, e = k[keep], e[keep]
    order = np.lexsort((e, k))
    return k[order], e[order]
