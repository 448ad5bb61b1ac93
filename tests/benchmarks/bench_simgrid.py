"""Benchmark: the same flows through RFabric's engine and through SimGrid (a peer flow-level simulator).

Run as ``python tests/benchmarks/bench_simgrid.py --simgrid-python PATH/bin/python [--scenarios ...]``.

The peer is **not** part of this project nor of its dependencies. SimGrid (Casanova et al., JPDC 2014;
https://simgrid.org) is a C++ simulator whose network model solves max-min fair sharing (lazily: only
where an action changes). Its Python bindings build from PyPI's ``simgrid`` 4.1 source (C++; they need Boost headers, e.g.
Debian's ``libboost-dev``, and pybind11 < 3: ``pip install simgrid`` fails with pybind11 3.x) into a virtual
environment of their own, with numpy; e.g. configure the sdist with CMake (``-Denable_python=ON
-Dminimal-bindings=ON -Denable_smpi=OFF -Denable_model-checking=OFF -Denable_lto=OFF``), ``make
python-bindings`` (~15 min on 2 cores), and point ``--simgrid-python`` at a wrapper that puts the built
``lib/`` on ``PYTHONPATH`` and ``LD_LIBRARY_PATH``.

This script runs in the project's environment, writes each scenario (links, one route per host pair,
flows and their steps) to an ``.npz`` file and runs ``--simgrid-python`` on this same file in runner mode,
which imports only ``simgrid`` and numpy. Without ``--simgrid-python`` (or ``$RFABRIC_SIMGRID_PYTHON``)
only RFabric's side runs and the peer columns say ``absent``.

Scenarios on a 1,024-host three-tier Fat-Tree (one GPU per server, 400 Gb/s NICs, radix-32
switches, non-blocking) with per-flow hash ECMP (``sim.routing: hash``: one path per host pair, which
SimGrid is given as the pair's route), no link latency, exact mode (ε = 0):

* ``permutation``: every host sends 100 MB to a random other host (a derangement; seeded);
* ``all_to_all``: every host sends 1 MB to every other host (1,047,552 flows at once);
* ``ring``: host ``i`` sends 64 MB to host ``i + 1``;
* ``ring_steps``: ``--ring-steps`` steps of a ring all-reduce (each 64 MB / 1,024 per flow), a step
  starting when every flow of the previous one finished (RFabric: one chain, a stage per step;
  SimGrid: a controller actor starting the step's comms and waiting for all of them).

SimGrid runs with the ``CM02`` network model without TCP window bound and cross-traffic (pure max-min
on the link capacities), and timing / work-amount precisions of 1e-12, so both compute the same max-min
completion times. Reported: the largest relative difference of the per-flow completion times, and the wall
seconds of the simulation only (RFabric: ``run_flows`` on the built fabric; SimGrid: ``Engine.run``, with
the platform built before), medians of ``--repeat`` runs. Measured on a 2-core machine shared with other
users: noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:  # the runner mode runs in SimGrid's environment, without pytest
    import pytest

    pytestmark = pytest.mark.benchmark
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

HOSTS = 1024
SCENARIOS = ("permutation", "ring", "all_to_all", "ring_steps")


def scenario_flows(name: str, hosts: int = HOSTS, *, ring_steps: int = 64, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, size bytes, step) of a scenario's flows (``step`` 0 for one-shot scenarios)."""
    h = np.arange(hosts)
    if name == "permutation":
        rng = np.random.default_rng(seed)
        while True:
            perm = rng.permutation(hosts)
            if not np.any(perm == h):
                break
        return h, perm, np.full(hosts, 100e6), np.zeros(hosts, dtype=np.int64)
    if name == "ring":
        return h, (h + 1) % hosts, np.full(hosts, 64e6), np.zeros(hosts, dtype=np.int64)
    if name == "all_to_all":
        src = np.repeat(h, hosts - 1)
        off = np.tile(np.arange(1, hosts), hosts)
        return src, (src + off) % hosts, np.full(src.size, 1e6), np.zeros(src.size, dtype=np.int64)
    if name == "ring_steps":
        src = np.tile(h, ring_steps)
        return src, (src + 1) % hosts, np.full(src.size, 64e6 / hosts), np.repeat(np.arange(ring_steps), hosts)
    raise ValueError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")


def fat_tree(hosts: int = HOSTS):  # type: ignore[no-untyped-def]
    """The Fat-Tree: ``hosts`` servers of one GPU, 400 Gb/s NICs, radix-32 switches."""
    import topologies
    from rfabric.config import ClusterConfig

    return topologies.build("fat_tree", {"switch_radix": 32}, ClusterConfig(
        trainer_gpus=hosts // 2, rollout_gpus=hosts - hosts // 2, gpus_per_server=1, nic_bps=400e9))


def run_rfabric(src: np.ndarray, dst: np.ndarray, size: np.ndarray, step: np.ndarray, hosts: int = HOSTS
                ) -> tuple[np.ndarray, float, dict[str, np.ndarray]]:
    """(finish seconds of every flow, wall seconds of ``run_flows``, the platform for the peer)."""
    from rfabric.config import SimConfig
    from rfabric.sim.engine import run_flows
    from rfabric.sim.routing import Fabric
    from rfabric.workload import FlowSet

    topo = fat_tree(hosts)
    fabric = Fabric.build(topo, [None], routing="hash")
    fs = FlowSet.build(src, dst, size, chain=np.zeros(src.size, dtype=np.int64), stage=step)
    opts = SimConfig(merge_tolerance=0.0, link_latency=False, routing="hash")
    t0 = time.perf_counter()
    tr = run_flows(fabric, fs, assignment=None, changes=(), options=opts, seed=0, start_s=0.0)
    wall = time.perf_counter() - t0
    # the platform: every arc a link (bytes/s), one route (its arcs) per distinct host pair
    state = fabric.state(None)
    span = hosts
    key = src.astype(np.int64) * span + dst
    uk, first = np.unique(key, return_index=True)
    routes = state.route(src[first], dst[first], ecmp="hash", seed=0)
    inc = routes.incidence.tocsr()
    if not np.all(inc.data == 1.0):
        raise AssertionError("hash ECMP must give one path per host pair")
    return tr.finish_s, wall, {"cap_Bps": state.capacity_bps / 8.0, "pair_src": src[first], "pair_dst": dst[first],
                               "route_ptr": inc.indptr.astype(np.int64), "route_arc": inc.indices.astype(np.int64)}


def run_simgrid(python: str, platform: dict[str, np.ndarray], src: np.ndarray, dst: np.ndarray, size: np.ndarray,
                step: np.ndarray, hosts: int = HOSTS) -> tuple[np.ndarray, float]:
    """(finish seconds of every flow, wall seconds of ``Engine.run``) from SimGrid in its own interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.npz"
        out = Path(tmp) / "out.npz"
        np.savez(spec, hosts=np.array(hosts), src=src, dst=dst, size=size, step=step, **platform)
        subprocess.run([python, __file__, "--runner", str(spec), str(out)], check=True)
        res = np.load(out)
        return res["finish_s"], float(res["wall_s"])


def simgrid_runner(spec_path: str, out_path: str) -> None:
    """Runner mode (inside the SimGrid environment): build the platform, play the flows, save finish times."""
    import simgrid as sg

    spec = np.load(spec_path)
    hosts = int(spec["hosts"])
    src, dst, size, step = spec["src"], spec["dst"], spec["size"], spec["step"]
    cap = spec["cap_Bps"]
    e = sg.Engine(["bench_simgrid", "--cfg=contexts/factory:thread", "--cfg=network/model:CM02", "--cfg=network/TCP-gamma:0",
                   "--cfg=network/crosstraffic:0", "--cfg=precision/timing:1e-12",
                   "--cfg=precision/work-amount:1e-12", "--log=root.thres:critical"])
    zone = e.netzone_root.add_netzone_full("fabric")
    hs = [zone.add_host(f"h{i}", 1e9) for i in range(hosts)]
    ptr, arcs = spec["route_ptr"], spec["route_arc"]
    used = np.unique(arcs)
    links = {int(a): zone.add_link(f"l{int(a)}", float(cap[a])).seal() for a in used}
    for i, (s, d) in enumerate(zip(spec["pair_src"].tolist(), spec["pair_dst"].tolist(), strict=True)):
        zone.add_route(hs[s], hs[d], [sg.LinkInRoute(links[int(a)]) for a in arcs[ptr[i]:ptr[i + 1]]], False)
    zone.seal()
    finish = np.full(src.size, np.nan)
    order = np.argsort(step, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(step))]

    def controller() -> None:
        for k in range(bounds.size - 1):
            idx = order[bounds[k]:bounds[k + 1]].tolist()
            comms = [sg.Comm.sendto_async(hs[int(src[f])], hs[int(dst[f])], int(size[f])) for f in idx]
            sg.ActivitySet(comms).wait_all()
            finish[idx] = [c.finish_time for c in comms]

    hs[0].add_actor("controller", controller)
    t0 = time.perf_counter()
    e.run()
    wall = time.perf_counter() - t0
    np.savez(out_path, finish_s=finish, wall_s=np.array(wall))


def compare(name: str, python: str | None, *, ring_steps: int, hosts: int = HOSTS) -> dict[str, object]:
    src, dst, size, step = scenario_flows(name, hosts, ring_steps=ring_steps)
    fin_r, wall_r, platform = run_rfabric(src, dst, size, step, hosts)
    out: dict[str, object] = {"scenario": name, "hosts": hosts, "flows": int(src.size),
                              "steps": int(step.max()) + 1, "rfabric_wall_s": wall_r}
    if python:
        fin_s, wall_s = run_simgrid(python, platform, src, dst, size, step, hosts)
        rel = np.abs(fin_r - fin_s) / fin_s
        out.update({"simgrid_wall_s": wall_s, "ratio": wall_r / wall_s, "max_rel_diff": float(rel.max()),
                    "end_s": float(fin_r.max())})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--simgrid-python", default=os.environ.get("RFABRIC_SIMGRID_PYTHON"),
                    help="python of a virtual environment with simgrid and numpy installed")
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    ap.add_argument("--hosts", type=int, default=HOSTS)
    ap.add_argument("--ring-steps", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; median wall times are reported")
    ap.add_argument("--runner", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.runner:
        simgrid_runner(*args.runner)
        return 0
    python = args.simgrid_python if args.simgrid_python and Path(args.simgrid_python).exists() else None
    compare("ring", None, ring_steps=2, hosts=64)  # warm-up (numba kernels)
    for name in args.scenarios:
        runs = [compare(name, python, ring_steps=args.ring_steps, hosts=args.hosts) for _ in range(args.repeat)]
        best = dict(runs[0])
        for k in ("rfabric_wall_s", "simgrid_wall_s"):
            if k in best:
                best[k] = float(np.median([float(r[k]) for r in runs]))  # type: ignore[arg-type]
        if "simgrid_wall_s" in best:
            best["ratio"] = float(best["rfabric_wall_s"]) / float(best["simgrid_wall_s"])  # type: ignore[arg-type]
        else:
            best["simgrid"] = "absent"
        print(json.dumps(best), flush=True)
    return 0


def test_bench_simgrid_same_finish_times() -> None:
    """With SimGrid installed (``$RFABRIC_SIMGRID_PYTHON``), both agree within 1e-6 (opt-in: ``-m benchmark``)."""
    python = os.environ.get("RFABRIC_SIMGRID_PYTHON")
    if not python or not Path(python).exists():
        pytest.skip("SimGrid is not installed here (set RFABRIC_SIMGRID_PYTHON)")
    for name in ("permutation", "ring_steps"):
        r = compare(name, python, ring_steps=4, hosts=128)
        assert float(r["max_rel_diff"]) <= 1e-6, r  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
