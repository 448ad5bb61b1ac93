"""Benchmark: the same flows through RFabric's engine and through m3's flowSim (a peer flow-level simulator).

Run as ``python tests/benchmarks/bench_peer.py --m3-lib PATH/get_fct_mmf.so [--flows 20000 100000]``.

The peer is **not** part of this project nor of its dependencies. m3 (Li et al., SIGCOMM 2024,
https://github.com/netiken/m3) ships flowSim as C in ``clibs/`` (``get_fct_mmf.c`` + ``topo.c``): a
max-min event simulator that recomputes progressive filling from scratch at every arrival and
completion, on a parking-lot topology only. Build it yourself, outside this repository::

    gcc -O3 -fcommon -fPIC -shared -o get_fct_mmf.so topo.c get_fct_mmf.c -lm

(``-fcommon``: the file defines its globals in a header, which GCC >= 10 rejects by default.) Without
``--m3-lib`` (or ``$RFABRIC_M3_LIB``) only RFabric's side runs and the peer columns say ``absent``.

Scenario: m3's two-layer parking lot: ``HOSTS`` hosts, host ``i`` on switch ``i`` by a 10 Gb/s link,
switches in a chain of 40 Gb/s links (m3's ``topo = [1, 4]`` x ``base_lr = 10``); every direction of
every link is a separate capacity. Flows: uniform random (src != dst) host pairs, Poisson arrivals,
log-normal sizes (median 20 kB, sigma 2, clipped to 1 B .. 100 MB), arrival rate set for a mean load of
``--load`` on the host links; seeded. m3 charges 48 B of header per started 1,000 B of payload, so RFabric
gets those wire bytes as its flow size. Both report per-flow completion times; the table gives the
largest relative difference (flowSim freezes links whose share is within 1e-4 Gb/s of the minimum, so
ties are broken slightly differently) and the wall time of the simulation call only (RFabric: the
``run_flows`` call on a prebuilt fabric; flowSim: the ``get_fct_mmf`` C call).

The numbers quoted in the README were taken on a 2-core machine shared with other users: noisy.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.benchmark

HOSTS = 7
HOST_GBPS = 10.0
CHAIN_GBPS = 40.0
MEDIAN_BYTES = 20_000.0
SIGMA = 2.0


def parking_lot_flows(n: int, *, hosts: int = HOSTS, load: float = 0.5, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, payload bytes, arrival ns) of ``n`` flows, arrivals sorted (what flowSim expects)."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, hosts, n)
    dst = (src + rng.integers(1, hosts, n)) % hosts
    size = np.clip(np.round(rng.lognormal(np.log(MEDIAN_BYTES), SIGMA, n)), 1.0, 1e8)
    wire_bits = (size + np.ceil(size / 1000.0) * 48.0) * 8.0
    # mean load on a host uplink: rate/hosts * E[bits] / (10 bits/ns)
    rate_per_ns = load * HOST_GBPS * hosts / float(wire_bits.mean())
    arrival_ns = np.cumsum(rng.exponential(1.0 / rate_per_ns, n))
    return src.astype(np.int32), dst.astype(np.int32), size, arrival_ns


def rfabric_parking_lot(hosts: int = HOSTS):  # type: ignore[no-untyped-def]
    """The same two-layer parking lot as an RFabric topology: ``gpu{i} --PCIe-- nic{i} -- tor{i}`` (10 Gb/s,
    the PCIe hop as fast, so it never binds alone), ``tor{i} -- tor{i+1}`` at 40 Gb/s, no latency."""
    import networkx as nx

    from rfabric.topology import Medium, NodeRole, Topology

    g = nx.Graph()
    g.graph.update(kind="parking_lot", gpus_per_server=1, nic_bps=HOST_GBPS * 1e9)

    def link(u: str, v: str, bps: float, medium: Medium = Medium.OPTICAL) -> None:
        g.add_edge(u, v, links=1, link_bps=bps, capacity_bps=bps, latency_s=0.0, medium=medium)

    for s in range(hosts):
        g.add_node(f"tor{s}", role=NodeRole.TOR, radix=3, port_bps=CHAIN_GBPS * 1e9, pod=0, index=s, local=s)
        attrs = {"gpu": s, "server": s, "tor": f"tor{s}", "pod": 0, "rail": 0}
        g.add_node(f"gpu{s}", role=NodeRole.GPU, **attrs)
        g.add_node(f"nic{s}", role=NodeRole.NIC, port_bps=HOST_GBPS * 1e9, **attrs)
        link(f"gpu{s}", f"nic{s}", HOST_GBPS * 1e9, Medium.PCIE)
        link(f"nic{s}", f"tor{s}", HOST_GBPS * 1e9)
    for s in range(hosts - 1):
        link(f"tor{s}", f"tor{s + 1}", CHAIN_GBPS * 1e9)
    return Topology(name="parking_lot", kind="parking_lot", graph=g)


def run_rfabric(src: np.ndarray, dst: np.ndarray, size: np.ndarray, arrival_ns: np.ndarray, eps: float = 0.0,
                loop: bool = True) -> tuple[np.ndarray, float]:
    """(FCT ns of every flow, wall seconds of the simulation) on RFabric's engine."""
    from rfabric.config import SimConfig
    from rfabric.sim.engine import run_flows
    from rfabric.sim.routing import Fabric
    from rfabric.workload import FlowSet

    topo = rfabric_parking_lot(int(max(src.max(), dst.max())) + 1)
    fabric = Fabric.build(topo, [None])
    wire = size + np.ceil(size / 1000.0) * 48.0
    fs = FlowSet.build(src, dst, wire, chain=np.arange(src.size), delay_s=arrival_ns * 1e-9)
    t0 = time.perf_counter()
    tr = run_flows(fabric, fs, assignment=None, changes=(), options=SimConfig(merge_tolerance=eps, link_latency=False),
                   seed=0, start_s=0.0, loop=loop)
    wall = time.perf_counter() - t0
    return (tr.finish_s - tr.start_s) * 1e9, wall


def run_m3(lib: str, src: np.ndarray, dst: np.ndarray, size: np.ndarray, arrival_ns: np.ndarray
           ) -> tuple[np.ndarray, float]:
    """(FCT ns of every flow, wall seconds of the C call) on m3's flowSim (two-layer parking lot)."""
    c = ctypes.CDLL(lib)

    class FCT(ctypes.Structure):
        _fields_ = [("estimated_fcts", ctypes.POINTER(ctypes.c_double)), ("t_flows", ctypes.POINTER(ctypes.c_double)),
                    ("num_flows", ctypes.POINTER(ctypes.c_uint)), ("num_flows_enq", ctypes.POINTER(ctypes.c_uint))]

    c.get_fct_mmf.restype = FCT
    c.get_fct_mmf.argtypes = [ctypes.c_uint, ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double),
                              ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int), ctypes.c_int,
                              ctypes.POINTER(ctypes.c_int), ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    c.free_fctstruct.argtypes = [FCT]
    n = src.size
    fats = np.ascontiguousarray(arrival_ns, dtype=np.float64)
    sizes = np.ascontiguousarray(size, dtype=np.float64)
    s = np.ascontiguousarray(src, dtype=np.int32)
    d = np.ascontiguousarray(dst, dtype=np.int32)
    topo = np.array([1, int(CHAIN_GBPS / HOST_GBPS)], dtype=np.int32)
    dp = ctypes.POINTER(ctypes.c_double)
    ip = ctypes.POINTER(ctypes.c_int)
    hosts = int(max(src.max(), dst.max())) + 1
    # flowSim prints a banner on stdout: send the C library's stdout to stderr for the call
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        t0 = time.perf_counter()
        res = c.get_fct_mmf(n, fats.ctypes.data_as(dp), sizes.ctypes.data_as(dp), s.ctypes.data_as(ip),
                            d.ctypes.data_as(ip), hosts, topo.ctypes.data_as(ip), 1, 8, 2, int(HOST_GBPS))
        wall = time.perf_counter() - t0
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    fct = np.ctypeslib.as_array(res.estimated_fcts, shape=(n,)).copy()
    c.free_fctstruct(res)
    return fct, wall


def compare(n: int, lib: str | None, *, load: float = 0.5, seed: int = 0, eps: float = 0.0, loop: bool = True
            ) -> dict[str, object]:
    src, dst, size, arr = parking_lot_flows(n, load=load, seed=seed)
    fct_r, wall_r = run_rfabric(src, dst, size, arr, eps, loop)
    out: dict[str, object] = {"flows": n, "hosts": HOSTS, "load": load, "eps": eps, "rfabric_wall_s": wall_r}
    if lib:
        fct_m, wall_m = run_m3(lib, src, dst, size, arr)
        rel = np.abs(fct_r - fct_m) / fct_m
        out.update({"m3_wall_s": wall_m, "ratio": wall_r / wall_m, "max_rel_diff": float(rel.max()),
                    "p99_rel_diff": float(np.quantile(rel, 0.99)), "within_1e-6": float(np.mean(rel <= 1e-6))})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--m3-lib", default=os.environ.get("RFABRIC_M3_LIB"), help="path of m3's get_fct_mmf.so")
    ap.add_argument("--flows", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--load", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eps", type=float, default=0.0, help="RFabric's merge_tolerance (0 = exact, like flowSim)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the median wall time is reported")
    ap.add_argument("--interpreted", action="store_true",
                    help="RFabric's interpreted event loop (run_flows(loop=False)): the speed before issue #19")
    args = ap.parse_args(argv)
    lib = args.m3_lib if args.m3_lib and Path(args.m3_lib).exists() else None
    loop = not args.interpreted
    compare(200, lib, load=args.load, seed=args.seed, eps=args.eps, loop=loop)  # warm-up (numba kernels)
    for n in args.flows:
        runs = [compare(n, lib, load=args.load, seed=args.seed, eps=args.eps, loop=loop) for _ in range(args.repeat)]
        best = dict(runs[0])
        for k in ("rfabric_wall_s", "m3_wall_s"):
            if k in best:
                best[k] = float(np.median([float(r[k]) for r in runs]))  # type: ignore[arg-type]
        if "m3_wall_s" in best:
            best["ratio"] = float(best["rfabric_wall_s"]) / float(best["m3_wall_s"])  # type: ignore[arg-type]
        else:
            best["m3"] = "absent"
        print(json.dumps(best), flush=True)
    return 0


def test_bench_peer_same_fcts() -> None:
    """With the peer built (``$RFABRIC_M3_LIB``), both simulators agree on 2,000 flows (opt-in: ``-m benchmark``)."""
    lib = os.environ.get("RFABRIC_M3_LIB")
    if not lib or not Path(lib).exists():
        pytest.skip("m3's flowSim is not built here (set RFABRIC_M3_LIB)")
    r = compare(2000, lib)
    assert float(r["max_rel_diff"]) < 1e-4  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
