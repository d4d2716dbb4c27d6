"""The backend registry: a BackendConfig in, an LLMClient out.

=============  ==============================================================
name           what answers
=============  ==============================================================
local          llama.cpp in-process (xllamacpp) serving a GGUF; the default
openai         any OpenAI-compatible endpoint (OpenAI, vLLM, LM Studio, ...)
ollama         an Ollama server (/api/chat)
choice-model   no LLM: the fitted conditional-logit agent (graphs use it)
best-response  no LLM: the analytic worker of the economist scenario
=============  ==============================================================
"""

from __future__ import annotations

import os
from typing import Any

from langchain_core.language_models import BaseChatModel

from malles_graph.backends.cache import ResponseCache
from malles_graph.backends.client import CallKwargs, LLMClient, openai_call_kwargs
from malles_graph.backends.local_server import LocalServer, LocalServerKey
from malles_graph.errors import BackendError
from malles_graph.redact import register_secret
from malles_graph.scenario import BACKEND_NAMES, LLM_BACKENDS, BackendConfig

DESCRIPTIONS = {
    "local": "llama.cpp in-process (bundled SmolLM2-135M GGUF unless `model` names another GGUF)",
    "openai": "OpenAI-compatible HTTP endpoint (base_url + API key from api_key_env)",
    "ollama": "Ollama server /api/chat (base_url, default http://localhost:11434)",
    "choice-model": "no LLM: fitted conditional logit + quantity model (computed analyses)",
    "best-response": "no LLM: analytic best-response worker (economist scenario)",
}


def is_llm_backend(name: str) -> bool:
    return name in LLM_BACKENDS


def ollama_call_kwargs(
    temperature: float | None, seed: int | None, max_tokens: int | None, response_format: dict[str, Any] | None
) -> dict[str, Any]:
    options = {"temperature": temperature, "seed": seed, "num_predict": max_tokens}
    kwargs: dict[str, Any] = {"options": {k: v for k, v in options.items() if v is not None}}
    if response_format is not None:
        kwargs["format"] = response_format["json_schema"]["schema"]
    return kwargs


def build_chat_model(config: BackendConfig) -> tuple[BaseChatModel, str, CallKwargs]:
    """The LangChain chat model for an LLM backend, its model id, and its per-call kwargs builder."""
    if config.name == "local":
        from langchain_openai import ChatOpenAI

        from malles_graph.data.assets import bundled_model_path

        model_path = config.model or str(bundled_model_path())
        server = LocalServer.get(
            LocalServerKey(model_path, config.n_ctx, config.max_concurrency, config.lora), threads=config.threads
        )
        chat = ChatOpenAI(
            model="local", base_url=f"{server.base_url}/v1", api_key="local", timeout=config.timeout_s, max_retries=0
        )
        lora = ""
        if config.lora:  # the response cache must tell adapters (and retrained ones) apart
            stamp = int(os.path.getmtime(config.lora)) if os.path.exists(config.lora) else 0
            lora = f"+{os.path.abspath(config.lora)}@{stamp}"
        return chat, f"local:{os.path.basename(model_path)}{lora}", openai_call_kwargs
    if config.name == "openai":
        from langchain_openai import ChatOpenAI

        api_key = os.environ.get(config.api_key_env)
        if not api_key and not config.base_url:
            raise BackendError(
                f"backend 'openai' needs an API key in ${config.api_key_env} (or a base_url of a local server)"
            )
        register_secret(api_key)
        model = config.model or "gpt-4o-mini"
        chat = ChatOpenAI(
            model=model,
            base_url=config.base_url,
            api_key=api_key or "not-needed",
            timeout=config.timeout_s,
            max_retries=0,  # LLMClient retries (call_retries): retries are counted once
        )
        return chat, f"openai:{config.base_url or 'api.openai.com'}:{model}", openai_call_kwargs
    if config.name == "ollama":
        from langchain_ollama import ChatOllama

        model = config.model or "llama3.2"
        base_url = config.base_url or "http://localhost:11434"
        chat = ChatOllama(model=model, base_url=base_url, client_kwargs={"timeout": config.timeout_s})
        return chat, f"ollama:{base_url}:{model}", ollama_call_kwargs
    if config.name in BACKEND_NAMES:
        raise BackendError(
            f"backend {config.name!r} is not an LLM; the graphs use it directly, not through a chat model"
        )
    raise BackendError(f"unknown backend {config.name!r}; known backends: {', '.join(BACKEND_NAMES)}")


def build_client(
    config: BackendConfig,
    *,
    cache: ResponseCache | None = None,
    use_cache: bool | None = None,
    chat_model: BaseChatModel | None = None,
) -> LLMClient:
    """An LLMClient for ``config``. ``chat_model`` replaces the real model (tests use scripted fakes)."""
    if use_cache is None:
        use_cache = config.cache
    if use_cache and cache is None:
        cache = ResponseCache()
    if chat_model is not None:
        model_id = f"{config.name}:{type(chat_model).__name__}"
        call_kwargs: CallKwargs = lambda *_: {}  # noqa: E731 - scripted models take no sampling parameters
        structured = False
    else:
        chat_model, model_id, call_kwargs = build_chat_model(config)
        structured = True
    return LLMClient(
        chat_model,
        backend=config.name,
        model_id=model_id,
        cache=cache if use_cache else None,
        max_concurrency=config.max_concurrency,
        max_retries=config.max_retries,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        structured=structured,
        call_kwargs=call_kwargs,
        call_retries=config.call_retries,
        failure_limit=config.failure_limit,
        auth_hint=f"check the API key in ${config.api_key_env}" if config.name == "openai" else "",
    )
