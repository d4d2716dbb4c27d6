"""App shell: key bindings, help, command palette, CLI entry, import direction."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from malles_graph.tui.app import MallesApp
from malles_graph.tui.commands import PALETTE, MallesCommands
from malles_graph.tui.screens.help import HelpScreen
from textual.command import CommandPalette
from textual.widgets import Footer

from malles_graph.paths import REPO_ROOT

pytestmark = pytest.mark.anyio
SIZE = (160, 45)


async def test_function_keys_switch_screens_and_help():
    app = MallesApp(real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        assert app.current_mode == "run"
        for key, mode, screen in [
            ("f3", "debate", "DebateScreen"),
            ("f4", "population", "PopulationScreen"),
            ("f5", "history", "HistoryScreen"),
            ("f6", "editor", "EditorScreen"),
            ("f2", "run", "RunScreen"),
        ]:
            await pilot.press(key)
            assert app.current_mode == mode and type(app.screen).__name__ == screen
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").source)
        assert "ctrl+r" in text.lower() and "Prompts & personas" in text and "Open file" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        assert app.screen.query_one(Footer)


async def test_screen_keys_work_while_typing_in_the_editor():
    """F-keys are priority bindings: they switch screens even when the text area has focus."""
    app = MallesApp(real_sample=False, start_mode="editor")
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#editor-text").focus()
        await pilot.press("f2")
        assert app.current_mode == "run"


def test_every_binding_has_an_id_and_a_tooltip():
    from malles_graph.tui.screens import debate, editor, help, history, population, run
    from textual.binding import Binding

    classes = [MallesApp, run.RunScreen, debate.DebateScreen, population.PopulationScreen, history.HistoryScreen,
               editor.EditorScreen, help.HelpScreen]
    for cls in classes:
        for binding in cls.BINDINGS:
            assert isinstance(binding, Binding)
            assert binding.id and binding.tooltip, f"{cls.__name__}: {binding.key} lacks an id or a tooltip"


async def test_command_palette_offers_every_action_and_runs_it():
    app = MallesApp(real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        provider = MallesCommands(app.screen)
        titles = [hit.text async for hit in provider.discover()]
        assert titles == [c.title for c in PALETTE]
        actions = {c.action.split("(")[0] for c in PALETTE}
        for action in actions:
            assert hasattr(app, f"action_{action}"), action
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        for char in "go to history":
            await pilot.press("space" if char == " " else char)
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.current_mode == "history"


async def test_cancel_without_a_run_says_so():
    app = MallesApp(real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert any("No run is going" in n.message for n in app._notifications)
        await pilot.press("ctrl+r")  # no scenario chosen yet when scenarios/ has none selected
        await pilot.pause()
        assert app.session.status == "idle"


def test_core_and_cli_do_not_import_the_tui():
    code = (
        "import sys, malles_graph, malles_graph.graphs.run, malles_graph.cli, malles_graph.graphs.decision\n"
        "bad = [m for m in sys.modules if m == 'malles_graph.tui' or m.startswith('malles_graph.tui.') or m == 'textual']\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_tui_command_registered_and_checks_its_scenario(tmp_path):
    from typer.testing import CliRunner

    from malles_graph.cli import app as cli

    runner = CliRunner()
    result = runner.invoke(cli, ["tui", "--help"])
    assert result.exit_code == 0 and "--scenario" in result.output and "--store" in result.output
    result = runner.invoke(cli, ["tui", "--scenario", str(tmp_path / "missing.yaml")])
    assert result.exit_code != 0


def test_cli_command_table_names_every_command_of_its_module():
    """The lazy CLI finds a command's module from a table: it must list exactly what the modules define."""
    import typer

    from malles_graph.cli import COMMAND_MODULES, TOP_LEVEL_COMMANDS, command_names, load_commands

    for module_name, group in COMMAND_MODULES:
        names = tuple(load_commands(module_name, group))
        assert names == ((group,) if group else TOP_LEVEL_COMMANDS[module_name]), module_name
    # the same commands, in the same order, as registering every module on one Typer app
    eager = typer.Typer()
    for module_name, group in COMMAND_MODULES:
        module = importlib.import_module(f"malles_graph.cli.{module_name}")
        if group is None:
            eager.registered_commands.extend(module.app.registered_commands)
        else:
            eager.add_typer(module.app, name=group)
    assert command_names() == list(typer.main.get_group(eager).commands)


def test_malles_tui_imports_only_what_the_first_screen_needs():
    """`malles tui` resolves its command without importing the other command modules or heavy libraries."""
    code = (
        "import sys, typer, malles_graph.cli as cli\n"
        "group = typer.main.get_command(cli.app)\n"
        "group.commands['tui']\n"
        "from malles_graph.tui.app import MallesApp\n"
        "heavy = ('langgraph', 'langchain_core', 'chromadb', 'pandas', 'polars', 'lightgbm', 'sklearn', 'torch',\n"
        "         'sqlalchemy', 'plotext', 'malles_graph.graphs', 'malles_graph.retrieval', 'malles_graph.cli.eval',\n"
        "         'malles_graph.cli.main_commands', 'malles_graph.cli.runs')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_a_first_visit_styles_each_widget_about_once():
    """Textual restyled a mode's new screen four times over (two resumes, the breakpoint class, the footer
    keys' compact class); ModeScreen and KeyFooter avoid that. Counted, not timed: Stylesheet.apply calls."""
    from textual.css.stylesheet import Stylesheet

    applied = []
    apply = Stylesheet.apply

    def counted(self, node, *args, **kwargs):
        applied.append(node)
        return apply(self, node, *args, **kwargs)

    app = MallesApp(real_sample=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        Stylesheet.apply = counted
        try:
            await pilot.press("f6")
            await pilot.pause(0.3)
        finally:
            Stylesheet.apply = apply
        widgets = list(app.screen.walk_children(with_self=True))
        # about 2.6 per widget now (components and the footer's late keys included), 7.9 before
        assert len(applied) < 4 * len(widgets), (len(applied), len(widgets))
