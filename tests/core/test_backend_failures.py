"""Failing backends fail loudly, against a real HTTP server on loopback: auth errors and the circuit breaker
raise BackendFatalError, retries are counted once, a hung endpoint costs at most the timeout per attempt, and
an echoed API key never reaches an error message or an answer."""

from __future__ import annotations

import time

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from malles_graph.backends import build_client
from malles_graph.errors import BackendError, BackendFatalError
from malles_graph.redact import redact
from malles_graph.scenario import BackendConfig
from tests.core.loopback_llm import loopback_llm

KEY = "sk-planted-test-key-0123456789abcdef"
MESSAGES = [HumanMessage(content="hello")]


class Pong(BaseModel):
    answer: str


@pytest.fixture
def planted_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MALLES_TEST_KEY", KEY)
    return KEY


def client_for(base_url: str, **fields: object):
    config = BackendConfig(
        name="openai", base_url=base_url, model="loopback", api_key_env="MALLES_TEST_KEY", cache=False, **fields
    )
    client = build_client(config)
    client.retry_backoff_s = 0.0
    return client


def test_auth_error_is_fatal_at_once_and_redacted(planted_key: str) -> None:
    with loopback_llm("401") as server:
        client = client_for(server.base_url, call_retries=3)
        with pytest.raises(BackendFatalError) as info:
            client.chat(MESSAGES)
        assert server.requests == 1  # a refused key is not retried
        message = str(info.value)
        assert "401" in message and "MALLES_TEST_KEY" in message
        assert planted_key not in message and "sk-planted" not in message
        # Once fatal, later calls fail at once without touching the server.
        with pytest.raises(BackendFatalError):
            client.chat(MESSAGES)
        assert server.requests == 1


def test_server_errors_retry_once_then_circuit_breaker_opens(planted_key: str) -> None:
    with loopback_llm("500") as server:
        client = client_for(server.base_url, call_retries=1, failure_limit=3)
        for _ in range(2):
            with pytest.raises(BackendError) as info:
                client.chat(MESSAGES)
            assert not isinstance(info.value, BackendFatalError)
            assert planted_key not in str(info.value)
        # Each call: one attempt plus one retry, and the HTTP client's own retries are off.
        assert server.requests == 4
        with pytest.raises(BackendFatalError, match="circuit breaker: 3 consecutive failed calls"):
            client.chat(MESSAGES)
        assert server.requests == 6
        with pytest.raises(BackendFatalError):
            client.structured(MESSAGES, Pong)
        assert server.requests == 6


def test_success_resets_the_consecutive_failure_count(planted_key: str) -> None:
    with loopback_llm("500") as server:
        client = client_for(server.base_url, call_retries=0, failure_limit=2)
        with pytest.raises(BackendError):
            client.chat(MESSAGES)
        server.mode = "ok"
        assert client.structured(MESSAGES, Pong).value == Pong(answer="pong")
        assert client.consecutive_failures == 0
        server.mode = "500"
        with pytest.raises(BackendError) as info:
            client.chat(MESSAGES)
        assert not isinstance(info.value, BackendFatalError)


def test_hung_endpoint_costs_at_most_the_timeout_per_attempt(planted_key: str) -> None:
    with loopback_llm("hang") as server:
        client = client_for(server.base_url, timeout_s=0.5, call_retries=1, failure_limit=10)
        start = time.perf_counter()
        with pytest.raises(BackendError, match="timed out"):
            client.chat(MESSAGES)
        elapsed = time.perf_counter() - start
        assert server.requests == 2
        assert 0.9 < elapsed < 2.5, elapsed


def test_a_key_echoed_in_an_answer_is_redacted(planted_key: str) -> None:
    with loopback_llm("echo") as server:
        client = client_for(server.base_url)
        assert client.chat(MESSAGES).text == "your key is <redacted>"


def test_redact_patterns() -> None:
    assert redact("Authorization: Bearer abc.def-ghi") == "Authorization: <redacted>"
    assert redact('{"api_key": "zz-top-secret"}') == '{"api_key": "<redacted>"}'
    assert redact("Incorrect API key provided: sk-abcdefghijklmnop.") == "Incorrect API key provided: <redacted>."
    assert redact("prompt_tokens: 5; the persona likes apples") == "prompt_tokens: 5; the persona likes apples"


def test_log_lines_are_redacted(planted_key: str, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from malles_graph.redact import install_log_redaction

    install_log_redaction()
    logging.getLogger("httpx").warning("request failed: %s", f"Authorization: Bearer {planted_key}")
    assert planted_key not in caplog.text and "Authorization: Bearer <redacted>" in caplog.text
