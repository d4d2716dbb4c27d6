"""The help screen: what each screen is for and every key of the app, each listed once."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

SCREENS_TEXT = """\
# malles-graph

**Escape** (or F1, q) closes this help; Escape also closes every dialog.

* **F2 Run**: pick a scenario from `scenarios/` (or open a file), override backend, seed, rounds,
  archetypes; start (ctrl+r) and cancel (ctrl+g).
* **F3 Live debate**: the transcript of the decisions being simulated, turn by turn; pick an agent in the list.
* **F4 Population**: per mean-field round, demand by product, convergence distance, archetypes with mass,
  decision and agreement.
* **F5 History**: past runs from the run store; open one to browse rounds, decisions, transcripts; export.
* **F6 Prompts & personas**: edit `prompts/*.txt` and `personas/*.yaml` with live validation, preview
  and *try it*.

Runs keep going while you switch screens. Invalid files are never saved; a failed run keeps the rounds
already recorded. Every action is also in the command palette.
"""


def key_rows(app: Any) -> list[tuple[str, str, str]]:
    """(key, what it does, where) for the app's keys, then each screen's: one row per key and place.

    The key is written the way the footer writes it (``^p``, ``f1``), and only once.
    """
    from malles_graph.tui.app import SCREEN_CLASSES, screen_class

    sources: list[tuple[str, BindingsMap]] = [("everywhere", app._bindings)]
    for mode in SCREEN_CLASSES:  # each screen's own keys (Textual's tab/copy keys are not ours)
        cls = screen_class(mode)
        sources.append((getattr(cls, "TITLE", mode), BindingsMap(cls.BINDINGS)))
    rows: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for where, bindings in sources:
        for binding_list in bindings.key_to_bindings.values():
            for binding in binding_list:
                if binding.system or not binding.description:
                    continue
                key = app.get_key_display(binding)
                if (key, where) in seen:
                    continue
                seen.add((key, where))
                what = binding.description + (f": {binding.tooltip}" if binding.tooltip else "")
                rows.append((key, what, where))
    return rows


class HelpScreen(ModalScreen[None]):
    """Every key of the app and of each screen, plus what each screen does."""

    BINDINGS = [
        Binding("escape,q,f1", "dismiss", "Close", id="help.close", tooltip="Back to the app"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Markdown(SCREENS_TEXT + "\n" + self._keys_table(), id="help-text")

    def _keys_table(self) -> str:
        lines = ["## Keys", "", "| key | action | where |", "|---|---|---|"]
        lines += [f"| {key} | {what} | {where} |" for key, what, where in key_rows(self.app)]
        return "\n".join(lines)
