"""Turn MallesError into a short message and exit code 2, not a traceback."""

from __future__ import annotations

import sys

import click
import typer
from rich.console import Console
from rich.markup import escape

from malles_graph.errors import MallesError

err_console = Console(stderr=True)


def run_app(app: typer.Typer, args: list[str] | None = None) -> None:
    try:
        # Without standalone mode click returns the exit code of typer.Exit instead of exiting.
        code = app(args=args, standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except MallesError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        err_console.print("[yellow]aborted[/]")
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
