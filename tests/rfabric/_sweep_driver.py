"""A sweep through the real command line (``rfabric.cli.main``) whose runs sleep, for the fault tests.

Usage: python _sweep_driver.py SWEEP_YAML OUT_DIR WORKERS [EXECUTOR]. Each run writes its worker's pid to
OUT_DIR/pids/<pid> (so a test can find and signal the workers), sleeps ``RFABRIC_TEST_SLEEP_S`` seconds,
and returns a row computed from its config, so an interrupted-then-resumed sweep.csv can be compared with
an uninterrupted one.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def slow_point(config: Mapping[str, Any]) -> dict[str, Any]:
    pids = Path(os.environ["RFABRIC_TEST_PIDS"])
    pids.mkdir(parents=True, exist_ok=True)
    (pids / str(os.getpid())).touch()
    time.sleep(float(os.environ.get("RFABRIC_TEST_SLEEP_S", "0")))
    return {"rows": [{"fabric": "x", "value": config["seed"] * 10 + config["cluster"]["trainer_gpus"]}]}


def slow_fabric(config: Mapping[str, Any], fabric: str) -> dict[str, Any]:
    """The sweep's unit of work is a (point, fabric) pair: one slow part per fabric (one fabric here)."""
    return slow_point(config)


def first_part(config: Mapping[str, Any], outs: list[dict[str, Any]]) -> dict[str, Any]:
    return outs[0]


if __name__ == "__main__":
    from rfabric import api
    from rfabric.cli import main

    # the pool pickles them by name: __main__.slow_fabric
    api.sweep_point = slow_point  # type: ignore[assignment]
    api.sweep_fabric = slow_fabric  # type: ignore[assignment]
    api.sweep_combine = first_part  # type: ignore[assignment]
    sweep_file, out, workers = sys.argv[1:4]
    executor = sys.argv[4] if len(sys.argv) > 4 else "local"
    raise SystemExit(main(["sweep", sweep_file, "--out", out, "-j", workers, "--executor", executor, "-q"]))
