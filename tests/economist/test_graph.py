"""The economist graph: shape, context, events, runs with best-response, scripted LLM workers, planners, voters."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from malles_graph.graphs import economist as module
from malles_graph.graphs.economist import (
    EconomistContext,
    build_economist_graph,
    graph,
    run_context,
    run_inputs,
)
from typer.testing import CliRunner

from malles_graph.economist.tax import US_RATES
from malles_graph.errors import ScenarioError
from malles_graph.events import DecisionFinished, RoundFinished, RoundStarted, TurnStreamed
from malles_graph.scenario import load_scenario, parse_scenario
from tests.economist.stored import stored_run
from tests.fakes import ScriptedChatModel

REPO = Path(__file__).resolve().parents[2]
MERMAID = (Path(__file__).parent / "economist_graph.mmd").read_text()


def scenario(backend: str = "best-response", seed: int = 3, **economist) -> object:
    econ = {"n_workers": 60, "steps": 4, "planner_every": 2, "check_budget": 40, **economist}
    return parse_scenario(
        {"name": "t", "kind": "economist", "seed": seed,
         "backend": {"name": backend, "cache": False, "max_retries": 1}, "economist": econ}
    )


def rates_json(rates) -> str:
    return json.dumps({f"bracket_{k + 1}": int(r) for k, r in enumerate(rates)})


def responder(planner=None, worker: str = '{"hours": 30}', vote: str = '{"vote": "B"}'):
    def answer(messages) -> str:
        text = messages[0].content
        if "tax planner" in text:
            return planner(text) if callable(planner) else (planner or rates_json(US_RATES))
        if "standing for election" in text:
            return rates_json([r + 5 for r in US_RATES])
        if "election" in text:
            return vote
        return worker

    return answer


def events_of(sc, chat=None) -> list:
    from malles_graph.backends import build_client

    client = build_client(sc.backend, chat_model=chat) if chat is not None else None
    return [e for e in graph.stream(run_inputs(sc), context=run_context(sc, client), stream_mode="custom")]


# -- shape and configuration -------------------------------------------------------------------------
def test_graph_shape_is_pinned():
    assert graph.get_graph().draw_mermaid().strip() == MERMAID.strip()
    assert graph.name == "economist"
    assert build_economist_graph().compile(name="x").name == "x"


def test_context_fields_are_described_and_defaulted():
    ctx = EconomistContext()
    assert ctx.backend.name == "best-response" and ctx.seed == 0 and ctx.client is None
    assert ctx.options.n_workers == 100 and ctx.options.objective == "skill_weighted"
    assert (ctx.worker_policy, ctx.planner_policy) == ("best_response", "cma")
    for f in dataclasses.fields(EconomistContext):
        assert f.metadata.get("description"), f"context field {f.name} has no description"
        assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def test_no_process_wide_registries_and_a_small_state():
    assert not any(hasattr(module, name) for name in ("_RUNS", "_CACHE", "_PROMPTS"))
    out = graph.invoke({}, context=EconomistContext(options={"n_workers": 30, "steps": 2}))
    assert len(out["history"]) == 2 and out["history"][0]["schedule"] == list(US_RATES)
    # no per-worker arrays: everything in the state is a small JSON value
    assert len(json.dumps(out)) < 20_000


# -- events ------------------------------------------------------------------------------------------
def test_best_response_run_streams_round_events_with_figures():
    events = events_of(scenario(steps=3))
    started = [e.round for e in events if isinstance(e, RoundStarted)]
    finished = [e for e in events if isinstance(e, RoundFinished)]
    assert started == [1, 2, 3] and [e.round for e in finished] == [1, 2, 3]
    assert finished[0].metrics["welfare_skill_weighted"] > 0 and finished[0].metrics["mean_hours"] > 0
    assert finished[0].summary["schedule"] == list(US_RATES)
    assert finished[1].summary["planner"]["policy"] == "cma"  # planner acted at step 2
    assert not any(isinstance(e, (DecisionFinished, TurnStreamed)) for e in events)  # no per-worker noise


def test_llm_workers_stream_turns_and_decisions():
    sc = scenario("local", n_workers=4, steps=2, planner_every=1)
    events = events_of(sc, ScriptedChatModel(responder=responder()))
    decisions = [e for e in events if isinstance(e, DecisionFinished)]
    assert len(decisions) == 8 and all(d.ok and d.choice == "30" for d in decisions)
    turns = [e.turn for e in events if isinstance(e, TurnStreamed)]
    assert {t.role for t in turns} == {"worker", "planner"} and len(turns) == 9
    # each step's decisions come before its RoundFinished
    order = [(type(e).__name__, getattr(e, "round", None)) for e in events]
    assert order.index(("RoundFinished", 1)) > max(i for i, o in enumerate(order) if o == ("DecisionFinished", 1))


# -- best-response runs ------------------------------------------------------------------------------
def test_best_response_run_is_reproducible_and_stored():
    sc = scenario(steps=6, vote_every=3, stackelberg_check=False)
    a = stored_run(sc)
    b = stored_run(sc)
    assert a.run_id != b.run_id  # two runs in the one store, both read back from it
    key = "welfare_skill_weighted"
    assert [r[key] for r in a.history] == [r[key] for r in b.history]
    assert [r["schedule"] for r in a.history] == [r["schedule"] for r in b.history]
    assert len(a.history) == 6 and a.history[0]["schedule"] == list(US_RATES)
    assert all(r["mean_regret"] == 0 for r in a.history)  # best responders have no regret
    assert [e["step"] for e in a.planner_log] == [2, 4]
    assert len(a.votes) == 1 and sum(a.votes[0]["votes"].values()) == 60
    # the run's summary holds what the report needs: counts, the Saez schedule, the welfare table, the credits
    assert a.run.status == "finished" and a.run.n_customers == 60 and len(a.run.rounds) == 6
    assert a.meta["steps"] == 6 and a.meta["final_schedule"] and a.saez["rates"] == a.meta["saez_schedule"]
    assert a.analysis["table"][0]["schedule"] == "final (run)" and a.observations
    assert a.analysis["table"][0]["rates"] == a.meta["final_schedule"]
    changed = stored_run(parse_scenario({**sc.model_dump(), "seed": 99}))
    assert changed.history[0][key] != a.history[0][key]


def test_analysis_table_and_multi_start_check(tmp_path: Path):
    run = stored_run(scenario(steps=4))
    names = [r["schedule"] for r in run.analysis["table"]]
    for expected in ("final (run)", "saez (skill_weighted)", "us 2024", "flat 20%", "best of multi-start search",
                     "saez (utilitarian)", "saez (inverse_income)"):
        assert expected in names
    check = run.analysis["stackelberg"]
    assert set(check["by_start"]) == {"final", "us", "saez", "flat"}
    assert check["best_welfare"] == max(check["by_start"].values())
    assert check["best_welfare"] >= check["by_start"]["final"] >= check["final_welfare"] - 1e-9
    rows = {r["schedule"]: r for r in run.analysis["table"]}
    # the paper's objective, optimised, idles far more workers than the robust one
    assert rows["optimum of inverse_income (search)"]["idle_share"] > rows["saez (skill_weighted)"]["idle_share"]


def test_report_reads_the_run_from_the_store(tmp_path: Path):
    from malles_graph.cli.economist import app

    run = stored_run(scenario(steps=3, stackelberg_check=False))
    result = CliRunner().invoke(app, ["report", run.run_id, "--out", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    assert "final schedule (the incumbent" in result.output and "welfare table" in result.output
    for png in ("welfare.png", "rates.png", "labour.png"):
        assert (tmp_path / "plots" / png).stat().st_size > 10_000
    default = CliRunner().invoke(app, ["report", run.run_id])  # plots under runs/<run id>/report
    assert default.exit_code == 0, default.output
    from malles_graph.paths import runs_dir

    assert (runs_dir() / run.run_id / "report" / "welfare.png").exists()


def test_report_of_an_unknown_run_is_one_clear_error(monkeypatch, capsys):
    from malles_graph.cli import main

    monkeypatch.setattr("sys.argv", ["malles", "economist", "report", "no-such-run"])
    with pytest.raises(SystemExit) as exit_:
        main()
    text = "".join(capsys.readouterr())
    assert exit_.value.code == 2 and "no run 'no-such-run'" in text and "Traceback" not in text


def test_economist_run_command_is_the_generic_runner_and_show_has_the_welfare_table(tmp_path: Path):
    from malles_graph.cli import app as main_app
    from malles_graph.cli.economist import app

    path = tmp_path / "e.yaml"
    path.write_text("name: e\nkind: economist\nseed: 2\nbackend:\n  name: best-response\neconomist:\n  steps: 2\n  planner_every: 1\n"
                    "  n_workers: 50\n  check_budget: 20\n")
    result = CliRunner().invoke(app, ["run", str(path), "--set", "economist.steps=3"])
    assert result.exit_code == 0, result.output
    assert "started run" in result.output and "round 3:" in result.output and "run finished" in result.output
    run_id = result.output.split("started run ")[1].split(",")[0].split()[0]
    assert "near-Stackelberg gap" in result.output and "final (run)" in result.output
    shown = CliRunner().invoke(main_app, ["show", run_id])
    assert shown.exit_code == 0, shown.output
    assert "welfare table" in shown.output and "saez (skill_weighted)" in shown.output and "us 2024" in shown.output
    listed = CliRunner().invoke(main_app, ["runs"])
    assert run_id in listed.output and "economist" in listed.output
    again = CliRunner().invoke(app, ["run", str(path), "--resume", run_id])  # a finished run: nothing to redo
    assert again.exit_code == 0 and "already finished" in again.output
    retail = tmp_path / "r.yaml"
    retail.write_text("name: r\nkind: retail\n")
    with pytest.raises(ScenarioError, match="malles run"):
        CliRunner().invoke(app, ["run", str(retail)], catch_exceptions=False)


# -- scripted LLM workers --------------------------------------------------------------------------
def test_invalid_worker_answers_are_failures_not_defaults(tmp_path: Path):
    chat = ScriptedChatModel(responder=responder(worker='{"hours": 45}'))
    run = stored_run(scenario("local", n_workers=5, steps=1), chat, expect="failed")
    assert run.run.reason.startswith("all 5 decisions failed")  # the runner's verdict, stored with the run
    row = run.history[0]
    assert row["worker_failures"] == 5 and row["population"] == 0  # nobody had a valid choice: no one counted
    decisions = run.decisions
    assert len(decisions) == 5 and all(not d.ok and "45" in d.error and d.choice is None for d in decisions)


def test_archetypes_keep_the_call_count():
    chat = ScriptedChatModel(responder=responder())
    run = stored_run(scenario("local", n_workers=3000, archetypes=30, steps=2, planner_every=5,
                                 stackelberg_check=False), chat)
    assert [r["llm_calls"] for r in run.history] == [30, 30]
    assert run.history[0]["population"] == 3000
    assert run.meta["n_simulated"] == 30


# -- voting ------------------------------------------------------------------------------------------
def test_llm_ballots_are_shuffled_and_tallied_by_platform():
    seen: list[str] = []

    def vote(messages) -> str:
        text = messages[0].content
        if "election" not in text:
            return responder()(messages)
        seen.append(text)
        # always vote for the letter printed next to the flat platform, wherever it is on the ballot
        for block in text.split("Platform ")[1:]:
            if "20.0%" in block and "10.0%" not in block:
                return json.dumps({"vote": block[0]})
        raise AssertionError("flat platform not on the ballot")

    chat = ScriptedChatModel(responder=vote)
    run = stored_run(scenario("local", n_workers=8, steps=3, planner_every=5, vote_every=2,
                                 vote_platforms=["planner", "flat"], stackelberg_check=False),
                        chat)
    (record,) = run.votes
    assert record["winner"] == "flat" and record["votes"] == {"planner": 0.0, "flat": 8.0}
    assert run.history[-1]["schedule"] == [20.0] * 7 and run.history[-1]["source"] == "vote:flat"
    firsts = {t.split("Platform A:")[1].split("Platform B")[0] for t in seen}
    assert len(firsts) == 2  # the planner is not always listed first


def test_democratic_mode_elects_a_leader_whose_platform_sets_the_rates():
    sc = scenario(n_workers=300, steps=4, planner="fixed", vote_every=2, vote_mode="leader", candidates=3,
                  stackelberg_check=False)
    run = stored_run(sc)
    (record,) = run.votes
    assert len(record["platforms"]) == 3 and all(name.startswith("leader:worker-") for name in record["platforms"])
    assert record["winner"] in record["platforms"] and sum(record["votes"].values()) == 300
    assert run.history[2]["schedule"] == record["platforms"][record["winner"]]
    assert run.history[2]["source"] == f"vote:{record['winner']}"
    # LLM candidates write bounded platforms through the same schema as the planner
    chat = ScriptedChatModel(responder=responder(vote='{"vote": "A"}'))
    llm = stored_run(scenario("local", n_workers=6, steps=3, planner="fixed", vote_every=2, vote_mode="leader",
                                 candidates=2, stackelberg_check=False), chat)
    assert llm.votes[0]["winner"].startswith("leader:worker-")
    assert llm.history[-1]["schedule"] == [r + 5 for r in US_RATES]


# -- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("economist.initial_schedule", "[10, 20, 30, 40, 50, 60, 170]", "[0, 100]"),
        ("economist.brackets", "[0, 50000, 20000, 100000, 200000, 300000, 600000]", "increasing order"),
        ("economist.objective", "happiness", "objective"),
        ("economist.vote_every", "40", "vote_every (40) must be smaller than steps"),
    ],
)
def test_bad_economist_input_is_one_clear_error_with_exit_code_2(tmp_path: Path, monkeypatch, capsys, field, value,
                                                                message):
    from malles_graph.cli import main

    path = tmp_path / "bad.yaml"
    key = field.split(".")[1]
    path.write_text(f"name: bad\nkind: economist\neconomist:\n  steps: 10\n  {key}: {value}\n")
    monkeypatch.setattr("sys.argv", ["malles", "economist", "run", str(path)])
    with pytest.raises(SystemExit) as exit_:
        main()
    out = capsys.readouterr()
    text = out.out + out.err
    assert exit_.value.code == 2, text
    assert message in text and str(path) in text and "Traceback" not in text
    with pytest.raises(ScenarioError, match="kind"):
        run_context(parse_scenario({"name": "r", "kind": "retail"}))


def test_wrong_backend_for_llm_policy_is_a_clear_error():
    with pytest.raises(ScenarioError, match="not an LLM"):
        run_context(scenario("best-response", planner="llm"))


# -- every shipped scenario smoke-runs (shrunk; scripted model for LLM backends) ----------------------
@pytest.mark.parametrize("path", sorted((REPO / "scenarios").glob("economist-*.yaml")), ids=lambda p: p.stem)
def test_scenarios_smoke_run(path: Path):
    sets = {"economist.n_workers": 200, "economist.steps": 3, "backend.cache": False,
            "economist.stackelberg_check": False}
    text = path.read_text()
    if "vote_every" in text:
        sets["economist.vote_every"] = 2
    if "archetypes:" in text:
        sets["economist.archetypes"] = 10
    sc = load_scenario(path, sets)
    chat = ScriptedChatModel(responder=responder()) if sc.backend.name != "best-response" else None
    run = stored_run(sc, chat)
    assert len(run.history) == 3 and np.isfinite(run.history[-1]["welfare_skill_weighted"])


def test_graph_schemas_and_json_context_for_a_server():
    assert "options" in json.dumps(graph.get_context_jsonschema())
    ctx = EconomistContext(options={"n_workers": 30, "steps": 2}, backend={"name": "best-response"})
    out = graph.invoke({}, context=ctx)
    assert len(out["history"]) == 2 and out["final_rates"] == out["incumbent"]["rates"]


# -- the real bundled model ----------------------------------------------------------------------------
@pytest.mark.llm
def test_real_local_backend_tiny_run(tmp_path: Path, local_backend):
    sc = parse_scenario({
        "name": "tiny-local", "kind": "economist", "seed": 0,
        "backend": {**local_backend.model_dump(), "max_tokens": 24, "max_retries": 0},
        "economist": {"n_workers": 2, "steps": 2, "planner_every": 1, "stackelberg_check": False},
    })
    run = stored_run(sc)
    assert len(run.history) == 2 and len(run.planner_log) == 1
    decisions = run.decisions
    assert len(decisions) == 4
    # the hours are an enum of the grid in the JSON schema (a llama.cpp grammar): the bundled model answers
    # every worker call validly (measured: 4 of 4), so a broken worker prompt or schema fails here
    assert all(d.ok and float(d.choice) in range(0, 101, 10) for d in decisions), [d.error for d in decisions]
    assert run.meta["llm_calls"] == 5  # 2 workers x 2 steps + 1 planner action, no repairs
