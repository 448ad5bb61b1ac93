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
# # Scaling results
#
# Loads a finished sweep directory (`rfabric sweep experiments/configs/scaling.yaml --out results/scaling`)
# and draws the figures from the saved table — nothing is re-simulated here. Set `RFABRIC_SWEEP_DIR` to
# point at your sweep; without it, the smoke-sized sweep is run into a temporary directory first.

# %%
import os
import tempfile
from pathlib import Path

from rfabric import api
from rfabric.plotting.figures import FIGURES
from rfabric.plotting.sweep import read_sweep

sweep_dir = os.environ.get("RFABRIC_SWEEP_DIR")
if not sweep_dir:
    here = Path.cwd()
    root = next((p for p in (here, *here.parents) if (p / "experiments" / "configs").is_dir()), None)
    if root is None:
        raise FileNotFoundError(f"no RFabric checkout above {here}: run this notebook from inside the repository "
                                "or set RFABRIC_SWEEP_DIR to a finished sweep directory")
    sweep_dir = tempfile.mkdtemp(prefix="rfabric-scaling-")
    api.run_sweep(root / "experiments" / "configs" / "smoke" / "scaling.yaml", sweep_dir, workers=1)
rows = read_sweep(sweep_dir)
print(f"{len(rows)} rows from {sweep_dir}")

# %%
fig = FIGURES["scaling"](Path(sweep_dir))

# %% [markdown]
# Performance per cost of each fabric relative to the non-blocking Fat-Tree, at the largest scale swept:

# %%
largest = max(r["gpus"] for r in rows)
for r in sorted((r for r in rows if r["gpus"] == largest), key=lambda r: (str(r.get("workload.model")), r["fabric"])):
    print(f"{str(r.get('workload.model', '')):>16} {r['fabric']:>16}: step x{r['time_vs_ref']:.3f}, "
          f"perf/$ x{r['perf_per_usd_vs_ref']:.2f}")
