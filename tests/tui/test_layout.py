"""The app at 80x24 and 160x45: nothing clipped, keys that work at once, one-line reasons for bad input.

Each test pins one defect found by driving the real app under tmux (issue 17).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from malles_graph.tui.app import MallesApp
from malles_graph.tui.screens.editor import EditorScreen
from malles_graph.tui.screens.help import HelpScreen
from malles_graph.tui.screens.history import HistoryScreen
from malles_graph.tui.screens.open_file import OpenFileScreen
from malles_graph.tui.screens.population import PopulationScreen
from malles_graph.tui.screens.run import RunScreen
from malles_graph.tui.session import RoundState
from malles_graph.tui.widgets.transcript import TranscriptView
from textual.widgets import DataTable, DirectoryTree, Input, OptionList, RichLog, Select, TextArea
from textual.widgets._footer import FooterKey

from malles_graph.agents import TranscriptTurn
from tests.tui.conftest import wait_for

pytestmark = pytest.mark.anyio
SMALL = (80, 24)
LARGE = (160, 45)


def inside(widget, screen) -> bool:
    """The widget is shown whole: not hidden, not cut by the screen's edges."""
    region = widget.region
    return widget.display and region.width > 0 and screen.region.contains_region(region)


async def test_run_form_is_usable_at_80x24(scenario_file):
    app = MallesApp(scenario_path=scenario_file(), real_sample=False)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        run = app.screen
        for selector in ("#backend", "#model", "#seed", "#rounds", "#archetypes"):
            box = run.query_one(selector)
            assert inside(box, run) and box.region.width >= 25, (selector, box.region)
        # the rest of the form scrolls into view (no field is lost below the edge)
        for selector in ("#store", "#start"):
            widget = run.query_one(selector)
            widget.scroll_visible(animate=False)
            await pilot.pause()
            assert inside(widget, run), (selector, widget.region)
        log = run.query_one("#run-log", RichLog)
        assert log.region.width >= 70  # the progress log spans the screen, under the form


async def test_footer_keys_all_fit_at_80_columns():
    app = MallesApp(real_sample=False)
    async with app.run_test(size=SMALL) as pilot:
        for key in ("f2", "f3", "f4", "f5", "f6"):
            await pilot.press(key)
            await pilot.pause()
            keys = list(app.screen.query(FooterKey))
            assert keys, key
            palette = [k for k in keys if k.has_class("-command-palette")]
            right_edge = palette[0].region.x if palette else 80  # the palette key is docked right, over the rest
            for item in app.screen.query("FooterKey, FooterLabel"):
                if item not in palette:
                    assert item.region.right <= right_edge, (key, getattr(item, "key", item.render()), item.region)
        shown = {k.key for k in app.screen.query(FooterKey)}
        assert {"f2", "f6", "f7", "ctrl+s"} <= shown  # the screen keys of the editor and every screen key


async def test_clearing_an_override_box_is_not_an_error(scenario_file):
    app = MallesApp(scenario_path=scenario_file(), real_sample=False)
    async with app.run_test(size=SMALL) as pilot:
        run = app.screen
        seed = run.query_one("#seed", Input)
        seed.focus()
        await pilot.press("7", "backspace")  # typed, then cleared: "as in the scenario"
        await pilot.pause()
        assert not run.query_one("#form-error").display
        await pilot.press("minus")  # a lone "-" is not a number
        await pilot.pause()
        assert run.query_one("#form-error").display
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.session.status == "idle"  # nothing starts while the form shows an error


async def test_scenario_list_is_focused_and_highlighted_so_enter_works():
    app = MallesApp(real_sample=False)
    async with app.run_test(size=SMALL) as pilot:
        run = app.screen
        options = run.query_one("#scenario-list", OptionList)
        assert app.focused is options and options.highlighted == 0
        await pilot.press("enter")
        await pilot.pause()
        assert run.scenario_path is not None and run.scenario_path.stem == options.get_option_at_index(0).prompt


async def test_summary_line_shows_the_overridden_backend(scenario_file):
    app = MallesApp(scenario_path=scenario_file(), real_sample=False)
    async with app.run_test(size=LARGE) as pilot:
        run = app.screen
        description = run.query_one("#scenario-description")
        assert "backend local" in str(description.render())
        run.query_one("#backend", Select).value = "choice-model"
        await pilot.pause()
        assert "backend choice-model" in str(description.render())
        run.query_one("#seed", Input).value = "42"
        await pilot.pause()
        assert "seed 42" in str(description.render())


@pytest.mark.parametrize("size", [SMALL, LARGE])
async def test_logs_and_transcripts_wrap_inside_their_pane(size):
    app = MallesApp(real_sample=False, start_mode="editor")
    async with app.run_test(size=size) as pilot:
        editor = app.screen
        view = editor.query_one("#try-transcript", TranscriptView)
        editor.query_one("#editor-side").active = "tab-try"
        await pilot.pause()
        turn = TranscriptTurn(agent_id="a", role="persona", round=1, text="word " * 80)
        view.add_turn(turn)
        await pilot.pause()
        width = view.scrollable_content_region.width
        assert view.lines and max(line.cell_length for line in view.lines) <= width
        await pilot.press("f2")
        log = app.screen.query_one("#run-log", RichLog)
        log.write("round 1 done: distance 0.3320, failures 0%, welfare 1.23e+04, " * 3)
        await pilot.pause()
        assert max(line.cell_length for line in log.lines) <= log.scrollable_content_region.width
        assert len(log.lines) > 1  # wrapped, not cut


async def test_population_legend_has_whole_option_ids():
    app = MallesApp(real_sample=False, start_mode="population")
    async with app.run_test(size=LARGE) as pilot:
        session = app.session
        session.reset("tiny", "retail")
        for index, distance in ((1, 0.4), (2, 0.1)):
            state = RoundState(index=index, total=3, done=3, finished=True)
            state.figures = {"demand": {"4710085120703": 3.0 * index, "none": 1.0}, "distance": distance}
            session.rounds.append(state)
        screen = app.screen
        assert isinstance(screen, PopulationScreen)
        screen.redraw()
        await pilot.pause()
        chart = screen.query_one("#demand-plot").plt.build()
        assert "4710085120703" in chart


async def test_open_file_has_a_folder_tree_and_a_folder_is_not_an_error(tmp_path: Path, scenario_file):
    target = scenario_file(name="mine.yaml")
    (tmp_path / "notes.txt").write_text("x")
    app = MallesApp(real_sample=False)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("ctrl+o")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, OpenFileScreen)
        box = dialog.query_one("#open-path", Input)
        box.value = str(tmp_path)
        await pilot.press("enter")
        await pilot.pause()
        message = str(dialog.query_one("#open-error").render())
        assert "no such file" not in message and "folder" in message
        tree = dialog.query_one(DirectoryTree)
        assert Path(tree.path) == tmp_path
        # the path box completes names in the folder
        box.value = str(tmp_path / "mi")
        await pilot.pause(0.3)
        assert box._suggestion == str(target)
        box.focus()
        await pilot.press("end", "right", "enter")  # take the suggestion, open it
        await pilot.pause()
        assert isinstance(app.screen, RunScreen), (
            app.focused,
            box.value,
            str(dialog.query_one("#open-error").render()),
        ) and app.screen.scenario_path == target.resolve()


def help_key_rows(source: str) -> list[tuple[str, str, str]]:
    """(key, action, where) rows of the keys table in the help screen's Markdown, as the user reads them."""
    rows = []
    for line in source.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 3 and cells[0] not in ("key", "---"):
            rows.append((cells[0], cells[1], cells[2]))
    return rows


async def test_help_lists_every_key_once_and_escape_closes_it():
    app = MallesApp(real_sample=False)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f1")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        source = help_screen.query_one("#help-text").source
        rows = help_key_rows(source)  # what is shown, not a helper of the fix (this fails on the old help)
        places = [(key, where) for key, _, where in rows]
        assert len(places) == len(set(places))
        keys = [key for key, _, _ in rows]
        assert "^p" in keys and "ctrl+p" not in keys
        wheres = {where for _, _, where in rows}
        assert {"everywhere", "Run", "Live debate", "Population", "History", "Prompts & personas"} <= wheres
        assert "f7" in keys  # Revert has a key
        assert "Escape" in source
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_f7_reverts_the_editor(prompts: Path):
    app = MallesApp(real_sample=False, start_mode="editor")
    async with app.run_test(size=SMALL) as pilot:
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        editor.select_file("prompt:persona.txt")
        area = editor.query_one("#editor-text", TextArea)
        area.text = "something else {customer}"
        await pilot.pause()
        assert editor.dirty
        await pilot.press("f7")
        await pilot.pause()
        assert not editor.dirty and area.text == (prompts / "persona.txt").read_text()


@pytest.mark.parametrize("size", [SMALL, LARGE])
async def test_editor_title_whole_text_area_wide_and_stale_try_cleared(size):
    app = MallesApp(real_sample=False, start_mode="editor")
    async with app.run_test(size=size) as pilot:
        editor = app.screen
        editor.select_file("personas:retail_households.yaml")
        await pilot.pause()
        title = editor.query_one("#file-title")
        assert str(title.render()) == "personas/retail_households.yaml"
        area = editor.query_one("#editor-text", TextArea)
        assert area.region.width >= (48 if size == SMALL else 70) and area.region.height >= 4
        # a try-it result shown for a prompt is gone after switching to a YAML file
        editor.select_file("prompt:persona.txt")
        editor.query_one("#try-status").update("decision: 4710085120703 x 1")
        editor.select_file("personas:retail_households.yaml")
        await pilot.pause()
        assert "4710085120703" not in str(editor.query_one("#try-status").render())


async def test_history_shows_the_real_store_path_and_whole_rows_at_80(tmp_path: Path, monkeypatch):
    runs = tmp_path / "my-runs"
    monkeypatch.setenv("MALLES_RUNS", str(runs))
    app = MallesApp(real_sample=False, start_mode="history")
    async with app.run_test(size=SMALL) as pilot:
        history = app.screen
        assert isinstance(history, HistoryScreen)
        box = history.query_one("#store-url", Input)
        table = history.query_one("#runs-table", DataTable)
        # the store's path and the table's layout arrive once History has loaded in its worker
        await wait_for(pilot, lambda: str(runs) in box.placeholder and table.region.width > 0)
        assert str(runs / "malles.sqlite") in box.placeholder and "runs/" not in box.placeholder.split(str(runs))[0]
        assert app.focused is table
        assert table.region.width >= 76  # the whole width: scenario, status, rounds... not only the run id


@pytest.mark.parametrize("kind", ["file", "under-a-file"])
async def test_unusable_malles_runs_is_one_line_and_the_app_keeps_running(tmp_path: Path, monkeypatch, kind):
    blocker = tmp_path / "runs-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MALLES_RUNS", str(blocker if kind == "file" else blocker / "runs"))
    app = MallesApp(real_sample=False, start_mode="history")
    async with app.run_test(size=SMALL) as pilot:
        panel = app.screen.query_one("#history-error")
        await wait_for(pilot, lambda: panel.display, timeout=30)
        text = str(panel.render())
        assert "MALLES_RUNS" in text and "Errno" not in text and "Error:" not in text
        await pilot.press("f2")
        assert isinstance(app.screen, RunScreen)


def test_unusable_malles_runs_on_the_cli(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from malles_graph.cli import app as cli

    blocker = tmp_path / "runs-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MALLES_RUNS", str(blocker))
    result = CliRunner().invoke(cli, ["runs"])
    assert result.exit_code != 0
    assert "is a file, not a folder" in str(result.exception)
