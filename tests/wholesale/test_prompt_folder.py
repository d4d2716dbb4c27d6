"""The wholesale roles read the scenario's prompt folder (issue 19)."""

from __future__ import annotations

from pathlib import Path

from malles_graph.scenario import parse_scenario
from tests.fakes import ScriptedChatModel
from tests.prompt_copies import prompt_copy


def test_wholesale_roles_read_the_scenario_prompt_folder(tmp_path: Path, items) -> None:
    from malles_graph.graphs.wholesale import run_wholesale

    folder = prompt_copy(tmp_path / "prompts", "marketing", "manufacturer", "wholesaler", "purchasing_rule")
    model = ScriptedChatModel(responder=lambda messages: "demand looks steady")
    sc = parse_scenario({
        "name": "wholesale-prompts", "kind": "wholesale", "seed": 1, "prompts": str(folder),
        "backend": {"name": "local", "cache": False},
        "wholesale": {"periods": 4, "dialogue_rounds": 1, "max_repairs": 0},
    })
    run_wholesale(sc, chat_model=model, items=items[:1], store_url=f"sqlite:///{tmp_path / 'store.sqlite'}")
    firsts = [str(call[0].content) for call in model.calls]
    for role in ("marketing", "manufacturer", "wholesaler", "purchasing_rule"):
        assert sum(f"MARKER-{role}" in t for t in firsts) == 1, role
