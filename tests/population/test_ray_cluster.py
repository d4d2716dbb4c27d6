"""The Ray executor on a real multi-node Ray cluster on this machine, driven by `malles run` as a user would.

``ray start --head`` and ``ray start --address`` start two raylets (1 CPU each): two nodes to Ray, with
their own workers, object stores and node ids. The runs connect to the cluster's GCS address
(``127.0.0.1:P``) and through the Ray Client (``ray://127.0.0.1:C``); each stored decision names the node
that made it (``details["ray_node"]``). The cluster uses Ray's token auth (its default since 2.5x), with a
token of its own in the environment of every process. Cheap on purpose: the choice-model backend, the
few archetypes and two rounds of test_ray_executor.py.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from malles_graph.graphs.population import run_inputs

from malles_graph.store import repository as repo
from malles_graph.store.engine import make_engine
from tests.population.test_ray_executor import ROUNDS, run, scenario, stored

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
MALLES = str(Path(sys.executable).with_name("malles"))
START_S = 180  # two nodes start in 10-60 s on this busy 2-core machine
pytestmark = pytest.mark.slow

# what the nodes are, from a driver of the cluster: {node id: is the head}, once `want` nodes are alive
NODES = """
import json, sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
deadline = time.time() + float(sys.argv[3])
while True:
    alive = [n for n in ray.nodes() if n["Alive"]]
    if len(alive) == int(sys.argv[2]) or time.time() > deadline:
        break
    time.sleep(0.5)
print(json.dumps({n["NodeID"]: "node:__internal_head__" in n["Resources"] for n in alive}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    folder: Path  # Ray's temp dir (sessions, logs) and the fault-injection folder
    env: dict[str, str]  # the environment of every process of the cluster and of its drivers
    gcs: str = ""
    client: str = ""
    head: str = ""  # node ids
    other: str = ""
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def faults(self) -> Path:
        return self.folder / "faults"

    def start_node(self, *args: str) -> None:
        log = open(self.folder / f"node{len(self.procs)}.log", "w")  # noqa: SIM115 - the node outlives this call
        # its own session: the node's processes form one group, ended together by stop()
        self.procs.append(
            subprocess.Popen(
                [
                    RAY,
                    "start",
                    *args,
                    "--num-cpus",
                    "1",
                    "--object-store-memory",
                    "100000000",
                    "--disable-usage-stats",
                    "--block",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def nodes(self, want: int, wait_s: float = START_S) -> dict[str, bool]:
        out = subprocess.run(
            [sys.executable, "-c", NODES, self.gcs, str(want), str(wait_s)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=wait_s + 120,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    def stop(self) -> None:
        for proc in reversed(self.procs):  # `ray start --block` stops its node's processes on SIGTERM
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:  # whatever is left of the node's group
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # a short path: Ray's unix sockets live under the temp dir (at most 107 bytes)
    folder = Path(tempfile.mkdtemp(prefix="malles-rc-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "PYTHONPATH": str(REPO),
        "MALLES_TEST_RAY_FAULTS": str(folder / "faults"),
        "COLUMNS": "300",
    }
    c = Cluster(folder, env)
    c.faults.mkdir()
    port, client = free_port(), free_port()
    c.gcs, c.client = f"127.0.0.1:{port}", f"ray://127.0.0.1:{client}"
    try:
        c.start_node(
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--ray-client-server-port",
            str(client),
            "--include-dashboard=false",
            "--temp-dir",
            str(folder / "ray"),
        )
        deadline = time.monotonic() + START_S
        while True:  # the head's GCS listens before the second node can join
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and c.procs[0].poll() is None, (folder / "node0.log").read_text()
                time.sleep(0.5)
        c.start_node("--address", c.gcs)
        nodes = c.nodes(2)
        assert len(nodes) == 2 and sum(nodes.values()) == 1, nodes
        c.head = next(n for n, head in nodes.items() if head)
        c.other = next(n for n, head in nodes.items() if not head)
        yield c
    finally:
        c.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    url = f"sqlite:///{tmp_path_factory.mktemp('local') / 'local.sqlite'}"
    run_id, _ = run(scenario(url))
    return stored(url, run_id)


def malles_run(
    c: Cluster, url: str, address: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    path = c.folder / f"scenario-{secrets.token_hex(4)}.yaml"
    path.write_text(yaml.safe_dump(scenario(url).model_dump(mode="json")))
    return subprocess.run(
        [MALLES, "run", str(path), "--address", address],
        cwd=c.folder,
        env=c.env | (extra_env or {}),
        capture_output=True,
        text=True,
        timeout=600,
    )


def only_run(url: str) -> str:
    (row,) = repo.list_runs(make_engine(url))
    assert row.status == "finished", row
    return row.id


def nodes_of(url: str, run_id: str) -> list[str]:
    return [json.loads(d.details_json).get("ray_node") for d in repo.load_decisions(make_engine(url), run_id)]


def test_a_run_through_the_ray_client_is_the_local_run_made_on_both_nodes(
    cluster: Cluster, local_run: list[tuple], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'client.sqlite'}"
    out = malles_run(cluster, url, cluster.client)
    assert out.returncode == 0, out.stderr[-3000:]
    run_id = only_run(url)
    assert stored(url, run_id) == local_run  # the same decisions as the local executor, each stored once
    assert len(local_run) == ROUNDS * 6 and len(set((d[0], d[1]) for d in local_run)) == len(local_run)
    assert set(nodes_of(url, run_id)) == {cluster.head, cluster.other}  # both nodes decided


def test_a_node_killed_mid_round_is_retried_on_the_other_without_lost_or_duplicated_decisions(
    cluster: Cluster, local_run: list[tuple], tmp_path: Path
) -> None:
    """Through the GCS address; the second node's raylet is SIGKILLed while its 2nd decision runs (round 1)."""
    url = f"sqlite:///{tmp_path / 'gcs.sqlite'}"
    job = {"runtime_env": {"worker_process_setup_hook": "tests.population.ray_faults.install"}}
    (cluster.faults / "kill").write_text("raylet 2")
    out = malles_run(cluster, url, cluster.gcs, {"RAY_JOB_CONFIG_JSON_ENV_VAR": json.dumps(job)})
    assert out.returncode == 0, out.stderr[-3000:]
    raylet, victim, node = (cluster.faults / "killed").read_text().split()
    assert node == cluster.other
    with pytest.raises(ProcessLookupError):  # the node's raylet really died
        os.kill(int(raylet), 0)
    assert list(cluster.nodes(1, wait_s=60)) == [cluster.head]  # and Ray counts the node as dead
    run_id = only_run(url)
    # every agent decided once per round, as the local executor decided
    assert stored(url, run_id) == local_run
    agents = [a.agent_id for a in run_inputs(scenario(url))["agents"]]
    assert Counter((d[0], d[1]) for d in stored(url, run_id)) == Counter(
        {(r, a): 1 for r in range(1, ROUNDS + 1) for a in agents}
    )
    # the dead node made a decision before it died; the victim's was made again on the head
    made = dict(zip(((d[0], d[1]) for d in stored(url, run_id)), nodes_of(url, run_id), strict=True))
    assert cluster.other in made.values()
    assert made[(1, victim)] == cluster.head
    assert all(made[(2, a)] == cluster.head for a in agents)
