"""A dialog choosing where and how to export a run (one file per table)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from malles_graph.errors import MallesError
from malles_graph.paths import runs_dir


def default_folder(run_id: str) -> str:
    """runs/exports/<run id> under MALLES_RUNS, or empty (the operator types one) when MALLES_RUNS is unusable."""
    try:
        return str(runs_dir() / "exports" / run_id)
    except MallesError:
        return ""


@dataclass(frozen=True)
class ExportRequest:
    folder: Path
    fmt: str


class ExportScreen(ModalScreen[ExportRequest | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Close", id="export.close", tooltip="Back without exporting")]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog", classes="dialog"):
            yield Label(f"Export run {self.run_id}", classes="section-title")
            yield Label("Folder (one file per table: runs, rounds, archetypes, decisions, transcript_turns, metrics)")
            yield Input(default_folder(self.run_id), id="export-folder")
            yield Select([("CSV", "csv"), ("Parquet", "parquet")], value="csv", allow_blank=False, id="export-format")
            with Horizontal(classes="button-row"):
                yield Button("Export", id="export-go", variant="primary")
                yield Button("Cancel", id="export-cancel")

    @on(Button.Pressed, "#export-go")
    @on(Input.Submitted, "#export-folder")
    def _go(self) -> None:
        folder = self.query_one("#export-folder", Input).value.strip()
        if not folder:
            self.notify("Type a folder.", severity="warning")
            return
        fmt = str(self.query_one("#export-format", Select).value)
        self.dismiss(ExportRequest(Path(folder).expanduser(), fmt))

    @on(Button.Pressed, "#export-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
