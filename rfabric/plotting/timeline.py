"""Timeline of one simulated RL step: phases as a Gantt chart, reconfiguration windows shaded, and the
link utilisation per arc group underneath. Matplotlib is imported lazily; nothing is shown or saved."""

from __future__ import annotations

from typing import Any

import numpy as np

from rfabric.sim.result import SimulationResult

_LANE_COLOURS = {"trainer": ("#c6dbef", "#2171b5"), "rollout": ("#fdd0a2", "#d94801"),
                 "sync": ("#dadaeb", "#6a51a3")}


def plot_pipeline(sim: SimulationResult, *, ax: Any = None) -> Any:
    """Draw a pipelined schedule's phase instances in two lanes (trainer, rollout) and return the Figure.

    Each instance is a bar from its start to its end (light: compute before its flows; dark: its flows and
    compute after); the runs of a phase in one RL step are labelled once (``train #3``) where there is room.
    Weight syncs are the thin bars between the lanes. Grey bands are reconfiguration windows (circuits dark, ``ocs_reconfig_s`` from the start
    of an epoch that changed circuits); dashed lines bound the measured steady-state window.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if ax is None:
        fig, ax = plt.subplots(figsize=(10.0, 3.2), constrained_layout=True)
    fig = ax.figure
    lanes = {"trainer": 1.0, "rollout": 0.0}
    spans: dict[tuple[str, str, int], list[float]] = {}
    for p in sim.instances:
        light, dark = _LANE_COLOURS.get(p.cluster, _LANE_COLOURS["trainer"])
        y, h = (0.5, 0.2) if p.cluster == "sync" else (lanes.get(p.cluster, 1.0), 0.6)
        ax.barh(y, p.comm_start_s - p.start_s, left=p.start_s, height=h, color=light, edgecolor="none")
        ax.barh(y, p.end_s - p.comm_start_s, left=p.comm_start_s, height=h, color=dark, edgecolor="white",
                linewidth=0.5)
        if p.cluster != "sync":
            sp = spans.setdefault((p.cluster, p.name, p.step), [p.start_s, p.end_s])
            sp[0], sp[1] = min(sp[0], p.start_s), max(sp[1], p.end_s)
    x_end = max((p.end_s for p in sim.instances), default=1.0) or 1.0
    for (cluster, name, step), (a, b) in spans.items():
        if b - a >= 0.06 * x_end:  # room for the label
            ax.text((a + b) / 2, lanes.get(cluster, 1.0), f"{name} #{step}", ha="center", va="center",
                    fontsize="x-small", color="white", clip_on=True)
    reconf = float(sim.extra.get("ocs_reconfig_s", 0.0))
    for e in sim.extra.get("epochs", []):
        if e.get("circuits_changed", 0) > 0 and reconf > 0:
            ax.axvspan(e["start_s"], e["start_s"] + reconf, color="#525252", alpha=0.35, lw=0)
    lo, hi = sim.extra.get("window_s", (None, None))
    for x in (lo, hi):
        if x is not None:
            ax.axvline(x, color="black", ls="--", lw=0.8)
    ax.set_yticks(list(lanes.values()))
    ax.set_yticklabels([f"{k} pool" for k in lanes])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlabel("time (s)")
    ex = sim.extra
    ax.set_title(f"{sim.fabric}: {sim.mode} ({ex.get('sync_style', 'blocking')} sync), {sim.iteration_time_s:.4g} s "
                 f"per RL step; busy trainer "
                 f"{ex.get('trainer_busy_frac', 0):.0%} / rollout {ex.get('rollout_busy_frac', 0):.0%}, "
                 f"critical: {ex.get('critical_cluster', '?')}", fontsize="medium")
    handles = [Patch(color=_LANE_COLOURS["trainer"][1], label="training"),
               Patch(color=_LANE_COLOURS["rollout"][1], label="rollout"),
               Patch(color=_LANE_COLOURS["sync"][1], label="weight sync"),
               Patch(color=_LANE_COLOURS["trainer"][0], label="compute before flows"),
               Patch(color="#525252", alpha=0.35, label="reconfiguration (circuits dark)")]
    ax.legend(handles=handles, fontsize="x-small", ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.28),
              frameon=False)
    return fig


def plot_timeline(sim: SimulationResult, *, ax: Any = None) -> Any:
    """Draw ``sim``'s phases over time and return the Figure (two lanes for a pipelined schedule, see
    :func:`plot_pipeline`).

    Each phase is a bar from ``start_s`` to its end (light: compute before its flows; dark: its flows
    and compute after, all repeats), its reconfiguration window is hatched (red where it is exposed).
    With ``ax`` given only the Gantt is drawn on it; otherwise a second panel shows the utilisation of
    each link group (fraction of capacity, first RL step) when the result carries samples.
    """
    import matplotlib.pyplot as plt

    if sim.instances:
        return plot_pipeline(sim, ax=ax)
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


__all__ = ["plot_timeline", "plot_pipeline"]
