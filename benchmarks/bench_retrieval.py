"""Benchmark the Chroma transaction memory at full size (all Ta Feng episodes).

Figures: full ingest wall time and documents/s; query p50/p95 latency; recall@10 of the
HNSW index against exact brute-force search (numpy over the stored embeddings) on 500
queries; on-disk size. Results are printed and written as JSON next to the memory.

    MALLES_HOME=/work/malles-home .venv/bin/python benchmarks/bench_retrieval.py --path runs/bench-memory
    # again on the same folder: the ingest resumes (adds nothing) and the query figures are re-measured
    .venv/bin/python benchmarks/bench_retrieval.py --path runs/bench-memory --skip-ingest
    # the side index serves queries when present (malles memory reindex); --chroma also measures the Chroma path
    .venv/bin/python benchmarks/bench_retrieval.py --path runs/bench-memory --skip-ingest --chroma --ef-search 100 400
    # Chroma's add with the episode metadata packed (0.5.4) and one key per field (before), side by side
    .venv/bin/python benchmarks/bench_retrieval.py --path runs/bench-layouts --compare-layouts 40000

Recall is tie-aware: texts leave ids out, so many episodes share one vector and "the" top
10 is not unique; a returned id counts as a hit when its exact similarity reaches the 10th
best exact similarity (minus 1e-5). Strict id-overlap recall is printed too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import time
from pathlib import Path

import numpy as np
from malles_graph.retrieval import ChromaRetriever, HnswParams, build_episodes, ingest, make_client, open_collection
from malles_graph.retrieval.embedding import MiniLMEmbeddingFunction
from malles_graph.retrieval.side_index import index_dir
from malles_graph.retrieval.store import iter_embeddings
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from malles_graph.data import tafeng
from malles_graph.retail.retrieval_api import RetrievalQuery, date_key, key_date, query_text

console = Console()
K = 10
TIE_EPS = 1e-5


def disk_size(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True).stdout.split()[0])


def run_ingest(path: Path, collection: str, batch_size: int, limit: int | None) -> dict:
    t0 = time.perf_counter()
    episodes = build_episodes(tafeng.load())
    if limit:
        episodes = episodes.head(limit)
    group_seconds = time.perf_counter() - t0
    client, where = make_client(path, create=True)
    ef = MiniLMEmbeddingFunction()
    col = open_collection(client, collection, where, create=True, hnsw=HnswParams(), embedding_function=ef)
    columns = (TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("ingest", total=episodes.height)
        report = ingest(col, episodes, ef.embed, batch_size=batch_size, progress=lambda n: bar.advance(task, n),
                        index_folder=index_dir(where, collection))
    return {
        "episodes": report.episodes,
        "added": report.added,
        "skipped": report.skipped,
        "distinct_texts_embedded": report.texts_embedded,
        "group_seconds": round(group_seconds, 1),
        "embed_seconds": round(report.embed_seconds, 1),
        "ingest_seconds": round(report.seconds, 1),
        "total_wall_seconds": round(time.perf_counter() - t0, 1),
        "documents_per_second": round(report.docs_per_second, 1),
        "in_collection": report.total_in_collection,
    }


def compare_layouts(path: Path, n: int, batch_size: int, rounds: int = 3) -> None:
    """Chroma's ``add`` of the same n episodes and vectors with each metadata layout, alternated ``rounds``
    times, with the HNSW graph of ``malles memory build`` and the agent's sparse one (this machine is
    shared: the ratio within a round is the figure to read)."""
    import shutil

    from malles_graph.retrieval.episodes import metadata, unpack

    rows = build_episodes(tafeng.load()).head(n)
    texts = rows["text"].unique(maintain_order=True).to_list()
    t0 = time.perf_counter()
    by_text = dict(zip(texts, MiniLMEmbeddingFunction().embed(texts), strict=True))
    console.print(f"{n:,} episodes, {len(texts):,} distinct texts embedded once in {time.perf_counter() - t0:.1f} s")
    vectors = np.stack([by_text[t] for t in rows["text"].to_list()])
    packed = [metadata(r) for r in rows.to_dicts()]
    layouts = {"packed": packed, "per field": [unpack(m) for m in packed]}
    graphs = {"default": HnswParams(), "agent's": HnswParams(max_neighbors=8, ef_construction=20)}
    table = Table(title=f"Chroma add of {n:,} episodes (batches of {batch_size}), seconds",
                  caption="packed: 0.5.4's metadata; per field: one key per field, as before; ratio: packed / per field")
    for column in ("HNSW graph", "round", *layouts, "ratio"):
        table.add_column(column, justify="right")
    shutil.rmtree(path, ignore_errors=True)
    for g, (graph, hnsw) in enumerate(graphs.items()):
        for r in range(rounds):
            seconds = []
            for label, metas in layouts.items():
                folder = path / f"{g}-{r}-{label.replace(' ', '-')}"  # a fresh folder each: Chroma caches a client per path
                client, where = make_client(folder, create=True)
                col = open_collection(client, "layout_bench", where, create=True, hnsw=hnsw)
                t0 = time.perf_counter()
                for start in range(0, n, batch_size):
                    end = start + batch_size
                    col.add(ids=rows["id"][start:end].to_list(), embeddings=vectors[start:end], metadatas=metas[start:end])
                seconds.append(time.perf_counter() - t0)
            table.add_row(graph, str(r + 1), *(f"{x:.1f}" for x in seconds), f"{seconds[0] / seconds[1]:.2f}")
    shutil.rmtree(path, ignore_errors=True)
    console.print(table)


def make_queries(metas: list[dict], n: int, seed: int) -> list[RetrievalQuery]:
    """Realistic queries: a random episode's customer situation, some with filters."""
    rng = np.random.default_rng(seed)
    first, last = key_date(min(m["date"] for m in metas[:1000])), dt.date(2001, 2, 28)
    span = (last - first).days
    queries = []
    for j in range(n):
        m = metas[int(rng.integers(len(metas)))]
        text = query_text(m["age_group"], m["pin_code"], int(rng.integers(1, 6)), float(rng.uniform(0.6, 1.1)))
        before = first + dt.timedelta(days=int(rng.integers(7, span + 1)))
        kind = j % 3  # 0: date only, 1: subclass + date, 2: customer + date
        queries.append(
            RetrievalQuery(
                text=text,
                before=before,
                subclass=m["subclass"] if kind == 1 else None,
                customer_id=m["customer_id"] if kind == 2 else None,
                k=K,
            )
        )
    return queries


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, default=Path("runs/bench-memory"))
    parser.add_argument("--collection", default="tafeng_transactions")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=None, help="episodes (default: all)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--ef-search", type=int, nargs="*", default=[], help="ef_search values (Chroma path)")
    parser.add_argument("--chroma", action="store_true",
                        help="also measure the Chroma path (no side index; filtered queries take seconds each)")
    parser.add_argument("--compare-layouts", type=int, metavar="N", default=None,
                        help="only time Chroma's add of N episodes with each metadata layout, side by side")
    args = parser.parse_args()
    if args.compare_layouts:
        compare_layouts(args.path, args.compare_layouts, args.batch_size)
        return
    out = args.path / "bench_retrieval.json"
    results: dict = json.loads(out.read_text()) if out.exists() else {}
    if not args.skip_ingest:
        results["ingest"] = run_ingest(args.path, args.collection, args.batch_size, args.limit)
        out.write_text(json.dumps(results, indent=2))
        console.print(results["ingest"])
    results["disk_bytes"] = disk_size(args.path)

    t0 = time.perf_counter()
    indexed = ChromaRetriever.open(path=args.path, collection=args.collection)
    results["open_with_side_index_seconds"] = round(time.perf_counter() - t0, 2)
    if indexed.side_index is None:
        console.print("[yellow]no up-to-date side index: run `malles memory reindex --path ...` first[/]")
    retriever = ChromaRetriever.open(path=args.path, collection=args.collection, use_index=False)
    t0 = time.perf_counter()
    ids, chunks, metas = [], [], []
    for i, e, m in iter_embeddings(retriever.collection):
        ids += i
        chunks.append(e)
        metas += m
    matrix = np.vstack(chunks)
    results["load_embeddings_seconds"] = round(time.perf_counter() - t0, 1)
    dates = np.array([m["date"] for m in metas])
    subclasses = np.array([m["subclass"] for m in metas], dtype=object)
    customers = np.array([m["customer_id"] for m in metas], dtype=object)
    row_of = {i: n for n, i in enumerate(ids)}
    console.print(f"{len(ids):,} stored embeddings loaded in {results['load_embeddings_seconds']} s")

    queries = make_queries(metas, args.queries, seed=0)
    embed_lat = []
    for q in queries:  # cold query embedding, measured apart; search() caches it (LRU)
        t = time.perf_counter()
        retriever._embed_one(q.text)
        embed_lat.append(time.perf_counter() - t)
    results["query_embedding_ms"] = {"p50": pct(embed_lat, 50), "p95": pct(embed_lat, 95)}

    default_ef = HnswParams().ef_search
    runs: list[tuple[str, ChromaRetriever, int | None]] = []
    if indexed.side_index is not None:
        indexed._embed_one = retriever._embed_one  # same warm query-embedding cache for both paths
        runs.append(("side index", indexed, None))
    if args.chroma or indexed.side_index is None:
        runs += [(f"chroma ef_search={e}", retriever, e) for e in dict.fromkeys([default_ef, *args.ef_search])]
    for label, searcher, ef_search in runs:
        if ef_search is not None:
            retriever.collection.modify(configuration={"hnsw": {"ef_search": ef_search}})
        lat: dict[str, list[float]] = {"date only": [], "subclass+date": [], "customer+date": []}
        kinds = list(lat)
        tie_hits = dict.fromkeys(kinds, 0)
        strict_hits = dict.fromkeys(kinds, 0)
        total = dict.fromkeys(kinds, 0)
        for j, q in enumerate(queries):
            t = time.perf_counter()
            got = searcher.search(q)
            kind = kinds[j % 3]
            lat[kind].append(time.perf_counter() - t)
            # exact search over the same filter
            mask = dates < date_key(q.before)
            if q.subclass is not None:
                mask &= subclasses == q.subclass
            if q.customer_id is not None:
                mask &= customers == q.customer_id
            idx = np.flatnonzero(mask)
            if idx.size == 0:
                continue
            qv = np.asarray(retriever._embed_one(q.text), dtype=np.float32)
            sims = matrix[idx] @ qv
            kk = min(K, idx.size)
            top = np.argpartition(-sims, kk - 1)[:kk]
            threshold = np.sort(sims[top])[0] - TIE_EPS
            exact_ids = {ids[idx[t]] for t in top}
            for r in got:
                assert r.date < q.before, f"leak: {r.id} on {r.date} for a query before {q.before}"
                tie_hits[kind] += float(matrix[row_of[r.id]] @ qv) >= threshold
                strict_hits[kind] += r.id in exact_ids
            total[kind] += kk
        all_lat = [x for v in lat.values() for x in v]
        results[label] = {
            "recall@10 (tie-aware)": round(float(sum(tie_hits.values())) / sum(total.values()), 4),
            "recall@10 (strict ids)": round(float(sum(strict_hits.values())) / sum(total.values()), 4),
            "recall@10 by kind (tie-aware)": {c: round(float(tie_hits[c]) / max(total[c], 1), 4) for c in kinds},
            "latency_ms": {
                name: {"p50": round(pct(v, 50), 2), "p95": round(pct(v, 95), 2)} for name, v in lat.items()
            }
            | {"all": {"p50": round(pct(all_lat, 50), 2), "p95": round(pct(all_lat, 95), 2)}},
        }
        console.print(label, results[label])
    retriever.collection.modify(configuration={"hnsw": {"ef_search": default_ef}})
    out.write_text(json.dumps(results, indent=2))

    table = Table(title=f"bench_retrieval: {len(ids):,} documents at {args.path}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in results.get("ingest", {}).items():
        table.add_row(f"ingest {key}", str(value))
    table.add_row("on-disk size", f"{results['disk_bytes'] / 2**20:,.0f} MiB")
    table.add_row("open with side index", f"{results['open_with_side_index_seconds']} s")
    table.add_row("query embedding p50/p95", "{p50:.1f} / {p95:.1f} ms".format(**results["query_embedding_ms"]))
    for key, value in results.items():
        if isinstance(value, dict) and "latency_ms" in value:
            table.add_row(f"{key} recall@10 tie-aware / strict",
                          f"{value['recall@10 (tie-aware)']:.3f} / {value['recall@10 (strict ids)']:.3f}")
            for name, lat_ in value["latency_ms"].items():
                table.add_row(f"{key} search p50/p95 {name}", f"{lat_['p50']:.1f} / {lat_['p95']:.1f} ms")
    console.print(table)
    console.print(f"results written to {out}")


if __name__ == "__main__":
    main()
