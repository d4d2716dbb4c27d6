"""The decision graph's first nodes: retrieve, reconstruct_hidden, the debate roles and their routes.

Every node appends a :class:`NodeStat` (latency, calls, tokens, retries, conflicts, failures) so
``stabilise`` can name the bottleneck, and streams each transcript turn it produces as a typed
:class:`~malles_graph.events.TurnStreamed` event (``stream_mode="custom"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime
from langgraph.types import Send
from malles_graph.graphs.decision.common import agent_id_of, context_of, emit, first_draw, prompt
from malles_graph.graphs.decision.context import ROLES, DecisionContext
from malles_graph.graphs.decision.state import DecisionState, NodeStat
from malles_graph.graphs.decision.views import (
    role_vars,
)

from malles_graph.agents import TranscriptTurn
from malles_graph.errors import BackendError
from malles_graph.models import ChoiceSituation, HiddenFactors
from malles_graph.retail.hidden_factors import reconstruct
from malles_graph.retail.retrieval_api import RetrievalQuery, RetrievedRecord, UnknownCustomerError, query_text
from malles_graph.roles.agent import computed_turn


# ---------------------------------------------------------------- retrieve
def situation_query(situation: ChoiceSituation) -> str:
    """The text retrieve searches the memory with: who the customer is, their usual units, and how the offered
    prices sit against the regular ones."""
    cands = situation.candidates
    mean_ratio = sum(c.price / c.regular_price if c.regular_price else 1.0 for c in cands) / len(cands)
    usual = round(situation.customer.mean_quantity) or None
    return query_text(situation.customer.age_group, situation.customer.pin_code, usual, mean_ratio)


def retrieve(state: DecisionState, runtime: Runtime[Any]) -> dict[str, Any]:
    """Validate the input and fetch similar past episodes (own and other customers') from the memory."""
    start = time.perf_counter()
    ctx = context_of(runtime)
    situation = ChoiceSituation.model_validate(state["situation"])
    agent_id = state.get("agent_id") or situation.customer.customer_id
    records: list[RetrievedRecord] = []
    if ctx.retrieval and ctx.retriever is not None and ctx.neighbours > 0:
        base = {
            "text": situation_query(situation),
            "subclass": situation.subclass,
            "before": situation.date,
            "k": ctx.neighbours,
        }
        try:
            own = ctx.retriever.search(RetrievalQuery(customer_id=situation.customer.customer_id, **base))
        except UnknownCustomerError:  # a new (or synthetic) customer: neighbours only
            own = []
        others = ctx.retriever.search(RetrievalQuery(**{**base, "k": ctx.neighbours + len(own)}))
        seen = {r.id for r in own}
        records = own + [r for r in others if r.id not in seen and r.customer_id != situation.customer.customer_id]
        records = records[: len(own) + ctx.neighbours]
        n_own = len(own)
        note = f"retrieved {n_own} own and {len(records) - n_own} neighbour episodes in subclass {situation.subclass}"
    elif not ctx.retrieval:
        note = "retrieval off (ablation)"
    else:
        note = "no memory given: retrieval skipped"
    turn = TranscriptTurn(
        agent_id=agent_id, role="system", text=note, kind="computed", latency_s=time.perf_counter() - start
    )
    return {
        "agent_id": agent_id,
        "situation": situation,
        "neighbours": records,
        "round": 0,
        "loop": 0,
        "feedback": "",
        "transcript": emit(runtime, [turn]),
        "stats": [NodeStat(node="retrieve", latency_s=time.perf_counter() - start)],
    }


# ---------------------------------------------------------------- reconstruct_hidden
def reconstruct_hidden(state: DecisionState, runtime: Runtime[Any]) -> dict[str, Any]:
    """Estimate Z from the customer's history and the neighbours (or skip: ablation)."""
    start = time.perf_counter()
    ctx = context_of(runtime)
    if not ctx.hidden_factors:
        hidden, text = None, "hidden factors off (ablation)"
    else:
        hidden = hidden_for(state["situation"], state.get("neighbours", []), ctx)
        text = "Z: " + hidden.as_text()
    turn = TranscriptTurn(agent_id=agent_id_of(state), role="system", text=text, kind="computed")
    return {
        "hidden": hidden,
        "transcript": emit(runtime, [turn]),
        "stats": [NodeStat(node="reconstruct_hidden", latency_s=time.perf_counter() - start)],
    }


def hidden_for(
    situation: ChoiceSituation, neighbours: list[RetrievedRecord], ctx: DecisionContext
) -> HiddenFactors | None:
    """Z as the graph estimates it (None when the ablation turns it off)."""
    return reconstruct(situation, neighbours).hidden if ctx.hidden_factors else None


def route_after_hidden(
    state: DecisionState, runtime: Runtime[Any]
) -> Literal["product_specialist", "decide", "single_agent"] | list[Send]:
    ctx = context_of(runtime)
    if ctx.single_agent:
        return first_draw(state, "single_agent", ctx)
    if ctx.debate_rounds == 0:
        return first_draw(state, "decide", ctx)
    return "product_specialist"


# ---------------------------------------------------------------- debate roles
def make_role_node(role: str) -> Callable[[DecisionState, Runtime[Any]], dict[str, Any]]:
    """A debate node: one turn of ``role`` seeing only its slice (or the choice model's computed analysis)."""
    role_index = ROLES.index(role)  # type: ignore[arg-type]

    def node(state: DecisionState, runtime: Runtime[Any]) -> dict[str, Any]:
        start = time.perf_counter()
        ctx = context_of(runtime)
        round_no = state.get("round", 0) + 1
        update: dict[str, Any] = {"round": round_no} if role == "persona" else {}
        if role not in ctx.roles:
            return update
        situation = state["situation"]
        agent_id = agent_id_of(state)
        if ctx.uses_choice_model:
            text = computed_turn(
                ctx.model(), role, situation, state.get("neighbours", []), state.get("hidden"), ctx.roles
            )
            turn = TranscriptTurn(agent_id=agent_id, role=role, round=round_no, text=text, kind="computed")
            stat = NodeStat(node=role, latency_s=time.perf_counter() - start)
        else:
            template = prompt(role, ctx)
            values = role_vars(
                situation,
                state.get("neighbours", []),
                state.get("hidden"),
                state.get("transcript", []),
                round_no=round_no,
                apply_style=ctx.apply_style,
                transcript_chars=ctx.transcript_chars,
                needed=template.fields,
            )
            text_in = template.render(**values)
            try:
                reply = ctx.llm().chat(
                    [HumanMessage(content=text_in)],
                    temperature=ctx.temperature,
                    seed=ctx.seed + 10 * round_no + role_index,
                    max_tokens=ctx.turn_max_tokens,
                )
            except BackendError as exc:  # recorded, visible in the transcript and the bottlenecks
                turn = TranscriptTurn(agent_id=agent_id, role=role, round=round_no, text=str(exc), kind="failure")
                stat = NodeStat(node=role, latency_s=time.perf_counter() - start, llm_calls=1, failures=1)
                return {**update, "transcript": emit(runtime, [turn]), "stats": [stat]}
            turn = TranscriptTurn(
                agent_id=agent_id,
                role=role,
                round=round_no,
                text=reply.text.strip(),
                kind="turn",
                prompt_tokens=reply.prompt_tokens,
                cached_prompt_tokens=reply.cached_prompt_tokens,
                completion_tokens=reply.completion_tokens,
                latency_s=reply.latency_s,
                cached=reply.cached,
            )
            stat = NodeStat(
                node=role,
                latency_s=time.perf_counter() - start,
                llm_calls=0 if reply.cached else 1,
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
            )
        return {**update, "transcript": emit(runtime, [turn]), "stats": [stat]}

    node.__name__ = role
    node.__doc__ = f"Debate turn of the {role.replace('_', ' ')}."
    return node


def route_after_persona(
    state: DecisionState, runtime: Runtime[Any]
) -> Literal["product_specialist", "decide"] | list[Send]:
    ctx = context_of(runtime)
    # computed analyses do not change between rounds: one round is enough for the choice model
    rounds = 1 if ctx.uses_choice_model else ctx.debate_rounds
    if state.get("round", 0) < rounds:
        return "product_specialist"
    return first_draw(state, "decide", ctx)
