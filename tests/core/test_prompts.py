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


@pytest.mark.parametrize(
    ("placeholder", "expected"),
    [
        ("{customer:{bogus}}", "a placeholder inside a format spec"),
        ("{customer:%%%}", "cannot be rendered with a text value"),
        ("{customer!x}", "unknown conversion !x"),
        ("{customer:d}", "cannot be rendered with a text value"),
        ("{customer:>999999999}", "width or precision above 1000"),
    ],
)
def test_placeholders_that_would_fail_at_render_are_rejected(tmp_path: Path, placeholder: str, expected: str) -> None:
    with pytest.raises(PromptError, match="persona.txt: placeholder") as info:
        parse_prompt("persona", f"You are {placeholder}.", tmp_path / "persona.txt", PromptSpec.of("customer"))
    assert expected in str(info.value)


def test_every_accepted_placeholder_renders(tmp_path: Path) -> None:
    spec = PromptSpec.of("customer round")
    template = parse_prompt("persona", "You are {customer!r:>12} and {round:<3}|", tmp_path / "persona.txt", spec)
    assert template.render(customer="c1", round=2) == "You are         'c1' and 2  |"


@pytest.mark.parametrize("kind", ["binary", "latin-1", "folder"])
def test_unreadable_prompt_file_names_the_file(tmp_path: Path, kind: str) -> None:
    import shutil

    from malles_graph.paths import prompts_dir

    folder = tmp_path / "prompts"
    shutil.copytree(prompts_dir(), folder, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    target = folder / "persona.txt"
    target.unlink()
    if kind == "binary":
        target.write_bytes(b"\x00\x01\xff\xfe" * 10)
    elif kind == "latin-1":
        target.write_bytes("Vous \xeates {customer}.".encode("latin-1"))
    else:
        target.mkdir()
    results = check_prompts(folder)
    assert str(target) in results["persona"]
    assert {"binary": "not UTF-8", "latin-1": "not UTF-8", "folder": "is a folder"}[kind] in results["persona"]
    assert all(error is None for name, error in results.items() if name != "persona")
