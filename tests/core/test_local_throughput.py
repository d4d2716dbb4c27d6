"""The local llama.cpp server's throughput settings, checked on the real server with a handful of tiny calls:
N parallel slots from backend.max_concurrency, each with backend.n_ctx tokens, and the prompt cache serving
a shared prefix through the product path (LLMClient -> langchain-openai)."""

from __future__ import annotations

import json
import urllib.request

import pytest
from langchain_core.messages import HumanMessage

from malles_graph.backends import build_client
from malles_graph.backends.local_server import LocalServer, LocalServerKey
from malles_graph.data.assets import bundled_model_path
from malles_graph.scenario import BackendConfig

pytestmark = pytest.mark.llm

PREAMBLE = "A grocery customer is choosing what to buy among the products A, B, C (or none). " + " ".join(
    f"{label}: {10 + i} now, regular {12 + i}, brand {i}." for i, label in enumerate("ABC" * 4)
)


def test_slots_follow_max_concurrency_each_with_its_own_context():
    config = BackendConfig(name="local", cache=False, max_concurrency=3, n_ctx=512, max_tokens=2, threads=1)
    build_client(config)
    server = LocalServer.get(LocalServerKey(str(bundled_model_path()), 512, 3))
    with urllib.request.urlopen(f"{server.base_url}/slots", timeout=60) as resp:
        slots = json.loads(resp.read())
    assert [s["n_ctx"] for s in slots] == [512, 512, 512]
    assert server.threads == 1  # backend.threads pins the compute threads


def test_a_shared_preamble_is_read_from_the_prompt_cache_across_roles():
    config = BackendConfig(name="local", cache=False, max_concurrency=1, n_ctx=1024, max_tokens=2)
    client = build_client(config)
    first = client.chat([HumanMessage(content=f"{PREAMBLE}\nYou are a product specialist. Which one?")], seed=1)
    second = client.chat([HumanMessage(content=f"{PREAMBLE}\nYou are a price analyst. Which one?")], seed=1)
    assert first.prompt_tokens > 50 and second.prompt_tokens > 50
    # everything up to the role line came from the cache the first call filled
    assert second.cached_prompt_tokens >= 0.8 * second.prompt_tokens > first.cached_prompt_tokens
