"""The rfabric command: bad input gives one clear line naming the key, exit code 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rfabric.cli import main

BAD_INPUTS = [
    # (config text or None, --set overrides, key expected in the message)
    (None, ["--config", "does/not/exist.yaml"], "--config"),
    ("cluster: [1, 2\n", [], "malformed YAML"),
    ("cluster:\n  trainer_gpu: 64\n", [], "cluster.trainer_gpu"),
    ("clustr: {}\n", [], "clustr"),
    (None, ["--set", "cluster.nic_gbps=-400"], "cluster.nic_gbps"),
    (None, ["--set", "cluster.nic_gbps=0"], "cluster.nic_gbps"),
    (None, ["--set", "cluster.trainer_gpus=60"], "cluster.trainer_gpus"),
    (None, ["--set", "workload.train.tp=3"], "workload.train"),
    (None, ["--set", "workload.model=qwen9-1t"], "workload.model"),
    (None, ["--set", "fabrics.rfabric.core_ocs_share=1.5"], "core_ocs_share"),
    (None, ["--set", "topology.switch_radx=16"], "topology.switch_radx"),
    (None, ["--set", "fabrics[0].kind=fat_tre"], "fat_tree"),
    (None, ["--set", "solver.backend=gurobi9"], "solver.backend"),
    (None, ["--set", "cost.prices.ocs_port_usd=-1"], "cost.prices.ocs_port_usd"),
    (None, ["--set", "novalue"], "--set"),
]


@pytest.mark.parametrize(("text", "extra", "key"), BAD_INPUTS)
def test_bad_input_exit_2_names_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None,
                                    extra: list[str], key: str) -> None:
    args = ["run", "--out", str(tmp_path / "out"), "-q"]
    if text is not None:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(text)
        args += ["--config", str(cfg)]
    code = main(args + extra)
    err = capsys.readouterr().err
    assert code == 2, err
    assert key in err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err  # one line
    assert not (tmp_path / "out").exists()


def test_usage_error_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", "--bogus"])
    assert e.value.code == 2


def test_module_entry_point_reports_config_errors(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "rfabric", "run", "--config", str(tmp_path / "nope.yaml")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "--config" in p.stderr and "no such file" in p.stderr
    assert "Traceback" not in p.stderr


def test_out_that_is_a_file_fails_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "afile"
    f.write_text("keep me")
    assert main(["run", "--out", str(f), "-q"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "not a directory" in err and "Traceback" not in err
    assert f.read_text() == "keep me"


def test_rerun_without_figure_leaves_no_stale_figure(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text("cluster: {trainer_gpus: 8, rollout_gpus: 8}\nworkload: {kind: collective, size_mb: 100}\n"
                    "topology: {switch_radix: 16}\nfabrics: [{name: fat_tree, kind: fat_tree}]\nreference: fat_tree\n")
    out = tmp_path / "out"
    assert main(["run", "--config", str(tiny), "--out", str(out), "-q"]) == 0
    assert (out / "comparison.png").is_file()
    assert main(["run", "--config", str(tiny), "--out", str(out), "-q", "--no-figure"]) == 0
    assert not (out / "comparison.png").exists() and (out / "summary.csv").is_file()


def test_plot_refuses_a_sweep_of_another_axis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Drawing the scaling figure from a price sweep would average unrelated points: exit 2 instead."""
    cols = "run_id,seed,status,cost.prices.ocs_port_usd,fabric,kind,gpus,time_vs_ref,capex_usd,perf_per_usd_vs_ref"
    rows = [f"r{i},0,ok,{price},{f},{f},128,1.0,{1e6 * (i + 1)},1.0" for i, price in enumerate((100, 500))
            for f in ("fat_tree", "rfabric")]
    (tmp_path / "sweep.csv").write_text("\n".join([cols, *rows]) + "\n")
    assert main(["plot", "scaling", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cost.prices.ocs_port_usd" in err and "Traceback" not in err
    assert main(["plot", "ocs_price", str(tmp_path), "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig.png").stat().st_size > 1000


def test_reader_leaving_early_is_a_quiet_sigpipe_exit() -> None:
    # `rfabric traffic | head -1` when head has already left: every write meets a closed pipe. No "Broken
    # pipe" message, no traceback, and the exit status of a SIGPIPE death (128 + 13), as `yes | head -1` gives.
    # The pipe's read end is closed before the command starts, so this is deterministic.
    import os
    import signal

    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([sys.executable, "-m", "rfabric", "traffic"], stdout=w, stderr=subprocess.PIPE,
                           text=True, timeout=120)
    finally:
        os.close(w)
    assert p.returncode == 128 + signal.SIGPIPE, p.stderr
    assert "Broken pipe" not in p.stderr and "Traceback" not in p.stderr
