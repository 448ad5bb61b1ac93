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
# # Quick start: one run, one what-if
#
# The built-in default compares a non-blocking Fat-Tree, a 2:1 oversubscribed Fat-Tree and an RFabric
# hybrid fabric on a 128-GPU disaggregated RL cluster (64 trainer + 64 rollout GPUs, Qwen2.5-14B).
# Everything goes through the public library API: `rfabric.api`.

# %%
import os

from rfabric import api

SMOKE = os.environ.get("RFABRIC_SMOKE", "0") == "1"
config = api.load_config()
result = api.run(config)
for row in result.comparison.table():
    print(f"{row['fabric']:>14}: step {row['iteration_time_s']:.3f} s, capex ${row['capex_usd'] / 1e6:.2f} M, "
          f"perf/$ x{row['perf_per_usd_vs_ref']:.2f}")

# %% [markdown]
# ## What if the OCS switched 10x faster (1 ms instead of 10 ms)?

# %%
fast = api.what_if(config, {"topology.ocs_reconfig_ms": 1})
before, after = result.comparison.row("rfabric"), fast.comparison.row("rfabric")
print(f"RFabric step time: {before.iteration_time_s:.4f} s -> {after.iteration_time_s:.4f} s; "
      f"time lost to reconfiguration {before.reconfig_time_s * 1e3:.1f} ms -> {after.reconfig_time_s * 1e3:.1f} ms")

# %%
from rfabric.plotting.compare import plot_comparison

fig = plot_comparison(result.comparison)
