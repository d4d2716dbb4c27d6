"""One short real run of the dialogue on the bundled SmolLM2-135M (plumbing, not quality).

Measured (2026-12-07, seeds 1, 2 and 3, rule_max_tokens 64 and 96): the bundled model answers the rule with
schema-valid JSON whose formula is not a quantity (a bare item letter, `{"formula": "A", "orders": {"A": 10.00},
...}`, or `"A. 12"`), and at temperature 0 answers the repair with the same text word for word (alone and after
every other `llm` test on the same server; at 0.2 the first answer varied with what the server had cached). So
the outcome is definite: the domain validator rejects the formula, the repair carries the reason back to the
real model, the repeated answer stops the repairs before the limit, and the run is a recorded failure with the
baselines only, never a made-up rule. Once, in a full suite (the server's prompt cache then held other tests'
prefixes), the first answer ran past its 64 tokens instead; that path is a rejection too (cut off, repaired with
more room), so the test holds the rejections and their repairs, not one exact text. A model that writes a valid
rule fails this test on purpose: its measured behaviour changed, and the test must be re-measured.
"""

from __future__ import annotations

import pytest
from malles_graph.graphs.wholesale import run_wholesale

from malles_graph.events import TurnStreamed
from malles_graph.scenario import BackendConfig, Scenario
from malles_graph.wholesale.options import WholesaleOptions


@pytest.mark.llm
@pytest.mark.timeout(1500)  # five short calls: well under a minute on an idle machine, much longer on a loaded one
def test_the_bundled_models_invalid_rule_is_rejected_repaired_and_recorded(
    local_backend: BackendConfig, items, tmp_path
) -> None:
    backend = local_backend.model_copy(update={"timeout_s": 900.0, "temperature": 0.0})
    options = WholesaleOptions(
        periods=4, dialogue_rounds=1, max_repairs=3, turn_max_tokens=16, rule_max_tokens=64, n_items=1
    )
    scenario = Scenario(name="local-plumbing", kind="wholesale", seed=1, backend=backend, wholesale=options)
    events = []
    run = run_wholesale(scenario, on_event=events.append, items=items[:1],
                        store_url=f"sqlite:///{tmp_path / 'store.sqlite'}")

    roles = [t["role"] for t in run.transcript]
    assert roles[:3] == ["marketing", "manufacturer", "wholesaler"] and all(t["text"] for t in run.transcript[:3])
    assert run.transcript[0]["completion_tokens"] <= 16 + 2
    # every answer of the real model was rejected with its reason: the formula (the measured case), or JSON cut
    # off at the token budget (seen once in a full suite, where the server's prompt cache held other tests'
    # prefixes); each rejection is a streamed retry turn and the repair after it carries the reason back
    attempts = run.attempts
    assert 2 <= len(attempts) <= options.max_repairs + 1
    assert all(not a["ok"] and a["error"] for a in attempts)
    assert all(a["error"].startswith(("formula: ", "orders: ")) or a["truncated"] for a in attempts), attempts
    retries = [t["text"] for t in run.transcript[3:-1]]
    assert [t["kind"] for t in run.transcript[3:]] == ["retry"] * len(attempts) + ["failure"]
    for n, (attempt, text) in enumerate(zip(attempts, retries, strict=True), 1):
        assert text.startswith(f"invalid rule (attempt {n}): {attempt['error']}")
    assert run.meta["llm_calls"] == 3 + len(attempts)
    # the repairs stop at the limit or earlier only when another call cannot help (the measured case: the model
    # repeats its invalid answer word for word at temperature 0)
    hopeless = ("repeated its previous invalid answer", "cut off at the token budget twice")
    assert len(attempts) == options.max_repairs + 1 or any(h in run.meta["error"] for h in hopeless)
    assert not run.ok and run.rule is None
    assert run.meta["error"].startswith(f"no valid purchasing rule after {len(attempts)} attempt(s)")
    assert run.table.height == 3  # baselines only: nothing was made up
    assert sum(1 for e in events if isinstance(e, TurnStreamed)) == len(run.transcript)
