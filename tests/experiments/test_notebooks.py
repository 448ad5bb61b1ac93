"""Every notebook (jupytext .py) executes top to bottom on smoke-sized inputs, under the inline backend a
person gets in Jupyter, and every cell that draws shows its figure (issue 16: the plotting helpers used to
switch the inline backend to Agg, so no figure appeared)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "experiments" / "notebooks").glob("*.py"))
DRAWS = re.compile(r"\b(plot_\w+\(|draw_\w+\(|FIGURES\[|plt\.subplots\()")


def _execute(nb: Any, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("RFABRIC_SMOKE", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel picks Jupyter's inline backend, as for a person
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.execute()  # raises CellExecutionError naming the failing cell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_shows_its_figures(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jupytext = pytest.importorskip("jupytext")
    nb = jupytext.read(path)
    _execute(nb, path.parent, monkeypatch)
    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(o.get("output_type") == "stream" for o in outputs), "notebook printed nothing"
    drawing = [c for c in code if DRAWS.search(c.source)]
    assert drawing, "the notebook draws nothing"
    for c in drawing:
        images = [o for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert images, f"this cell draws but shows no figure:\n{c.source}"


def test_scaling_notebook_outside_the_repository_says_what_to_do(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    nb = jupytext.read(ROOT / "experiments" / "notebooks" / "02_scaling_results.py")
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells = nb.cells[: first + 1]
    monkeypatch.delenv("RFABRIC_SWEEP_DIR", raising=False)
    with pytest.raises(nbclient.exceptions.CellExecutionError) as e:
        _execute(nb, tmp_path, monkeypatch)
    assert e.value.ename == "FileNotFoundError"
    assert "RFABRIC_SWEEP_DIR" in e.value.evalue and "StopIteration" not in str(e.value)
