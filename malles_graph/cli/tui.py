"""`malles tui`: the terminal app for operators and prompt engineers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


@app.command()
def tui(
    scenario: Annotated[
        Path | None, typer.Option("--scenario", "-s", help="scenario YAML to preselect on the Run screen")
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="run database URL (sqlite:///... or postgresql://...) for runs and History")
    ] = None,
    screen: Annotated[
        str, typer.Option(help="screen to open first: run, debate, population, history, editor")
    ] = "run",
) -> None:
    """Open the terminal UI: run scenarios, watch the debate live, browse past runs, edit prompts.

    Keys: F1 help, F2-F6 screens, ctrl+r start, ctrl+g cancel, ctrl+p command palette, ctrl+q quit.

    Examples:
      malles tui
      malles tui --scenario scenarios/demo.yaml
      malles tui --store sqlite:///runs/malles.db --screen history
      MALLES_PROMPTS=/tmp/my-prompts malles tui --screen editor
    """
    from malles_graph.errors import MallesError

    if scenario is not None and not scenario.is_file():
        raise MallesError(f"{scenario}: scenario file not found")
    modes = ("run", "debate", "population", "history", "editor")
    if screen not in modes:
        raise typer.BadParameter(f"unknown screen {screen!r}; choose one of {', '.join(modes)}", param_hint="--screen")
    from malles_graph.tui.app import MallesApp

    MallesApp(scenario_path=scenario, store_url=store, start_mode=screen).run()
