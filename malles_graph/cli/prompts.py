"""`malles prompts`: validate, hash and compare the role prompt files (prompt sets)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from malles_graph.cli.tables import JsonOpt, print_table

app = typer.Typer(help="Validate, hash and compare the role prompt files.", no_args_is_help=True)
console = Console()


@app.command()
def check(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="prompt folder (default: $MALLES_PROMPTS, else the bundled prompts)")
    ] = None,
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


@app.command("hash")
def hash_(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="prompt folder (default: $MALLES_PROMPTS, else the bundled prompts), or a persona "
            "file (.yaml; a bare name is looked up under personas/)",
            metavar="SET",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a prompt or persona set's digest (what runs, decisions and evaluations record) and each file's digest.

    A persona set is a persona file plus personas/styles.yaml when one of
    its personas names a preset the file does not define.

    Examples:
      malles prompts hash
      malles prompts hash my-prompts/ --json
      malles prompts hash retail_households.yaml
    """
    import sys

    from malles_graph.cli.tables import to_json
    from malles_graph.prompt_sets import SHORT, load_prompt_set, load_set

    found = load_set(directory) if directory is not None else load_prompt_set()
    if as_json:
        sys.stdout.write(to_json(found.record()) + "\n")
        return
    table = Table(title=f"{found.kind} {found.short}  {found.location}")
    table.add_column("file")
    table.add_column("sha256")
    for name, digest in sorted(found.files.items()):
        table.add_row(found.path_of(name).name, digest[:SHORT] if console.is_terminal else digest)
    print_table(console, table)
    console.print(f"digest {found.digest}", highlight=False, soft_wrap=True)


@app.command()
def diff(
    a: Annotated[Path, typer.Argument(help="first prompt folder or persona file (.yaml)", metavar="A")],
    b: Annotated[Path, typer.Argument(help="second one, of the same kind", metavar="B")],
    context: Annotated[int, typer.Option("--context", "-U", min=0, help="lines of context around each change")] = 2,
) -> None:
    """Compare two prompt sets, or two persona files: their digests and a unified diff of the files that differ.

    Two persona files are compared with each other whatever their names,
    and the style presets they read (personas/styles.yaml) with each other.
    Exit code 0 when the sets are identical, 1 when they differ (like
    diff(1)), 2 on bad input (a missing folder or file, a folder with no
    prompt files, an invalid persona, a folder compared with a persona file).

    Examples:
      malles prompts diff prompts/ my-prompts/
      malles prompts diff prompts/ my-prompts/ | less
      malles prompts diff retail_households.yaml my-households.yaml
    """
    import sys

    from rich.markup import escape
    from rich.syntax import Syntax

    from malles_graph.errors import MallesError
    from malles_graph.prompt_sets import changed_files, diff_sets, is_persona_file, load_set

    if is_persona_file(a) != is_persona_file(b):
        raise MallesError(f"{a} and {b}: compare two prompt folders or two persona files (.yaml), not one of each")
    first, second = load_set(a), load_set(b)
    for label, found in (("A", first), ("B", second)):
        console.print(
            f"{label} {found.short}  {escape(str(found.location))}  ({len(found.files)} files)",
            highlight=False,
            soft_wrap=True,
        )
    if first.digest == second.digest:
        console.print(f"identical {first.kind}s", highlight=False)
        return
    changed = changed_files(first, second)
    console.print(f"{len(changed)} file(s) differ: " + ", ".join(changed), highlight=False, soft_wrap=True)
    text = diff_sets(first, second, context=context)
    if console.is_terminal:
        console.print(Syntax(text, "diff", theme="ansi_dark", word_wrap=True))
    else:  # piped: the plain diff, byte for byte what diff_sets gives (patch-friendly)
        sys.stdout.flush()
        sys.stdout.write(text)
    raise typer.Exit(1)


# `malles prompts experiment` (paired A/B runs of prompt sets): its own module, light at import like this one.
from malles_graph.cli.prompt_experiment import experiment  # noqa: E402

app.command("experiment")(experiment)
