"""A corpus of malformed inputs, grouped by kind: each is answered with exit 2, one line per mistake naming the
key (or the file), no traceback, nothing written under --out (issue 16). Plus the inputs that must be accepted.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfabric import api
from rfabric.cli import main
from rfabric.config import load_yaml_text, parse_run_config, read_yaml
from rfabric.errors import ConfigError

DEFAULT = (resources.files("rfabric") / "data" / "default.yaml").read_text()
MODEL = (Path(__file__).parents[2] / "traffic" / "data" / "models" / "qwen2.5-14b.yaml").read_text()


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def _assert_refused(code: int, err: str, key: str, out: Path | None = None, lines: int | None = 1) -> None:
    assert code == 2, err
    assert key in err, err
    assert "Traceback" not in err
    if lines is not None:
        assert err.count("\n") == lines, err
    assert len(err) < 2000, err[:300]  # values are cut, never expanded in full
    if out is not None:
        assert not out.exists()


# ------------------------------------------------------------------------------------------------
# Kind 1: the file itself (encoding, YAML 1.2, duplicates, depth, alias bombs)

_BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=False))

FILE_CASES = [
    # id, config file bytes, text expected in the message
    ("latin1-comment", b"# caf\xe9\n" + DEFAULT.encode(), "UTF-8"),
    ("utf16", DEFAULT.encode("utf-16"), "UTF-8"),
    ("binary", bytes(range(256)) * 4, "--config"),
    ("dup-top-level", (DEFAULT + "seed: 3\n").encode(), "'seed' is given twice (lines 5 and"),
    ("dup-nested", DEFAULT.replace("  rollout_gpus: 64\n", "  trainer_gpus: 64\n  rollout_gpus: 64\n").encode(),
     "key 'cluster.trainer_gpus' is given twice (lines 7 and 8)"),
    ("dup-in-list", DEFAULT.replace("{name: rfabric, kind: rfabric}", "{name: rfabric, kind: rfabric, kind: x}").encode(),
     "key 'fabrics[2].kind' is given twice (lines 23 and 23)"),
    ("deep-nesting", b"seed: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested more than"),
    ("alias-bomb-over-limit", ("a: &a [x, x, x, x, x, x, x, x, x]\n" + _BOMB).encode(), "expands to more than"),
    ("yes-is-not-a-bool", DEFAULT.replace("  routing: spray\n", "  routing: spray\n  link_latency: yes\n").encode(),
     "sim.link_latency = 'yes': must be true or false"),
    ("not-a-mapping", b"- 1\n- 2\n", "must hold a mapping"),
]


@pytest.mark.parametrize(("data", "expect"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_bad_config_files(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, expect: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(data)
    out = tmp_path / "out"
    code, err = _run(tmp_path, capsys, ["run", "--config", str(cfg), "--out", str(out), "-q"])
    _assert_refused(code, err, expect, out)


def test_alias_bomb_under_the_limit_is_cut_in_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """9**5 = 59049 leaves: loads, but the error shows a bounded value, not the expansion."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + _BOMB.split("f:")[0].rstrip() + "\n"
    text = bomb + DEFAULT.replace("  nic_gbps: 400\n", "  nic_gbps: *e\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    code, err = _run(tmp_path, capsys, ["run", "--config", str(cfg), "--out", str(tmp_path / "out"), "-q"])
    _assert_refused(code, err, "a", tmp_path / "out", lines=None)  # unknown sections a..e, then nic_gbps
    assert "cluster.nic_gbps" in err


def test_non_utf8_model_file_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "my-model.yaml"
    model.write_bytes(b"# r\xe9sum\xe9\n" + MODEL.encode())
    code, err = _run(tmp_path, capsys, ["run", "--set", f"workload.model={model}", "--out", str(tmp_path / "o"), "-q"])
    _assert_refused(code, err, "my-model.yaml", tmp_path / "o")
    assert "UTF-8" in err


def test_non_utf8_sweep_base_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "base.yaml").write_bytes(b"# caf\xe9\n" + DEFAULT.encode())
    sweep = tmp_path / "s.yaml"
    sweep.write_text("base: base.yaml\nsweep:\n  cluster.nic_gbps: [200, 400]\n")
    code, err = _run(tmp_path, capsys, ["sweep", str(sweep), "--out", str(tmp_path / "o"), "-q", "-j", "1"])
    _assert_refused(code, err, "base.yaml", tmp_path / "o")


def test_yaml_12_core_schema() -> None:
    """No YAML 1.1 octal or yes/no booleans; no timestamps; the same in every file the project reads."""
    doc = load_yaml_text("a: 0400\nb: 0o17\nc: yes\nd: true\ne: 2025-01-01\nf: 1e-3\ng: 0x10\nh: 1_000\ni: ~\n")
    assert doc == {"a": 400, "b": 15, "c": "yes", "d": True, "e": "2025-01-01", "f": 0.001, "g": 16,
                   "h": "1_000", "i": None}
    cfg = api.load_config(overrides=["cluster.nic_gbps=0400", "cost.prices.ocs_port_usd=0520"])
    assert cfg.cluster.nic_bps == 400e9
    assert api.resolve(cfg).catalogue.value("ocs_port_usd") == 520.0


# ------------------------------------------------------------------------------------------------
# Kind 2: values (non-finite numbers, seeds, prices)

VALUE_CASES = [
    ("cluster.nic_gbps=.inf", "cluster.nic_gbps"),
    ("cluster.nic_gbps=1e400", "cluster.nic_gbps"),
    ("cluster.nic_gbps=.nan", "cluster.nic_gbps"),
    ("cluster.nic_latency_us=.inf", "cluster.nic_latency_us"),
    ("cluster.trainer_gpus=.inf", "cluster.trainer_gpus"),
    ("fabrics[1].oversubscription=.inf", "fabrics[1].oversubscription"),
    ("topology.ocs_reconfig_ms=.inf", "ocs_reconfig_ms"),
    ("cost.prices.ocs_port_usd=.inf", "cost.prices.ocs_port_usd"),
    ("cost.prices.switch_port_usd={400: .inf}", "cost.prices.switch_port_usd.400"),
    ("cost.prices.switch_port_usd={fast: 10}", "cost.prices.switch_port_usd.fast"),
    ("workload.gpu.peak_tflops=.inf", "workload.gpu.peak_tflops"),
    ("seed=-1", "seed"),
    ("seed=99999999999", "seed"),
    ("seed=.inf", "seed"),
    ("sim.link_latency=on", "sim.link_latency"),
    ("cluster.trainer_gpus=1000000000000", "cluster.trainer_gpus"),
    ("cluster.rollout_gpus=1e9", "cluster.rollout_gpus"),
]


@pytest.mark.parametrize(("override", "key"), VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_bad_values(tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, key: str) -> None:
    out = tmp_path / "out"
    code, err = _run(tmp_path, capsys, ["run", "--set", override, "--out", str(out), "-q"])
    _assert_refused(code, err, key, out)


# ------------------------------------------------------------------------------------------------
# Kind 3: sizes -- work that would exceed the flow budget or is implausible is refused up front

SIZE_CASES = [
    ("workload.train={micro_batches: 1000000, pp: 2}", "workload.train.micro_batches"),
    ("workload.train={micro_batch_tokens: 1, pp: 2}", "workload.train.micro_batch_tokens"),
    ("workload.train.mini_batches=1000000", "workload.train.mini_batches"),
    ("workload.train.ppo_epochs=100000", "workload.train.ppo_epochs"),
    ("workload.train.logprob_passes=1000000", "workload.train.logprob_passes"),
    ("workload.weight_sync={method: broadcast, roots: 1000}", "workload.weight_sync.roots"),
]


@pytest.mark.parametrize(("override", "key"), SIZE_CASES, ids=[c[0] for c in SIZE_CASES])
def test_oversized_work_is_refused_up_front(tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str,
                                            key: str) -> None:
    out = tmp_path / "out"
    code, err = _run(tmp_path, capsys, ["run", "--set", override, "--out", str(out), "-q"])
    _assert_refused(code, err, key, out)
    assert "limit" in err or "replicas" in err


@pytest.mark.parametrize(("field", "value"), [("hidden", 10**12), ("layers", 10**9), ("vocab", 10**10)])
def test_implausible_model_shapes(tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: int) -> None:
    model = tmp_path / "m.yaml"
    model.write_text("\n".join(f"{field}: {value}" if line.startswith(f"{field}:") else line
                               for line in MODEL.splitlines()))
    out = tmp_path / "out"
    code, err = _run(tmp_path, capsys, ["run", "--set", f"workload.model={model}", "--out", str(out), "-q"])
    _assert_refused(code, err, f"workload.model(m.yaml).{field} = {value}", out)


def test_seed_flag_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(tmp_path, capsys, ["run", "--seed", "-1", "--out", str(tmp_path / "o"), "-q"])
    _assert_refused(code, err, "seed", tmp_path / "o")


@pytest.mark.parametrize("text", ["items: [1, 2\n", "- 1\n- 2\n", "items: 3\n", "items: {ocs_port_usd: .inf}\n",
                                  b"# \xff\n"])
def test_malformed_user_price_catalogue(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | bytes) -> None:
    cat = tmp_path / "prices.yaml"
    cat.write_bytes(text if isinstance(text, bytes) else text.encode())
    code, err = _run(tmp_path, capsys, ["run", "--set", f"cost.catalogue={cat}", "--out", str(tmp_path / "o"), "-q"])
    _assert_refused(code, err, "cost.catalogue", tmp_path / "o")


def test_documented_rate_keyed_price_override_is_accepted() -> None:
    cfg = api.load_config(overrides={"cost.prices.switch_port_usd": {400: 5000}})
    assert api.resolve(cfg).catalogue.value("switch_port_usd", 400e9) == 5000.0


# ------------------------------------------------------------------------------------------------
# Kind 3: structure before semantics, every mistake at once


def test_typo_is_reported_before_a_missing_fabric(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cluster: {trainer_gpus: 8, rollout_gpus: 8}\nworkload: {kind: rl_step, modle: qwen2.5-14b}\n")
    code, err = _run(tmp_path, capsys, ["run", "--config", str(cfg), "--out", str(tmp_path / "o"), "-q"])
    _assert_refused(code, err, "workload.modle", tmp_path / "o", lines=None)
    lines = err.splitlines()
    assert "workload.modle" in lines[0] and "unknown key" in lines[0]
    assert any("name at least one fabric" in ln for ln in lines[1:])


def test_all_mistakes_reported_at_once() -> None:
    with pytest.raises(ConfigError) as e:
        parse_run_config({"clustr": {}, "cluster": {"nic_gbps": -1, "trainer_gpu": 8}, "sim": {"steps": 0},
                          "seed": -2})
    keys = [x.key for x in e.value.errors]
    assert keys[:3] == ["clustr", "cluster.trainer_gpu", "cluster.nic_gbps"] or set(keys[:2]) == {"clustr", "cluster.trainer_gpu"}
    assert {"clustr", "cluster.trainer_gpu", "cluster.nic_gbps", "sim.steps", "seed"} <= set(keys)
    assert all(x.structural for x in e.value.errors[:2]) and not any(x.structural for x in e.value.errors[2:])


# ------------------------------------------------------------------------------------------------
# Kind 4: outputs that cannot be written (checked before any work, named by their flag)

OUTPUT_CASES = [
    (["topology", "--draw", "/proc/x.png"], "--draw"),
    (["topology", "--draw", ""], "--draw"),
    (["traffic", "--heatmaps", "{file}"], "--heatmaps"),
    (["solve", "--phase", "x", "--heatmap", "/proc/x.png"], "--heatmap"),
    (["solve", "--phase", "x", "--export", "/proc/m.lp"], "--export"),
    (["run", "--out", ""], "--out"),
    (["run", "--out", "/proc/rfabric-out"], "--out"),
    (["simulate", "--out", "{file}"], "--out"),
]


@pytest.mark.parametrize(("args", "flag"), OUTPUT_CASES, ids=[" ".join(c[0]) for c in OUTPUT_CASES])
def test_unwritable_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], flag: str) -> None:
    f = tmp_path / "afile"
    f.write_text("keep")
    code, err = _run(tmp_path, capsys, [a.replace("{file}", str(f)) for a in args] + ["-q"])
    _assert_refused(code, err, flag)
    assert f.read_text() == "keep"


# ------------------------------------------------------------------------------------------------
# Strict JSON everywhere


def _strict(text: str) -> object:
    def bad(c: str) -> None:
        raise AssertionError(f"non-standard JSON constant {c}")

    return json.loads(text, parse_constant=bad)


@pytest.mark.parametrize("cmd", [["topology", "--json"], ["traffic", "--json"], ["models", "--json"]])
def test_json_stdout_is_strict(capsys: pytest.CaptureFixture[str], cmd: list[str]) -> None:
    assert main(cmd) == 0
    _strict(capsys.readouterr().out)


@pytest.mark.parametrize("backend", ["highs", "pulp"])
def test_solve_json_stdout_has_no_solver_banner(capfd: pytest.CaptureFixture[str], backend: str) -> None:
    """Captured at the file-descriptor level: a solver library printing from C (HiGHS' "Running HiGHS ...
    Copyright" banner, CBC's log) would land on fd 1 and break `rfabric solve --json | python -m json.tool`."""
    assert main(["solve", "--phase", "train", "--json", "-q", "--set", f"solver.backend={backend}"]) == 0
    out, err = capfd.readouterr()
    doc = _strict(out)
    assert isinstance(doc, dict) and str(doc["backend"]).startswith(backend)
    for banner in ("Running HiGHS", "Copyright", "Welcome to the CBC", "Coin0"):
        assert banner not in out and banner not in err


def test_run_outputs_are_strict_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default run's rollout phase has NaN alpha/bound/gap: written as null."""
    out = tmp_path / "out"
    assert main(["run", "--out", str(out), "-q", "--no-figure", "--set", "fabrics=[fat_tree, rfabric]"]) == 0
    for p in out.glob("*.json"):
        _strict(p.read_text())
    doc = _strict((out / "result.json").read_text())
    assert isinstance(doc, dict) and doc["fabrics"]


def test_dumps_json_turns_non_finite_into_null() -> None:
    import numpy as np

    from rfabric.config import dumps_json

    text = dumps_json({"a": math.nan, "b": [math.inf, np.float64("nan"), np.arange(2)], "c": np.int64(3)})
    assert _strict(text) == {"a": None, "b": [None, None, [0, 1]], "c": 3}


# ------------------------------------------------------------------------------------------------
# Random documents: the loader answers ConfigError or a config, never another exception

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=True),
                     st.text(max_size=12), st.sampled_from(["fat_tree", "rfabric", "qwen2.5-14b", "rl_step", "hash"]))
_keys = st.one_of(st.sampled_from(["seed", "cluster", "workload", "topology", "fabrics", "reference", "solver", "sim",
                                   "cost", "name", "trainer_gpus", "rollout_gpus", "nic_gbps", "kind", "model",
                                   "switch_radix", "prices", "catalogue", "steps", "ocs_port_usd", "backend"]),
                  st.text(max_size=8))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(_keys, inner, max_size=4)), max_leaves=12)
_LEAVES = [("cluster", "trainer_gpus"), ("cluster", "nic_gbps"), ("topology", "switch_radix"), ("workload", "model"),
           ("workload", "kind"), ("sim", "steps"), ("cost", "prices"), ("cost", "catalogue"), ("solver", "backend")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.one_of(_values, st.dictionaries(_keys, _values, max_size=5)),
       edits=st.lists(st.tuples(st.sampled_from(_LEAVES), _values), max_size=3))
def test_random_documents_raise_config_error_or_load(tmp_path_factory: pytest.TempPathFactory, doc: object,
                                                     edits: list[tuple[tuple[str, str], object]]) -> None:
    base = yaml.safe_load(DEFAULT)
    for (section, key), v in edits:
        base.setdefault(section, {})[key] = v
    for data in (doc, base):
        text = yaml.safe_dump(data, allow_unicode=True)
        f = tmp_path_factory.mktemp("doc") / "c.yaml"
        f.write_text(text)
        try:
            api.load_config(f)
        except ConfigError as e:
            assert e.key or e.message
        assert read_yaml(f) == load_yaml_text(text)


# ------------------------------------------------------------------------------------------------
# Library API: human-unit overrides of a loaded config, and misuse answered with the project's errors


@pytest.mark.parametrize(("key", "field", "si"), [("cluster.nic_gbps", "nic_bps", 200e9),
                                                   ("cluster.nvlink_gbps", "nvlink_bps", 200e9),
                                                   ("cluster.nic_latency_us", "nic_latency_s", 200e-6)])
def test_human_unit_override_replaces_the_si_value(key: str, field: str, si: float) -> None:
    cfg = api.load_config()
    changed = api.load_config(cfg, {key: 200})  # the path what_if and run(cfg, overrides=...) take
    assert getattr(changed.cluster, field) == pytest.approx(si)
    assert api.load_config(api.config_data(cfg), [f"{key}=200"]).cluster == changed.cluster


def _misuse_cases() -> list[tuple[str, object]]:
    from rfabric.circuits import Circuit, CircuitAssignment, CircuitSchedule
    from rfabric.config import ClusterConfig, SimConfig

    cfg = api.load_config(overrides={"cluster.trainer_gpus": 8, "cluster.rollout_gpus": 8})
    big = api.load_config()
    ft = api.build_topology(cfg, "fat_tree")
    rf = api.build_topology(cfg, "rfabric")
    wl = api.build_workload(cfg)
    bogus = CircuitSchedule(assignments=tuple(CircuitAssignment.of([Circuit("no-such-ocs", 0, 1)]) for _ in wl.phases))
    short = CircuitSchedule(assignments=(CircuitAssignment(),))
    return [
        ("sim-steps-0", lambda: SimConfig(steps=0)),
        ("sim-steps-str", lambda: SimConfig(steps="3")),  # type: ignore[arg-type]
        ("cluster-inf", lambda: ClusterConfig(nic_bps=math.inf)),
        ("build-topology-not-config", lambda: api.build_topology({"cluster": {}})),  # type: ignore[arg-type]
        ("build-topology-bad-name", lambda: api.build_topology(cfg, "nope")),
        ("build-workload-none", lambda: api.build_workload(None)),  # type: ignore[arg-type]
        ("simulate-wrong-types", lambda: api.simulate(cfg, wl, ft, None)),  # type: ignore[arg-type]
        ("simulate-schedule-other-fabric", lambda: api.simulate(cfg, rf, wl, bogus)),
        ("simulate-schedule-too-short", lambda: api.simulate(cfg, rf, wl, short)),
        ("simulate-workload-too-big", lambda: api.simulate(cfg, ft, api.build_workload(big), None)),
        ("cost-not-topology", lambda: api.cost(cfg, "fat_tree")),  # type: ignore[arg-type]
        ("load-config-int", lambda: api.load_config(5)),  # type: ignore[arg-type]
        ("load-config-str-overrides", lambda: api.load_config(None, "cluster.nic_gbps=1")),
        ("what-if-list", lambda: api.what_if(cfg, ["cluster.nic_gbps=1"])),  # type: ignore[arg-type]
    ]


def test_library_misuse_raises_config_errors() -> None:
    for name, call in _misuse_cases():
        try:
            call()  # type: ignore[operator]
        except ConfigError:
            continue
        pytest.fail(f"{name}: accepted without a ConfigError")


# ------------------------------------------------------------------------------------------------
# Sweep files and records


@pytest.mark.parametrize(("spec", "key"), [
    ({"sweep": {"cluster.nic_gbps": [400, 400]}}, "sweep.cluster.nic_gbps[1]"),
    ({"seeds": [0, 1, 0]}, "seeds[2]"),
    ({"name": [1]}, "name"),
    ({"sweep": {"seed": list(range(101)), "cluster.nic_gbps": list(range(1, 101))}}, "sweep.seed"),
])
def test_bad_sweep_specs(spec: dict[str, object], key: str) -> None:
    from rfabric.sweep import load_sweep

    with pytest.raises(ConfigError) as e:
        load_sweep({"base": {}, **spec})
    assert e.value.key == key


@pytest.mark.parametrize(("text", "key"), [
    ("sweep:\n  cluster.nic_gbps: [400, 200, 400]\n", "sweep.cluster.nic_gbps[2]"),
    ("sweep:\n  'cluster.trainer_gpus,cluster.rollout_gpus': [[8, 8], [8, 8]]\n",
     "sweep.cluster.trainer_gpus,cluster.rollout_gpus[1]"),
    ("seeds: [0, 1, 0]\n", "seeds[2]"),
    ("name: [1]\n", "name"),
    ("sweep:\n  cluster.nic_gbps: []\n", "sweep.cluster.nic_gbps"),
])
def test_bad_sweep_files_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                         key: str) -> None:
    sweep = tmp_path / "s.yaml"
    sweep.write_text("base: {cluster: {trainer_gpus: 8, rollout_gpus: 8}}\n" + text)
    out = tmp_path / "o"
    code, err = _run(tmp_path, capsys, ["sweep", str(sweep), "--out", str(out), "-q", "-j", "1"])
    _assert_refused(code, err, key, out)


def test_damaged_records_are_run_again(tmp_path: Path) -> None:
    from rfabric.sweep import expand, finished, load_sweep, run_points

    points = expand(load_sweep({"base": {"cluster": {"trainer_gpus": 8}}, "seeds": [0, 1, 2, 3]}))
    runs = tmp_path / "runs"
    runs.mkdir()
    for p, text in zip(points, ["{}", "[]", '{"run_id": "other", "status": "ok"}', '{"status": "ok", "rows": 3}'],
                       strict=True):
        (runs / f"{p.run_id}.json").write_text(text)
    assert finished(tmp_path) == {}
    stats = run_points(points, _seed_and_pid, tmp_path, workers=200)  # -j 200 for 4 points: at most 4 workers
    assert stats["ok"] == 4
    docs = finished(tmp_path)
    assert sorted(d["rows"][0]["seed"] for d in docs.values()) == [0, 1, 2, 3]
    assert len({d["rows"][0]["pid"] for d in docs.values()}) <= 4


def _seed_and_pid(config: dict[str, object]) -> dict[str, object]:
    import os

    return {"rows": [{"seed": config["seed"], "pid": os.getpid()}]}


def test_run_id_hashes_the_files_a_config_names(tmp_path: Path) -> None:
    from rfabric.sweep import expand, load_sweep

    model = tmp_path / "m.yaml"
    model.write_text(MODEL)
    spec = {"base": {"workload": {"kind": "rl_step", "model": str(model)}}}
    before = expand(load_sweep(spec), fingerprint=api.input_fingerprint)[0].run_id
    model.write_text(MODEL.replace("layers: 48", "layers: 96"))
    after = expand(load_sweep(spec), fingerprint=api.input_fingerprint)[0].run_id
    assert "layers: 48" in MODEL and before != after


def test_help_says_config_replaces_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "REPLACES the built-in" in " ".join(capsys.readouterr().out.split())
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "**replaces** the built-in demo config wholesale" in readme
