"""Sweeps: a grid of runs, each written atomically the moment it finishes, resumable after a kill.

A sweep file::

    base: configs/base.yaml          # a path (relative to the sweep file) or an inline run config
    sweep:                           # dotted key -> list of values; the cartesian product is taken
      cluster.nic_gbps: [200, 400]
      "cluster.trainer_gpus,cluster.rollout_gpus": [[128, 128], [512, 512]]   # comma: zipped keys
    seeds: [0, 1]                    # optional; default [base seed]

Each point's ``run_id`` is a short hash of its resolved config (base + point + seed), so re-running the
same command finds the finished runs under ``DIR/runs/<run_id>.json`` and skips them. A failed point is
recorded with its error and does not stop the sweep. ``DIR/sweep.csv`` collects every finished run
(one row per run and fabric).

This module is generic: it runs any picklable ``fn(point_config_data) -> dict``; ``rfabric.api.run_sweep``
passes the function that runs one RFabric comparison.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rfabric.config import config_hash, merge_overrides, parse_seed, set_dotted
from rfabric.errors import ConfigError, InvalidArgumentError
from rfabric.parsing import dumps_json, read_yaml, suggest

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")


@dataclass(frozen=True, slots=True)
class SweepPoint:
    run_id: str
    point: Mapping[str, Any]  # dotted key -> value (zipped keys split)
    seed: int
    config: Mapping[str, Any]  # full run config data


@dataclass(frozen=True, slots=True)
class SweepSpec:
    base: Mapping[str, Any]
    axes: tuple[tuple[tuple[str, ...], tuple[Any, ...]], ...]  # (keys, values)
    seeds: tuple[int, ...]
    name: str = "sweep"
    meta: Mapping[str, Any] = field(default_factory=dict)


def load_sweep(source: str | os.PathLike[str] | Mapping[str, Any], overrides: Sequence[str] | Mapping[str, Any] | None = None,
               *, base_loader: Callable[[Any], Mapping[str, Any]] | None = None) -> SweepSpec:
    """Parse a sweep file (or mapping); ``overrides`` apply to the base config."""
    where = None if isinstance(source, Mapping) else Path(source)
    data: Any = dict(source) if isinstance(source, Mapping) else read_yaml(Path(source))
    if not isinstance(data, Mapping):
        raise ConfigError("sweep", "a sweep file must be a mapping with base/sweep/seeds", type(data).__name__)
    known = ["base", "sweep", "seeds", "name"]
    for k in data:
        if k not in known:
            raise ConfigError(str(k), f"unknown sweep key; {suggest(str(k), known)}", has_value=False)
    base = data.get("base", {})
    if isinstance(base, str):
        p = Path(base)
        if not p.is_absolute() and where is not None:
            p = where.parent / p
        base = read_yaml(p)
    elif base_loader is not None and base is None:
        base = base_loader(None)
    if not isinstance(base, Mapping):
        raise ConfigError("base", "must be a run config mapping or a path to one", base)
    base = merge_overrides(base, overrides)
    grid = data.get("sweep") or {}
    if not isinstance(grid, Mapping):
        raise ConfigError("sweep", "must map dotted keys to lists of values", grid)
    axes = []
    for key, values in grid.items():
        keys = tuple(k.strip() for k in str(key).split(","))
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep.{key}", "must be a non-empty list of values", values)
        if len(keys) > 1:
            for i, v in enumerate(values):
                if not isinstance(v, list) or len(v) != len(keys):
                    raise ConfigError(f"sweep.{key}[{i}]", f"zipped keys need a list of {len(keys)} values", v)
        _no_repeats(f"sweep.{key}", values)
        axes.append((keys, tuple(values)))
    seeds = data.get("seeds", [base.get("seed", 0)])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError("seeds", "must be a non-empty list of integers", seeds)
    seeds = [parse_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds)]  # the run config's seed rule
    _no_repeats("seeds", seeds)
    name = data.get("name", "sweep")
    if not isinstance(name, str) or not name:
        raise ConfigError("name", "must be a non-empty string", name)
    size = len(seeds)
    for _keys, values in axes:
        size *= len(values)
    if size > MAX_POINTS:
        widest = max(axes, key=lambda a: len(a[1]))
        raise ConfigError("sweep." + ",".join(widest[0]), f"the sweep has {size:,} points (at most {MAX_POINTS:,}); "
                          f"this axis has {len(widest[1]):,} values", has_value=False)
    return SweepSpec(base=base, axes=tuple(axes), seeds=tuple(seeds), name=name)


#: Most points one sweep may have: each is a full run, and all are checked before the first starts.
MAX_POINTS = 10_000


def _no_repeats(key: str, values: Sequence[Any]) -> None:
    seen: dict[str, int] = {}
    for i, v in enumerate(values):
        ident = json.dumps(v, sort_keys=True, default=str)
        if ident in seen:
            raise ConfigError(f"{key}[{i}]", f"repeats item {seen[ident]}: each value is run once", v)
        seen[ident] = i


def expand(spec: SweepSpec, fingerprint: Callable[[Mapping[str, Any]], Any] | None = None) -> list[SweepPoint]:
    """All points of the grid (cartesian product over axes, then seeds), in a stable order.

    A point's ``run_id`` hashes its config and ``fingerprint(config)``: whatever else decides its result
    (the contents of files it names, the package version), so a changed input is a new run.
    """
    points = []
    value_lists = [values for _, values in spec.axes]
    for combo in itertools.product(*value_lists) if value_lists else [()]:
        point: dict[str, Any] = {}
        data: dict[str, Any] = dict(spec.base)
        for (keys, _), value in zip(spec.axes, combo, strict=True):
            vals = value if len(keys) > 1 else [value]
            for k, v in zip(keys, vals, strict=True):
                point[k] = v
                data = set_dotted(data, k, v)
        for seed in spec.seeds:
            d = dict(data)
            d["seed"] = seed
            ident: Any = d if fingerprint is None else {"config": d, "inputs": fingerprint(d)}
            points.append(SweepPoint(run_id=config_hash(ident), point=dict(point), seed=seed, config=d))
    return points


# ------------------------------------------------------------------------------------------------
# The result store


def write_json_atomic(path: Path, doc: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(dumps_json(doc, indent=1, sort_keys=True))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def finished(out: Path, *, retry_failed: bool = False) -> dict[str, dict[str, Any]]:
    """Run records already on disk (unreadable files are ignored and will be re-run)."""
    done = {}
    for p in sorted((out / "runs").glob("*.json")):
        try:
            doc = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not valid_record(doc, p.stem):
            log.warning("record %s is damaged; it will be run again", p.name)
            continue
        if retry_failed and doc.get("status") != "ok":
            continue
        done[p.stem] = doc
    return done


def valid_record(doc: Any, run_id: str) -> bool:
    """A record written by :func:`run_points`: its run id, a status, and rows (a list of mappings, if any)
    when ok or an error text when not. ``{}``, ``[]`` or a record of another run are damaged."""
    if not isinstance(doc, dict) or doc.get("run_id") != run_id or not isinstance(doc.get("point", {}), dict):
        return False
    if doc.get("status") == "ok":
        rows = doc.get("rows", [])
        return isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
    return doc.get("status") == "error" and isinstance(doc.get("error"), str)


def collect(out: Path, points: Iterable[SweepPoint] | None = None) -> Path:
    """Write ``sweep.csv``: one row per finished run and fabric (point columns first)."""
    records = finished(out)
    order = [p.run_id for p in points] if points is not None else sorted(records)
    rows: list[dict[str, Any]] = []
    for rid in order:
        doc = records.get(rid)
        if doc is None:
            continue
        head = {"run_id": rid, "seed": doc.get("seed"), "status": doc.get("status"), **{k: _cell(v) for k, v in doc.get("point", {}).items()}}
        if doc.get("status") != "ok":
            rows.append({**head, "error": doc.get("error", "")})
            continue
        for r in doc.get("rows", []):
            rows.append({**head, **r})
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    fd, tmp = tempfile.mkstemp(prefix=".sweep.csv.", dir=out)
    with os.fdopen(fd, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in r.items()})
    os.chmod(tmp, 0o644)
    os.replace(tmp, out / "sweep.csv")
    return out / "sweep.csv"


def _cell(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v


# ------------------------------------------------------------------------------------------------
# Execution


@dataclass(frozen=True, slots=True)
class RunFailure:
    """A run that raised: its error as text (always picklable, whatever the exception was)."""

    error: str

    @staticmethod
    def of(e: BaseException) -> RunFailure:
        return RunFailure(f"{type(e).__name__}: {e}")


def _record(point: SweepPoint, outcome: Mapping[str, Any] | RunFailure, wall_s: float) -> dict[str, Any]:
    doc: dict[str, Any] = {"run_id": point.run_id, "point": dict(point.point), "seed": point.seed, "wall_time_s": wall_s}
    if isinstance(outcome, RunFailure):
        doc.update(status="error", error=outcome.error)
    elif not isinstance(outcome, Mapping):
        doc.update(status="error", error=f"run returned {type(outcome).__name__}, not a mapping")
    else:
        doc.update(status="ok", **outcome)
    return doc


def _timed(fn: Callable[..., Mapping[str, Any]], *args: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    try:
        return fn(*args), time.perf_counter() - t
    except Exception as e:  # recorded, never fatal for the sweep
        return RunFailure.of(e), time.perf_counter() - t


@dataclass(frozen=True, slots=True)
class _Job:
    """One unit of parallel work: a whole point (``part`` None) or one part of a point."""

    point: SweepPoint
    index: int = 0
    part: Any = None

    def args(self) -> tuple[Any, ...]:
        return (self.point.config,) if self.part is None else (self.point.config, self.part)

    @property
    def run_id(self) -> str:
        return self.point.run_id


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` for the sweep; a second sweep into the same directory is refused (``--out``).

    A POSIX record lock (``lockf``): released by the kernel when the process dies, even by SIGKILL, and
    not inherited by the pool's forked workers."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise ConfigError("--out", f"another sweep (pid {holder}) is running in this directory; wait for it "
                              "or use another --out", str(out)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


Parts = Callable[[Mapping[str, Any]], Sequence[Any]]
Combine = Callable[[Mapping[str, Any], list[Any]], Mapping[str, Any]]
Work = Callable[[Mapping[str, Any], Any], float]


def run_points(points: Sequence[SweepPoint], fn: Callable[..., Mapping[str, Any]], out: Path, *,
               workers: int = 1, executor: str = "local", ray_address: str | None = None, progress: bool = False,
               retry_failed: bool = False, parts: Parts | None = None, combine: Combine | None = None,
               work: Work | None = None) -> dict[str, int]:
    """Run the points not yet on disk; each record is written atomically as soon as it finishes.

    Without ``parts`` the unit of work is a point: ``fn(config)``. With ``parts`` (and ``combine``) it is a
    (point, part) pair: ``fn(config, part)`` for every ``part`` of ``parts(config)``, all pairs of all points
    in one queue, so one heavy point no longer serialises the sweep; when the last part of a point finishes,
    ``combine(config, outcomes in part order)`` (run in this process) gives its record. A part that raises
    fails its point (the first error is recorded); the point's ``wall_time_s`` is the sum over its parts; a
    point with a part lost with its worker is ``lost`` (run again next time).

    ``work(config, part)`` (``part`` None without ``parts``) estimates a unit's relative work; units are then
    handed out largest first (longest-processing-time-first list scheduling, whose makespan is at most
    4/3 - 1/(3 m) of the optimum on ``m`` identical workers: Graham, "Bounds on multiprocessing timing
    anomalies", SIAM J. Appl. Math. 17(2), 1969), so a sweep's heaviest points do not start last and leave
    one worker busy while the others idle. Ties keep the sweep order; a ``work`` that raises counts as 0.
    Results are the same in any order (each unit is independent and seeded).

    Returns counts: ``total``, ``skipped`` (already done), ``ok``, ``error`` (the run raised; recorded) and
    ``lost`` (its worker process died: nothing recorded, the next invocation runs it). Raises
    ``ConfigError`` on ``--out`` when another sweep holds the directory.
    """
    if executor not in EXECUTORS:
        raise ConfigError("--executor", f"unknown executor; {suggest(executor, EXECUTORS)}", executor)
    if (parts is None) != (combine is None):
        raise InvalidArgumentError("parts and combine go together")
    with _locked(out):
        return _run_locked(points, fn, out, workers=workers, executor=executor, ray_address=ray_address,
                           progress=progress, retry_failed=retry_failed, parts=parts, combine=combine, work=work)


def _run_locked(points: Sequence[SweepPoint], fn: Callable[..., Mapping[str, Any]], out: Path, *,
                workers: int, executor: str, ray_address: str | None, progress: bool,
                retry_failed: bool, parts: Parts | None, combine: Combine | None, work: Work | None) -> dict[str, int]:
    done = finished(out, retry_failed=retry_failed)
    todo = [p for p in points if p.run_id not in done]
    stats = {"total": len(points), "skipped": len(points) - len(todo), "ok": 0, "error": 0, "lost": 0}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(points), initial=stats["skipped"], desc="runs", unit="run")

    def store(point: SweepPoint, outcome: Any, wall: float) -> None:
        doc = _record(point, outcome, wall)
        write_json_atomic(out / "runs" / f"{point.run_id}.json", doc)
        stats[doc["status"]] += 1
        if doc["status"] != "ok":
            log.warning("run %s failed: %s", point.run_id, doc["error"])
        if bar is not None:
            bar.update(1)

    jobs: list[_Job] = []
    got: dict[str, dict[int, tuple[Any, float]]] = {}
    expected: dict[str, int] = {}
    try:
        for p in todo:
            if parts is None:
                jobs.append(_Job(p))
                continue
            try:
                ps = list(parts(p.config))
            except Exception as e:  # a point whose parts cannot be listed fails alone
                store(p, RunFailure.of(e), 0.0)
                continue
            if not ps:
                store(p, RunFailure("ValueError: the point has no parts"), 0.0)
                continue
            expected[p.run_id] = len(ps)
            got[p.run_id] = {}
            jobs.extend(_Job(p, i, part) for i, part in enumerate(ps))

        def deliver(job: _Job, outcome: Any, wall: float) -> None:
            if combine is None:
                store(job.point, outcome, wall)
                return
            mine = got[job.run_id]
            mine[job.index] = (outcome, wall)
            if len(mine) < expected[job.run_id]:
                return
            outs = [mine[i][0] for i in range(len(mine))]
            total = sum(w for _, w in mine.values())
            doc: Any = next((o for o in outs if isinstance(o, RunFailure)), None)
            if doc is None:
                try:
                    doc = combine(job.point.config, outs)
                except Exception as e:
                    doc = RunFailure.of(e)
            store(job.point, doc, total)

        if work is not None:
            jobs = _largest_first(jobs, work)
        workers = max(1, min(workers, len(jobs)))
        if executor == "ray":
            _run_ray(jobs, fn, deliver, workers, ray_address)
        elif workers <= 1:
            for j in jobs:
                outcome, wall = _timed(fn, *j.args())
                deliver(j, outcome, wall)
        else:
            _run_pool(jobs, fn, deliver, workers, stats)
    finally:
        if bar is not None:
            bar.close()
        collect(out, points)
    return stats


def _largest_first(jobs: list[_Job], work: Work) -> list[_Job]:
    """``jobs`` by decreasing estimated work (stable: ties keep the sweep order)."""
    def size(j: _Job) -> float:
        try:
            return float(work(j.point.config, j.part))
        except Exception:  # an estimate never fails a sweep; the run itself reports a bad point
            return 0.0

    sizes = [size(j) for j in jobs]
    return [jobs[i] for i in sorted(range(len(jobs)), key=lambda i: -sizes[i])]


def _worker_init(parent_pid: int) -> None:
    """In each pool worker: leave Ctrl-C to the parent (which stops the pool), and exit as soon as the
    parent is gone (killed with SIGKILL, it cannot stop us), so no worker outlives its sweep."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _set_parent_death_signal()

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="rfabric-parent-watch", daemon=True).start()


def _set_parent_death_signal() -> None:
    """Linux: ask the kernel for SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG); elsewhere the
    watcher thread alone does it."""
    if sys.platform != "linux":
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        pass


def _run_pool(todo: Sequence[_Job], fn: Callable[..., Any], store: Callable[..., None], workers: int,
              stats: dict[str, int]) -> None:
    """Local process pool. If a worker process dies (out of memory, killed), the runs that had not finished
    are counted as ``lost``, not recorded (a later invocation runs them); an interrupt stops the workers
    instead of waiting for the runs in flight or orphaning them."""
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, initargs=(os.getpid(),))
    pending: dict[Future[Any], _Job] = {pool.submit(_timed, fn, *j.args()): j for j in todo}
    lost: set[str] = set()
    clean = False
    try:
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(ready, key=lambda f: (pending[f].run_id, pending[f].index)):
                p = pending.pop(fut)
                if p.run_id in lost:  # another part of this point was lost already
                    continue
                try:
                    outcome, wall = fut.result()
                except BrokenProcessPool:
                    lost.add(p.run_id)
                    stats["lost"] += 1  # not recorded: it is run when the sweep is run again
                    log.warning("run %s lost with its worker process; run the sweep again to resume it", p.run_id)
                    continue
                store(p, outcome, wall)
        clean = True
    finally:
        if clean:
            pool.shutdown(wait=True)
        else:  # interrupted: do not wait for runs in flight, stop the worker processes
            procs = list((getattr(pool, "_processes", None) or {}).values())  # no public API to stop a worker
            for proc in procs:
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.join(timeout=5)


def _run_ray(todo: Sequence[_Job], fn: Callable[..., Any], store: Callable[..., None], workers: int,
             address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor", "Ray is not installed: pip install -e '.[ray]'", "ray") from None
    started = False
    reaper = None
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
            reaper = _start_reaper()
        started = True
    try:
        remote = ray.remote(_timed)
        pending = {remote.remote(fn, *j.args()): j for j in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                p = pending.pop(ref)
                try:
                    outcome, wall = ray.get(ref)
                except Exception as e:  # the task itself failed (worker lost): recorded as an error
                    outcome, wall = RunFailure.of(e), 0.0
                store(p, outcome, wall)
    finally:
        if started:
            ray.shutdown()
        if reaper is not None:  # the cluster is down: nothing left to reap
            reaper.kill()
            reaper.wait()


def _start_reaper() -> subprocess.Popen[bytes] | None:
    """Linux: a watchdog process (:mod:`rfabric._ray_reaper`) that stops the local Ray cluster this process
    started if this process dies without stopping it (SIGKILL): Ray's dashboard and runtime-env agents
    otherwise outlive a killed driver. It runs in its own session, so a signal to the driver's process
    group spares it. Elsewhere (no /proc): None, and a killed driver may leave Ray processes behind."""
    if sys.platform != "linux":
        return None
    script = Path(__file__).with_name("_ray_reaper.py")
    return subprocess.Popen([sys.executable, "-I", str(script), str(os.getpid())], start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
