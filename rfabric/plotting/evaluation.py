"""Figures of the evaluation (issue #17), drawn from saved sweep tables (``sweep.csv``); never re-simulating.

* :func:`plot_headline` -- figures of merit per model and cluster size, every fabric side by side
  (dodged markers, so no series hides another), mean over seeds with the min..max spread as error bars;
* :func:`plot_anatomy` -- why: the share of network bytes on circuits, each pool's bubble and the weight
  sync, per model and size;
* :func:`plot_gain_map` -- where dynamic circuits beat static ones: RFabric's step-time gain over static
  OCS on a grid of two swept keys, one panel per value of a third;
* :func:`plot_sensitivity` -- one swept key (numeric or categorical) against step time and perf per $.

Derived columns (:func:`derived`): ``circuit_byte_share`` = optical / (electrical + optical) network bytes
(0 for an all-electrical fabric), ``trainer_bubble`` / ``rollout_bubble`` = 1 - the pool's busy fraction.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from rfabric.errors import ConfigError
from rfabric.plotting.compare import fabric_colour
from rfabric.plotting.sweep import MARKERS, _setup

#: (column, axis label) of the headline figure's panels, all relative to the reference fabric
HEADLINE_PANELS = (
    ("time_vs_ref", "RL step time\n(x Fat-Tree, lower is better)"),
    ("perf_per_usd_vs_ref", "Perf per network $\n(x Fat-Tree)"),
    ("perf_per_cluster_usd_vs_ref", "Perf per cluster $\n(x Fat-Tree; GPUs, servers priced)"),
    ("perf_per_cluster_w_vs_ref", "Perf per cluster W\n(x Fat-Tree)"),
)
ANATOMY_PANELS = (
    ("circuit_byte_share", "Network bytes on circuits\n(share of electrical + optical)"),
    ("trainer_bubble", "Trainer pool bubble\n(share of the period idle)"),
    ("rollout_bubble", "Rollout pool bubble\n(share of the period idle)"),
    ("phase_weight_sync_s", "Weight sync phase (s)"),
)


def derived(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with the derived columns of the evaluation figures added (see the module docstring)."""
    out = dict(row)
    net = float(row.get("bytes_electrical") or 0.0) + float(row.get("bytes_optical") or 0.0)
    out["circuit_byte_share"] = float(row.get("bytes_optical") or 0.0) / net if net > 0 else 0.0
    for pool in ("trainer", "rollout"):
        busy = row.get(f"{pool}_busy_frac")
        out[f"{pool}_bubble"] = 1.0 - float(busy) if busy not in (None, "") else math.nan
    return out


def stats(values: Sequence[Any]) -> tuple[float, float, float]:
    """(mean, min, max) of the finite ``values`` (nan, nan, nan if none)."""
    v = [float(x) for x in values if x not in (None, "") and math.isfinite(float(x))]
    if not v:
        return math.nan, math.nan, math.nan
    return sum(v) / len(v), min(v), max(v)


def _fabrics(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(name, kind) of every fabric in first-seen order (the order of the config's ``fabrics`` list)."""
    seen: dict[str, str] = {}
    for r in rows:
        seen.setdefault(str(r["fabric"]), str(r.get("kind", "")))
    return list(seen.items())


def _dodged(ax: Any, rows: Sequence[dict[str, Any]], x: str, col: str, fabrics: list[tuple[str, str]],
            xs: list[Any], *, label: bool) -> None:
    """One marker per (x value, fabric), fabrics side by side inside each x slot, error bar = seed spread."""
    n = len(fabrics)
    width = 0.8
    for i, (name, kind) in enumerate(fabrics):
        px, py, lo, hi = [], [], [], []
        for j, xv in enumerate(xs):
            mean, mn, mx = stats([r.get(col) for r in rows if str(r["fabric"]) == name and r.get(x) == xv])
            if math.isnan(mean):
                continue
            px.append(j - width / 2 + width * (i + 0.5) / n)
            py.append(mean)
            lo.append(max(0.0, mean - mn))  # the mean of equal floats can round below their minimum
            hi.append(max(0.0, mx - mean))
        if not px:
            continue
        colour = fabric_colour(name, kind, i)
        ax.errorbar(px, py, yerr=[lo, hi], fmt=MARKERS[i % len(MARKERS)], color=colour, ms=5, capsize=2, lw=1,
                    label=name if label else None, zorder=4 if kind == "rfabric" else 3)
    ax.set_xticks(range(len(xs)), [f"{v:,}" if isinstance(v, int) else str(v) for v in xs])
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    lo_y, hi_y = ax.get_ylim()
    if col.endswith("_vs_ref"):  # ratios: always show 1.0 and at least +-1 %, so rounding noise is not magnified
        lo_y, hi_y = min(lo_y, 0.99), max(hi_y, 1.01)
    else:  # shares, bubbles and seconds (never negative): from zero, so a 1e-5 difference does not fill the
        # panel, with headroom so the largest marker is not cut by the frame
        tops = [y for c in ax.containers for y in c.lines[0].get_ydata()]  # markers and error-bar ends
        tops += [float(seg[:, 1].max()) for c in ax.containers for bars in c.lines[2] for seg in bars.get_segments()]
        top = max(tops, default=0.0)
        hi_y = top * 1.08 if top > 1e-12 else 1.0
        lo_y = -0.03 * hi_y  # markers at zero drawn whole
    ax.set_ylim(lo_y, hi_y)
    for j in range(1, len(xs)):
        ax.axvline(j - 0.5, color="0.85", lw=0.6, zorder=0)
    ax.grid(axis="x", visible=False)


def plot_headline(rows: Sequence[dict[str, Any]], *, panels: Sequence[tuple[str, str]] = HEADLINE_PANELS,
                  group: str = "workload.model", x: str = "gpus", title: str = "") -> Any:
    """A grid of panels: one row per value of ``group`` (a model), one column per (metric, label); inside a
    panel one slot per value of ``x`` (GPUs) with every fabric's mean over seeds and its min..max spread.
    Raises :class:`ConfigError` (``DIR``) when ``rows`` is empty."""
    if not rows:
        raise ConfigError("DIR", "the sweep has no finished runs to draw", has_value=False)
    plt = _setup()
    rows = [derived(r) for r in rows]
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[str(r.get(group, ""))].append(r)
    fabrics = _fabrics(rows)
    xs = sorted({r[x] for r in rows})
    fig, axes = plt.subplots(len(groups), len(panels), figsize=(3.6 * len(panels), 2.7 * len(groups) + 0.8),
                             constrained_layout=True, squeeze=False)
    for gi, (gname, grp) in enumerate(sorted(groups.items())):
        for pi, (col, label) in enumerate(panels):
            ax = axes[gi][pi]
            _dodged(ax, grp, x, col, fabrics, xs, label=(gi == 0 and pi == 0))
            if col.endswith("_vs_ref"):
                ax.axhline(1.0, color="0.4", lw=0.8, ls="--", zorder=1)
            ax.set_ylabel(label, fontsize=8)
            if gi == len(groups) - 1:
                ax.set_xlabel("GPUs" if x == "gpus" else x)
        axes[gi][0].set_title(gname, loc="left", fontsize=9, fontweight="bold")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside lower center", ncol=min(len(fabrics), 9),
               fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_gain_map(rows: Sequence[dict[str, Any]], x: str, y: str, panel: str, *, dynamic: str = "rfabric",
                  static: str = "static_ocs", xlabel: str = "", ylabel: str = "", panel_label: str = "") -> Any:
    """Heat maps of ``dynamic``'s step-time gain over ``static`` (``static time / dynamic time - 1``, in %,
    mean over seeds): ``x`` by ``y``, one panel per value of ``panel``; every cell printed. Raises
    :class:`ConfigError` (``DIR``) when either fabric is missing."""
    import numpy as np

    names = {str(r["fabric"]) for r in rows}
    for f in (dynamic, static):
        if f not in names:
            raise ConfigError("DIR", f"the sweep has no '{f}' fabric to draw the dynamic-vs-static map", f)
    plt = _setup()
    xs = sorted({r[x] for r in rows}, key=_order)
    ys = sorted({r[y] for r in rows}, key=_order)
    ps = sorted({r[panel] for r in rows}, key=_order)
    times: dict[tuple[str, Any, Any, Any], list[float]] = defaultdict(list)
    for r in rows:
        times[(str(r["fabric"]), r[x], r[y], r[panel])].append(r["iteration_time_s"])
    grids = []
    for pv in ps:
        g = np.full((len(ys), len(xs)), np.nan)
        for i, yv in enumerate(ys):
            for j, xv in enumerate(xs):
                t_static = stats(times[(static, xv, yv, pv)])[0]
                t_dynamic = stats(times[(dynamic, xv, yv, pv)])[0]
                g[i, j] = 100.0 * (t_static / t_dynamic - 1.0)
        grids.append(g)
    vmax = max(1.0, float(np.nanmax(np.abs(np.stack(grids))))) if grids else 1.0
    fig, axes = plt.subplots(1, len(ps), figsize=(3.3 * len(ps) + 1.2, 0.55 * len(ys) + 2.0),
                             constrained_layout=True, squeeze=False)
    im = None
    for ax, pv, g in zip(axes[0], ps, grids, strict=True):
        im = ax.imshow(g, cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto", origin="lower")
        ax.set_xticks(range(len(xs)), [_fmt(v) for v in xs])
        ax.set_yticks(range(len(ys)), [_fmt(v) for v in ys])
        ax.set_xlabel(xlabel or x)
        ax.set_title(f"{panel_label or panel} = {_fmt(pv)}", fontsize=9)
        ax.grid(False)
        for i in range(len(ys)):
            for j in range(len(xs)):
                if not math.isnan(g[i, j]):
                    ax.text(j, i, f"{g[i, j]:+.1f}", ha="center", va="center", fontsize=8,
                            color="white" if abs(g[i, j]) > 0.6 * vmax else "black")
    axes[0][0].set_ylabel(ylabel or y)
    cb = fig.colorbar(im, ax=axes[0].tolist(), shrink=0.9)
    cb.set_label(f"{dynamic} gain over {static}\n(step time, %; >0: dynamic faster)", fontsize=8)
    return fig


def plot_sensitivity(rows: Sequence[dict[str, Any]], key: str, *, label: str = "",
                     panels: Sequence[tuple[str, str]] = HEADLINE_PANELS[:2] + (ANATOMY_PANELS[0],)) -> Any:
    """``key`` (one swept column, numeric or not) against the figures of merit, fabrics dodged per value."""
    if not rows:
        raise ConfigError("DIR", "the sweep has no finished runs to draw", has_value=False)
    plt = _setup()
    rows = [derived(r) for r in rows]
    fabrics = _fabrics(rows)
    xs = sorted({r[key] for r in rows}, key=_order)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.2), constrained_layout=True, squeeze=False)
    for pi, (col, ylab) in enumerate(panels):
        ax = axes[0][pi]
        _dodged(ax, rows, key, col, fabrics, xs, label=pi == 0)
        ax.set_xticks(range(len(xs)), [_fmt(v) for v in xs])
        if col.endswith("_vs_ref"):
            ax.axhline(1.0, color="0.4", lw=0.8, ls="--", zorder=1)
        ax.set_ylabel(ylab, fontsize=8)
        ax.set_xlabel(label or key, fontsize=8)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside lower center", ncol=min(len(fabrics), 9),
               fontsize=8, frameon=False)
    return fig


def _order(v: Any) -> tuple[int, Any]:
    """Numbers in numeric order before strings in a fixed placement order, then alphabetical."""
    if isinstance(v, int | float):
        return (0, v)
    rank = {"contiguous": 0, "interleaved": 1, "fragmented": 2}
    return (1, (rank.get(str(v), 99), str(v)))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v).replace("_", "_\n") if len(str(v)) > 10 else str(v)  # long names wrap, never overlap
