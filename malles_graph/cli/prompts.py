"""`malles prompts`: validate the role prompt files."""

from __future__ import annotations

import typer

app = typer.Typer(help="Validate and render the role prompts in prompts/.", no_args_is_help=True)
