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
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from malles_graph.graphs.population import run_inputs
from malles_graph.graphs.population.executor import JOIN_ATTEMPTS, auth_hint, join

import malles_graph
from malles_graph.store import repository as repo
from malles_graph.store.engine import make_engine
from tests.population.test_ray_executor import ROUNDS, run, scenario, stored

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
MALLES = str(Path(sys.executable).with_name("malles"))
START_S = 180  # two nodes start in 10-60 s on this busy 2-core machine
# Ray Client's proxy forks a server process per client; now and then the fork hangs before its exec (a gRPC
# fork race in Ray, ray-project/ray#63202: "Other threads are currently calling into gRPC, skipping fork()
# handlers"), and the proxy, and so `ray.init("ray://...")`, wait for it forever. An exec takes milliseconds.
STUCK_FORK_S = 20
pytestmark = pytest.mark.slow


def proc_stat(pid: int) -> tuple[int, bytes] | None:
    """(parent pid, command line) of a live process, from /proc; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1]), Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None


def reap_stuck_forks(parent: int, first_seen: dict[int, float], age_s: float = STUCK_FORK_S) -> list[int]:
    """SIGKILL the children of ``parent`` that still run its own command line (forked, never exec'd) ``age_s``
    after this was first called with them seen; the pids killed.

    Ray's proxy then sees its server process die and says "Starting Ray client server failed", which
    ``executor.join`` retries: the Ray bug above is turned into the one the product handles.
    """
    own = proc_stat(parent)
    if own is None:
        return []
    now, killed = time.monotonic(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        info = proc_stat(pid)
        if info is None or info[0] != parent or info[1] != own[1]:
            continue
        if now - first_seen.setdefault(pid, now) >= age_s:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
    return killed


def client_proxy(port: int) -> int | None:
    """The pid of the Ray Client proxy serving ``port``."""
    for entry in Path("/proc").iterdir():
        info = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        args = info[1].split(b"\0") if info else []
        if b"ray.util.client.server" in args and b"--mode=proxy" in args and f"--port={port}".encode() in args:
            return int(entry.name)
    return None


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
    procs: list[subprocess.Popen] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def faults(self) -> Path:
        return self.folder / "faults"

    def start_node(self, *args: str, env: dict[str, str] | None = None) -> int:
        """Start a node (``ray start ARGS``), its processes in a session of their own; its index."""
        index = len(self.procs)
        log = open(self.folder / f"node{index}.log", "w")  # noqa: SIM115 - the node outlives this call
        command = [
            RAY,
            "start",
            *args,
            "--num-cpus",
            "1",
            "--object-store-memory",
            "100000000",
            "--disable-usage-stats",
            "--block",
        ]
        self.procs.append(
            subprocess.Popen(
                command, env=self.env | (env or {}), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )
        self.wait_started(index)
        return index

    def wait_started(self, i: int) -> None:
        """Until ``ray start`` of node ``i`` says its node runs (joined the cluster, for a second node)."""
        log, deadline = self.folder / f"node{i}.log", time.monotonic() + START_S
        while "Ray runtime started" not in log.read_text():
            assert self.procs[i].poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)

    def set_faults(self, hold: int = 0, kill: str = "") -> None:
        """What tests/population/ray_faults.py does in this cluster's workers from now on (counts reset)."""
        for name in ("hold", "kill", "killed", "started-off-head"):
            (self.faults / name).unlink(missing_ok=True)
        if hold:
            (self.faults / "hold").write_text(str(hold))
        if kill:
            (self.faults / "kill").write_text(kill)

    def wait_dead(self, node_id: str) -> None:
        """Until the GCS lists node ``node_id`` as dead (a killed raylet stays "alive" until its heartbeats are
        missed), so the next test meets a settled cluster."""
        probe = (
            "import sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR'); "
            "print(any(n['Alive'] for n in ray.nodes() if n['NodeID'] == sys.argv[2]))"
        )
        deadline = time.monotonic() + START_S
        while True:
            out = subprocess.run(
                [sys.executable, "-c", probe, self.gcs, node_id],
                env=self.env,
                cwd=self.folder,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if out.stdout.strip().endswith("False"):
                return
            assert time.monotonic() < deadline, out.stdout + out.stderr[-2000:]
            time.sleep(2)

    def watch_client_proxy(self) -> None:
        """In a thread until :meth:`stop`: reap the Ray Client proxy's stuck forks (see :data:`STUCK_FORK_S`),
        each noted in the folder's ``reaped`` file."""
        port, seen = int(self.client.rsplit(":", 1)[1]), {}

        def watch() -> None:
            proxy = None
            while not self.stopping.wait(2):
                if proxy is None and (proxy := client_proxy(port)):
                    (self.folder / "watched").write_text(str(proxy))
                for pid in reap_stuck_forks(proxy, seen) if proxy else []:
                    with open(self.folder / "reaped", "a") as note:
                        note.write(f"{pid}\n")

        threading.Thread(target=watch, name="client-proxy-watch", daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
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
        # the faults in every Ray worker of the cluster, whichever driver's job (a Ray Client job's
        # runtime_env cannot be set from the environment): the sitecustomize of the folder's site/
        "PYTHONPATH": f"{folder / 'site'}:{REPO}",
        "MALLES_TEST_RAY_FAULTS": str(folder / "faults"),
        "COLUMNS": "300",
    }
    c = Cluster(folder, env)
    c.faults.mkdir()
    (folder / "site").mkdir()
    (folder / "site" / "sitecustomize.py").write_text(
        "from tests.population.ray_faults import install_in_ray_workers\n\ninstall_in_ray_workers()\n"
    )
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
        c.watch_client_proxy()
        c.start_node("--address", c.gcs)
        yield c
    finally:
        c.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    url = f"sqlite:///{tmp_path_factory.mktemp('local') / 'local.sqlite'}"
    run_id, _ = run(scenario(url))
    return stored(url, run_id)


def malles_run(c: Cluster, url: str, address: str) -> subprocess.CompletedProcess:
    path = c.folder / f"scenario-{secrets.token_hex(4)}.yaml"
    path.write_text(yaml.safe_dump(scenario(url).model_dump(mode="json")))
    return subprocess.run(
        [MALLES, "run", str(path), "--address", address],
        cwd=c.folder,
        env=c.env,
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
    cluster.set_faults(hold=1)  # the head's first decision waits for one on the other node
    out = malles_run(cluster, url, cluster.client)
    assert out.returncode == 0, out.stderr[-3000:]
    run_id = only_run(url)
    assert stored(url, run_id) == local_run  # the same decisions as the local executor, each stored once
    assert len(local_run) == ROUNDS * 6 and len(set((d[0], d[1]) for d in local_run)) == len(local_run)
    assert len(set(nodes_of(url, run_id))) == 2  # both nodes decided
    assert (cluster.faults / "started-off-head").exists()  # (the faults were installed through the Ray Client)
    assert (cluster.folder / "watched").exists()  # the proxy's stuck forks are watched for (STUCK_FORK_S)


def test_a_node_killed_mid_round_is_retried_on_the_other_without_lost_or_duplicated_decisions(
    cluster: Cluster, local_run: list[tuple], tmp_path: Path
) -> None:
    """Through the GCS address; the second node's raylet is SIGKILLed while its 2nd decision of round 1 runs."""
    url = f"sqlite:///{tmp_path / 'gcs.sqlite'}"
    # the head's first decision waits while the other node makes one and starts a second, which kills it
    cluster.set_faults(hold=2, kill="raylet 2")
    out = malles_run(cluster, url, cluster.gcs)
    assert out.returncode == 0, out.stderr[-3000:]
    raylet, victim, node = (cluster.faults / "killed").read_text().split()
    with pytest.raises(ProcessLookupError):  # the node's raylet really died
        os.kill(int(raylet), 0)
    run_id = only_run(url)
    # every agent decided once per round, as the local executor decided
    assert stored(url, run_id) == local_run
    agents = [a.agent_id for a in run_inputs(scenario(url))["agents"]]
    assert Counter((d[0], d[1]) for d in stored(url, run_id)) == Counter(
        {(r, a): 1 for r in range(1, ROUNDS + 1) for a in agents}
    )
    # the dead node made a decision before it died; the victim's was made again on the head, as all of round 2
    made = dict(zip(((d[0], d[1]) for d in stored(url, run_id)), nodes_of(url, run_id), strict=True))
    assert node in made.values()
    (head,) = set(made.values()) - {node}
    assert made[(1, victim)] == head
    assert all(made[(2, a)] == head for a in agents)
    cluster.wait_dead(node)


def test_a_node_with_another_malles_graph_is_refused_in_one_line_that_names_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A node joins whose workers import malles-graph 0.0.1: the package shadowed by one of another version."""
    shadow = cluster.folder / "shadow" / "malles_graph"
    shadow.mkdir(parents=True)
    real = Path(malles_graph.__file__).parent
    (shadow / "__init__.py").write_text(f"__path__.append({str(real)!r})\n__version__ = '0.0.1'\n")
    cluster.start_node("--address", cluster.gcs, env={"PYTHONPATH": f"{shadow.parent}:{REPO}"})
    url = f"sqlite:///{tmp_path / 'other.sqlite'}"
    cluster.set_faults()
    out = malles_run(cluster, url, cluster.gcs)
    assert out.returncode == 2, out.stderr[-3000:]
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert re.search(
        r"the Ray workers on node \S+ [0-9a-f]{8} have malles-graph 0\.0\.1, this process "
        rf"{re.escape(malles_graph.__version__)}; install the same version on every node",
        out.stderr,
    )
    assert not Path(tmp_path / "other.sqlite").exists() or not repo.list_runs(make_engine(url))  # refused before a run


def test_a_refused_auth_token_is_said_with_what_to_set() -> None:
    try:
        try:
            raise RuntimeError("RPC error: InvalidAuthToken: Authentication token is missing or incorrect")
        except RuntimeError as cause:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379") from cause
    except ConnectionError as exc:
        assert auth_hint(exc).startswith("; the cluster wants its Ray auth token (set RAY_AUTH_MODE=token")
    assert "if the cluster uses Ray's token auth" in auth_hint(ConnectionError("ray client connection timeout"))
    assert auth_hint(ConnectionError("Connection refused")) == ""


class FlakyRay:
    """``ray.init`` that fails as Ray Client does when its server dies at start, ``fails`` times."""

    def __init__(
        self,
        fails: int,
        text: str = "Initialization failure from server: RuntimeError: Starting Ray "
        "client server failed. See ray_client_server_23000.err for detailed logs.",
    ) -> None:
        self.fails, self.text, self.inits, self.shutdowns = fails, text, 0, 0

    def init(self, **_: object) -> None:
        self.inits += 1
        if self.inits <= self.fails:
            raise ConnectionAbortedError(self.text)

    def shutdown(self) -> None:
        self.shutdowns += 1


ZOMBIE = (  # as a CI run met it: the server process died while the proxy read its command line
    'Initialization failure from server: Traceback (most recent call last): File ".../ray/util/client/server/'
    'proxier.py", line 765, in Datapath if not self.proxy_manager.start_specific_server( File ".../ray/util/'
    'client/server/proxier.py", line 396, in start_specific_server cmd = psutil_proc.cmdline() ... '
    "psutil.ZombieProcess: PID still exists but it's a zombie (pid=21682)"
)


def test_a_ray_client_server_that_dies_at_start_is_joined_again_a_bounded_number_of_times() -> None:
    ray = FlakyRay(fails=2)
    join(ray, "ray://head:10001")
    assert (ray.inits, ray.shutdowns) == (3, 2)
    zombie = FlakyRay(fails=1, text=ZOMBIE)
    join(zombie, "ray://head:10001")
    assert (zombie.inits, zombie.shutdowns) == (2, 1)
    with pytest.raises(ConnectionAbortedError):  # the last attempt's error is the one said
        join(FlakyRay(fails=JOIN_ATTEMPTS), "ray://head:10001")
    refused = FlakyRay(fails=1, text="Connection refused")
    with pytest.raises(ConnectionAbortedError):  # anything else is not retried
        join(refused, "ray://head:10001")
    assert refused.inits == 1


def state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def test_a_fork_that_never_execs_is_reaped_and_the_exec_d_children_are_left() -> None:
    """The watchdog of the Ray Client proxy, on a process that forks one child that keeps its command line (as
    a stuck fork does) and starts one that execs (as the proxy's servers do)."""
    script = (
        "import os, subprocess, sys, time\n"
        "server = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "if os.fork() == 0:\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        server = int(parent.stdout.readline())
        seen: dict[int, float] = {}
        assert reap_stuck_forks(parent.pid, seen, age_s=60) == []  # young: left alone
        (fork,) = seen  # the fork, and only it, is watched: the exec'd server has its own command line
        assert fork not in (parent.pid, server)
        assert reap_stuck_forks(parent.pid, seen, age_s=0) == [fork]
        deadline = time.monotonic() + 10
        while state(fork) not in ("Z", None):  # dead (a zombie: its parent does not wait for it)
            assert time.monotonic() < deadline, state(fork)
            time.sleep(0.1)
        assert state(server) not in ("Z", None) and parent.poll() is None  # the exec'd child lives on
    finally:
        parent.kill()
        parent.wait()
