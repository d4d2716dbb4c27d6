"""`malles prompts diff` and `hash`, and the done-when check of issue 19: one changed word of decide.txt
changes the prompt hash recorded with new decisions and runs, and `malles prompts diff` shows that word."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from malles_graph.graphs.run import run_scenario

from malles_graph.backends import build_client
from malles_graph.cli import app
from malles_graph.cli.errors import run_app
from malles_graph.errors import PromptError
from malles_graph.paths import prompts_dir
from malles_graph.prompt_sets import load_prompt_set
from malles_graph.scenario import BackendConfig
from malles_graph.store import make_engine
from malles_graph.store.repository import load_decisions
from tests.fakes import ScriptedChatModel
from tests.population.responders import decision_responder
from tests.population.test_runner import small
from tests.prompt_copies import prompt_copy

WORD, NEW_WORD = "shopper", "patron"  # decide.txt says "Decide for the shopper {customer}."


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        run_app(app, args)
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out + captured.err


def two_sets(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        prompt_copy(folder)
    decide = b / "decide.txt"
    text = decide.read_text()
    assert f"Decide for the {WORD} " in text
    decide.write_text(text.replace(f"Decide for the {WORD} ", f"Decide for the {NEW_WORD} ", 1))
    return a, b


def test_one_changed_word_changes_the_recorded_hash_and_diff_shows_it(tmp_path: Path, capsys) -> None:
    a, b = two_sets(tmp_path)
    recorded, shown = {}, {}
    for folder in (a, b):
        model = ScriptedChatModel(responder=decision_responder)
        client = build_client(BackendConfig(name="local", cache=False, max_concurrency=2), chat_model=model)
        scenario = small(
            tmp_path / folder.name,
            prompts=str(folder),
            population={"n_customers": 50, "archetypes": 1},
            mean_field={"max_rounds": 1},
            decision={"debate_rounds": 0},
        )
        summary = run_scenario(scenario, client=client)
        assert summary.status == "finished" and summary.decisions == 1
        decide_prompts = [str(m[0].content) for m in model.calls if "Decide for the" in str(m[0].content)]
        assert decide_prompts and all(
            f"Decide for the {folder is b and NEW_WORD or WORD} " in p for p in decide_prompts
        )
        rows = load_decisions(make_engine(scenario.store.url), summary.run_id)
        digests = {json.loads(r.details_json)["prompt_set"] for r in rows}
        assert summary.prompt_set["digest"] in digests and len(digests) == 1  # run and decisions agree
        assert summary.prompt_set["folder"] == str(folder) and summary.prompt_set["files"]["decide"]
        recorded[folder.name] = summary.prompt_set
        shown[folder.name] = (summary.run_id, scenario.store.url)
    assert recorded["a"]["digest"] == load_prompt_set(a).digest == load_prompt_set().digest
    assert recorded["b"]["digest"] == load_prompt_set(b).digest != recorded["a"]["digest"]
    changed = {n for n in recorded["a"]["files"] if recorded["a"]["files"][n] != recorded["b"]["files"][n]}
    assert changed == {"decide"}

    code, out = run_cli(["prompts", "diff", str(a), str(b)], capsys)
    assert code == 1
    assert f"A {recorded['a']['digest'][:12]}" in out and f"B {recorded['b']['digest'][:12]}" in out
    assert "1 file(s) differ: decide.txt" in out
    assert f"-Decide for the {WORD} " in out and f"+Decide for the {NEW_WORD} " in out

    # `malles show` prints the run's prompt set (short digest, folder, files); --json carries all of it
    run_id, url = shown["b"]
    code, out = run_cli(["show", run_id, "--store", url], capsys)
    assert code == 0 and f"prompt set {recorded['b']['digest'][:12]}" in out and str(b) in out
    assert "decide.txt" in out and recorded["b"]["files"]["decide"][:12] in out
    code, out = run_cli(["show", run_id, "--store", url, "--json"], capsys)
    assert code == 0 and json.loads(out)["prompt_set"] == recorded["b"]


def test_a_bad_prompt_folder_stops_the_run_before_any_llm_call(tmp_path: Path) -> None:
    a, _ = two_sets(tmp_path)
    (a / "decide.txt").write_text("Decide for {nobody}.")
    model = ScriptedChatModel(responder=decision_responder)
    client = build_client(BackendConfig(name="local", cache=False), chat_model=model)
    scenario = small(tmp_path, prompts=str(a), mean_field={"max_rounds": 1})
    with pytest.raises(PromptError, match=rf"prompt set {a}: {a / 'decide.txt'}: unknown variable"):
        run_scenario(scenario, client=client)
    with pytest.raises(PromptError, match="no such prompt folder"):
        run_scenario(small(tmp_path, prompts=str(tmp_path / "gone")), client=client)
    assert model.calls == []


def test_diff_identical_and_bad_input(tmp_path: Path, capsys) -> None:
    a, _ = two_sets(tmp_path)
    code, out = run_cli(["prompts", "diff", str(a), str(prompts_dir())], capsys)
    assert code == 0 and "identical prompt sets" in out
    code, out = run_cli(["prompts", "diff", str(a), str(tmp_path / "missing")], capsys)
    assert code == 2 and "no such prompt folder" in out and len(out.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    code, out = run_cli(["prompts", "diff", str(tmp_path / "empty"), str(a)], capsys)
    assert code == 2 and "no prompt files" in out


def test_hash_prints_the_set_and_file_digests(tmp_path: Path, capsys) -> None:
    a, b = two_sets(tmp_path)
    code, out = run_cli(["prompts", "hash", str(b), "--json"], capsys)
    assert code == 0 and json.loads(out) == load_prompt_set(b).record()
    code, out = run_cli(["prompts", "hash", str(a)], capsys)
    expected = load_prompt_set(a)
    assert code == 0 and f"digest {expected.digest}" in out and expected.files["decide"] in out
