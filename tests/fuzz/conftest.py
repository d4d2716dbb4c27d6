"""Hypothesis profiles for the fuzz tests.

``ci`` (default): derandomized, so CI is reproducible; each family runs at least 1,000 inputs.
``explore``: random seeds and 10x the inputs, for a developer hunting new failures
(``HYPOTHESIS_PROFILE=explore pytest -m fuzz``); an input that fails goes into tests/fuzz/corpus/.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = 1000
COMMON = {
    "deadline": timedelta(seconds=5),  # one input taking longer is a hang, reported as a failure
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    "database": None,
}
settings.register_profile("ci", max_examples=FUZZ_EXAMPLES, derandomize=True, **COMMON)
settings.register_profile("explore", max_examples=10 * FUZZ_EXAMPLES, **COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
