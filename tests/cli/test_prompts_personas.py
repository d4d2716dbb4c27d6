"""Persona sets on the command line: `malles prompts diff` and `hash` take persona files, and
`malles show`'s prompt-set table lists the persona set a run recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rich.console import Console

from malles_graph.cli.runs import prompt_set_table
from malles_graph.paths import personas_dir, prompts_dir
from malles_graph.prompt_sets import load_persona_set, load_prompt_set
from tests.cli.test_prompts_diff import run_cli

OLD, NEW = "Weekly big shop", "Monthly big shop"  # a word of family-of-four's description


def two_files(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "households.yaml", tmp_path / "mine.yaml"
    shutil.copy(personas_dir() / "retail_households.yaml", a)
    text = a.read_text(encoding="utf-8")
    assert OLD in text
    b.write_text(text.replace(OLD, NEW), encoding="utf-8")
    return a, b


def test_diff_of_two_persona_files_shows_the_changed_word(tmp_path: Path, capsys) -> None:
    a, b = two_files(tmp_path)
    code, out = run_cli(["prompts", "diff", str(a), str(b)], capsys)
    assert code == 1, out
    assert "1 file(s) differ: households.yaml" in out
    assert f"-    description: {OLD}" in out and f"+    description: {NEW}" in out
    assert load_persona_set(a).short in out and load_persona_set(b).short in out
    # a copy under another name is the same persona set (the file is keyed by its role, not its name)
    same = tmp_path / "copy.yaml"
    shutil.copy(a, same)
    code, out = run_cli(["prompts", "diff", str(a), str(same)], capsys)
    assert code == 0 and "identical persona sets" in out


def test_diff_refuses_a_folder_against_a_persona_file_and_bad_files(tmp_path: Path, capsys) -> None:
    a, _ = two_files(tmp_path)
    code, out = run_cli(["prompts", "diff", str(prompts_dir()), str(a)], capsys)
    assert code == 2 and "not one of each" in out
    code, out = run_cli(["prompts", "diff", str(a), str(tmp_path / "gone.yaml")], capsys)
    assert code == 2 and "gone.yaml: persona file not found" in out and len(out.strip().splitlines()) == 1
    broken = tmp_path / "broken.yaml"
    broken.write_text(a.read_text().replace("style: stock_upper", "style: no_such_preset"))
    code, out = run_cli(["prompts", "diff", str(a), str(broken)], capsys)
    assert code == 2 and "broken.yaml: personas.1.style: unknown style preset 'no_such_preset'" in out


def test_hash_of_a_persona_file_covers_the_presets_it_names(tmp_path: Path, capsys) -> None:
    code, out = run_cli(["prompts", "hash", "retail_households.yaml", "--json"], capsys)
    record = json.loads(out)
    assert code == 0 and record == load_persona_set("retail_households.yaml").record()
    assert set(record["files"]) == {"personas", "styles.yaml"}  # it names presets of personas/styles.yaml
    inline = tmp_path / "inline.yaml"
    inline.write_text("personas:\n  - {name: x, style: {brand_loyalty: 0.9}}\n")
    assert set(load_persona_set(inline).files) == {"personas"}  # no preset named: styles.yaml does not count


def test_show_lists_the_persona_set_next_to_the_prompt_set() -> None:
    record = load_prompt_set(None, "retail_households.yaml").record()
    console = Console(width=200, record=True)
    console.print(prompt_set_table(record))
    text = console.export_text()
    personas = load_persona_set("retail_households.yaml")
    assert f"persona set {personas.short}" in text and "retail_households.yaml" in text and "styles.yaml" in text
    assert personas.files["personas"][:12] in text and "decide.txt" in text
    plain = Console(width=200, record=True)
    plain.print(prompt_set_table(load_prompt_set().record()))
    assert "persona set" not in plain.export_text()  # a run without a persona file shows none
