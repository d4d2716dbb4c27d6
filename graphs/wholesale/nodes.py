"""Nodes of the wholesale dialogue; each emits the run events of what it did (malles_graph.events).

The dialogue is the run's one round and the buyer's rule its one decision: every utterance is a
turn of that decision (agent ``wholesaler``), stored as it is said at its position in the
dialogue (``seq``), so an interrupted dialogue keeps its turns and a resumed one adds no copies;
the decision, when made (or given up), carries the whole dialogue as its transcript.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.runtime import Runtime
from malles_graph.graphs.wholesale.context import WholesaleContext
from malles_graph.graphs.wholesale.prompting import prompt_values, proposal_validator, rule_json_schema
from malles_graph.graphs.wholesale.state import RuleAttempt, RuleProposal, WholesaleState

from malles_graph.agents import TranscriptTurn
from malles_graph.backends.client import REPAIR_ROOM, hopeless_repair
from malles_graph.events import DecisionFinished, Message, RoundFinished, RoundStarted, TurnStreamed, emit
from malles_graph.prompts import load_prompt
from malles_graph.wholesale.compare import DIALOGUE, compare
from malles_graph.wholesale.demand import ItemDemand, load_demand
from malles_graph.wholesale.formula import FormulaError, parse_formula

BUYER = "wholesaler"  # the agent whose decision is the purchasing rule; the dialogue is its transcript
ROUND = 1  # the dialogue is the run's one round


def _items(state: WholesaleState) -> list[ItemDemand]:
    return [ItemDemand.from_dict(d) for d in state["items"]]


def _say(turn: TranscriptTurn, seq: int) -> TranscriptTurn:
    turn = turn.model_copy(update={"agent_id": BUYER})
    emit(TurnStreamed(turn=turn, round=ROUND, seq=seq))
    return turn


def prepare(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    emit(RoundStarted(round=ROUND, total=1))
    emit(Message(text="stage: prepare"))
    if state.get("items"):
        return {"round": 1}
    items = load_demand(runtime.context.options)
    return {"items": [i.to_dict() for i in items], "round": 1}


def _speak(role: str, state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    context = runtime.context
    items = _items(state)
    values = prompt_values(items, context.options, state.get("transcript", []))
    text = load_prompt(role, context.prompts).render(round=state["round"], **values)
    call = len(state.get("transcript", []))
    reply = context.llm().chat(
        [HumanMessage(content=text)], seed=context.seed + call, max_tokens=context.options.turn_max_tokens
    )
    turn = TranscriptTurn(
        role=role, round=state["round"], text=reply.text.strip(), prompt_tokens=reply.prompt_tokens,
        cached_prompt_tokens=reply.cached_prompt_tokens, completion_tokens=reply.completion_tokens, latency_s=reply.latency_s, cached=reply.cached,
    )
    return {"transcript": [_say(turn, call)], "llm_calls": 1}


def marketing(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    return _speak("marketing", state, runtime)


def manufacturer(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    return _speak("manufacturer", state, runtime)


def wholesaler(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    update = _speak("wholesaler", state, runtime)
    return {**update, "round": state["round"] + 1}


def propose_rule(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    """Ask for the structured rule; earlier invalid answers and their reasons are in the conversation."""
    context = runtime.context
    options = context.options
    items = _items(state)
    attempts = state.get("attempts", [])
    emit(Message(text="stage: " + ("propose_rule" if not attempts else f"repair {len(attempts)}")))
    values = prompt_values(items, options, state.get("transcript", []))
    messages: list[BaseMessage] = [HumanMessage(content=load_prompt("purchasing_rule", context.prompts).render(**values))]
    for earlier in attempts:
        messages += [
            AIMessage(content=earlier.text),
            HumanMessage(content=f"Your answer was invalid: {earlier.error}\nAnswer again with only the corrected JSON."),
        ]
    llm = context.llm()
    budget = options.rule_max_tokens or llm.max_tokens
    result = llm.structured(
        messages,
        RuleProposal,
        validator=proposal_validator(items, options),
        json_schema=rule_json_schema([i.item_id for i in items]),
        max_retries=0,  # repairs are graph steps, so each one is streamed and bounded by max_repairs
        seed=context.seed + 1000 + len(attempts),
        # as the client's own repairs: an answer cut off at its budget is repaired with more room
        max_tokens=None if budget is None else budget * REPAIR_ROOM ** sum(a.truncated for a in attempts),
    )
    answer = result.attempts[-1]
    number = len(attempts) + 1
    attempt = RuleAttempt(attempt=number, text=answer.text, ok=result.ok, error=result.error, truncated=answer.truncated)
    turn = TranscriptTurn(
        role=BUYER,
        round=state.get("round", 1),
        text=answer.text if result.ok else f"invalid rule (attempt {number}): {result.error}\n{answer.text}",
        kind="decision" if result.ok else "retry",
        prompt_tokens=answer.prompt_tokens,
        cached_prompt_tokens=answer.cached_prompt_tokens,
        completion_tokens=answer.completion_tokens,
    )
    turn = _say(turn, len(state.get("transcript", [])))
    update: dict[str, Any] = {"attempts": [attempt], "transcript": [turn], "llm_calls": 1}
    if result.ok:
        proposal = result.value
        formula = parse_formula(proposal.formula)
        update["rule"] = {
            "formula": formula.text,
            "expression": str(formula.expr),
            "simplified": formula.simplified,
            "variables": formula.variables,
            "rationale": proposal.rationale,
        }
        update["orders"] = {item: float(quantity) for item, quantity in proposal.orders.items()}
        emit(decision([*state.get("transcript", []), turn], ok=True, choice=update["rule"]["expression"],
                      details={"rule": update["rule"], "orders": update["orders"]}))
    return update


def decision(transcript: list[TranscriptTurn], **fields: Any) -> DecisionFinished:
    """The buyer's decision event, the whole dialogue as its transcript (calls counted from its turns)."""
    spoken = [t for t in transcript if t.kind in ("turn", "decision", "retry")]
    return DecisionFinished(
        round=ROUND, agent_id=BUYER, transcript=transcript, llm_calls=sum(1 for t in spoken if not t.cached),
        cached_calls=sum(1 for t in spoken if t.cached), prompt_tokens=sum(t.prompt_tokens for t in spoken),
        completion_tokens=sum(t.completion_tokens for t in spoken), **fields,
    )


def route_rule(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> Literal["evaluate", "propose_rule", "failed"]:
    if state.get("rule"):
        return "evaluate"
    attempts = state.get("attempts", [])
    if len(attempts) <= runtime.context.options.max_repairs and hopeless_repair(attempts) is None:
        return "propose_rule"
    return "failed"


def route_round(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> Literal["marketing", "propose_rule"]:
    return "marketing" if state["round"] <= runtime.context.options.dialogue_rounds else "propose_rule"


def failed(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    """No valid rule within the repairs: recorded as a failed decision; the baselines still run."""
    attempts = state.get("attempts", [])
    reason = attempts[-1].error if attempts else "no rule was proposed"
    if (hopeless := hopeless_repair(attempts)) is not None:
        reason = f"{reason} ({hopeless}: no further repair)"
    turn = TranscriptTurn(
        role=BUYER, round=state.get("round", 1),
        text=f"no valid purchasing rule after {len(attempts)} attempt(s): {reason}", kind="failure",
    )
    turn = _say(turn, len(state.get("transcript", [])))
    emit(decision([*state.get("transcript", []), turn], ok=False, error=turn.text))
    update = evaluate(state, runtime)  # the baselines still run, so the table is there for comparison
    return {**update, "ok": False, "error": turn.text, "transcript": [turn]}


def evaluate(state: WholesaleState, runtime: Runtime[WholesaleContext]) -> dict[str, Any]:
    """The rule (if any), the reference rule and the baselines over the held-out periods."""
    emit(Message(text="stage: evaluate"))
    options = runtime.context.options
    items = _items(state)
    rule = parse_formula(state["rule"]["formula"]) if state.get("rule") else None
    reference = None
    if options.reference_rule:
        try:
            reference = parse_formula(options.reference_rule)
        except FormulaError as exc:
            raise FormulaError(f"wholesale.reference_rule: {exc}") from None
    results = compare(items, options, rule, reference)
    table = [plain(r.summary) for r in results]
    dialogue = next((row for row in table if row.get("policy") == DIALOGUE), {})
    metrics = {k: float(v) for k, v in dialogue.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    emit(RoundFinished(round=ROUND, metrics=metrics, summary={"table": table, "rule": state.get("rule")}))
    return {
        "ok": rule is not None,
        "error": None,
        "table": table,
        "records": [plain(record.row()) for r in results for record in r.records],
    }


def plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row with numpy scalars as Python numbers (the checkpointed state is msgpack)."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()}
