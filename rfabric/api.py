"""The library API: one run (workload -> fabrics -> circuits -> simulation -> cost -> comparison) in a call.

This module and :mod:`rfabric.cli` are the only places that compose the four packages.

>>> from rfabric import api
>>> cfg = api.load_config(overrides={"fabrics": ["fat_tree"]})
>>> cfg.cluster.gpus
128
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import rfabric as rfabric_pkg
import solver as solver_pkg
import topologies
import traffic
from rfabric import __version__
from rfabric.bom import bill_of_materials
from rfabric.circuits import AssignmentError, CircuitAssignment, CircuitSchedule, check_assignment
from rfabric.config import RunConfig, config_hash, merge_overrides, parse_run_config
from rfabric.cost import PriceCatalogue, evaluate, load_catalogue
from rfabric.errors import ConfigError
from rfabric.outputs import (  # noqa: F401 -- the output files, re-exported: api.write_run(...)
    SUMMARY_COLUMNS,
    FabricRun,
    RunResult,
    phases_csv,
    result_json,
    summary_csv,
    write_run,
    write_simulation,
    write_trace,
)
from rfabric.parsing import ErrorList, load_yaml_text, read_yaml, suggest, to_plain
from rfabric.results import BillOfMaterials, CostBreakdown, Provenance, SimulationResult, compare
from rfabric.sim import simulate as sim_simulate
from rfabric.topology import Topology
from rfabric.workload import FlowSet, PhaseStep, Workload

log = logging.getLogger(__name__)

ConfigSource = RunConfig | Mapping[str, Any] | str | os.PathLike[str] | None
Overrides = Mapping[str, Any] | Sequence[str] | None


# ------------------------------------------------------------------------------------------------
# Configuration


def default_config_data() -> dict[str, Any]:
    """The built-in default run as plain data (a copy: change it freely).

    Returns
    -------
    dict
        The sections of ``rfabric/data/default.yaml`` (human units as written there), ready for
        :func:`load_config`.
    """
    return dict(load_yaml_text((resources.files("rfabric") / "data" / "default.yaml").read_text()))


def config_data(config: RunConfig) -> dict[str, Any]:
    """A RunConfig back to plain data that :func:`load_config` accepts (SI keys).

    Parameters
    ----------
    config : RunConfig
        A loaded config.

    Returns
    -------
    dict
        Its sections as plain data; each fabric is one mapping ``{name, kind, <its own parameters>}`` (the
        shared ``topology`` section stays separate). ``load_config(config_data(c))`` equals ``c``.
    """
    d = to_plain(config)
    d["fabrics"] = [{"name": f.name, "kind": f.kind, **to_plain(f.params)} for f in config.fabrics]
    return d


def _source_data(source: ConfigSource) -> dict[str, Any]:
    if source is None:
        return default_config_data()
    if isinstance(source, RunConfig):
        return config_data(source)
    if isinstance(source, Mapping):
        return dict(source)
    _expect(source, (str, os.PathLike), "config", "a path, a mapping, a RunConfig or None")
    data = read_yaml(source)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError("--config", "must hold a mapping of sections (cluster, workload, fabrics, ...)", str(source))
    return dict(data)


def load_config(source: ConfigSource = None, overrides: Overrides = None, *, seed: int | None = None) -> RunConfig:
    """Load and fully validate a run config (file path, mapping, RunConfig, or None for the default).

    Every kind-specific section (each fabric, the workload, the solver, the prices) is checked here, so a
    mistake surfaces before any work is done; the parsed sections are kept on the config (:func:`resolved`).

    Parameters
    ----------
    source : str, os.PathLike, Mapping, RunConfig or None
        A YAML file, plain data (human or SI units), a RunConfig, or None for the built-in default
        (:func:`default_config_data`).
    overrides : Mapping or Sequence of str, optional
        ``{"dotted.key": value}`` or ``["dotted.key=value", ...]`` applied on top of ``source``
        (:func:`rfabric.config.merge_overrides`; ``fabrics.<name>.<key>`` addresses a fabric by name).
    seed : int, optional
        Replaces the config's top-level ``seed`` (0 .. 2**32-1).

    Returns
    -------
    RunConfig
        With :attr:`RunConfig.resolved` attached.

    Raises
    ------
    ConfigError
        Naming every offending dotted key (unknown keys first, then bad values), e.g. a missing file
        (``--config``), no fabric (``fabrics``) or a bad override (``--set``).
    """
    return _load(source, overrides, seed)[0]


def _load(source: ConfigSource, overrides: Overrides, seed: int | None = None) -> tuple[RunConfig, Resolved]:
    if overrides is not None and (isinstance(overrides, str | bytes) or not isinstance(overrides, Mapping | Sequence)):
        raise ConfigError("overrides", "must be a mapping {dotted.key: value} or a list of 'dotted.key=value'",
                          overrides)
    data = merge_overrides(_source_data(source), overrides)
    if seed is not None:
        data["seed"] = seed
    cfg = parse_run_config(data)
    errs = ErrorList()
    if not cfg.fabrics:
        errs.items.append(ConfigError("fabrics", "name at least one fabric to simulate", has_value=False))
    with errs.capture():
        res = resolved(cfg)
    errs.raise_if_any()
    return cfg, res


@dataclass(frozen=True)
class Resolved:
    """A RunConfig with every kind-specific section parsed, once, into its package's type.

    The stages read these and never parse the raw sections again: :func:`build_topology` builds from
    ``fabric_params`` (which carry ``ocs_reconfig_s``, read downstream only as
    :attr:`Topology.ocs_reconfig_s <rfabric.topology.Topology.ocs_reconfig_s>`), :func:`plan_circuits`
    solves with ``solver_options`` (time limit; the solver mixes its seed into the run's with
    :meth:`solver.SolverOptions.mixed_seed`), :func:`cost` prices with ``catalogue``.

    Attributes
    ----------
    config : RunConfig
        The config these were parsed from.
    fabric_params : Mapping[str, Any]
        Fabric name -> the kind's parameter dataclass (shared ``topology`` section overlaid by the fabric's own).
    solver_options : solver.SolverOptions
        The ``solver`` section.
    catalogue : PriceCatalogue
        The ``cost`` section's catalogue with its price overrides applied.
    """

    config: RunConfig
    fabric_params: Mapping[str, Any]
    solver_options: Any
    catalogue: PriceCatalogue

    def plain(self) -> dict[str, Any]:
        d = config_data(self.config)
        d["fabrics"] = [{"name": f.name, "kind": f.kind, **to_plain(self.fabric_params[f.name])} for f in self.config.fabrics]
        d.pop("topology", None)  # folded into each fabric
        d["solver"] = to_plain(self.solver_options)
        return d


def fabric_params(config: RunConfig, fabric: str) -> Any:
    """The parsed parameters of one fabric: the shared ``topology`` section overlaid by the fabric's own.

    Parameters
    ----------
    config : RunConfig
    fabric : str
        A fabric name of ``config.fabrics``.

    Returns
    -------
    dataclass
        The kind's parameter dataclass (:mod:`topologies._params`; SI fields).

    Raises
    ------
    ConfigError
        ``--fabric`` for an unknown fabric name; ``fabrics[i].<key>`` for an unknown kind or a bad parameter.
    """
    entry = _fabric_entry(config, fabric)
    i = config.fabrics.index(entry)
    known = topologies.param_names(entry.kind) if entry.kind in topologies.REGISTRY else set()
    topologies.REGISTRY.get(entry.kind, f"fabrics[{i}].kind")
    shared = {k: v for k, v in config.topology.items() if k in known}
    return topologies.REGISTRY.parse(entry.kind, {**shared, **entry.params}, f"fabrics[{i}]", key=f"fabrics[{i}].kind")


def resolved(config: RunConfig) -> Resolved:
    """The typed sections of ``config``: :attr:`RunConfig.resolved`, parsed by :func:`resolve` on first use.

    Raises
    ------
    ConfigError
        A kind-specific section is invalid (every bad key named).
    """
    r = config.resolved
    if r is None or r.config is not config:
        r = resolve(config)
        object.__setattr__(config, "resolved", r)  # a memo on the frozen config: not data, not compared
    return r


def resolve(config: RunConfig) -> Resolved:
    """Parse every kind-specific section of ``config``, naming every bad key at once (unknown keys first).

    This is the one place the fabric parameters, the solver options and the price catalogue are parsed;
    use :func:`resolved` to get them for a config (parsed once, then kept on it).

    Parameters
    ----------
    config : RunConfig

    Returns
    -------
    Resolved
        Fabric parameters per fabric, :class:`solver.SolverOptions` and the price catalogue.

    Raises
    ------
    ConfigError
        Every bad key of ``fabrics``, ``topology`` (a key no selected fabric takes), ``workload``, ``solver``
        and ``cost`` (one :class:`~rfabric.errors.ConfigErrors` when several).
    """
    params = {}
    accepted: set[str] = set()
    errs = ErrorList()
    bad_kind = set()
    for i, f in enumerate(config.fabrics):
        try:
            topologies.REGISTRY.get(f.kind, f"fabrics[{i}].kind")
            accepted |= topologies.param_names(f.kind)
        except ConfigError as e:
            errs.items.append(e)
            bad_kind.add(f.name)
    kinds_ok = not bad_kind
    if kinds_ok and config.fabrics:
        for k in config.topology:
            if k not in accepted:
                errs.items.append(ConfigError(f"topology.{k}", "no selected fabric takes this parameter; "
                                              + suggest(k, sorted(accepted)), config.topology[k], structural=True))
    for f in config.fabrics:
        if f.name not in bad_kind:
            with errs.capture():
                params[f.name] = fabric_params(config, f.name)
    with errs.capture():
        traffic.parse_spec(config.workload, config.cluster, "workload")
    options = catalogue = None
    with errs.capture():
        options = solver_pkg.parse_options(config.solver, "solver")
    with errs.capture():
        catalogue = load_catalogue(config.cost.catalogue, config.cost.prices)
    errs.raise_if_any()
    return Resolved(config=config, fabric_params=params, solver_options=options, catalogue=catalogue)  # type: ignore[arg-type]


def _fabric_entry(config: RunConfig, fabric: str | None) -> Any:
    if fabric is None:
        return config.fabrics[0]
    for f in config.fabrics:
        if f.name == fabric:
            return f
    raise ConfigError("--fabric", f"no such fabric in the config; {suggest(fabric, [f.name for f in config.fabrics])}", fabric)


# ------------------------------------------------------------------------------------------------
# Stages


def _expect(value: Any, kind: type | tuple[type, ...], key: str, what: str) -> None:
    """Argument check of the public functions: a wrong type is a ``ConfigError`` naming the argument."""
    if not isinstance(value, kind):
        raise ConfigError(key, f"must be {what}, not {type(value).__name__}", has_value=False)


def _check_stage_args(config: Any, topology: Any = None, workload: Any = None, schedule: Any = None, *,
                      need: str = "c") -> None:
    _expect(config, RunConfig, "config", "a RunConfig (from api.load_config)")
    if "t" in need:
        _expect(topology, Topology, "topology", "a Topology (from api.build_topology)")
        if topology.num_gpus < 1:
            raise ConfigError("topology", "has no GPUs", topology.num_gpus)
    if "w" in need:
        _expect(workload, Workload, "workload", "a Workload (from api.build_workload)")
        if not workload.phases:
            raise ConfigError("workload", "has no phases", has_value=False)
    if "t" in need and "w" in need and workload.num_gpus > topology.num_gpus:
        raise ConfigError("workload", f"uses {workload.num_gpus} GPUs but the topology '{topology.name}' has "
                          f"{topology.num_gpus}", workload.num_gpus)
    if "s" in need and schedule is not None:
        _expect(schedule, CircuitSchedule, "schedule", "a CircuitSchedule (from api.plan_circuits) or None")
        epochs = schedule.meta.get("epochs") if isinstance(schedule.meta, Mapping) else None
        if epochs is not None:  # planned per epoch (plan_epochs): one assignment per epoch
            if len(epochs) != len(schedule):
                raise ConfigError("schedule", f"has {len(schedule)} assignments for {len(epochs)} epochs", len(schedule))
        elif len(schedule) and len(schedule) != len(workload.phases):
            raise ConfigError("schedule", f"has {len(schedule)} assignments for {len(workload.phases)} phase steps "
                              "(plan it for this workload)", len(schedule))
        for i, a in enumerate(schedule.assignments):
            try:
                check_assignment(topology, a)
            except AssignmentError as e:
                raise ConfigError(f"schedule.assignments[{i}]", f"does not fit the topology '{topology.name}' "
                                  f"(plan it for this fabric): {e}", has_value=False) from None


def build_topology(config: RunConfig, fabric: str | None = None) -> Topology:
    """Build one fabric of the config (the first if ``fabric`` is None) with :func:`topologies.build`.

    Parameters
    ----------
    config : RunConfig
    fabric : str, optional
        A fabric name of ``config.fabrics``.

    Returns
    -------
    Topology
        The physical fabric (SI units; ``ocs_reconfig_s`` from the fabric's ``ocs_reconfig_ms``).

    Raises
    ------
    ConfigError
        A wrong argument type or an unknown fabric name (``--fabric``).
    """
    _check_stage_args(config)
    if fabric is not None:
        _expect(fabric, str, "fabric", "a fabric name")
    entry = _fabric_entry(config, fabric)
    return topologies.build(entry.kind, resolved(config).fabric_params[entry.name], config.cluster, name=entry.name,
                            path=f"fabrics[{config.fabrics.index(entry)}]")


def build_workload(config: RunConfig) -> Workload:
    """The config's workload as phase steps of flows (:func:`traffic.build_workload` with the run's seed).

    Parameters
    ----------
    config : RunConfig

    Returns
    -------
    Workload
        Phase steps over ``config.cluster.gpus`` GPUs (flow sizes in bytes, compute times in seconds).

    Raises
    ------
    ConfigError
        A wrong argument type, or a workload the cluster cannot hold (named ``workload.<key>``).
    """
    _check_stage_args(config)
    return traffic.build_workload(config.workload, config.cluster, seed=config.seed, path="workload")


def choose_split(config: RunConfig) -> tuple[RunConfig, list[dict[str, Any]]]:
    """``config`` with the trainer/rollout split chosen for ``cluster.split: auto`` (else unchanged).

    Keeps the total GPUs (``trainer_gpus + rollout_gpus``) in whole servers and picks the split with the
    shortest estimated steady-state period per generated sequence (:func:`rfabric.sim.pipeline.estimate_period`
    over :func:`~rfabric.sim.pipeline.phase_estimate_s`: compute plus NIC-bound traffic, no contention,
    divided by the workload's ``meta['sequences_per_step']`` when the batch grows with the rollout pool;
    with a fixed global batch this is the period itself) -- the advice of verl's one-step-off recipe to give
    both pools comparable stage times. Candidates: 15 evenly spaced splits, then a local refinement around
    the best; splits whose parallelism cannot be resolved are skipped.

    Parameters
    ----------
    config : RunConfig

    Returns
    -------
    config : RunConfig
        With ``cluster.trainer_gpus`` / ``rollout_gpus`` chosen (``config`` itself for ``split: explicit``).
    tried : list of dict
        Every candidate tried, by trainer GPUs: ``trainer_gpus``, ``rollout_gpus`` and ``period_s``,
        ``sequences_per_step``, ``period_per_sequence_s`` (seconds), or ``error``; empty for ``explicit``.

    Raises
    ------
    ConfigError
        ``cluster.split`` when the cluster has fewer than two servers or no split resolves the workload.
    """
    cl = config.cluster
    if cl.split != "auto":
        return config, []
    from rfabric.sim.pipeline import estimate_period, phase_estimate_s

    gps = cl.gpus_per_server
    servers = cl.gpus // gps
    tried: dict[int, dict[str, Any]] = {}

    def period(t: int) -> float:
        if t not in tried:
            c = replace(cl, trainer_gpus=t * gps, rollout_gpus=(servers - t) * gps, split="explicit")
            row: dict[str, Any] = {"trainer_gpus": t * gps, "rollout_gpus": (servers - t) * gps}
            try:
                wl = traffic.build_workload(config.workload, c, seed=config.seed, path="workload")
                row["period_s"] = estimate_period(wl, [phase_estimate_s(p, cl.nic_bps, gps) for p in wl.phases])
                row["sequences_per_step"] = int(wl.meta.get("sequences_per_step", 1))
                row["period_per_sequence_s"] = row["period_s"] / max(1, row["sequences_per_step"])
            except ConfigError as e:
                row["error"] = str(e)
            tried[t] = row
        return float(tried[t].get("period_per_sequence_s", math.inf))

    if servers < 2:
        raise ConfigError("cluster.split", "auto needs at least two servers (one per pool)", cl.split)
    grid = sorted({min(servers - 1, max(1, round(servers * f / 16))) for f in range(1, 16)})
    best = min(grid, key=lambda t: (period(t), t))
    step = max(1, servers // 32)
    while step >= 1:
        for t in (best - step, best + step):
            if 1 <= t < servers and period(t) < period(best):
                best = t
        step //= 2
    if not math.isfinite(period(best)):
        raise ConfigError("cluster.split", "no trainer/rollout split of the cluster resolves the workload's "
                          f"parallelism (e.g. {tried[best].get('error', '')})", cl.split)
    chosen = replace(cl, trainer_gpus=best * gps, rollout_gpus=(servers - best) * gps)
    return replace(config, cluster=chosen), [tried[t] for t in sorted(tried)]


def plan_circuits(config: RunConfig, topology: Topology, workload: Workload) -> CircuitSchedule:
    """Circuit assignments per phase (empty assignments for a fabric without OCS).

    A ``static_ocs`` fabric with a named ``circuit_template`` (tree, mesh, isolated_pod) holds that template
    for the whole job; with ``circuit_template: solver`` the planner picks one assignment from the step's
    traffic. A pipelined schedule on a reconfigurable fabric is planned per epoch (:func:`plan_epochs`).

    Parameters
    ----------
    config : RunConfig
        Its solver options (``solver`` section) and seed are used.
    topology : Topology
        The physical fabric (:func:`build_topology`).
    workload : Workload
        Over at most ``topology.num_gpus`` GPUs (:func:`build_workload`).

    Returns
    -------
    CircuitSchedule
        One assignment per phase step (per epoch for :func:`plan_epochs`), with the planner's decisions.

    Raises
    ------
    ConfigError
        A wrong argument type, an empty workload, or a workload over more GPUs than the topology has.
    """
    _check_stage_args(config, topology, workload, need="ctw")
    template = topology.circuit_template
    options = resolved(config).solver_options
    if workload.schedule.pipelined and topology.has_ocs and topology.reconfigurable and template == "solver" \
            and options.reconfig != "never":
        return plan_epochs(topology, workload, options, seed=config.seed, nic_bps=config.cluster.nic_bps,
                           gpus_per_server=config.cluster.gpus_per_server)
    fixed = None
    if topology.has_ocs and template != "solver":
        from topologies.templates import circuit_template

        fixed = circuit_template(topology, template)
    return solver_pkg.plan_schedule(topology, workload, options, seed=config.seed, fixed=fixed)


def plan_epochs(topology: Topology, workload: Workload, options: Any, *, seed: int, nic_bps: float,
                gpus_per_server: int) -> CircuitSchedule:
    """Circuits per epoch of a pipelined schedule on a reconfigurable fabric (one assignment per epoch).

    The epochs (constant sets of active phases) of one sync period are predicted without simulating
    (:func:`rfabric.sim.pipeline.estimate_timeline` over :func:`~rfabric.sim.pipeline.phase_estimate_s`:
    compute plus NIC-bound traffic at ``nic_bps``) and become the planner's phases (:func:`epoch_workload`:
    union traffic, idle windows); :func:`solver.plan_schedule` assigns circuits to each, reconfiguring only
    when it pays.

    Parameters
    ----------
    topology : Topology
        A reconfigurable fabric with OCS.
    workload : Workload
        With a pipelined schedule.
    options : solver.SolverOptions
    seed : int
        The run's seed (the solver mixes in its own, :meth:`solver.SolverOptions.mixed_seed`).
    nic_bps : float
        NIC bandwidth of one GPU, bit/s, each direction (the estimate's only network term).
    gpus_per_server : int
        GPUs joined by NVLink (their traffic does not cross the NIC in the estimate).

    Returns
    -------
    CircuitSchedule
        One assignment per epoch; ``meta['epochs']`` lists each assignment's active phases (the simulator
        switches to an assignment whenever an epoch with those phases begins) and
        ``meta['predicted_iteration_time_s']`` the estimate's period.
    """
    from rfabric.sim.pipeline import estimate_timeline, phase_estimate_s

    predicted = estimate_timeline(workload, [phase_estimate_s(p, nic_bps, gpus_per_server) for p in workload.phases])
    epochs = epoch_workload(workload, predicted)
    schedule = solver_pkg.plan_schedule(topology, epochs, options, seed=seed)
    meta = {**schedule.meta, "epochs": [list(ph.meta["phases"]) for ph in epochs.phases],
            "predicted_iteration_time_s": predicted.iteration_time_s}
    return replace(schedule, meta=meta)


def simulate(config: RunConfig, topology: Topology, workload: Workload, schedule: CircuitSchedule | None,
             *, progress: Callable[[str], None] | None = None,
             epoch_circuits: Mapping[tuple[str, ...], CircuitAssignment] | None = None) -> SimulationResult:
    """Play ``workload`` on ``topology`` (see :func:`rfabric.sim.simulate`) with the config's sim options and seed.

    Parameters
    ----------
    config : RunConfig
        Its ``sim`` section and seed are used; its hash becomes the result's provenance.
    topology : Topology
    workload : Workload
        Over at most ``topology.num_gpus`` GPUs.
    schedule : CircuitSchedule or None
        From :func:`plan_circuits` for this workload and fabric; None for a fabric without OCS.
    progress : callable, optional
        Called with one line per simulated phase (the library itself never prints).
    epoch_circuits : Mapping, optional
        Active phase names -> circuit assignment, for a pipelined schedule (default: from ``schedule``).

    Returns
    -------
    SimulationResult
        Times in seconds, bytes per medium, per-phase timings; ``provenance`` of ``config``.

    Raises
    ------
    ConfigError
        An argument of the wrong type, a workload over more GPUs than the topology has, or a schedule
        planned for another workload or fabric (``schedule``, ``schedule.assignments[i]``).
    SimulationError
        A flow between endpoints the fabric cannot connect.
    """
    _check_stage_args(config, topology, workload, schedule, need="ctws")
    res = sim_simulate(topology, workload, schedule, options=config.sim, seed=config.seed,
                       progress=progress if callable(progress) else None, epoch_circuits=epoch_circuits)
    return replace(res, provenance=provenance(config))


def epoch_workload(workload: Workload, sim: SimulationResult) -> Workload:
    """The epochs of one sync period of a pipelined simulation as phase steps, for the circuit planner.

    Each epoch (a constant set of active phases, read from the last ``K`` measured steps of ``sim``) becomes
    one phase step whose flows are the union of its active phases' flows (named ``"rollout+train"`` ...).
    ``compute_before_s`` is the time from the epoch's start to the first communication of its phases (the
    window in which a reconfiguration hides; 0 when a phase already sends); ``compute_after_s`` is 0.

    Parameters
    ----------
    workload : Workload
        The pipelined workload ``sim`` played (or was estimated for).
    sim : SimulationResult
        With ``extra['epochs']``, ``extra['step_completion_s']`` and ``extra['rl_steps_per_period']``
        (a pipelined simulation or :func:`rfabric.sim.pipeline.estimate_timeline`).

    Returns
    -------
    Workload
        Named ``epochs:<name>``: one phase step per epoch in time order, ``meta['phases']``,
        ``meta['start_s']`` and ``meta['end_s']`` on each.
    """
    ex = sim.extra
    comp = ex["step_completion_s"]
    k = int(ex["rl_steps_per_period"])
    lo, hi = (comp[-k - 1] if len(comp) > k else 0.0), comp[-1]
    steps: list[PhaseStep] = []
    seen: dict[str, int] = {}
    for e in ex["epochs"]:
        if not (lo <= e["start_s"] < hi) or not e["phases"]:
            continue
        keys = tuple(e["phases"])
        active = [i for i in sim.instances if i.name in keys and i.start_s <= e["start_s"] < i.end_s]
        first_comm = min((i.comm_start_s for i in active), default=e["start_s"])
        name = "+".join(keys)
        seen[name] = seen.get(name, 0) + 1
        flows = FlowSet.concat([workload.phase(n).flows for n in keys])
        steps.append(PhaseStep(name=name if seen[name] == 1 else f"{name}#{seen[name]}", phase="epoch", flows=flows,
                               num_gpus=workload.num_gpus, compute_before_s=max(0.0, first_comm - e["start_s"]),
                               meta={"phases": keys, "start_s": e["start_s"], "end_s": e["end_s"]}))
    return Workload(name=f"epochs:{workload.name}", num_gpus=workload.num_gpus, phases=tuple(steps),
                    trainer_gpus=workload.trainer_gpus, rollout_gpus=workload.rollout_gpus, meta=dict(workload.meta))


def plan_and_simulate(config: RunConfig, topology: Topology, workload: Workload, *,
                      progress: Callable[[str], None] | None = None) -> tuple[CircuitSchedule | None, SimulationResult]:
    """Plan circuits and simulate one fabric: per phase (``sync``) or per epoch (pipelined schedules).

    Pipelined schedules on a reconfigurable fabric are planned per epoch (:func:`plan_epochs`) and the
    simulation switches to an epoch's circuits whenever an epoch with those active phases begins, starting
    from the last epoch's circuits (the periodic wrap-around). Fabrics without OCS, static OCS and
    ``reconfig: never`` hold one assignment.

    Parameters
    ----------
    config, topology, workload, progress
        As for :func:`simulate`.

    Returns
    -------
    schedule : CircuitSchedule or None
        None for a fabric without OCS.
    sim : SimulationResult

    Raises
    ------
    ConfigError, SimulationError
        As :func:`plan_circuits` and :func:`simulate`.
    """
    schedule = plan_circuits(config, topology, workload) if topology.has_ocs else None
    return schedule, simulate(config, topology, workload, schedule, progress=progress)


def cost(config: RunConfig, topology: Topology) -> tuple[BillOfMaterials, CostBreakdown]:
    """Bill of materials and its priced breakdown for one fabric.

    Parameters
    ----------
    config : RunConfig
        Its price catalogue (``cost`` section; public sources per item in ``rfabric/data/prices``).
    topology : Topology

    Returns
    -------
    bom : BillOfMaterials
        Counted parts (:func:`rfabric.bom.bill_of_materials`).
    breakdown : CostBreakdown
        Network capex in USD and power in W (:func:`rfabric.cost.evaluate`).

    Raises
    ------
    ConfigError
        An argument of the wrong type.
    """
    _check_stage_args(config, topology, need="ct")
    bom = bill_of_materials(topology)
    return bom, evaluate(bom, resolved(config).catalogue)


def provenance(config: RunConfig) -> Provenance:
    """Where a result of ``config`` comes from: the hash of its plain data, its seed and the package version.

    Parameters
    ----------
    config : RunConfig

    Returns
    -------
    Provenance
    """
    return Provenance(config_hash=config_hash(config_data(config)), seed=config.seed, version=__version__)


# ------------------------------------------------------------------------------------------------
# A whole run


def run(config: ConfigSource = None, overrides: Overrides = None, *, progress: bool = False) -> RunResult:
    """Run the whole pipeline for every fabric of ``config`` and compare them against the reference.

    >>> r = run(overrides={"fabrics": ["fat_tree"]})          # doctest: +SKIP
    >>> r.comparison.row("fat_tree").perf_per_usd_vs_ref      # doctest: +SKIP
    1.0

    Parameters
    ----------
    config : str, os.PathLike, Mapping, RunConfig or None
        As for :func:`load_config`; a RunConfig without ``overrides`` is used as it is.
    overrides : Mapping or Sequence of str, optional
        As for :func:`load_config`.
    progress : bool
        Show a progress bar over the fabrics (tqdm, on stderr).

    Returns
    -------
    RunResult
        The workload, each fabric's topology, circuits, simulation and cost, the comparison and the resolved
        config (``split_candidates`` added for ``cluster.split: auto``); ``timings_s`` in wall seconds.

    Raises
    ------
    ConfigError
        As :func:`load_config` and :func:`choose_split`.
    SimulationError, SolverError
        A stage could not run on its input.
    """
    if isinstance(config, RunConfig) and not overrides:
        cfg = config
    else:
        cfg, _ = _load(config, overrides)
    t0 = time.perf_counter()
    cfg, split_tried = choose_split(cfg)
    res = resolved(cfg)
    workload = build_workload(cfg)
    timings = {"workload_s": time.perf_counter() - t0}
    fabrics: dict[str, FabricRun] = {}
    bar = _progress(cfg.fabrics, progress, "fabrics")
    for entry in bar:
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(entry.name)
        fabrics[entry.name] = run_fabric(cfg, workload, entry.name)
    prov = provenance(cfg)
    comp = compare({n: (f.kind, f.sim, f.cost) for n, f in fabrics.items()}, cfg.reference, cfg.cluster.gpus, prov,
                   split=(cfg.cluster.trainer_gpus, cfg.cluster.rollout_gpus))
    timings["total_s"] = time.perf_counter() - t0
    plain = res.plain()
    if split_tried:
        plain["split_candidates"] = split_tried
    return RunResult(config=cfg, resolved=plain, workload=workload, fabrics=fabrics, comparison=comp,
                     provenance=prov, timings_s=timings)


def run_fabric(cfg: RunConfig, workload: Workload, fabric: str) -> FabricRun:
    """One fabric of a run: topology, circuit plan, simulation and cost.

    Parameters
    ----------
    cfg : RunConfig
        With its split chosen (:func:`choose_split`).
    workload : Workload
        :func:`build_workload` of ``cfg``.
    fabric : str
        A fabric name of ``cfg.fabrics``.

    Returns
    -------
    FabricRun
        ``wall_time_s``: wall seconds of the four stages.

    Raises
    ------
    ConfigError
        An unknown fabric name (``--fabric``).
    """
    t1 = time.perf_counter()
    entry = _fabric_entry(cfg, fabric)
    topo = build_topology(cfg, entry.name)
    schedule, sim = plan_and_simulate(cfg, topo, workload)
    bom, breakdown = cost(cfg, topo)
    log.info("%s: iteration %.4g s, network capex %.4g USD", entry.name, sim.iteration_time_s, breakdown.capex_network_usd)
    return FabricRun(name=entry.name, kind=entry.kind, topology=topo, bom=bom, cost=breakdown, schedule=schedule,
                     sim=sim, wall_time_s=time.perf_counter() - t1)


def what_if(config: ConfigSource, changes: Mapping[str, Any], *, progress: bool = False) -> RunResult:
    """Re-run ``config`` with dotted-key changes, e.g. ``what_if(cfg, {"topology.ocs_reconfig_ms": 1})``.

    Parameters
    ----------
    config : str, os.PathLike, Mapping, RunConfig or None
        As for :func:`load_config`.
    changes : Mapping
        ``{"dotted.key": value}`` (human units allowed; replaces every unit spelling of the key).
    progress : bool
        As for :func:`run`.

    Returns
    -------
    RunResult

    Raises
    ------
    ConfigError
        ``changes`` not a mapping, or a change that makes the config invalid (named by its key).
    """
    _expect(changes, Mapping, "changes", "a mapping {dotted.key: value}")
    base = config_data(config) if isinstance(config, RunConfig) else _source_data(config)
    return run(merge_overrides(base, changes), progress=progress)


def _progress(items: Sequence[Any], enabled: bool, desc: str) -> Any:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit=desc.rstrip("s"), leave=False)


# ------------------------------------------------------------------------------------------------
# The configuration reference


def config_reference() -> str:
    """The configuration reference (markdown): every key of a run config, generated from the dataclasses the
    loader parses -- the run's sections, each workload kind, each topology kind, the solver options. What
    ``rfabric config --reference`` prints and ``docs/config.md`` holds (a test keeps them equal).

    Returns
    -------
    str
        Markdown text.
    """
    from rfabric.config import ClusterConfig, CostConfig, RunConfig
    from rfabric.reference import Section, describe_dataclass, first_paragraph, render_markdown
    from rfabric.sim.options import SimConfig

    sections = [Section("Top level", first_paragraph(RunConfig),
                        tuple(describe_dataclass(RunConfig, "", skip=("cluster", "sim", "cost"))))]
    for name, cls in (("cluster", ClusterConfig), ("sim", SimConfig), ("cost", CostConfig)):
        sections.append(Section(f"`{name}`", first_paragraph(cls), tuple(describe_dataclass(cls, name))))
    for kind in traffic.REGISTRY.kinds():
        entry = traffic.REGISTRY.get(kind)
        sections.append(Section(f"`workload` (kind: `{kind}`)", f"{entry.doc}. {first_paragraph(entry.params_cls)}",
                                tuple(describe_dataclass(entry.params_cls, "workload"))))
    for kind in topologies.REGISTRY.kinds():
        params = topologies.REGISTRY.get(kind).params_cls
        sections.append(Section(f"`topology` / `fabrics[]` (kind: `{kind}`)",
                                "Parameters shared by all fabrics go under `topology:`; a fabric's own under its "
                                f"`fabrics:` entry. {first_paragraph(params)}",
                                tuple(describe_dataclass(params, "topology"))))
    sections.append(Section("`solver`", first_paragraph(solver_pkg.SolverOptions),
                            tuple(describe_dataclass(solver_pkg.SolverOptions, "solver"))))
    preamble = ("Generated from the configuration dataclasses by `rfabric config --reference` (do not edit; "
                "regenerate with `rfabric config --reference > docs/config.md`). Keys are shown in the unit the "
                "shipped configs use; every other unit spelling of the same key is accepted (`nic_gbps: 400` = "
                "`nic_bps: 4e11`) and converted once by the loader. `--set dotted.key=value` overrides any key.")
    return render_markdown("Configuration reference", preamble, sections)


# ------------------------------------------------------------------------------------------------
# Sweeps


def input_fingerprint(config: Mapping[str, Any]) -> dict[str, Any]:
    """What besides its config text decides a run's result: the package version, the built-in data files
    (models, price catalogues) and the contents of every file the config names (a model YAML, a user price
    catalogue). A sweep's run id hashes this, so editing a model file makes its runs new ones.

    Parameters
    ----------
    config : Mapping
        A run config as plain data; every string ending in ``.yaml``, ``.yml`` or ``.json`` that names an
        existing file is hashed.

    Returns
    -------
    dict
        ``version``, ``data`` (a hash of the packages' data files) and ``files`` (path -> content hash).
    """
    files: dict[str, str] = {}
    stack: list[Any] = [config]
    while stack:
        v = stack.pop()
        if isinstance(v, Mapping):
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
        elif isinstance(v, str) and v.endswith((".yaml", ".yml", ".json")):
            p = Path(v).expanduser()
            if p.is_file():
                files[v] = _file_digest(str(p.resolve()), p.stat().st_mtime_ns, p.stat().st_size)
    return {"version": __version__, "data": _package_data_digest(), "files": files}


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@functools.cache
def _package_data_digest() -> str:
    """One hash of the data files shipped with the packages (default config, catalogues, models)."""
    h = hashlib.sha256()
    for pkg in (rfabric_pkg, traffic, topologies, solver_pkg):
        root = Path(str(pkg.__file__)).parent / "data"
        for f in sorted(root.rglob("*")) if root.is_dir() else ():
            if f.is_file() and f.suffix in (".yaml", ".yml", ".json", ".csv"):
                h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def sweep_point(config: Mapping[str, Any]) -> dict[str, Any]:
    """Run one sweep point (top level so process pools and Ray can pickle it); rows are JSON-able.

    Parameters
    ----------
    config : Mapping
        The point's run config as plain data.

    Returns
    -------
    dict
        ``rows`` (one per fabric: the comparison row, ``bytes_<medium>``, ``sim_wall_time_s``,
        ``sim_events``), ``config_hash``, ``version`` and ``timings_s``.

    Raises
    ------
    ConfigError
        An invalid point config.
    """
    result = run(config)
    rows = []
    for row in result.comparison.table():
        f = result.fabrics[row["fabric"]]
        extra = {f"bytes_{k}": v for k, v in sorted(f.sim.bytes_by_medium().items())}
        rows.append({**row, **extra, "sim_wall_time_s": f.sim.wall_time_s, "sim_events": f.sim.events})
    return {"rows": rows, "config_hash": result.provenance.config_hash, "version": result.provenance.version,
            "timings_s": dict(result.timings_s)}


def sweep_fabrics(config: Mapping[str, Any]) -> list[str]:
    """The parts of a sweep point: the names of its fabrics (the unit of parallel work is a (point, fabric) pair).

    Parameters
    ----------
    config : Mapping
        The point's run config as plain data.

    Returns
    -------
    list of str

    Raises
    ------
    ConfigError
        An invalid point config.
    """
    return [f.name for f in load_config(config).fabrics]


def sweep_fabric(config: Mapping[str, Any], fabric: str) -> dict[str, Any]:
    """One fabric of a sweep point: topology, circuit plan, simulation and cost (picklable, top level).

    The simulation comes back without per-flow times and utilisation samples (the sweep keeps neither).

    Parameters
    ----------
    config : Mapping
        The point's run config as plain data.
    fabric : str
        One of :func:`sweep_fabrics`.

    Returns
    -------
    dict
        ``name``, ``kind``, ``sim`` (SimulationResult), ``cost`` (CostBreakdown), ``split`` (trainer GPUs,
        rollout GPUs), ``provenance``, ``workload_s`` and ``total_s`` (wall seconds).
    """
    t0 = time.perf_counter()
    cfg, workload = _point_workload(config)
    t1 = time.perf_counter()
    fr = run_fabric(cfg, workload, fabric)
    sim = replace(fr.sim, flow_start_s={}, flow_finish_s={}, link_util_times_s=None, link_util=None)
    return {"name": fabric, "kind": fr.kind, "sim": sim, "cost": fr.cost, "workload_s": t1 - t0,
            "split": (cfg.cluster.trainer_gpus, cfg.cluster.rollout_gpus), "provenance": provenance(cfg),
            "total_s": time.perf_counter() - t0}


_POINT_CACHE: dict[str, tuple[RunConfig, Workload]] = {}


def _point_workload(config: Mapping[str, Any]) -> tuple[RunConfig, Workload]:
    """A sweep point's config with its split chosen and its workload, built once per process for all the
    point's fabrics that the process runs in a row (``choose_split`` and the workload build are the same for
    each). Keyed by the point's canonical JSON; holds one point (a 16k-GPU workload is hundreds of MB)."""
    key = json.dumps(config, sort_keys=True, default=repr)
    if key not in _POINT_CACHE:
        _POINT_CACHE.clear()
        cfg, _ = choose_split(load_config(config))
        _POINT_CACHE[key] = (cfg, build_workload(cfg))
    return _POINT_CACHE[key]


def sweep_combine(config: Mapping[str, Any], parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The record of a sweep point from its fabrics' :func:`sweep_fabric` outcomes: the same rows as :func:`sweep_point`.

    Parameters
    ----------
    config : Mapping
        The point's run config as plain data.
    parts : list of dict
        :func:`sweep_fabric` of each of its fabrics.

    Returns
    -------
    dict
        As :func:`sweep_point`; ``timings_s`` sums the parts' wall seconds.
    """
    cfg = load_config(config)
    prov = parts[0]["provenance"]  # of the config with its split chosen, as in run()
    by_name = {p["name"]: p for p in parts}
    comp = compare({n: (p["kind"], p["sim"], p["cost"]) for n, p in by_name.items()}, cfg.reference, cfg.cluster.gpus,
                   prov, split=tuple(parts[0]["split"]))
    rows = []
    for row in comp.table():
        sim = by_name[row["fabric"]]["sim"]
        extra = {f"bytes_{k}": v for k, v in sorted(sim.bytes_by_medium().items())}
        rows.append({**row, **extra, "sim_wall_time_s": sim.wall_time_s, "sim_events": sim.events})
    timings = {"workload_s": sum(p["workload_s"] for p in parts), "total_s": sum(p["total_s"] for p in parts)}
    return {"rows": rows, "config_hash": prov.config_hash, "version": prov.version, "timings_s": timings}


def run_sweep(source: str | os.PathLike[str] | Mapping[str, Any], out: str | os.PathLike[str], *,
              overrides: Overrides = None, workers: int = 1, executor: str = "local", ray_address: str | None = None,
              progress: bool = False, retry_failed: bool = False, validate: bool = True) -> dict[str, int]:
    """Expand a sweep file and run every point not already finished under ``out`` (see :mod:`rfabric.sweep`).

    With ``validate`` every point's config is checked before the first run starts, so a typo in the grid
    fails at once (exit 2) instead of producing a sweep of errors. The unit of parallel work is a (point,
    fabric) pair (:func:`sweep_fabric`, combined by :func:`sweep_combine` into the rows :func:`sweep_point`
    gives), so one heavy point spreads over the workers.

    Parameters
    ----------
    source : str, os.PathLike or Mapping
        A sweep file (``base``, ``sweep``, ``seeds``) or its plain data.
    out : str or os.PathLike
        Results directory: one file per finished run and ``sweep.csv``.
    overrides : Mapping or Sequence of str, optional
        Dotted-key overrides of the sweep file.
    workers : int
        Parallel workers (processes, or Ray tasks).
    executor : str
        ``local`` (a process pool) or ``ray``.
    ray_address : str, optional
        A Ray cluster to join (``executor: ray``).
    progress : bool
        Show a progress bar (stderr).
    retry_failed : bool
        Run failed runs again (else only missing ones).
    validate : bool
        Check every point's config before running.

    Returns
    -------
    dict
        Counts: ``total``, ``skipped``, ``ok``, ``error``, ``lost``.

    Raises
    ------
    ConfigError
        A bad sweep file, or a point config naming the key, the point and its seed.
    """
    from rfabric import sweep

    spec = sweep.load_sweep(source, overrides if not isinstance(overrides, Mapping) else [f"{k}={v}" for k, v in overrides.items()])
    points = sweep.expand(spec, fingerprint=input_fingerprint)
    if validate:
        for p in points:
            try:
                load_config(p.config)
            except ConfigError as e:
                where = ", ".join(f"{k}={v}" for k, v in p.point.items())
                raise ConfigError(e.key, f"{e.message} (sweep point {where or 'base'}, seed {p.seed})", e.value) from None
    return sweep.run_points(points, sweep_fabric, Path(out), workers=workers, executor=executor, ray_address=ray_address,
                            progress=progress, retry_failed=retry_failed, parts=sweep_fabrics, combine=sweep_combine,
                            work=sweep_work)


def sweep_work(config: Mapping[str, Any], fabric: str) -> float:
    """A (point, fabric) pair's relative work for the sweep's largest-first order: the point's GPUs.

    Measured with ``tests/benchmarks/bench_step.py`` (one step, 16,384 -> 65,536 GPUs), a step's wall time
    grows with an exponent of ~1 in GPUs, so GPUs order the pairs; the fabric is not weighed (an estimate
    only: it changes the order of the runs, never their results).

    Parameters
    ----------
    config : Mapping
        The point's run config as plain data.
    fabric : str
        One of :func:`sweep_fabrics` (unused).

    Returns
    -------
    float
        ``cluster.trainer_gpus + cluster.rollout_gpus``.

    Raises
    ------
    ConfigError
        An invalid point config.
    """
    cl = load_config(config).cluster
    return float(cl.trainer_gpus + cl.rollout_gpus)
