"""Stopping a run within one LLM call: the cancel token and the run's view of the LLM client.

A run thread cannot be killed, and LangGraph waits for every task in flight before the stream
ends. So the stop signal has to reach the decisions themselves: every LLM call of a run goes
through :class:`RunClient`, whose chat model checks the run's :class:`CancelToken` right before
the request is sent (after waiting for a concurrency slot). A stopped call raises
:class:`RunStopped`, a ``BaseException`` on purpose: nodes that record an ``Exception`` from the
backend as a failed decision must not record a cancellation; the task fails, its writes are not
checkpointed, and a resume redoes it. So at most the calls already in flight finish.

A fatal backend error (authentication refused, the circuit breaker open) stops the run the same
way, with status ``failed`` and the backend's reason.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from concurrent.futures import Future
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from malles_graph.backends import LLMClient
from malles_graph.backends.client import generate
from malles_graph.errors import BackendFatalError

StopStatus = Literal["cancelled", "interrupted", "failed"]


class RunStopped(BaseException):  # noqa: N818 - a signal like KeyboardInterrupt, not an error
    """Raised inside a run's LLM calls once the run was asked to stop."""

    def __init__(self, status: StopStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _LateCommitOfAStoppedTask(logging.Filter):
    """Drops one harmless record: LangGraph commits a task's writes in its future's done-callback,
    and its executor's exit waits for the futures, not for their callbacks. A task that raised
    :class:`RunStopped` can thus reach its commit after the executor shut down; the commit fails
    with "cannot schedule new futures after shutdown" and ``concurrent.futures`` logs it with two
    tracebacks, after the run's summary. The lost write is the stopped task's, which a resume redoes
    anyway (see above). Every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        future = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return not (
            isinstance(error, RuntimeError)
            and str(error) == "cannot schedule new futures after shutdown"
            and isinstance(future, Future)
            and future.done()
            and not future.cancelled()
            and isinstance(future.exception(), RunStopped)
        )


logging.getLogger("concurrent.futures").addFilter(_LateCommitOfAStoppedTask())


class CancelToken:
    """Set once, by whoever stops the run (the operator, a quitting app, a fatal backend error)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.status: StopStatus = "cancelled"
        self.reason = ""

    def set(self, status: StopStatus = "cancelled", reason: str = "cancelled by the user") -> None:
        if not self._event.is_set():  # the first reason wins
            self.status, self.reason = status, reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def raise_if_set(self) -> None:
        if self._event.is_set():
            raise RunStopped(self.status, self.reason)


class CancellableChatModel(BaseChatModel):
    """A chat model that refuses to send a request once the run's token is set."""

    inner: BaseChatModel
    token: Any  # CancelToken (typed Any: pydantic needs no schema for it)

    @property
    def _llm_type(self) -> str:
        return f"cancellable-{self.inner._llm_type}"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.token.raise_if_set()
        # the inner model's own request, without a second round of LangChain's run set-up (see generate)
        reply = generate(self.inner, messages, kwargs if stop is None else {**kwargs, "stop": stop})
        return ChatResult(generations=[ChatGeneration(message=reply)])


class RunClient(LLMClient):
    """A run's LLM client: the caller's client (cache, concurrency slots shared) behind the run's token."""

    def __init__(self, client: LLMClient, token: CancelToken) -> None:  # noqa: D107 - no super(): a view
        inner = copy.copy(client)
        inner.chat_model = CancellableChatModel(inner=client.chat_model, token=token)
        self._origin = client
        self._inner = inner
        self._token = token
        self._count_lock = threading.Lock()
        self.made = 0  # answers from the backend in this run (this process)
        self.cached = 0  # answers from the response cache
        self.first_call_at: float | None = None  # time.perf_counter() of the run's first LLM call

    @property
    def token(self) -> CancelToken:
        """The run's cancel token (an executor polls it while a decision runs elsewhere)."""
        return self._token

    def add_counts(self, made: int, cached: int) -> None:
        """Count calls made for this run outside this process (a Ray worker's decision)."""
        with self._count_lock:
            self.made += made
            self.cached += cached
        self._origin.calls += made

    def take_counts(self) -> tuple[int, int]:
        """(backend answers, cached answers) since the last take; the runner adds them to the run row."""
        with self._count_lock:
            counts = (self.made, self.cached)
            self.made = self.cached = 0
        return counts

    def __getattr__(self, name: str) -> Any:
        if name in ("_origin", "_inner", "_token", "_count_lock", "first_call_at"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def chat(self, messages, **kwargs: Any):  # type: ignore[override]
        self._token.raise_if_set()
        if self.first_call_at is None:  # where a run's start-up ends (the front end's time line)
            self.first_call_at = time.perf_counter()
        try:
            reply = self._inner.chat(messages, **kwargs)
        except BackendFatalError as exc:
            self._token.set("failed", str(exc))
            raise RunStopped("failed", str(exc)) from exc
        with self._count_lock:
            if reply.cached:
                self.cached += 1
            else:
                self.made += 1
                self._origin.calls += 1  # the caller's client counts the calls made for it
        return reply


def run_client(client: LLMClient | None, token: CancelToken) -> LLMClient | None:
    """The run's view of ``client`` (None stays None: backends without an LLM)."""
    return None if client is None else RunClient(client, token)
