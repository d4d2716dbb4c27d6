"""The economist's LLM roles read the scenario's prompt folder (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

from malles_graph.graphs.run import run_scenario

from malles_graph.backends import build_client
from malles_graph.prompt_sets import load_prompt_set
from malles_graph.scenario import parse_scenario
from tests.fakes import ScriptedChatModel
from tests.prompt_copies import prompt_copy


def test_economist_roles_read_the_scenario_prompt_folder(tmp_path: Path) -> None:
    folder = prompt_copy(tmp_path / "prompts", "worker", "planner")

    def answer(messages) -> str:
        text = str(messages[0].content)
        return json.dumps({f"bracket_{k + 1}": 20 for k in range(7)}) if "MARKER-planner" in text else '{"hours": 30}'

    model = ScriptedChatModel(responder=answer)
    sc = parse_scenario({
        "name": "econ-prompts", "kind": "economist", "seed": 0, "prompts": str(folder),
        "backend": {"name": "local", "cache": False, "max_retries": 0},
        "economist": {"n_workers": 2, "steps": 2, "planner_every": 1, "stackelberg_check": False},
        "store": {"url": f"sqlite:///{tmp_path / 'store.sqlite'}"},
    })
    summary = run_scenario(sc, client=build_client(sc.backend, chat_model=model))
    firsts = [str(call[0].content) for call in model.calls]
    assert summary.status == "finished" and summary.prompt_set["digest"] == load_prompt_set(folder).digest
    assert sum("MARKER-worker" in t for t in firsts) == 4 and sum("MARKER-planner" in t for t in firsts) == 1
