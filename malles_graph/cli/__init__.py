"""The `malles` command line: the front door.

Each command group lives in its own module with a Typer ``app``; heavy imports
(graphs, retrieval, the TUI) happen inside the commands. The modules themselves are
imported only when one of their commands runs (the table below names the commands of
each module), so `malles tui` does not pay for the modules of `eval`, `run` or `economist`;
`malles --help` imports them all.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup

STARTED = time.perf_counter()  # the command's start (before its imports): `malles run` reports its start-up

# (module under malles_graph.cli, group name, or None to merge the module's commands at top level)
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
    ("usage_view", None),
]

# The commands each merged module defines (tests/tui/test_app.py checks this against the modules).
TOP_LEVEL_COMMANDS: dict[str, tuple[str, ...]] = {
    "main_commands": ("run", "demo", "backends"),
    "decide": ("decide",),
    "tui": ("tui",),
    "runs": ("runs", "show", "export"),
    "usage_view": ("usage",),
}

APP_SETTINGS: dict[str, Any] = {"rich_markup_mode": "rich", "pretty_exceptions_enable": False, "add_completion": False}


def command_names() -> list[str]:
    """Every command name in `malles --help` order (Typer lists merged commands before groups)."""
    merged = [name for module, group in COMMAND_MODULES if group is None for name in TOP_LEVEL_COMMANDS[module]]
    return merged + [group for _, group in COMMAND_MODULES if group is not None]


def _module_of(name: str) -> tuple[str, str | None] | None:
    for module, group in COMMAND_MODULES:
        if name == group or (group is None and name in TOP_LEVEL_COMMANDS[module]):
            return module, group
    return None


def load_commands(module_name: str, group: str | None) -> dict[str, Any]:
    """Import one command module and build its click commands as Typer would for the whole app."""
    module = importlib.import_module(f"malles_graph.cli.{module_name}")
    holder = typer.Typer(**APP_SETTINGS)
    if group is None:
        holder.registered_commands.extend(module.app.registered_commands)
    else:
        holder.add_typer(module.app, name=group)
    commands = dict(typer.main.get_group(holder).commands)
    for command in commands.values():
        reflow_help(command)
    return commands


def reflow_help(command: Any) -> None:
    """Each prose paragraph of a command's help (and its subcommands') on one line, so the terminal wraps it at
    its own width: Typer keeps a docstring's line breaks, and at 80 columns a paragraph wrapped for 100 broke
    mid-sentence on every other line. Paragraphs with indented or bulleted lines (examples, lists) keep theirs."""
    if command.help:
        first, *rest = (
            p if keeps_lines(p) else " ".join(p.split("\n")) for p in inspect.cleandoc(command.help).split("\n\n")
        )
        # Typer renders the paragraphs after the first through `inspect.cleandoc`, which measures the indentation
        # to strip on every line but the first: when that first line is a heading ("Examples:") and every line
        # under it is indented, the examples lost their indentation. A blank line ahead of them is the first
        # line then (cleandoc drops it), so the heading's column 0 is the margin.
        command.help = "\n\n".join([first, "\n" + "\n\n".join(rest)] if rest else [first])
    for sub in getattr(command, "commands", {}).values():
        reflow_help(sub)


def keeps_lines(paragraph: str) -> bool:
    """Whether a help paragraph is laid out line by line: examples (indented), a list, a heading with its lines."""
    first, *rest = paragraph.split("\n")
    return bool(rest) and (
        first.startswith("\b")
        or first.rstrip().endswith(":")
        or any(ln[:1].isspace() or ln.startswith(("- ", "* ")) for ln in rest)
    )


class LazyCommands(MutableMapping[str, Any]):
    """The top-level commands: names known up front, each module imported when one of its commands is used."""

    def __init__(self, loaded: dict[str, Any]) -> None:
        self.loaded = loaded
        self.modules_done: set[str] = set()

    def load(self, module_name: str, group: str | None) -> None:
        if module_name not in self.modules_done:
            self.modules_done.add(module_name)
            for name, command in load_commands(module_name, group).items():
                self.loaded.setdefault(name, command)

    def load_all(self) -> None:
        for module_name, group in COMMAND_MODULES:
            self.load(module_name, group)

    def __getitem__(self, name: str) -> Any:
        if name not in self.loaded:
            where = _module_of(name)
            if where is not None:
                self.load(*where)
            else:  # a command missing from the table (the test above fails then) still works
                self.load_all()
        return self.loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self.loaded[name]

    def __iter__(self) -> Iterator[str]:
        names = command_names()
        return iter(names + [name for name in self.loaded if name not in names])

    def __len__(self) -> int:
        return len(set(command_names()) | set(self.loaded))


class LazyGroup(TyperGroup):
    """The `malles` group: its commands come from LazyCommands."""

    def __init__(self, *, commands: Any = None, **kwargs: Any) -> None:
        super().__init__(commands=LazyCommands(dict(commands or {})), **kwargs)

    def list_commands(self, ctx: Any) -> list[str]:
        # Help and completion list everything, including a command the table does not know yet.
        self.commands.load_all()  # type: ignore[attr-defined]
        return list(self.commands)


app = typer.Typer(
    name="malles",
    help="Simulate economic decision makers with LLM agents on LangGraph (MALLES, LLM Economist).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=LazyGroup,
    **APP_SETTINGS,
)


@app.callback()
def _group() -> None:
    # A callback makes Typer build a group even though no command is registered on the app itself.
    pass


def main() -> None:
    from malles_graph.cli.errors import run_app

    run_app(app)
