"""Run an economist scenario the one way the product does (the generic runner, the store) and read it back."""

from __future__ import annotations

from malles_graph.graphs.run import run_scenario

from malles_graph.backends import build_client
from malles_graph.economist.runs import EconomistRunData, load_economist_run
from malles_graph.scenario import Scenario


def stored_run(sc: Scenario, chat=None, expect: str = "finished") -> EconomistRunData:
    """Run ``sc`` to its end in the test's store (``chat`` replaces the backend's model) and load it back.

    ``expect`` is the run's status (the runner marks a run whose every decision failed as failed).
    """
    client = build_client(sc.backend, chat_model=chat) if chat is not None else None
    summary = run_scenario(sc, client=client)
    assert summary.status == expect, summary.reason
    return load_economist_run(summary.run_id)
