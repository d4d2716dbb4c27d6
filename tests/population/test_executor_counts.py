"""A decision made in a Ray worker counts its calls on the run's client as a local decision does (no Ray needed)."""

from __future__ import annotations

from malles_graph.graphs.population.executor import count_calls
from malles_graph.graphs.run.cancel import CancelToken, RunClient

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.backends.client import LLMClient
from tests.fakes import ScriptedChatModel


def test_remote_calls_are_added_to_the_run_row_counts_and_the_callers_client():
    origin = LLMClient(ScriptedChatModel(responder=lambda _m: "ok"), backend="openai", model_id="m")
    token = CancelToken()
    client = RunClient(origin, token)
    assert client.token is token  # what the executor polls while a task runs elsewhere
    turns = [TranscriptTurn(role="persona", text="a", prompt_tokens=5, completion_tokens=1),
             TranscriptTurn(role="decide", text="b", prompt_tokens=5, completion_tokens=1, cached=True)]
    outcome = AgentOutcome(agent_id="c1", ok=True, choice="p", quantity=1, transcript=turns, llm_calls=3)
    count_calls(client, outcome)
    assert client.take_counts() == (2, 1)  # 3 answers, one of them from the response cache
    assert origin.calls == 2
    assert client.take_counts() == (0, 0)
