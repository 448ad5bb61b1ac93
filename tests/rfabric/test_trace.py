"""``rfabric simulate --trace``: the simulated timeline as Chrome trace / Perfetto JSON (issue 16)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rfabric.cli import main
from rfabric.errors import ConfigError
from rfabric.results import PhaseTiming, SimulationResult
from rfabric.trace import chrome_trace, trace_summary
from rfabric.workload import FlowSet, PhaseStep, Workload

# Qwen2.5-0.5B's config.json shape fields (https://huggingface.co/Qwen/Qwen2.5-0.5B): a small real model
TINY = {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
        "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True}


def _strict(text: str) -> Any:
    def no_constant(c: str) -> Any:
        raise AssertionError(f"non-strict JSON constant {c}")

    return json.loads(text, parse_constant=no_constant)


def _x(doc: dict[str, Any], cat: str) -> list[dict[str, Any]]:
    return [e for e in doc["traceEvents"] if e["ph"] == "X" and e["cat"] == cat]


def _names(doc: dict[str, Any], kind: str) -> dict[tuple[int, int], str]:
    return {(e["pid"], e["tid"]): e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == kind}


def test_trace_of_a_pipelined_run_matches_the_simulation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "qwen2.5-0.5b" / "config.json"
    model.parent.mkdir()
    model.write_text(json.dumps(TINY))
    out, trace = tmp_path / "sim", tmp_path / "t" / "trace.json"
    code = main(["simulate", "--set", "cluster.trainer_gpus=8", "--set", "cluster.rollout_gpus=8", "--set",
                 f"workload.model={model}", "--set", "workload.rl={prompts_per_step: 16, samples_per_prompt: 2}",
                 "--set", "workload.rollout.response_tokens_mean=256", "--set",
                 "workload.rollout.response_tokens_max=1024", "--fabric", "rfabric", "--out", str(out),
                 "--trace", str(trace), "-q"])
    assert code == 0, capsys.readouterr().err
    doc = _strict(trace.read_text())
    rows = list(csv.DictReader((out / "phases.csv").open()))
    phases = _x(doc, "phase")
    assert len(phases) == len(rows) > 0
    procs = {pid: name for (pid, _), name in _names(doc, "process_name").items()}
    threads = _names(doc, "thread_name")
    for e, r in zip(phases, rows, strict=True):  # every instance, in order: pid = its cluster, tid = its phase
        assert (e["name"], procs[e["pid"]], e["args"]["step"]) == (r["phase"], r["cluster"], int(r["step"]))
        assert threads[(e["pid"], e["tid"])] == r["tag"]
        assert e["ts"] == pytest.approx(float(r["start_s"]) * 1e6, rel=1e-8, abs=1e-3)
        assert e["dur"] == pytest.approx(float(r["duration_s"]) * 1e6, rel=1e-8, abs=1e-3)
    assert {"rollout", "trainer", "sync"} <= set(procs.values())
    sim = _strict((out / "simulation.json").read_text())
    assert doc["otherData"]["iteration_time_s"] == pytest.approx(sim["iteration_time_s"])
    colls = _x(doc, "collective")
    assert colls, "no collective traced"
    for c in colls:  # each collective inside the instance of its phase, on its cluster's process
        inside = [e for e in phases if e["name"] == c["args"]["phase"] and e["pid"] == c["pid"]
                  and e["ts"] - 1 <= c["ts"] and c["ts"] + c["dur"] <= e["ts"] + e["dur"] + 1]
        assert inside, c
        assert threads[(c["pid"], c["tid"])] == c["name"] and c["args"]["flows"] > 0
    assert any(threads[(c["pid"], c["tid"])] == "dp/reduce_scatter" or "dp/" in c["name"] for c in colls)


def _hand_result(changed: int = 5) -> tuple[SimulationResult, Workload]:
    flows = FlowSet.build([0, 1, 2], [1, 2, 3], [1e6, 1e6, 2e6], tag=[0, 0, 1],
                       tags=("dp/all_reduce", "tp/all_reduce"))
    wl = Workload(name="w", num_gpus=4, phases=(PhaseStep(name="train", phase="train", flows=flows, num_gpus=4, repeat=2),),
                  trainer_gpus=(0, 4), rollout_gpus=(4, 4))
    ph = PhaseTiming(name="train", phase="train", start_s=1.0, comm_start_s=1.5, end_s=3.0, repeat=2,
                     reconfig_s=0.01, circuits_changed=changed, flows=3)
    res = SimulationResult(fabric="rf", iteration_time_s=4.0, phases=(ph,),
                           flow_start_s={"train": np.array([1.5, 1.5, 1.6])},
                           flow_finish_s={"train": np.array([2.0, 2.5, 2.9])})
    return res, wl


def test_hand_built_trace() -> None:
    """Times in microseconds; a repeated phase spans its repeats; a reconfiguration on the fabric's process."""
    res, wl = _hand_result()
    doc = chrome_trace(res, wl)
    (ph,) = _x(doc, "phase")
    assert (ph["ts"], ph["dur"], ph["args"]["repeat"]) == (1.0e6, 4.0e6, 2)  # (3 - 1) s x 2 repeats
    colls = {c["name"]: (c["ts"], c["dur"], c["args"]["flows"]) for c in _x(doc, "collective")}
    assert colls["dp/all_reduce"] == pytest.approx((1.5e6, 1.0e6, 2))
    assert colls["tp/all_reduce"] == pytest.approx((1.6e6, 1.3e6, 1))
    (rc,) = _x(doc, "reconfiguration")
    assert (rc["ts"], rc["dur"], rc["args"]["circuits_changed"]) == pytest.approx((1.0e6, 1.0e4, 5))
    procs = {pid: name for (pid, _), name in _names(doc, "process_name").items()}
    assert procs[rc["pid"]] == "fabric: rf" and procs[ph["pid"]] == "trainer"
    assert trace_summary(doc) == {"phase": 1, "collective": 2, "reconfiguration": 1}
    assert _x(chrome_trace(_hand_result(changed=0)[0]), "reconfiguration") == []
    assert _x(chrome_trace(res), "collective") == []  # without the workload: phases and reconfigurations only


def test_pipelined_reconfigurations_come_from_the_epochs() -> None:
    res, _ = _hand_result()
    epochs = [{"start_s": 0.0, "end_s": 1.0, "phases": ["train"], "circuits_changed": 0},
              {"start_s": 1.0, "end_s": 2.0, "phases": ["train"], "circuits_changed": 3},
              {"start_s": 2.0, "end_s": 3.0, "phases": [], "circuits_changed": 7}]
    pipelined = SimulationResult(fabric="rf", iteration_time_s=4.0, phases=res.phases, instances=res.phases,
                                 extra={"epochs": epochs, "ocs_reconfig_s": 0.02}, mode="one_step_off")
    rcs = [(e["ts"], e["dur"], e["args"]["circuits_changed"]) for e in _x(chrome_trace(pipelined), "reconfiguration")]
    assert [r[2] for r in rcs] == [3, 7]
    assert np.allclose([r[:2] for r in rcs], [(1.0e6, 2.0e4), (2.0e6, 2.0e4)])


def test_trace_of_another_workload_is_refused() -> None:
    res, wl = _hand_result()
    other = Workload(name="o", num_gpus=4, phases=(), trainer_gpus=(0, 4), rollout_gpus=(4, 4))
    with pytest.raises(ConfigError, match="workload"):
        chrome_trace(res, other)
    with pytest.raises(ConfigError):
        chrome_trace("not a result", wl)  # type: ignore[arg-type]


def test_unwritable_trace_is_refused_before_simulating(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--out", str(tmp_path / "o"), "--trace", str(tmp_path), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "--trace" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()
