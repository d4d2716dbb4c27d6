from pathlib import Path

import pytest

from malles_graph.errors import PromptError
from malles_graph.prompts import PROMPT_SPECS, PromptSpec, check_prompts, load_prompt, parse_prompt

SPEC = PromptSpec.of("customer candidates transcript", "candidates")


def write(tmp_path: Path, text: str, name: str = "role") -> Path:
    (tmp_path / f"{name}.txt").write_text(text)
    return tmp_path


def test_valid_prompt_renders(tmp_path: Path) -> None:
    prompt = load_prompt("role", write(tmp_path, "You are {customer}. Offer: {candidates}. JSON: {{}}"), SPEC)
    assert prompt.fields == {"customer", "candidates"}
    assert prompt.render(customer="Ann", candidates="A, B", transcript="") == "You are Ann. Offer: A, B. JSON: {}"


def test_unknown_variable_names_file_and_variable(tmp_path: Path) -> None:
    write(tmp_path, "Offer {candidates} to {custmer}")
    with pytest.raises(PromptError, match=r"role.txt: unknown variable\(s\) \['custmer'\]"):
        load_prompt("role", tmp_path, SPEC)


def test_missing_required_variable(tmp_path: Path) -> None:
    write(tmp_path, "Hello {customer}")
    with pytest.raises(PromptError, match=r"role.txt: missing required variable\(s\) \['candidates'\]"):
        load_prompt("role", tmp_path, SPEC)


@pytest.mark.parametrize("text", ["{candidates} {", "{candidates} {a.b}", "{candidates} {0}"])
def test_malformed_placeholders(tmp_path: Path, text: str) -> None:
    with pytest.raises(PromptError, match="role.txt"):
        load_prompt("role", write(tmp_path, text), SPEC)


def test_missing_file_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="prompt file not found"):
        load_prompt("role", tmp_path, SPEC)
    with pytest.raises(PromptError, match="no prompt named 'nope'"):
        parse_prompt("nope", "x", tmp_path / "nope.txt")


def test_render_requires_every_used_variable(tmp_path: Path) -> None:
    prompt = load_prompt("role", write(tmp_path, "{customer} {candidates}"), SPEC)
    with pytest.raises(PromptError, match="no value given"):
        prompt.render(customer="x")


def test_shipped_prompts_are_valid() -> None:
    results = check_prompts()
    assert set(results) == set(PROMPT_SPECS)
    assert {name: error for name, error in results.items() if error} == {}
