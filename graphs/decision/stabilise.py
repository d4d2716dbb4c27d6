"""The stabilise node: vote over the samples, the conflict loop, rho and the calibrator, the outcome."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command
from malles_graph.graphs.decision.common import DecideTarget, agent_id_of, context_of, emit, sample_tasks
from malles_graph.graphs.decision.context import DecisionContext
from malles_graph.graphs.decision.state import DecisionState, NodeStat
from malles_graph.graphs.decision.views import (
    label_of,
    style_of,
)
from pydantic import ValidationError

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.models import NONE_PRODUCT, ChoiceSituation, Decision
from malles_graph.prompt_sets import PromptSet, load_prompt_set
from malles_graph.retail.hidden_factors import usual_quantity
from malles_graph.retail.stabilise import consistency_conflicts, majority_vote, style_quantity
from malles_graph.roles.agent import mean_probs


# ---------------------------------------------------------------- stabilise
def stabilise(state: DecisionState, runtime: Runtime[Any]) -> Command[Literal["decide", "single_agent", "__end__"]]:
    """Vote over the samples, check consistency (conflict loop), apply rho and the calibrator, build the outcome."""
    start = time.perf_counter()
    ctx = context_of(runtime)
    situation, hidden, agent_id = state["situation"], state.get("hidden"), agent_id_of(state)
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
            update={
                "loop": loop + 1,
                "feedback": feedback,
                "conflicts": conflicts,
                "transcript": emit(runtime, [turn]),
                "stats": [stat],
            },
        )

    style = style_of(situation)
    quantity = style_quantity(voted.quantity, style) if ctx.apply_style else voted.quantity
    styled = voted.model_copy(update={"quantity": quantity})
    probs = mean_probs([s.probs for s in current if s.decision is not None and s.probs]) or vote_shares(
        vote.votes, situation
    )
    calibrated_probs = calibrate_probs(ctx, situation, probs)
    if calibrated_probs and styled.product_id != NONE_PRODUCT:
        # the calibrated distribution decides the product (it can undo a position bias the vote kept)
        best = max(calibrated_probs, key=calibrated_probs.__getitem__)
        styled = styled.model_copy(update={"product_id": best, "confidence": round(calibrated_probs[best], 4)})
    calibrated = ctx.calibrator(styled, situation, hidden)
    error = None
    try:
        final: Decision | None = Decision.model_validate(calibrated.model_dump())
        problems = final.check_against(situation.candidate_ids, ctx.quantity_limit)
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
        + (
            f" -> rho quantity propensity {style.quantity_propensity:.2f} gives {quantity}"
            if quantity != vote.quantity
            else ""
        )
        + (f"; unresolved conflict: {'; '.join(conflicts)}" if conflicts else "")
    )
    turns = [TranscriptTurn(agent_id=agent_id, role="stabilise", text=text, kind="vote")]
    if error:
        turns.append(TranscriptTurn(agent_id=agent_id, role="system", text=error, kind="failure"))
    stat = NodeStat(
        node="stabilise",
        latency_s=time.perf_counter() - start,
        conflicts=len(conflicts),
        failures=int(error is not None),
    )
    details = {
        "votes": vote.votes,
        "failed_samples": failed,
        "voted": voted.model_dump(),
        "style_quantity": {"before": vote.quantity, "after": quantity, "applied": ctx.apply_style},
        "calibrated": final is not None and final != styled,
        "conflict_unresolved": bool(conflicts),
        "usual_quantity": round(usual, 3),
        "probs": probs,
        "calibrated_probs": calibrated_probs,
    }
    return _finish(state, ctx, final, error, vote.agreement, emit(runtime, turns), stat, details)


def vote_shares(votes: dict[str, int], situation: ChoiceSituation) -> dict[str, float] | None:
    """The vote as a distribution over the candidates (None when every sample chose 'none')."""
    on_shelf = {pid: votes.get(pid, 0) for pid in situation.candidate_ids}
    total = sum(on_shelf.values())
    return {pid: round(n / total, 6) for pid, n in on_shelf.items()} if total else None


def calibrate_probs(
    ctx: DecisionContext, situation: ChoiceSituation, probs: dict[str, float] | None
) -> dict[str, float] | None:
    """The fitted calibration's map of the choice distribution (None without a probability map)."""
    transform = getattr(ctx.calibrator, "calibrate_probs", None)
    prob_map = getattr(ctx.calibrator, "probability", None)
    if transform is None or not probs or getattr(prob_map, "method", "none") == "none":
        return None
    ids = situation.candidate_ids
    utility = None
    if getattr(prob_map, "use_utility", False):  # stacked on the choice model's utilities
        from malles_graph.alignment.apply import utilities_of

        utility = utilities_of(ctx.model(), [situation])[0]
    out = transform(np.array([probs.get(pid, 0.0) for pid in ids]), utility)
    return {pid: round(float(p), 6) for pid, p in zip(ids, out, strict=True)}


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
        agent_id=agent_id_of(state),
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
            # the prompts behind an LLM decision (the choice model reads none)
            **({} if ctx.uses_choice_model else set_digests(prompt_set_of(ctx))),
            "tokens_by_role": tokens_by_role(transcript),
            "bottlenecks": bottlenecks(stats),
            **details,
        },
    )
    return Command(
        goto=END,
        update={"decision": decision, "outcome": outcome, "transcript": turns, "stats": [stat]},
    )


# The set is kept with the context's templates, loaded once per context like them (so a run records the
# files as they were when its first decision read them); the key cannot be a prompt's name (an identifier).
_PROMPT_SET = "*prompt_set"


def prompt_set_of(ctx: DecisionContext) -> PromptSet:
    """The prompt set of ``ctx``'s folder (``prompts_dir``; $MALLES_PROMPTS, else the bundled prompts), with
    the persona set of ``personas_file`` when the situations' personas come from one."""
    templates = ctx.prompt_templates
    if _PROMPT_SET not in templates:
        templates[_PROMPT_SET] = load_prompt_set(ctx.prompts_dir, ctx.personas_file)
    return templates[_PROMPT_SET]


def with_prompt_set(ctx: DecisionContext, prompt_set: PromptSet, templates: dict[str, Any]) -> DecisionContext:
    """``ctx`` answering with ``templates`` (parsed from ``prompt_set``'s texts, unsaved buffers included) and
    recording ``prompt_set``'s digest: the digest of what was asked, not of the folder as saved on disk."""
    personas = prompt_set.personas
    return replace(
        ctx,
        prompts_dir=str(prompt_set.folder),
        prompt_templates={**templates, _PROMPT_SET: prompt_set},
        personas_file=str(personas.file) if personas else None,
    )


def set_digests(prompt_set: PromptSet) -> dict[str, str]:
    """A decision's record of its prompts (``prompt_set``) and personas (``persona_set``, when read from a file)."""
    personas = {"persona_set": prompt_set.personas.digest} if prompt_set.personas is not None else {}
    return {"prompt_set": prompt_set.digest, **personas}


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
        row = by_node.setdefault(
            s.node,
            {k: 0 for k in ("runs", "latency_s", "llm_calls", "prompt_tokens", "retries", "conflicts", "failures")},
        )
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
