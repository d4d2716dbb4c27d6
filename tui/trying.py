"""'Try it': one decision with an unsaved prompt, before anything is saved.

The edited text goes into a temporary copy of the prompt folder, and the decision graph
runs once on the sample customer with ``prompts_dir`` pointing at that copy; the real
prompt files are not touched. The transcript streams back turn by turn.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.errors import MallesError
from malles_graph.paths import prompts_dir
from malles_graph.scenario import Scenario

DECISION_PROMPTS = ("product_specialist", "price_analyst", "persona", "decide", "single_agent")


def try_prompt(
    name: str,
    text: str,
    *,
    on_turn: Callable[[TranscriptTurn], None],
    chat_model_factory: Callable[[Any], Any] | None = None,
    scenario: Scenario | None = None,
    real_sample: bool = True,
) -> AgentOutcome:
    """Run one decision of the sample customer with ``text`` as prompt ``name``; returns its outcome."""
    from malles_graph.graphs.decision import context_for_scenario, stream_decision
    from malles_graph.tui.samples import sample_situation

    from malles_graph.backends import build_client, is_llm_backend

    if name not in DECISION_PROMPTS:
        raise MallesError(f"'try it' runs customer decisions; {name!r} is not a decision prompt ({DECISION_PROMPTS})")
    base = scenario or Scenario.model_validate({"name": "try-it", "decision": {"debate_rounds": 1}})
    if not is_llm_backend(base.backend.name):
        raise MallesError(
            f"backend {base.backend.name!r} does not use prompts; pick a scenario with an LLM backend on the Run screen"
        )
    # No retrieval (the sample customer has no memory to search); the single-agent prompt runs alone.
    updates: dict[str, Any] = {"retrieval": False}
    if name == "single_agent":
        updates["single_agent"] = True
    chat_model = chat_model_factory(scenario) if chat_model_factory is not None else None
    client = build_client(base.backend, chat_model=chat_model, use_cache=False)
    situation = sample_situation(real_sample)
    with tempfile.TemporaryDirectory(prefix="malles-try-") as tmp:
        folder = Path(tmp) / "prompts"
        shutil.copytree(Path(base.prompts) if base.prompts else prompts_dir(), folder)
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
        # the copy is the run's prompt set: its check sees the edit, not the saved (maybe broken) file
        tried = base.model_copy(
            update={"prompts": str(folder), "decision": base.decision.model_copy(update=updates)}
        )
        ctx, _ = context_for_scenario(tried, client)
        outcome: AgentOutcome | None = None
        for item in stream_decision(situation, ctx, agent_id=f"try-{name}"):
            if isinstance(item, TranscriptTurn):
                on_turn(item)
            else:
                outcome = item.outcome
    if outcome is None:
        raise MallesError("the decision graph ended without an outcome")
    return outcome
