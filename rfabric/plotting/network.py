"""Draw a small fabric (<= 64 GPUs): tiers as rows, links coloured by medium, circuits dashed.

matplotlib is imported inside the function; nothing is shown (the caller saves or displays the figure).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rfabric.errors import ConfigError
from rfabric.topology import Medium, NodeRole, Topology

if TYPE_CHECKING:
    from rfabric.circuits import CircuitAssignment

MAX_GPUS = 64

_ROW = {NodeRole.GPU: 0.0, NodeRole.NVSWITCH: -0.6, NodeRole.NIC: 1.0, NodeRole.TOR: 2.0, NodeRole.AGG: 3.0,
        NodeRole.CORE: 5.0, NodeRole.HOST: 1.5}
_OCS_ROW = {"agg": 2.5, "core": 4.0, "nic": 2.5}
_COLOUR = {Medium.NVLINK: "#76b900", Medium.PCIE: "#999999", Medium.COPPER: "#b87333", Medium.OPTICAL: "#1f77b4",
           Medium.FIBRE: "#d3d3d3", Medium.CIRCUIT: "#d62728"}
_MARKER = {NodeRole.GPU: ("s", "#76b900"), NodeRole.NVSWITCH: ("D", "#4c7a00"), NodeRole.NIC: ("o", "#888888"),
           NodeRole.TOR: ("s", "#1f77b4"), NodeRole.AGG: ("s", "#ff7f0e"), NodeRole.CORE: ("s", "#9467bd"),
           NodeRole.OCS: ("h", "#d62728"), NodeRole.HOST: ("s", "#17becf")}


def _positions(topology: Topology) -> dict[str, tuple[float, float]]:
    g = topology.graph
    rows: dict[float, list[str]] = {}
    for n, d in g.nodes(data=True):
        r = d["role"]
        y = _OCS_ROW.get(d.get("layer", ""), 4.0) if r is NodeRole.OCS else _ROW[r]
        rows.setdefault(y, []).append(n)
    pos = {}
    for y, names in rows.items():
        m = len(names)
        for i, n in enumerate(names):
            pos[n] = ((i + 0.5) / m, y)
    return pos


def draw_topology(topology: Topology, ax: Any = None, assignment: CircuitAssignment | None = None) -> tuple[Any, Any]:
    """Draw ``topology`` (its physical plant, plus the circuits of ``assignment`` if given).

    Returns ``(figure, axes)``. Only for small fabrics: more than 64 GPUs is a ``ConfigError``.
    """
    if topology.num_gpus > MAX_GPUS:
        raise ConfigError("topology", f"draw_topology handles at most {MAX_GPUS} GPUs", topology.num_gpus)
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if ax is None:
        fig, ax = plt.subplots(figsize=(12, 6))
    else:
        fig = ax.figure
    g = topology.graph
    pos = _positions(topology)
    for u, v, d in g.edges(data=True):
        (x0, y0), (x1, y1) = pos[u], pos[v]
        lw = 0.6 + 0.4 * min(int(d.get("links", 1)), 8)
        ax.plot([x0, x1], [y0, y1], color=_COLOUR[d["medium"]], lw=lw, zorder=1, alpha=0.8)
    if assignment is not None and len(assignment):
        for (a, b), cnt in sorted(assignment.pair_counts(topology).items()):
            (x0, y0), (x1, y1) = pos[a], pos[b]
            ax.plot([x0, x1], [y0, y1], color=_COLOUR[Medium.CIRCUIT], lw=0.8 + 0.5 * min(cnt, 8), ls="--", zorder=2)
    for role, (marker, colour) in _MARKER.items():
        names = [n for n in g.nodes if g.nodes[n]["role"] is role]
        if names:
            ax.scatter([pos[n][0] for n in names], [pos[n][1] for n in names], marker=marker, s=40, c=colour,
                       zorder=3, label=role.value)
    handles = [Line2D([0], [0], color=c, lw=2, ls="--" if m is Medium.CIRCUIT else "-", label=m.value)
               for m, c in _COLOUR.items()]
    leg = ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, title="nodes")
    ax.add_artist(leg)
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(1.0, 0.0), fontsize=8, title="links")
    ax.set_title(f"{topology.name} ({topology.kind}, {topology.num_gpus} GPUs)")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig, ax
