"""plot_timeline draws phases, reconfiguration windows and utilisation with labelled axes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from rfabric.config import SimConfig  # noqa: E402
from rfabric.plotting.timeline import plot_timeline  # noqa: E402
from rfabric.sim import simulate  # noqa: E402
from rfabric.workload import FlowSet, PhaseStep, Workload  # noqa: E402
from tests.sim.conftest import line_topology  # noqa: E402


def _result() -> object:
    topo = line_topology([8e9])
    ph = (PhaseStep(name="a", phase="train", flows=FlowSet.build([0], [1], [1e9]), num_gpus=2, compute_before_s=0.5),
          PhaseStep(name="b", phase="rollout", flows=FlowSet.build([1], [0], [1e9]), num_gpus=2, repeat=2))
    return simulate(topo, Workload(name="w", num_gpus=2, phases=ph), None, options=SimConfig(link_latency=False))


def test_timeline_with_utilisation(tmp_path: object) -> None:
    fig = plot_timeline(_result())  # type: ignore[arg-type]
    axes = fig.axes
    assert len(axes) == 2
    assert "time" in axes[1].get_xlabel() and "(s)" in axes[1].get_xlabel()
    assert "%" in axes[1].get_ylabel()
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["b", "a"]
    assert len(axes[0].patches) == 4  # compute + communication bar per phase
    fig.savefig(tmp_path / "t.png")  # type: ignore[operator]
    plt.close(fig)


def test_timeline_on_given_axes() -> None:
    fig, ax = plt.subplots()
    out = plot_timeline(_result(), ax=ax)  # type: ignore[arg-type]
    assert out is fig and len(fig.axes) == 1 and ax.get_xlabel() == "time since step start (s)"
    plt.close(fig)


def test_pipeline_timeline_has_two_lanes_and_a_legend() -> None:
    from rfabric.sim.pipeline import simulate_pipeline
    from rfabric.workload import Schedule

    topo = line_topology([8e9])
    ph = (PhaseStep(name="rollout", phase="rollout", flows=FlowSet.build([1], [0], [1e9]), num_gpus=2,
                    compute_before_s=2.0),
          PhaseStep(name="train", phase="train", flows=FlowSet.build([0], [1], [1e9]), num_gpus=2, compute_before_s=0.5),
          PhaseStep(name="weight_sync", phase="weight_sync", flows=FlowSet.build([0], [1], [1e9]), num_gpus=2))
    res = simulate_pipeline(topo, Workload(name="w", num_gpus=2, phases=ph, schedule=Schedule(mode="one_step_off")),
                            options=SimConfig(link_latency=False, steps=2))
    fig = plot_timeline(res)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["trainer pool", "rollout pool"]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"training", "rollout", "weight sync"} <= set(labels)
    steps = {t.get_text() for t in ax.texts}
    assert {"train #1", "train #2", "rollout #2", "rollout #3"} <= steps  # two RL steps drawn
    # labels never overlap: one per phase and step, only where the bars leave room
    boxes = [t.get_window_extent(renderer=fig.canvas.get_renderer()) for t in ax.texts]
    assert not any(b1.overlaps(b2) for i, b1 in enumerate(boxes) for b2 in boxes[i + 1:])
    assert "(s)" in ax.get_xlabel() and "one_step_off" in ax.get_title()
    plt.close(fig)
