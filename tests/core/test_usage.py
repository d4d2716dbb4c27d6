"""Token accounting and cost: sums per role/agent/round, the price formula, which model is priced, the
preflight refusal of a price table without the model in use, and the real llama.cpp server's prompt cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from malles_graph.agents import TranscriptTurn
from malles_graph.scenario import BackendConfig, ModelPrice, Scenario
from malles_graph.usage import (
    DEFAULT_MODELS,
    TokenUsage,
    cost_usd,
    price_problem,
    priced_model,
    report_from_turns,
    total_usage,
    usage_by_agent,
    usage_by_role,
    usage_by_round,
)


def turn(agent: str, role: str, rnd: int, prompt: int, from_cache: int, completion: int, **kw: object
         ) -> TranscriptTurn:
    return TranscriptTurn(agent_id=agent, role=role, round=rnd, text="x", prompt_tokens=prompt,
                          cached_prompt_tokens=from_cache, completion_tokens=completion, **kw)


TURNS = [
    turn("a", "product_specialist", 1, 600, 0, 40),
    turn("a", "persona", 1, 650, 500, 30),
    turn("b", "product_specialist", 1, 600, 550, 40),
    TranscriptTurn(agent_id="a", role="retrieve", round=1, text="5 neighbours", kind="computed"),
    turn("a", "decide", 2, 900, 800, 20, cached=True),
]


def test_sums_per_role_agent_round_and_total() -> None:
    roles = usage_by_role(TURNS)
    assert list(roles) == ["product_specialist", "persona", "decide"]  # first seen; the computed turn is no call
    assert roles["product_specialist"] == TokenUsage(calls=2, prompt_tokens=1200, cached_prompt_tokens=550,
                                                     completion_tokens=80)
    assert usage_by_agent(TURNS)["a"].calls == 3 and usage_by_agent(TURNS)["b"].prompt_tokens == 600
    assert {r: u.prompt_tokens for r, u in usage_by_round(TURNS).items()} == {1: 1850, 2: 900}
    total = total_usage(TURNS)
    assert total == TokenUsage(calls=4, prompt_tokens=2750, cached_prompt_tokens=1850, completion_tokens=130,
                               replayed=1)
    assert total.cache_hit_rate == pytest.approx(1850 / 2750) and total.uncached_prompt_tokens == 900
    assert TokenUsage().cache_hit_rate == 0.0


def test_cost_formula_and_cached_price_defaulting_to_prompt_price() -> None:
    used = TokenUsage(calls=1, prompt_tokens=1_000_000, cached_prompt_tokens=400_000, completion_tokens=100_000)
    price = ModelPrice(prompt_per_1m=1.0, cached_per_1m=0.25, completion_per_1m=4.0)
    assert cost_usd(used, price) == pytest.approx(0.6 * 1.0 + 0.4 * 0.25 + 0.1 * 4.0)
    no_cache_price = ModelPrice(prompt_per_1m=1.0, completion_per_1m=4.0)
    assert cost_usd(used, no_cache_price) == pytest.approx(1.0 + 0.4)


def test_which_model_name_is_priced() -> None:
    assert priced_model(BackendConfig(name="openai", model="gpt-4.1")) == "gpt-4.1"
    assert priced_model(BackendConfig(name="openai")) == DEFAULT_MODELS["openai"] == "gpt-4o-mini"
    assert priced_model(BackendConfig(name="ollama")) == "llama3.2"
    assert priced_model(BackendConfig(name="local", model="/models/qwen2.5-0.5b.gguf")) == "qwen2.5-0.5b.gguf"
    assert priced_model(BackendConfig(name="local")) == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert priced_model(BackendConfig(name="choice-model")) is None


def test_report_prices_only_when_the_table_has_the_model() -> None:
    price = ModelPrice(prompt_per_1m=2.0, completion_per_1m=8.0)
    priced = Scenario(name="s", backend=BackendConfig(name="openai", model="m1"), prices={"m1": price})
    report = report_from_turns(TURNS, priced)
    assert report.model == "m1" and report.cost_usd == pytest.approx((2750 * 2 + 130 * 8) / 1e6)
    assert report.cost_by_role["decide"] == pytest.approx((900 * 2 + 20 * 8) / 1e6)
    unpriced = report_from_turns(TURNS, Scenario(name="s", backend=BackendConfig(name="openai", model="m1")))
    assert unpriced.cost_usd is None and unpriced.total.prompt_tokens == 2750


def test_price_problem_names_prices_and_the_model() -> None:
    price = ModelPrice(prompt_per_1m=1.0, completion_per_1m=1.0)
    lacking = Scenario(name="s", backend=BackendConfig(name="openai", model="gpt-x"), prices={"gpt-y": price})
    problem = price_problem(lacking)
    assert problem is not None and "prices" in problem and "'gpt-x'" in problem and "gpt-y" in problem
    assert "\n" not in problem
    assert price_problem(Scenario(name="s", backend=BackendConfig(name="openai", model="gpt-y"),
                                  prices={"gpt-y": price})) is None
    assert price_problem(Scenario(name="s", backend=BackendConfig(name="openai", model="gpt-x"))) is None  # no table
    default = price_problem(Scenario(name="s", backend=BackendConfig(name="local"), prices={"gpt-y": price}))
    assert default is not None and "default model of backend 'local'" in default


KIND_SECTIONS = {
    "retail": {"population": {"source": "personas", "personas_file": "retail_households.yaml"},
               "decision": {"retrieval": False}},
    "economist": {"economist": {"n_workers": 4, "steps": 1}},
}


@pytest.mark.parametrize("kind", sorted(KIND_SECTIONS))
def test_malles_run_refuses_a_price_table_without_the_model_before_any_llm_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    from malles_graph.cli import app
    from malles_graph.cli.errors import run_app
    from tests.core.loopback_llm import loopback_llm

    with loopback_llm("ok") as server:
        scenario = {
            "name": "priced", "kind": kind,
            "backend": {"name": "openai", "base_url": server.base_url, "model": "gpt-x", "cache": False},
            **KIND_SECTIONS[kind],
            "prices": {"gpt-4o": {"prompt_per_1m": 2.5, "completion_per_1m": 10.0}},
        }
        path = tmp_path / "priced.yaml"
        path.write_text(yaml.safe_dump(scenario))
        store = f"sqlite:///{tmp_path / 'runs.sqlite'}"
        with pytest.raises(SystemExit) as info:
            run_app(app, ["run", str(path), "--store", store])
        assert server.requests == 0  # refused before any LLM call
    out = capsys.readouterr()
    assert info.value.code == 2 and "Traceback" not in out.err
    assert "prices has no entry for model 'gpt-x'" in out.err and "gpt-4o" in out.err


@pytest.mark.timeout(600)
def test_real_local_server_reports_cached_prompt_tokens_for_a_shared_prefix() -> None:
    """Two calls sharing a long prefix against the bundled SmolLM2 on xllamacpp: the second reads it from the
    slot's prompt cache, and the server says so (prompt_tokens_details.cached_tokens -> cached_prompt_tokens)."""
    from langchain_core.messages import HumanMessage

    from malles_graph.backends import build_client

    client = build_client(BackendConfig(name="local", max_tokens=2, max_concurrency=1, cache=False, n_ctx=1024))
    preamble = "Customer profile and candidates. " + " ".join(f"Item {i} costs {i + 3} dollars." for i in range(25))
    first = client.chat([HumanMessage(content=preamble + " Which is cheapest?")], temperature=0, max_tokens=2)
    second = client.chat([HumanMessage(content=preamble + " Which is dearest?")], temperature=0, max_tokens=2)
    assert first.prompt_tokens > 150
    assert second.cached_prompt_tokens > 0.8 * first.prompt_tokens  # the shared preamble came from the cache
    assert second.cached_prompt_tokens < second.prompt_tokens  # the differing question did not
    assert total_usage([
        TranscriptTurn(role="r", text="", prompt_tokens=r.prompt_tokens, cached_prompt_tokens=r.cached_prompt_tokens,
                       completion_tokens=r.completion_tokens) for r in (first, second)
    ]).cache_hit_rate > 0.4
