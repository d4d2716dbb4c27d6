"""Past runs: list, show, export (commands `runs`, `show`, `export`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from malles_graph.cli.tables import CsvOpt, JsonOpt, emit, output_format

app = typer.Typer()
console = Console()

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="store URL (sqlite:///... or postgresql://...); runs/malles.sqlite when empty"),
]
RunIdArg = Annotated[str, typer.Argument(help="run id (see `malles runs`)")]
MAX_LISTED = 1_000_000


@app.command("runs")
def runs(
    store: StoreOpt = None,
    # The bound keeps the limit inside a database integer (SQLite's is 64-bit): a larger one was an OverflowError.
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=MAX_LISTED, help="newest runs shown")] = 20,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """List past runs, newest first.

    Examples:
      malles runs
      malles runs --store postgresql://user:pw@localhost/malles -n 5
      malles runs --csv > runs.csv
    """
    from malles_graph.store import make_engine
    from malles_graph.store.repository import list_runs

    fmt = output_format(as_json, as_csv)
    rows = list_runs(make_engine(store), limit)
    if not rows and fmt == "table":
        console.print("no runs in the store yet; start one with `malles run scenarios/demo.yaml`")
        return
    table = Table(title="runs")
    for name in ("run id", "scenario", "kind", "status", "backend", "customers", "K", "rounds", "converged", "started"):
        table.add_column(name)
    for r in rows:
        table.add_row(
            r.id, r.name, r.kind, r.status, r.backend, f"{r.n_customers:,}", str(r.archetypes), f"{r.rounds_done}/{r.max_rounds}",
            "yes" if r.converged else "no", f"{r.created_at:%Y-%m-%d %H:%M}",
        )
    emit(console, [table], fmt, rows)


@app.command("show")
def show(
    run_id: RunIdArg,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    turns: Annotated[
        bool, typer.Option("--turns", help="first print the stored transcript turn by turn (debates, dialogue)")
    ] = False,
    round_: Annotated[int | None, typer.Option("--round", min=0, help="with --turns: only this round's")] = None,
) -> None:
    """Print a run's rounds and its summary table (--json: the whole summary; --csv: the rounds).

    Any kind of run: retail, economist, wholesale (its purchasing rule and held-out comparison). --turns
    prints the transcript first, one panel a turn as `malles decide` streams them; `malles export` writes
    it as a table (transcript_turns).

    Examples:
      malles show demo-20260101-120000-ab12
      malles show demo-20260101-120000-ab12 --json | jq '.rounds[-1].distance'
      malles show wholesale-20261123-170102-ab12cd --turns
      malles show demo-20260101-120000-ab12 --turns --round 1 | less
    """
    from malles_graph.cli.run_view import rounds_table, summary_table, turn_panel
    from malles_graph.store import make_engine, normalise_url
    from malles_graph.store.repository import load_turns
    from malles_graph.store.summary import summarise

    url = normalise_url(store)
    fmt = output_format(as_json, as_csv)
    if (turns or round_ is not None) and fmt != "table":
        raise typer.BadParameter("--turns prints panels; for the transcript as data use `malles export RUN_ID`")
    if round_ is not None and not turns:
        raise typer.BadParameter("--round chooses the turns to print: give --turns as well")
    engine = make_engine(url)
    summary = summarise(engine, run_id, url)
    if turns:
        for turn in load_turns(engine, run_id, round=round_):
            console.print(turn_panel(turn))
    tables = [rounds_table(summary.rounds), summary_table(summary)]
    if summary.prompt_set:  # runs stored before prompt sets were recorded have none
        tables.append(prompt_set_table(summary.prompt_set))
    from malles_graph.cli.usage_view import usage_table

    tables.append(usage_table(summary.usage))
    emit(console, tables, fmt, summary)


def prompt_set_table(prompt_set: dict) -> Table:
    """The run's prompt set: its short digest and folder in the title, one row per file with its digest."""
    from rich.markup import escape

    from malles_graph.prompt_sets import SHORT

    digest = str(prompt_set.get("digest", ""))
    table = Table(title=f"prompt set {digest[:SHORT]}  {escape(str(prompt_set.get('folder', '')))}")
    table.add_column("file")
    table.add_column("sha256")
    for name, file_digest in sorted(dict(prompt_set.get("files") or {}).items()):
        table.add_row(f"{name}.txt", str(file_digest)[:SHORT])
    personas = prompt_set.get("personas") or {}  # the persona set, when the run's personas came from a file
    if personas:
        file = str(personas.get("file", ""))
        table.caption = escape(f"persona set {str(personas.get('digest', ''))[:SHORT]}  {file}")
        for name, file_digest in sorted(dict(personas.get("files") or {}).items()):
            table.add_row(escape(Path(file).name if name == "personas" else name), str(file_digest)[:SHORT])
    return table


@app.command("export")
def export(
    run_id: RunIdArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or parquet")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output folder; runs/export/<run id> when empty")] = None,
    store: StoreOpt = None,
) -> None:
    """Export a run's tables (runs, rounds, archetypes, decisions, transcript_turns, metrics), one file each.

    Examples:
      malles export demo-20260101-120000-ab12 --format parquet
      malles export demo-20260101-120000-ab12 -f csv -o /tmp/demo-run
    """
    from malles_graph.errors import MallesError
    from malles_graph.paths import runs_dir
    from malles_graph.store import make_engine
    from malles_graph.store.export import export_run

    if fmt not in ("csv", "parquet"):
        raise MallesError(f"--format must be csv or parquet, got {fmt!r}")
    chosen: Literal["csv", "parquet"] = "csv" if fmt == "csv" else "parquet"
    folder = out or runs_dir() / "export" / run_id
    files = export_run(make_engine(store), run_id, folder, chosen)
    for path in files:
        console.print(f"wrote {path}")
