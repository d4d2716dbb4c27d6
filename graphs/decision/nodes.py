"""Node functions of the decision graph (plain functions of state and runtime, testable alone).

Every node appends a :class:`NodeStat` (latency, calls, tokens, retries, conflicts,
failures) so ``stabilise`` can name the bottleneck, and streams each transcript turn it
produces as a typed :class:`TranscriptTurn` event (``stream_mode="custom"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command, Send
from malles_graph.graphs.decision_context import ROLES, DecisionContext, resolve_context
from malles_graph.graphs.decision_state import DecisionState, NodeStat, Sample, SampleTask
from malles_graph.graphs.decision_views import (
    DecisionAnswer,
    answer_problems,
    answer_schema,
    label_of,
    role_vars,
    style_of,
    to_decision,
)
from pydantic import ValidationError

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.errors import BackendError
from malles_graph.hidden_factors import reconstruct, usual_quantity
from malles_graph.models import NONE_PRODUCT, ChoiceSituation, Decision, HiddenFactors
from malles_graph.prompts import PromptTemplate, load_prompt
from malles_graph.retrieval_api import RetrievalQuery, RetrievedRecord, UnknownCustomerError, query_text
from malles_graph.stabilise import consistency_conflicts, majority_vote, style_quantity

DecideTarget = Literal["decide", "single_agent"]


# ---------------------------------------------------------------- helpers
def _ctx(runtime: Runtime[Any]) -> DecisionContext:
    return resolve_context(runtime.context)


def _emit(runtime: Runtime[Any], turns: list[TranscriptTurn]) -> list[TranscriptTurn]:
    for turn in turns:
        runtime.stream_writer(turn)
    return turns


_PROMPTS: dict[tuple[str, str | None], PromptTemplate] = {}


def prompt(name: str, ctx: DecisionContext) -> PromptTemplate:
    """Loaded once per (name, folder); prompt files are checked against PROMPT_SPECS when loaded."""
    key = (name, ctx.prompts_dir)
    if key not in _PROMPTS:
        from pathlib import Path

        _PROMPTS[key] = load_prompt(name, Path(ctx.prompts_dir) if ctx.prompts_dir else None)
    return _PROMPTS[key]


def _agent_id(state: DecisionState | SampleTask) -> str:
    return state.get("agent_id") or state["situation"].customer.customer_id


def sample_seed(ctx: DecisionContext, loop: int, index: int) -> int:
    return ctx.seed + 1000 * loop + index


def sample_tasks(
    state: DecisionState, target: DecideTarget, ctx: DecisionContext, loop: int, feedback: str
) -> list[Send]:
    """One Send per sample: the decide node draws them in parallel."""
    return [
        Send(
            target,
            SampleTask(
                agent_id=_agent_id(state),
                situation=state["situation"],
                neighbours=state.get("neighbours", []),
                hidden=state.get("hidden"),
                transcript=state.get("transcript", []),
                feedback=feedback,
                loop=loop,
                index=i,
            ),
        )
        for i in range(ctx.samples)
    ]


# ---------------------------------------------------------------- retrieve
def retrieve(state: DecisionState, runtime: Runtime[Any]) -> dict[str, Any]:
    """Validate the input and fetch similar past episodes (own and other customers') from the memory."""
    start = time.perf_counter()
    ctx = _ctx(runtime)
    situation = ChoiceSituation.model_validate(state["situation"])
    agent_id = state.get("agent_id") or situation.customer.customer_id
    records: list[RetrievedRecord] = []
    if ctx.retrieval and ctx.retriever is not None and ctx.neighbours > 0:
        cands = situation.candidates
        mean_ratio = sum(c.price / c.regular_price if c.regular_price else 1.0 for c in cands) / len(cands)
        usual = round(situation.customer.mean_quantity) or None
        text = query_text(situation.customer.age_group, situation.customer.pin_code, usual, mean_ratio)
        base = {"text": text, "subclass": situation.subclass, "before": situation.date, "k": ctx.neighbours}
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
    turn = TranscriptTurn(agent_id=agent_id, role="system", text=note, kind="computed",
                          latency_s=time.perf_counter() - start)
    return {
        "agent_id": agent_id,
        "situation": situation,
        "neighbours": records,
        "round": 0,
        "loop": 0,
        "feedback": "",
        "transcript": _emit(runtime, [turn]),
        "stats": [NodeStat(node="retrieve", latency_s=time.perf_counter() - start)],
    }


# ---------------------------------------------------------------- reconstruct_hidden
def reconstruct_hidden(state: DecisionState, runtime: Runtime[Any]) -> dict[str, Any]:
    """Estimate Z from the customer's history and the neighbours (or skip: ablation)."""
    start = time.perf_counter()
    ctx = _ctx(runtime)
    if not ctx.hidden_factors:
        hidden, text = None, "hidden factors off (ablation)"
    else:
        hidden = hidden_for(state["situation"], state.get("neighbours", []), ctx)
        text = "Z: " + hidden.as_text()
    turn = TranscriptTurn(agent_id=_agent_id(state), role="system", text=text, kind="computed")
    return {
        "hidden": hidden,
        "transcript": _emit(runtime, [turn]),
        "stats": [NodeStat(node="reconstruct_hidden", latency_s=time.perf_counter() - start)],
    }


def hidden_for(
    situation: ChoiceSituation, neighbours: list[RetrievedRecord], ctx: DecisionContext
) -> HiddenFactors | None:
    """Z as the graph estimates it (None when the ablation turns it off)."""
    return reconstruct(situation, neighbours).hidden if ctx.hidden_factors else None


def first_draw(state: DecisionState, target: DecideTarget, ctx: DecisionContext) -> DecideTarget | list[Send]:
    """The first draw: a plain edge for one sample (cheaper), one Send per sample otherwise."""
    return target if ctx.samples == 1 else sample_tasks(state, target, ctx, 0, "")


def route_after_hidden(
    state: DecisionState, runtime: Runtime[Any]
) -> Literal["product_specialist", "decide", "single_agent"] | list[Send]:
    ctx = _ctx(runtime)
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
        ctx = _ctx(runtime)
        round_no = state.get("round", 0) + 1
        update: dict[str, Any] = {"round": round_no} if role == "persona" else {}
        if role not in ctx.roles:
            return update
        situation = state["situation"]
        agent_id = _agent_id(state)
        if ctx.uses_choice_model:
            text = ctx.model().explain(situation)[role]
            turn = TranscriptTurn(agent_id=agent_id, role=role, round=round_no, text=text, kind="computed")
            stat = NodeStat(node=role, latency_s=time.perf_counter() - start)
        else:
            template = prompt(role, ctx)
            values = role_vars(
                situation, state.get("neighbours", []), state.get("hidden"), state.get("transcript", []),
                round_no=round_no, apply_style=ctx.apply_style, transcript_chars=ctx.transcript_chars,
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
                return {**update, "transcript": _emit(runtime, [turn]), "stats": [stat]}
            turn = TranscriptTurn(
                agent_id=agent_id, role=role, round=round_no, text=reply.text.strip(), kind="turn",
                prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
                latency_s=reply.latency_s, cached=reply.cached,
            )
            stat = NodeStat(node=role, latency_s=time.perf_counter() - start, llm_calls=0 if reply.cached else 1,
                            prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens)
        return {**update, "transcript": _emit(runtime, [turn]), "stats": [stat]}

    node.__name__ = role
    node.__doc__ = f"Debate turn of the {role.replace('_', ' ')}."
    return node


def route_after_persona(
    state: DecisionState, runtime: Runtime[Any]
) -> Literal["product_specialist", "decide"] | list[Send]:
    ctx = _ctx(runtime)
    # computed analyses do not change between rounds: one round is enough for the choice model
    rounds = 1 if ctx.uses_choice_model else ctx.debate_rounds
    if state.get("round", 0) < rounds:
        return "product_specialist"
    return first_draw(state, "decide", ctx)


# ---------------------------------------------------------------- decide / single_agent
def as_task(state: SampleTask | DecisionState) -> SampleTask:
    """A Send carries a SampleTask; a plain edge (one sample, first draw) hands over the state."""
    if "index" in state:
        return state  # type: ignore[return-value]
    return SampleTask(
        agent_id=_agent_id(state), situation=state["situation"], neighbours=state.get("neighbours", []),
        hidden=state.get("hidden"), transcript=state.get("transcript", []), feedback="", loop=0, index=0,
    )


def _draw(task: SampleTask, runtime: Runtime[Any], role: DecideTarget) -> dict[str, Any]:
    start = time.perf_counter()
    task = as_task(task)
    ctx = _ctx(runtime)
    situation, agent_id, loop, index = task["situation"], _agent_id(task), task["loop"], task["index"]
    seed = sample_seed(ctx, loop, index)
    turns: list[TranscriptTurn] = []
    if ctx.uses_choice_model:
        rng = np.random.default_rng(seed) if ctx.samples > 1 else None
        raw = ctx.model().decide(situation, rng=rng)
        try:
            decision: Decision | None = Decision.model_validate(raw.model_dump())
            problems = decision.check_against(situation.candidate_ids, ctx.max_quantity)
        except ValidationError as exc:
            decision, problems = None, [str(exc)]
        error = "; ".join(problems) or None
        sample = Sample(index=index, loop=loop, decision=None if error else decision, error=error, attempts=1)
        text = error or f"{label_of(situation)[decision.product_id]} x{decision.quantity}: {decision.rationale}"
        turns.append(TranscriptTurn(agent_id=agent_id, role=role, round=index, text=text,
                                    kind="failure" if error else "computed"))
        stat = NodeStat(node=role, latency_s=time.perf_counter() - start, failures=int(error is not None))
        return {"samples": [sample], "transcript": _emit(runtime, turns), "stats": [stat]}

    messages = decide_messages(role, ctx, situation, task["neighbours"], task["hidden"], task["transcript"],
                               task["feedback"])
    try:
        result = ctx.llm().structured(
            messages,
            DecisionAnswer,
            validator=lambda a: answer_problems(a, situation, ctx.max_quantity),
            max_retries=ctx.max_repairs,
            temperature=ctx.temperature,
            seed=seed,
            max_tokens=ctx.decide_max_tokens,
            json_schema=answer_schema(situation, ctx.max_quantity, ctx.rationale_chars),
        )
    except BackendError as exc:  # the backend failed (timeout, server error): a recorded failed sample
        turn = TranscriptTurn(agent_id=agent_id, role=role, round=index, text=str(exc), kind="failure")
        stat = NodeStat(node=role, latency_s=time.perf_counter() - start, llm_calls=1, failures=1)
        sample = Sample(index=index, loop=loop, error=str(exc), attempts=1)
        return {"samples": [sample], "transcript": _emit(runtime, [turn]), "stats": [stat]}
    # every attempt is a turn: invalid ones as retries (their error is what was fed back)
    for n, attempt in enumerate(result.attempts):
        last = n == len(result.attempts) - 1
        kind = "decision" if attempt.error is None else ("failure" if last else "retry")
        text = attempt.text.strip() if attempt.error is None else f"{attempt.text.strip()[:200]} -> invalid: {attempt.error}"
        turns.append(TranscriptTurn(agent_id=agent_id, role=role, round=index, text=text, kind=kind,
                                    prompt_tokens=attempt.prompt_tokens, completion_tokens=attempt.completion_tokens))
    if result.ok:
        sample = Sample(index=index, loop=loop, decision=to_decision(result.value, situation, ctx.rationale_chars),
                        attempts=len(result.attempts))
    else:
        sample = Sample(index=index, loop=loop, error=result.error, attempts=len(result.attempts))
    stat = NodeStat(
        node=role, latency_s=time.perf_counter() - start, llm_calls=len(result.attempts),
        prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
        retries=result.retries, failures=int(not result.ok),
    )
    return {"samples": [sample], "transcript": _emit(runtime, turns), "stats": [stat]}


def decide_messages(
    role: DecideTarget,
    ctx: DecisionContext,
    situation: ChoiceSituation,
    neighbours: list[RetrievedRecord],
    hidden: HiddenFactors | None,
    transcript: list[TranscriptTurn],
    feedback: str,
) -> list[BaseMessage]:
    """The messages a decide / single_agent draw sends (before any repair turns)."""
    template = prompt(role, ctx)
    values = role_vars(
        situation, neighbours, hidden, transcript, apply_style=ctx.apply_style,
        transcript_chars=ctx.transcript_chars, feedback=feedback, max_quantity=ctx.max_quantity,
        needed=template.fields,
    )
    return [HumanMessage(content=template.render(**values))]


def single_agent_messages(situation: ChoiceSituation, context: DecisionContext | None = None) -> list[dict[str, str]]:
    """The single-agent prompt as chat messages, exactly as the graph sends it with no retrieved neighbours.

    This is what `malles align export --prompt graph` trains on, so an aligned model served in the
    graph (single_agent, retrieval off) sees its training prompt. ``context`` defaults to the
    graph's defaults; Z is reconstructed as the ``reconstruct_hidden`` node does (unless it is off).
    """
    ctx = context or DecisionContext(retrieval=False, single_agent=True)
    situation = ChoiceSituation.model_validate(situation)
    hidden = hidden_for(situation, [], ctx)
    messages = decide_messages("single_agent", ctx, situation, [], hidden, [], "")
    roles = {"human": "user", "system": "system", "ai": "assistant"}
    return [{"role": roles[m.type], "content": str(m.content)} for m in messages]


def decide(task: SampleTask, runtime: Runtime[Any]) -> dict[str, Any]:
    """One structured decision after the debate (validated; bounded repair, then a recorded failure)."""
    return _draw(task, runtime, "decide")


def single_agent(task: SampleTask, runtime: Runtime[Any]) -> dict[str, Any]:
    """Ablation: one prompt holding everything decides directly, no debate."""
    return _draw(task, runtime, "single_agent")


# ---------------------------------------------------------------- stabilise
def stabilise(state: DecisionState, runtime: Runtime[Any]) -> Command[Literal["decide", "single_agent", "__end__"]]:
    """Vote over the samples, check consistency (conflict loop), apply rho and the calibrator, build the outcome."""
    start = time.perf_counter()
    ctx = _ctx(runtime)
    situation, hidden, agent_id = state["situation"], state.get("hidden"), _agent_id(state)
    loop = state.get("loop", 0)
    target: DecideTarget = "single_agent" if ctx.single_agent else "decide"
    current = [s for s in state.get("samples", []) if s.loop == loop]
    valid = [s.decision for s in current if s.decision is not None]
    labels = label_of(situation)

    if not valid:
        errors = [s.error for s in current if s.error]
        error = f"all {len(current)} sample(s) failed; last error: {errors[-1] if errors else 'unknown'}"
        turn = TranscriptTurn(agent_id=agent_id, role="system", text=error, kind="failure")
        stat = NodeStat(node="stabilise", latency_s=time.perf_counter() - start)
        return _finish(state, ctx, None, error, None, [turn], stat, {})

    vote = majority_vote(valid)
    voted = Decision(
        product_id=vote.product_id,
        quantity=vote.quantity,
        rationale=next(d.rationale for d in valid if d.product_id == vote.product_id),
        confidence=round(vote.confidence, 4),
    )
    usual = usual_quantity(situation, hidden)
    conflicts = consistency_conflicts(voted, usual, ctx.conflict_ratio)
    can_loop = not ctx.uses_choice_model  # the choice model cannot read feedback
    if conflicts and loop < ctx.max_conflict_loops and can_loop:
        feedback = (
            f"Your previous decision ({labels.get(voted.product_id, voted.product_id)} x{voted.quantity}) "
            f"conflicts with this shopper's history: {'; '.join(conflicts)}. Reconsider the quantity."
        )
        turn = TranscriptTurn(agent_id=agent_id, role="system", round=loop + 1, text=feedback, kind="conflict")
        stat = NodeStat(node="stabilise", latency_s=time.perf_counter() - start, conflicts=len(conflicts))
        return Command(
            goto=sample_tasks(state, target, ctx, loop + 1, feedback),
            update={"loop": loop + 1, "feedback": feedback, "conflicts": conflicts,
                    "transcript": _emit(runtime, [turn]), "stats": [stat]},
        )

    style = style_of(situation)
    quantity = style_quantity(voted.quantity, style) if ctx.apply_style else voted.quantity
    styled = voted.model_copy(update={"quantity": quantity})
    calibrated = ctx.calibrator(styled, situation, hidden)
    error = None
    try:
        final: Decision | None = Decision.model_validate(calibrated.model_dump())
        problems = final.check_against(situation.candidate_ids, ctx.max_quantity)
        if problems:
            final, error = None, "calibrator produced an invalid decision: " + "; ".join(problems)
    except ValidationError as exc:
        final, error = None, f"calibrator produced an invalid decision: {exc}"
    failed = len(current) - len(valid)
    text = (
        f"vote {vote.votes} over {len(current)} sample(s)"
        + (f" ({failed} failed)" if failed else "")
        + f": {labels.get(vote.product_id, vote.product_id)}, agreement {vote.agreement:.2f}, median quantity "
        f"{vote.quantity}"
        + (f" -> rho quantity propensity {style.quantity_propensity:.2f} gives {quantity}" if quantity != vote.quantity else "")
        + (f"; unresolved conflict: {'; '.join(conflicts)}" if conflicts else "")
    )
    turns = [TranscriptTurn(agent_id=agent_id, role="stabilise", text=text, kind="vote")]
    if error:
        turns.append(TranscriptTurn(agent_id=agent_id, role="system", text=error, kind="failure"))
    stat = NodeStat(node="stabilise", latency_s=time.perf_counter() - start, conflicts=len(conflicts),
                    failures=int(error is not None))
    details = {
        "votes": vote.votes,
        "failed_samples": failed,
        "voted": voted.model_dump(),
        "style_quantity": {"before": vote.quantity, "after": quantity, "applied": ctx.apply_style},
        "calibrated": final is not None and final != styled,
        "conflict_unresolved": bool(conflicts),
        "usual_quantity": round(usual, 3),
    }
    return _finish(state, ctx, final, error, vote.agreement, _emit(runtime, turns), stat, details)


def _finish(
    state: DecisionState,
    ctx: DecisionContext,
    decision: Decision | None,
    error: str | None,
    agreement: float | None,
    turns: list[TranscriptTurn],
    stat: NodeStat,
    details: dict[str, Any],
) -> Command[Literal["__end__"]]:
    transcript = [*state.get("transcript", []), *turns]
    stats = [*state.get("stats", []), stat]
    hidden = state.get("hidden")
    outcome = AgentOutcome(
        agent_id=_agent_id(state),
        ok=decision is not None,
        choice=decision.product_id if decision else None,
        quantity=float(decision.quantity) if decision else 0.0,
        error=error,
        agreement=agreement,
        transcript=transcript,
        llm_calls=sum(s.llm_calls for s in stats),
        prompt_tokens=sum(s.prompt_tokens for s in stats),
        completion_tokens=sum(s.completion_tokens for s in stats),
        details={
            "situation_id": state["situation"].situation_id,
            "mode": "choice-model" if ctx.uses_choice_model else ("single_agent" if ctx.single_agent else "debate"),
            "decision": decision.model_dump() if decision else None,
            "samples": [s.model_dump(mode="json") for s in state.get("samples", [])],
            "conflicts": list(state.get("conflicts", [])),
            "conflict_loops": state.get("loop", 0),
            "neighbours": len(state.get("neighbours", [])),
            "hidden_factors": hidden.model_dump() if hidden else None,
            "tokens_by_role": tokens_by_role(transcript),
            "bottlenecks": bottlenecks(stats),
            **details,
        },
    )
    return Command(
        goto=END,
        update={"decision": decision, "outcome": outcome, "transcript": turns, "stats": [stat]},
    )


def tokens_by_role(transcript: list[TranscriptTurn]) -> dict[str, dict[str, int]]:
    """Prompt and completion tokens per role (for the single-agent vs debate comparison)."""
    out: dict[str, dict[str, int]] = {}
    for t in transcript:
        if t.prompt_tokens or t.completion_tokens:
            row = out.setdefault(t.role, {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0})
            row["prompt_tokens"] += t.prompt_tokens
            row["completion_tokens"] += t.completion_tokens
            row["calls"] += 1
    return out


def bottlenecks(stats: list[NodeStat]) -> dict[str, Any]:
    """Per node totals and the nodes that caused latency, retries, conflicts or failures."""
    by_node: dict[str, dict[str, float]] = {}
    for s in stats:
        row = by_node.setdefault(s.node, {k: 0 for k in ("runs", "latency_s", "llm_calls", "prompt_tokens",
                                                         "retries", "conflicts", "failures")})
        row["runs"] += 1
        row["latency_s"] = round(row["latency_s"] + s.latency_s, 4)
        for key in ("llm_calls", "prompt_tokens", "retries", "conflicts", "failures"):
            row[key] += getattr(s, key)
    slowest = max(by_node, key=lambda n: by_node[n]["latency_s"]) if by_node else None
    return {
        "by_node": by_node,
        "slowest": slowest,
        "retries": {n: r["retries"] for n, r in by_node.items() if r["retries"]},
        "conflicts": {n: r["conflicts"] for n, r in by_node.items() if r["conflicts"]},
        "failures": {n: r["failures"] for n, r in by_node.items() if r["failures"]},
    }


__all__ = [
    "NONE_PRODUCT",
    "decide",
    "make_role_node",
    "reconstruct_hidden",
    "retrieve",
    "route_after_hidden",
    "route_after_persona",
    "single_agent",
    "stabilise",
]
