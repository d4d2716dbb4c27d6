"""The memory a run needs: only its subclasses' episodes are built, and a gap is refused by name."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from malles_graph.retrieval.scope import memory_for, subclass_episodes

from malles_graph.data import tafeng
from malles_graph.retail.retrieval_api import RetrievalError, RetrievalQuery, date_key
from malles_graph.scenario import MemoryConfig

DAY = dt.date(2001, 1, 15)


@pytest.fixture(scope="module")
def rows(tafeng_path: Path) -> pl.DataFrame:
    return tafeng.load(tafeng_path)


@pytest.fixture(scope="module")
def two_small(rows: pl.DataFrame) -> list[str]:
    """Two real subclasses with a few dozen lines each (cheap to embed)."""
    counts = rows.group_by("subclass").len().filter(pl.col("len").is_between(30, 60)).sort("subclass")
    return counts["subclass"].head(2).to_list()


def test_builds_only_the_run_subclasses_before_the_day_then_just_checks(tmp_path, rows, two_small):
    a, _ = two_small
    memory = MemoryConfig(path=str(tmp_path / "memory"))
    expected = subclass_episodes([a], DAY, rows)
    assert expected.height and expected["date"].max() < date_key(DAY)
    retriever, report = memory_for(memory, [a], before=DAY, rows=rows)
    assert report is not None and report.added == expected.height == retriever.count()
    found = retriever.search(RetrievalQuery(text="1 unit at regular price", subclass=a, before=DAY, k=5))
    assert found and all(r.subclass == a and r.date < DAY for r in found)
    again, report = memory_for(memory, [a], before=DAY, rows=rows, build=False)
    assert report is None and again.count() == expected.height


def test_a_memory_that_does_not_cover_the_run_is_refused_naming_memory_and_subclass(tmp_path, rows, two_small):
    a, b = two_small
    memory = MemoryConfig(path=str(tmp_path / "memory"))
    memory_for(memory, [a], before=DAY, rows=rows)
    with pytest.raises(RetrievalError, match=rf"'tafeng_transactions' at .*memory does not cover the run's "
                                             rf"customers: subclass {b} lacks \d+ of its \d+ episodes"):
        memory_for(memory, [a, b], before=DAY, rows=rows, build=False)
    with pytest.raises(RetrievalError, match="no Chroma memory"):
        memory_for(MemoryConfig(path=str(tmp_path / "absent")), [a], rows=rows, build=False)
