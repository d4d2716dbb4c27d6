"""The CLI's one error boundary: bad input becomes a short `error:` message and exit code 2, never a traceback.

Typer 0.29 bundles its own copy of click (``typer._click``); its exceptions are not the ones of the separate
``click`` package, so they are caught here by their typer classes (pyproject bounds typer to the versions
this was tested with).
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from malles_graph.errors import MallesError
from malles_graph.redact import install_log_redaction, redact

err_console = Console(stderr=True)

USAGE_EXIT = 2


def _error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(redact(message))}", highlight=False, soft_wrap=True)


def run_app(app: typer.Typer, args: list[str] | None = None) -> None:
    install_log_redaction()
    try:
        # Without standalone mode typer returns the exit code of typer.Exit instead of exiting.
        code = app(args=args, prog_name="malles", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except MallesError as exc:
        _error(str(exc))
        sys.exit(USAGE_EXIT)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("[yellow]aborted[/]")
        sys.exit(1)
    except NoArgsIsHelpError as exc:  # `malles` or `malles data` alone: the help text is the answer
        exc.show()
        sys.exit(USAGE_EXIT)
    except UsageError as exc:
        _error(usage_message(exc))
        sys.exit(USAGE_EXIT)
    except ClickException as exc:
        _error(exc.format_message())
        sys.exit(exc.exit_code)
    except RecursionError:
        # Deeply nested input (YAML, JSON) that a parser below us walks recursively.
        _error("the input is nested too deeply to read")
        sys.exit(USAGE_EXIT)


def usage_message(exc: UsageError) -> str:
    """``<command path>: <message> (see <command path> --help)`` on one line."""
    message = " ".join(exc.format_message().split())
    if exc.ctx is None:
        return message
    return f"{exc.ctx.command_path}: {message} (see `{exc.ctx.command_path} --help`)"
