"""History: past runs from the database (placeholder until the store lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


class HistoryScreen(Screen[None]):
    TITLE = "History"
    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="history.refresh", tooltip="Reload past runs"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("The run store is not available yet.", id="history-empty")
        yield Footer()

    def action_refresh(self) -> None:
        pass

    def action_open_run(self) -> None:
        pass

    def action_export(self) -> None:
        pass
