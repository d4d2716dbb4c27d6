"""LLMClient: one way to call any chat model, with caching, limits and validated structured output.

Structured answers are requested with the server's JSON-schema support (OpenAI
``response_format``; llama.cpp and Ollama honour it), parsed and validated with
pydantic plus an optional domain validator. An invalid answer is sent back with
the validation error for a bounded number of repairs; after that the call is
recorded as a failure (``StructuredResult.ok is False``). Nothing is ever
replaced by a made-up default. Repairs that cannot help are not sent: an answer
cut off at its token budget is repaired with :data:`REPAIR_ROOM` times the room,
and the repairs stop (a recorded failure) when the model repeats its previous
invalid answer word for word or is cut off again.

A failing backend fails loudly. Each call is tried at most ``1 + call_retries`` times (the HTTP client's
own retries are off, so retries are counted once), each attempt bounded by the backend's timeout, and only
transient failures (timeouts, connection errors, HTTP 408/409/429/5xx) are retried, after a backoff that grows
with each attempt; an HTTP 429 (rate limit) waits what the server's ``Retry-After`` asks (seconds or an HTTP
date; ``retry-after-ms`` too), capped at :data:`MAX_RETRY_AFTER_S`. An authentication
error (HTTP 401/403) and ``failure_limit`` consecutive failed calls (the circuit breaker) raise
:class:`BackendFatalError`; from then on every call raises it at once, so a run stops instead of
recording hours of failures. Error messages and answers pass through :func:`redact`, so an API key a
server echoes never reaches a transcript, the store or the screen.

Token counts come from the server's usage report: ``prompt_tokens`` (all of the prompt), of which
``cached_prompt_tokens`` were read from the server's prompt cache (OpenAI's
``prompt_tokens_details.cached_tokens``, which llama.cpp's server fills from its slot cache and
langchain-openai exposes as ``usage_metadata["input_token_details"]["cache_read"]``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

from langchain_core.callbacks import BaseCallbackManager, Callbacks
from langchain_core.globals import get_debug, get_llm_cache
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tracers.context import _configure_hooks, _tracing_v2_is_enabled
from langchain_core.utils.env import env_var_is_set
from pydantic import BaseModel, ValidationError

from malles_graph.backends.cache import CachedResponse, ResponseCache, cache_key
from malles_graph.errors import BackendError, BackendFatalError
from malles_graph.redact import redact

T = TypeVar("T", bound=BaseModel)
Validator = Callable[[Any], list[str]]


@dataclass(frozen=True)
class ChatResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False  # answered by the response cache (no call made)
    latency_s: float = 0.0
    cached_prompt_tokens: int = 0  # of prompt_tokens, read from the server's prompt cache
    truncated: bool = False  # the answer stopped at max_tokens (finish reason "length")


@dataclass(frozen=True)
class Attempt:
    text: str
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int = 0
    cached: bool = False
    truncated: bool = False  # cut off at its token budget (``max_tokens``)


@dataclass
class StructuredResult(Generic[T]):
    value: T | None
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None

    @property
    def retries(self) -> int:
        return max(0, len(self.attempts) - 1)

    @property
    def prompt_tokens(self) -> int:
        return sum(a.prompt_tokens for a in self.attempts)

    @property
    def completion_tokens(self) -> int:
        return sum(a.completion_tokens for a in self.attempts)

    @property
    def cached_prompt_tokens(self) -> int:
        return sum(a.cached_prompt_tokens for a in self.attempts)


CallKwargs = Callable[[float | None, int | None, int | None, dict[str, Any] | None], dict[str, Any]]


def openai_call_kwargs(
    temperature: float | None, seed: int | None, max_tokens: int | None, response_format: dict[str, Any] | None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if response_format is not None:
        # Through extra_body, not langchain's response_format path: that one raises on a truncated
        # answer, while we want to see the text and repair it like any other invalid answer.
        kwargs["extra_body"] = {"response_format": response_format}
    if temperature is not None:
        kwargs["temperature"] = temperature
    if seed is not None:
        kwargs["seed"] = seed
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    return kwargs


class LLMClient:
    """Wraps a LangChain chat model. Thread-safe; at most ``max_concurrency`` calls in flight."""

    def __init__(
        self,
        chat_model: BaseChatModel,
        *,
        backend: str,
        model_id: str,
        cache: ResponseCache | None = None,
        max_concurrency: int = 2,
        max_retries: int = 2,
        temperature: float = 0.7,
        max_tokens: int = 256,
        structured: bool = True,
        call_kwargs: CallKwargs = openai_call_kwargs,
        call_retries: int = 1,
        failure_limit: int = 5,
        retry_backoff_s: float = 0.5,
        auth_hint: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.chat_model = chat_model
        self.backend = backend
        self.model_id = model_id
        self.cache = cache
        self.max_retries = max_retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.structured_supported = structured
        self._call_kwargs = call_kwargs
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self.calls = 0
        self.call_retries = call_retries
        self.failure_limit = failure_limit
        self.retry_backoff_s = retry_backoff_s
        self.auth_hint = auth_hint
        self.sleep = sleep  # how a retry waits (tests record the waits instead of sleeping)
        self._breaker_lock = threading.Lock()
        self.consecutive_failures = 0
        # Set once the backend is known to be unusable; every later call raises it at once.
        self.fatal: BackendFatalError | None = None

    def chat(
        self,
        messages: Sequence[BaseMessage],
        *,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> ChatResult:
        temperature = self.temperature if temperature is None else temperature
        max_tokens = self.max_tokens if max_tokens is None else max_tokens
        params = {"temperature": temperature, "seed": seed, "max_tokens": max_tokens, "format": response_format}
        key = cache_key(self.model_id, [(m.type, _text(m)) for m in messages], params) if self.cache is not None else ""
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return ChatResult(
                hit.text,
                hit.prompt_tokens,
                hit.completion_tokens,
                cached=True,
                cached_prompt_tokens=hit.cached_prompt_tokens,
                # the cache keeps no finish reason: an answer that used every token it was allowed stopped there
                truncated=max_tokens is not None and hit.completion_tokens >= max_tokens,
            )
        kwargs = self._call_kwargs(
            temperature, seed, max_tokens, response_format if self.structured_supported else None
        )
        start = time.perf_counter()
        with self._slots:
            reply = self._invoke(list(messages), kwargs)
        self.calls += 1
        text = redact(_text(reply))
        prompt_tokens, cached_prompt_tokens, completion_tokens = _usage(reply, messages, text)
        if self.cache is not None:
            self.cache.put(
                key, self.model_id, CachedResponse(text, prompt_tokens, completion_tokens, cached_prompt_tokens)
            )
        return ChatResult(
            text,
            prompt_tokens,
            completion_tokens,
            latency_s=time.perf_counter() - start,
            cached_prompt_tokens=cached_prompt_tokens,
            truncated=finish_reason(reply) == "length",
        )

    def _invoke(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> BaseMessage:
        """One call: bounded retries of transient failures, then success, BackendError or BackendFatalError."""
        for attempt in range(self.call_retries + 1):
            self._raise_if_fatal()
            try:
                reply = generate(self.chat_model, messages, kwargs)
            except Exception as exc:  # network, timeout, server errors: all arrive as different types
                status = http_status(exc)
                reason = redact(f"backend {self.backend!r} (model {self.model_id}) failed: {describe(exc)}")
                if status in (401, 403):
                    hint = f"; {self.auth_hint}" if self.auth_hint else ""
                    self._open_breaker(f"{reason} (authentication refused, HTTP {status}{hint})")
                if attempt < self.call_retries and is_transient(exc, status):
                    self.sleep(retry_wait(exc, status, self.retry_backoff_s * 2**attempt))
                    continue
                self._count_failure(reason)
                raise BackendError(reason) from None  # not `from exc`: the cause may hold the unredacted key
            with self._breaker_lock:
                self.consecutive_failures = 0
            return reply
        raise AssertionError("unreachable: the loop returns or raises")

    def _raise_if_fatal(self) -> None:
        if self.fatal is not None:
            raise BackendFatalError(str(self.fatal))

    def _open_breaker(self, reason: str) -> None:
        with self._breaker_lock:
            if self.fatal is None:
                self.fatal = BackendFatalError(reason)
        self._raise_if_fatal()

    def _count_failure(self, reason: str) -> None:
        with self._breaker_lock:
            self.consecutive_failures += 1
            tripped = self.consecutive_failures >= self.failure_limit
        if tripped:
            self._open_breaker(
                f"{reason} (circuit breaker: {self.failure_limit} consecutive failed calls; "
                "the backend is down or misconfigured, so the run stops here: set backend.failure_limit to change)"
            )

    def structured(
        self,
        messages: Sequence[BaseMessage],
        schema: type[T],
        *,
        validator: Validator | None = None,
        max_retries: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> StructuredResult[T]:
        """Ask for a ``schema`` instance; repair invalid answers up to ``max_retries`` times.

        A repair that cannot help is not sent (see the module docstring): after an answer cut off at its budget
        the next attempt gets :data:`REPAIR_ROOM` times the tokens, and the repairs stop when an answer repeats
        the previous invalid one or is cut off again; the result is then a failure saying why.
        """
        retries = self.max_retries if max_retries is None else max_retries
        budget = self.max_tokens if max_tokens is None else max_tokens
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": json_schema or schema.model_json_schema()},
        }
        conversation = list(messages)
        result: StructuredResult[T] = StructuredResult(value=None)
        for attempt in range(retries + 1):
            reply = self.chat(
                conversation,
                temperature=temperature,
                seed=None if seed is None else seed + attempt,
                max_tokens=budget,
                response_format=response_format,
            )
            value, error = parse_structured(reply.text, schema, validator)
            truncated = error is not None and reply.truncated
            if truncated:
                error = f"{error}; the answer was cut off at max_tokens ({budget} tokens)"
            result.attempts.append(
                Attempt(
                    reply.text,
                    error,
                    reply.prompt_tokens,
                    reply.completion_tokens,
                    cached_prompt_tokens=reply.cached_prompt_tokens,
                    cached=reply.cached,
                    truncated=truncated,
                )
            )
            if error is None:
                result.value = value
                return result
            if (hopeless := hopeless_repair(result.attempts)) is not None:
                result.error = f"{error} ({hopeless}: no further repair)"
                return result
            if truncated:
                budget *= REPAIR_ROOM
            conversation += [
                AIMessage(content=reply.text),
                HumanMessage(content=f"Your answer was invalid: {error}\nAnswer again with only the corrected JSON."),
            ]
        result.error = result.attempts[-1].error
        return result


REPAIR_ROOM = 2  # an answer cut off at its budget is repaired with this many times the tokens


def hopeless_repair(attempts: Sequence[Any]) -> str | None:
    """Why another repair would be a wasted call (None: it may help): the model answered the repair with its
    previous invalid text again, or was cut off again with more room. ``attempts`` have ``text`` and
    ``truncated`` (an :class:`Attempt`, or a graph's own record of its repair steps)."""
    if len(attempts) < 2:
        return None
    last, before = attempts[-1], attempts[-2]
    if last.text.strip() == before.text.strip():
        return "the model repeated its previous invalid answer"
    if last.truncated and before.truncated:
        return "cut off at the token budget twice, the second time with more room"
    return None


def finish_reason(reply: BaseMessage) -> str | None:
    """Why the model stopped (OpenAI-compatible servers: ``finish_reason``; Ollama: ``done_reason``), if it says;
    "length" is the token budget."""
    metadata = getattr(reply, "response_metadata", None) or {}
    reason = metadata.get("finish_reason") or metadata.get("done_reason")
    return str(reason) if reason else None


def generate(model: BaseChatModel, messages: list[BaseMessage], kwargs: dict[str, Any]) -> BaseMessage:
    """One answer of ``model``: straight from its ``_generate`` (the request itself) when nothing would see
    LangChain's run machinery, else through ``invoke``.

    ``invoke`` sets up a callback manager and a traced run on every call (run ids, invocation and tracing
    parameters, message conversion), about ten times the cost of an instant model's answer. All of it serves
    callback handlers (LangSmith tracing, LangGraph's ``messages`` stream, ``verbose``, debug), a rate limiter,
    LangChain's own LLM cache, streaming and v1 content blocks: a model or a call using any of them goes through
    ``invoke`` as usual. Either way the reply is the model's own message (text, ``usage_metadata``), and errors
    are the model's own exceptions.
    """
    if isinstance(model, BaseChatModel) and _unobserved(model):  # anything else with an invoke (a test double)
        generation = model._generate(messages, **kwargs).generations[0]
        # as invoke does: the generation's info (finish_reason: cut off at max_tokens?) goes to the message
        info = {
            k: v for k, v in (generation.generation_info or {}).items() if k not in generation.message.response_metadata
        }
        if info:
            generation.message.response_metadata = {**info, **generation.message.response_metadata}
        return generation.message
    return model.invoke(messages, **kwargs)


def _unobserved(model: BaseChatModel) -> bool:
    """True when ``invoke`` would add nothing to ``_generate`` for this call (see :func:`generate`)."""
    streaming = "streaming" in model.model_fields_set and getattr(model, "streaming", None) is True  # as invoke asks
    if model.rate_limiter is not None or streaming or model.output_version == "v1":
        return False
    if model.cache is not False and (model.cache is not None or get_llm_cache() is not None):
        return False
    return not _callback_handlers(model)


def _callback_handlers(model: BaseChatModel) -> bool:
    """Whether ``invoke`` would call any callback handler: the sources ``CallbackManager.configure`` draws them
    from, checked without building a manager (that alone was a third of an LLM call's own overhead).

    Handlers inherited from the caller's run (a LangGraph node's config, read as invoke's ``ensure_config``
    reads it) or the model's own, ``verbose`` and debug output, LangSmith tracing, and configure hooks (e.g.
    ``collect_runs``, ``get_usage_metadata_callback``). tests/core/test_client_call_path.py checks that this
    agrees with ``CallbackManager.configure``.
    """
    inherited = (var_child_runnable_config.get() or {}).get("callbacks")
    if _handlers(inherited) or _handlers(model.callbacks) or model.verbose or get_debug():
        return True
    if _tracing_v2_is_enabled():
        return True
    return any(
        var.get() is not None or (env is not None and cls is not None and env_var_is_set(env))
        for var, _inheritable, cls, env in _configure_hooks
    )


def _handlers(callbacks: Callbacks) -> list[Any]:
    return callbacks.handlers if isinstance(callbacks, BaseCallbackManager) else list(callbacks or [])


def parse_structured(text: str, schema: type[T], validator: Validator | None = None) -> tuple[T | None, str | None]:
    """Parse ``text`` as a ``schema`` instance; returns (value, None) or (None, reason)."""
    payload = extract_json(text)
    if payload is None:
        return (
            None,
            "the answer is not a complete JSON object (cut off by max_tokens? NaN and Infinity are not JSON either)",
        )
    try:
        value = schema.model_validate(payload)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors())
        return None, reasons
    problems = validator(value) if validator else []
    if problems:
        return None, "; ".join(problems)
    return value, None


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (plain, fenced, or embedded in prose)."""
    candidates = [text.strip(), *_FENCE.findall(text)]
    start = text.find("{")
    if start >= 0:
        candidates.append(text[start : text.rfind("}") + 1])
    for candidate in candidates:
        try:
            payload = json.loads(candidate, parse_constant=_not_json)
        except (json.JSONDecodeError, ValueError, RecursionError):  # RecursionError: absurdly nested "JSON"
            continue
        if isinstance(payload, dict):
            return payload
    return None


def _not_json(name: str) -> object:
    """Python's json reads NaN and Infinity; JSON has neither, and a NaN confidence or price is no answer."""
    raise ValueError(f"{name} is not JSON")


TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a failed call (openai, ollama and httpx errors each carry it differently)."""
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) and status > 0 else None


MAX_RETRY_AFTER_S = 60.0  # a server asking for longer gets retried after this (then the retry budget decides)


def retry_after_s(exc: BaseException) -> float | None:
    """The wait a rate-limited server asks for: ``retry-after-ms``, or ``Retry-After`` in seconds or as an HTTP date."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        if (millis := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(millis) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = parsedate_to_datetime(value)  # e.g. "Wed, 21 Oct 2026 07:28:00 GMT"
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):  # a malformed header: fall back to the client's own backoff
        return None


def retry_wait(exc: BaseException, status: int | None, backoff_s: float) -> float:
    """Seconds to wait before retrying: a 429's Retry-After (capped), else the client's backoff."""
    if status == 429 and (asked := retry_after_s(exc)) is not None:
        return min(asked, MAX_RETRY_AFTER_S)
    return backoff_s


def is_transient(exc: BaseException, status: int | None) -> bool:
    """Worth another attempt: no answer at all (timeout, refused connection) or a server-side hiccup."""
    if status is not None:
        return status in TRANSIENT_STATUS
    return isinstance(exc, (TimeoutError, ConnectionError, OSError)) or any(
        word in type(exc).__name__ for word in ("Timeout", "Connect", "Network", "Protocol")
    )


def describe(exc: BaseException) -> str:
    """A one-line description: the exception type when its text is empty, the text cut to a sane length."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:500] + " ..."


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def _usage(reply: BaseMessage, messages: Sequence[BaseMessage], text: str) -> tuple[int, int, int]:
    """(prompt, of which read from the server's prompt cache, completion) tokens of one reply."""
    usage = getattr(reply, "usage_metadata", None)
    if usage:
        details = usage.get("input_token_details") or {}
        return (
            int(usage.get("input_tokens", 0)),
            int(details.get("cache_read") or 0),
            int(usage.get("output_tokens", 0)),
        )
    # Models without usage data (scripted fakes): a rough 4-characters-per-token estimate, nothing cached.
    prompt_chars = sum(len(_text(m)) for m in messages)
    return max(1, prompt_chars // 4), 0, max(1, len(text) // 4)
