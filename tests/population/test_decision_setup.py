"""The run's decision context: backend.max_tokens bounds a debate turn, never the structured decision."""

from __future__ import annotations

from pathlib import Path

import pytest
from malles_graph.graphs.decision.setup import context_for_scenario

from tests.population.responders import scripted_decision_client
from tests.population.test_runner import small


@pytest.mark.parametrize(("max_tokens", "turn"), [(64, 64), (256, 96)])
def test_backend_max_tokens_bounds_a_turn_and_leaves_the_decision_its_budget(tmp_path: Path, max_tokens, turn):
    scenario = small(tmp_path, backend={"max_tokens": max_tokens})
    ctx, _ = context_for_scenario(scenario, scripted_decision_client())
    assert (ctx.turn_max_tokens, ctx.decide_max_tokens) == (turn, 192)
