"""How LLMClient calls a LangChain chat model: straight to ``_generate`` when nothing observes the call, through
``invoke`` (callbacks, LangGraph's messages stream, rate limiter, LangChain's cache) whenever something does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypedDict
from unittest.mock import Mock

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler, CallbackManager, get_usage_metadata_callback
from langchain_core.globals import get_debug, set_debug
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.tracers.context import collect_runs, tracing_v2_enabled
from langgraph.graph import END, START, StateGraph

from malles_graph.backends import LLMClient
from malles_graph.backends.client import _callback_handlers

USAGE = {"input_tokens": 120, "output_tokens": 7, "total_tokens": 127, "input_token_details": {"cache_read": 96}}


class CountingModel(BaseChatModel):
    """Answers "ok" with a server-like usage report; counts requests and calls through ``invoke``."""

    requests: int = 0
    invokes: int = 0

    @property
    def _llm_type(self) -> str:
        return "counting"

    def invoke(self, *args: Any, **kwargs: Any) -> AIMessage:  # type: ignore[override]
        self.invokes += 1
        return super().invoke(*args, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        self.requests += 1
        assert kwargs == {"temperature": 0.2, "seed": 3, "max_tokens": 9}  # the client's sampling parameters
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="ok", usage_metadata=USAGE))])


def client(model: BaseChatModel) -> LLMClient:
    return LLMClient(
        model,
        backend="test",
        model_id="counting",
        call_kwargs=lambda t, s, m, f: {"temperature": t, "seed": s, "max_tokens": m},
    )


def ask(llm: LLMClient) -> Any:
    return llm.chat([HumanMessage(content="hi")], temperature=0.2, seed=3, max_tokens=9)


def test_an_unobserved_call_skips_invoke_and_keeps_the_usage_report() -> None:
    model = CountingModel()
    reply = ask(client(model))
    assert (model.requests, model.invokes) == (1, 0)
    assert (reply.text, reply.prompt_tokens, reply.cached_prompt_tokens, reply.completion_tokens) == ("ok", 120, 96, 7)


def test_a_callback_handler_on_the_model_sees_the_call() -> None:
    class Recorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.events: list[str] = []

        def on_chat_model_start(self, serialized, messages, **kwargs: Any) -> None:
            self.events.append("start")

        def on_llm_end(self, response, **kwargs: Any) -> None:
            self.events.append("end")

    recorder = Recorder()
    model = CountingModel(callbacks=[recorder])
    assert ask(client(model)).prompt_tokens == 120
    assert (model.invokes, recorder.events) == (1, ["start", "end"])


def test_langgraph_messages_stream_still_carries_the_answer() -> None:
    """LangGraph's ``messages`` stream (LangGraph Studio's chat view) works through callbacks a node inherits."""

    class State(TypedDict, total=False):
        text: str

    model = CountingModel()
    llm = client(model)
    builder = StateGraph(State)
    builder.add_node("ask", lambda state: {"text": ask(llm).text})
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    streamed = [chunk.content for chunk, _ in builder.compile().stream({}, stream_mode="messages")]
    assert streamed == ["ok"] and model.invokes == 1
    assert builder.compile().invoke({}) == {"text": "ok"} and model.invokes == 1  # no stream, no invoke


def test_a_rate_limiter_and_langchains_own_cache_are_honoured() -> None:
    class Limiter(BaseRateLimiter):
        acquired: int = 0

        def acquire(self, *, blocking: bool = True) -> bool:
            self.acquired += 1
            return True

        async def aacquire(self, *, blocking: bool = True) -> bool:
            return self.acquire(blocking=blocking)

    limiter = Limiter()
    limited = CountingModel(rate_limiter=limiter)
    ask(client(limited))
    assert (limiter.acquired, limited.requests) == (1, 1)

    cached = CountingModel(cache=InMemoryCache())
    llm = client(cached)
    assert [ask(llm).text for _ in range(2)] == ["ok", "ok"]
    assert (cached.invokes, cached.requests) == (2, 1)  # the second answer came from LangChain's cache


@contextmanager
def debug_on() -> Iterator[None]:
    before = get_debug()
    set_debug(True)
    try:
        yield
    finally:
        set_debug(before)


SITUATIONS: dict[str, tuple[Callable[[], BaseChatModel], Callable[[], AbstractContextManager[Any]]]] = {
    "nothing": (CountingModel, nullcontext),
    "model callbacks": (lambda: CountingModel(callbacks=[BaseCallbackHandler()]), nullcontext),
    "verbose": (lambda: CountingModel(verbose=True), nullcontext),
    "debug": (CountingModel, debug_on),
    # a LangSmith tracer with a stand-in client: nothing leaves the machine
    "tracing": (CountingModel, lambda: tracing_v2_enabled(project_name="call-path-test", client=Mock())),
    "collect_runs hook": (CountingModel, collect_runs),
    "usage callback hook": (CountingModel, get_usage_metadata_callback),
}


@pytest.mark.parametrize("situation", SITUATIONS)
def test_the_handler_check_agrees_with_langchains_callback_manager(situation: str) -> None:
    """The check that lets a call skip invoke sees every handler source CallbackManager.configure uses."""
    make_model, context = SITUATIONS[situation]
    model = make_model()
    with context():
        configured = CallbackManager.configure(None, model.callbacks, model.verbose).handlers
        assert _callback_handlers(model) == bool(configured) == (situation != "nothing")
