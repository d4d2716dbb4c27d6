"""A setting chosen per fit on held-out training cases (the count model's trees): the default unless
another is clearly better (``metrics.clearly_better``)."""

from __future__ import annotations

import numpy as np

from malles_graph.evaluation.metrics import clearly_better


def test_the_default_stays_unless_another_setting_is_better_by_two_standard_errors():
    rng = np.random.default_rng(0)
    base = rng.random(2000)
    noise = base + rng.normal(0, 0.3, 2000) - 0.005  # lower on average, but within its noise
    clear = base - 0.05 + rng.normal(0, 0.05, 2000)
    clearer = base - 0.08 + rng.normal(0, 0.05, 2000)
    assert clearly_better({"default": base, "noise": noise}, "default") == "default"
    assert clearly_better({"default": base, "noise": noise, "clear": clear}, "default") == "clear"
    assert clearly_better({"default": base, "clear": clear, "clearer": clearer}, "default") == "clearer"
    assert clearly_better({"default": base}, "default") == "default"
