"""Failing backends fail loudly, against a real HTTP server on loopback: auth errors and the circuit breaker
raise BackendFatalError, retries are counted once, a hung endpoint costs at most the timeout per attempt, and
an echoed API key never reaches an error message or an answer."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from contextlib import contextmanager
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from malles_graph.backends import build_client
from malles_graph.backends.client import MAX_RETRY_AFTER_S, retry_after_s, retry_wait
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


# -- rate limits and server errors: a real HTTP server that answers a scripted series of statuses ----------------
@contextmanager
def scripted_server(statuses: list[tuple[int, dict[str, str]]]):
    """An OpenAI-compatible loopback server answering ``statuses`` in turn (status, headers), then 200s."""
    script = list(statuses)
    seen: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, headers = script.pop(0) if script else (200, {})
            seen.append(status)
            payload = (
                {"error": {"message": f"status {status}", "type": "rate_limit" if status == 429 else "server"}}
                if status != 200
                else {
                    "id": "c", "object": "chat.completion", "created": 0, "model": "loopback",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 40, "completion_tokens": 2, "total_tokens": 42,
                              "prompt_tokens_details": {"cached_tokens": 32}},
                }
            )
            body = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # shutdown() returns at the serving loop's next poll: 0.5 s by default, paid by every test
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


def recording_client(base_url: str, waits: list[float], **fields: object):
    client = client_for(base_url, **fields)
    client.retry_backoff_s = 0.25
    client.sleep = waits.append  # the waits are recorded, not slept: the test asserts them exactly
    return client


def test_429_waits_what_retry_after_asks_in_seconds_then_succeeds(planted_key: str) -> None:
    with scripted_server([(429, {"Retry-After": "7"}), (429, {"Retry-After": "2"})]) as (url, seen):
        waits: list[float] = []
        reply = recording_client(url, waits, call_retries=2).chat(MESSAGES)
    assert seen == [429, 429, 200] and waits == [7.0, 2.0]
    # the server's usage report: cached prompt tokens (prompt_tokens_details.cached_tokens) reach the result
    assert (reply.text, reply.prompt_tokens, reply.cached_prompt_tokens, reply.completion_tokens) == ("pong", 40, 32, 2)


def test_429_retry_after_as_http_date_and_capped(planted_key: str) -> None:
    soon = format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30), usegmt=True)
    with scripted_server([(429, {"Retry-After": soon}), (429, {"Retry-After": "3600"})]) as (url, seen):
        waits: list[float] = []
        recording_client(url, waits, call_retries=2).chat(MESSAGES)
    assert seen == [429, 429, 200]
    assert 25 < waits[0] <= 30  # the date, less the time the request took
    assert waits[1] == MAX_RETRY_AFTER_S  # an hour is capped; the bounded retry budget decides after that


def test_429_without_retry_after_uses_the_backoff_and_stays_bounded(planted_key: str) -> None:
    with scripted_server([(429, {})] * 5) as (url, seen):
        waits: list[float] = []
        client = recording_client(url, waits, call_retries=2, failure_limit=5)
        with pytest.raises(BackendError, match="429"):
            client.chat(MESSAGES)
    assert seen == [429, 429, 429] and waits == [0.25, 0.5]


def test_5xx_are_retried_with_growing_backoff(planted_key: str) -> None:
    with scripted_server([(500, {}), (502, {}), (503, {})]) as (url, seen):
        waits: list[float] = []
        reply = recording_client(url, waits, call_retries=3).chat(MESSAGES)
    assert seen == [500, 502, 503, 200] and waits == [0.25, 0.5, 1.0] and reply.text == "pong"
    with scripted_server([(503, {})] * 4) as (url, seen):
        waits = []
        with pytest.raises(BackendError, match="503"):
            recording_client(url, waits, call_retries=1).chat(MESSAGES)
    assert seen == [503, 503] and waits == [0.25]  # one attempt plus call_retries, never more


def test_retry_after_parsing() -> None:
    class Exc(Exception):
        def __init__(self, headers: dict[str, str]) -> None:
            self.response = type("R", (), {"headers": headers})()

    assert retry_after_s(Exc({"retry-after": "1.5"})) == 1.5
    assert retry_after_s(Exc({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert retry_after_s(Exc({"retry-after": "soon"})) is None  # malformed: the client's own backoff applies
    assert retry_after_s(Exc({})) is None and retry_after_s(ValueError("no response")) is None
    assert retry_wait(Exc({"retry-after": "5"}), 503, 0.1) == 0.1  # only a 429 is a rate limit


def test_response_cache_replays_cached_prompt_tokens(tmp_path, planted_key: str) -> None:
    from malles_graph.backends.cache import ResponseCache

    with scripted_server([]) as (url, seen):
        config = BackendConfig(name="openai", base_url=url, model="loopback", api_key_env="MALLES_TEST_KEY")
        client = build_client(config, cache=ResponseCache(tmp_path / "c.sqlite"), use_cache=True)
        first, again = client.chat(MESSAGES, seed=1), client.chat(MESSAGES, seed=1)
    assert seen == [200] and again.cached and not first.cached
    assert (again.prompt_tokens, again.cached_prompt_tokens) == (first.prompt_tokens, first.cached_prompt_tokens) == (40, 32)


def test_a_cache_file_from_before_prompt_cache_accounting_still_opens(tmp_path) -> None:
    import sqlite3

    from malles_graph.backends.cache import ResponseCache

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, text TEXT NOT NULL, "
                     "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, created REAL)")
        conn.execute("INSERT INTO responses VALUES ('k', 'm', 'hi', 9, 1, 0)")
    hit = ResponseCache(path).get("k")
    assert hit is not None and (hit.text, hit.prompt_tokens, hit.cached_prompt_tokens) == ("hi", 9, 0)
