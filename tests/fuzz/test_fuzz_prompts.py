"""Fuzz: a prompt template is rejected with one clean PromptError, or it renders (issue 16)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from malles_graph.errors import PromptError
from malles_graph.prompts import PromptSpec, parse_prompt
from tests.fuzz.oracle import assert_clean_error
from tests.fuzz.strategies import scratch_folder

pytestmark = pytest.mark.fuzz
FOLDER = scratch_folder()
# The placeholder rules, not one role's required variables, are under test: a spec that requires nothing.
SPEC = PromptSpec.of("customer round")
PIECES = [
    "{",
    "}",
    "{{",
    "}}",
    "!",
    ":",
    "%",
    ">",
    "<",
    "^",
    "=",
    "0",
    "9",
    "999999999",
    "d",
    "s",
    "r",
    "x",
    ".",
    "[",
    "]",
    "{customer}",
    "{customer",
    "customer}",
    "{round}",
    "{bogus}",
    "{0}",
    "{}",
    "{customer!r}",
    "{customer:>5}",
    "{customer:{round}}",
    "{customer.attr}",
    "{customer[0]}",
    " ",
    "\n",
    "é",
    "\x00",
]
templates = st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=15).map("".join)


@given(text=templates)
def test_prompt_templates(text: str) -> None:
    path = FOLDER / "persona.txt"
    try:
        template = parse_prompt("persona", text, path, SPEC)
    except PromptError as exc:
        assert_clean_error(exc, str(path))
        return
    values = {name: f"<{name}>" for name in SPEC.variables}
    template.render(**values)  # what passed the check renders: any exception here fails the test
