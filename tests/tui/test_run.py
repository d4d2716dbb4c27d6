"""Run, Live debate and Population screens driving real runs (scripted chat model, real runner and store)."""

from __future__ import annotations

import pytest
from malles_graph.tui import messages as msg
from malles_graph.tui.app import MallesApp
from malles_graph.tui.screens.debate import DebateScreen
from malles_graph.tui.screens.population import PopulationScreen
from malles_graph.tui.widgets.transcript import TranscriptView
from sqlmodel import Session, select

from malles_graph.store.engine import make_engine
from malles_graph.store.tables import DecisionRow, RunRow
from tests.tui.conftest import Recorder, restless, scripted, wait_for

pytestmark = pytest.mark.anyio
SIZE = (150, 45)


async def test_start_run_streams_turns_to_debate_and_population(scenario_file, store_url):
    seen = Recorder()
    app = MallesApp(scenario_path=scenario_file(rounds=2), store_url=store_url, chat_model_factory=scripted(),
                    real_sample=False)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await pilot.press("f3")  # watch the debate while it runs
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session.status not in ("running", "cancelling"))
        assert app.session.status == "finished", app.session.error
        turns = seen.of(msg.TurnStreamed)
        assert turns, "no transcript turn reached the app"
        assert {t.turn.role for t in turns} >= {"product_specialist", "price_analyst", "persona"}
        assert len(seen.of(msg.RoundFinished)) == 2
        decisions = seen.of(msg.DecisionFinished)
        assert len(decisions) == 6 and all(d.outcome.ok for d in decisions)  # 3 archetypes x 2 rounds
        run_id = seen.of(msg.RunFinished)[0].run_id
        assert run_id and run_id == seen.of(msg.RunStarted)[-1].run_id

        debate = app.screen
        assert isinstance(debate, DebateScreen)
        await pilot.pause()
        view = debate.query_one("#debate-transcript", TranscriptView)
        shown = app.session.current.transcripts[debate.agent_id]
        assert view.turn_count == len(shown) > 0  # streamed turn by turn, none shown twice
        assert "DECISION" in str(debate.query_one("#decision-panel").render())
        agents = debate.query_one("#agent-list")
        assert agents.option_count == 3
        first = debate.agent_id
        await pilot.press("n")  # next archetype
        assert debate.agent_id != first and debate.follow is False

        await pilot.press("f2")
        await pilot.pause()
        log_text = "\n".join(line.text for line in app.screen.query_one("#run-log").lines)
        assert "finished" in log_text and "6 decisions, 0 failed" in log_text
        await pilot.press("f4")
        population = app.screen
        assert isinstance(population, PopulationScreen)
        await pilot.pause()
        table = population.query_one("#archetype-table")
        assert table.row_count == 3
        assert len(app.session.finished_rounds) == 2
        assert all("demand" in r.figures for r in app.session.finished_rounds)

    with Session(make_engine(store_url)) as session:
        assert session.get(RunRow, run_id).status == "finished"
        assert len(session.exec(select(DecisionRow).where(DecisionRow.run_id == run_id)).all()) == 6


async def test_cancel_run_keeps_what_was_recorded(scenario_file, store_url):
    seen = Recorder()
    app = MallesApp(scenario_path=scenario_file(rounds=50), store_url=store_url,
                    chat_model_factory=restless(delay_s=0.05), real_sample=False)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: len(seen.of(msg.DecisionFinished)) >= 2)
        await pilot.press("ctrl+g")
        assert app.session.status in ("cancelling", "cancelled")
        await wait_for(pilot, lambda: any(m.stopped for m in seen.of(msg.RunCancelled)))
        assert app.session.status == "cancelled"
        assert not seen.of(msg.RunFinished) and not seen.of(msg.RunFailed)
        run_id = app.session.run_id
        shown = [(m.round_index, m.outcome.agent_id) for m in seen.of(msg.DecisionFinished)]
        assert len(shown) == len(set(shown)), "a decision reached the app twice (recovered after the cancel)"
        # the app is still alive and usable
        await pilot.press("f4")
        assert isinstance(app.screen, PopulationScreen)
    with Session(make_engine(store_url)) as session:
        run = session.get(RunRow, run_id)
        assert run.status == "cancelled" and run.owner is None  # marked so, resumable, not failed
        stored = session.exec(select(DecisionRow).where(DecisionRow.run_id == run_id)).all()
        assert {(d.round, d.agent_id) for d in stored} >= set(shown)  # everything the app showed is stored


async def test_invalid_scenario_shows_error_and_app_keeps_running(scenario_file, store_url):
    bad = scenario_file(text="name: bad\nkind: retail\npopulation: {archetypes: 0}\n", name="bad.yaml")
    app = MallesApp(scenario_path=bad, store_url=store_url, chat_model_factory=scripted(), real_sample=False)
    seen = Recorder()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        panel = app.screen.query_one("#form-error")
        assert panel.display and "population.archetypes" in str(panel.render())
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.session.status == "idle"  # nothing started
        assert any("population.archetypes" in n.message for n in app._notifications)
        await pilot.press("f6")
        assert app.screen.__class__.__name__ == "EditorScreen"


async def test_form_override_out_of_range_is_refused(scenario_file, store_url):
    app = MallesApp(scenario_path=scenario_file(), store_url=store_url, chat_model_factory=scripted(),
                    real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#archetypes").value = "9"  # 5 personas only: the runner's preflight refuses
        app.screen.query_one("#seed").value = "7"
        scenario = app.screen.build_scenario()
        assert scenario is not None and scenario.seed == 7 and scenario.population.archetypes == 9
        app.screen.query_one("#rounds").value = "0"
        assert app.screen.build_scenario() is None
        assert "mean_field.max_rounds" in str(app.screen.query_one("#form-error").render())
        await pilot.pause()


async def test_unreachable_store_fails_cleanly(scenario_file):
    seen = Recorder()
    app = MallesApp(scenario_path=scenario_file(), store_url="postgresql://nobody@127.0.0.1:1/none",
                    chat_model_factory=scripted(), real_sample=False)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session.status == "failed", timeout=30)
        error = seen.of(msg.RunFailed)[0].error
        assert "run store" in error and "127.0.0.1" in error
        assert "Run failed" in [n.title for n in app._notifications]
        await pilot.press("f5")
        assert app.screen.__class__.__name__ == "HistoryScreen"


async def test_backend_that_does_not_answer(scenario_file, store_url):
    """An OpenAI-compatible server that is not there: the run ends with a clear message, the app lives."""
    text = (scenario_file(rounds=1).read_text()
            .replace("name: local", "name: openai, base_url: 'http://127.0.0.1:9/v1', timeout_s: 2")
            .replace("debate_rounds: 1", "debate_rounds: 0"))
    path = scenario_file(text=text, name="dead.yaml")
    seen = Recorder()
    app = MallesApp(scenario_path=path, store_url=store_url, real_sample=False)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session.status in ("failed", "finished"), timeout=90)
        decisions = seen.of(msg.DecisionFinished)
        print("backend down:", app.session.status, app.session.error, [d.outcome.error for d in decisions])
        if app.session.status == "failed":
            assert seen.of(msg.RunFailed)[0].error
        else:  # the graph records every decision as a failure instead of raising
            assert decisions and not any(d.outcome.ok for d in decisions)
            assert all(d.outcome.error for d in decisions)
        await pilot.press("f3")
        assert isinstance(app.screen, DebateScreen)


async def test_economist_scenario_runs_from_the_run_screen(scenario_file, store_url):
    text = """\
name: econ-tiny
kind: economist
seed: 3
backend: {name: best-response}
economist: {n_workers: 60, steps: 6, planner_every: 2, initial_schedule: us, check_budget: 10}
"""
    seen = Recorder()
    app = MallesApp(scenario_path=scenario_file(text=text, name="econ.yaml"), store_url=store_url, real_sample=False)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        app.screen.query_one("#rounds").value = "3"  # the form's "Steps" box overrides economist.steps
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session.status not in ("running", "cancelling"), timeout=120)
        assert app.session.status == "finished", app.session.error
        steps = seen.of(msg.RoundFinished)
        assert [m.round_index for m in steps] == [1, 2, 3]
        assert all("welfare" in m.figures and len(m.figures["schedule"]) == 7 for m in steps)
        await pilot.press("f4")
        await pilot.pause()
        assert "welfare" in str(app.screen.query_one("#population-figures").render())


async def test_quitting_during_a_run_returns_within_two_seconds(scenario_file, store_url):
    """A model that takes 2 s per call: quitting does not wait for the call in flight; the run is interrupted."""
    import time

    seen = Recorder()
    app = MallesApp(scenario_path=scenario_file(rounds=50), store_url=store_url,
                    chat_model_factory=scripted(delay_s=2.0), real_sample=False)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any(t.turn.kind == "turn" for t in seen.of(msg.TurnStreamed)), timeout=90)
        run_id = app.session.run_id
        started = time.monotonic()
        await pilot.press("ctrl+q")
    assert time.monotonic() - started < 2.0
    engine = make_engine(store_url)
    deadline = time.monotonic() + 10  # the calls in flight end in the background, then the run says so
    while True:
        with Session(engine) as session:
            status = session.get(RunRow, run_id).status
        if status != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == "interrupted"


def final_m(store_url: str, run_id: str) -> dict:
    from malles_graph.store.summary import summarise

    summary = summarise(make_engine(store_url), run_id, store_url)
    assert summary.status == "finished", summary.reason
    return summary.rounds[-1].summary["m"]


async def test_live_turns_then_cancel_within_one_call_then_resume_to_the_same_numbers(scenario_file, store_url):
    """2 s per LLM call: the first role's turn is on screen before that agent has decided; cancel stops within
    one call; the resumed run ends with the numbers of an uninterrupted run with the same seed."""
    import time

    from malles_graph.graphs.run import run_scenario

    from malles_graph.scenario import load_scenario
    from tests.population.responders import scripted_decision_client

    path = scenario_file(rounds=2)
    seen = Recorder()
    app = MallesApp(scenario_path=path, store_url=store_url, chat_model_factory=scripted(delay_s=2.0),
                    real_sample=False)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await pilot.press("f3")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any(t.turn.kind == "turn" for t in seen.of(msg.TurnStreamed)), timeout=90)
        first = next(t for t in seen.of(msg.TurnStreamed) if t.turn.kind == "turn")
        assert first.turn.role == "product_specialist"
        assert not [d for d in seen.of(msg.DecisionFinished) if d.outcome.agent_id == first.turn.agent_id]
        await pilot.pause(0.2)
        assert app.session.current.transcripts.get(first.turn.agent_id)  # on the Live debate screen's session
        asked = time.monotonic()
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: any(m.stopped for m in seen.of(msg.RunCancelled)), timeout=30)
        assert time.monotonic() - asked < 2.0 + 1.0  # the call in flight (2 s) plus a little
        run_id = app.session.run_id
        assert app.session.status == "cancelled"

        app.chat_model_factory = scripted()  # the rest at full speed
        app.start_run(app.screen.build_scenario() if hasattr(app.screen, "build_scenario") else
                      load_scenario(path), resume=run_id)
        await wait_for(pilot, lambda: app.session.status not in ("running", "cancelling"), timeout=120)
        assert app.session.status == "finished", app.session.error
    with Session(make_engine(store_url)) as session:
        rows = session.exec(select(DecisionRow).where(DecisionRow.run_id == run_id)).all()
    assert len(rows) == 6 and len({(r.round, r.agent_id) for r in rows}) == 6  # none lost, none twice

    scenario = load_scenario(path, {"store.url": store_url})
    uninterrupted = run_scenario(scenario, client=scripted_decision_client())
    assert final_m(store_url, run_id) == final_m(store_url, uninterrupted.run_id)


async def test_a_wholesale_dialogue_streams_live_and_is_listed(scenario_file, store_url):
    """The wholesale dialogue through the same runner: the first role speaks before the rule is decided."""
    text = """\
name: wholesale-tiny
kind: wholesale
seed: 1
backend: {name: local, cache: false}
wholesale: {n_items: 1, period: day, periods: 5, history_periods: 10, dialogue_rounds: 1, max_repairs: 0}
"""
    seen = Recorder()
    app = MallesApp(scenario_path=scenario_file(text=text, name="wholesale.yaml"), store_url=store_url,
                    chat_model_factory=scripted(delay_s=2.0), real_sample=False)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: bool(seen.of(msg.TurnStreamed)), timeout=90)
        assert seen.of(msg.TurnStreamed)[0].turn.role == "marketing" and not seen.of(msg.DecisionFinished)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: any(m.stopped for m in seen.of(msg.RunCancelled)), timeout=30)
        run_id = app.session.run_id
    with Session(make_engine(store_url)) as session:
        run = session.get(RunRow, run_id)
        assert run.kind == "wholesale" and run.status == "cancelled"


async def test_history_lists_and_opens_a_run_of_every_kind(store_url):
    from malles_graph.tui.screens.history import HistoryScreen
    from textual.widgets import DataTable

    from tests.store.test_all_kinds import three_runs

    ids = three_runs(store_url)
    app = MallesApp(store_url=store_url, real_sample=False, start_mode="history")
    async with app.run_test(size=SIZE) as pilot:
        history = app.screen
        assert isinstance(history, HistoryScreen)
        runs = history.query_one("#runs-table", DataTable)
        await wait_for(pilot, lambda: runs.row_count == 3)
        assert {runs.get_row_at(i)[0] for i in range(3)} == set(ids.values())
        rounds = history.query_one("#rounds-table", DataTable)
        for run_id in ids.values():
            history.open_run(run_id)
            await wait_for(pilot, lambda run_id=run_id: history.detail is not None and history.detail.run.id == run_id)
            await wait_for(pilot, lambda: rounds.row_count >= 1)
            assert run_id in str(history.query_one("#run-title").render())
