"""Helpers the decision nodes share: the resolved context, event emission, the prompt cache, the Sends."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Send
from malles_graph.graphs.decision.context import DecisionContext, resolve_context
from malles_graph.graphs.decision.state import DecisionState, SampleTask

from malles_graph.agents import TranscriptTurn
from malles_graph.events import TurnStreamed
from malles_graph.prompts import PromptTemplate, load_prompt

DecideTarget = Literal["decide", "single_agent"]


# ---------------------------------------------------------------- helpers
def context_of(runtime: Runtime[Any]) -> DecisionContext:
    return resolve_context(runtime.context)


def emit(runtime: Runtime[Any], turns: list[TranscriptTurn]) -> list[TranscriptTurn]:
    """Stream each turn as a typed run event while the node runs (the one event stream of every graph)."""
    for turn in turns:
        runtime.stream_writer(TurnStreamed(turn=turn))
    return turns


def prompt(name: str, ctx: DecisionContext) -> PromptTemplate:
    """Loaded once per context (so a run reads the files as they were when it started, and an edited
    prompt takes effect in the next run); files are checked against PROMPT_SPECS when loaded."""
    templates = ctx.prompt_templates
    if name not in templates:
        from pathlib import Path

        templates[name] = load_prompt(name, Path(ctx.prompts_dir) if ctx.prompts_dir else None)
    return templates[name]



def agent_id_of(state: DecisionState | SampleTask) -> str:
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
                agent_id=agent_id_of(state),
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


def first_draw(state: DecisionState, target: DecideTarget, ctx: DecisionContext) -> DecideTarget | list[Send]:
    """The first draw: a plain edge for one sample (cheaper), one Send per sample otherwise."""
    return target if ctx.samples == 1 else sample_tasks(state, target, ctx, 0, "")
