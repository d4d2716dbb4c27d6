"""Fault injection for the Ray executor tests, installed in every Ray worker (``worker_process_setup_hook``, or
``install_in_ray_workers`` from a ``sitecustomize`` on the cluster's PYTHONPATH).

Test-only, read here and nowhere in the product: ``MALLES_TEST_RAY_FAULTS`` is a folder. Each decision a
worker runs appends ``pid agent_id node_id`` to ``decisions.log`` there; when the folder holds a file ``kill``
naming an agent id, the first worker to decide for that agent creates ``killed`` (atomically, holding
its pid) and SIGKILLs its own process, so Ray sees a worker die mid-round and retries the task;
``AGENT always`` kills every attempt (Ray's retries run out).

On a multi-node cluster: with a file ``hold`` holding K, a decision on the head node waits (up to a
minute) until K decisions have started on the other nodes, so those nodes surely get work however fast
the head's worker is (each node has 1 CPU: the waiting decision holds the head's). With ``kill`` holding
``raylet N``, the N-th decision started off the head SIGKILLs that node's raylet (the worker's parent)
and the worker itself, so the node dies mid-round; ``killed`` then holds ``raylet_pid agent_id node_id``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import ray


def install_in_ray_workers() -> None:
    """:func:`install` when this process is a Ray worker (for a ``sitecustomize`` on the PYTHONPATH of a cluster)."""
    if sys.argv and sys.argv[0].endswith("default_worker.py") and "MALLES_TEST_RAY_FAULTS" in os.environ:
        install()


def install() -> None:
    folder = Path(os.environ["MALLES_TEST_RAY_FAULTS"])
    from malles_graph.graphs.population import executor

    original = executor.run_in_worker

    def run_in_worker(scenario_json, spec, agent_id, situation):  # noqa: ANN001, ANN202 - the wrapped signature
        target = folder / "kill"
        order = target.read_text().split() if target.exists() else []
        if on_head():
            hold(folder)
        else:
            started = count_started(folder, agent_id)
            if order[:1] == ["raylet"] and started == int(order[1]):
                kill_raylet(folder, agent_id)
        if order[:2] == [agent_id, "always"]:
            os.kill(os.getpid(), signal.SIGKILL)
        if order == [agent_id]:
            try:
                fd = os.open(folder / "killed", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        result = original(scenario_json, spec, agent_id, situation)
        with open(folder / "decisions.log", "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {agent_id} {ray.get_runtime_context().get_node_id()}\n")
        return result

    executor.run_in_worker = run_in_worker


def on_head() -> bool:
    node = ray.get_runtime_context().get_node_id()
    return any(n["NodeID"] == node and "node:__internal_head__" in n["Resources"] for n in ray.nodes())


def count_started(folder: Path, agent_id: str) -> int:
    """Log a decision started off the head; how many have started so far (one worker per node: no race)."""
    with open(folder / "started-off-head", "a+", encoding="utf-8") as log:
        log.write(f"{agent_id}\n")
        log.seek(0)
        return len(log.read().splitlines())


def hold(folder: Path, timeout_s: float = 60.0) -> None:
    target, log = folder / "hold", folder / "started-off-head"
    want = int(target.read_text()) if target.exists() else 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (len(log.read_text().splitlines()) if log.exists() else 0) < want:
        time.sleep(0.1)


def kill_raylet(folder: Path, agent_id: str) -> None:
    """SIGKILL this worker's raylet (its parent), then this worker: the node dies mid-decision."""
    raylet = os.getppid()
    assert "raylet" in Path(f"/proc/{raylet}/cmdline").read_bytes().decode(errors="replace"), raylet
    (folder / "killed").write_text(f"{raylet} {agent_id} {ray.get_runtime_context().get_node_id()}")
    os.kill(raylet, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
