"""The experiment figures, each drawn from a saved sweep directory (never re-simulating).

``FIGURES[name](sweep_dir) -> Figure``; ``rfabric plot NAME DIR`` saves ``DIR/NAME.png`` and ``.pdf``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rfabric.errors import ConfigError
from rfabric.plotting.compare import fabric_colour
from rfabric.plotting.sweep import _setup, break_even, plot_lines, plot_scaling, read_sweep


def _gpus(rows: list[dict[str, Any]]) -> str:
    g = sorted({int(r["gpus"]) for r in rows if r.get("gpus")})
    return f"{g[0]} GPUs" if len(g) == 1 else ""


def _require_axis(rows: list[dict[str, Any]], figure: str, is_x: Callable[[str], bool], also: Callable[[str], bool],
                  what: str) -> None:
    """The sweep must vary the figure's x axis and hold every other swept key fixed (besides ``also``):
    otherwise lines would silently average unrelated points. Swept keys are the dotted columns."""
    if not rows:
        raise ConfigError("DIR", f"the sweep has no finished runs to draw the {figure} figure from")
    keys = [k for k in rows[0] if "." in k]
    xs = [k for k in keys if is_x(k)]
    if not xs or len({r.get(xs[0]) for r in rows}) < 2:
        raise ConfigError("figure", f"'{figure}' needs a sweep over {what}; this sweep varies "
                          f"{', '.join(k for k in keys if len({r.get(k) for r in rows}) > 1) or 'nothing'}", figure)
    for k in keys:
        if not is_x(k) and not also(k) and len({r.get(k) for r in rows}) > 1:
            raise ConfigError("figure", f"'{figure}' plots {what} with everything else fixed, but this sweep also "
                              f"varies {k}; draw it from a sweep that varies only {what}", figure)


def fig_scaling(d: Path) -> Any:
    rows = read_sweep(d)
    _require_axis(rows, "scaling", lambda k: k.startswith("cluster.") and k.endswith("_gpus"),
                  lambda k: k in ("workload.model",), "cluster sizes (cluster.*_gpus)")
    return plot_scaling(rows)


def fig_reconfig(d: Path) -> Any:
    rows = read_sweep(d)
    _require_axis(rows, "reconfig", lambda k: k.endswith("ocs_reconfig_ms"), lambda k: False,
                  "the OCS reconfiguration delay (topology.ocs_reconfig_ms)")
    return plot_lines(rows, "topology.ocs_reconfig_ms",
                      [("time_vs_ref", "RL step time (x Fat-Tree)"), ("perf_per_usd_vs_ref", "Perf per $ (x Fat-Tree)")],
                      xlabel="OCS reconfiguration delay (ms)", logx=True,
                      title=f"Reconfiguration delay sweep {_gpus(rows)}")


def fig_ocs_price(d: Path) -> Any:
    rows = read_sweep(d)
    _require_axis(rows, "ocs_price", lambda k: k == "cost.prices.ocs_port_usd", lambda k: False,
                  "the OCS port price (cost.prices.ocs_port_usd)")
    fig = plot_lines(rows, "cost.prices.ocs_port_usd",
                     [("capex_usd", "Network capex (USD)"), ("perf_per_usd_vs_ref", "Perf per $ (x Fat-Tree)")],
                     xlabel="OCS port price (USD)", title=f"OCS price sweep {_gpus(rows)}")
    ax = fig.axes[1]
    import matplotlib.transforms as mtransforms

    where = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)  # x: price, y: axes fraction
    k = 0
    for i, name in enumerate(sorted({str(r["fabric"]) for r in rows})):
        kinds = {str(r.get("kind")) for r in rows if str(r["fabric"]) == name}
        if not kinds & {"rfabric", "static_ocs"}:
            continue
        x = break_even(rows, "cost.prices.ocs_port_usd", name)
        if x == x:
            colour = fabric_colour(name, next(iter(kinds)), i)
            ax.axvline(x, color=colour, lw=0.8, ls=":")
            # one label per row from the top, so two close break-even prices never print on top of each other
            ax.text(x, 0.96 - 0.09 * k, f" {name} break-even ${x:,.0f}", transform=where, fontsize=7, va="top",
                    ha="left", color=colour, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                                   "alpha": 0.8})
            k += 1
    return fig


def fig_eps_share(d: Path) -> Any:
    rows = read_sweep(d)
    _require_axis(rows, "eps_share", lambda k: k.endswith("ocs_share"), lambda k: False,
                  "the share of uplinks on OCS (*.agg_ocs_share / *.core_ocs_share)")
    xkey = next((k for k in (rows[0] if rows else {}) if k.endswith("ocs_share")), "topology.core_ocs_share")
    return plot_lines(rows, xkey,  # the swept key itself: the share of uplinks on OCS, as the README speaks of it
                      [("time_vs_ref", "RL step time (x Fat-Tree)"), ("capex_usd", "Network capex (USD)"),
                       ("perf_per_usd_vs_ref", "Perf per $ (x Fat-Tree)")],
                      xlabel=f"OCS share of uplinks ({xkey.rsplit('.', 1)[-1]}; the rest electrical)",
                      title=f"OCS-share sweep {_gpus(rows)}")


def fig_phases(d: Path) -> Any:
    """Per-phase time and bytes per medium of one run (``result.json`` of ``rfabric run``)."""
    doc = json.loads((Path(d) / "result.json").read_text())
    plt = _setup()
    fabrics = doc["fabrics"]
    names = list(fabrics)
    phase_names: list[str] = []
    for f in fabrics.values():
        for p in f["phases"]:
            if p["name"] not in phase_names:
                phase_names.append(p["name"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    cmap = plt.get_cmap("tab20")
    bottoms = [0.0] * len(names)
    for j, ph in enumerate(phase_names):
        vals = [next((p["duration_s"] for p in fabrics[n]["phases"] if p["name"] == ph), 0.0) for n in names]
        ax1.bar(names, vals, bottom=bottoms, label=ph, color=cmap(j % 20))
        bottoms = [b + v for b, v in zip(bottoms, vals, strict=True)]
    ax1.set_ylabel("time per RL step (s)")
    ax1.legend(fontsize=7, frameon=False, ncol=2)
    ax1.tick_params(axis="x", rotation=20)
    media = ["nvlink", "electrical", "optical"]
    colours = {"nvlink": "#8C8C8C", "electrical": "#4C72B0", "optical": "#C44E52"}
    bottoms = [0.0] * len(names)
    for m in media:
        vals = [fabrics[n]["bytes_by_medium"].get(m, 0.0) / 1e12 for n in names]
        ax2.bar(names, vals, bottom=bottoms, label=m, color=colours[m])
        bottoms = [b + v for b, v in zip(bottoms, vals, strict=True)]
    ax2.set_ylabel("bytes per RL step (TB, link-level)")
    for ax in (ax1, ax2):
        ax.set_ylim(0, ax.get_ylim()[1] * 1.08)  # headroom: stacked totals are often equal across fabrics
    ax2.legend(fontsize=7, frameon=False)
    ax2.tick_params(axis="x", rotation=20)
    for i, n in enumerate(names):
        ax1.get_xticklabels()[i].set_color(fabric_colour(n, fabrics[n]["kind"], i))
    fig.suptitle(f"Anatomy of one RL step ({doc['workload']['num_gpus']} GPUs)", fontsize=10)
    return fig


def fig_headline(d: Path) -> Any:
    """The evaluation's figures of merit per model and size (:func:`rfabric.plotting.evaluation.plot_headline`)."""
    from rfabric.plotting.evaluation import plot_headline

    rows = read_sweep(d)
    _require_axis(rows, "headline", lambda k: k.startswith("cluster.") and k.endswith("_gpus"),
                  lambda k: k in ("workload.model",), "cluster sizes (cluster.*_gpus)")
    return plot_headline(rows, title="One-step-off disaggregated RL: every fabric against the non-blocking Fat-Tree "
                         "(mean over seeds, bars: min..max)")


def fig_anatomy(d: Path) -> Any:
    """Why the headline looks as it does: bytes on circuits, each pool's bubble, the weight sync."""
    from rfabric.plotting.evaluation import ANATOMY_PANELS, plot_headline

    rows = read_sweep(d)
    _require_axis(rows, "anatomy", lambda k: k.startswith("cluster.") and k.endswith("_gpus"),
                  lambda k: k in ("workload.model",), "cluster sizes (cluster.*_gpus)")
    return plot_headline(rows, panels=ANATOMY_PANELS, title="Anatomy of the headline runs (mean over seeds, "
                         "bars: min..max)")


def fig_dynamic_map(d: Path) -> Any:
    """RFabric's step-time gain over static OCS: placement x OCS share, one panel per reconfiguration delay."""
    from rfabric.plotting.evaluation import plot_gain_map

    rows = read_sweep(d)
    for k in ("cluster.placement", "topology.agg_ocs_share", "topology.ocs_reconfig_ms"):
        if not rows or k not in rows[0]:
            raise ConfigError("figure", f"'dynamic_map' needs a sweep over {k}", "dynamic_map")
    return plot_gain_map(rows, "topology.agg_ocs_share", "cluster.placement", "topology.ocs_reconfig_ms",
                         xlabel="share of ToR uplinks on OCS", ylabel="placement", panel_label="OCS reconfig (ms)")


_SENSITIVITY = {
    "ocs_price": ("cost.prices.ocs_port_usd", "OCS port price (USD)"),
    "eps_share": ("topology.agg_ocs_share", "share of ToR uplinks on OCS (rest electrical)"),
    "nic_speed": ("cluster.nic_gbps", "NIC speed (Gb/s)"),
    "response_length": ("workload.rollout.length_sigma", "response length spread (lognormal sigma)"),
    "mini_batches": ("workload.train.mini_batches", "optimizer updates per RL step"),
    "routing": ("sim.routing", "routing of electrical paths"),
    "sync_method": ("workload.weight_sync.method", "weight sync method"),
    "schedule": ("workload.schedule.mode", "RL schedule"),
}


def _fig_sensitivity(name: str) -> Callable[[Path], Any]:
    key, label = _SENSITIVITY[name]

    def fig(d: Path) -> Any:
        from rfabric.plotting.evaluation import plot_sensitivity

        rows = read_sweep(d)
        _require_axis(rows, name, lambda k: k == key, lambda k: False, f"{label} ({key})")
        f = plot_sensitivity(rows, key, label=label)
        f.suptitle(f"Sensitivity: {label} {_gpus(rows)}", fontsize=10)
        return f

    fig.__doc__ = f"Sensitivity of the evaluation's figures of merit to {label} ({key})."
    return fig


FIGURES: dict[str, Callable[[Path], Any]] = {
    "headline": fig_headline,
    "anatomy": fig_anatomy,
    "dynamic_map": fig_dynamic_map,
    **{n: _fig_sensitivity(n) for n in _SENSITIVITY if n not in ("ocs_price", "eps_share")},
    "scaling": fig_scaling,
    "reconfig": fig_reconfig,
    "ocs_price": fig_ocs_price,
    "eps_share": fig_eps_share,
    "phases": fig_phases,
}
