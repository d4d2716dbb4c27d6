"""The help screen: what each screen is for and every key, read from the live bindings."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

SCREENS_TEXT = """\
# malles-graph

| key | screen | what it is for |
|---|---|---|
| F2 | **Run** | pick a scenario from `scenarios/` (or open a file), override backend, seed, rounds, archetypes; start (ctrl+r) and cancel (ctrl+g) |
| F3 | **Live debate** | the transcript of the decisions being simulated, turn by turn; switch archetype with the list |
| F4 | **Population** | per mean-field round: demand by product, convergence distance, archetypes with mass, decision, agreement |
| F5 | **History** | past runs from the database; open one to browse rounds, decisions, transcripts; export |
| F6 | **Prompts & personas** | edit `prompts/*.txt` and `personas/*.yaml` with live validation, preview and *try it* |

Every action is also in the command palette (**ctrl+p**). Runs keep going while you switch screens.
Invalid files are never saved; a failed run keeps the rounds already recorded.
"""


class HelpScreen(ModalScreen[None]):
    """Keys of the app and of the screen underneath, plus what each screen does."""

    BINDINGS = [
        Binding("escape,q,f1", "dismiss", "Close", id="help.close", tooltip="Back to the app"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Markdown(SCREENS_TEXT + "\n" + self._keys_table(), id="help-text")

    def _keys_table(self) -> str:
        rows = ["## Keys", "", "| key | action | where |", "|---|---|---|"]
        seen: set[tuple[str, str]] = set()
        screens = [s for s in self.app.screen_stack if s is not self]
        sources = [(self.app, "everywhere")] + [(s, type(s).__name__.removesuffix("Screen")) for s in screens[-1:]]
        for node, where in sources:
            for binding in node._bindings.key_to_bindings.values():  # the resolved keymap (keymap overrides applied)
                for b in binding:
                    if not b.description or (b.key, b.action) in seen or b.system:
                        continue
                    seen.add((b.key, b.action))
                    key = self.app.get_key_display(b)
                    rows.append(f"| {key} | {b.description}{' - ' + b.tooltip if b.tooltip else ''} | {where} |")
        rows.append("| ctrl+p | command palette | everywhere |")
        rows.append("| ctrl+q | quit | everywhere |")
        return "\n".join(rows)
