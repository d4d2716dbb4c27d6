"""One short real run of the dialogue on the bundled SmolLM2-135M (plumbing, not quality)."""

from __future__ import annotations

import pytest
from malles_graph.graphs.wholesale import run_wholesale

from malles_graph.events import TurnStreamed
from malles_graph.scenario import BackendConfig, Scenario
from malles_graph.wholesale.options import WholesaleOptions


@pytest.mark.llm
@pytest.mark.timeout(1500)  # four short calls: well under a minute on an idle machine, much longer on a loaded one
def test_local_model_gives_a_rule_or_a_recorded_failure(local_backend: BackendConfig, items, tmp_path) -> None:
    backend = local_backend.model_copy(update={"timeout_s": 900.0})
    options = WholesaleOptions(
        periods=4, dialogue_rounds=1, max_repairs=0, turn_max_tokens=16, rule_max_tokens=64, n_items=1
    )
    scenario = Scenario(name="local-plumbing", kind="wholesale", seed=1, backend=backend, wholesale=options)
    events = []
    run = run_wholesale(scenario, on_event=events.append, items=items[:1],
                        store_url=f"sqlite:///{tmp_path / 'store.sqlite'}")

    roles = [t["role"] for t in run.transcript]
    assert roles[:3] == ["marketing", "manufacturer", "wholesaler"] and all(t["text"] for t in run.transcript[:3])
    assert len(run.attempts) == 1 and run.meta["llm_calls"] == 4
    if run.ok:
        assert run.rule["expression"] and run.table["policy"][0] == "dialogue rule"
    else:
        assert run.attempts[0]["error"] and run.transcript[-1]["kind"] == "failure"
        assert run.table.height == 3  # baselines only: nothing was made up
    assert run.transcript[0]["completion_tokens"] <= 16 + 2
    assert sum(1 for e in events if isinstance(e, TurnStreamed)) == len(run.transcript)
