"""The evaluation figures (issue #17) on hand-made sweep rows: derived columns, seed statistics, the
dynamic-vs-static gain map's numbers, and that no two series or texts hide each other."""

from __future__ import annotations

import itertools
import math

import matplotlib
import pytest

from rfabric.errors import ConfigError
from rfabric.plotting.evaluation import derived, plot_gain_map, plot_headline, plot_sensitivity, stats

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FABRICS = {"fat_tree": "fat_tree", "fat_tree_4to1": "fat_tree", "static_ocs": "static_ocs", "rfabric": "rfabric"}


def _rows() -> list[dict[str, object]]:
    """Two models x two sizes x two seeds x four fabrics; every fabric identical to the reference in time
    (the hardest case for 'no series hides another')."""
    rows = []
    for model, gpus, seed, (name, kind) in itertools.product(("m-dense", "m-moe"), (1024, 4096), (0, 1),
                                                             FABRICS.items()):
        rows.append({"workload.model": model, "cluster.trainer_gpus": gpus // 2, "gpus": gpus, "seed": seed,
                     "fabric": name, "kind": kind, "iteration_time_s": 100.0 + seed,
                     "time_vs_ref": 1.0, "perf_per_usd_vs_ref": 1.0 if name == "fat_tree" else 1.5,
                     "perf_per_cluster_usd_vs_ref": 1.0, "perf_per_cluster_w_vs_ref": 1.0,
                     "bytes_electrical": 3e12, "bytes_optical": 1e12 if kind in ("rfabric", "static_ocs") else 0.0,
                     "trainer_busy_frac": 0.75, "rollout_busy_frac": 1.0, "phase_weight_sync_s": 7.0})
    return rows


def test_derived_columns_by_hand() -> None:
    d = derived({"bytes_electrical": 3e12, "bytes_optical": 1e12, "trainer_busy_frac": 0.75,
                 "rollout_busy_frac": 1.0})
    assert d["circuit_byte_share"] == pytest.approx(0.25, abs=1e-15)
    assert d["trainer_bubble"] == pytest.approx(0.25, abs=1e-15) and d["rollout_bubble"] == 0.0
    assert derived({"bytes_electrical": 0, "bytes_optical": 0})["circuit_byte_share"] == 0.0  # no network bytes
    assert math.isnan(derived({})["trainer_bubble"])


def test_stats_ignore_missing_and_non_finite() -> None:
    assert stats([1.0, 2.0, 6.0]) == (3.0, 1.0, 6.0)
    assert stats(["", None, float("nan"), 4.0]) == (4.0, 4.0, 4.0)
    assert all(math.isnan(v) for v in stats([]))


def test_headline_dodges_every_fabric_and_shows_the_seed_spread() -> None:
    fig = plot_headline(_rows())
    ax = fig.axes[0]  # first model, step time: all four fabrics have the same value at every size
    xs = sorted(x for c in ax.containers for x in c.lines[0].get_xdata())  # each fabric's errorbar container
    assert len(xs) == 4 * 2 and len(set(xs)) == 8, "markers of fabrics at equal values must not coincide"
    # the error bar of a fabric spans its seeds' min..max (iteration time 100 s vs 101 s -> time_vs_ref all 1.0)
    assert len(ax.containers) == 4 and all(len(c.lines[2][0].get_segments()) == 2 for c in ax.containers)
    assert ax.get_ylim()[0] <= 0.99 and ax.get_ylim()[1] >= 1.01  # ratios never zoomed into rounding noise
    assert len(fig.legends) == 1 and [t.get_text() for t in fig.legends[0].get_texts()] == list(FABRICS)
    assert all(a.get_ylabel() for a in fig.axes), "every panel has a unit / label"
    plt.close(fig)


def test_gain_map_numbers_by_hand() -> None:
    rows = []
    for placement, share, delay in itertools.product(("contiguous", "fragmented"), (0.25, 0.75), (1, 100)):
        static = 110.0 if placement == "fragmented" else 100.0
        dyn = 100.0 if delay == 1 else 105.0
        rows += [{"fabric": "static_ocs", "cluster.placement": placement, "share": share, "delay": delay,
                  "iteration_time_s": static},
                 {"fabric": "rfabric", "cluster.placement": placement, "share": share, "delay": delay,
                  "iteration_time_s": dyn}]
    fig = plot_gain_map(rows, "share", "cluster.placement", "delay")
    first, second = fig.axes[0], fig.axes[1]
    cells = sorted(t.get_text() for t in first.texts)
    assert cells == sorted(["+0.0", "+0.0", "+10.0", "+10.0"])  # delay 1: 110/100 - 1 on fragmented
    assert sorted({t.get_text() for t in second.texts}) == ["+4.8", "-4.8"]  # 110/105 - 1, 100/105 - 1
    assert [t.get_text() for t in first.get_yticklabels()] == ["contiguous", "fragmented"]
    plt.close(fig)


def test_gain_map_names_a_missing_fabric() -> None:
    with pytest.raises(ConfigError, match="static_ocs"):
        plot_gain_map([{"fabric": "rfabric", "a": 1, "b": 1, "c": 1, "iteration_time_s": 1.0}], "a", "b", "c")


def test_sensitivity_categorical_axis_and_no_overlapping_labels() -> None:
    methods = ("checkpoint_engine", "gather_broadcast", "p2p")  # long names side by side
    rows = [dict(r, **{"workload.weight_sync.method": m}) for r in _rows()
            if r["gpus"] == 1024 and r["workload.model"] == "m-moe" for m in methods]
    fig = plot_sensitivity(rows, "workload.weight_sync.method", label="weight sync method")
    ax = fig.axes[0]
    assert [t.get_text().replace("\n", "") for t in ax.get_xticklabels()] == list(methods)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(r) for a in fig.axes for t in a.get_xticklabels() + [a.yaxis.label, a.xaxis.label]
             if t.get_text()]
    assert not any(b1.overlaps(b2) for b1, b2 in itertools.combinations(boxes, 2))
    plt.close(fig)


def test_equal_seeds_whose_mean_rounds_below_them_still_draw() -> None:
    """sum([0.7] * 3) / 3 < 0.7 in floating point: the error bar must clip at zero, not fail."""
    assert sum([0.7] * 3) / 3 < 0.7
    rows = [dict(r, time_vs_ref=0.7, seed=s) for r in _rows() if r["seed"] == 0 for s in (0, 1, 2)]
    fig = plot_headline(rows)
    assert fig.axes[0].containers
    plt.close(fig)
