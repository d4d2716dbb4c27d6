"""Bundled prompts, personas and scenarios are read from the package; a user's folder replaces them whole.

Bad input: an override folder that does not exist is an error (not an empty set), and a user prompt folder
that lacks a file fails naming that file (never a silent fallback to the bundled copy).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from malles_graph.errors import MallesError, PromptError, ScenarioError
from malles_graph.paths import bundled, personas_dir, prompts_dir, scenario_file, scenarios_dir
from malles_graph.prompts import PROMPT_SPECS, check_prompts, load_prompt
from malles_graph.retail.personas import load_personas
from malles_graph.scenario import load_scenario

MALLES = Path(sys.executable).with_name("malles")


def malles(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("MALLES_PROMPTS", "MALLES_PERSONAS")}
    return subprocess.run(
        [str(MALLES), *args],
        cwd=cwd,
        env={**clean, "COLUMNS": "400", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(autouse=True)
def no_user_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLES_PROMPTS", raising=False)
    monkeypatch.delenv("MALLES_PERSONAS", raising=False)


def test_bundled_folders_are_the_package_assets() -> None:
    import malles_graph.assets.personas
    import malles_graph.assets.prompts
    import malles_graph.assets.scenarios

    for kind, module in [
        ("prompts", malles_graph.assets.prompts),
        ("personas", malles_graph.assets.personas),
        ("scenarios", malles_graph.assets.scenarios),
    ]:
        assert bundled(kind) == Path(module.__file__).parent
    assert prompts_dir() == bundled("prompts") and personas_dir() == bundled("personas")
    assert scenarios_dir() == bundled("scenarios")
    assert {p.stem for p in prompts_dir().glob("*.txt")} >= set(PROMPT_SPECS)
    assert (personas_dir() / "styles.yaml").is_file() and (scenarios_dir() / "demo.yaml").is_file()


def test_user_prompt_folder_replaces_the_bundled_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(prompts_dir(), tmp_path / "mine")
    (tmp_path / "mine" / "voter.txt").write_text("My own voter: {persona} {platforms} {letters}", encoding="utf-8")
    monkeypatch.setenv("MALLES_PROMPTS", str(tmp_path / "mine"))
    assert prompts_dir() == tmp_path / "mine"
    assert load_prompt("voter").text.startswith("My own voter")


def test_user_prompt_folder_missing_a_file_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(prompts_dir(), tmp_path / "mine")
    (tmp_path / "mine" / "persona.txt").unlink()
    monkeypatch.setenv("MALLES_PROMPTS", str(tmp_path / "mine"))
    with pytest.raises(PromptError, match=rf"^{tmp_path / 'mine' / 'persona.txt'}: prompt file not found$"):
        load_prompt("persona")
    results = check_prompts()
    assert [name for name, error in results.items() if error] == ["persona"]


def test_missing_override_folder_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLES_PROMPTS", str(tmp_path / "nope"))
    with pytest.raises(MallesError, match=r"MALLES_PROMPTS=.*nope: no such folder of prompts"):
        prompts_dir()
    monkeypatch.setenv("MALLES_PERSONAS", str(tmp_path / "gone"))
    with pytest.raises(MallesError, match=r"MALLES_PERSONAS=.*gone: no such folder of personas"):
        load_personas("retail_households.yaml")
    with pytest.raises(PromptError, match=r"nothere: no such prompt folder"):
        load_prompt("persona", tmp_path / "nothere")


def test_cli_missing_override_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    done = malles("prompts", "check", cwd=tmp_path, env={"MALLES_PROMPTS": str(tmp_path / "nope")})
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == f"error: MALLES_PROMPTS={tmp_path / 'nope'}: no such folder of prompts"
    done = malles("prompts", "check", "--dir", str(tmp_path / "nodir"), cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip() == f"error: {tmp_path / 'nodir'}: no such prompt folder"


def test_cli_user_prompt_folder_missing_a_file(tmp_path: Path) -> None:
    shutil.copytree(prompts_dir(), tmp_path / "mine")
    (tmp_path / "mine" / "decide.txt").unlink()
    done = malles("prompts", "check", cwd=tmp_path, env={"MALLES_PROMPTS": str(tmp_path / "mine")})
    assert done.returncode == 1
    assert f"{tmp_path / 'mine' / 'decide.txt'}: prompt file not found" in done.stdout
    assert f"1 of {len(PROMPT_SPECS)} prompt(s) invalid" in done.stdout


def test_bundled_scenario_by_bare_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert scenario_file("demo.yaml") == scenarios_dir() / "demo.yaml" == scenario_file("demo")
    assert load_scenario("economist-best-response").kind == "economist"
    # a file of that name in the current folder wins; a path with a folder part is never redirected
    (tmp_path / "demo.yaml").write_text("name: mine\nkind: retail\n", encoding="utf-8")
    assert scenario_file("demo.yaml") == Path("demo.yaml")
    with pytest.raises(ScenarioError, match=r"^elsewhere/demo.yaml: scenario file not found; bundled scenarios"):
        scenario_file("elsewhere/demo.yaml")
    with pytest.raises(ScenarioError, match=r"^nope.yaml: scenario file not found; .*demo.yaml"):
        load_scenario("nope.yaml")


def test_user_persona_folder_missing_a_file_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine").mkdir()
    shutil.copy(personas_dir() / "styles.yaml", tmp_path / "mine" / "styles.yaml")
    monkeypatch.setenv("MALLES_PERSONAS", str(tmp_path / "mine"))
    assert personas_dir() == tmp_path / "mine"
    with pytest.raises(MallesError, match=rf"^{tmp_path / 'mine' / 'retail_households.yaml'}: .*not found"):
        load_personas("retail_households.yaml")
