"""The wholesale dialogue graph with scripted models: turns, bounded repair, failure, the stored run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from malles_graph.graphs.wholesale import WholesaleContext, build_wholesale_graph, graph, run_wholesale

from malles_graph.backends.client import REPAIR_ROOM, LLMClient, openai_call_kwargs
from malles_graph.scenario import BackendConfig, Scenario
from malles_graph.wholesale.compare import DIALOGUE, REFERENCE
from malles_graph.wholesale.discovery import discover_run, rule_at_constants
from malles_graph.wholesale.options import WholesaleOptions
from malles_graph.wholesale.runs import load_run
from tests.fakes import ScriptedChatModel

from .conftest import GOOD_RULE, role_of, rule_answer

HERE = Path(__file__).parent


def scenario(**options) -> Scenario:
    defaults = dict(periods=4, dialogue_rounds=1, max_repairs=2, reference_rule="Max(0, 2*forecast - inventory)")
    return Scenario(
        name="wholesale-test",
        kind="wholesale",
        seed=4,
        backend=BackendConfig(name="local", cache=False),
        wholesale=WholesaleOptions(**(defaults | options)),
    )


def scripted(rule_answers: list[str]) -> ScriptedChatModel:
    """Roles answer in prose; the purchasing rule answers follow ``rule_answers`` (the last one repeats)."""
    state = {"rule": 0}

    def respond(messages) -> str:
        role = role_of(messages[0].content)
        if role != "purchasing_rule":
            return f"{role}: demand looks steady, about 100 units a week."
        answer = rule_answers[min(state["rule"], len(rule_answers) - 1)]
        state["rule"] += 1
        return answer

    return ScriptedChatModel(responder=respond)


def test_dialogue_then_repair_of_a_bad_formula(items) -> None:
    ids = [i.item_id for i in items]
    model = scripted([rule_answer("forecast - inventory", ids), rule_answer(GOOD_RULE, ids, 120)])
    events = []
    run = run_wholesale(scenario(), on_event=events.append, chat_model=model, items=items)

    assert run.ok and run.rule["expression"] == "Max(0, forecast*(lead_time + 1) - inventory - on_order)"
    assert run.meta["orders"] == {"A": 120.0, "B": 120.0}
    kinds = [(t["role"], t["kind"]) for t in run.transcript]
    assert kinds == [
        ("marketing", "turn"), ("manufacturer", "turn"), ("wholesaler", "turn"),
        ("wholesaler", "retry"), ("wholesaler", "decision"),
    ]
    assert "negative quantity" in run.attempts[0]["error"]
    # the repair request carried the reason back to the model
    repair_call = model.calls[-1]
    assert "negative quantity" in repair_call[-1].content and repair_call[-2].type == "ai"
    # each role saw its own prompt with the data
    assert "Recent sales" in model.calls[0][0].content and "Minimum order" in model.calls[1][0].content
    # turns were streamed live, in order, as typed events, each stored at its place in the dialogue
    streamed = [(e.turn.kind, e.seq) for e in events if e.type == "turn_streamed"]
    assert streamed == [("turn", 0), ("turn", 1), ("turn", 2), ("retry", 3), ("decision", 4)]
    decisions = [e for e in events if e.type == "decision_finished"]
    assert [(d.agent_id, d.ok, d.choice) for d in decisions] == [("wholesaler", True, run.rule["expression"])]
    assert events[0].type == "run_started" and events[-1].type == "run_finished" and events[-1].status == "finished"
    assert run.meta["llm_calls"] == 5  # three roles, the invalid rule and its repair
    # the rule is compared side by side with the reference and the three baselines
    assert run.table["policy"].to_list() == [DIALOGUE, REFERENCE, "newsvendor", "order-up-to", "last-period demand"]
    assert run.orders.filter(run.orders["policy"] == DIALOGUE).height == 2 * 4


def test_failure_after_the_repair_limit_is_recorded(items) -> None:
    ids = [i.item_id for i in items]
    model = scripted([rule_answer("forecast + mystery", ids)])
    run = run_wholesale(scenario(max_repairs=1), chat_model=model, items=items)
    assert not run.ok and run.rule is None
    assert run.meta["status"] == "failed"  # its one decision failed: the run did not succeed
    assert len(run.attempts) == 2 and all("unknown variable(s) ['mystery']" in a["error"] for a in run.attempts)
    assert run.transcript[-1]["kind"] == "failure" and "after 2 attempt(s)" in run.meta["error"]
    # no rule is made up, but the baselines still run for comparison
    assert DIALOGUE not in run.table["policy"].to_list() and run.table.height == 4


def test_a_repeated_invalid_rule_is_not_repaired_again(items) -> None:
    """As the client's own repairs: a model that answers the repair with the same invalid rule would only
    repeat it, so the graph stops before its repair limit instead of wasting calls."""
    ids = [i.item_id for i in items]
    model = scripted([rule_answer("forecast + mystery", ids)])
    run = run_wholesale(scenario(max_repairs=4), chat_model=model, items=items)
    assert not run.ok and len(run.attempts) == 2 and run.meta["llm_calls"] == 3 + 2
    assert "repeated its previous invalid answer: no further repair" in run.meta["error"]
    assert DIALOGUE not in run.table["policy"].to_list()


class CutOffRule(ScriptedChatModel):
    """Roles answer in prose; the rule is cut off at max_tokens (one token per ``chars_per_token``
    characters, finish reason "length", as llama.cpp reports it); records the rule calls' budgets."""

    answer: str = ""
    chars_per_token: int = 2
    budgets: list[int] = []

    def _generate(self, messages, stop=None, run_manager=None, **kw):
        if role_of(messages[0].content) != "purchasing_rule":
            return super()._generate(messages, stop, run_manager, **kw)
        self.calls.append(list(messages))
        self.budgets.append(kw["max_tokens"])
        room = kw["max_tokens"] * self.chars_per_token
        text, reason = (self.answer, "stop") if len(self.answer) <= room else (self.answer[:room], "length")
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text), generation_info={"finish_reason": reason})])


def budgeted(model: ScriptedChatModel) -> LLMClient:
    """A client that passes the token budget on to the model, as it does to a real server."""
    return LLMClient(model, backend="local", model_id="fake", max_retries=0, call_kwargs=openai_call_kwargs)


def test_a_rule_cut_off_at_its_budget_is_repaired_with_more_room(items) -> None:
    answer = rule_answer(GOOD_RULE, [i.item_id for i in items])  # about 60 tokens at 2 characters a token
    model = CutOffRule(script=["demand looks steady."], cycle=True, answer=answer, budgets=[])
    run = run_wholesale(scenario(rule_max_tokens=40), client=budgeted(model), items=items)
    assert model.budgets == [40, 40 * REPAIR_ROOM] and run.ok
    assert run.attempts[0]["truncated"] and "cut off at max_tokens (40 tokens)" in run.attempts[0]["error"]
    # cut off again with the room doubled: no third call, a recorded failure that says why
    model = CutOffRule(script=["demand looks steady."], cycle=True, answer=answer, chars_per_token=1, budgets=[])
    run = run_wholesale(scenario(rule_max_tokens=40, max_repairs=5), client=budgeted(model), items=items)
    assert model.budgets == [40, 80] and not run.ok
    assert "cut off at the token budget twice" in run.meta["error"]


def test_not_json_and_missing_orders_are_repaired(items) -> None:
    ids = [i.item_id for i in items]
    model = scripted(["I would order a lot.", rule_answer(GOOD_RULE, ids[:1]), rule_answer(GOOD_RULE, ids)])
    run = run_wholesale(scenario(dialogue_rounds=0), chat_model=model, items=items)
    assert run.ok and len(run.attempts) == 3
    assert "not a complete JSON object" in run.attempts[0]["error"]
    assert "no quantity for item(s) ['B']" in run.attempts[1]["error"]
    assert [t["role"] for t in run.transcript] == ["wholesaler"] * 3  # no dialogue rounds


def test_same_seed_same_numbers_and_store_round_trip(items) -> None:
    ids = [i.item_id for i in items]
    first = run_wholesale(scenario(), chat_model=scripted([rule_answer(GOOD_RULE, ids)]), items=items)
    second = run_wholesale(scenario(), chat_model=scripted([rule_answer(GOOD_RULE, ids)]), items=items)
    assert first.table.equals(second.table) and first.run_id != second.run_id
    loaded = load_run(first.folder)  # by its folder, as by its id
    assert loaded.rule == first.rule and loaded.items[0].units.tolist() == items[0].units.tolist()
    assert loaded.orders.equals(first.orders) and loaded.transcript == first.transcript
    assert loaded.scenario.wholesale == scenario().wholesale and loaded.run_id == first.run_id


def test_discovery_recovers_the_dialogue_rule_from_the_run(items) -> None:
    ids = [i.item_id for i in items]
    run = run_wholesale(scenario(), chat_model=scripted([rule_answer(GOOD_RULE, ids)]), items=items)
    found = discover_run(run, population=400, generations=15, random_state=0)
    assert min(p.error for p in found.front) < 1e-6  # the exact rule is on the front
    assert found.chosen.error <= 0.05 * found.baseline_error  # the choice may trade a little error for length
    assert rule_at_constants(run) == "Max(0, 2*forecast - inventory)"
    saved = json.loads((run.folder / "discovery.json").read_text())
    assert saved["chosen"]["expression"] == found.chosen.expression
    demand = discover_run(run, "demand", population=50, generations=2)
    assert demand.target == "units demanded"


def test_context_and_option_defaults() -> None:
    fields = {f.name: f for f in dataclasses.fields(WholesaleContext)}
    assert all(f.metadata.get("description") for f in fields.values())
    context = WholesaleContext()
    assert context.seed == 0 and context.client is None and context.backend.name == "local"
    options = WholesaleOptions()
    assert (options.level, options.period, options.periods, options.lead_time) == ("subclass", "week", 8, 1)
    assert (options.target_margin, options.holding_cost_rate, options.min_order) == (0.25, 0.02, 20)
    assert [(t.min_quantity, t.discount) for t in options.discount_tiers] == [(200, 0.03), (500, 0.06)]
    assert options.service_level == 0.95 and options.salvage_fraction == 1.0 and options.max_repairs == 2
    assert all(field.description for field in WholesaleOptions.model_fields.values())
    # served by `langgraph dev`: the context has a JSON schema without the chat model, and dicts are coerced
    assert list(graph.get_context_jsonschema()["properties"]) == ["options", "backend", "seed", "prompts_dir"]
    assert WholesaleContext(options={"periods": 3}, backend={"name": "ollama"}).options.periods == 3


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="increasing min_quantity"):
        WholesaleOptions(discount_tiers=[{"min_quantity": 500, "discount": 0.05}, {"min_quantity": 100, "discount": 0.1}])
    with pytest.raises(ValueError, match="items must not be an empty list"):
        WholesaleOptions(items=[])


def test_graph_shape_snapshot() -> None:
    snapshot = HERE / "wholesale_graph.mmd"
    drawn = build_wholesale_graph().compile().get_graph().draw_mermaid()
    assert drawn == snapshot.read_text(encoding="utf-8")
    assert graph.name == "wholesale"


@pytest.mark.parametrize("path", sorted((HERE.parent.parent / "scenarios").glob("wholesale-*.yaml")), ids=lambda p: p.stem)
def test_every_wholesale_scenario_smoke_runs(path: Path, tafeng_path: Path) -> None:
    from malles_graph.scenario import load_scenario

    loaded = load_scenario(path)
    loaded.wholesale.dialogue_rounds = min(loaded.wholesale.dialogue_rounds, 1)

    def respond(messages) -> str:
        prompt = messages[0].content
        if role_of(prompt) != "purchasing_rule":
            return "steady demand"
        line = next(x for x in prompt.splitlines() if x.startswith("Also give the units"))
        return rule_answer(GOOD_RULE, line.split(": ", 1)[1].rstrip(".").split(", "))

    run = run_wholesale(loaded, chat_model=ScriptedChatModel(responder=respond))
    assert run.ok, run.meta["error"]
    assert run.table["profit"].is_finite().all() and run.table.height == 5


def test_rule_schema_constrains_items_and_formula_characters() -> None:
    import re

    from malles_graph.graphs.wholesale import rule_json_schema

    from malles_graph.wholesale.formula import parse_formula

    schema = rule_json_schema(["100205", "120103"])
    orders = schema["properties"]["orders"]
    assert orders["required"] == ["100205", "120103"] and orders["additionalProperties"] is False
    pattern = re.compile(schema["properties"]["formula"]["pattern"])
    assert pattern.match(GOOD_RULE) and parse_formula(GOOD_RULE)
    assert not pattern.match("100205: 3") and not pattern.match("__import__('os')")
