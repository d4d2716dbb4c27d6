"""`malles prompts`: validate and preview the role prompt files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from malles_graph.cli.tables import print_table

app = typer.Typer(help="Validate and preview the role prompt files.", no_args_is_help=True)
console = Console()


@app.command()
def check(
    directory: Annotated[Path | None, typer.Option("--dir", help="prompt folder (default: $MALLES_PROMPTS, else the bundled prompts)")] = None,
) -> None:
    """Check every prompt file: it exists and uses exactly the variables the code supplies.

    Examples:
      malles prompts check
      malles prompts check --dir my-prompts/
    """
    from malles_graph.prompts import check_prompts

    results = check_prompts(directory)
    table = Table(title="prompt files")
    table.add_column("prompt")
    table.add_column("status")
    for name, error in results.items():
        table.add_row(name, "[green]ok[/]" if error is None else f"[red]{error}[/]")
    print_table(console, table)
    failed = [name for name, error in results.items() if error]
    if failed:
        console.print(f"[red]{len(failed)} of {len(results)} prompt(s) invalid[/]")
        raise typer.Exit(1)
    console.print(f"[green]all {len(results)} prompts valid[/]")


@app.command("list")
def list_prompts() -> None:
    """List known prompts and the variables each may use (required ones marked *).

    Example:
      malles prompts list
    """
    from malles_graph.prompts import PROMPT_SPECS

    table = Table(title="prompt contracts")
    table.add_column("prompt")
    table.add_column("variables (* = required)")
    for name, spec in sorted(PROMPT_SPECS.items()):
        table.add_row(name, ", ".join(f"{v}*" if v in spec.required else v for v in sorted(spec.variables)))
    print_table(console, table)
