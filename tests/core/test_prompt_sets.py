"""Prompt sets (issue 19): a folder identified by the hash of its files, checked whole before a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from malles_graph.errors import PromptError
from malles_graph.prompt_sets import checked_prompt_set, diff_sets, load_prompt_set
from tests.prompt_copies import prompt_copy


def copy(tmp_path: Path, name: str = "mine") -> Path:
    return prompt_copy(tmp_path / name)


def test_digest_follows_content_not_place(tmp_path: Path) -> None:
    bundled = load_prompt_set()
    mine = load_prompt_set(copy(tmp_path))
    assert mine.digest == bundled.digest and mine.files == bundled.files and len(mine.digest) == 64
    record = mine.record()
    assert record["digest"] == mine.digest and record["folder"] == str(tmp_path / "mine")
    assert record["files"]["decide"] == bundled.files["decide"]


def test_one_word_changes_the_set_digest_and_only_that_files_digest(tmp_path: Path) -> None:
    a, b = copy(tmp_path, "a"), copy(tmp_path, "b")
    decide = b / "decide.txt"
    decide.write_text(decide.read_text().replace("Decide for the shopper", "Decide for the customer", 1))
    first, second = load_prompt_set(a), load_prompt_set(b)
    assert first.digest != second.digest
    assert {n for n in first.files if first.files[n] != second.files[n]} == {"decide"}
    diff = diff_sets(first, second)
    assert f"--- {a / 'decide.txt'}" in diff and "-Decide for the shopper" in diff and "+Decide for the customer" in diff
    assert diff_sets(first, load_prompt_set(a)) == ""


def test_checked_set_names_the_folder_and_the_file(tmp_path: Path) -> None:
    folder = copy(tmp_path)
    assert checked_prompt_set(folder).digest == load_prompt_set(folder).digest
    (folder / "worker.txt").unlink()
    with pytest.raises(PromptError, match=r"prompt set .*mine: .*mine/worker\.txt: prompt file not found"):
        checked_prompt_set(folder)
    (folder / "voter.txt").write_text("Vote {nonsense}")
    with pytest.raises(PromptError) as info:
        checked_prompt_set(folder)
    message = str(info.value)
    assert "\n" not in message and "and 1 more" in message and "malles prompts check --dir" in message
    with pytest.raises(PromptError, match="no such prompt folder"):
        checked_prompt_set(tmp_path / "missing")
