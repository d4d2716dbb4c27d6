"""Top-level commands: demo, run, backends."""

from __future__ import annotations

import typer

app = typer.Typer()
