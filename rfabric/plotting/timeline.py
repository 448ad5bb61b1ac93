"""Timeline of one simulated RL step: phases as a Gantt chart, reconfiguration windows shaded, and the
link utilisation per arc group underneath. Matplotlib is imported lazily; nothing is shown or saved."""

from __future__ import annotations

from typing import Any

import numpy as np

from rfabric.results import SimulationResult


def plot_timeline(sim: SimulationResult, *, ax: Any = None) -> Any:
    """Draw ``sim``'s phases over time and return the Figure.

    Each phase is a bar from ``start_s`` to its end (light: compute before its flows; dark: its flows
    and compute after, all repeats), its reconfiguration window is hatched (red where it is exposed).
    With ``ax`` given only the Gantt is drawn on it; otherwise a second panel shows the utilisation of
    each link group (fraction of capacity, first RL step) when the result carries samples.
    """
    import matplotlib.pyplot as plt

    util = sim.link_util
    times = sim.link_util_times_s
    has_util = ax is None and util is not None and times is not None and util.size > 0
    if ax is None:
        if has_util:
            fig, (ax, ax_u) = plt.subplots(2, 1, figsize=(9.0, 5.5), sharex=True, constrained_layout=True,
                                           gridspec_kw={"height_ratios": [1.2, 1.0]})
        else:
            fig, ax = plt.subplots(figsize=(9.0, 3.0), constrained_layout=True)
    fig = ax.figure
    n = len(sim.phases)
    for i, p in enumerate(sim.phases):
        y = n - 1 - i
        end = p.start_s + p.duration_s
        ax.barh(y, p.comm_start_s - p.start_s, left=p.start_s, height=0.6, color="#c6dbef", edgecolor="none")
        ax.barh(y, end - p.comm_start_s, left=p.comm_start_s, height=0.6, color="#3182bd", edgecolor="none")
        if p.reconfig_s > 0:
            ax.barh(y, p.reconfig_s, left=p.start_s, height=0.8, color="none", edgecolor="#636363", hatch="//")
            if p.reconfig_exposed_s > 0:
                ax.barh(y, p.reconfig_exposed_s, left=p.comm_start_s, height=0.8, color="#de2d26", alpha=0.5)
    ax.set_yticks(range(n))
    ax.set_yticklabels([p.name for p in reversed(sim.phases)])
    ax.set_xlabel("time since step start (s)")
    ax.set_title(f"{sim.fabric}: step {sim.iteration_time_s:.4g} s, reconfiguration {sim.reconfig_time_s * 1e3:.3g} ms")
    if has_util:
        assert util is not None and times is not None
        order = np.argsort(times, kind="stable")
        for j, name in enumerate(sim.link_names):
            ax_u.step(times[order], util[order, j] * 100.0, where="post", label=name, linewidth=1.0)
        ax_u.set_ylabel("link utilisation (%)")
        ax_u.set_xlabel("time since step start (s)")
        ax_u.set_ylim(0, 105)
        if sim.link_names:
            ax_u.legend(fontsize="small", ncol=min(4, len(sim.link_names)), loc="upper right")
        ax.set_xlabel("")
    return fig


__all__ = ["plot_timeline"]
