"""The `ollama` backend against a local HTTP server speaking Ollama's /api/chat."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from langchain_core.messages import HumanMessage

from malles_graph.backends import build_client
from malles_graph.errors import BackendError
from malles_graph.models import Decision
from malles_graph.scenario import BackendConfig


class OllamaHandler(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        OllamaHandler.requests.append(body)
        if self.path != "/api/chat":
            self.send_response(404)
            self.end_headers()
            return
        wants_json = isinstance(body.get("format"), dict)
        content = json.dumps({"product_id": "B", "quantity": 1, "rationale": "fits", "confidence": 0.7}) if wants_json else "hi"
        final = {
            "model": body["model"],
            "created_at": "2026-11-23T00:00:00Z",
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 12,
            "eval_count": 7,
        }
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        if body.get("stream", True):
            first = dict(final, message={"role": "assistant", "content": content}, done=False)
            self.wfile.write((json.dumps(first) + "\n").encode())
            final["message"] = {"role": "assistant", "content": ""}
        self.wfile.write((json.dumps(final) + "\n").encode())


@pytest.fixture()
def ollama_url() -> Iterator[str]:
    OllamaHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), OllamaHandler)
    # shutdown() returns at the serving loop's next poll: 0.5 s by default, paid by every test
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_ollama_structured_request_uses_schema(ollama_url: str) -> None:
    client = build_client(BackendConfig(name="ollama", model="llama3.2", base_url=ollama_url, cache=False))
    result = client.structured(
        [HumanMessage(content="choose")], Decision, validator=lambda d: d.check_against(["A", "B"]), seed=5
    )
    assert result.ok and result.value.product_id == "B"
    sent = OllamaHandler.requests[-1]
    assert sent["model"] == "llama3.2"
    assert sent["format"]["properties"]["product_id"]["type"] == "string"
    assert sent["options"]["seed"] == 5


def test_ollama_plain_chat(ollama_url: str) -> None:
    reply = build_client(BackendConfig(name="ollama", base_url=ollama_url, cache=False)).chat([HumanMessage(content="x")])
    assert reply.text == "hi"


def test_ollama_unreachable_is_clear_error() -> None:
    client = build_client(BackendConfig(name="ollama", base_url="http://127.0.0.1:9", cache=False, timeout_s=2))
    with pytest.raises(BackendError, match="backend 'ollama'"):
        client.chat([HumanMessage(content="x")])
