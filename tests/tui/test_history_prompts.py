"""History shows the short digest of the prompt set a past run used (issue 19)."""

from __future__ import annotations

import pytest
from malles_graph.tui import history_data
from malles_graph.tui.app import MallesApp
from textual.widgets import DataTable

from malles_graph.prompt_sets import load_persona_set, load_prompt_set
from malles_graph.store.tables import RunRow
from tests.tui.conftest import scripted, wait_for

pytestmark = pytest.mark.anyio


async def test_opened_run_shows_its_prompt_digest(scenario_file, store_url):
    app = MallesApp(scenario_path=scenario_file(rounds=1), store_url=store_url, chat_model_factory=scripted(),
                    real_sample=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.session.status == "finished")
        await pilot.press("f5")
        runs = app.screen.query_one("#runs-table", DataTable)
        await wait_for(pilot, lambda: runs.row_count == 1)
        app.screen.open_run(app.session.run_id)
        title = app.screen.query_one("#run-title")
        await wait_for(pilot, lambda: "seed" in str(title.render()))
        assert f"prompts {load_prompt_set().short}" in str(title.render())
        assert f"personas {load_persona_set('retail_households.yaml').short}" in str(title.render())


def test_prompt_digest_of_old_and_odd_rows():
    assert history_data.prompt_digest(RunRow(id="r", name="n", prompt_set_json="{}")) == ""
    assert history_data.prompt_digest(RunRow(id="r", name="n", prompt_set_json="not json")) == ""
    assert history_data.prompt_digest(RunRow(id="r", name="n", prompt_set_json='{"digest": "ab" }')) == "ab"
    assert history_data.persona_digest(RunRow(id="r", name="n", prompt_set_json='{"digest": "ab" }')) == ""
    assert history_data.persona_digest(RunRow(id="r", name="n", prompt_set_json='[1]')) == ""
    both = '{"digest": "ab", "personas": {"digest": "cd"}}'
    assert history_data.persona_digest(RunRow(id="r", name="n", prompt_set_json=both)) == "cd"
