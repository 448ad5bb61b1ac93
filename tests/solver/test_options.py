"""solver.parse_options: defaults, human units, and every mistake a ConfigError naming its key."""

from __future__ import annotations

import pytest

import solver
from rfabric.config import to_plain
from rfabric.errors import ConfigError


def test_defaults() -> None:
    o = solver.parse_options({})
    assert (o.backend, o.model, o.layers, o.reconfig, o.pulp_solver) == ("highs", "hybrid", "sequential", "auto", "CBC")
    assert o.time_limit_s == 60.0 and o.cache and o.max_changed == -1
    assert o.node_limit == 20 and o.ocs_max_columns == 10_000  # the deterministic work limits (issue #19)
    assert solver.parse_options(None) == o
    assert solver.parse_options(o) is o


def test_human_units_and_plain_round_trip() -> None:
    o = solver.parse_options({"time_limit_ms": 250, "backend": "pulp", "pulp_solver": "highs"})
    assert o.time_limit_s == pytest.approx(0.25)
    assert solver.parse_options(to_plain(o)) == o


@pytest.mark.parametrize(("raw", "key", "hint"), [
    ({"backend": "gurobi9"}, "solver.backend", "highs, pulp, greedy"),
    ({"backend": "hihgs"}, "solver.backend", "did you mean 'highs'"),
    ({"reconfg": "auto"}, "solver.reconfg", "did you mean 'reconfig'"),
    ({"time_limit_s": 0}, "solver.time_limit_s", "> 0"),
    ({"time_limit_s": "fast"}, "solver.time_limit_s", "number"),
    ({"mip_gap": 1.5}, "solver.mip_gap", "< 1"),
    ({"layers": "joint"}, "solver.layers", "sequential"),
    ({"reconfig": "sometimes"}, "solver.reconfig", "auto, always, never"),
    ({"model": "transt"}, "solver.model", "did you mean 'transit'"),
    ({"max_changed": -2}, "solver.max_changed", ">= -1"),
    ({"pulp_solver": "CBD"}, "solver.pulp_solver", "did you mean 'CBC'"),
    ({"cache": "yes"}, "solver.cache", "true or false"),
])
def test_errors_name_the_key(raw: dict, key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as e:
        solver.parse_options(raw, "solver")
    assert e.value.key == key
    assert hint in str(e.value)
