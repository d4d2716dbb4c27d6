"""Repairs that cannot help are not sent (issue 18): a model repeating its invalid answer, or cut off at its
token budget twice, is a recorded failure after no wasted call; an answer cut off once is repaired with room."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel

from malles_graph.backends.client import REPAIR_ROOM, LLMClient, openai_call_kwargs
from tests.fakes import ScriptedChatModel


class Answer(BaseModel):
    product: str
    quantity: int
    rationale: str


ANSWER = json.dumps({"product": "A", "quantity": 2, "rationale": "the usual one, " * 12})  # 220 characters


class BudgetedModel(ScriptedChatModel):
    """Answers ``ANSWER`` (one token per ``chars_per_token`` characters), cut off at the call's max_tokens and
    reported as langchain-openai reports it (finish reason "length" in the generation's info, not the message's
    metadata: the client's direct call path must carry it over); records each call's max_tokens."""

    chars_per_token: int = 2
    budgets: list[int] = []

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.calls.append(list(messages))
        self.budgets.append(kw["max_tokens"])
        room = kw["max_tokens"] * self.chars_per_token
        text, reason = (ANSWER, "stop") if len(ANSWER) <= room else (ANSWER[:room], "length")
        usage = {"input_tokens": 50, "output_tokens": min(kw["max_tokens"], -(-len(text) // self.chars_per_token))}
        message = AIMessage(content=text, usage_metadata=usage | {"total_tokens": 50 + usage["output_tokens"]})
        return ChatResult(generations=[ChatGeneration(message=message, generation_info={"finish_reason": reason})])


def client(model: Any, retries: int) -> LLMClient:
    return LLMClient(model, backend="local", model_id="fake", max_retries=retries, call_kwargs=openai_call_kwargs)


def ask(llm: LLMClient, max_tokens: int = 96):
    return llm.structured([HumanMessage(content="q")], Answer, max_tokens=max_tokens, seed=0)


def test_the_same_invalid_answer_twice_stops_the_repairs_and_is_recorded() -> None:
    model = ScriptedChatModel(script=['{"product": "A", "quantity": "lots"}'], cycle=True)
    result = ask(client(model, retries=4))
    assert len(model.calls) == 2  # the answer, one repair that repeated it, then nothing more
    assert not result.ok and result.value is None and len(result.attempts) == 2
    assert "repeated its previous invalid answer" in result.error and "quantity" in result.error


def test_different_invalid_answers_are_repaired_up_to_the_limit() -> None:
    model = ScriptedChatModel(script=["no json", '{"product": "A"}', '{"quantity": 1}'])
    result = ask(client(model, retries=2))
    assert len(model.calls) == 3 and not result.ok
    assert result.error == result.attempts[-1].error  # the limit, not a hopeless repair


def test_an_answer_cut_off_at_its_budget_is_repaired_with_room() -> None:
    model = BudgetedModel(budgets=[])  # needs 127 tokens: 96 cut it off
    result = ask(client(model, retries=2))
    assert model.budgets == [96, 96 * REPAIR_ROOM]
    assert result.ok and result.value.quantity == 2 and len(result.attempts) == 2
    assert result.attempts[0].truncated and "cut off at max_tokens (96 tokens)" in result.attempts[0].error
    assert "cut off" in model.calls[1][-1].content  # the repair says why


def test_cut_off_twice_stops_the_repairs() -> None:
    model = BudgetedModel(budgets=[], chars_per_token=1)  # needs 220 tokens: 96 and 192 both cut it off
    result = ask(client(model, retries=5))
    assert model.budgets == [96, 192]
    assert not result.ok and "cut off at the token budget twice" in result.error
