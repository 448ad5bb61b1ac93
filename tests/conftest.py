"""Suite-wide test settings.

Hypothesis runs derandomized: the examples are a function of each test's code, so a run of the suite is
reproducible (same code = same examples = same verdict) and CI cannot turn red on a lucky draw. Set
``HYPOTHESIS_PROFILE=explore`` to search with fresh random examples while developing.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("reproducible", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "reproducible"))
