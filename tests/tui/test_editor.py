"""Prompts & personas editor: live validation, refused and accepted saves, preview, try it.

MALLES_PROMPTS / MALLES_PERSONAS point at tmp copies (conftest), never at the repository's files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from malles_graph.tui import editing
from malles_graph.tui import messages as msg
from malles_graph.tui.app import MallesApp
from malles_graph.tui.screens.editor import EditorScreen
from malles_graph.tui.widgets.transcript import TranscriptView
from textual.widgets import TextArea

from malles_graph.agents import TranscriptTurn
from tests.fakes import ScriptedChatModel
from tests.population.responders import decision_responder
from tests.tui.conftest import Recorder, wait_for

pytestmark = pytest.mark.anyio
SIZE = (160, 45)


async def open_editor(pilot, key: str) -> tuple[EditorScreen, TextArea]:
    await pilot.press("f6")
    editor = pilot.app.screen
    assert isinstance(editor, EditorScreen)
    editor.select_file(key)
    await pilot.pause()
    return editor, editor.query_one("#editor-text", TextArea)


async def test_invalid_prompt_is_not_saved(prompts: Path):
    before = (prompts / "persona.txt").read_text()
    app = MallesApp(real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        editor, area = await open_editor(pilot, "prompt:persona.txt")
        area.focus()
        area.move_cursor((0, 0))
        for key in ["{", "b", "o", "g", "u", "s", "}", "space"]:  # typed like a user would
            await pilot.press(key)
        await wait_for(pilot, lambda: "bogus" in (editor.validation.error or ""))
        assert "unknown variable" in editor.validation.error and "persona.txt" in editor.validation.error
        assert "invalid" in str(editor.query_one("#validation").render())
        assert editor.dirty
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert (prompts / "persona.txt").read_text() == before
        assert any(n.title == "Not saved: invalid content" and "bogus" in n.message for n in app._notifications)
        # a malformed brace and a missing required variable are refused too
        area.text = before.replace("{customer}", "")
        editor.action_save()
        assert "missing required" in editor.validation.error
        area.text = before + "\n{oops"
        editor.action_save()
        assert "malformed" in editor.validation.error
        assert (prompts / "persona.txt").read_text() == before


async def test_valid_prompt_edit_is_written_atomically(prompts: Path):
    path = prompts / "persona.txt"
    os.chmod(path, 0o640)
    new_text = path.read_text() + "\nStay in character; mention your budget.\n"
    app = MallesApp(real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        editor, area = await open_editor(pilot, "prompt:persona.txt")
        area.text = new_text
        await wait_for(pilot, lambda: "mention your budget" in str(editor.query_one("#preview").render()))
        assert editor.dirty and editor.validation.ok
        assert "{customer}" not in str(editor.query_one("#preview").render())  # rendered for the sample
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert path.read_text() == new_text
        assert not editor.dirty
        assert any(n.title == "Saved" for n in app._notifications)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the file keeps its permissions
    assert not [p for p in prompts.iterdir() if p.name.startswith(".")]  # no temporary file left


async def test_edits_survive_switching_files_and_revert(prompts: Path):
    app = MallesApp(real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        editor, area = await open_editor(pilot, "prompt:decide.txt")
        area.insert("EDITED ", (0, 0))
        editor.select_file("prompt:persona.txt")
        editor.select_file("prompt:decide.txt")
        await pilot.pause()
        assert area.text.startswith("EDITED ") and editor.dirty
        await app.run_action("revert_file")  # the palette's "Revert file"
        assert not area.text.startswith("EDITED ") and not editor.dirty


async def test_persona_rho_out_of_range_is_refused(personas: Path):
    path = personas / "retail_households.yaml"
    before = path.read_text()
    app = MallesApp(real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        editor, area = await open_editor(pilot, "personas:retail_households.yaml")
        assert editor.validation.ok and "5 persona(s)" in editor.validation.summary
        area.text = before.replace("discount_sensitivity: 0.3", "discount_sensitivity: 1.7")
        await wait_for(pilot, lambda: not editor.validation.ok)
        assert "discount_sensitivity" in editor.validation.error and str(path) in editor.validation.error
        await pilot.press("ctrl+s")
        assert path.read_text() == before
        area.text = before.replace("style: brand_loyal", "style: no_such_preset")
        await wait_for(pilot, lambda: "no_such_preset" in (editor.validation.error or ""))


async def test_styles_edit_saved_and_shown(personas: Path):
    path = personas / "styles.yaml"
    app = MallesApp(real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        editor, area = await open_editor(pilot, "styles:styles.yaml")
        bad = path.read_text().replace("loss_aversion: 3.0", "loss_aversion: 7.5")
        area.text = bad
        await wait_for(pilot, lambda: not editor.validation.ok)
        assert "loss_aversion" in editor.validation.error
        good = path.read_text().replace("loss_aversion: 3.0", "loss_aversion: 3.5")
        area.text = good
        await wait_for(pilot, lambda: editor.validation.ok)
        await pilot.press("ctrl+s")
        assert path.read_text() == good


async def test_try_it_runs_one_decision_with_the_unsaved_prompt(prompts: Path, scenario_file):
    models: list[ScriptedChatModel] = []

    def factory(_scenario):
        models.append(ScriptedChatModel(responder=decision_responder))
        return models[-1]

    seen = Recorder()
    before = (prompts / "persona.txt").read_text()
    app = MallesApp(scenario_path=scenario_file(), chat_model_factory=factory, real_sample=False)
    async with app.run_test(size=SIZE, message_hook=seen) as pilot:
        editor, area = await open_editor(pilot, "prompt:persona.txt")
        area.text = before + "\nTRY-MARKER: talk about noodles.\n"
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: seen.of(msg.TryFinished), timeout=60)
        finished = seen.of(msg.TryFinished)[0]
        assert finished.error is None and finished.outcome.ok
        turns = [m.turn for m in seen.of(msg.TryTurnStreamed)]
        assert turns and all(isinstance(t, TranscriptTurn) for t in turns)
        await pilot.pause()
        assert editor.query_one("#try-transcript", TranscriptView).turn_count == len(turns)
        assert "decision:" in str(editor.query_one("#try-status").render())
    persona_calls = [c for c in models[0].calls if "TRY-MARKER" in str(c[-1].content) or "TRY-MARKER" in str(c[0].content)]
    assert persona_calls, "the edited prompt did not reach the model"
    assert (prompts / "persona.txt").read_text() == before  # nothing saved


def test_atomic_write_replaces_and_cleans_up(tmp_path: Path):
    folder = tmp_path / "atomic"
    folder.mkdir()
    path = folder / "x.txt"
    path.write_text("old")
    editing.atomic_write(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in folder.iterdir()] == ["x.txt"]


def test_save_refuses_invalid_and_leaves_file(prompts: Path):
    file = next(f for f in editing.editable_files() if f.key == "prompt:decide.txt")
    before = file.path.read_text()
    result = editing.save(file, before + "{nope}")
    assert not result.ok and "nope" in result.error
    assert file.path.read_text() == before


async def test_sample_arriving_mid_edit_does_not_crash(prompts: Path):
    """Found in tmux: the Ta Feng sample landed between a keystroke and its (debounced) validation."""
    from malles_graph.tui import samples

    app = MallesApp(real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        editor, area = await open_editor(pilot, "prompt:decide.txt")
        assert editor.validation.ok
        area.insert("{bogus} ", (0, 0))  # validation is pending (0.25 s debounce)
        situation = samples.builtin_situation().model_copy(
            update={"customer": samples.builtin_situation().customer.model_copy(update={"customer_id": "0001"})}
        )
        editor.post_message(EditorScreen.SampleLoaded(samples.prompt_values(situation), "Ta Feng customer 0001"))
        await pilot.pause()
        assert "Fix the error" in str(editor.query_one("#preview").render())
        await wait_for(pilot, lambda: not editor.validation.ok)
        assert app.is_running


def test_try_it_checks_the_edit_not_the_broken_saved_file(prompts: Path):
    """A saved decide.txt that lost a required variable must not block trying a fixed edit of it."""
    from malles_graph.tui.trying import try_prompt

    from malles_graph.scenario import Scenario

    good = (prompts / "decide.txt").read_text()
    (prompts / "decide.txt").write_text("Decide now. {candidate_ids}\n")  # saved, broken
    scenario = Scenario.model_validate(
        {"name": "try-it", "decision": {"debate_rounds": 0}, "prompts": str(prompts)}
    )
    outcome = try_prompt(
        "decide", good + "\nTRY-MARKER\n", on_turn=lambda _t: None, scenario=scenario, real_sample=False,
        chat_model_factory=lambda _s: ScriptedChatModel(responder=decision_responder),
    )
    assert outcome.ok
    assert (prompts / "decide.txt").read_text() == "Decide now. {candidate_ids}\n"  # nothing saved
