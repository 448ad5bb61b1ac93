"""Route sets are reused when a run returns to a circuit state it has seen (``_Run.routed``).

A pipelined RFabric step goes back and forth between a few circuit states; the routes of a state are a
pure function of it, so reusing them must give bit-identical results to compiling them again.
"""

from __future__ import annotations

import numpy as np
import pytest

from rfabric import api
from rfabric.sim import engine

COMPILE_ROUTES = engine._compile_routes


def _step(monkeypatch: pytest.MonkeyPatch, cache_bytes: int) -> tuple[dict[str, np.ndarray], list[int]]:
    monkeypatch.setattr(engine, "ROUTE_CACHE_BYTES", cache_bytes)
    seen: list[int] = []

    def counting(state, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(id(state))
        return COMPILE_ROUTES(state, *args, **kwargs)

    monkeypatch.setattr(engine, "_compile_routes", counting)
    cfg = api.load_config(None, {"cluster.trainer_gpus": 128, "cluster.rollout_gpus": 128,
                                 "workload.model": "qwen3-30b-a3b", "workload.schedule.mode": "one_step_off",
                                 "sim.merge_tolerance": 0.0, "fabrics": ["rfabric"], "reference": "rfabric"})
    wl = api.build_workload(cfg)
    topo = api.build_topology(cfg, "rfabric")
    res = api.simulate(cfg, topo, wl, api.plan_circuits(cfg, topo, wl))
    return res.flow_finish_s, seen


def test_states_seen_again_reuse_their_routes_bit_identically(monkeypatch: pytest.MonkeyPatch) -> None:
    cached, with_cache = _step(monkeypatch, engine.ROUTE_CACHE_BYTES)
    fresh, without = _step(monkeypatch, 0)  # keep only the current state's routes: compile on every change
    # the step comes back to states it has seen: fewer compilations (each run_flows call compiles its own)
    assert len(without) > len(with_cache) >= len(set(with_cache))
    assert cached.keys() == fresh.keys()
    for k in cached:
        assert np.array_equal(cached[k], fresh[k], equal_nan=True), k
