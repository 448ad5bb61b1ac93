"""Per-phase summary rows and heat maps."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from rfabric.config import ClusterConfig
from traffic import build_workload
from traffic.summary import phase_summary


def test_summary_hand_case(cluster: ClusterConfig) -> None:
    # one ring all-reduce over all 128 GPUs: 128 flows, 1 peer each; 16 of 128 ring edges cross servers
    wl = build_workload({"kind": "collective", "collective": "all_reduce", "size_mb": 128}, cluster, seed=0)
    srv = np.arange(128) // 8
    pod = np.arange(128) // 64
    (row,) = phase_summary(wl, {"server": srv, "pod": pod})
    assert row["flows"] == 128 and row["peers_per_gpu"] == 1.0
    assert row["bytes"] == pytest.approx(128 * 2 * 127 / 128 * 128e6)
    assert row["cross_server_share"] == pytest.approx(16 / 128)
    assert row["cross_pod_share"] == pytest.approx(2 / 128)
    assert row["network_bytes"] == pytest.approx(row["bytes"] * 16 / 128)


def test_summary_rl_step_shares_nest(cluster: ClusterConfig) -> None:
    wl = build_workload({"model": "qwen3-30b-a3b"}, cluster, seed=0)
    g = {"server": np.arange(128) // 8, "tor": np.arange(128) // 16, "pod": np.arange(128) // 64}
    rows = phase_summary(wl, g)
    assert [r["name"] for r in rows] == [p.name for p in wl.phases]
    for r in rows:
        assert 0 <= r["cross_pod_share"] <= r["cross_tor_share"] <= r["cross_server_share"] <= 1
        for k in ("name", "phase", "flows", "bytes", "repeat", "compute_before_s", "compute_after_s", "peers_per_gpu"):
            assert k in r
    sync = rows[-1]
    assert sync["phase"] == "weight_sync" and sync["cross_pod_share"] == 1.0  # trainer pod -> rollout pod
    with pytest.raises(ValueError):
        phase_summary(wl, {"server": np.arange(10)})


@pytest.mark.parametrize("n", [2, 16, 512])
def test_heatmap_sizes_and_colourbar(n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rfabric.plotting.heatmaps import plot_heatmap

    rng = np.random.default_rng(0)
    m = sp.random(n, n, density=min(1.0, 8 / n), random_state=1, format="csr") * 1e10
    fig, ax = plt.subplots()
    out = plot_heatmap(m, ax=ax, title="t", labels=[f"pod{i}" for i in range(n)])
    assert out is ax and ax.get_title() == "t"
    cbar_axes = [a for a in fig.axes if a is not ax]
    assert len(cbar_axes) == 1 and cbar_axes[0].get_ylabel() in ("GB", "MB", "TB", "kB", "B")
    assert len(ax.get_xticks()) <= 16
    plt.close(fig)
    fig, ax = plt.subplots()
    plot_heatmap(rng.integers(0, 3, size=(n, n)), ax=ax, unit="circuits")
    assert [a for a in fig.axes if a is not ax][0].get_ylabel() == "circuits"
    plt.close(fig)


def test_heatmap_empty_and_bad_input() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rfabric.plotting.heatmaps import plot_heatmap

    ax = plot_heatmap(np.zeros((4, 4)))
    assert any(t.get_text() == "no traffic" for t in ax.texts)
    plt.close(ax.figure)
    with pytest.raises(ValueError):
        plot_heatmap(np.zeros(4))
    with pytest.raises(ValueError):
        plot_heatmap(np.ones((3, 3)), labels=["a"])
