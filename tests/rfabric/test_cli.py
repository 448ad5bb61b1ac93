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
