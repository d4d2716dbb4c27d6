"""Top-level commands: demo, run, backends."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from malles_graph.cli.tables import print_table
from malles_graph.scenario import BACKEND_NAMES, BackendConfig, Scenario, load_scenario, parse_sets

app = typer.Typer()
console = Console()

BackendOpt = Annotated[str | None, typer.Option("--backend", "-b", help=f"LLM backend: {', '.join(BACKEND_NAMES)}")]
ModelOpt = Annotated[str | None, typer.Option(help="model name (openai/ollama) or GGUF path (local)")]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="server URL for openai/ollama backends")]


def scenario_with_overrides(
    path: Path,
    *,
    backend: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    seed: int | None = None,
    rounds: int | None = None,
    archetypes: int | None = None,
    customers: int | None = None,
    no_cache: bool = False,
    sets: list[str] | None = None,
) -> Scenario:
    overrides: dict[str, object] = {
        "backend.name": backend,
        "backend.model": model,
        "backend.base_url": base_url,
        "seed": seed,
        "mean_field.max_rounds": rounds,
        "population.archetypes": archetypes,
        "population.n_customers": customers,
        "backend.cache": False if no_cache else None,
    }
    overrides.update(parse_sets(sets or []))
    return load_scenario(path, overrides)


@app.command()
def run(
    scenario_file: Annotated[Path, typer.Argument(help="scenario YAML (see scenarios/)", metavar="SCENARIO.yaml")],
    backend: BackendOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario seed")] = None,
    rounds: Annotated[int | None, typer.Option(help="override mean_field.max_rounds")] = None,
    archetypes: Annotated[int | None, typer.Option(help="override population.archetypes (K)")] = None,
    customers: Annotated[int | None, typer.Option(help="override population.n_customers (N)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not use the LLM response cache")] = False,
    resume: Annotated[str | None, typer.Option(help="resume the interrupted run RUN_ID")] = None,
    store: Annotated[str | None, typer.Option(help="database URL (sqlite:///... or postgresql://...)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override any field: key.path=value")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="run N seeds (seed, seed+1, ...) and print the spread")] = 1,
    executor: Annotated[str | None, typer.Option(help="where the decisions run: local (threads) or ray (Ray tasks)")] = None,
    address: Annotated[str | None, typer.Option(
        help="Ray cluster (ray://host:10001, host:6379 or auto); implies --executor ray; a local cluster when empty")] = None,
) -> None:
    """Run a scenario: retail population, LLM Economist or wholesale dialogue.

    Examples:
      malles run scenarios/tafeng-retail.yaml
      malles run scenarios/tafeng-retail.yaml --backend choice-model --archetypes 16 --rounds 3
      malles run scenarios/economist-best-response.yaml --seed 3
      malles run scenarios/tafeng-retail.yaml --set decision.samples=3 --set decision.retrieval=false
      malles run scenarios/tafeng-retail.yaml --resume tafeng-retail-20261123-171500-ab12
      malles run scenarios/demo.yaml --backend choice-model --seeds 3   # stability across seeds
      malles run scenarios/demo.yaml --backend choice-model --executor ray   # Ray tasks on a local cluster
      malles run scenarios/tafeng-retail.yaml --address ray://head:10001     # an existing Ray cluster
    """
    scenario = scenario_with_overrides(
        scenario_file,
        backend=backend,
        model=model,
        base_url=base_url,
        seed=seed,
        rounds=rounds,
        archetypes=archetypes,
        customers=customers,
        no_cache=no_cache,
        sets=set_,
    )
    scenario = with_executor(scenario, executor, address)
    if resume and seeds > 1:  # run_any would start new runs per seed and leave the interrupted one as it was
        raise typer.BadParameter("--resume continues one run; it cannot be combined with --seeds", param_hint="--seeds")
    from malles_graph.cli.running import run_any

    overridden = [backend, model, base_url, seed, rounds, archetypes, customers, set_ or None, executor, address]
    if resume and any(v is not None for v in overridden):
        console.print("[yellow]note:[/] --resume continues the run with its stored scenario; overrides are ignored")
    run_any(scenario, resume=resume, store=store, console=console, seeds=seeds)


def with_executor(scenario: Scenario, kind: str | None, address: str | None) -> Scenario:
    """``scenario`` with the --executor / --address options applied over its ``executor:`` section."""
    from pydantic import ValidationError

    from malles_graph.errors import ScenarioError
    from malles_graph.scenario import ExecutorConfig

    updates = {k: v for k, v in {"kind": kind or ("ray" if address else None), "address": address}.items() if v}
    if not updates:
        return scenario
    try:
        config = ExecutorConfig.model_validate(scenario.executor.model_dump() | updates)
    except ValidationError:
        raise ScenarioError(f"--executor {kind!r}: expected local or ray") from None
    if config.address and config.kind != "ray":
        raise ScenarioError("--address names a Ray cluster: it needs --executor ray")
    if config.kind == "ray" and scenario.kind != "retail":
        raise ScenarioError(f"--executor ray runs retail populations; a {scenario.kind} run decides in this process")
    return scenario.model_copy(update={"executor": config})


@app.command()
def demo(
    backend: BackendOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not use the LLM response cache")] = False,
) -> None:
    """Run the small retail demo (scenarios/demo.yaml) on the embedded defaults, fetching data on first use.

    Examples:
      malles demo
      malles demo --backend choice-model
    """
    from malles_graph.cli.data import fetch
    from malles_graph.cli.running import run_any
    from malles_graph.paths import scenarios_dir

    fetch("all")
    scenario = scenario_with_overrides(scenarios_dir() / "demo.yaml", backend=backend, no_cache=no_cache)
    run_any(scenario, resume=None, store=None, console=console)


@app.command()
def backends(
    check: Annotated[bool, typer.Option("--check", help="send a tiny structured request and time the answer")] = False,
    scenario_file: Annotated[Path | None, typer.Option("--scenario", help="use this scenario's backend")] = None,
    backend: BackendOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
) -> None:
    """List the LLM backends; with --check, verify that the configured ones answer.

    Examples:
      malles backends
      malles backends --check                       # the local llama.cpp model
      malles backends --check --backend ollama --model llama3.2
      malles backends --check --backend openai --base-url http://localhost:8000/v1 --model qwen2.5
    """
    from malles_graph.backends import DESCRIPTIONS, is_llm_backend

    if backend is not None and backend not in BACKEND_NAMES:  # refused before the table, not a pydantic traceback
        raise typer.BadParameter(f"{backend!r} is not one of {', '.join(BACKEND_NAMES)}", param_hint="--backend")
    table = Table(title="LLM backends")
    table.add_column("name")
    table.add_column("what answers")
    for name in BACKEND_NAMES:
        table.add_row(name, DESCRIPTIONS[name])
    print_table(console, table)
    if not check:
        return
    base = load_scenario(scenario_file).backend if scenario_file else BackendConfig()
    updates = {k: v for k, v in {"name": backend, "model": model, "base_url": base_url}.items() if v is not None}
    config = BackendConfig.model_validate(base.model_dump() | updates | {"cache": False, "max_tokens": 48})
    if not is_llm_backend(config.name):
        console.print(f"[green]{config.name}[/] needs no LLM: nothing to check")
        return
    status = check_backend(config)
    console.print(status)
    if not status.startswith("[green]"):
        raise typer.Exit(1)


def check_backend(config: BackendConfig) -> str:
    """Ask the backend for a tiny JSON object; return a rich-formatted status line."""
    from langchain_core.messages import HumanMessage
    from pydantic import BaseModel

    from malles_graph.backends import build_client
    from malles_graph.errors import BackendError

    class Pong(BaseModel):
        answer: str

    start = time.perf_counter()
    try:
        client = build_client(config, use_cache=False)
        result = client.structured(
            [HumanMessage(content='Reply with the JSON object {"answer": "pong"}.')], Pong, max_retries=1, seed=0
        )
    except BackendError as exc:
        return f"[red]{config.name}: no answer[/] ({exc})"
    elapsed = time.perf_counter() - start
    if result.ok:
        return f"[green]{config.name} ({client.model_id}) answered[/] {result.value!r} in {elapsed:.1f} s"
    return f"[yellow]{config.name} ({client.model_id}) answered, but not valid JSON:[/] {result.error}"
