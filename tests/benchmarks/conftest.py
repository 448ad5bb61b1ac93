"""Benchmarks run as scripts (their folder is then on ``sys.path``) and under ``pytest -m benchmark``, whose
``--import-mode=importlib`` puts no test folder there: add this one so both find the shared ``_profiling``."""

from __future__ import annotations

import sys
from pathlib import Path

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
