"""A small dialog asking for the path of a file (a scenario YAML outside scenarios/)."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class OpenFileScreen(ModalScreen[Path | None]):
    """Returns the path typed (it must exist), or None when dismissed."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Close", id="open.close", tooltip="Back without opening")]

    def __init__(self, prompt: str = "Path of a scenario YAML file", suffixes: tuple[str, ...] = (".yaml", ".yml")):
        super().__init__()
        self.prompt = prompt
        self.suffixes = suffixes

    def compose(self) -> ComposeResult:
        with Vertical(id="open-dialog", classes="dialog"):
            yield Label(self.prompt, classes="section-title")
            yield Input(placeholder="e.g. ~/my-scenarios/retail.yaml", id="open-path")
            yield Static("enter to open, escape to go back", id="open-error")

    @on(Input.Submitted, "#open-path")
    def _submitted(self, event: Input.Submitted) -> None:
        path = Path(event.value.strip()).expanduser()
        error = self.query_one("#open-error", Static)
        if not event.value.strip():
            error.update("[red]type a path[/]")
        elif not path.is_file():
            error.update(f"[red]{path}: no such file[/]")
        elif self.suffixes and path.suffix not in self.suffixes:
            error.update(f"[red]{path}: expected a {' or '.join(self.suffixes)} file[/]")
        else:
            self.dismiss(path.resolve())
