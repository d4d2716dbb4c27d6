"""The Ray executor on a real local Ray cluster (2 worker CPUs, shared by the module's tests).

Cheap on purpose: a few archetypes, the choice-model backend (no LLM), two rounds. Faults are
injected in the workers by tests/population/ray_faults.py (a ``worker_process_setup_hook``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import ray
from malles_graph.graphs.population import run_inputs
from malles_graph.graphs.population.executor import check_workers
from malles_graph.graphs.run import run_scenario

from malles_graph.errors import MallesError
from malles_graph.events import DecisionFinished
from malles_graph.scenario import Scenario
from malles_graph.store import repository as repo
from malles_graph.store.engine import make_engine

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 2
pytestmark = pytest.mark.slow  # a Ray cluster starts (and workers restart) in seconds to tens of seconds here


def scenario(store_url: str, executor: str = "local") -> Scenario:
    return Scenario.model_validate({
        "name": "ray-exec",
        "seed": 5,
        "backend": {"name": "choice-model"},
        "population": {"n_customers": 600, "archetypes": 6},
        "environment": {"n_candidates": 4, "initial_stock": 100000},
        "decision": {"retrieval": False},
        "mean_field": {"max_rounds": ROUNDS, "epsilon": 1e-9},
        "store": {"url": store_url},
        "executor": {"kind": executor, "max_in_flight": 4},
    })


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory):
    """A real local Ray cluster for the module; yields the fault-injection folder its workers read."""
    folder = tmp_path_factory.mktemp("ray-faults")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"worker_process_setup_hook": "tests.population.ray_faults.install",
                          "env_vars": {"PYTHONPATH": str(REPO), "MALLES_TEST_RAY_FAULTS": str(folder)}})
    yield folder
    ray.shutdown()


def run(sc: Scenario) -> tuple[str, list[DecisionFinished]]:
    events: list[DecisionFinished] = []
    summary = run_scenario(sc, on_event=lambda e: events.append(e) if isinstance(e, DecisionFinished) else None)
    assert summary.status == "finished", summary
    return summary.run_id, events


def stored(url: str, run_id: str) -> list[tuple]:
    return [(d.round, d.agent_id, d.archetype, d.ok, d.choice, d.quantity)
            for d in repo.load_decisions(make_engine(url), run_id)]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    url = f"sqlite:///{tmp_path_factory.mktemp('local') / 'local.sqlite'}"
    run_id, _ = run(scenario(url))
    return stored(url, run_id)


def test_ray_executor_stores_the_local_executors_decisions(faults: Path, local_run: list[tuple],
                                                           tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ray.sqlite'}"
    run_id, events = run(scenario(url, "ray"))
    assert stored(url, run_id) == local_run
    assert len(local_run) == ROUNDS * 6
    assert len(events) == len(local_run)
    # the decisions were made in Ray worker processes, not in this one
    pids = {line.split()[0] for line in (faults / "decisions.log").read_text().splitlines()}
    assert pids and str(os.getpid()) not in pids


def test_a_worker_killed_mid_round_is_retried_without_lost_or_duplicated_decisions(
        faults: Path, local_run: list[tuple], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kill.sqlite'}"
    sc = scenario(url, "ray")
    agents = [a.agent_id for a in run_inputs(sc)["agents"]]
    victim = agents[3]
    (faults / "decisions.log").unlink(missing_ok=True)  # only this run's deciders count below
    (faults / "kill").write_text(victim)
    try:
        run_id, events = run(sc)
    finally:
        (faults / "kill").unlink()
    killed_pid = (faults / "killed").read_text()
    assert killed_pid.isdigit()
    with pytest.raises(ProcessLookupError):  # the worker really died
        os.kill(int(killed_pid), 0)
    # every agent decided exactly once per round: in the event stream and in the store
    assert Counter((e.round, e.agent_id) for e in events) == Counter(
        {(r, a): 1 for r in range(1, ROUNDS + 1) for a in agents})
    assert stored(url, run_id) == local_run
    # the victim's round-1 decision was made again by another worker process
    deciders = [line.split()[0] for line in (faults / "decisions.log").read_text().splitlines()
                if line.split()[1] == victim]
    assert deciders and killed_pid not in deciders


def test_a_decision_whose_every_worker_dies_stops_the_run_resumable(faults: Path, local_run: list[tuple],
                                                                    tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dies.sqlite'}"
    sc = scenario(url, "ray")
    victim = [a.agent_id for a in run_inputs(sc)["agents"]][2]
    (faults / "kill").write_text(f"{victim} always")
    try:
        summary = run_scenario(sc)
    finally:
        (faults / "kill").unlink()
    assert summary.status == "failed"
    assert f"Ray could not run the decision of agent {victim}" in summary.reason and "--resume" in summary.reason
    first = stored(url, summary.run_id)
    assert first and victim not in {d[1] for d in first}  # what others decided is kept
    again = run_scenario(sc, run_id=summary.run_id, resume=True)
    assert again.status == "finished"
    assert stored(url, summary.run_id) == local_run


def test_workers_that_cannot_import_a_module_are_refused_in_one_line(faults: Path) -> None:
    assert check_workers() == __import__("malles_graph").__version__
    with pytest.raises(MallesError, match=r"Ray workers cannot import malles_graph_absent .*install malles-graph"):
        check_workers("malles_graph_absent")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def malles(*args: str, cwd: Path, prelude: str = "") -> subprocess.CompletedProcess:
    code = f"import sys\n{prelude}\nfrom malles_graph.cli import main\nsys.argv = ['malles', *sys.argv[1:]]\nmain()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=os.environ | {"COLUMNS": "300"})


def test_an_unreachable_ray_address_or_a_missing_ray_is_one_line_and_exit_2(tmp_path: Path) -> None:
    base = ["run", str(REPO / "scenarios" / "demo.yaml"), "--backend", "choice-model", "--set",
            "decision.retrieval=false", "--store", f"sqlite:///{tmp_path / 'bad.sqlite'}"]
    address = f"ray://127.0.0.1:{free_port()}"
    bad = malles(*base, "--address", address, cwd=tmp_path)
    assert bad.returncode == 2, bad.stderr[-2000:]
    assert bad.stderr.strip().count("\n") == 0 and f"cannot reach the Ray cluster at {address}" in bad.stderr
    assert "Traceback" not in bad.stderr
    # ray not installed (hidden from the import system): the install hint, and `malles` itself never imports ray
    missing = malles(*base, "--executor", "ray", cwd=tmp_path,
                     prelude="import malles_graph.cli.main_commands\nassert 'ray' not in sys.modules\n"
                             "sys.modules['ray'] = None")
    assert missing.returncode == 2, missing.stderr[-2000:]
    assert missing.stderr.strip().count("\n") == 0 and "pip install 'malles-graph[ray]'" in missing.stderr
    assert "run " not in bad.stdout + missing.stdout  # refused before a run started
