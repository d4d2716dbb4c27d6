from langchain_core.messages import HumanMessage

from malles_graph.backends import build_client
from malles_graph.backends.client import extract_json
from malles_graph.models import Decision
from malles_graph.scenario import BackendConfig
from tests.fakes import ScriptedChatModel

GOOD = '{"product_id": "A", "quantity": 2, "rationale": "cheap", "confidence": 0.8}'


def client_for(script: list[str], retries: int = 2):
    return build_client(BackendConfig(max_retries=retries, cache=False), chat_model=ScriptedChatModel(script=script))


def check(decision: Decision) -> list[str]:
    return decision.check_against(["A", "B"], max_quantity=20)


def test_valid_first_time() -> None:
    result = client_for([GOOD]).structured([HumanMessage(content="q")], Decision, validator=check)
    assert result.ok and result.value.product_id == "A" and result.retries == 0


def test_repair_feeds_error_back() -> None:
    model = ScriptedChatModel(script=['{"product_id": "Z", "quantity": 1}', GOOD])
    client = build_client(BackendConfig(cache=False), chat_model=model)
    result = client.structured([HumanMessage(content="q")], Decision, validator=check)
    assert result.ok and result.retries == 1
    feedback = model.calls[1][-1].content
    assert "'Z' is not among the candidates" in feedback


def test_failure_after_limit_is_recorded_not_defaulted() -> None:
    result = client_for(["no json here", '{"product_id": "A", "quantity": -3}', '{"product_id": "A", "quantity": 500}'])
    outcome = result.structured([HumanMessage(content="q")], Decision, validator=check)
    assert not outcome.ok and outcome.value is None
    assert len(outcome.attempts) == 3
    assert "not a complete JSON object" in outcome.attempts[0].error
    assert "quantity" in outcome.attempts[1].error
    assert outcome.error == outcome.attempts[-1].error


def test_extract_json_variants() -> None:
    assert extract_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('Sure! {"a": 2} hope it helps') == {"a": 2}
    assert extract_json("[1, 2]") is None
    assert extract_json('{"a": ') is None
