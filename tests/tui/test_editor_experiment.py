"""The editor's Experiment: the unsaved prompt set against the saved one on N cases, live and cancellable."""

from __future__ import annotations

from pathlib import Path

import pytest
from malles_graph.tui.app import MallesApp
from malles_graph.tui.experimenting import EDITED, SAVED, ExperimentAnswered, ExperimentFinished
from malles_graph.tui.screens.editor import EditorScreen
from textual.widgets import DataTable, Input, TextArea

from tests.experiments.scripted import DECIDE_MARK, WORD, respond, write_cases
from tests.fakes import ScriptedChatModel
from tests.tui.conftest import Recorder, wait_for
from tests.tui.screen_text import screen_text

pytestmark = pytest.mark.anyio
SIZE = (160, 45)


def factory(delay_s: float = 0.0):
    import time

    def answer(messages):
        time.sleep(delay_s)  # a slow backend, so a cancel lands mid-experiment
        return respond(messages)

    return lambda _scenario: ScriptedChatModel(responder=answer)


async def start(pilot, cases: Path, n: int) -> EditorScreen:
    await pilot.press("f6")
    editor = pilot.app.screen
    assert isinstance(editor, EditorScreen)
    editor.select_file("prompt:decide.txt")
    await pilot.pause()
    area = editor.query_one("#editor-text", TextArea)
    area.text = area.text.replace(DECIDE_MARK, f"Be {WORD}: prefer the cheapest product. {DECIDE_MARK}")
    editor.query_one("#experiment-n", Input).value = str(n)
    editor.query_one("#experiment-cases", Input).value = str(cases)
    await pilot.press("f8")
    return editor


async def test_experiment_compares_the_unsaved_set_with_the_saved_one(prompts: Path, scenario_file, tmp_path: Path):
    cases = write_cases(tmp_path / "cases.jsonl", 8)
    before = (prompts / "decide.txt").read_text()
    seen = Recorder()
    app = MallesApp(scenario_path=scenario_file(), chat_model_factory=factory(), real_sample=False)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        editor = await start(pilot, cases, 8)
        await wait_for(pilot, lambda: seen.of(ExperimentFinished), timeout=120)
        finished = seen.of(ExperimentFinished)[0]
        assert finished.error is None and not finished.cancelled
        rows = {r.name: r for r in finished.result.rows}
        assert rows[SAVED].hit1 == pytest.approx(2 / 8)  # the saved decide.txt picks A; 2 of 8 bought A
        assert rows[EDITED].hit1 == pytest.approx(6 / 8)  # the unsaved one picks the cheapest C
        assert finished.result.differences[0].wins == 6
        assert len({id(m) for m in seen.of(ExperimentAnswered)}) == 16  # the hook sees a bubbled message twice
        await pilot.pause()
        table = editor.query_one("#experiment-table", DataTable)
        assert table.row_count == 8
        assert "hit" in str(table.get_cell_at((0, 3)))
        shown = screen_text(pilot.app)
        assert "Δ hit@1 +0.500" in shown and "experiment finished" in shown
        assert (finished.out / "report.md").exists()
    assert (prompts / "decide.txt").read_text() == before  # nothing saved


async def test_escape_cancels_a_running_experiment(prompts: Path, scenario_file, tmp_path: Path):
    cases = write_cases(tmp_path / "cases.jsonl", 12)
    seen = Recorder()
    app = MallesApp(scenario_path=scenario_file(), chat_model_factory=factory(0.05), real_sample=False)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await start(pilot, cases, 12)
        await wait_for(pilot, lambda: seen.of(ExperimentAnswered), timeout=120)
        await pilot.press("escape")
        await wait_for(pilot, lambda: seen.of(ExperimentFinished), timeout=120)
        finished = seen.of(ExperimentFinished)[0]
        assert finished.cancelled and finished.error is None
        assert 1 <= len({id(m) for m in seen.of(ExperimentAnswered)}) < 24
        assert finished.result.n_paired < 12
        await pilot.pause()
        assert "experiment cancelled" in screen_text(pilot.app)


async def test_experiment_without_edits_is_refused(prompts: Path, scenario_file):
    app = MallesApp(scenario_path=scenario_file(), chat_model_factory=factory(), real_sample=False)
    seen = Recorder()
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        await pilot.press("f6")
        await pilot.pause()
        await pilot.press("f8")
        await pilot.pause()
        assert not seen.of(ExperimentFinished)
        assert any("No unsaved prompt edits" in str(n.message) for n in app._notifications)
