"""One command palette entry for each action of the app.

The table below is the single list of user actions; ``MallesCommands`` offers it
in Textual's command palette (ctrl+p). Every entry runs an *app* action, so it
works from any screen: the action switches to the right screen first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class PaletteCommand:
    title: str
    help: str
    action: str  # an action string of the app, e.g. "goto('run')"


PALETTE: tuple[PaletteCommand, ...] = (
    PaletteCommand("Go to Run", "pick a scenario, override fields, start or cancel a run", "goto('run')"),
    PaletteCommand("Go to Live debate", "the transcript of the decisions being simulated", "goto('debate')"),
    PaletteCommand("Go to Population", "demand, convergence and archetypes per mean-field round", "goto('population')"),
    PaletteCommand("Go to History", "past runs from the database", "goto('history')"),
    PaletteCommand("Go to Prompts & personas", "edit role prompts and persona/style files", "goto('editor')"),
    PaletteCommand("Start run", "start the scenario chosen on the Run screen", "start_run"),
    PaletteCommand("Cancel run", "stop the running scenario (recorded rounds are kept)", "cancel_run"),
    PaletteCommand("Open scenario file", "type the path of a scenario YAML outside scenarios/", "open_scenario"),
    PaletteCommand("Save file", "validate and save the file open in the editor", "save_file"),
    PaletteCommand("Try it", "run one decision with the edited prompt (nothing is saved)", "try_prompt"),
    PaletteCommand("Revert file", "drop unsaved edits of the file open in the editor", "revert_file"),
    PaletteCommand("Refresh history", "reload the list of past runs from the database", "refresh_history"),
    PaletteCommand("Open selected run", "browse the rounds, decisions and transcripts of a past run", "open_run"),
    PaletteCommand("Export selected run", "write the selected past run to files", "export_run"),
    PaletteCommand("Help", "keys and screens", "help"),
)


class MallesCommands(Provider):
    """The app's actions in the command palette."""

    def _run(self, action: str) -> None:
        self.app.call_later(self.app.run_action, action)

    async def discover(self) -> Hits:
        for command in PALETTE:
            yield DiscoveryHit(command.title, partial(self._run, command.action), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in PALETTE:
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), partial(self._run, command.action), help=command.help)
