"""LLM backends behind one registry (see registry.py for the list)."""

from malles_graph.backends.cache import ResponseCache
from malles_graph.backends.client import Attempt, ChatResult, LLMClient, StructuredResult, parse_structured
from malles_graph.backends.registry import DESCRIPTIONS, LLM_BACKENDS, build_chat_model, build_client, is_llm_backend

__all__ = [
    "Attempt",
    "ChatResult",
    "DESCRIPTIONS",
    "LLMClient",
    "LLM_BACKENDS",
    "ResponseCache",
    "StructuredResult",
    "build_chat_model",
    "build_client",
    "is_llm_backend",
    "parse_structured",
]
