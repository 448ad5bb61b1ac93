# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Anatomy of one RL step
#
# Traffic heat maps per phase (pod x pod), the circuits the solver picks for each phase, and the
# simulated timeline on the RFabric fabric.

# %%
import matplotlib.pyplot as plt

from rfabric import api
from rfabric.plotting.heatmaps import plot_heatmap
from rfabric.plotting.timeline import plot_timeline

config = api.load_config()
workload = api.build_workload(config)
topology = api.build_topology(config, "rfabric")
print([(p.name, p.phase, len(p.flows), f"{p.flows.total_bytes / 1e9:.1f} GB") for p in workload.phases])

# %% [markdown]
# ## Traffic per phase, aggregated to ToR level

# %%
fig, axes = plt.subplots(1, len(workload.phases), figsize=(4 * len(workload.phases), 3.6), squeeze=False)
for ax, phase in zip(axes[0], workload.phases, strict=True):
    plot_heatmap(phase.traffic.aggregate(topology, "tor", keep_diagonal=True), ax=ax, title=phase.name)

# %% [markdown]
# ## Circuits chosen per phase

# %%
schedule = api.plan_circuits(config, topology, workload)
for d in schedule.decisions:
    print(f"{d.phase:>24}: {d.action:>12}, {d.circuits} circuits, {d.changed} changed — {d.reason}")

# %% [markdown]
# ## Timeline

# %%
sim = api.simulate(config, topology, workload, schedule)
fig = plot_timeline(sim)
print(f"step time {sim.iteration_time_s:.3f} s, reconfiguration {sim.reconfig_time_s * 1e3:.1f} ms")
