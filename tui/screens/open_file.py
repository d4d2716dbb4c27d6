"""A dialog choosing a file (a scenario YAML outside scenarios/): a path box that completes, and a folder tree.

Type a path (the box suggests the rest of a file or folder name; right arrow accepts) or walk the tree
and press Enter on a file. A folder typed in the box becomes the tree's root instead of an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import DirectoryTree, Input, Label, Static

HINT = "Enter opens; right arrow takes the suggestion; tab moves to the tree; escape goes back"


class PathSuggester(Suggester):
    """Completes the last part of a typed path from the folder it names (``~`` is the home folder)."""

    def __init__(self, suffixes: tuple[str, ...]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.suffixes = suffixes

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        typed = Path(value).expanduser()
        folder, stem = (typed, "") if value.endswith(("/", "\\")) else (typed.parent, typed.name)
        try:
            names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if p.name.startswith(stem))
        except OSError:
            return None
        names = [n for n in names if n.endswith("/") or not self.suffixes or n.endswith(self.suffixes)]
        if not names or (stem and names[0] == stem):
            return None
        return value + names[0][len(stem) :]


class FileTree(DirectoryTree):
    """Folders and files with the wanted suffixes; hidden entries left out."""

    def __init__(self, path: Path, suffixes: tuple[str, ...], *, id: str | None = None) -> None:
        self.suffixes = suffixes
        super().__init__(path, id=id)

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [
            p
            for p in paths
            if not p.name.startswith(".") and (p.is_dir() or not self.suffixes or p.suffix in self.suffixes)
        ]


class OpenFileScreen(ModalScreen[Path | None]):
    """Returns the chosen file (it exists and has one of ``suffixes``), or None when dismissed."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Close", id="open.close", tooltip="Back without opening")]

    def __init__(
        self,
        prompt: str = "Open a scenario YAML file",
        suffixes: tuple[str, ...] = (".yaml", ".yml"),
        start: Path | None = None,
    ) -> None:
        super().__init__()
        self.prompt = prompt
        self.suffixes = suffixes
        self.start = start or Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical(id="open-dialog", classes="dialog"):
            yield Label(self.prompt, classes="section-title")
            yield Input(
                placeholder="e.g. ~/my-scenarios/retail.yaml", id="open-path", suggester=PathSuggester(self.suffixes)
            )
            yield Static(HINT, id="open-error")
            yield FileTree(self.start, self.suffixes, id="open-tree")

    def check(self, path: Path) -> str | None:
        """Why ``path`` cannot be opened (one line), or None when it can."""
        if not path.exists():
            return f"{path}: no such file or folder"
        if path.is_dir():
            return None  # handled by the caller: the tree moves there
        if self.suffixes and path.suffix not in self.suffixes:
            return f"{path.name}: expected a {' or '.join(self.suffixes)} file"
        return None

    def choose(self, path: Path) -> None:
        error = self.query_one("#open-error", Static)
        problem = self.check(path)
        if problem:
            error.update(f"[red]{problem}[/]")
        elif path.is_dir():
            self.query_one("#open-tree", FileTree).path = path
            error.update(f"{path} is a folder: its files are listed below")
        else:
            self.dismiss(path.resolve())

    @on(Input.Submitted, "#open-path")
    def _submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.query_one("#open-error", Static).update("[red]type a path, or pick a file in the tree[/]")
            return
        self.choose(Path(event.value.strip()).expanduser())

    @on(DirectoryTree.FileSelected, "#open-tree")
    def _picked(self, event: DirectoryTree.FileSelected) -> None:
        self.choose(event.path)
