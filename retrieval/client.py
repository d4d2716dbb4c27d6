"""Chroma client factory: an embedded PersistentClient (default) or an HttpClient for a server."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from malles_graph.retail.retrieval_api import RetrievalError

DEFAULT_FOLDER = "memory"


def default_path(run_dir: Path | None = None) -> Path:
    """The default persist folder: ``<run dir>/memory`` (run dir: MALLES_RUNS or ./runs)."""
    from malles_graph.paths import runs_dir

    return (run_dir or runs_dir()) / DEFAULT_FOLDER


def make_client(path: str | Path | None = None, url: str | None = None, create: bool = True) -> tuple[Any, str]:
    """A Chroma client for ``url`` (a server) or ``path`` (embedded, on disk).

    ``create=False`` is for readers: a missing folder is then an error naming the path
    instead of an empty memory silently created. Returns ``(client, where)`` where
    ``where`` names the location in messages.
    """
    import chromadb

    if url and path:
        raise RetrievalError(f"give either a Chroma folder ({path}) or a server URL ({url}), not both")
    if url:
        return _http_client(url), url
    folder = Path(path) if path else default_path()
    if folder.exists() and not folder.is_dir():
        raise RetrievalError(f"Chroma persist path {folder} is a file, not a folder")
    if not create and not (folder / "chroma.sqlite3").exists():
        raise RetrievalError(f"no Chroma memory at {folder} (no chroma.sqlite3): run `malles memory build` first")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        client = chromadb.PersistentClient(path=str(folder))
        client.heartbeat()
        client.list_collections(limit=1)  # touches the database: a corrupt file fails here, not later
    except RetrievalError:
        raise
    except Exception as exc:  # chromadb raises several types for a corrupt store
        raise RetrievalError(
            f"Chroma persist folder {folder} could not be opened ({type(exc).__name__}: {exc}); "
            "it may be corrupt or written by another Chroma version. Nothing was changed; "
            "move it aside and build again"
        ) from exc
    return client, str(folder)


def _http_client(url: str) -> Any:
    import chromadb

    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise RetrievalError(f"Chroma server URL {url!r} is not of the form http://host:port")
    port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    try:
        client = chromadb.HttpClient(host=parsed.hostname, port=port, ssl=parsed.scheme == "https")
        client.heartbeat()
    except Exception as exc:
        raise RetrievalError(f"Chroma server {url} does not answer ({type(exc).__name__}: {exc})") from exc
    return client
