"""A transcript of agent turns: role colours, round, token counts; retries and conflicts stand out."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

from malles_graph.agents import TranscriptTurn

ROLE_COLOURS = {
    "product_specialist": "cyan",
    "price_analyst": "yellow",
    "persona": "magenta",
    "decide": "green",
    "single_agent": "green",
    "wholesaler": "cyan",
    "marketing": "yellow",
    "manufacturer": "magenta",
    "worker": "cyan",
    "planner": "yellow",
    "voter": "magenta",
}
KIND_STYLES = {
    "retry": ("RETRY", "bold black on yellow", "yellow"),
    "conflict": ("CONFLICT", "bold white on dark_orange3", "dark_orange3"),
    "failure": ("FAILURE", "bold white on red", "red"),
    "decision": ("DECISION", "bold black on green", "green"),
    "computed": ("COMPUTED", "bold black on grey70", "grey70"),
    "vote": ("VOTE", "bold black on cyan", "cyan"),
}


def role_colour(role: str) -> str:
    return ROLE_COLOURS.get(role, "white")


def render_turn(turn: TranscriptTurn) -> Panel:
    """One turn as a panel: the title has role, round and tokens; the border marks its kind."""
    colour = role_colour(turn.role)
    title = Text.assemble((turn.role, f"bold {colour}"), f"  round {turn.round}")
    border = colour
    badge, badge_style, kind_border = KIND_STYLES.get(turn.kind, ("", "", ""))
    if badge:
        title.append("  ")
        title.append(f" {badge} ", style=badge_style)
        border = kind_border
    tokens = f"{turn.prompt_tokens}+{turn.completion_tokens} tok"
    if turn.latency_s:
        tokens += f"  {turn.latency_s:.1f}s"
    if turn.cached:
        tokens += "  cached"
    body = Text(turn.text.strip() or "(empty answer)")
    if turn.kind == "failure":
        body.stylize("red")
    return Panel(Group(body), title=title, title_align="left", subtitle=tokens, subtitle_align="right", border_style=border)


class TranscriptView(RichLog):
    """Appends turns as they stream; ``show`` replaces the whole transcript."""

    DEFAULT_CSS = """
    TranscriptView {
        background: $surface;
        border: round $primary 40%;
        scrollbar-gutter: stable;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        # min_width=1: render at the pane's own width (RichLog's default 78 overflows a narrow pane).
        super().__init__(
            id=id, classes=classes, wrap=True, markup=False, highlight=False, auto_scroll=True, min_width=1
        )
        self.turn_count = 0
        self._turns: list[TranscriptTurn] = []
        self._empty_text = ""
        self._drawn_width = 0

    def add_turn(self, turn: TranscriptTurn) -> None:
        self.write(render_turn(turn), expand=True)
        self._turns.append(turn)
        self.turn_count += 1

    def show(self, turns: list[TranscriptTurn], empty_text: str = "No transcript yet.") -> None:
        self.clear()
        self.turn_count = 0
        self._turns = []
        self._empty_text = empty_text
        if not turns:
            self.write(Text(empty_text, style="dim"))
        for turn in turns:
            self.add_turn(turn)

    def on_resize(self, event: Resize) -> None:
        # A RichLog keeps lines rendered at the width they were written at; panels drawn before a
        # layout change (a narrow terminal, a resized window) are redrawn to the new width.
        # (RichLog's own on_resize runs after this one and renders the writes deferred until a size is known.)
        width, drawn, self._drawn_width = event.size.width, self._drawn_width, event.size.width
        if self._size_known and drawn and width != drawn and (self._turns or self._empty_text):
            self.show(list(self._turns), self._empty_text)
