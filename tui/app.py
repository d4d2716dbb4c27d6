"""The malles-graph terminal app: run scenarios, watch debates, browse history, edit prompts.

Five screens, one per app *mode* (switching keeps each screen's state): Run,
Live debate, Population, History, Prompts & personas. Runs execute in a thread
worker owned by the app, so they keep going while the operator moves between
screens; the worker posts past-tense messages (``malles_graph.tui.messages``), the app folds
them into :class:`~malles_graph.tui.session.RunSession` and re-publishes them on the
``run_events`` signal that the screens subscribe to.
"""

from __future__ import annotations

import gc
import importlib
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from malles_graph.tui import messages as msg
from malles_graph.tui.commands import MallesCommands
from malles_graph.tui.screens.run import RunScreen
from malles_graph.tui.session import RunSession
from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.signal import Signal

from malles_graph.scenario import Scenario

# Builds the chat model for a scenario (tests pass scripted models); None: the scenario's backend.
ChatModelFactory = Callable[[Scenario], Any]

# The footer shows the five screen keys as one group ("f2f3f4f5f6 screens"), so 80 columns hold them all.
SCREEN_KEYS = Binding.Group("screens", compact=True)
NARROW_BELOW = 110

# mode -> "module:Class". A screen's module is imported on its first visit, so start-up loads only the
# Run screen (the charts, the database layer and the editor's dependencies come later, when used).
SCREEN_CLASSES = {
    "run": "malles_graph.tui.screens.run:RunScreen",
    "debate": "malles_graph.tui.screens.debate:DebateScreen",
    "population": "malles_graph.tui.screens.population:PopulationScreen",
    "history": "malles_graph.tui.screens.history:HistoryScreen",
    "editor": "malles_graph.tui.screens.editor:EditorScreen",
}


def screen_class(mode: str) -> type[Screen]:
    module, name = SCREEN_CLASSES[mode].split(":")
    return getattr(importlib.import_module(module), name)


def new_screen(mode: str) -> Screen:
    return screen_class(mode)()


# Imported in the background once the first screen shows, after the screens: the help screen, the decision
# graph's views (the editor's sample customer) and the run store (History's list). A first visit then only
# composes its screen and reads its data; a screen visited before the preload ends waits for the import in
# its own worker, showing what it has meanwhile.
PRELOAD_MODULES = (
    "malles_graph.tui.screens.help",
    "malles_graph.tui.history_data",
    "malles_graph.store.repository",
    "malles_graph.graphs.decision",
)

_frozen = threading.Event()


def freeze_startup_objects() -> None:
    """Move what start-up made (modules, classes, the first screen) out of the garbage collector's sight.

    A first visit allocates many objects, which sets off full collections; with LangGraph and SQLAlchemy
    imported those walk about 280,000 long-lived objects each time, more than half of the visit's CPU.
    Once per process (a test session starts many apps): collect what is garbage already, then freeze.
    """
    if not _frozen.is_set():
        _frozen.set()
        gc.collect()
        gc.freeze()


SCREEN_TITLES = {
    "run": "Run",
    "debate": "Live debate",
    "population": "Population",
    "history": "History",
    "editor": "Prompts & personas",
}


class MallesApp(App[None]):
    """Operators run scenarios here; prompt engineers edit and try prompts."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute, so subclasses defined elsewhere find it
    TITLE = "malles-graph"
    MODES = {mode: partial(new_screen, mode) for mode in SCREEN_CLASSES}
    COMMANDS = App.COMMANDS | {MallesCommands}
    # Screens get the class -narrow below 110 columns (app.tcss stacks or narrows the side panels there).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW_BELOW, "-wide")]
    BINDINGS = [
        Binding("f1", "help", "Help", id="app.help", tooltip="Keys and screens", priority=True),
        Binding(
            "f2",
            "goto('run')",
            "Run",
            id="app.goto.run",
            tooltip="Pick a scenario and start it",
            priority=True,
            group=SCREEN_KEYS,
        ),
        Binding(
            "f3",
            "goto('debate')",
            "Debate",
            id="app.goto.debate",
            tooltip="Live transcript",
            priority=True,
            group=SCREEN_KEYS,
        ),
        Binding(
            "f4",
            "goto('population')",
            "Population",
            id="app.goto.population",
            tooltip="Rounds",
            priority=True,
            group=SCREEN_KEYS,
        ),
        Binding(
            "f5",
            "goto('history')",
            "History",
            id="app.goto.history",
            tooltip="Past runs",
            priority=True,
            group=SCREEN_KEYS,
        ),
        Binding(
            "f6",
            "goto('editor')",
            "Prompts",
            id="app.goto.editor",
            tooltip="Prompts & personas",
            priority=True,
            group=SCREEN_KEYS,
        ),
        # Work from every screen; not in the footer (the Run screen's buttons name them) so 80 columns suffice.
        Binding(
            "ctrl+r",
            "start_run",
            "Start",
            id="app.run.start",
            tooltip="Start the chosen scenario",
            priority=True,
            show=False,
        ),
        Binding(
            "ctrl+g",
            "cancel_run",
            "Cancel",
            id="app.run.cancel",
            tooltip="Stop the run (keeps what is recorded)",
            priority=True,
            show=False,
        ),
    ]

    def __init__(
        self,
        scenario_path: Path | None = None,
        store_url: str | None = None,
        chat_model_factory: ChatModelFactory | None = None,
        start_mode: str = "run",
        real_sample: bool = True,
    ) -> None:
        super().__init__()
        self.real_sample = real_sample  # False: the editor's sample customer is built in (no data load)
        self.scenario_path = scenario_path
        self.store_url = store_url
        self.chat_model_factory = chat_model_factory
        self.start_mode = start_mode
        self.session = RunSession()
        self.last_store_url: str | None = store_url  # the store of the latest retail run (History's default)
        self.run_events: Signal[Message] = Signal(self, "run-events")
        self._cancel = threading.Event()
        self.quitting = False  # set on exit: a run in flight is marked interrupted and left at once

    def on_mount(self) -> None:
        self.switch_mode(self.start_mode)

    def on_ready(self) -> None:
        self.preload_screens()

    @work(thread=True, exit_on_error=False, group="preload", description="import the other screens")
    def preload_screens(self) -> None:
        """Import what the other screens need while the operator reads the first one, so first visits are quick."""
        modules = [SCREEN_CLASSES[mode].split(":")[0] for mode in SCREEN_CLASSES] + list(PRELOAD_MODULES)
        for module in modules:
            if self.quitting:  # the process waits for this thread at exit: stop after the import in progress
                return
            importlib.import_module(module)
        freeze_startup_objects()

    def exit(self, *args: Any, **kwargs: Any) -> None:
        # A run thread cannot be killed: mark the run interrupted and leave it; its calls in flight end alone.
        self.quitting = True
        self._cancel.set()
        super().exit(*args, **kwargs)

    # ---- navigation -------------------------------------------------------------------------

    def action_goto(self, mode: str) -> None:
        if mode in self.MODES and mode != self.current_mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        from malles_graph.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def mode_screen(self, mode: str) -> Any:
        """The base screen of a mode, showing the mode first if it was never shown."""
        try:
            return self.get_screen_stack(mode)[0]
        except (KeyError, IndexError):
            await self.switch_mode(mode)
            return self.get_screen_stack(mode)[0]

    async def _in_mode(self, mode: str, action: str) -> None:
        """Switch to ``mode`` and run one of its screen's actions (palette entries use this)."""
        if mode != self.current_mode:
            await self.switch_mode(mode)
        await self.screen.run_action(action)

    async def action_open_scenario(self) -> None:
        await self._in_mode("run", "open_file")

    async def action_save_file(self) -> None:
        await self._in_mode("editor", "save")

    async def action_try_prompt(self) -> None:
        await self._in_mode("editor", "try_it")

    async def action_revert_file(self) -> None:
        await self._in_mode("editor", "revert")

    async def action_refresh_history(self) -> None:
        await self._in_mode("history", "refresh")

    async def action_open_run(self) -> None:
        await self._in_mode("history", "open_run")

    async def action_export_run(self) -> None:
        await self._in_mode("history", "export")

    # ---- runs -------------------------------------------------------------------------------

    @property
    def run_active(self) -> bool:
        return self.session.status in ("running", "cancelling")

    async def action_start_run(self) -> None:
        """Build the scenario from the Run form (validated there) and start it."""
        if self.run_active:
            self.notify("A run is already going; cancel it first (ctrl+g).", severity="warning")
            return
        run_screen: RunScreen = await self.mode_screen("run")
        scenario = run_screen.build_scenario()
        if scenario is None:
            if self.current_mode != "run":
                await self.switch_mode("run")
            return
        self.start_run(scenario, resume=run_screen.resume_id())

    def start_run(self, scenario: Scenario, resume: str | None = None) -> None:
        self.session.reset(scenario.name, scenario.kind)
        self.last_store_url = scenario.store.url or self.store_url
        self._cancel = threading.Event()
        self.run_events.publish(msg.RunStarted(resume, scenario.name, scenario.kind))
        self.run_scenario(scenario, resume, self._cancel)

    def action_cancel_run(self) -> None:
        if not self.run_active:
            self.notify("No run is going.", severity="information")
            return
        self._cancel.set()
        self.session.status = "cancelling"
        self.notify("Cancelling: the run stops at its next event; recorded rounds are kept.")
        self.run_events.publish(msg.RunCancelled(self.session.run_id, stopped=False))

    @work(thread=True, exclusive=True, exit_on_error=False, group="run", description="scenario run")
    def run_scenario(self, scenario: Scenario, resume: str | None, cancel: threading.Event) -> None:
        from malles_graph.tui.running import execute_run

        chat_model = self.chat_model_factory(scenario) if self.chat_model_factory else None
        # The form's store box (prefilled with --store) is the scenario's store.url: it wins.
        store_url = scenario.store.url or self.store_url
        execute_run(self, scenario, resume=resume, store_url=store_url, chat_model=chat_model, cancel=cancel)

    # The worker's messages: fold into the session, then tell the screens.

    @on(msg.RunStarted)
    def _run_started(self, message: msg.RunStarted) -> None:
        if message.run_id:
            self.session.run_id = message.run_id
        self.run_events.publish(message)

    @on(msg.RunLogged)
    def _run_logged(self, message: msg.RunLogged) -> None:
        self.run_events.publish(message)

    @on(msg.RoundStarted)
    def _round_started(self, message: msg.RoundStarted) -> None:
        self.session.start_round(message.round_index, message.n_decisions, message.done)
        self.run_events.publish(message)

    @on(msg.TurnStreamed)
    def _turn_streamed(self, message: msg.TurnStreamed) -> None:
        self.session.add_turn(message.turn, message.round_index)
        self.run_events.publish(message)

    @on(msg.DecisionFinished)
    def _decision_finished(self, message: msg.DecisionFinished) -> None:
        self.session.finish_decision(message.round_index, message.done, message.total, message.outcome, message.mass)
        self.run_events.publish(message)

    @on(msg.RoundFinished)
    def _round_finished(self, message: msg.RoundFinished) -> None:
        self.session.finish_round(message.round_index, message.figures)
        self.run_events.publish(message)

    @on(msg.RunFinished)
    def _run_finished(self, message: msg.RunFinished) -> None:
        self.session.status = "finished"
        self.session.summary = message.summary
        self.session.run_id = message.run_id or self.session.run_id
        self.notify(f"Run {self.session.run_id or ''} finished.", title=self.session.scenario_name)
        self.run_events.publish(message)

    @on(msg.RunFailed)
    def _run_failed(self, message: msg.RunFailed) -> None:
        self.session.status = "failed"
        self.session.error = message.error
        self.session.run_id = message.run_id or self.session.run_id
        self.notify(message.error, title="Run failed", severity="error", timeout=15)
        self.run_events.publish(message)

    @on(msg.RunCancelled)
    def _run_cancelled(self, message: msg.RunCancelled) -> None:
        # Posted by the worker once it has really stopped (the action only publishes "cancelling").
        self.session.status = "cancelled"
        self.session.run_id = message.run_id or self.session.run_id
        self.notify(
            f"Run cancelled; what was recorded is kept. Resume it with run id {self.session.run_id}.",
            severity="warning",
        )
        self.run_events.publish(message)
