"""A run's start-up (issue 18): the population's situations come from only the lines they read, and the work
started beside the checks neither hides the checks' error nor loses its own."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from pathlib import Path

import polars as pl
import pytest
from malles_graph.graphs.run.start import in_background
from malles_graph.graphs.run.table import KindRunner, runner_for

from malles_graph.errors import DataError, ScenarioError
from malles_graph.retail.population import situation_builder
from tests.population.responders import scripted_decision_client
from tests.population.test_runner import small

DAY = dt.date(2001, 2, 10)


def lines() -> pl.DataFrame:
    """Three customers buying in two subclasses, with a product scanned twice in one basket."""
    d = dt.date
    rows = [  # (date, customer, subclass, product, quantity, sales)
        (d(2001, 1, 5), "x", "s", "p1", 1, 10.0),
        (d(2001, 1, 5), "x", "t", "q1", 2, 8.0),
        (d(2001, 1, 6), "y", "s", "p2", 1, 20.0),
        (d(2001, 1, 6), "y", "s", "p2", 1, 22.0),
        (d(2001, 1, 9), "z", "t", "q2", 3, 9.0),
        (d(2001, 1, 20), "z", "s", "p3", 1, 30.0),
        (d(2001, 2, 5), "y", "t", "q1", 1, 4.5),
        (d(2001, 2, 8), "x", "s", "p3", 2, 58.0),
        (d(2001, 2, 10), "x", "s", "p2", 1, 21.0),
        (d(2001, 2, 10), "z", "s", "p1", 1, 9.0),
        (d(2001, 2, 9), "y", "s", "p4", 1, 5.0),
    ]
    columns = ["date", "customer_id", "subclass", "product_id", "quantity", "sales"]
    data = {name: [r[i] for r in rows] for i, name in enumerate(columns)}
    return pl.DataFrame(data | {"age_group": ["30-34"] * len(rows), "pin_code": ["115"] * len(rows)})


def test_a_builder_scoped_to_its_customers_and_subclasses_builds_the_same_situations() -> None:
    table = lines()
    whole = situation_builder(table, 3, seed=5)
    scoped = situation_builder(table, 3, seed=5, customers=["x", "y"], subclasses=["s"])
    assert scoped.lines.height < whole.lines.height  # z's lines in t are not read, so not condensed
    for customer in ("x", "y"):
        assert scoped.build(customer, DAY, "s").situation == whole.build(customer, DAY, "s").situation


def test_background_work_hands_over_its_result_or_its_error() -> None:
    assert in_background("t", lambda a, b: a + b, 2, 3).result(timeout=10) == 5
    failed = in_background("t", lambda: (_ for _ in ()).throw(DataError("no data")))
    with pytest.raises(DataError, match="no data"):
        failed.result(timeout=10)


@dataclasses.dataclass(frozen=True)
class SlowInputs(KindRunner):
    """The retail runner whose initial state fails, after a wait (the checks run meanwhile)."""

    started: threading.Event = dataclasses.field(default_factory=threading.Event)

    def inputs(self, scenario):  # noqa: ANN001, ANN201 - the KindRunner signature
        self.started.set()
        raise DataError("the population cannot be built")


def slow_runner() -> SlowInputs:
    retail = runner_for("retail")
    return SlowInputs(**{f.name: getattr(retail, f.name) for f in dataclasses.fields(KindRunner)})


def test_the_checks_error_comes_first_and_the_initial_states_error_is_the_runs_failure(tmp_path: Path) -> None:
    runner = slow_runner()
    with pytest.raises(ScenarioError, match="cannot decide retail purchases"):
        runner.start(small(tmp_path, backend={"name": "best-response"}), client=scripted_decision_client())
    handle = runner.start(small(tmp_path), client=scripted_decision_client())
    summary = handle.run()
    assert runner.started.is_set()
    assert summary.status == "failed" and "the population cannot be built" in summary.reason
