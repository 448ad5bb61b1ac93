"""The packet-level cross-check figure (``rfabric validate``): completion-time errors per scenario and
per-flow completion times, flow model against ns-3. Matplotlib is imported lazily; nothing is shown or
saved. The rows are those of ``validation.compare.run_validation`` (plain dicts), so this module needs
neither ns-3 nor the validation package."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["plot_validation"]


def plot_validation(rows: Sequence[dict[str, Any]], *, tolerance: float = 0.05, ax: Any = None) -> Any:
    """Two panels: completion errors per scenario (bars, the ±``tolerance`` band) and per-flow FCT.

    ``rows``: dicts with ``scenario``, ``phase_err``, ``collective_err_max``, ``fct_err_median`` (relative
    errors, flow model vs ns-3) and the per-flow arrays ``fct_flow_s`` / ``fct_packet_s`` (seconds).
    ``ax``: a pair of Axes to draw on (default: a new Figure). Returns the Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    if ax is None:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    else:
        a1, a2 = ax
        fig = a1.figure
    names = [r["scenario"] for r in rows]
    x = np.arange(len(rows))
    w = 0.27
    for k, (key, label) in enumerate((("phase_err", "phase completion"), ("collective_err_max", "collective (worst)"),
                                      ("fct_err_median", "per-flow FCT (median |err|)"))):
        a1.bar(x + (k - 1) * w, [100 * r[key] for r in rows], w, label=label)
    a1.axhspan(-100 * tolerance, 100 * tolerance, color="0.9", zorder=0)
    a1.axhline(0, color="0.3", lw=0.8)
    a1.set_xticks(x, names, rotation=35, ha="right", fontsize=8)
    a1.set_ylabel("flow-level vs ns-3 error (%)")
    a1.legend(fontsize=8)
    a1.set_title(f"completion-time error (grey band: ±{100 * tolerance:g} %)")
    sizes = [r for r in rows if len(r["fct_packet_s"])]
    for r in sizes:
        a2.loglog(1e3 * np.asarray(r["fct_packet_s"]), 1e3 * np.asarray(r["fct_flow_s"]), ".", ms=3,
                  label=r["scenario"])
    lo = min((float(np.nanmin(r["fct_packet_s"])) for r in sizes), default=1e-3) * 1e3
    hi = max((float(np.nanmax(r["fct_packet_s"])) for r in sizes), default=1.0) * 1e3
    a2.plot([lo, hi], [lo, hi], color="0.3", lw=0.8)
    for axis in (a2.xaxis, a2.yaxis):
        axis.set_minor_formatter(NullFormatter())
    a2.set_xlabel("ns-3 FCT (ms)")
    a2.set_ylabel("flow-level FCT (ms)")
    a2.set_title("per-flow completion times")
    a2.legend(fontsize=6, markerscale=3)
    fig.tight_layout()
    return fig
