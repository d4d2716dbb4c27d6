"""The decide and single_agent nodes: one structured decision per sample (bounded repair, else a recorded failure)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.runtime import Runtime
from malles_graph.graphs.decision.answer import DecisionAnswer, answer_problems, answer_schema, to_decision
from malles_graph.graphs.decision.common import DecideTarget, agent_id_of, context_of, emit, prompt, sample_seed
from malles_graph.graphs.decision.context import DecisionContext
from malles_graph.graphs.decision.nodes import hidden_for
from malles_graph.graphs.decision.state import DecisionState, NodeStat, Sample, SampleTask
from malles_graph.graphs.decision.views import label_of, role_vars, rotated
from pydantic import ValidationError

from malles_graph.agents import TranscriptTurn
from malles_graph.errors import BackendError
from malles_graph.models import ChoiceSituation, Decision, HiddenFactors
from malles_graph.retail.retrieval_api import RetrievedRecord
from malles_graph.roles.agent import computed_decision


# ---------------------------------------------------------------- decide / single_agent
def as_task(state: SampleTask | DecisionState) -> SampleTask:
    """A Send carries a SampleTask; a plain edge (one sample, first draw) hands over the state."""
    if "index" in state:
        return state  # type: ignore[return-value]
    return SampleTask(
        agent_id=agent_id_of(state),
        situation=state["situation"],
        neighbours=state.get("neighbours", []),
        hidden=state.get("hidden"),
        transcript=state.get("transcript", []),
        feedback="",
        loop=0,
        index=0,
    )


def _draw(task: SampleTask, runtime: Runtime[Any], role: DecideTarget) -> dict[str, Any]:
    start = time.perf_counter()
    task = as_task(task)
    ctx = context_of(runtime)
    situation, agent_id, loop, index = task["situation"], agent_id_of(task), task["loop"], task["index"]
    seed = sample_seed(ctx, loop, index)
    turns: list[TranscriptTurn] = []
    if ctx.uses_choice_model:
        rng = np.random.default_rng(seed) if ctx.samples > 1 else None
        raw, probs = computed_decision(
            ctx.model(), situation, task["neighbours"], task["hidden"], ctx.roles, index, rng
        )
        try:
            decision: Decision | None = Decision.model_validate(raw.model_dump())
            problems = decision.check_against(situation.candidate_ids, ctx.quantity_limit)
        except ValidationError as exc:
            decision, problems = None, [str(exc)]
        error = "; ".join(problems) or None
        sample = Sample(
            index=index, loop=loop, decision=None if error else decision, error=error, attempts=1, probs=probs
        )
        text = error or f"{label_of(situation)[decision.product_id]} x{decision.quantity}: {decision.rationale}"
        turns.append(
            TranscriptTurn(
                agent_id=agent_id, role=role, round=index, text=text, kind="failure" if error else "computed"
            )
        )
        stat = NodeStat(node=role, latency_s=time.perf_counter() - start, failures=int(error is not None))
        return {"samples": [sample], "transcript": emit(runtime, turns), "stats": [stat]}

    shown = rotated(situation, index) if ctx.shuffle else situation
    messages = decide_messages(
        role, ctx, shown, task["neighbours"], task["hidden"], task["transcript"], task["feedback"]
    )
    try:
        result = ctx.llm().structured(
            messages,
            DecisionAnswer,
            validator=lambda a: answer_problems(a, shown, ctx.max_quantity),
            max_retries=ctx.max_repairs,
            temperature=ctx.temperature,
            seed=seed,
            max_tokens=ctx.decide_max_tokens,
            json_schema=answer_schema(shown, ctx.max_quantity, ctx.rationale_chars),
        )
    except BackendError as exc:  # the backend failed (timeout, server error): a recorded failed sample
        turn = TranscriptTurn(agent_id=agent_id, role=role, round=index, text=str(exc), kind="failure")
        stat = NodeStat(node=role, latency_s=time.perf_counter() - start, llm_calls=1, failures=1)
        sample = Sample(index=index, loop=loop, error=str(exc), attempts=1)
        return {"samples": [sample], "transcript": emit(runtime, [turn]), "stats": [stat]}
    # every attempt is a turn: invalid ones as retries (their error is what was fed back)
    for n, attempt in enumerate(result.attempts):
        last = n == len(result.attempts) - 1
        kind = "decision" if attempt.error is None else ("failure" if last else "retry")
        text = (
            attempt.text.strip()
            if attempt.error is None
            else f"{attempt.text.strip()[:200]} -> invalid: {attempt.error}"
        )
        turns.append(
            TranscriptTurn(
                agent_id=agent_id,
                role=role,
                round=index,
                text=text,
                kind=kind,
                prompt_tokens=attempt.prompt_tokens,
                cached_prompt_tokens=attempt.cached_prompt_tokens,
                completion_tokens=attempt.completion_tokens,
                cached=attempt.cached,
            )
        )
    if result.ok:
        sample = Sample(
            index=index,
            loop=loop,
            decision=to_decision(result.value, shown, ctx.rationale_chars),
            attempts=len(result.attempts),
        )
    else:
        sample = Sample(index=index, loop=loop, error=result.error, attempts=len(result.attempts))
    stat = NodeStat(
        node=role,
        latency_s=time.perf_counter() - start,
        llm_calls=len(result.attempts),
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        retries=result.retries,
        failures=int(not result.ok),
    )
    return {"samples": [sample], "transcript": emit(runtime, turns), "stats": [stat]}


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
        situation,
        neighbours,
        hidden,
        transcript,
        apply_style=ctx.apply_style,
        transcript_chars=ctx.transcript_chars,
        feedback=feedback,
        max_quantity=ctx.max_quantity,
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
