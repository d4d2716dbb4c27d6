"""History: past runs from the store, opened, browsed and exported; a store that cannot be opened."""

from __future__ import annotations

from pathlib import Path

import pytest
from malles_graph.tui import history_data
from malles_graph.tui.app import MallesApp
from malles_graph.tui.screens.history import HistoryScreen
from malles_graph.tui.widgets.transcript import TranscriptView
from textual.widgets import DataTable

from tests.tui.conftest import scripted, wait_for

pytestmark = pytest.mark.anyio
SIZE = (160, 45)


async def test_open_past_run_browse_and_export(scenario_file, store_url, tmp_path: Path):
    app = MallesApp(scenario_path=scenario_file(rounds=2), store_url=store_url, chat_model_factory=scripted(),
                    real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session.status == "finished")
        run_id = app.session.run_id
        await pilot.press("f5")
        history = app.screen
        assert isinstance(history, HistoryScreen)
        runs = history.query_one("#runs-table", DataTable)
        await wait_for(pilot, lambda: runs.row_count == 1)
        assert runs.get_row_at(0)[0] == run_id

        runs.focus()
        await pilot.press("enter")  # open the highlighted run
        rounds = history.query_one("#rounds-table", DataTable)
        decisions = history.query_one("#decisions-table", DataTable)
        await wait_for(pilot, lambda: decisions.row_count == 6)
        assert rounds.row_count == 2
        assert run_id in str(history.query_one("#run-title").render())

        decisions.focus()
        await pilot.press("enter")  # read the first decision's transcript
        view = history.query_one("#history-transcript", TranscriptView)
        await wait_for(pilot, lambda: view.turn_count > 0)
        first = history.detail.decisions[0]
        stored = history_data.transcript(history.engine, run_id, first.round, first.agent_id)
        assert view.turn_count == len(stored) >= 4  # at least three debate roles and the decision
        assert {"product_specialist", "price_analyst", "persona"} <= {t.role for t in stored}

        await pilot.press("e")
        await pilot.pause()
        folder = tmp_path / "export"
        dialog = app.screen
        dialog.query_one("#export-folder").value = str(folder)
        await pilot.click("#export-go")
        await wait_for(pilot, lambda: (folder / "decisions.csv").exists())
        assert (folder / "transcript_turns.csv").read_text().count("\n") > 6
        await wait_for(pilot, lambda: any(n.title == "Exported" for n in app._notifications))


@pytest.mark.parametrize(
    "url, words",
    [
        ("sqlite:////nonexistent-folder/runs.sqlite", "no run database"),
        ("mysql://localhost/db", "only sqlite"),
        ("postgresql://nobody@127.0.0.1:1/none", "cannot reach"),
    ],
)
async def test_store_that_cannot_be_opened(url, words, scenario_file):
    app = MallesApp(scenario_path=scenario_file(), store_url=url, real_sample=False, start_mode="history")
    async with app.run_test(size=SIZE) as pilot:
        panel = app.screen.query_one("#history-error")
        await wait_for(pilot, lambda: panel.display, timeout=30)
        assert words in str(panel.render())
        assert not app.screen.query_one("#runs-table").loading
        # a notification is a message to the app: it shows a moment after the panel
        await wait_for(pilot, lambda: any(n.severity == "error" for n in app._notifications), timeout=10)
        # the operator fixes the URL in place; the app kept running
        await pilot.press("f2")
        assert app.screen.__class__.__name__ == "RunScreen"


async def test_empty_store_is_not_created_by_browsing(tmp_path: Path):
    path = tmp_path / "typo.sqlite"
    app = MallesApp(store_url=f"sqlite:///{path}", real_sample=False, start_mode="history")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#history-error").display)
    assert not path.exists()


@pytest.mark.postgres
async def test_run_into_postgres_and_browse_it(scenario_file, request):
    """The same run and History on PostgreSQL (the store tests' throwaway server)."""
    url = request.getfixturevalue("postgres_url")
    app = MallesApp(scenario_path=scenario_file(rounds=1), store_url=url, chat_model_factory=scripted(),
                    real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session.status not in ("running", "cancelling"), timeout=120)
        assert app.session.status == "finished", app.session.error
        await pilot.press("f5")
        runs = app.screen.query_one("#runs-table", DataTable)
        await wait_for(pilot, lambda: runs.row_count == 1)
        app.screen.open_run(app.session.run_id)
        decisions = app.screen.query_one("#decisions-table", DataTable)
        await wait_for(pilot, lambda: decisions.row_count == 3)


async def test_history_follows_the_store_typed_in_the_run_form(scenario_file, tmp_path: Path):
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    app = MallesApp(scenario_path=scenario_file(rounds=1), store_url=f"sqlite:///{tmp_path / 'cli.sqlite'}",
                    chat_model_factory=scripted(), real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#store").value = other
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session.status == "finished")
        await pilot.press("f5")
        runs = app.screen.query_one("#runs-table", DataTable)
        await wait_for(pilot, lambda: runs.row_count == 1)
        assert app.screen.query_one("#store-url").value == other
    assert (tmp_path / "other.sqlite").exists() and not (tmp_path / "cli.sqlite").exists()


async def test_runs_table_shows_a_loading_indicator_until_the_store_answers(store_url, monkeypatch):
    """The store is read in a worker: the screen shows at once, its runs table covered while it waits."""
    import threading

    from malles_graph.store import make_engine

    make_engine(store_url).dispose()  # an empty store
    answer = threading.Event()
    list_runs = history_data.list_runs

    def slow_list_runs(engine):
        answer.wait(timeout=30)
        return list_runs(engine)

    monkeypatch.setattr(history_data, "list_runs", slow_list_runs)
    app = MallesApp(store_url=store_url, real_sample=False, start_mode="history")
    async with app.run_test(size=SIZE) as pilot:
        runs = app.screen.query_one("#runs-table", DataTable)
        await pilot.pause(0.2)
        assert runs.loading
        answer.set()
        await wait_for(pilot, lambda: not runs.loading, timeout=30)
        assert runs.row_count == 0 and not app.screen.query_one("#history-error").display
