"""The memory a run needs: the episodes of the run's subclasses, built on demand, coverage checked.

The decision graph's ``retrieve`` node filters every query to the situation's subclass (and to
days before the decision), so a run over a few subclasses needs only their episodes, not the
whole data set's 699,799. :func:`memory_for` ingests what is missing (resumable, the same ids as
``malles memory build``) and then checks that every episode of those subclasses is in the
collection; a memory that does not cover them is an error naming the memory and the subclass,
raised before any decision is made.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
from malles_graph.retrieval.client import default_path, make_client
from malles_graph.retrieval.episodes import build_episodes
from malles_graph.retrieval.ingest import IngestReport, ingest
from malles_graph.retrieval.side_index import index_dir, read_manifest, rebuild_from_collection
from malles_graph.retrieval.store import ChromaRetriever, default_embedding_function, open_collection

from malles_graph.retail.retrieval_api import RetrievalError, date_key

ID_PAGE = 5000  # ids per Chroma get when checking coverage


def subclass_episodes(
    subclasses: Sequence[str], before: dt.date | None = None, rows: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The episodes of ``subclasses``, strictly before ``before`` when given (no query reaches later).

    A product belongs to one subclass, so regular prices computed on these rows equal the
    ones of a full build, and so do the episode ids and texts.
    """
    if rows is None:
        from malles_graph.data import tafeng

        rows = tafeng.load()
    picked = rows.filter(pl.col("subclass").is_in(sorted(set(subclasses))))
    episodes = build_episodes(picked)
    return episodes if before is None else episodes.filter(pl.col("date") < date_key(before))


def missing_by_subclass(collection: Any, episodes: pl.DataFrame) -> dict[str, int]:
    """Subclass -> number of its episodes absent from ``collection`` (only subclasses with gaps)."""
    ids = episodes["id"].to_list()
    present: set[str] = set()
    for start in range(0, len(ids), ID_PAGE):
        present.update(collection.get(ids=ids[start : start + ID_PAGE], include=[])["ids"])
    absent = episodes.filter(~pl.col("id").is_in(list(present)))
    counts = absent.group_by("subclass").agg(pl.len().alias("n")).sort("subclass")
    return dict(zip(counts["subclass"].to_list(), counts["n"].to_list(), strict=True))


def memory_for(
    memory: Any,
    subclasses: Sequence[str],
    *,
    before: dt.date | None = None,
    build: bool = True,
    run_dir: Path | None = None,
    rows: pl.DataFrame | None = None,
    progress: Callable[[int], None] | None = None,
    customers: Sequence[str] | None = None,
) -> tuple[ChromaRetriever, IngestReport | None]:
    """The Chroma retriever of a scenario's ``memory:`` section, covering ``subclasses`` (before ``before``).

    ``build`` ingests the missing episodes first (a report is returned when anything was
    considered); without it, a gap is an error. Raises RetrievalError naming the memory, the
    collection and the first uncovered subclass. ``customers`` limits the memory to those customers'
    episodes (a demo's sampled population: neighbours then come from that population only); a later
    call without it adds the rest.
    """
    if not subclasses:
        raise RetrievalError("memory_for needs at least one subclass")
    path = None if memory.url else Path(memory.path) if memory.path else default_path(run_dir)
    client, where = make_client(path, memory.url, create=build)
    ef = default_embedding_function()
    collection = open_collection(client, memory.collection, where, create=build, embedding_function=ef)
    episodes = subclass_episodes(subclasses, before, rows)
    if customers is not None:
        episodes = episodes.filter(pl.col("customer_id").is_in(sorted(set(customers))))
    missing = missing_by_subclass(collection, episodes)
    report = None
    if missing and build:
        folder = None if memory.url else index_dir(where, memory.collection)
        say = progress or stderr_progress(episodes.height, f"building the transaction memory at {where}", missing)
        report = ingest(collection, episodes, ef.embed, progress=say, index_folder=folder)
        if folder is not None and _stale(folder, collection.count()):
            rebuild_from_collection(collection, folder)
        missing = missing_by_subclass(collection, episodes)
    if missing:
        subclass, n = next(iter(missing.items()))
        total = episodes.filter(pl.col("subclass") == subclass).height
        raise RetrievalError(
            f"memory collection {memory.collection!r} at {where} does not cover the run's customers: "
            f"subclass {subclass} lacks {n} of its {total} episodes"
            + (f" (and {len(missing) - 1} more subclass(es))" if len(missing) > 1 else "")
            + "; run `malles memory build` on it, or point memory.path / memory.url at a memory that has them"
        )
    retriever = ChromaRetriever.open(path=path, url=memory.url, collection=memory.collection, embedding_function=ef)
    return retriever, report


def stderr_progress(total: int, what: str, missing: dict[str, int]) -> Callable[[int], None]:
    """A one-line progress report on stderr for a build nobody else reports (a first run's memory takes a
    minute: silence would look like a hang). Rewritten in place on a terminal, one line per quarter otherwise."""
    gaps = sum(missing.values())
    subclasses = ", ".join(sorted(missing))
    print(f"{what}: {gaps} new episodes of subclass(es) {subclasses} (first run only)", file=sys.stderr, flush=True)
    tty = sys.stderr.isatty()
    done = 0
    started = time.perf_counter()

    def report(n: int) -> None:
        nonlocal done
        before, done = done, done + n
        if tty or done == total or (4 * before) // total != (4 * done) // total:
            end = "\n" if done >= total or not tty else ""
            print(f"\r  {done}/{total} episodes checked or added ({time.perf_counter() - started:.0f} s)",
                  end=end, file=sys.stderr, flush=True)

    return report


def _stale(folder: Path, count: int) -> bool:
    # a side index written before this build covered only part of the collection: rebuild it whole
    return not (folder / "manifest.json").exists() or read_manifest(folder).get("episodes") != count
