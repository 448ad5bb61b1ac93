"""Project exceptions only: every error the packages raise on purpose is an ``RfabricError`` (issue #12)."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import numpy as np
import pytest

from rfabric.errors import ConfigError, InternalError, InvalidArgumentError, RfabricError, UnknownNameError

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rfabric", "topologies", "traffic", "solver", "validation")
#: builtin exceptions the packages must not raise themselves (they raise a project subclass of them)
BARE = {"ValueError", "TypeError", "RuntimeError", "KeyError"}


def bare_raises(source: str) -> list[int]:
    """Line numbers of ``raise ValueError(...)`` / ``raise ValueError`` (and TypeError, RuntimeError, KeyError)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id in BARE:
                lines.append(node.lineno)
    return sorted(lines)


def test_the_scan_finds_bare_raises() -> None:
    src = "def f(x):\n    if x:\n        raise ValueError('x')\n    raise RuntimeError\n"
    assert bare_raises(src) == [3, 4]
    assert bare_raises("raise InvalidArgumentError('x')\nraise TypeError('y') from None\n") == [2]
    assert bare_raises("raise UnknownNameError('phase', 'x')\nraise KeyError(name)\n") == [2]


def test_no_bare_builtin_raises_in_the_packages() -> None:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 50  # the walk found the packages
    found = [f"{p.relative_to(ROOT)}:{n}" for p in files for n in bare_raises(p.read_text(encoding="utf-8"))]
    assert not found, f"raise a project exception from rfabric.errors instead: {found}"


def test_project_errors_keep_their_builtin_bases() -> None:
    assert issubclass(InvalidArgumentError, RfabricError) and issubclass(InvalidArgumentError, ValueError)
    assert issubclass(InternalError, RfabricError) and issubclass(InternalError, RuntimeError)
    assert issubclass(ConfigError, ValueError)
    with pytest.raises(InvalidArgumentError, match="no errors to combine"):
        ConfigError.combine([])
    e = pickle.loads(pickle.dumps(InvalidArgumentError("bad shape")))  # crosses process pools
    assert type(e) is InvalidArgumentError and str(e) == "bad shape"


def test_collective_errors_are_project_errors_with_their_messages() -> None:
    from traffic.collectives import all_reduce, collective

    with pytest.raises(InvalidArgumentError, match=r"unknown collective 'all_sum'; known: \['all_gather'"):
        collective("all_sum", np.array([[0, 1]]), 1e6)
    with pytest.raises(InvalidArgumentError, match="unknown all_reduce algorithm 'butterfly'"):
        all_reduce(np.array([[0, 1]]), 1e6, algorithm="butterfly")
    with pytest.raises(ValueError, match="a GPU appears twice in one collective group"):  # still a ValueError
        all_reduce(np.array([[0, 0]]), 1e6)


def test_workload_and_matrix_errors_are_project_errors() -> None:
    from rfabric.traffic_matrix import TrafficMatrix
    from traffic.parallelism import TrainLayout

    with pytest.raises(InvalidArgumentError, match=r"GPU index outside 0\.\.3"):
        TrafficMatrix.from_pairs(4, [0], [4], 1.0)
    with pytest.raises(InvalidArgumentError, match="tp\\*pp\\*cp = 3 does not divide the 8 trainer GPUs"):
        TrainLayout.build(offset=0, gpus=8, tp=3, pp=1, cp=1, ep=1)



def test_name_lookups_raise_a_project_key_error() -> None:
    from rfabric.results import Comparison, ComparisonRow, compare
    from rfabric.workload import Workload

    assert issubclass(UnknownNameError, RfabricError) and issubclass(UnknownNameError, KeyError)
    with pytest.raises(UnknownNameError, match=r"unknown phase 'train'; known: \[\]") as info:
        Workload(name="w", num_gpus=2, phases=()).phase("train")
    assert info.value.name == "train" and info.value.args == ("train",)
    row = ComparisonRow(fabric="a", kind="fat_tree", gpus=2, iteration_time_s=1.0, steps_per_s=1.0, capex_usd=1.0,
                        capex_cluster_usd=1.0, power_w=1.0, perf_per_usd=1.0, perf_per_usd_vs_ref=1.0,
                        time_vs_ref=1.0, perf_per_w=1.0, perf_per_w_vs_ref=1.0, perf_per_cluster_usd_vs_ref=1.0,
                        reconfig_time_s=0.0)
    with pytest.raises(KeyError, match=r"unknown fabric 'b'; known: \['a'\]"):  # still a KeyError
        Comparison(reference="a", rows=(row,)).row("b")
    with pytest.raises(UnknownNameError, match="unknown reference fabric 'ref'; known: \\[\\]"):
        compare({}, "ref", gpus=2)
    e = pickle.loads(pickle.dumps(UnknownNameError("phase", "x", ["y"])))
    assert type(e) is UnknownNameError and str(e) == "unknown phase 'x'; known: ['y']"
