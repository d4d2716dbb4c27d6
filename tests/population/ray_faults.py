"""Fault injection for the Ray executor tests, installed in every Ray worker by ``worker_process_setup_hook``.

Test-only, read here and nowhere in the product: ``MALLES_TEST_RAY_FAULTS`` is a folder. Each decision a
worker runs appends ``pid agent_id node_id`` to ``decisions.log`` there; when the folder holds a file ``kill``
naming an agent id, the first worker to decide for that agent creates ``killed`` (atomically, holding
its pid) and SIGKILLs its own process, so Ray sees a worker die mid-round and retries the task;
``AGENT always`` kills every attempt (Ray's retries run out). ``raylet N`` (a multi-node cluster): the
N-th decision started on a node other than the head SIGKILLs that node's raylet (the worker's parent) and
the worker itself, so the node dies mid-round; ``killed`` then holds ``raylet_pid agent_id node_id``.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import ray


def install() -> None:
    folder = Path(os.environ["MALLES_TEST_RAY_FAULTS"])
    from malles_graph.graphs.population import executor

    original = executor.run_in_worker

    def run_in_worker(scenario_json, spec, agent_id, situation):  # noqa: ANN001, ANN202 - the wrapped signature
        target = folder / "kill"
        order = target.read_text().split() if target.exists() else []
        if order[:1] == ["raylet"]:
            kill_raylet(folder, agent_id, int(order[1]))
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


def kill_raylet(folder: Path, agent_id: str, nth: int) -> None:
    """SIGKILL this worker's raylet and this worker when this is the ``nth`` decision started off the head node."""
    node = ray.get_runtime_context().get_node_id()
    if any(n["NodeID"] == node and "node:__internal_head__" in n["Resources"] for n in ray.nodes()):
        return
    with open(folder / "started-off-head", "a+", encoding="utf-8") as log:  # one line per decision started
        log.write(f"{agent_id}\n")
        log.seek(0)
        started = len(log.read().splitlines())
    raylet = os.getppid()
    if started != nth or "raylet" not in Path(f"/proc/{raylet}/cmdline").read_bytes().decode(errors="replace"):
        return
    (folder / "killed").write_text(f"{raylet} {agent_id} {node}")
    os.kill(raylet, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
