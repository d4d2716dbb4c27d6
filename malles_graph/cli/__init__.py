"""The `malles` command line: the front door.

Each command group lives in its own module with a Typer ``app``; heavy imports
(graphs, retrieval, the TUI) happen inside the commands, so `malles --help`
stays fast and the core never imports them at module level.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="malles",
    help="Simulate economic decision makers with LLM agents on LangGraph (MALLES, LLM Economist).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (module under malles_graph.cli, group name or None to merge its commands at top level)
COMMAND_MODULES: list[tuple[str, str | None]] = [
    ("main_commands", None),
    ("decide", None),
    ("data", "data"),
    ("prompts", "prompts"),
    ("memory", "memory"),
    ("eval", "eval"),
    ("tui", None),
    ("economist", "economist"),
    ("wholesale", "wholesale"),
    ("align", "align"),
    ("runs", None),
]


def _register() -> None:
    for module_name, group in COMMAND_MODULES:
        module = importlib.import_module(f"malles_graph.cli.{module_name}")
        if group is None:
            app.registered_commands.extend(module.app.registered_commands)
        else:
            app.add_typer(module.app, name=group)


_register()


def main() -> None:
    from malles_graph.cli.errors import run_app

    run_app(app)
