"""CircuitAssignment.of: the canonical order is Circuit's own (dataclass) order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rfabric.circuits import Circuit, CircuitAssignment

_circuit = st.builds(lambda o, a, d: Circuit(o, a, a + d), st.sampled_from(["ocs.agg.0", "ocs.agg.10", "ocs.agg.2",
                                                                            "ocs.core.1", "ocs.nic.0"]),
                     st.integers(0, 200), st.integers(1, 200))


@given(st.lists(_circuit, max_size=60))
def test_of_sorts_like_the_circuits_own_comparisons(circuits: list[Circuit]) -> None:
    got = CircuitAssignment.of(circuits).circuits
    assert got == tuple(sorted(circuits))
    assert all(not (b < a) for a, b in zip(got, got[1:], strict=False))


def test_of_orders_by_ocs_name_then_ports() -> None:
    cs = [Circuit("ocs.b", 0, 1), Circuit("ocs.a", 2, 3), Circuit("ocs.a", 1, 9), Circuit("ocs.a", 1, 4)]
    assert CircuitAssignment.of(cs).circuits == (Circuit("ocs.a", 1, 4), Circuit("ocs.a", 1, 9), Circuit("ocs.a", 2, 3),
                                                 Circuit("ocs.b", 0, 1))
