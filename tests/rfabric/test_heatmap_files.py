"""The heat-map files of ``rfabric traffic --heatmaps`` and ``rfabric solve --heatmap`` (drawn in
rfabric.plotting.heatmaps, the CLI only picks the backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from rfabric import api  # noqa: E402
from rfabric.cli import main  # noqa: E402
from rfabric.errors import InvalidArgumentError  # noqa: E402
from rfabric.plotting.heatmaps import save_domains, save_phase_heatmaps  # noqa: E402

TINY = ("fabrics: [fat_tree]\ncluster: {trainer_gpus: 16, rollout_gpus: 16}\ntopology: {switch_radix: 16}\n"
        "workload: {kind: collective, size_bytes: 1.0e+6}\n")
PNG = b"\x89PNG\r\n\x1a\n"


def test_one_png_per_phase(tmp_path: Path) -> None:
    cfg = api.load_config({"fabrics": ["fat_tree"], "cluster": {"trainer_gpus": 16, "rollout_gpus": 16},
                           "topology": {"switch_radix": 16}, "workload": {"kind": "collective", "size_bytes": 1e6}})
    wl, topo = api.build_workload(cfg), api.build_topology(cfg)
    paths = save_phase_heatmaps(wl, topo, "tor", tmp_path / "maps")
    assert [p.name for p in paths] == [f"{p.name}.png" for p in wl.phases] and paths
    assert all(p.read_bytes().startswith(PNG) for p in paths)


def test_the_cli_writes_the_phase_heat_maps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY)
    assert main(["traffic", "--config", str(cfg), "--heatmaps", str(tmp_path / "maps"), "--level", "pod"]) == 0
    pngs = sorted((tmp_path / "maps").glob("*.png"))
    assert pngs and all(p.read_bytes().startswith(PNG) for p in pngs)
    assert "heat maps in" in capsys.readouterr().err


def test_domains_file_and_no_domains(tmp_path: Path) -> None:
    out = save_domains([("pod0", ["t0", "t1"], np.array([[0, 2], [2, 0]]))], tmp_path / "d" / "x.png", title="c")
    assert out == tmp_path / "d" / "x.png" and out.read_bytes().startswith(PNG)
    with pytest.raises(InvalidArgumentError, match="no domains to draw"):
        save_domains([], tmp_path / "y.png")
    assert not (tmp_path / "y.png").exists()
