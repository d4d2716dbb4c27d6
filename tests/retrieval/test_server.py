"""The server path: a real `chroma run` on localhost, reached through HttpClient."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from malles_graph.retrieval import ChromaRetriever, ingest, make_client, open_collection

from malles_graph.retail.retrieval_api import RetrievalQuery, UnknownCustomerError, key_date

CHROMA = Path(sys.executable).with_name("chroma")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not CHROMA.exists():
        pytest.fail(f"{CHROMA} not found: chromadb's server entry point is part of the dependencies")
    port = free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"chroma run did not answer on {url}: {(folder / 'server.log').read_text()[-2000:]}")
        time.sleep(0.3)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


@pytest.fixture(scope="module")
def filled(server, episodes, ef):
    """The collection 'server-test' on the server, ingested in two steps (the second resumes over HTTP); each test
    that reads it asks for it, so any one of them runs alone."""
    subset = episodes.slice(2000, 150)
    client, where = make_client(url=server)
    assert where == server
    col = open_collection(client, "server-test", where, create=True, embedding_function=ef)
    first = ingest(col, subset.head(100), ef.embed, batch_size=40)
    second = ingest(col, subset, ef.embed, batch_size=40)
    return subset, first, second, col.count()


def test_ingest_and_search_through_a_server(server, filled):
    subset, first, second, count = filled
    assert (first.added, second.skipped, second.added, count) == (100, 100, 50, 150)

    retriever = ChromaRetriever.open(url=server, collection="server-test")
    row = subset.row(149, named=True)
    before = key_date(row["date"]) + dt.timedelta(days=1)
    got = retriever.search(RetrievalQuery(text=row["text"], subclass=row["subclass"], before=before, k=5))
    assert got and got[0].similarity == pytest.approx(1.0, abs=1e-4)
    assert all(r.subclass == row["subclass"] and r.date < before for r in got)
    with pytest.raises(UnknownCustomerError, match=server):
        retriever.search(RetrievalQuery(text="x", customer_id="nobody", before=before))


def test_a_local_side_index_for_a_server(server, filled, tmp_path):
    """A server has no folder: `malles memory reindex --url --out` builds a local index, index_path uses it."""
    from typer.testing import CliRunner

    from malles_graph.cli import app

    plain = ChromaRetriever.open(url=server, collection="server-test")
    assert plain.side_index is None, "no local folder next to a server: the Chroma path serves it"
    out = tmp_path / "server-index"
    done = CliRunner().invoke(app, ["memory", "reindex", "--url", server, "--collection", "server-test",
                                    "--out", str(out)])
    assert done.exit_code == 0, done.output
    fast = ChromaRetriever.open(url=server, collection="server-test", index_path=out)
    assert fast.side_index is not None and fast.side_index.size == plain.count() == 150
    for row in (0, 75, 149):
        _, meta = fast.side_index.record_fields(row)
        before = key_date(meta["date"]) + dt.timedelta(days=1)
        for kw in ({}, {"subclass": meta["subclass"]}, {"customer_id": meta["customer_id"]}):
            q = RetrievalQuery(text=f"bought {row % 3 + 1} units", before=before, k=5, **kw)
            got, want = fast.search(q), plain.search(q)
            assert [r.similarity for r in got] == pytest.approx([r.similarity for r in want], abs=2e-4)
            assert all(r.date < before for r in got)
