"""Circuit templates: physically valid (independent checker), and each does what its name says."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import topologies
from rfabric.bom import bisection_bandwidth_bps
from rfabric.circuits import check_assignment
from rfabric.config import ClusterConfig
from rfabric.errors import ConfigError
from rfabric.topology import NodeRole
from topologies.templates import TEMPLATES, circuit_template, round_robin


@given(n=st.integers(0, 17), r=st.integers(0, 40))
def test_round_robin_round_is_a_matching(n: int, r: int) -> None:
    pairs = round_robin(n, r)
    members = [x for p in pairs for x in p]
    assert len(members) == len(set(members)) and all(0 <= x < n for x in members)
    assert all(a < b for a, b in pairs)
    assert len(pairs) == n // 2


@pytest.mark.parametrize("n", [2, 3, 6, 7])
def test_round_robin_covers_every_pair_once(n: int) -> None:
    rounds = n - 1 if n % 2 == 0 else n
    seen = [p for r in range(rounds) for p in round_robin(n, r)]
    assert sorted(seen) == sorted(itertools.combinations(range(n), 2))


@settings(max_examples=60, deadline=None)
@given(gps=st.sampled_from([1, 2, 4, 8]), servers=st.integers(2, 40), radix=st.sampled_from([8, 12, 16]),
       agg=st.sampled_from([0.0, 0.5, 1.0]), agg_up=st.sampled_from([0.0, 0.5, 1.0]),
       core=st.sampled_from([0.25, 0.75]), core_up=st.sampled_from([0.0, 1.0]),
       wiring=st.sampled_from(["striped", "blocked"]), template=st.sampled_from(TEMPLATES))
def test_templates_pass_the_checker(gps: int, servers: int, radix: int, agg: float, agg_up: float, core: float,
                                    core_up: float, wiring: str, template: str) -> None:
    cluster = ClusterConfig(trainer_gpus=servers * gps, rollout_gpus=0, gpus_per_server=gps)
    params = {"switch_radix": radix, "agg_ocs_share": agg, "agg_ocs_upper_share": agg_up, "core_ocs_share": core,
              "core_ocs_upper_share": core_up, "ocs_wiring": wiring, "allow_circuit_only": True, "agg_ocs_span": 1}
    try:
        topo = topologies.build("rfabric", params, cluster)
    except ConfigError as e:
        assert e.key.split(".")[-1] in {"switch_radix", "agg_ocs_upper_share", "ocs_radix"}, str(e)
        return
    a = circuit_template(topo, template)
    assert check_assignment(topo, a) == []
    g = topo.graph
    for u, v in a.endpoints(topo):
        pu, pv = g.nodes[u]["pod"], g.nodes[v]["pod"]
        if template == "isolated_pod":
            assert -1 in (pu, pv) or pu == pv
            assert g.nodes[u]["role"] is not NodeRole.CORE and g.nodes[v]["role"] is not NodeRole.CORE
        if template == "mesh":  # lower switches only: ToR-ToR in a pod, agg-agg across pods
            ru, rv = g.nodes[u]["role"], g.nodes[v]["role"]
            assert ru is rv and ru in (NodeRole.TOR, NodeRole.AGG)
            assert (pu == pv) if ru is NodeRole.TOR else (pu != pv)
    if template == "tree":  # never worse than the always-on path alone
        assert bisection_bandwidth_bps(topo, a) >= bisection_bandwidth_bps(topo) * (1 - 1e-9)


def test_mesh_joins_every_pod_pair() -> None:
    cluster = ClusterConfig(trainer_gpus=256, rollout_gpus=256)  # radix 16: 64 ToRs, 8 pods
    topo = topologies.build("rfabric", {"wiring": "core", "switch_radix": 16}, cluster)
    a = circuit_template(topo, "mesh")
    g = topo.graph
    pods = {tuple(sorted((g.nodes[u]["pod"], g.nodes[v]["pod"]))) for u, v in a.endpoints(topo)}
    assert pods == set(itertools.combinations(range(8), 2))
    # 6 fibred uplinks x 8 aggs = 48 planes, each a perfect matching of 8 pods: 4 circuits
    assert len(a) == 48 * 4


def test_templates_over_a_fabric_without_ocs_are_empty() -> None:
    topo = topologies.build("fat_tree", {"switch_radix": 16}, ClusterConfig())
    assert all(len(circuit_template(topo, t)) == 0 for t in TEMPLATES)


def test_unknown_template_is_a_config_error() -> None:
    topo = topologies.build("rfabric", {"wiring": "core", "switch_radix": 16}, ClusterConfig())
    with pytest.raises(ConfigError, match="did you mean 'mesh'"):
        circuit_template(topo, "mash")
