"""Control flow of the decision graph with scripted chat models (every branch)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from malles_graph.graphs.decision import (
    DecisionContext,
    decide_situation,
    field_descriptions,
    graph,
    resolve_context,
    stream_decision,
)

from malles_graph.agents import TranscriptTurn
from malles_graph.evaluation.choice_model import COMPUTED, ChoiceModel
from malles_graph.evaluation.features import FEATURES, QUANTITY_FEATURES
from malles_graph.models import Decision, StyleParams
from malles_graph.scenario import DEFAULT_SAMPLES, BackendConfig, DecisionOptions
from tests.fakes import ScriptedChatModel
from tests.graphs.decision_fixtures import IDS, answer, client, is_decide, memory, responder, situation

SNAPSHOT = Path(__file__).parent / "snapshots" / "decision.mmd"


def ctx_for(model, **kw) -> DecisionContext:
    return DecisionContext(client=client(model), **kw)


def prompts_of(model, marker: str) -> list[str]:
    return [str(m[0].content) for m in model.calls if marker in str(m[0].content)]


# ---------------------------------------------------------------- shape and configuration
def test_mermaid_snapshot():
    drawn = graph.get_graph().draw_mermaid()
    assert drawn == SNAPSHOT.read_text(), "graph shape changed; update tests/graphs/snapshots/decision.mmd"


def test_context_defaults_are_described():
    expected = {
        "debate_rounds": 2, "roles": ("product_specialist", "price_analyst", "persona"), "samples": 1,
        "shuffle": True, "retrieval": True, "hidden_factors": True, "single_agent": False, "apply_style": True, "max_repairs": 2,
        "max_conflict_loops": 1, "conflict_ratio": 10.0, "max_quantity": 100, "neighbours": 8,
        "turn_max_tokens": 96, "decide_max_tokens": 192, "rationale_chars": 160, "transcript_chars": 280,
        "temperature": None, "seed": 0, "choice_model_path": None, "prompts_dir": None, "client": None,
        "retriever": None, "choice_model": None,
    }
    described = field_descriptions()
    for name, value in expected.items():
        assert described[name][0] == value, name
    assert described["backend"][0] == BackendConfig()
    assert all(desc for _, desc in described.values()), "every context field needs a description"
    # defaults follow the scenario's DecisionOptions
    opts = DecisionOptions()
    ctx = DecisionContext.from_options(opts)
    assert (ctx.debate_rounds, ctx.samples, ctx.max_repairs, ctx.neighbours, ctx.max_quantity) == (
        opts.debate_rounds, opts.samples_for("local"), opts.max_repairs, opts.neighbours, opts.max_quantity)
    # samples default per backend: an LLM votes over several draws, the deterministic choice model draws once
    assert ctx.samples == DEFAULT_SAMPLES["local"] > 1
    assert DecisionContext.from_options(opts, BackendConfig(name="choice-model")).samples == 1
    assert DecisionContext.from_options(DecisionOptions(samples=5), BackendConfig(name="choice-model")).samples == 5


def test_schemas_for_langgraph_server_and_json_contexts():
    ctx_schema = graph.get_context_jsonschema()["properties"]
    assert "client" not in ctx_schema and ctx_schema["samples"]["default"] == 1
    assert ctx_schema["debate_rounds"]["description"]
    assert set(graph.get_input_jsonschema()["properties"]) == {"agent_id", "situation"}
    assert set(graph.get_output_jsonschema()["properties"]) == {"outcome", "decision", "hidden"}
    ctx = DecisionContext(backend={"name": "choice-model"}, roles=["persona"])  # type: ignore[arg-type]
    assert ctx.backend == BackendConfig(name="choice-model") and ctx.roles == ("persona",)
    with pytest.raises(ValueError, match="unknown debate role"):
        DecisionContext(roles=("critic",))  # type: ignore[arg-type]


def test_resolve_context_accepts_parent_contexts():
    ctx = DecisionContext(samples=3)

    @dataclasses.dataclass
    class Parent:
        decision: DecisionContext

    assert resolve_context(Parent(ctx)) is ctx
    assert resolve_context({"decision": ctx}) is ctx
    assert resolve_context({"samples": 2}).samples == 2
    with pytest.raises(TypeError, match="DecisionContext"):
        resolve_context(object())


# ---------------------------------------------------------------- the debate
def test_debate_rounds_each_role_sees_the_shared_context_and_its_own_instruction():
    model = responder([answer("B", 2)])
    result = decide_situation(situation(), ctx_for(model))
    assert result.ok and result.decision == Decision(product_id=IDS[1], quantity=2, rationale="fits", confidence=0.8)
    roles = [(t.role, t.round) for t in result.transcript if t.kind == "turn"]
    assert roles == [("product_specialist", 1), ("price_analyst", 1), ("persona", 1),
                     ("product_specialist", 2), ("price_analyst", 2), ("persona", 2)]
    assert result.outcome.llm_calls == 7
    spec, price, persona = (prompts_of(model, m)[0] for m in ("product specialist", "price analyst", "You are this shopper"))
    # one context block for every role (cards, prices, the shopper), then the role's own instruction, last
    for text in (spec, price, persona):
        assert "of subclass units" in text and "regular 50" in text and "perceived" in text
        assert "past trips" in text and "budget pressure" in text
    instructions = {"best fits": spec, "best value": price, "react to the advisers": persona}
    for words, text in instructions.items():
        assert [w for w in instructions if w in text] == [words]
        assert text.index(words) > text.index("Debate so far:")
    for text in (spec, price, persona):
        assert not any(pid in text for pid in IDS), "prompts use labels, not product ids"
    # the second round sees the first round's turns
    assert "persona (round 1): I prefer A." in prompts_of(model, "product specialist")[1]
    tokens = result.outcome.details["tokens_by_role"]
    assert set(tokens) == {"product_specialist", "price_analyst", "persona", "decide"}
    assert all(row["prompt_tokens"] > 0 for row in tokens.values())


def test_zero_rounds_and_role_subset():
    model = responder([answer("A", 1)])
    result = decide_situation(situation(), ctx_for(model, debate_rounds=0))
    assert result.ok and [t.kind for t in result.transcript if t.kind == "turn"] == []
    model = responder([answer("A", 1)])
    result = decide_situation(situation(), ctx_for(model, debate_rounds=1, roles=("persona",)))
    assert [t.role for t in result.transcript if t.kind == "turn"] == ["persona"]


# ---------------------------------------------------------------- decide: repair and failure
def test_unknown_product_is_repaired():
    model = responder([answer("Z", 2), answer("B", 2)])
    result = decide_situation(situation(), ctx_for(model, debate_rounds=0))
    assert result.ok and result.decision.product_id == IDS[1]
    kinds = [t.kind for t in result.transcript if t.role == "decide"]
    assert kinds == ["retry", "decision"]
    repair = model.calls[-1]
    assert "is not one of" in str(repair[-1].content) and "'Z'" in str(repair[-1].content)
    assert result.outcome.details["bottlenecks"]["retries"] == {"decide": 1}


def test_negative_quantity_and_garbage_are_repaired():
    model = responder(["no json here", answer("A", -3), answer("A", 3)])
    result = decide_situation(situation(), ctx_for(model, debate_rounds=0))
    assert result.ok and result.decision.quantity == 3
    errors = [t.text for t in result.transcript if t.kind == "retry"]
    assert "not a complete JSON object" in errors[0] and "negative" in errors[1]


def test_failure_after_repair_limit_is_recorded_not_defaulted():
    model = responder(lambda m: answer("A", 5000 + len(m)))  # a new invalid answer each time (a repeat stops sooner)
    result = decide_situation(situation(), ctx_for(model, debate_rounds=0, max_repairs=2))
    out = result.outcome
    assert not out.ok and out.choice is None and result.decision is None and out.quantity == 0
    assert "above the limit 100" in out.error
    assert len(model.calls) == 3  # one answer + two repairs
    assert out.details["bottlenecks"]["failures"] == {"decide": 1}
    assert [t.kind for t in out.transcript if t.role == "decide"] == ["retry", "retry", "failure"]


def test_backend_errors_are_recorded_failures():
    def respond(messages):
        text = str(messages[0].content)
        if "You are this shopper" in text:  # prompts open with the shared preamble
            raise ConnectionError("server went away")
        return answer("A", 2) if is_decide(messages) else "I prefer A."

    result = decide_situation(situation(), ctx_for(ScriptedChatModel(responder=respond), debate_rounds=1))
    persona = [t for t in result.transcript if t.role == "persona"]
    assert [t.kind for t in persona] == ["failure"] and "server went away" in persona[0].text
    assert result.ok and result.outcome.details["bottlenecks"]["failures"] == {"persona": 1}

    def broken(messages):
        if is_decide(messages):
            raise TimeoutError("timed out")
        return "I prefer A."

    result = decide_situation(situation(), ctx_for(ScriptedChatModel(responder=broken), debate_rounds=0))
    assert not result.ok and "timed out" in result.outcome.error and result.decision is None


# ---------------------------------------------------------------- stabilise
def test_multi_sample_vote_median_and_agreement():
    model = responder([answer("A", 2), answer("B", 9), answer("A", 4)])
    result = decide_situation(situation(), ctx_for(model, debate_rounds=0, samples=3))
    out = result.outcome
    assert result.decision.product_id == IDS[0] and result.decision.quantity == 3  # median of 2 and 4
    assert out.agreement == pytest.approx(2 / 3)
    assert out.details["votes"] == {IDS[0]: 2, IDS[1]: 1}
    assert len(out.details["samples"]) == 3


def test_samples_with_a_failure_still_vote():
    first_calls = []

    def respond(messages):
        if len(messages) > 1:  # a repair: keep failing
            return answer("Z", 1)
        first_calls.append(1)
        return answer("Z", 1) if len(first_calls) == 1 else answer("A", 2)

    model = responder(respond)
    result = decide_situation(situation(), ctx_for(model, debate_rounds=0, samples=2, max_repairs=1))
    out = result.outcome
    assert out.ok and result.decision.product_id == IDS[0]
    assert out.details["failed_samples"] == 1 and out.agreement == 1.0
    assert sum(1 for s in out.details["samples"] if s["error"]) == 1


def test_conflict_is_sent_back_with_feedback():
    model = responder([answer("A", 60), answer("A", 2)])
    result = decide_situation(situation(), ctx_for(model, debate_rounds=0))
    out = result.outcome
    assert out.ok and result.decision.quantity == 2
    second = str(model.calls[1][0].content)
    assert "conflicts with this shopper's history" in second and "A x60" in second
    assert out.details["conflict_loops"] == 1 and not out.details["conflict_unresolved"]
    assert out.details["bottlenecks"]["conflicts"] == {"stabilise": 1}
    assert [t.kind for t in out.transcript if t.kind == "conflict"] == ["conflict"]


def test_conflict_loops_are_bounded():
    model = responder(lambda _m: answer("A", 60))
    result = decide_situation(situation(), ctx_for(model, debate_rounds=0, max_conflict_loops=2))
    out = result.outcome
    assert out.ok and result.decision.quantity == 60 and out.details["conflict_unresolved"]
    assert len(model.calls) == 3 and out.details["conflict_loops"] == 2


def test_style_quantity_propensity_and_ablation():
    model = responder([answer("A", 2)])
    styled = situation(style=StyleParams(quantity_propensity=1.0))
    assert decide_situation(styled, ctx_for(model, debate_rounds=0)).decision.quantity == 3
    model = responder([answer("A", 2)])
    result = decide_situation(styled, ctx_for(model, debate_rounds=0, apply_style=False))
    assert result.decision.quantity == 2


def test_style_shapes_price_framing():
    hunter = situation(style=StyleParams(discount_sensitivity=0.9, loss_aversion=4.0, reference_anchoring=0.9))
    model = responder([answer("A", 1)])
    decide_situation(hunter, ctx_for(model, debate_rounds=1, roles=("price_analyst",)))
    text = prompts_of(model, "price analyst")[0]
    assert "weighs discounts heavily" in text and "4.0x as much" in text


def test_a_scenarios_max_quantity_admits_orders_in_the_hundreds():
    """An LLM's order of 150 is sent back as garbage under the default limit of 100; a scenario whose
    orders run into the hundreds raises it (`decision.max_quantity`, `--set decision.max_quantity=1000`)."""
    def decided(**options):
        opts = DecisionOptions(debate_rounds=0, samples=1, max_conflict_loops=0, **options)
        ctx = DecisionContext.from_options(opts, BackendConfig(name="local"))
        ctx.client = client(responder(lambda m: answer("A", 150)))
        return decide_situation(situation(), ctx)

    default = decided()
    assert not default.ok and "above the limit 100" in default.outcome.error
    raised = decided(max_quantity=500)
    assert raised.ok and raised.decision.quantity == 150


def test_calibrator_hook_and_invalid_calibration():
    class Double:
        def __call__(self, decision, situation, hidden):
            assert hidden is not None and situation.situation_id
            return decision.model_copy(update={"quantity": decision.quantity * 2})

    model = responder([answer("A", 2)])
    result = decide_situation(situation(), ctx_for(model, debate_rounds=0), calibrator=Double())
    assert result.decision.quantity == 4 and result.outcome.details["calibrated"]

    class Broken:
        def __call__(self, decision, situation, hidden):
            return decision.model_copy(update={"product_id": "nope"})

    model = responder([answer("A", 2)])
    result = decide_situation(situation(), ctx_for(model, debate_rounds=0), calibrator=Broken())
    assert not result.ok and "calibrator" in result.outcome.error


# ---------------------------------------------------------------- modes and ablations
def test_single_agent_mode_holds_everything_in_one_prompt():
    model = responder([answer("B", 1), answer("B", 2)])
    result = decide_situation(situation(), ctx_for(model, single_agent=True, samples=2))
    assert result.ok and len(model.calls) == 2
    assert not [t for t in result.transcript if t.kind == "turn"]
    text = str(model.calls[0][0].content)
    for part in ("of subclass units", "regular 50", "past trips", "budget pressure"):
        assert part in text
    assert result.outcome.details["mode"] == "single_agent"
    assert set(result.outcome.details["tokens_by_role"]) == {"single_agent"}


def test_retrieval_uses_memory_and_never_the_future():
    model = responder([answer("A", 2)])
    result = decide_situation(situation(), ctx_for(model, debate_rounds=1), retriever=memory())
    assert result.outcome.details["neighbours"] == 3  # c1 own + c2 + c3; c4 is on the decision day
    assert "retrieved 1 own and 2 neighbour episodes" in result.transcript[0].text
    assert "in 2 of 3 similar baskets" in prompts_of(model, "product specialist")[0]
    assert "over 4 episodes" in result.hidden.budget_pressure.provenance  # 2 own (basket, memory) + 2 neighbours


def test_ablation_flags_skip_retrieval_and_hidden_factors():
    model = responder([answer("A", 2)])
    result = decide_situation(
        situation(), ctx_for(model, debate_rounds=1, retrieval=False, hidden_factors=False), retriever=memory()
    )
    assert result.outcome.details["neighbours"] == 0 and result.hidden is None
    assert "retrieval off" in result.transcript[0].text
    persona = prompts_of(model, "You are this shopper")[0]
    assert "Drivers: not estimated" in persona


def test_choice_model_backend_computes_roles_without_llm(tmp_path):
    path = ChoiceModel(np.linspace(-1, 1, len(FEATURES)), np.zeros(len(QUANTITY_FEATURES)), 0.7).save(
        tmp_path / "cm.json")
    ctx = DecisionContext(backend=BackendConfig(name="choice-model"), choice_model_path=str(path), debate_rounds=2)
    result = decide_situation(situation(), ctx)
    out = result.outcome
    assert out.ok and out.llm_calls == 0 and out.details["mode"] == "choice-model"
    computed = [t for t in out.transcript if t.role in ("product_specialist", "price_analyst", "persona")]
    assert [t.role for t in computed] == ["product_specialist", "price_analyst", "persona"]  # one round suffices
    assert all(t.kind == "computed" and t.text.startswith(COMPUTED) for t in computed)
    assert ctx.client is None  # no LLM was built


# ---------------------------------------------------------------- contract and streaming
def test_plain_dict_input_and_output_contract():
    model = responder([answer("C", 1)])
    out = graph.invoke({"agent_id": "agent-7", "situation": situation().model_dump(mode="json")},
                       context=ctx_for(model, debate_rounds=0))
    assert set(out) == {"outcome", "decision", "hidden"}
    assert out["outcome"].agent_id == "agent-7" and out["outcome"].choice == IDS[2]
    assert all(t.agent_id == "agent-7" for t in out["outcome"].transcript)


def test_turns_stream_live_as_typed_events():
    model = responder([answer("A", 2)])
    events = list(stream_decision(situation(), ctx_for(model, debate_rounds=1)))
    turns, final = events[:-1], events[-1]
    assert all(isinstance(t, TranscriptTurn) for t in turns)
    assert [t.role for t in turns if t.kind == "turn"] == ["product_specialist", "price_analyst", "persona"]
    assert turns == final.outcome.transcript


def test_decide_situation_from_scenario_options():
    model = responder([answer("A", 1)] * 2)
    opts = DecisionOptions(debate_rounds=0, samples=2)
    result = decide_situation(situation(), opts, client=client(model))
    assert result.ok and len(result.outcome.details["samples"]) == 2


def test_decide_prompt_is_the_one_seen():
    model = responder([answer("A", 1)])
    decide_situation(situation(), ctx_for(model, debate_rounds=0))
    assert is_decide(model.calls[0])
    assert '"A", "B", "C" or "none"' in str(model.calls[0][0].content)
