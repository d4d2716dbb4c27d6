"""The wholesale roles read the scenario's prompt folder (issue 19)."""

from __future__ import annotations

import shutil
from pathlib import Path

from malles_graph.paths import prompts_dir
from malles_graph.scenario import parse_scenario
from tests.fakes import ScriptedChatModel


def marked_copy(tmp_path: Path, *names: str) -> Path:
    """A copy of the bundled prompts where each named prompt opens with a marker line."""
    folder = tmp_path / "prompts"
    shutil.copytree(prompts_dir(), folder, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    for name in names:
        path = folder / f"{name}.txt"
        path.write_text(f"MARKER-{name}\n" + path.read_text())
    return folder


def test_wholesale_roles_read_the_scenario_prompt_folder(tmp_path: Path, items) -> None:
    from malles_graph.graphs.wholesale import run_wholesale

    folder = marked_copy(tmp_path, "marketing", "manufacturer", "wholesaler", "purchasing_rule")
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
