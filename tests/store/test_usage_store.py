"""Tokens and cost from the store: decisions and dialogue turns in, RunSummary.usage and `malles show` out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.scenario import BackendConfig, ModelPrice, Scenario
from malles_graph.store import make_engine
from malles_graph.store.repository import create_run, record_decision, record_turn, token_usage
from malles_graph.store.summary import summarise
from malles_graph.store.tables import RunRow
from malles_graph.usage import TokenUsage

PRICE = ModelPrice(prompt_per_1m=2.0, cached_per_1m=0.5, completion_per_1m=8.0)


@pytest.fixture
def engine(tmp_path: Path):
    return make_engine(f"sqlite:///{tmp_path / 'malles.sqlite'}")


def turn(agent: str, role: str, prompt: int, cached: int, completion: int, replayed: bool = False) -> TranscriptTurn:
    return TranscriptTurn(agent_id=agent, role=role, text=f"{role} says", prompt_tokens=prompt,
                          cached_prompt_tokens=cached, completion_tokens=completion, cached=replayed)


def decision(agent: str, turns: list[TranscriptTurn]) -> AgentOutcome:
    return AgentOutcome(agent_id=agent, ok=True, choice="p1", quantity=1, transcript=turns, llm_calls=len(turns))


def store_run(engine, prices: dict[str, ModelPrice]) -> None:
    scenario = Scenario(name="demo", backend=BackendConfig(name="openai", model="gpt-x"), prices=prices)
    create_run(engine, RunRow(id="r1", name="demo", scenario_json=scenario.model_dump_json()))
    # round 1: two agents debate; a computed note (no tokens) is not an LLM call
    record_decision(engine, "r1", 1, 0, 1.0, decision("a", [
        turn("a", "persona", 1000, 0, 50), turn("a", "decide", 1200, 900, 20),
        TranscriptTurn(agent_id="a", role="retrieve", text="3 neighbours", kind="computed"),
    ]))
    record_decision(engine, "r1", 1, 1, 1.0, decision("b", [turn("b", "persona", 1000, 800, 40)]))
    # round 2: agent a again, its decide answer replayed from the response cache
    record_decision(engine, "r1", 2, 0, 1.0, decision("a", [turn("a", "decide", 1200, 900, 20, replayed=True)]))
    # a dialogue turn stored outside any decision (wholesale/economist style)
    record_turn(engine, "r1", 2, 0, turn("", "planner", 500, 0, 100))


def test_run_summary_usage_by_role_round_and_cost(engine) -> None:
    store_run(engine, {"gpt-x": PRICE})
    usage = summarise(engine, "r1", "sqlite://").usage
    assert usage.model == "gpt-x" and usage.price == PRICE
    assert usage.total == TokenUsage(calls=5, prompt_tokens=4900, cached_prompt_tokens=2600, completion_tokens=230,
                                     replayed=1)
    assert list(usage.by_role) == ["persona", "decide", "planner"]
    assert usage.by_role["decide"] == TokenUsage(calls=2, prompt_tokens=2400, cached_prompt_tokens=1800,
                                                 completion_tokens=40, replayed=1)
    assert {r: u.calls for r, u in usage.by_round.items()} == {1: 3, 2: 2}
    assert usage.cache_hit_rate == pytest.approx(2600 / 4900)
    # (4900 - 2600) x 2 + 2600 x 0.5 + 230 x 8, per million
    assert usage.cost_usd == pytest.approx((2300 * 2 + 2600 * 0.5 + 230 * 8) / 1e6)
    assert sum(usage.cost_by_role.values()) == pytest.approx(usage.cost_usd)
    by_agent = token_usage(engine, "r1", "agent_id")
    assert by_agent["a"].calls == 3 and by_agent["b"].prompt_tokens == 1000 and by_agent[""].completion_tokens == 100


def test_redoing_a_decision_replaces_its_tokens(engine) -> None:
    store_run(engine, {})
    record_decision(engine, "r1", 1, 1, 1.0, decision("b", [turn("b", "persona", 10, 0, 1)]))
    assert token_usage(engine, "r1", "agent_id")["b"] == TokenUsage(calls=1, prompt_tokens=10, completion_tokens=1)


def test_no_price_table_shows_tokens_and_no_cost(engine) -> None:
    store_run(engine, {})
    usage = summarise(engine, "r1", "sqlite://").usage
    assert usage.total.prompt_tokens == 4900 and usage.cost_usd is None and usage.cost_by_role == {}


def table_rows(output: str) -> dict[str, list[str]]:
    """Rows of the printed rich tables, by first cell."""
    rows = {}
    for line in output.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            rows[cells[0]] = cells
    return rows


def test_malles_show_prints_the_tokens_table(engine) -> None:
    from malles_graph.cli import app

    store_run(engine, {"gpt-x": PRICE})
    runner = CliRunner()
    shown = runner.invoke(app, ["show", "r1", "--store", str(engine.url)])
    assert shown.exit_code == 0, shown.output
    assert "tokens by role" in shown.output and "cache hit rate 53.1%" in shown.output
    rows = table_rows(shown.output)
    # role, calls, replayed, prompt, cached, completion, cache hit, cost
    assert rows["decide"][1:7] == ["2", "1", "2,400", "1,800", "40", "75.0%"]
    assert rows["total"][1:6] == ["5", "1", "4,900", "2,600", "230"] and rows["total"][7] == "$0.0077"
    as_json = json.loads(runner.invoke(app, ["show", "r1", "--store", str(engine.url), "--json"]).output)
    assert as_json["usage"]["total"]["prompt_tokens"] == 4900
    assert as_json["usage"]["cost_usd"] == pytest.approx(0.00774)


def test_malles_show_without_prices_shows_a_dash(engine) -> None:
    from malles_graph.cli import app

    store_run(engine, {})
    shown = CliRunner().invoke(app, ["show", "r1", "--store", str(engine.url)])
    total = table_rows(shown.output)["total"]
    assert total[3] == "4,900" and total[-1] == "-"


def test_usage_command_by_agent_as_csv(engine) -> None:
    from malles_graph.cli.usage_view import app

    store_run(engine, {"gpt-x": PRICE})
    out = CliRunner().invoke(app, ["r1", "--by", "agent", "--csv", "--store", str(engine.url)])
    assert out.exit_code == 0, out.output
    rows = list(csv.reader(io.StringIO(out.output)))
    assert rows[0] == ["agent", "calls", "replayed", "prompt", "cached", "completion", "cache hit", "cost"]
    assert [r[0] for r in rows[1:]] == ["", "a", "b", "total"]
    assert rows[2][1:4] == ["3", "1", "3,400"]
    bad = CliRunner().invoke(app, ["r1", "--by", "planet", "--store", str(engine.url)])
    assert bad.exit_code == 2 and "planet" in bad.output


def test_end_of_run_table_shows_tokens_and_cost_only_for_llm_runs(engine) -> None:
    from rich.console import Console

    from malles_graph.cli.run_view import summary_table

    def rendered(summary) -> str:
        console = Console(width=160, record=True)
        console.print(summary_table(summary))
        return console.export_text()

    store_run(engine, {"gpt-x": PRICE})
    text = rendered(summarise(engine, "r1", "sqlite://"))
    assert "4,900 (2,600, 53%) / 230" in text
    assert f"${(2300 * 2 + 2600 * 0.5 + 230 * 8) / 1e6:,.4f}" in text
    create_run(engine, RunRow(id="r2", name="computed", scenario_json=Scenario(name="computed").model_dump_json()))
    assert "tokens" not in rendered(summarise(engine, "r2", "sqlite://"))  # a run without LLM calls: no token row
