"""Comparison figure: step time, network capex and performance per cost, each relative to the reference."""

from __future__ import annotations

from typing import Any

from rfabric.results import Comparison

#: one colour per fabric kind, used by every figure
KIND_COLOURS = {
    "fat_tree": "#4C72B0",
    "rail_optimized": "#8172B3",
    "static_ocs": "#937860",
    "rfabric": "#C44E52",
}
FALLBACK = ["#55A868", "#DD8452", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD"]


def fabric_colour(name: str, kind: str, i: int = 0) -> str:
    """The colour of a fabric in every figure: its kind's colour; variants of a kind (e.g. ``fat_tree_2to1``)
    get a lighter shade of it, picked by ``i`` (the fabric's position in the figure, deterministic)."""
    if name in KIND_COLOURS:
        return KIND_COLOURS[name]
    if kind not in KIND_COLOURS:
        return FALLBACK[i % len(FALLBACK)]
    from matplotlib.colors import to_hex, to_rgb

    # variants alternate lighter and darker shades, none lighter than 45% white (a 4:1 variant stays visible)
    towards, share = ((1.0, 0.45), (0.0, 0.4), (1.0, 0.25), (0.0, 0.2))[i % 4]
    r, g, b = to_rgb(KIND_COLOURS[kind])
    return to_hex((r + (towards - r) * share, g + (towards - g) * share, b + (towards - b) * share))


def plot_comparison(comparison: Comparison, axes: Any = None) -> Any:
    """Three panels: iteration time, network capex and perf per $ — all normalised to the reference.

    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt  # the caller's backend: inline in a notebook, Agg in the CLI

    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), constrained_layout=True)
    else:
        fig = axes[0].figure
    rows = comparison.rows
    names = [r.fabric for r in rows]
    ref = comparison.row(comparison.reference)
    colours = [fabric_colour(r.fabric, r.kind, i) for i, r in enumerate(rows)]
    panels = [
        ([r.time_vs_ref for r in rows], "RL step time (x reference)"),
        ([r.capex_usd / ref.capex_usd for r in rows], "Network capex (x reference)"),
        ([r.perf_per_usd_vs_ref for r in rows], "Performance per $ (x reference)"),
    ]
    for ax, (vals, label) in zip(axes, panels, strict=True):
        bars = ax.bar(range(len(names)), vals, color=colours)
        ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
        ax.set_ylabel(label)
        for b, v in zip(bars, vals, strict=True):
            ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"{ref.gpus} GPUs — reference: {comparison.reference} "
                 f"(step {ref.iteration_time_s:.3g} s, capex ${ref.capex_usd / 1e6:.3g} M)", fontsize=10)
    return fig
