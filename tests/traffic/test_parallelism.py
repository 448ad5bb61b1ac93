"""Rank placement: groups partition the GPUs, TP stays in a server, orders and EP carving behave."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traffic.parallelism import RolloutLayout, TrainLayout, interval_overlap, parse_order


def is_partition(groups: np.ndarray, lo: int, hi: int) -> bool:
    return bool(np.array_equal(np.sort(groups.ravel()), np.arange(lo, hi)))


@st.composite
def layouts(draw: st.DrawFn) -> TrainLayout:
    tp = draw(st.sampled_from([1, 2, 4, 8]))
    pp = draw(st.sampled_from([1, 2, 3]))
    cp = draw(st.sampled_from([1, 2]))
    ep = draw(st.sampled_from([1, 2, 4]))
    dp = ep * draw(st.integers(1, 3))
    order = "-".join(draw(st.permutations(["tp", "cp", "dp", "pp"])))
    return TrainLayout.build(offset=draw(st.sampled_from([0, 16])), gpus=tp * pp * cp * dp, tp=tp, pp=pp, cp=cp,
                             ep=ep, order=order)


@given(layouts())
@settings(max_examples=80, deadline=None)
def test_every_axis_partitions_the_trainer(lay: TrainLayout) -> None:
    lo = int(lay.grid.min())
    hi = lo + lay.gpus
    for axis, size in (("tp", lay.tp), ("pp", lay.pp), ("dp", lay.dp), ("cp", lay.cp)):
        g = lay.groups(axis)
        assert g.shape == (lay.gpus // size, size)
        assert is_partition(g, lo, hi)
    assert is_partition(lay.ep_groups(), lo, hi)
    assert is_partition(lay.expert_dp_groups(), lo, hi)
    assert is_partition(lay.dp_groups(), lo, hi)
    assert lay.expert_dp_groups().shape[1] * lay.ep == lay.dp_groups().shape[1]
    # an EP group and an expert-DP group share exactly one GPU when they meet
    e, x = set(lay.ep_groups()[0].tolist()), set(lay.expert_dp_groups()[0].tolist())
    assert len(e & x) <= 1
    # the fastest axis of the order is contiguous
    fastest = lay.order[0]
    g = lay.groups(fastest)
    assert np.all(np.diff(g, axis=1) == 1)


def test_default_order_keeps_tp_in_a_server() -> None:
    lay = TrainLayout.build(offset=0, gpus=64, tp=8, pp=1, cp=1, ep=1)
    assert np.all(lay.groups("tp") // 8 == (lay.groups("tp") // 8)[:, :1])
    dp = lay.groups("dp")
    assert dp.shape == (8, 8) and np.unique(dp[0] // 8).size == 8  # DP crosses servers


def test_parse_order_errors() -> None:
    assert parse_order("TP-dp-cp-pp") == ("tp", "dp", "cp", "pp")
    for bad in ("tp-dp-pp", "tp-tp-dp-pp", "tp-dp-cp-pp-ep"):
        with pytest.raises(ValueError, match="once"):
            parse_order(bad)


def test_rollout_layout_groups() -> None:
    lay = RolloutLayout.build(offset=64, gpus=64, tp=4, dp_attention=2, ep=8)
    assert lay.num_replicas == 8 and lay.replica_gpus == 8
    assert lay.tp_groups()[:2].tolist() == [[64, 65, 66, 67], [68, 69, 70, 71]]
    assert lay.ep_groups()[0].tolist() == list(range(64, 72))
    afd = RolloutLayout.build(offset=0, gpus=24, tp=2, dp_attention=1, ep=4, ffn_gpus=4)
    assert afd.replica_gpus == 6 and afd.attention_part()[0].tolist() == [0, 1] and afd.ffn_part()[0].tolist() == [2, 3, 4, 5]
    with pytest.raises(ValueError):
        RolloutLayout.build(offset=0, gpus=12, tp=8)


@given(st.integers(1, 16), st.integers(1, 16))
def test_interval_overlap_rows_and_columns(a: int, b: int) -> None:
    m = interval_overlap(a, b)
    assert np.allclose(m.sum(axis=1), 1 / a) and np.allclose(m.sum(axis=0), 1 / b)
    assert np.all(m >= 0)
