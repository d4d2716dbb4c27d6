"""A real OpenAI-compatible HTTP server on loopback that misbehaves on demand (for backend failure tests).

Modes: ``ok`` answers ``reply`` as a chat completion; ``401`` refuses the key and echoes it back (as OpenAI
does: "Incorrect API key provided: sk-..."); ``500`` fails server-side and echoes the Authorization header;
``hang`` accepts the request and never answers (until the server stops); ``echo`` answers 200 with the
Authorization header in the content.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class LoopbackLLM:
    mode: str = "ok"
    reply: str = '{"answer": "pong"}'
    requests: int = 0
    fail_after: int | None = None  # switch to mode "500" after this many requests
    base_url: str = ""
    stop: threading.Event = field(default_factory=threading.Event)


def _handler(state: LoopbackLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest output quiet
            pass

        def _send(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests += 1
            if state.fail_after is not None and state.requests > state.fail_after:
                state.mode = "500"
            auth = self.headers.get("Authorization", "")
            key = auth.removeprefix("Bearer ")
            if state.mode == "hang":
                while not state.stop.wait(0.05):
                    pass
                return
            if state.mode == "401":
                message = f"Incorrect API key provided: {key}. You can find your API key at the dashboard."
                self._send(
                    401, {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}
                )
                return
            if state.mode == "500":
                self._send(500, {"error": {"message": f"internal error while serving Authorization: {auth}"}})
                return
            content = f"your key is {key}" if state.mode == "echo" else state.reply
            self._send(
                200,
                {
                    "id": "chatcmpl-loopback",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": "loopback",
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                },
            )

    return Handler


@contextmanager
def loopback_llm(mode: str = "ok") -> Iterator[LoopbackLLM]:
    state = LoopbackLLM(mode=mode)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    # shutdown() returns at the serving loop's next poll: 0.5 s by default, paid by every test
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()
