"""The small-fabric drawing returns a figure and refuses large fabrics."""

from __future__ import annotations

import pytest

import topologies
from rfabric.config import ClusterConfig
from rfabric.errors import ConfigError
from topologies.templates import circuit_template

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def test_draw_small_rfabric_with_circuits() -> None:
    import matplotlib.pyplot as plt

    from rfabric.plotting.network import draw_topology

    topo = topologies.build("rfabric", {"switch_radix": 8, "agg_ocs_share": 0.5},
                            ClusterConfig(trainer_gpus=32, rollout_gpus=32, gpus_per_server=4))
    fig, ax = plt.subplots()
    fig2, ax2 = draw_topology(topo, ax=ax, assignment=circuit_template(topo, "mesh"))
    assert fig2 is fig and ax2 is ax
    assert len(ax.lines) >= topo.graph.number_of_edges()
    plt.close(fig)


def test_draw_refuses_large_fabrics() -> None:
    from rfabric.plotting.network import draw_topology

    with pytest.raises(ConfigError):
        draw_topology(topologies.build("fat_tree", {"switch_radix": 16}, ClusterConfig()))
