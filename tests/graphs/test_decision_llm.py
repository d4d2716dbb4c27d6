"""One end-to-end decision through the real `local` backend (bundled SmolLM2 via llama.cpp)."""

from __future__ import annotations

import time

import pytest
from malles_graph.graphs.decision import DecisionContext, decide_situation

from tests.graphs.decision_fixtures import situation


@pytest.mark.llm
@pytest.mark.timeout(1800)  # the shared machine is often oversubscribed; llama.cpp slows down a lot then
def test_one_real_decision_with_a_real_transcript(local_backend):
    # one round, short turns: the shared 2-core machine runs SmolLM2-135M at tens of tokens/s
    backend = local_backend.model_copy(update={"timeout_s": 900.0})
    ctx = DecisionContext(backend=backend, debate_rounds=1, turn_max_tokens=32, decide_max_tokens=56,
                          rationale_chars=48, max_repairs=1, temperature=0.2, seed=7)
    start = time.perf_counter()
    result = decide_situation(situation(), ctx)
    elapsed = time.perf_counter() - start
    out = result.outcome
    turns = [t for t in out.transcript if t.kind == "turn"]
    assert [t.role for t in turns] == ["product_specialist", "price_analyst", "persona"]
    assert all(t.text.strip() and t.prompt_tokens > 50 and t.completion_tokens > 0 for t in turns)
    assert out.llm_calls >= 4 and out.prompt_tokens > 300
    decide_turns = [t for t in out.transcript if t.role == "decide"]
    assert decide_turns and all(t.prompt_tokens > 0 for t in decide_turns)
    if out.ok:  # a valid decision among the candidates, validated end to end
        assert result.decision.product_id in [*situation().candidate_ids, "none"]
        assert 0 <= result.decision.quantity <= ctx.max_quantity
    else:  # or an honest, recorded failure: never a made-up default
        assert out.error and out.choice is None and result.decision is None
    print(f"\nreal local decision: {elapsed:.1f} s, {out.llm_calls} calls, ok={out.ok}, "
          f"choice={out.choice} x{out.quantity}, slowest={out.details['bottlenecks']['slowest']}")
    for t in out.transcript:
        print(f"  [{t.role}/{t.kind}] {t.text[:120]!r}")
