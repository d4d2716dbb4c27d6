"""One store for every kind: a retail, an economist and a wholesale run, listed, shown and exported alike."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from malles_graph.graphs.run import run_scenario
from malles_graph.graphs.wholesale import run_wholesale
from typer.testing import CliRunner

from malles_graph.cli import app
from malles_graph.scenario import Scenario
from malles_graph.wholesale.demand import ItemDemand
from tests.fakes import ScriptedChatModel


def demand_items() -> list[ItemDemand]:
    periods = [dt.date(2001, 1, 1) + dt.timedelta(days=7 * i) for i in range(10)]
    units = np.array([100, 120, 90, 110, 105, 95, 130, 80, 100, 115], dtype=float)
    return [ItemDemand(item_id="A", periods=periods, units=units, history_len=6, mean_price=10.0, mean_cost=8.0,
                       prices=np.full(10, 10.0))]


def wholesale_answer(messages) -> str:
    prompt = str(messages[0].content)
    if "formula" not in prompt or "orders" not in prompt:
        return "Demand looks steady, about 100 units a week."
    return json.dumps({"formula": "Max(0, 2*forecast - inventory)", "orders": {"A": 100}, "rationale": "cover"})


def three_runs(store: str) -> dict[str, str]:
    """Run one scenario of each kind into ``store``; kind -> run id."""
    retail = Scenario.model_validate({
        "name": "retail-one", "backend": {"name": "choice-model"}, "population": {"n_customers": 300, "archetypes": 3},
        "environment": {"n_candidates": 4}, "decision": {"retrieval": False}, "mean_field": {"max_rounds": 2},
        "store": {"url": store}})
    economist = Scenario.model_validate({
        "name": "economist-one", "kind": "economist", "seed": 3, "backend": {"name": "best-response"},
        "economist": {"n_workers": 40, "steps": 2, "planner_every": 1, "check_budget": 10},  # the end-of-run search at its smallest
        "store": {"url": store}})
    wholesale = Scenario.model_validate({
        "name": "wholesale-one", "kind": "wholesale", "backend": {"name": "local", "cache": False},
        "wholesale": {"periods": 4, "dialogue_rounds": 1}, "store": {"url": store}})
    return {
        "retail": run_scenario(retail).run_id,
        "economist": run_scenario(economist).run_id,
        "wholesale": run_wholesale(wholesale, chat_model=ScriptedChatModel(responder=wholesale_answer),
                                   items=demand_items()).run_id,
    }


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    store = f"sqlite:///{tmp_path_factory.mktemp('kinds') / 'store.sqlite'}"
    return store, three_runs(store)


def test_runs_lists_every_kind_and_show_and_export_open_each(stored, tmp_path: Path) -> None:
    store, ids = stored
    cli = CliRunner()
    listed = cli.invoke(app, ["runs", "--store", store, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["id"]: r for r in json.loads(listed.output)}
    assert {rows[run_id]["kind"] for run_id in ids.values()} == {"retail", "economist", "wholesale"}
    assert all(rows[run_id]["status"] == "finished" for run_id in ids.values())
    for kind, run_id in ids.items():
        shown = cli.invoke(app, ["show", run_id, "--store", store], terminal_width=200)
        assert shown.exit_code == 0, shown.output
        assert f"({kind})" in shown.output and "finished" in shown.output
        with_turns = cli.invoke(app, ["show", run_id, "--store", store, "--turns"], terminal_width=200)
        assert with_turns.exit_code == 0 and with_turns.output.endswith(shown.output), with_turns.output
        summary = json.loads(cli.invoke(app, ["show", run_id, "--store", store, "--json"]).output)
        assert summary["kind"] == kind and summary["rounds"], summary
        out = tmp_path / kind
        exported = cli.invoke(app, ["export", run_id, "--store", store, "-o", str(out)])
        assert exported.exit_code == 0 and (out / "rounds.csv").exists() and (out / "runs.csv").exists()
    wholesale = json.loads(cli.invoke(app, ["show", ids["wholesale"], "--store", store, "--json"]).output)
    assert wholesale["summary"]["rule"]["formula"] and wholesale["decisions"] == 1
    assert wholesale["llm_calls"] == 4  # three roles and the rule
