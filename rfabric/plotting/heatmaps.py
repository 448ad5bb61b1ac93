"""Heat maps of traffic (or circuit) matrices between GPUs, servers, ToRs or pods.

Matplotlib is imported lazily; nothing is shown here. :func:`plot_heatmap` and :func:`plot_domains` draw
(callers own the figure); :func:`save_phase_heatmaps` and :func:`save_domains` write the PNG files of
``rfabric traffic --heatmaps`` and ``rfabric solve --heatmap``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from rfabric.errors import InvalidArgumentError

_BYTE_UNITS = (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3), ("B", 1.0))


def _dense(matrix: Any) -> np.ndarray:
    m = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix, dtype=float)
    if m.ndim != 2:
        raise InvalidArgumentError(f"a heat map needs a 2-D matrix, got shape {m.shape}")
    return m.astype(float)


def _scale(values: np.ndarray, unit: str) -> tuple[float, str]:
    """A display factor and label: byte counts are shown in the largest unit under the maximum."""
    if unit != "bytes" or not values.size:
        return 1.0, unit
    top = float(np.max(values))
    for name, f in _BYTE_UNITS:
        if top >= f:
            return f, name
    return 1.0, "B"


def _ticks(n: int, labels: Sequence[str] | None, max_ticks: int = 16) -> tuple[np.ndarray, list[str]]:
    step = max(1, int(np.ceil(n / max_ticks)))
    pos = np.arange(0, n, step)
    names = [str(labels[int(i)]) if labels is not None else str(int(i)) for i in pos]
    return pos, names


def plot_heatmap(matrix: Any, *, ax: Any = None, title: str = "", labels: Sequence[str] | None = None,
                 unit: str = "bytes") -> Any:
    """Draw ``matrix`` (rows = sources, columns = destinations; scipy.sparse or array).

    Bytes are drawn on a log colour scale shown in kB/MB/GB/TB as fits; any other ``unit`` (e.g.
    ``"circuits"``) is a count, drawn on a linear scale with integer ticks and labelled with that unit.
    Zero entries stay blank. Tick labels (``labels`` or indices) are thinned to at most 16 per axis, so 2 to 512 groups stay
    readable. Returns the Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    m = _dense(matrix)
    rows, cols = m.shape
    if labels is not None and len(labels) not in (rows, cols):
        raise InvalidArgumentError(f"{len(labels)} labels for a {rows} x {cols} matrix")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 4.2), constrained_layout=True)
    positive = m[m > 0]
    factor, shown_unit = _scale(positive, unit)
    masked = np.ma.masked_less_equal(m / factor, 0.0)
    cmap = plt.get_cmap("viridis").copy()
    cmap = cmap.with_extremes(bad="white")
    if positive.size:
        lo, hi = float(positive.min()) / factor, float(positive.max()) / factor
        if unit == "bytes":
            norm: Any = LogNorm(vmin=lo if hi > lo else lo / 10, vmax=hi)
        else:  # counts (circuits): a linear scale from 1, integer ticks
            from matplotlib.colors import Normalize

            norm = Normalize(vmin=0.5, vmax=max(hi, 1.0) + 0.5)
        im = ax.imshow(masked, cmap=cmap, norm=norm, interpolation="nearest", aspect="equal")
        cbar = ax.figure.colorbar(im, ax=ax, shrink=0.85)
        cbar.set_label(shown_unit)
        if unit != "bytes":
            from matplotlib.ticker import MaxNLocator

            cbar.locator = MaxNLocator(integer=True)
            cbar.update_ticks()
    else:
        ax.imshow(np.zeros_like(m), cmap="Greys", vmin=0, vmax=1, interpolation="nearest", aspect="equal")
        ax.text(0.5, 0.5, "no traffic" if unit == "bytes" else f"no {unit}", transform=ax.transAxes, ha="center", va="center", color="0.4")
    fs = 8 if max(rows, cols) <= 32 else 6
    xpos, xnames = _ticks(cols, labels if labels is not None and len(labels) == cols else None)
    ypos, ynames = _ticks(rows, labels if labels is not None and len(labels) == rows else None)
    ax.set_xticks(xpos, xnames, rotation=90, fontsize=fs)
    ax.set_yticks(ypos, ynames, fontsize=fs)
    ax.set_xlabel("destination")
    ax.set_ylabel("source")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_domains(domains: Sequence[tuple[str, Sequence[str], Any]], *, title: str = "", unit: str = "circuits",
                 max_panels: int = 6) -> Any:
    """One heat map per domain ``(name, node labels, square matrix)``, e.g. the circuits of the core OCS layer
    (pod x pod) and of each pod's OCS layer (ToR x ToR), so nodes of different tiers never share a matrix.

    At most ``max_panels`` domains are drawn (the first ones; the title says how many were left out).
    Returns the Figure.
    """
    import matplotlib.pyplot as plt

    shown = list(domains)[:max_panels]
    if not shown:
        raise InvalidArgumentError("no domains to draw")
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 4.2), constrained_layout=True, squeeze=False)
    for ax, (name, labels, matrix) in zip(axes[0], shown, strict=True):
        plot_heatmap(matrix, ax=ax, title=name, labels=list(labels), unit=unit)
    left = len(domains) - len(shown)
    if title or left:
        fig.suptitle(title + (f" ({left} more domains not shown)" if left else ""), fontsize=10)
    return fig


def network_bytes(traffic: Any, topology: Any, level: str) -> Any:
    """Bytes of ``traffic`` (a :class:`~rfabric.traffic_matrix.TrafficMatrix`) that cross the network,
    grouped ``level`` x ``level`` (server, tor, pod): traffic inside a server (NVLink) is left out, traffic
    between servers of one group stays on the diagonal. Returns a scipy.sparse matrix."""
    servers = topology.gpu_groups("server")
    groups = topology.gpu_groups(level)
    n_srv = int(servers.max()) + 1 if servers.size else 0
    n_grp = int(groups.max()) + 1 if groups.size else 0
    by_server = traffic.group(servers, n_srv, keep_diagonal=False)  # drops intra-server (NVLink) bytes
    srv_to_grp = np.zeros(n_srv, dtype=np.int64)
    srv_to_grp[servers] = groups
    p = sp.csr_matrix((np.ones(n_srv), (np.arange(n_srv), srv_to_grp)), shape=(n_srv, n_grp))
    return (p.T @ by_server @ p).tocsr()


def save_phase_heatmaps(workload: Any, topology: Any, level: str, out_dir: str | Path, *, dpi: int = 130) -> list[Path]:
    """Save one heat map per phase of ``workload`` into ``out_dir`` (created): ``<phase>.png``, the phase's
    network bytes ``level`` x ``level`` on ``topology`` (:func:`network_bytes`: NVLink traffic left out).

    Parameters
    ----------
    workload : rfabric.workload.Workload
        Its phases' traffic matrices are drawn.
    topology : rfabric.topology.Topology
        Groups GPUs into servers and ``level`` groups.
    level : str
        ``server``, ``tor`` or ``pod``.
    out_dir : str or Path
        Directory of the PNG files.
    dpi : int
        Resolution of the PNG files.

    Returns
    -------
    list of Path
        The files written, in phase order.
    """
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for p in workload.phases:
        m = network_bytes(p.traffic, topology, level)
        fig, ax = plt.subplots(figsize=(5, 4.2), constrained_layout=True)
        plot_heatmap(m, ax=ax, title=f"{p.name}: network bytes {level} x {level} (NVLink excluded)")
        fig.savefig(out / f"{p.name}.png", dpi=dpi)
        plt.close(fig)
        paths.append(out / f"{p.name}.png")
    return paths


def save_domains(domains: Sequence[tuple[str, Sequence[str], Any]], path: str | Path, *, title: str = "",
                 dpi: int = 130) -> Path:
    """Save :func:`plot_domains` of ``domains`` as the PNG ``path`` (its directory created).

    Raises
    ------
    InvalidArgumentError
        ``domains`` is empty.
    """
    import matplotlib.pyplot as plt

    fig = plot_domains(domains, title=title)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
