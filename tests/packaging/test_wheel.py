"""The built wheel, installed in a fresh virtualenv, works in a folder with no checkout.

What a developer embedding the graphs does: build the wheel, install it, and from any folder run
`malles prompts check`, a short `malles run` (the LLM-free `choice-model` backend), the README's embedding
example, and `langgraph dev` serving the installed graphs (a langgraph.json naming
`malles_graph.graphs.<name>:graph`, its HTTP API on loopback).

Installing every dependency from PyPI into the fresh venv would take minutes, so the venv gets the wheel
alone (`pip install --no-deps`) and a `.pth` line naming this environment's site-packages for the
dependencies. A path line in a `.pth` is only appended to sys.path: the `.pth` files in that folder (the
checkout's editable-install finder among them) are not processed, so the checkout cannot leak in, and
`test_installed_package_is_the_wheel` checks that every `malles_graph` module comes from the fresh venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import malles_graph
from malles_graph.events import TurnStreamed, as_event
from tests.packaging.layout import OLD_NAMES, REPO, layout, source_trees

pytestmark = pytest.mark.slow


@dataclass
class Installed:
    wheel: Path
    venv: Path
    site: Path  # the fresh venv's site-packages
    work: Path  # the folder commands run in: no checkout, nothing but what they write
    env: dict[str, str]
    server: subprocess.Popen[bytes]
    server_log: Path
    port: int

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(
        self, *args: str | Path, env: dict[str, str] | None = None, timeout: int = 300
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(a) for a in args],
            cwd=self.work,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def malles(self, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return self.run(self.venv / "bin" / "malles", *args, env=env)


def check(*args: str | Path, timeout: int = 300) -> str:
    """Run a setup step; its output in the failure message when it fails."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_wheel(out: Path) -> Path:
    """`pip wheel` from a copy of the distribution's inputs, so the build writes nothing into the checkout.

    No build isolation: the build backend (setuptools) comes from this environment, so CI needs no network.
    """
    src = out / "src"
    src.mkdir()
    for path in source_trees():
        shutil.copy2(path, src / path.name)
    for folder in set(layout().package_dir.values()):
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    check(sys.executable, "-m", "pip", "wheel", src, "--no-deps", "--no-build-isolation", "-q", "-w", out)
    (wheel,) = out.glob("malles_graph-*.whl")
    return wheel


def make_venv(root: Path, wheel: Path) -> tuple[Path, Path]:
    venv = root / "venv"
    check(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    check(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel)
    site = Path(check(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    # the dependencies, without the checkout: see the module docstring
    (site / "dependencies-of-this-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv, site


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(root)
    venv, site = make_venv(root, wheel)
    work = root / "work"
    work.mkdir()
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "MALLES_PROMPTS", "MALLES_PERSONAS", "MALLES_RUNS"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        "COLUMNS": "200",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
        "BG_JOB_ISOLATED_LOOPS": "true",
    }
    # langgraph.json as a user writes it next to their app: the repository's graph names, nothing else
    graphs = json.loads((REPO / "langgraph.json").read_text(encoding="utf-8"))["graphs"]
    (work / "langgraph.json").write_text(json.dumps({"dependencies": ["."], "graphs": graphs}), encoding="utf-8")
    # the server boots (tens of seconds) while the other tests run their commands
    port = free_port()
    log_path = root / "langgraph-dev.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in the teardown below
    server = subprocess.Popen(
        [str(venv / "bin" / "python"), "-m", "langgraph_cli", "dev", "--no-browser", "--no-reload",
         "--port", str(port), "--config", "langgraph.json", "--allow-blocking"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        yield Installed(wheel, venv, site, work, env, server, log_path, port)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
        log.close()


def test_wheel_installs_only_malles_graph(installed: Installed) -> None:
    """The wheel's RECORD and top_level.txt name one top-level package, and it holds every module and data file."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/RECORD"))
        record = wheel.read(f"{dist_info}/RECORD").decode().splitlines()
        top_level = wheel.read(f"{dist_info}/top_level.txt").decode().split()
        metadata = wheel.read(f"{dist_info}/METADATA").decode()
    assert f"Version: {malles_graph.__version__}" in metadata.splitlines()  # the one version, in the metadata
    top = sorted({line.split(",")[0].split("/")[0] for line in record if line})
    print("top-level names the wheel installs:", top)
    assert top == ["malles_graph", dist_info] and top_level == ["malles_graph"]
    config = layout()
    expected = {
        f"{package.replace('.', '/')}/{path.name}"
        for package in config.packages
        if config.source(package).is_dir()
        for path in config.source(package).iterdir()
        if path.is_file() and (path.suffix == ".py" or config.data_matches(package, path.name))
    }
    missing = sorted(expected - set(names))
    assert not missing, f"the wheel lacks {missing}"
    for data in (
        "malles_graph/py.typed",
        "malles_graph/tui/app.tcss",
        "malles_graph/assets/scenarios/demo.yaml",
        "malles_graph/assets/prompts/decide.txt",
        "malles_graph/assets/personas/styles.yaml",
    ):
        assert data in names


PROBE = """
import importlib.metadata, importlib.util, json, sys
import malles_graph, malles_graph.graphs.decision, malles_graph.retrieval, malles_graph.tui.app
from malles_graph.paths import personas_dir, prompts_dir, scenarios_dir
from malles_graph.tui.app import MallesApp
print(json.dumps({
    "modules": sorted({m.__file__ for n, m in sys.modules.items() if n.startswith("malles_graph") and m.__file__}),
    "data": [str(prompts_dir()), str(personas_dir()), str(scenarios_dir())],
    "stylesheets": [str(p) for p in MallesApp().css_path],
    "old": {name: importlib.util.find_spec(name) is not None for name in %r},
    "version": [malles_graph.__version__, importlib.metadata.version("malles-graph")],
    "sys_path": sys.path,
    "finders": [repr(f) for f in sys.meta_path],
}))
"""


def test_installed_package_is_the_wheel(installed: Installed) -> None:
    """Code, bundled data and the TUI stylesheet come from the fresh venv; no old top-level name imports."""
    done = installed.run(installed.python, "-c", PROBE % (OLD_NAMES,))
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    package = installed.site / "malles_graph"
    assert len(probe["modules"]) > 20
    assert all(Path(f).is_relative_to(package) for f in probe["modules"]), probe["modules"]
    assert [Path(p) for p in probe["data"]] == [package / "assets" / k for k in ("prompts", "personas", "scenarios")]
    assert [Path(p) for p in probe["stylesheets"]] == [package / "tui" / "app.tcss"]
    assert probe["old"] == dict.fromkeys(OLD_NAMES, False)
    assert probe["version"] == [malles_graph.__version__] * 2
    # from the checkout only its environment's site-packages (the dependencies), never its source folders
    dependencies = sysconfig.get_paths()["purelib"]
    assert dependencies in probe["sys_path"]
    leaks = [p for p in probe["sys_path"] if p and p != dependencies and Path(p).resolve().is_relative_to(REPO)]
    assert not leaks, probe["sys_path"]
    assert not [f for f in probe["finders"] if "editable" in f.lower()], probe["finders"]  # the checkout's finder


def test_prompts_check_from_the_wheel(installed: Installed) -> None:
    done = installed.malles("prompts", "check")
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"all \d+ prompts valid", done.stdout)
    assert str(installed.site / "malles_graph" / "assets" / "prompts") not in done.stdout  # no errors at all
    # a user's folder replaces the bundled one whole: a file it lacks is named, never taken from the package
    mine = installed.work / "my-prompts"
    shutil.copytree(installed.site / "malles_graph" / "assets" / "prompts", mine, ignore=shutil.ignore_patterns("*.py"))
    (mine / "persona.txt").unlink()
    done = installed.malles("prompts", "check", env={"MALLES_PROMPTS": str(mine)})
    assert done.returncode == 1 and f"{mine / 'persona.txt'}: prompt file not found" in done.stdout
    done = installed.malles("prompts", "check", env={"MALLES_PROMPTS": str(installed.work / "missing")})
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: MALLES_PROMPTS={installed.work / 'missing'}: no such folder of prompts"


def test_short_run_from_the_wheel(installed: Installed) -> None:
    """`malles run demo.yaml` finds the bundled scenario by name and records a finished run in ./runs."""
    store = f"sqlite:///{installed.work / 'runs' / 'wheel.sqlite'}"
    # retrieval off: the demo's Chroma memory takes a minute to build, and it is not what this test is about
    done = installed.malles(
        "run", "demo.yaml", "--backend", "choice-model", "--rounds", "1", "--customers", "200",
        "--set", "decision.retrieval=false", "--store", store,
    )  # fmt: skip
    print(done.stdout[-2000:])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = installed.malles("runs", "--store", store, "--json")
    assert runs.returncode == 0, runs.stderr
    assert '"finished"' in runs.stdout and '"demo"' in runs.stdout, runs.stdout


def readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Embedding a graph", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "README.md: no python block under 'Embedding a graph'"
    return match.group(1)


def test_readme_embedding_example_from_the_wheel(installed: Installed) -> None:
    """The README's example, verbatim, as a user's script in a folder holding nothing else."""
    script = installed.work / "embed_example.py"
    script.write_text(readme_example(), encoding="utf-8")
    done = installed.run(installed.python, script)
    print(done.stdout)
    assert done.returncode == 0, done.stderr[-3000:]
    choice, quantity, ok = done.stdout.strip().splitlines()[-1].split()
    assert ok == "True" and float(quantity) >= 0 and choice


def server_url(installed: Installed) -> str:
    url = f"http://127.0.0.1:{installed.port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if installed.server.poll() is not None:
            raise AssertionError(f"langgraph dev exited {installed.server.returncode}:\n{log_tail(installed)}")
        try:
            if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"langgraph dev did not answer in 240 s:\n{log_tail(installed)}")


def log_tail(installed: Installed) -> str:
    return installed.server_log.read_text(errors="replace")[-3000:]


def server_stream(url: str, body: dict) -> list[tuple[str, Any]]:
    """(stream mode, data) of each server-sent event of a streamed run (LangGraph Server API)."""
    chunks, mode = [], ""
    with httpx.stream("POST", url, json=body, timeout=300) as response:
        assert response.status_code == 200, response.read().decode()
        for line in response.iter_lines():
            if line.startswith("event:"):
                mode = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                chunks.append((mode, json.loads(line.removeprefix("data:"))))
    assert not [data for mode, data in chunks if mode == "error"], chunks
    return chunks


def test_langgraph_dev_serves_the_installed_graphs(installed: Installed) -> None:
    """Every graph of langgraph.json is served from the installed package; a client streams the decision graph."""
    url = server_url(installed)
    graphs = json.loads((installed.work / "langgraph.json").read_text())["graphs"]
    assert all(target.startswith("malles_graph.graphs.") for target in graphs.values())
    assistants = httpx.post(f"{url}/assistants/search", json={"limit": 50}, timeout=30).json()
    served = {a["graph_id"]: a["assistant_id"] for a in assistants}
    assert set(graphs) <= set(served), (served, log_tail(installed))
    for graph_id in graphs:
        shape = httpx.get(f"{url}/assistants/{served[graph_id]}/graph", timeout=60).json()
        assert len(shape["nodes"]) >= 3, graph_id
    # a client app calls the served decision graph with plain dicts (the LLM-free choice-model backend)
    from malles_graph.data import tafeng
    from malles_graph.retail.situations import SituationBuilder

    situation = SituationBuilder(tafeng.load()).sample(1, seed=3)[0].situation.model_dump(mode="json")
    body = {
        "assistant_id": "decision",
        "input": {"agent_id": "api-1", "situation": situation},
        "context": {"backend": {"name": "choice-model"}, "debate_rounds": 1, "retrieval": False},
        "stream_mode": ["custom", "values"],
    }
    chunks = server_stream(f"{url}/runs/stream", body)
    # the run events arrive as dicts over the wire; the public parser turns every one back into a model
    events = [as_event(data) for mode, data in chunks if mode == "custom"]
    assert events and all(isinstance(e, TurnStreamed) for e in events), [m for m, _ in chunks]
    assert {"persona", "decide"} <= {e.turn.role for e in events}
    outcome = [data for mode, data in chunks if mode == "values"][-1]["outcome"]
    print("served decision:", {k: outcome[k] for k in ("agent_id", "ok", "choice", "quantity")}, len(events), "events")
    assert outcome["agent_id"] == "api-1" and outcome["ok"] is True
    assert outcome["choice"] in {*(c["product_id"] for c in situation["candidates"]), "none"}
