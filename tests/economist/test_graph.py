"""The economist graph: shape, context, runs with best-response, scripted and real LLM workers and planners."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from malles_graph.graphs.economist import EconomistContext, build_economist_graph, graph, run_economist
from typer.testing import CliRunner

from malles_graph.economist.tax import US_RATES
from malles_graph.errors import ScenarioError
from malles_graph.scenario import load_scenario, parse_scenario
from tests.fakes import ScriptedChatModel

REPO = Path(__file__).resolve().parents[2]

MERMAID = """---
config:
  flowchart:
    curve: linear
---
graph TD;
	__start__([<p>__start__</p>]):::first
	setup(setup)
	worker(worker)
	best_response(best_response)
	aggregate(aggregate)
	planner(planner)
	vote(vote)
	advance(advance)
	__end__([<p>__end__</p>]):::last
	__start__ --> setup;
	advance -.-> __end__;
	advance -.-> best_response;
	advance -.-> worker;
	aggregate -.-> advance;
	aggregate -.-> planner;
	aggregate -.-> vote;
	best_response -.-> advance;
	best_response -.-> planner;
	best_response -.-> vote;
	planner -.-> advance;
	planner -.-> vote;
	setup -.-> __end__;
	setup -.-> best_response;
	setup -.-> worker;
	vote --> advance;
	worker --> aggregate;
	classDef default fill:#f2f0ff,line-height:1.2
	classDef first fill-opacity:0
	classDef last fill:#bfb6fc"""


def scenario(backend: str = "best-response", **economist) -> object:
    econ = {"n_workers": 60, "steps": 4, "planner_every": 2, **economist}
    return parse_scenario(
        {"name": "t", "kind": "economist", "seed": 3, "backend": {"name": backend, "cache": False, "max_retries": 1},
         "economist": econ}
    )


def responder(planner: str = '{"rates": [40, 40, 40, 40, 40, 40, 40]}', worker: str = '{"hours": 40}',
              vote: str = '{"vote": "B"}'):
    def answer(messages) -> str:
        text = messages[0].content
        if "tax planner" in text:
            return planner
        if "election" in text:
            return vote
        return worker

    return answer


# -- shape and configuration -------------------------------------------------------------------------
def test_graph_shape_is_pinned():
    assert graph.get_graph().draw_mermaid().strip() == MERMAID.strip()
    assert graph.name == "economist"


def test_context_fields_are_described_and_defaulted():
    ctx = EconomistContext()
    assert ctx.backend.name == "best-response" and ctx.seed == 0 and ctx.chat_model is None
    assert ctx.options.n_workers == 100 and ctx.options.objective == "skill_weighted"
    for f in dataclasses.fields(EconomistContext):
        assert f.metadata.get("description"), f"context field {f.name} has no description"
        assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def test_builder_compiles_again():
    assert build_economist_graph().compile(name="x").name == "x"


# -- best-response runs ------------------------------------------------------------------------------
def test_best_response_run_is_reproducible_and_persisted(tmp_path: Path):
    sc = scenario(steps=6, vote_every=3)
    a = run_economist(sc, run_dir=tmp_path / "a")
    b = run_economist(sc, run_dir=tmp_path / "b")
    key = "welfare_skill_weighted"
    assert [r[key] for r in a.history] == [r[key] for r in b.history]
    assert [r["schedule"] for r in a.history] == [r["schedule"] for r in b.history]
    assert len(a.history) == 6 and a.history[0]["schedule"] == list(US_RATES)
    assert all(r["mean_regret"] == 0 for r in a.history)  # best responders have no regret
    assert [e["step"] for e in a.planner_log] == [2, 4]
    assert len(a.votes) == 1 and sum(a.votes[0]["votes"].values()) == 60
    for name in ("meta.json", "steps.parquet", "workers.parquet", "planner.jsonl", "votes.jsonl", "analysis.json",
                 "saez.json"):
        assert (a.run_dir / name).exists(), name
    other = run_economist(scenario(steps=6), run_dir=tmp_path / "c", write=True)
    assert other.history[0][key] == a.history[0][key]  # same seed, same population at step 1
    changed = run_economist(parse_scenario({**sc.model_dump(), "seed": 99}), write=False)
    assert changed.history[0][key] != a.history[0][key]


def test_analysis_table_has_baselines_and_stackelberg_check(tmp_path: Path):
    run = run_economist(scenario(steps=4), run_dir=tmp_path / "r")
    names = [r["schedule"] for r in run.analysis["table"]]
    for expected in ("final (run)", "saez (skill_weighted)", "us 2024", "flat 20%", "local search around final",
                     "saez (utilitarian)", "saez (inverse_income)"):
        assert expected in names
    check = run.analysis["stackelberg"]
    assert check["local_welfare"] >= check["final_welfare"]
    rows = {r["schedule"]: r for r in run.analysis["table"]}
    # the paper's objective, optimised, idles far more workers than the robust one
    assert rows["optimum of inverse_income (local search)"]["idle_share"] > rows["saez (skill_weighted)"]["idle_share"]


def test_report_from_run_folder(tmp_path: Path):
    from malles_graph.cli.economist import app

    run = run_economist(scenario(steps=3), run_dir=tmp_path / "r")
    result = CliRunner().invoke(app, ["report", str(run.run_dir)])
    assert result.exit_code == 0, result.output
    for png in ("welfare.png", "rates.png", "labour.png"):
        assert (run.run_dir / "report" / png).stat().st_size > 10_000


# -- scripted LLM planner --------------------------------------------------------------------------
def test_scripted_planner_converges_with_bounded_changes():
    chat = ScriptedChatModel(responder=responder())
    run = run_economist(scenario("local", worker="best_response", steps=12, planner_every=2), chat_model=chat,
                        write=False)
    log = run.planner_log
    assert len(log) == 5 and all(e["ok"] for e in log)
    for e in log:
        assert max(abs(a - b) for a, b in zip(e["after"], e["before"], strict=True)) <= 10 + 1e-9
    assert log[0]["clipped"]  # 10 -> 40 needs three actions
    assert list(run.final_schedule.rates) == [40.0] * 7  # converged to the proposal
    assert len(chat.calls) == 5
    # the planner saw its history: the second prompt holds the first period's welfare line
    assert "steps 1-2: rates [10.0, 12.0" in chat.calls[1][0].content


def test_planner_parse_failure_changes_nothing_and_is_recorded():
    chat = ScriptedChatModel(responder=responder(planner="I would raise taxes on the rich."))
    run = run_economist(scenario("local", worker="best_response", steps=5, planner_every=2), chat_model=chat,
                        write=False)
    assert [e["ok"] for e in run.planner_log] == [False, False]
    for e in run.planner_log:
        assert e["after"] == e["before"] and e["error"] and e["calls"] == 2  # one repair, then a failure
    assert all(r["schedule"] == list(US_RATES) for r in run.history)
    assert run.meta["planner_failures"] == 2


def test_planner_out_of_range_answer_is_repaired():
    answers = iter(['{"rates": [10, 12, 22]}', '{"rates": [15, 12, 22, 24, 32, 35, 37]}'] * 10)
    chat = ScriptedChatModel(responder=lambda m: next(answers))
    run = run_economist(scenario("local", worker="best_response", steps=3, planner_every=2), chat_model=chat,
                        write=False)
    e = run.planner_log[0]
    assert e["ok"] and e["calls"] == 2 and e["after"][0] == 15


# -- scripted LLM workers --------------------------------------------------------------------------
def test_llm_workers_repaired_then_regret_measured(tmp_path: Path):
    def answer(messages) -> str:
        if "tax planner" in messages[0].content:
            return '{"rates": [10, 12, 22, 24, 32, 35, 37]}'
        return '{"hours": 40}' if len(messages) > 1 else '{"hours": 45}'  # off-grid first, repaired

    chat = ScriptedChatModel(responder=answer)
    run = run_economist(scenario("local", n_workers=6, steps=2), chat_model=chat, run_dir=tmp_path / "r")
    assert all(r["worker_failures"] == 0 for r in run.history)
    assert run.history[0]["llm_calls"] == 12  # 6 workers x (answer + repair)
    assert run.history[0]["mean_hours"] == 40
    assert run.history[0]["mean_regret"] > 0  # fixed 40 hours is not everyone's best response
    lines = (tmp_path / "r" / "decisions.jsonl").read_text().splitlines()
    assert len(lines) == 12 and all(json.loads(x)["ok"] for x in lines)


def test_invalid_worker_answers_are_failures_not_defaults(tmp_path: Path):
    chat = ScriptedChatModel(responder=responder(worker='{"hours": 45}'))
    run = run_economist(scenario("local", n_workers=5, steps=1), chat_model=chat, run_dir=tmp_path / "r")
    row = run.history[0]
    assert row["worker_failures"] == 5 and row["population"] == 0  # nobody had a valid choice: no one counted
    decisions = [json.loads(x) for x in (tmp_path / "r" / "decisions.jsonl").read_text().splitlines()]
    assert all(not d["ok"] and "45" in d["error"] and d["hours"] is None for d in decisions)


def test_archetypes_keep_the_call_count():
    chat = ScriptedChatModel(responder=responder())
    run = run_economist(scenario("local", n_workers=3000, archetypes=30, steps=2, planner_every=5), chat_model=chat,
                        write=False)
    assert [r["llm_calls"] for r in run.history] == [30, 30]
    assert run.history[0]["population"] == 3000
    assert run.meta["n_simulated"] == 30


# -- voting ------------------------------------------------------------------------------------------
def test_llm_voting_elects_and_records():
    chat = ScriptedChatModel(responder=responder(vote='{"vote": "B"}'))
    run = run_economist(
        scenario("local", n_workers=8, steps=3, planner_every=5, vote_every=2, vote_platforms=["planner", "flat"]),
        chat_model=chat, write=False,
    )
    (record,) = run.votes
    assert record["winner"] == "flat" and record["votes"] == {"planner": 0.0, "flat": 8.0}
    assert run.history[-1]["schedule"] == [20.0] * 7  # the elected flat tax replaced the planner's schedule


def test_wrong_backend_for_llm_policy_is_a_clear_error():
    with pytest.raises(ScenarioError, match="not an LLM"):
        run_economist(scenario("best-response", planner="llm"), write=False)
    with pytest.raises(ScenarioError, match="kind"):
        run_economist(parse_scenario({"name": "r", "kind": "retail"}), write=False)


# -- every shipped scenario smoke-runs (shrunk; scripted model for LLM backends) ----------------------
@pytest.mark.parametrize("path", sorted((REPO / "scenarios").glob("economist-*.yaml")), ids=lambda p: p.stem)
def test_scenarios_smoke_run(path: Path):
    sc = load_scenario(path, {"economist.n_workers": 200, "economist.steps": 2, "backend.cache": False})
    if sc.economist.archetypes:
        sc = load_scenario(path, {"economist.n_workers": 200, "economist.steps": 2, "economist.archetypes": 10,
                                  "backend.cache": False})
    chat = ScriptedChatModel(responder=responder()) if sc.backend.name != "best-response" else None
    run = run_economist(sc, chat_model=chat, write=False)
    assert len(run.history) == 2 and np.isfinite(run.history[-1]["welfare_skill_weighted"])


# -- the real bundled model ----------------------------------------------------------------------------
@pytest.mark.llm
def test_real_local_backend_tiny_run(tmp_path: Path, local_backend):
    sc = parse_scenario({
        "name": "tiny-local", "kind": "economist", "seed": 0,
        "backend": {**local_backend.model_dump(), "max_tokens": 24, "max_retries": 0},
        "economist": {"n_workers": 2, "steps": 2, "planner_every": 1},
    })
    run = run_economist(sc, run_dir=tmp_path / "r")
    assert len(run.history) == 2 and len(run.planner_log) == 1
    decisions = [json.loads(x) for x in (tmp_path / "r" / "decisions.jsonl").read_text().splitlines()]
    assert len(decisions) == 4
    for d in decisions:  # each answer is either a valid grid choice or a recorded failure
        assert (d["ok"] and d["hours"] in range(0, 101, 10)) or (not d["ok"] and d["error"])
    assert run.meta["llm_calls"] == 5  # 2 workers x 2 steps + 1 planner action, no repairs


def test_run_is_mirrored_in_the_sqlmodel_store(tmp_path: Path):
    from sqlmodel import Session, select

    from malles_graph.store import make_engine
    from malles_graph.store.tables import DecisionRow, RoundRow, RunRow

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    sc = parse_scenario({**scenario("local", n_workers=40, archetypes=4, steps=2).model_dump(), "store": {"url": url}})
    run = run_economist(sc, chat_model=ScriptedChatModel(responder=responder()), run_dir=tmp_path / "r")
    with Session(make_engine(url)) as s:
        (row,) = s.exec(select(RunRow)).all()
        assert (row.id, row.kind, row.status, row.rounds_done) == (run.run_dir.name, "economist", "finished", 2)
        assert len(s.exec(select(RoundRow)).all()) == 2
        decisions = s.exec(select(DecisionRow)).all()
        assert len(decisions) == 8 and all(d.ok and d.choice == "40" for d in decisions)


def test_graph_schemas_and_json_context_for_a_server():
    assert "options" in json.dumps(graph.get_context_jsonschema())
    assert graph.get_input_jsonschema()["properties"].keys() == {"run_key"}
    ctx = EconomistContext(options={"n_workers": 30, "steps": 2}, backend={"name": "best-response"})
    out = graph.invoke({}, context=ctx)
    assert len(out["history"]) == 2 and out["schedule"].rates == US_RATES
    from malles_graph.graphs import economist as module

    assert out["run_key"] not in module._RUNS  # a finished run frees its population
