"""Scripted answers for the real decision graph (instant, deterministic), used by population tests."""

from __future__ import annotations

import json
import re
import time

from langchain_core.messages import BaseMessage

from malles_graph.backends import LLMClient, build_client
from malles_graph.scenario import BackendConfig
from tests.fakes import ScriptedChatModel

_LABELS = re.compile(r'"product": one of ((?:"[^"]+", )*"[^"]+")')


def decision_responder(messages: list[BaseMessage], delay_s: float = 0.0) -> str:
    """Debate turns get a short sentence; the decide prompt gets the first offered product, 1 unit."""
    if delay_s:
        time.sleep(delay_s)
    text = str(messages[-1].content) if len(messages) == 1 else str(messages[0].content)
    match = _LABELS.search(text)
    if not match:
        return "The offer looks fine for this shopper."
    labels = [x for x in re.findall(r'"([^"]+)"', match.group(1)) if x != "none"]
    return json.dumps({"product": labels[0], "quantity": 1, "rationale": "usual pick", "confidence": 0.7})


def scripted_decision_client(delay_s: float = 0.0, max_concurrency: int = 4) -> LLMClient:
    model = ScriptedChatModel(responder=lambda m: decision_responder(m, delay_s))
    return build_client(BackendConfig(name="local", cache=False, max_concurrency=max_concurrency), chat_model=model)
