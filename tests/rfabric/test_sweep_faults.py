"""Sweeps under faults, with real signals (issue 16): Ctrl-C / SIGTERM exit 130 without orphans, a killed
main process leaves no worker behind, a killed worker's runs are lost (resumable), not failed, a second sweep
into the same directory is refused, and every resumed sweep.csv equals an uninterrupted one.

Each case starts real processes (~5 s idle, 8-15 s on the shared 2-core machine); the SIGINT case runs by
default, the others with ``-m slow``, which ``.ci/run`` always runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rfabric.sweep import expand, load_sweep, run_points

DRIVER = Path(__file__).with_name("_sweep_driver.py")
BASE = ("base:\n  cluster: {trainer_gpus: 8, rollout_gpus: 8}\n  workload: {kind: collective, size_mb: 10}\n"
        "  topology: {switch_radix: 16}\n  fabrics: [fat_tree]\n")
SWEEP = BASE + "sweep:\n  cluster.trainer_gpus: [8, 16]\nseeds: [0, 1, 2]\n"  # 6 points

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals and /proc as on Linux")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited (nobody may reap it in a container)


def _wait(cond, timeout_s: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def _start(tmp_path: Path, out: Path, sleep_s: float, workers: int = 2, name: str = "s",
           executor: str = "local") -> subprocess.Popen[str]:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(SWEEP)
    env = {**os.environ, "RFABRIC_TEST_PIDS": str(tmp_path / f"pids-{name}"), "RFABRIC_TEST_SLEEP_S": str(sleep_s),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(DRIVER), str(spec), str(out), str(workers), executor], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _workers(tmp_path: Path, name: str = "s") -> list[int]:
    d = tmp_path / f"pids-{name}"
    return sorted(int(p.name) for p in d.iterdir()) if d.is_dir() else []


def _reference(tmp_path: Path) -> str:
    """The same sweep uninterrupted (in process, no sleep)."""
    from tests.rfabric._sweep_driver import slow_point  # noqa: PLC0415

    os.environ.setdefault("RFABRIC_TEST_PIDS", str(tmp_path / "pids-ref"))
    spec = tmp_path / "ref.yaml"
    spec.write_text(SWEEP)
    from rfabric import api

    points = expand(load_sweep(spec), fingerprint=api.input_fingerprint)
    run_points(points, slow_point, tmp_path / "ref")
    return (tmp_path / "ref" / "sweep.csv").read_text()


def _resume(tmp_path: Path, out: Path) -> str:
    p = _start(tmp_path, out, 0.0, name="resume")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    return (out / "sweep.csv").read_text()


@pytest.mark.parametrize("sig", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_interrupt_exits_130_without_orphans_and_resumes(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "out"
    p = _start(tmp_path, out, 30.0)
    assert _wait(lambda: len(_workers(tmp_path)) == 2), p.stderr.read() if p.poll() is not None else "no workers"
    workers = _workers(tmp_path)
    t0 = time.monotonic()
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert time.monotonic() - t0 < 10  # did not wait for the 30 s runs in flight
    assert "interrupted" in err and "Traceback" not in err and "Error" not in err, err
    assert _wait(lambda: not any(_alive(w) for w in workers), 10), "orphaned pool workers"
    assert not list((out / "runs").glob("*.json"))  # nothing finished, nothing recorded
    assert _resume(tmp_path, out) == _reference(tmp_path)


@pytest.mark.slow  # ~5 s each on a shared machine: opt in with -m slow (the SIGINT case runs by default)
def test_sigkill_of_the_main_process_leaves_no_worker(tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = _start(tmp_path, out, 30.0)
    assert _wait(lambda: len(_workers(tmp_path)) == 2)
    workers = _workers(tmp_path)
    p.kill()
    p.communicate(timeout=120)
    assert _wait(lambda: not any(_alive(w) for w in workers), 10), "pool workers outlived a SIGKILLed sweep"
    assert _resume(tmp_path, out) == _reference(tmp_path)  # and its lock died with it


@pytest.mark.slow
def test_killed_worker_loses_its_runs_resumably(tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = _start(tmp_path, out, 2.0)
    assert _wait(lambda: len(_workers(tmp_path)) == 2)
    os.kill(_workers(tmp_path)[0], signal.SIGKILL)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1, err
    assert "lost with a worker process" in err and " 0 failed" in err and "Traceback" not in err, err
    records = list((out / "runs").glob("*.json"))
    assert all('"status": "ok"' in r.read_text() for r in records)  # lost runs are not recorded as failures
    assert _resume(tmp_path, out) == _reference(tmp_path)


@pytest.mark.slow
def test_second_sweep_into_the_same_directory_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _start(tmp_path, out, 30.0)
    assert _wait(lambda: len(_workers(tmp_path)) == 2)
    second = _start(tmp_path, out, 0.0, name="second")
    _, err = second.communicate(timeout=60)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)
    assert second.returncode == 2, err
    assert "--out" in err and "another sweep" in err and str(first.pid) in err and "Traceback" not in err


def _session(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                rest = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(rest[3]) == sid and rest[0] not in ("Z", "X"):
                out.append(int(d.name))
    return out


@pytest.mark.slow  # starts a local Ray cluster (~15-30 s on the shared machine); .ci/run runs it
def test_sigkill_of_a_ray_driver_leaves_no_ray_process(tmp_path: Path) -> None:
    """A sweep that started its own local Ray: after SIGKILL of the driver, no process of its session (Ray's
    GCS, raylet, dashboard and runtime-env agents, workers) outlives it -- the agents did before the reaper."""
    pytest.importorskip("ray")
    out = tmp_path / "out"
    p = _start(tmp_path, out, 60.0, executor="ray")
    assert _wait(lambda: len(_workers(tmp_path)) >= 1, 120), p.stderr.read() if p.poll() is not None else "no task ran"
    ray_procs = [q for q in _session(p.pid) if q != p.pid]
    assert len(ray_procs) >= 4, ray_procs  # gcs, raylet, agents, workers: the cluster the sweep started
    p.kill()
    p.communicate(timeout=120)
    assert _wait(lambda: not _session(p.pid), 30), [Path(f"/proc/{q}/cmdline").read_text() for q in _session(p.pid)]
    assert _resume(tmp_path, out) == _reference(tmp_path)
