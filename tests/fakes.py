"""Scripted chat models for offline graph tests (never used by the product)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

Responder = Callable[[list[BaseMessage]], str]


class ScriptedChatModel(BaseChatModel):
    """Answers from a script: a list of texts (served in order, cycling if ``cycle``) or a function.

    Every call's messages are recorded in ``calls`` so tests can check what each role saw.
    """

    script: Sequence[str] | None = None
    responder: Responder | None = None
    cycle: bool = False
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        return self._calls

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            index = len(self._calls)
            self._calls.append(list(messages))
        if self.responder is not None:
            text = self.responder(list(messages))
        else:
            script = list(self.script or [])
            if not script:
                raise RuntimeError("ScriptedChatModel has no script")
            if index >= len(script) and not self.cycle:
                raise RuntimeError(f"ScriptedChatModel script exhausted after {len(script)} answers")
            text = script[index % len(script)]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])
