"""Figure fixes of issue 16, checked on the drawn figures: labels, legends, no two text boxes overlapping,
coinciding lines still visible, circuit heat maps per domain with a count scale, NVLink bytes kept out of
network heat maps."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from rfabric import api
from rfabric.plotting.compare import fabric_colour
from rfabric.plotting.figures import FIGURES
from rfabric.plotting.heatmaps import network_bytes, plot_domains
from rfabric.traffic_matrix import TrafficMatrix

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _sweep(tmp_path: Path, key: str, values: list[float], perf: dict[str, list[float]],
           kinds: dict[str, str]) -> Path:
    cols = ["run_id", "seed", "status", key, "fabric", "kind", "gpus", "time_vs_ref", "capex_usd",
            "perf_per_usd_vs_ref"]
    with (tmp_path / "sweep.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for i, v in enumerate(values):
            for name, ys in perf.items():
                w.writerow([f"r{i}", 0, "ok", v, name, kinds[name], 256, 1.0, 1e6 * (1 + i), ys[i]])
    return tmp_path


def _boxes_overlap(texts: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    fig = texts[0].figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(r)) for t in texts if t.get_text().strip()]
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]


def test_ocs_price_break_even_labels_do_not_overlap(tmp_path: Path) -> None:
    """Two OCS fabrics breaking even $50 apart: both labels drawn, neither on top of the other."""
    prices = [100.0, 500.0, 1000.0, 1500.0]
    d = _sweep(tmp_path, "cost.prices.ocs_port_usd", prices,
               {"fat_tree": [1, 1, 1, 1], "rfabric": [1.4, 1.2, 1.02, 0.9], "static_ocs": [1.4, 1.2, 1.01, 0.9]},
               {"fat_tree": "fat_tree", "rfabric": "rfabric", "static_ocs": "static_ocs"})
    fig = FIGURES["ocs_price"](d)
    labels = [t for t in fig.axes[1].texts if "break-even" in t.get_text()]
    assert len(labels) == 2
    assert not _boxes_overlap(labels)
    plt.close(fig)


def test_eps_share_plots_the_ocs_share(tmp_path: Path) -> None:
    d = _sweep(tmp_path, "topology.agg_ocs_share", [0.25, 0.5, 0.75],
               {"fat_tree": [1, 1, 1], "rfabric": [1.1, 1.2, 1.3]}, {"fat_tree": "fat_tree", "rfabric": "rfabric"})
    fig = FIGURES["eps_share"](d)
    assert all("OCS share" in ax.get_xlabel() for ax in fig.axes)
    xs = [line.get_xdata() for line in fig.axes[0].lines if line.get_label() == "rfabric"][0]
    assert list(xs) == [0.25, 0.5, 0.75]  # the swept share itself, not 1 - share
    plt.close(fig)


def test_coinciding_fabrics_stay_visible(tmp_path: Path) -> None:
    """RFabric equal to static OCS and the 4:1 variant: distinct dashes, RFabric on top, all in the legend."""
    d = _sweep(tmp_path, "topology.ocs_reconfig_ms", [0.01, 1.0, 100.0],
               {"fat_tree": [1, 1, 1], "fat_tree_4to1": [1, 1, 1], "rfabric": [1.2, 1.2, 1.2],
                "static_ocs": [1.2, 1.2, 1.2]},
               {"fat_tree": "fat_tree", "fat_tree_4to1": "fat_tree", "rfabric": "rfabric", "static_ocs": "static_ocs"})
    fig = FIGURES["reconfig"](d)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}
    assert set(lines) == {"fat_tree", "fat_tree_4to1", "rfabric", "static_ocs"}
    assert lines["rfabric"].get_zorder() > lines["static_ocs"].get_zorder()
    assert lines["rfabric"].get_linestyle() != lines["static_ocs"].get_linestyle()
    assert {t.get_text() for t in ax.get_legend().get_texts()} == set(lines)
    plt.close(fig)


@pytest.mark.parametrize("i", range(4))
def test_variant_colours_are_visible_on_white(i: int) -> None:
    rgb = np.array(matplotlib.colors.to_rgb(fabric_colour("fat_tree_4to1", "fat_tree", i)))
    assert np.abs(1.0 - rgb).max() > 0.3  # not washed out to near-white


def test_circuit_heat_map_per_domain_with_a_count_scale() -> None:
    pods = np.array([[0, 2], [2, 0]])
    tors = np.array([[0, 1, 3], [1, 0, 0], [3, 0, 0]])
    fig = plot_domains([("core", ["pod0", "pod1"], pods), ("pod0", ["tor0", "tor1", "tor2"], tors)])
    heat = [ax for ax in fig.axes if ax.get_title() in ("core", "pod0")]
    assert len(heat) == 2
    assert [t.get_text() for t in heat[0].get_yticklabels()] == ["pod0", "pod1"]
    bars = [ax for ax in fig.axes if ax not in heat]
    assert [b.get_ylabel() for b in bars] == ["circuits", "circuits"]
    assert all(type(im.norm).__name__ == "Normalize" for ax in heat for im in ax.images)
    plt.close(fig)


def test_network_heat_map_leaves_nvlink_bytes_out() -> None:
    cfg = api.load_config(overrides={"cluster.trainer_gpus": 8, "cluster.rollout_gpus": 8})
    topo = api.build_topology(cfg, "fat_tree")
    # GPU 0 -> 1 stays in server 0 (NVLink); GPU 0 -> 8 crosses to server 1
    tm = TrafficMatrix.from_pairs(16, [0, 0], [1, 8], [5e9, 3e9])
    m = network_bytes(tm, topo, "server")
    assert m.sum() == pytest.approx(3e9)
    assert m[0, 1] == pytest.approx(3e9)


def test_plot_any_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rfabric.cli import main

    d = _sweep(tmp_path, "cluster.nic_gbps", [200.0, 400.0, 800.0],
               {"fat_tree": [1, 1, 1], "rfabric": [1.1, 1.3, 1.2]}, {"fat_tree": "fat_tree", "rfabric": "rfabric"})
    assert main(["plot", "sweep", str(d), "--x", "cluster.nic_gbps", "--y", "perf_per_usd_vs_ref",
                 "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig.png").stat().st_size > 1000
    from rfabric.plotting.sweep import plot_sweep, read_sweep

    fig = plot_sweep(read_sweep(d), "cluster.nic_gbps", "perf_per_usd_vs_ref")
    rf = [ln for ln in fig.axes[0].lines if ln.get_label() == "rfabric"][0]
    assert list(rf.get_xdata()) == [200.0, 400.0, 800.0] and list(rf.get_ydata()) == [1.1, 1.3, 1.2]
    assert fig.axes[0].get_xlabel() == "cluster.nic_gbps" and fig.axes[0].get_ylabel() == "perf_per_usd_vs_ref"
    plt.close(fig)
    for args, flag in ((["--x", "cluster.nic_gpbs", "--y", "capex_usd"], "did you mean 'cluster.nic_gbps'"),
                       (["--x", "cluster.nic_gbps", "--y", "fabric"], "--y"),
                       (["--y", "capex_usd"], "--x")):
        capsys.readouterr()
        assert main(["plot", "sweep", str(d), *args]) == 2
        err = capsys.readouterr().err
        assert flag in err and "Traceback" not in err
