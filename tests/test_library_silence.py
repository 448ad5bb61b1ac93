"""The library never prints: a warning logged by any package goes nowhere unless the application configures
logging (Python's logging.lastResort would otherwise write it to stderr); the CLI's handler still shows it."""

from __future__ import annotations

import subprocess
import sys

import pytest

PACKAGES = ["rfabric", "solver", "traffic", "topologies", "validation"]


@pytest.mark.parametrize("pkg", PACKAGES)
def test_a_library_warning_is_not_printed(pkg: str) -> None:
    code = (f"import logging, {pkg}; logging.getLogger('{pkg}.some_module').warning('must not be printed'); "
            "print('done')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "done\n"
    assert "must not be printed" not in out.stderr


def test_the_cli_handler_still_shows_library_warnings() -> None:
    # the handler rfabric.cli installs on the root logger receives the packages' records (propagation)
    code = ("import argparse, logging, solver; from rfabric import cli; "
            "cli._setup_logging(argparse.Namespace(quiet=False, verbose=0)); "
            "logging.getLogger('solver.planner').warning('shown by the CLI')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "WARNING solver.planner: shown by the CLI" in out.stderr
