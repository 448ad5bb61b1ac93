"""Figures drawn from saved sweep tables (``sweep.csv``); plots never re-simulate.

Every function takes the rows of a sweep table (``read_sweep(dir)``) and optional axes, and returns the
matplotlib Figure. Colours are consistent per fabric across figures (:func:`fabric_colour`).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rfabric.plotting.compare import fabric_colour

MARKERS = "osD^v<>ph*"
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1)))


def read_sweep(path: str | Path) -> list[dict[str, Any]]:
    """Rows of ``sweep.csv`` (a sweep directory or the file), numbers parsed, failed runs dropped."""
    p = Path(path)
    if p.is_dir():
        p = p / "sweep.csv"
    rows = []
    with p.open() as f:
        for r in csv.DictReader(f):
            if r.get("status") not in (None, "", "ok"):
                continue
            rows.append({k: _num(v) for k, v in r.items()})
    return rows


def _num(v: str | None) -> Any:
    if v is None or v == "":
        return v
    try:
        x = float(v)
    except ValueError:
        return v
    return int(x) if x.is_integer() and "." not in v and "e" not in v.lower() else x


def _setup() -> Any:
    import matplotlib.pyplot as plt  # the caller's backend: inline in a notebook, Agg in the CLI

    plt.rcParams.update({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                         "axes.spines.right": False})
    return plt


def _series(rows: Sequence[dict[str, Any]], x: str, y: str, by: str = "fabric") -> dict[str, tuple[list[float], list[float], str]]:
    acc: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    kinds: dict[str, str] = {}
    for r in rows:
        if r.get(x) in (None, "") or r.get(y) in (None, ""):
            continue
        acc[str(r[by])][float(r[x])].append(float(r[y]))
        kinds[str(r[by])] = str(r.get("kind", "")) if by == "fabric" else ""
    out = {}
    for name, pts in acc.items():
        xs = sorted(pts)
        out[name] = (xs, [sum(pts[v]) / len(pts[v]) for v in xs], kinds[name])  # mean over seeds
    return out


def plot_lines(rows: Sequence[dict[str, Any]], x: str, panels: Sequence[tuple[str, str]], *, xlabel: str,
               logx: bool = False, title: str = "", axes: Any = None, ref_line: bool = True, by: str = "fabric") -> Any:
    """One panel per (column, label); one line per value of ``by`` (a fabric by default; mean over seeds)."""
    plt = _setup()
    if axes is None:
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), constrained_layout=True, squeeze=False)
        axes = axes[0]
    else:
        fig = axes[0].figure
    for ax, (col, label) in zip(axes, panels, strict=True):
        for i, (name, (xs, ys, kind)) in enumerate(sorted(_series(rows, x, col, by).items())):
            # fabrics often coincide (RFabric on static OCS, variants on the reference): distinct dashes and
            # markers, RFabric drawn on top and hollow markers so what lies underneath shows through
            top = kind == "rfabric"
            ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], color=fabric_colour(name, kind, i), label=name,
                    lw=2.2 if top else 1.4, ms=6 if top else 4, ls=LINESTYLES[i % len(LINESTYLES)],
                    zorder=4 if top else 2, mfc="none" if not top else None)
        if logx:
            ax.set_xscale("log", base=2 if x in ("gpus",) else 10)
        if ref_line and col.endswith("_vs_ref"):
            ax.axhline(1.0, color="0.4", lw=0.8, ls="--")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7, frameon=False, title=None if by == "fabric" else by, title_fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_scaling(rows: Sequence[dict[str, Any]], *, workload_key: str = "workload.model") -> Any:
    """Scaling figure: one row of panels per workload — step time, network capex, perf per $ vs GPUs."""
    plt = _setup()
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[str(r.get(workload_key, "workload"))].append(r)
    panels = [("time_vs_ref", "RL step time (x non-blocking Fat-Tree)"), ("capex_usd", "Network capex (USD)"),
              ("perf_per_usd_vs_ref", "Perf per $ (x non-blocking Fat-Tree)")]
    fig, axes = plt.subplots(len(groups), 3, figsize=(13, 3.5 * len(groups)), constrained_layout=True, squeeze=False)
    for (name, grp), ax_row in zip(sorted(groups.items()), axes, strict=True):
        plot_lines(grp, "gpus", panels, xlabel="GPUs", logx=True, axes=ax_row)
        ax_row[0].set_title(name, loc="left", fontsize=9)
        ax_row[1].set_yscale("log")
    return fig


def save(fig: Any, out_base: str | Path) -> list[Path]:
    """Save as PNG and PDF (publication-grade); returns the paths."""
    out_base = Path(out_base)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        p = out_base.with_suffix(f".{ext}")
        fig.savefig(p, dpi=200 if ext == "png" else None, bbox_inches="tight")
        paths.append(p)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths


def break_even(rows: Sequence[dict[str, Any]], x: str, fabric: str, col: str = "perf_per_usd_vs_ref") -> float:
    """Smallest x at which ``fabric``'s ``col`` falls to 1.0 (linear interpolation); nan if it never does."""
    xs, ys, _ = _series(rows, x, col).get(fabric, ([], [], ""))
    for (x0, y0), (x1, y1) in zip(zip(xs, ys, strict=True), zip(xs[1:], ys[1:], strict=True), strict=False):
        if (y0 - 1.0) * (y1 - 1.0) <= 0 and y0 != y1:
            return x0 + (1.0 - y0) * (x1 - x0) / (y1 - y0)
    return math.nan


def plot_sweep(rows: Sequence[dict[str, Any]], x: str, y: str, hue: str = "fabric", *, logx: bool = False) -> Any:
    """Any sweep: ``y`` against ``x``, one line per value of ``hue`` (mean over seeds).

    Columns are those of ``sweep.csv`` (swept dotted keys, ``fabric``, ``gpus``, the metrics). Raises
    ``ConfigError`` on ``--x``/``--y``/``--hue`` for a column the sweep lacks (with a suggestion), on ``--y``
    for a non-numeric column, and when another swept key varies too (its lines would average unrelated points;
    pass it as ``--hue``)."""
    from rfabric.errors import ConfigError
    from rfabric.parsing import suggest

    if not rows:
        raise ConfigError("DIR", "the sweep has no finished runs to draw", has_value=False)
    cols = list(rows[0])
    for flag, col in (("--x", x), ("--y", y), ("--hue", hue)):
        if col not in cols:
            raise ConfigError(flag, f"no such column in sweep.csv; {suggest(col, cols)}", col)
    for flag, col in (("--x", x), ("--y", y)):
        if not all(isinstance(r.get(col), int | float) for r in rows if r.get(col) not in (None, "")):
            raise ConfigError(flag, "must name a numeric column", col)
    others = [k for k in cols if ("." in k or k == "fabric") and k not in (x, hue)
              and len({str(r.get(k)) for r in rows}) > 1]
    if others:
        raise ConfigError("--hue", f"the sweep also varies {', '.join(others)}; lines would average over it "
                          f"(pass it as --hue, or draw from a sweep that fixes it)", hue)
    return plot_lines(rows, x, [(y, y)], xlabel=x, logx=logx, by=hue, title=f"{y} vs {x}")
