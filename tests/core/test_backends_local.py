"""The `local` backend for real: llama.cpp (xllamacpp) serving the bundled SmolLM2 GGUF."""

from typing import Literal

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from malles_graph.backends import build_client
from malles_graph.scenario import BackendConfig

pytestmark = pytest.mark.llm


class Fruit(BaseModel):
    fruit: Literal["apple", "pear"]
    count: int


def test_local_answers_schema_constrained(local_backend: BackendConfig) -> None:
    client = build_client(local_backend)
    result = client.structured(
        [HumanMessage(content="Name a fruit (apple or pear) and a count, as JSON.")], Fruit, seed=1, max_retries=1
    )
    assert result.ok, result.error
    assert result.value.fruit in {"apple", "pear"}
    assert result.attempts[0].prompt_tokens > 5 and result.attempts[0].completion_tokens > 0


def test_local_plain_chat(local_backend: BackendConfig) -> None:
    reply = build_client(local_backend).chat([HumanMessage(content="Say hello.")], seed=2, max_tokens=8)
    assert reply.text.strip() and reply.completion_tokens <= 8


def test_impossible_schema_is_recorded_failure(local_backend: BackendConfig) -> None:
    """The grammar allows only apple/pear but the validator wants a cherry: no answer can pass."""

    def wants_cherry(value: Fruit) -> list[str]:
        return [f"fruit must be 'cherry', got {value.fruit!r}"]

    client = build_client(local_backend)
    result = client.structured(
        [HumanMessage(content="Name a fruit as JSON.")], Fruit, validator=wants_cherry, max_retries=1, seed=3
    )
    assert not result.ok and result.value is None
    assert len(result.attempts) == 2
    assert "cherry" in result.error
