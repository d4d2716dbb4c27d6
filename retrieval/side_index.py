"""A compact side index next to the Chroma memory: exact, fast filtered and unfiltered search.

Chroma stays the store of record. This index is derived from it and can always be rebuilt
(:func:`rebuild_from_collection`, ``malles memory reindex``). Why it exists (docs/retrieval.md,
"Measured"): Chroma's metadata filters cost 0.5-1.4 s per query on 700k documents, and HNSW
recall is poor because the 700k vectors are only ~18k distinct points. The episodes are few
columns and the distinct vectors a small matrix, so numpy answers both exactly in milliseconds.

Layout, in ``<persist folder>/malles-index/<collection>/``:

* ``episodes.parquet``: one row per episode in ingest order: id, customer_id, subclass, date
  (int yyyymmdd), text_no, and the fields a RetrievedRecord needs (age_group, pin_code,
  product_ids, quantity, unit_price, price_ratio);
* ``texts.parquet`` (text_no, text) and ``vectors.npy`` (float32, one row per text_no);
* ``manifest.json``: collection name, episode count, dimension.

During an ingest, each batch appends ``parts/episodes-<n>.parquet`` and ``parts/texts-<n>.parquet``
(new texts with their vectors), written after Chroma's write and renamed into place, so an
interruption leaves whole parts only; :func:`compact` turns the parts into the files above
(duplicates from a resumed run are dropped by id).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from malles_graph.retrieval.episodes import RECORD_KEYS, unpack

from malles_graph.paths import output_folder, written_whole
from malles_graph.retail.retrieval_api import RetrievalError, episode_text

INDEX_FOLDER = "malles-index"
RECORD_COLUMNS = list(RECORD_KEYS)  # what a RetrievedRecord needs beyond the filter keys
EPISODE_COLUMNS = ["id", "customer_id", "subclass", "date", *RECORD_COLUMNS]


def index_dir(persist_path: str | Path, collection: str) -> Path:
    """Where the side index of ``collection`` in the Chroma folder ``persist_path`` lives."""
    return Path(persist_path) / INDEX_FOLDER / collection


def _write_atomic(frame: pl.DataFrame, target: Path) -> None:
    with written_whole(target) as tmp:  # a reader never sees half a file
        frame.write_parquet(tmp)


def _episode_frame(batch: pl.DataFrame) -> pl.DataFrame:
    return batch.select(
        pl.col("id"), pl.col("customer_id"), pl.col("subclass"), pl.col("date").cast(pl.Int64),
        pl.col("age_group"), pl.col("pin_code"), pl.col("product_ids"), pl.col("quantity").cast(pl.Int64),
        pl.col("unit_price").cast(pl.Float64), pl.col("price_ratio").cast(pl.Float64), pl.col("text"),
    )


class IndexWriter:
    """Appends the side index batch by batch during an ingest (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.parts = folder / "parts"
        self.parts.mkdir(parents=True, exist_ok=True)
        self.known: set[str] = set()
        for part in sorted(self.parts.glob("texts-*.parquet")):
            self.known.update(pl.read_parquet(part, columns=["text"])["text"].to_list())
        if (folder / "texts.parquet").exists():
            self.known.update(pl.read_parquet(folder / "texts.parquet")["text"].to_list())
        # Episodes already indexed (a resumed ingest revisits whole batches): appended once only.
        self.known_ids: set[str] = set()
        for part in [*self.parts.glob("episodes-*.parquet"), folder / "episodes.parquet"]:
            if part.exists():
                self.known_ids.update(pl.read_parquet(part, columns=["id"])["id"].to_list())
        self._n = max((int(p.stem.split("-")[1]) for p in self.parts.glob("*-*.parquet")), default=0)

    def append(self, batch: pl.DataFrame, vectors: Callable[[list[str]], np.ndarray]) -> None:
        """Record ``batch`` (episode rows with ``text``); ``vectors(texts)`` for texts new to the index."""
        batch = batch.filter(~pl.col("id").is_in(list(self.known_ids)))
        if not batch.height:
            return
        new = [t for t in dict.fromkeys(batch["text"].to_list()) if t not in self.known]
        self._n += 1
        if new:
            vecs = np.asarray(vectors(new), dtype=np.float32)
            texts = pl.DataFrame({"text": new, "vector": vecs.tolist()})
            _write_atomic(texts, self.parts / f"texts-{self._n:06d}.parquet")
            self.known.update(new)
        _write_atomic(_episode_frame(batch), self.parts / f"episodes-{self._n:06d}.parquet")
        self.known_ids.update(batch["id"].to_list())


def compact(folder: Path, collection: str) -> int:
    """Merge ``parts/`` into episodes.parquet, texts.parquet, vectors.npy; returns the episode count."""
    parts = folder / "parts"
    episode_parts = sorted(parts.glob("episodes-*.parquet")) if parts.exists() else []
    if not episode_parts:
        return read_manifest(folder).get("episodes", 0) if (folder / "manifest.json").exists() else 0
    texts: list[pl.DataFrame] = []
    vectors: list[np.ndarray] = []
    if (folder / "texts.parquet").exists():
        texts.append(pl.read_parquet(folder / "texts.parquet").select("text"))
        vectors.append(np.load(folder / "vectors.npy"))
    text_parts = sorted(parts.glob("texts-*.parquet"))
    for part in text_parts:
        frame = pl.read_parquet(part)
        texts.append(frame.select("text"))
        vectors.append(np.asarray(frame["vector"].to_list(), dtype=np.float32))
    all_texts = pl.concat(texts)
    matrix = np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32)
    keep = ~all_texts["text"].is_duplicated() | all_texts["text"].is_first_distinct()
    all_texts, matrix = all_texts.filter(keep), matrix[keep.to_numpy()]
    frames = []
    if (folder / "episodes.parquet").exists():
        old = pl.read_parquet(folder / "episodes.parquet")
        old_texts = pl.read_parquet(folder / "texts.parquet")
        frames.append(old.join(old_texts, on="text_no", how="left").drop("text_no"))
    frames += [pl.read_parquet(p) for p in episode_parts]
    episodes = pl.concat(frames, how="diagonal_relaxed").unique("id", keep="first", maintain_order=True)
    write_index(folder, collection, episodes, all_texts["text"].to_list(), matrix)
    for part in [*text_parts, *episode_parts]:  # only what was merged: a writer may be adding parts now
        part.unlink(missing_ok=True)
    return episodes.height


def write_index(folder: Path, collection: str, episodes: pl.DataFrame, texts: list[str], vectors: np.ndarray) -> None:
    """Write the compact files; ``episodes`` carries a ``text`` column that becomes ``text_no``."""
    output_folder(folder)
    numbers = pl.DataFrame({"text": texts, "text_no": np.arange(len(texts), dtype=np.int32)})
    # Stable ingest order = (date, customer, subclass): ties in search are broken by it.
    joined = episodes.join(numbers, on="text", how="left", maintain_order="left")
    missing = joined.filter(pl.col("text_no").is_null())
    if missing.height:
        raise RetrievalError(f"side index {folder}: {missing.height} episodes have no vector (e.g. {missing['id'][0]})")
    _write_atomic(joined.select(*EPISODE_COLUMNS, "text_no").sort(["date", "customer_id", "subclass"]),
                  folder / "episodes.parquet")
    _write_atomic(numbers.select("text_no", "text"), folder / "texts.parquet")
    with written_whole(folder / "vectors.npy") as tmp:
        np.save(tmp, np.asarray(vectors, dtype=np.float32))
    manifest = {"collection": collection, "episodes": episodes.height, "texts": len(texts),
                "dim": int(vectors.shape[1]) if vectors.ndim == 2 and vectors.size else 0}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise RetrievalError(f"side index {folder} has no readable manifest.json ({exc}); run malles memory reindex") from exc


def rebuild_from_collection(
    collection: Any, folder: Path, page: int = 10000, progress: Callable[[int], None] | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> int:
    """Rebuild the side index from a Chroma collection's metadata; returns the episode count.

    Texts are rebuilt from the metadata (as ``to_record`` does); each distinct text's vector
    is read back from Chroma (one representative episode per text), so nothing is re-embedded
    unless ``embed`` is given (then the distinct texts are embedded instead).
    """
    frames = []
    for ids, metas in _iter_metadata(collection, page):
        frames.append(pl.DataFrame({"id": ids, **{k: [m[k] for m in metas] for k in EPISODE_COLUMNS[1:]}}))
        if progress:
            progress(len(ids))
    if not frames:
        raise RetrievalError(f"collection {collection.name!r} is empty: nothing to index")
    episodes = pl.concat(frames).with_columns(
        pl.col("date").cast(pl.Int64), pl.col("quantity").cast(pl.Int64),
        pl.col("unit_price").cast(pl.Float64), pl.col("price_ratio").cast(pl.Float64),
    )
    episodes = episodes.with_columns(
        text=pl.struct("age_group", "pin_code", "quantity", "product_ids", "price_ratio").map_elements(
            lambda r: episode_text(r["age_group"], r["pin_code"], r["quantity"],
                                   len([p for p in r["product_ids"].split(",") if p]), r["price_ratio"]),
            return_dtype=pl.Utf8,
        )
    ).sort(["date", "customer_id", "subclass"])
    reps = episodes.unique("text", keep="first", maintain_order=True).select("text", "id")
    texts = reps["text"].to_list()
    if embed is not None:
        vectors = np.asarray(embed(texts), dtype=np.float32)
    else:
        by_id: dict[str, np.ndarray] = {}
        rep_ids = reps["id"].to_list()
        for start in range(0, len(rep_ids), 5000):
            got = collection.get(ids=rep_ids[start : start + 5000], include=["embeddings"])
            by_id.update(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32), strict=True))
        vectors = np.stack([by_id[i] for i in rep_ids])
    write_index(folder, collection.name, episodes, texts, vectors)
    parts = folder / "parts"
    if parts.exists():
        for part in parts.glob("*.parquet"):
            part.unlink()
    return episodes.height


def _iter_metadata(collection: Any, page: int) -> Iterable[tuple[list[str], list[dict]]]:
    offset = 0
    while True:
        got = collection.get(limit=page, offset=offset, include=["metadatas"])
        if not got["ids"]:
            return
        yield got["ids"], [unpack(m) for m in got["metadatas"]]  # every field, whichever layout stored it
        offset += len(got["ids"])


def _distinct(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` for ints in [0, n). Many values (a subclass of a
    one-category panel is every row) are marked in an array of n instead of sorted: the sort was
    most of a query's time."""
    if values.size * 16 < n:
        return np.unique(values, return_inverse=True)
    marked = np.zeros(n, dtype=bool)
    marked[values] = True
    return np.flatnonzero(marked), (np.cumsum(marked) - 1)[values]


class SideIndex:
    """The loaded side index: exact search with customer / subclass / date filters.

    Rows are in ingest order (date, customer, subclass). For speed, each customer, subclass
    and text maps to a contiguous slice of a row permutation sorted by (key, row), so a
    filter is a dict lookup plus a binary search on the date, never a scan of 700k rows.
    """

    def __init__(self, folder: Path) -> None:
        manifest = read_manifest(folder)
        self.folder = folder
        self.manifest = manifest
        frame = pl.read_parquet(folder / "episodes.parquet")
        self.vectors = np.load(folder / "vectors.npy")
        self.size = frame.height
        self.ids = frame["id"].to_numpy()
        self.dates = frame["date"].to_numpy().astype(np.int64)
        self.text_no = frame["text_no"].to_numpy().astype(np.int64)
        self.columns = {c: frame[c].to_numpy() for c in ("customer_id", "subclass", *RECORD_COLUMNS)}
        self.by_customer = self._groups(frame["customer_id"])
        self.by_subclass = self._groups(frame["subclass"])
        self._text_order, self._text_offsets = self._text_groups()

    def _groups(self, column: pl.Series) -> dict[str, np.ndarray]:
        """key -> its row numbers, ascending (so dates ascend too: rows are in date order)."""
        codes = column.cast(pl.Categorical).to_physical().to_numpy()
        order = np.argsort(codes, kind="stable")
        keys = column.to_numpy()[order]
        bounds = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True])
        return {keys[a]: order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)}

    def _text_groups(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.text_no, kind="stable")
        offsets = np.searchsorted(self.text_no[order], np.arange(len(self.vectors) + 1))
        return order, offsets

    def knows_customer(self, customer_id: str) -> bool:
        return customer_id in self.by_customer

    def filtered(self, vector: np.ndarray, cutoff: int, k: int, customer_id: str | None,
                 subclass: str | None) -> list[tuple[int, float]]:
        """(row, similarity) of the best k rows of that customer and/or subclass before ``cutoff``."""
        groups = []
        if customer_id is not None:
            groups.append(self.by_customer.get(customer_id, np.zeros(0, np.int64)))
        if subclass is not None:
            groups.append(self.by_subclass.get(subclass, np.zeros(0, np.int64)))
        rows = min(groups, key=len)
        if customer_id is not None and subclass is not None:
            # scan the smaller group, check the other key on it
            if len(groups[0]) <= len(groups[1]):
                rows = rows[self.columns["subclass"][rows] == subclass]
            else:
                rows = rows[self.columns["customer_id"][rows] == customer_id]
        rows = rows[: np.searchsorted(self.dates[rows], cutoff, side="left")]
        if rows.size == 0:
            return []
        texts, inverse = _distinct(self.text_no[rows], len(self.vectors))
        sims = (self.vectors[texts] @ vector)[inverse]
        if rows.size > k:  # only rows that can be in the top k: above the k-th best, or tied with it
            keep = sims >= np.partition(sims, rows.size - k)[rows.size - k]
            rows, sims = rows[keep], sims[keep]
        order = np.lexsort((rows, -sims))[:k]
        return [(int(rows[j]), float(sims[j])) for j in order]

    def unfiltered(self, vector: np.ndarray, cutoff: int, k: int) -> list[tuple[int, float]]:
        """Exact: rank the distinct texts, then expand each to its episodes before ``cutoff``."""
        sims = self.vectors @ vector
        ranked = np.lexsort((np.arange(sims.size), -sims))
        out: list[tuple[int, float]] = []
        for t in ranked:
            rows = self._text_order[self._text_offsets[t] : self._text_offsets[t + 1]]
            rows = rows[: np.searchsorted(self.dates[rows], cutoff, side="left")]
            out.extend((int(r), float(sims[t])) for r in rows[: k - len(out)])
            if len(out) >= k:
                break
        return out

    def record_fields(self, row: int) -> tuple[str, dict[str, Any]]:
        """(id, every field of the episode) of one row, for ``store.to_record``."""
        meta = {c: self.columns[c][row] for c in ("customer_id", "subclass", *RECORD_COLUMNS)}
        meta["date"] = int(self.dates[row])
        meta["quantity"] = int(meta["quantity"])
        meta["unit_price"] = float(meta["unit_price"])
        meta["price_ratio"] = float(meta["price_ratio"])
        return str(self.ids[row]), meta


def load_side_index(folder: Path, expected_count: int | None = None) -> SideIndex | None:
    """The side index in ``folder`` (compacting leftover parts first), or None when absent or stale.

    Stale = its episode count differs from the collection's (``expected_count``): then the
    caller uses the Chroma path, which is correct but slower, until ``malles memory reindex``.
    """
    if (folder / "parts").exists() and any((folder / "parts").glob("episodes-*.parquet")):
        try:
            compact(folder, folder.name)
        except OSError:
            return None  # read-only folder: use Chroma
    if not (folder / "manifest.json").exists():
        return None
    if expected_count is not None and read_manifest(folder).get("episodes") != expected_count:
        return None
    return SideIndex(folder)
