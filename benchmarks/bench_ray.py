"""Local vs Ray executor for the population fan-out: wall time, decisions/s and their ratio.

    .venv/bin/python benchmarks/bench_ray.py                                # N = 1k, 100k, 1M; K=64, R=4
    .venv/bin/python benchmarks/bench_ray.py --sizes 1000 --k 16 --reps 2 --rounds 1
    .venv/bin/python benchmarks/bench_ray.py --address ray://head:10001     # an existing cluster
    .venv/bin/python benchmarks/bench_ray.py --address 127.0.0.1:6379       # its GCS address (on a node)

For each N (in its own process, so memory is per N): the population is built and clustered once
(setup, timed alone), then the same run (the choice-model backend: the computed path, no LLM; K
archetypes x R representatives decisions per round, SQLite store and checkpointer) is made by the
local executor and by the Ray executor, each through ``run_scenario``. The Ray cluster (local,
``num_cpus`` = the machine's cores, at least 2, unless ``--address``: an existing cluster, e.g. the
2-node one of docs/scale.md, with this shell's RAY_AUTH_* if it uses token auth) is started (or
connected to) before the timing and that time printed apart; "nodes" counts the Ray nodes that made
the run's decisions; the Ray run includes each worker building its decision context on
its first task: "cold" is the first round's decisions/s, "warm" the last round's (workers and
caches ready, the steady state of a long run). Both runs must store the same decisions (checked).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def scenario(n: int, k: int, reps: int, rounds: int, url: str, executor: str, address: str | None):
    from malles_graph.scenario import Scenario

    return Scenario.model_validate(
        {
            "name": f"bench-ray-{n}",
            "seed": 0,
            "backend": {"name": "choice-model"},
            "population": {"n_customers": n, "archetypes": k, "representatives": reps},
            "environment": {"n_candidates": 5, "initial_stock": 10_000_000},
            "decision": {"retrieval": False},
            "mean_field": {"max_rounds": rounds, "epsilon": 1e-12},
            "store": {"url": url},
            "executor": {"kind": executor, "address": address, "max_in_flight": 64},
        }
    )


def timed_run(sc, inputs) -> dict:
    from malles_graph.graphs.run import run_scenario

    from malles_graph.store import repository as repo
    from malles_graph.store.engine import make_engine

    marks: dict[str, float] = {}

    def timer(event) -> None:
        if event.type == "round_started":
            marks[f"start{event.round}"] = time.perf_counter()
        elif event.type == "round_finished":
            marks[f"end{event.round}"] = time.perf_counter()

    start = time.perf_counter()
    summary = run_scenario(sc, on_event=timer, inputs=inputs)
    wall = time.perf_counter() - start
    assert summary.status == "finished", summary.reason
    rows = repo.load_decisions(make_engine(sc.store.url), summary.run_id)
    decided = [(d.round, d.agent_id, d.choice, d.quantity) for d in rows]
    nodes = {json.loads(d.details_json).get("ray_node") for d in rows} - {None}  # where Ray made them
    rounds = [marks[f"end{r}"] - marks[f"start{r}"] for r in range(1, sc.mean_field.max_rounds + 1)]
    per_round = len(decided) / len(rounds)
    return {
        "wall_s": wall,
        "round_s": rounds,
        "decisions": len(decided),
        "first_per_s": per_round / rounds[0],
        "warm_per_s": per_round / rounds[-1],
        "nodes": len(nodes),
        "decided": decided,
    }


def one_size(n: int, k: int, reps: int, rounds: int, address: str | None) -> dict:
    from malles_graph.graphs.population import run_inputs
    from malles_graph.graphs.population.executor import connect, shutdown

    from malles_graph.scenario import ExecutorConfig

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        inputs = run_inputs(scenario(n, k, reps, rounds, "sqlite://", "local", None))
        setup = time.perf_counter() - t
        local = timed_run(scenario(n, k, reps, rounds, f"sqlite:///{tmp}/local.sqlite", "local", None), inputs)
        t = time.perf_counter()
        connect(ExecutorConfig(kind="ray", address=address))
        cluster = time.perf_counter() - t
        try:
            ray = timed_run(scenario(n, k, reps, rounds, f"sqlite:///{tmp}/ray.sqlite", "ray", address), inputs)
        finally:
            shutdown()
    same = local.pop("decided") == ray.pop("decided")
    return {"n": n, "setup_s": setup, "cluster_s": cluster, "local": local, "ray": ray, "same": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--k", type=int, default=64, help="archetypes")
    parser.add_argument("--reps", type=int, default=4, help="representatives per archetype")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--address", default=None, help="an existing Ray cluster (a local one is started otherwise)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.k, args.reps, args.rounds, args.address)))
        return
    print(
        f"== local vs Ray executor: choice-model backend, K={args.k} x R={args.reps} decisions per round, "
        f"{args.rounds} rounds, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'N':>10} {'setup s':>8} {'ray start s':>11} {'decisions':>9} {'executor':>8} {'s per round':>14} "
        f"{'dec/s cold':>10} {'dec/s warm':>10} {'ray/local warm':>14} {'same':>5} {'nodes':>5}"
    )
    for n in (int(x) for x in args.sizes.split(",")):
        cmd = [
            sys.executable,
            __file__,
            "--one",
            str(n),
            "--k",
            str(args.k),
            "--reps",
            str(args.reps),
            "--rounds",
            str(args.rounds),
            *(["--address", args.address] if args.address else []),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=os.environ)
        if out.returncode != 0:
            print(f"{n:>10,} failed: {out.stderr[-800:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        ratio = r["ray"]["warm_per_s"] / r["local"]["warm_per_s"]
        for name in ("local", "ray"):
            x, first = r[name], name == "local"
            cells = {
                "n": f"{n:,}" if first else "",
                "setup": f"{r['setup_s']:.1f}" if first else "",
                "start": "" if first else f"{r['cluster_s']:.1f}",
                "ratio": "" if first else f"{ratio:.2f}",
                "same": "" if first else ("yes" if r["same"] else "NO"),
                "nodes": "" if first else str(x["nodes"]),
                "rounds": ", ".join(f"{t:.1f}" for t in x["round_s"]),
            }
            print(
                f"{cells['n']:>10} {cells['setup']:>8} {cells['start']:>11} {x['decisions']:>9} {name:>8} "
                f"{cells['rounds']:>14} {x['first_per_s']:>10.1f} {x['warm_per_s']:>10.1f} {cells['ratio']:>14} "
                f"{cells['same']:>5} {cells['nodes']:>5}",
                flush=True,
            )


if __name__ == "__main__":
    main()
