"""`malles memory`: build and inspect the Chroma transaction memory (Ta Feng episodes)."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from malles_graph.cli.progress import counted, stages
from malles_graph.cli.tables import print_table

if TYPE_CHECKING:
    from malles_graph.retrieval import HnswParams

app = typer.Typer(help="Build and query the Chroma transaction memory (retrieval).", no_args_is_help=True)
console = Console()

PathOpt = Annotated[str | None, typer.Option("--path", help="Chroma persist folder (default: <runs>/memory)")]
UrlOpt = Annotated[str | None, typer.Option("--url", help="Chroma server URL, e.g. http://localhost:8000")]
CollectionOpt = Annotated[str, typer.Option("--collection", help="collection name")]


HNSW_OPTIONS = {"max_neighbors": "--m", "ef_construction": "--ef-construction", "ef_search": "--ef-search"}


def hnsw_options(m: int | None, ef_construction: int | None, ef_search: int | None) -> HnswParams:
    """The HNSW settings of the options, validated against HnswParams' bounds (--m -1 was a Chroma traceback)."""
    from pydantic import ValidationError

    from malles_graph.retrieval import HnswParams

    given = {"max_neighbors": m, "ef_construction": ef_construction, "ef_search": ef_search}
    try:
        return HnswParams.model_validate({key: value for key, value in given.items() if value is not None})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise typer.BadParameter(f"{err['msg']} (got {err['input']})", param_hint=HNSW_OPTIONS[err["loc"][0]]) from None


@app.command()
def build(
    limit: Annotated[int | None, typer.Option(help="ingest only the first N episodes (chronological)", min=1)] = None,
    subclass: Annotated[
        list[str] | None, typer.Option(help="only this product subclass's episodes (repeatable), as a run needs")
    ] = None,
    before: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="only episodes strictly before this day")
    ] = None,
    path: PathOpt = None,
    url: UrlOpt = None,
    collection: CollectionOpt = "tafeng_transactions",
    batch_size: Annotated[int, typer.Option("--batch-size", help="episodes per Chroma write", min=1, max=5000)] = 2000,
    m: Annotated[int | None, typer.Option("--m", help="HNSW M (max neighbors); new collections only")] = None,
    ef_construction: Annotated[int | None, typer.Option(help="HNSW ef_construction; new collections only")] = None,
    ef_search: Annotated[int | None, typer.Option(help="HNSW ef_search")] = None,
) -> None:
    """Ingest the Ta Feng data as one document per (customer, day, subclass) episode.

    Resumable: run it again after an interruption and it adds only what is missing.

    Examples:
      malles memory build                          # all 699,799 episodes into ./runs/memory
      malles memory build --limit 5000 --path /tmp/mem
      malles memory build --subclass 100205 --before 2001-02-01   # what scenarios/demo.yaml needs
      malles memory build --url http://localhost:8000 --batch-size 1000
    """
    from malles_graph.data import tafeng
    from malles_graph.retrieval import build_episodes, ingest, make_client, open_collection
    from malles_graph.retrieval.embedding import MiniLMEmbeddingFunction
    from malles_graph.retrieval.side_index import index_dir, read_manifest, rebuild_from_collection

    hnsw = hnsw_options(m, ef_construction, ef_search)
    with stages(console, "loading Ta Feng and grouping episodes"):
        if subclass or before:
            from malles_graph.retrieval.scope import subclass_episodes

            rows = tafeng.load()
            picked = subclass or rows["subclass"].unique().to_list()
            episodes = subclass_episodes(picked, before.date() if before else None, rows)
            if limit is not None:
                episodes = episodes.head(limit)
        else:
            episodes = build_episodes(tafeng.load(), limit=limit)
    client, where = make_client(path, url, create=True)
    ef = MiniLMEmbeddingFunction()
    col = open_collection(client, collection, where, create=True, hnsw=hnsw, embedding_function=ef)
    if ef_search is not None:
        col.modify(configuration={"hnsw": {"ef_search": ef_search}})
    console.print(f"memory: collection [bold]{collection}[/] at {where} ({col.count():,} documents already)")
    with counted(console, "episodes", episodes.height) as advance:
        # The side index (fast exact search) sits next to an on-disk memory; a server has no folder.
        folder = None if url else index_dir(where, collection)
        report = ingest(col, episodes, ef.embed, batch_size=batch_size, progress=advance, index_folder=folder)
    stale = folder is not None and (
        not (folder / "manifest.json").exists() or read_manifest(folder).get("episodes") != col.count()
    )
    if stale:
        console.print("side index does not cover the whole collection (built before it existed): rebuilding")
        rebuild_from_collection(col, folder)
    table = Table(title=f"memory build: {collection} at {where}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in (
        ("episodes considered", f"{report.episodes:,}"),
        ("added", f"{report.added:,}"),
        ("already present (skipped)", f"{report.skipped:,}"),
        ("distinct texts embedded", f"{report.texts_embedded:,}"),
        ("embedding time", f"{report.embed_seconds:.1f} s"),
        ("wall time", f"{report.seconds:.1f} s"),
        ("documents/s", f"{report.docs_per_second:,.0f}"),
        ("documents in collection", f"{report.total_in_collection:,}"),
    ):
        table.add_row(key, value)
    print_table(console, table)


@app.command()
def query(
    text: Annotated[str, typer.Argument(help="free text, e.g. 'age 30-34, area 115: bought 2 units, 10% below regular price'")],
    before: Annotated[str, typer.Option(help="decision date YYYY-MM-DD: only episodes strictly before it")] = "2001-03-01",
    customer: Annotated[str | None, typer.Option(help="only this customer id")] = None,
    subclass: Annotated[str | None, typer.Option(help="only this product subclass")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="number of records", min=1, max=1000)] = 10,
    path: PathOpt = None,
    url: UrlOpt = None,
    collection: CollectionOpt = "tafeng_transactions",
) -> None:
    """Search the memory and print the records as a table.

    Examples:
      malles memory query "age 30-34, area 115: bought 2 units, 10% below regular price"
      malles memory query "bought 1 unit, at regular price" --subclass 100205 --before 2001-01-15
      malles memory query "bought 3 units" --customer 01104905 --path /tmp/mem -k 5
    """
    from malles_graph.retail.retrieval_api import RetrievalQuery
    from malles_graph.retrieval import ChromaRetriever

    try:
        day = dt.date.fromisoformat(before)
    except ValueError:
        raise typer.BadParameter(f"--before {before!r} is not a date YYYY-MM-DD") from None
    retriever = ChromaRetriever.open(path=path, url=url, collection=collection)
    start = time.perf_counter()
    records = retriever.search(RetrievalQuery(text=text, customer_id=customer, subclass=subclass, before=day, k=k))
    elapsed = (time.perf_counter() - start) * 1000
    table = Table(title=f"{len(records)} records before {day} ({elapsed:.0f} ms)")
    for name, justify in (("sim", "right"), ("date", "left"), ("customer", "left"), ("age", "left"),
                          ("area", "left"), ("subclass", "left"), ("products", "left"), ("qty", "right"),
                          ("unit price", "right"), ("vs regular", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in records:
        products = ", ".join(r.product_ids[:3]) + (f" +{len(r.product_ids) - 3}" if len(r.product_ids) > 3 else "")
        table.add_row(
            f"{r.similarity:.3f}", str(r.date), r.customer_id, r.age_group, r.pin_code, r.subclass, products,
            str(r.quantity), f"{r.unit_price:.1f}", f"{r.price_ratio:.2f}",
        )
    print_table(console, table)


@app.command()
def reindex(
    path: PathOpt = None,
    collection: CollectionOpt = "tafeng_transactions",
    out: Annotated[str | None, typer.Option("--out", help="side index folder (default: <path>/malles-index/<collection>)")] = None,
    url: UrlOpt = None,
) -> None:
    """Rebuild the side index (fast exact search) from an existing memory, without re-embedding.

    Reads every episode's metadata from Chroma and one stored vector per distinct text. Use it
    for a memory built before the side index existed, or after copying a memory. For a Chroma
    server give --url and --out (a local folder), then open it with index_path.

    Examples:
      malles memory reindex --path runs/bench-memory
      malles memory reindex --url http://localhost:8000 --out runs/server-index
    """
    from malles_graph.paths import output_folder
    from malles_graph.retail.retrieval_api import RetrievalError
    from malles_graph.retrieval import make_client, open_collection
    from malles_graph.retrieval.side_index import index_dir, rebuild_from_collection

    if url and not out:
        raise RetrievalError("a Chroma server has no local folder: give --out for the side index")
    given = output_folder(out) if out else None  # before opening the memory and reading every episode
    client, where = make_client(path, url, create=False)
    col = open_collection(client, collection, where, create=False)
    folder = given or index_dir(where, collection)
    start = time.perf_counter()
    with counted(console, "episodes read", col.count()) as advance:
        n = rebuild_from_collection(col, folder, progress=advance)
    console.print(f"side index: {n:,} episodes at {folder} ({time.perf_counter() - start:.1f} s)")


@app.command()
def info(path: PathOpt = None, url: UrlOpt = None, collection: CollectionOpt = "tafeng_transactions") -> None:
    """Show the size and HNSW settings of a memory.

    Example:
      malles memory info --path runs/memory
    """
    from malles_graph.retrieval import ChromaRetriever

    retriever = ChromaRetriever.open(path=path, url=url, collection=collection)
    config = retriever.collection.configuration_json or {}
    table = Table(title=retriever.where)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("documents", f"{retriever.count():,}")
    table.add_row("embedding function", str((config.get("embedding_function") or {}).get("name")))
    for key, value in (config.get("hnsw") or {}).items():
        table.add_row(f"hnsw {key}", str(value))
    side = retriever.side_index
    table.add_row("side index", f"{side.folder} ({side.size:,} episodes, {len(side.vectors):,} texts)" if side
                  else "none or stale: searches use Chroma (malles memory reindex)")
    print_table(console, table)
