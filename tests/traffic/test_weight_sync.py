"""Weight sync pipelines (gather -> bucketed broadcast -> reload) through one bottleneck, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rfabric.config import ClusterConfig, SimConfig
from rfabric.sim import simulate
from rfabric.workload import Workload
from tests.sim.conftest import BIG_BPS, line_topology
from traffic import build_workload
from traffic.latency import Latency
from traffic.models import load_model

C_BPS = 8e9  # the only link between the trainer switch and the rollout switch: 1 GB/s
# NICs at the bottleneck rate: checkpoint_engine estimates a bucket's network time at NIC line rate
CLUSTER = ClusterConfig(trainer_gpus=8, rollout_gpus=8, nic_bps=C_BPS)


def _sync_time(ws: dict[str, object]) -> tuple[float, dict[str, object]]:
    spec = {"model": "qwen2.5-14b", "train": {"tp": 8}, "rollout": {"tp": 8}, "weight_sync": ws}
    wl = build_workload(spec, CLUSTER, seed=0)
    ph = wl.phase("weight_sync")
    topo = line_topology([C_BPS], hosts_per_switch=8)
    res = simulate(topo, Workload(name="w", num_gpus=16, phases=(ph,)), None,
                   options=SimConfig(link_latency=False, routing="split"))
    r = res.phases[0]
    return r.end_s - r.start_s, ph.meta


def test_gather_broadcast_through_one_bottleneck_by_hand() -> None:
    m = load_model("qwen2.5-14b")
    bucket, reload = 2e9, 10e9
    t, meta = _sync_time({"method": "gather_broadcast", "bucket_bytes": bucket, "reload_bytes_per_s": reload})
    nb = int(np.ceil(m.weight_bytes / bucket))
    b = m.weight_bytes / nb
    assert meta["buckets_per_stage"] == nb and meta["bucket_bytes"] == pytest.approx(b, rel=1e-12)
    lat = Latency.from_table("ll")
    a_g = lat.gather_s(8, 1)  # 8 TP ranks of one server
    a_b = lat.broadcast_s(2)  # the chain spans the trainer server and the rollout server
    # gather: 7 TP ranks send b/8 each into the source's NIC link (BIG_BPS shared 7 ways)
    t_g = (b / 8) / (BIG_BPS / 8 / 7)
    # broadcast chain source -> GPU 8 -> 9 -> ... -> 15: only the first edge crosses the 1 GB/s link
    t_b = b / (C_BPS / 8)
    want = nb * (a_g + t_g + a_b + t_b + b / reload)
    assert t == pytest.approx(want, rel=1e-9)


def test_checkpoint_engine_pipelines_the_three_steps() -> None:
    serial, _ = _sync_time({"method": "gather_broadcast", "bucket_bytes": 2e9, "reload_bytes_per_s": 2e9})
    piped, meta = _sync_time({"method": "checkpoint_engine", "bucket_bytes": 2e9, "reload_bytes_per_s": 2e9})
    b = meta["bucket_bytes"]
    nb = meta["buckets_per_stage"]
    # the reload (~1 s per bucket) hides under the ~2 s broadcast of the next bucket: one reload is left, and
    # the gathers (alpha + microseconds) hide too
    lat = Latency.from_table("ll")
    t_g = (b / 8) / (BIG_BPS / 8 / 7)
    hidden = (nb - 1) * (b / 2e9 + lat.gather_s(8, 1) + t_g)
    extra = (nb - 1) * (max(lat.gather_s(8, 1), lat.broadcast_s(2)) - lat.broadcast_s(2))
    assert piped == pytest.approx(serial - hidden + extra, rel=1e-9)
    one_s, _ = _sync_time({"method": "gather_broadcast", "bucket_gb": 100, "reload_bytes_per_s": 2e9})
    one_p, _ = _sync_time({"method": "checkpoint_engine", "bucket_gb": 100, "reload_bytes_per_s": 2e9})
    assert one_p == pytest.approx(one_s, rel=1e-12)  # a single bucket cannot be pipelined


def test_gather_broadcast_delivers_the_model_to_every_rollout_gpu(cluster: ClusterConfig) -> None:
    for model, train in (("qwen3-30b-a3b", {"ep": 8, "tp": 8}), ("qwen2.5-14b", {"tp": 4, "pp": 2})):
        for method in ("gather_broadcast", "checkpoint_engine"):
            wl = build_workload({"model": model, "train": train, "weight_sync": {"method": method}}, cluster, seed=0)
            fs = wl.phase("weight_sync").flows
            m = load_model(model)
            bc = np.array([t == "sync/broadcast" for t in fs.tags])[fs.tag]
            recv = np.bincount(fs.dst[bc], weights=fs.size_bytes[bc], minlength=128)
            assert np.allclose(recv[64:], m.weight_bytes, rtol=1e-9)  # every engine GPU gets the whole model
            assert np.all(recv[:64] == 0)
            ga = np.array([t == "sync/gather" for t in fs.tags])[fs.tag]
            assert np.all(fs.dst[ga] < 64) and np.all(fs.src[ga] < 64)
