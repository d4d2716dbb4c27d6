"""`malles decide`: one customer decision from the Ta Feng data, transcript streamed live."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from malles_graph.cli.progress import stages
from malles_graph.cli.run_view import turn_panel
from malles_graph.cli.tables import print_table
from malles_graph.scenario import MAX_SEED

app = typer.Typer()
console = Console()


def _parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"--date must be YYYY-MM-DD, got {value!r}") from None


@app.command()
def decide(
    customer: Annotated[str, typer.Option("--customer", "-c", help="Ta Feng customer id (e.g. 01220551)")],
    date: Annotated[str, typer.Option("--date", "-d", help="decision day YYYY-MM-DD; history strictly before it")],
    subclass: Annotated[
        str | None, typer.Option(help="product subclass; default: the one they spent most on that day")
    ] = None,
    backend: Annotated[str, typer.Option(help="local | openai | ollama | choice-model")] = "local",
    model: Annotated[str | None, typer.Option(help="model name or GGUF path (backend default when empty)")] = None,
    base_url: Annotated[str | None, typer.Option(help="server URL for openai/ollama")] = None,
    rounds: Annotated[int, typer.Option(min=0, max=10, help="debate rounds")] = 2,
    samples: Annotated[
        int | None, typer.Option(min=1, max=32, help="decisions drawn for the majority vote (backend default when empty)")
    ] = None,
    candidates: Annotated[int, typer.Option(min=2, max=26, help="products offered")] = 5,
    single_agent: Annotated[bool, typer.Option("--single-agent", help="one prompt with everything, no debate")] = False,
    retrieval: Annotated[bool, typer.Option(help="retrieve similar past episodes")] = True,
    hidden: Annotated[bool, typer.Option(help="reconstruct the hidden factors Z")] = True,
    memory: Annotated[
        str | None,
        typer.Option(help="Chroma memory folder; default <runs>/memory (the subclass's episodes are added when missing)"),
    ] = None,
    memory_url: Annotated[str | None, typer.Option(help="Chroma server URL instead of a folder")] = None,
    style: Annotated[str | None, typer.Option(help="rho preset from personas/styles.yaml (e.g. bargain_hunter)")] = None,
    persona: Annotated[str | None, typer.Option(help="persona name from --personas-file (sets rho and text)")] = None,
    personas_file: Annotated[str, typer.Option(help="persona YAML under personas/")] = "retail_households.yaml",
    max_tokens: Annotated[int, typer.Option(min=8, help="max tokens per debate turn and per decision")] = 96,
    temperature: Annotated[float | None, typer.Option(help="sampling temperature (backend default when empty)")] = None,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="base seed")] = 0,
    timeout: Annotated[float, typer.Option(min=1, help="seconds one LLM call may take")] = 300.0,
    cache: Annotated[bool, typer.Option(help="use the on-disk LLM response cache")] = True,
    choice_model: Annotated[
        str | None, typer.Option(help="choice model JSON for --backend choice-model (default model when empty)")
    ] = None,
    calibration: Annotated[
        str | None, typer.Option(help="fitted calibration JSON (`malles align calibrate`) applied after the vote")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON instead of panels")] = False,
) -> None:
    """Run one customer decision (debate, decide, stabilise) and stream the transcript live.

    The situation is built from Ta Feng: the customer's history strictly before --date, the
    subclass they bought on that day (or --subclass), candidates from that subclass.

    Examples:
      malles decide --customer 01220551 --date 2001-02-13
      malles decide -c 01220551 -d 2001-02-13 --subclass 560402 --rounds 1 --samples 3
      malles decide -c 01220551 -d 2001-02-13 --single-agent --no-retrieval
      malles decide -c 01220551 -d 2001-02-13 --backend choice-model
      malles decide -c 01220551 -d 2001-02-13 --backend openai --model gpt-4o-mini --style bargain_hunter
    """
    from pydantic import ValidationError

    from malles_graph.errors import MallesError, ScenarioError
    from malles_graph.graphs.decision import DecisionResult, context_for_scenario, stream_decision
    from malles_graph.prompt_sets import persona_file
    from malles_graph.retail.personas import load_personas, load_styles, persona_text
    from malles_graph.retail.situations import SituationBuilder, SituationOptions
    from malles_graph.scenario import (
        BACKEND_NAMES,
        BackendConfig,
        DecisionOptions,
        MemoryConfig,
        Scenario,
        format_validation_error,
    )

    if backend not in BACKEND_NAMES or backend == "best-response":
        raise typer.BadParameter(f"--backend must be one of local, openai, ollama, choice-model; got {backend!r}")
    day = _parse_date(date)
    rho, text = None, None
    if persona:
        found = {p.name: p for p in load_personas(personas_file)}
        if persona not in found:
            raise MallesError(f"{personas_file}: no persona named {persona!r}; known: {sorted(found)}")
        rho, text = found[persona].style, persona_text(found[persona])
    if style:
        presets = load_styles()
        if style not in presets:
            raise MallesError(f"personas/styles.yaml: unknown style preset {style!r}; known: {sorted(presets)}")
        rho = presets[style]
    # The options become a validated scenario (--temperature included, so -1 or nan is refused by its bounds);
    # a value out of bounds is one line naming the scenario field, not a pydantic traceback.
    try:
        scenario = Scenario(
            name="decide",
            seed=seed,
            backend=BackendConfig(
                name=backend, model=model, base_url=base_url, max_tokens=max_tokens, cache=cache, timeout_s=timeout,
                **({"temperature": temperature} if temperature is not None else {}),
            ),
            decision=DecisionOptions(
                debate_rounds=rounds, samples=samples, single_agent=single_agent, retrieval=retrieval,
                hidden_factors=hidden, calibration=calibration,
            ),
            memory=MemoryConfig(path=memory, url=memory_url),
        )
    except ValidationError as exc:
        raise ScenarioError(format_validation_error("malles decide", exc)) from None

    with stages(console, "building the choice situation from Ta Feng..."):
        builder = SituationBuilder(options=SituationOptions(n_candidates=candidates, seed=seed))
        built = builder.build(customer, day, subclass, style=rho, persona_text=text)
        situation = built.situation
    with stages(console, f"opening the transaction memory for subclass {situation.subclass}..."):
        ctx, _ = context_for_scenario(scenario, subclasses=[situation.subclass], before=situation.date)
    ctx.turn_max_tokens = ctx.decide_max_tokens = max_tokens
    ctx.temperature = temperature
    ctx.choice_model_path = choice_model
    if persona:
        ctx.personas_file = str(persona_file(personas_file))  # the decision records the persona set it read
    if not as_json:
        print_table(console, _situation_table(situation))
    start = time.perf_counter()
    result: DecisionResult | None = None
    with stages(console, "thinking...") as say:
        for event in stream_decision(situation, ctx):
            if isinstance(event, DecisionResult):
                result = event
            elif not as_json:
                say(f"{event.role.replace('_', ' ')} done; next step...")
                console.print(turn_panel(event))
    elapsed = time.perf_counter() - start
    assert result is not None
    if as_json:
        payload = result.model_dump(mode="json") | {"actual": built.actual, "elapsed_s": round(elapsed, 3)}
        console.print_json(json.dumps(payload))
    else:
        print_table(console, _result_table(result, situation, built.actual, elapsed))
    if not result.ok:
        raise typer.Exit(1)


def _situation_table(situation) -> Table:
    table = Table(
        title=f"customer {situation.customer.customer_id} on {situation.date}, subclass {situation.subclass}",
        title_justify="left",
    )
    for col in ("label", "product", "price", "regular", "popularity", "bought before"):
        table.add_column(col, justify="right" if col not in ("label", "product") else "left")
    for c in situation.candidates:
        h = situation.own_history.get(c.product_id)
        table.add_row(c.label or "", c.product_id, f"{c.price:.1f}", f"{c.regular_price:.1f}", f"{c.popularity:.1%}",
                      f"{h.times_bought}x" if h else "-")
    return table


def _result_table(result, situation, actual: dict[str, int], elapsed: float) -> Table:
    out = result.outcome
    labels = {c.product_id: c.label or c.product_id for c in situation.candidates}
    table = Table(title="decision" if out.ok else "decision FAILED", title_justify="left",
                  border_style="green" if out.ok else "red", show_header=False)
    table.add_column("what")
    table.add_column("value")
    if result.decision is not None:
        d = result.decision
        table.add_row("product", f"{labels.get(d.product_id, d.product_id)} ({d.product_id})")
        table.add_row("quantity", str(d.quantity))
        table.add_row("confidence", f"{d.confidence:.2f}")
        table.add_row("rationale", Text(d.rationale))
    else:
        table.add_row("error", Text(out.error or ""))
    if out.agreement is not None:
        table.add_row("agreement", f"{out.agreement:.2f}")
    real = ", ".join(f"{labels.get(p, p)} ({p}) x{q}" for p, q in actual.items()) or "nothing in this subclass"
    table.add_row("really bought", real)
    table.add_row("LLM calls", f"{out.llm_calls} ({out.prompt_tokens} prompt + {out.completion_tokens} completion tokens)")
    bottle = out.details.get("bottlenecks", {})
    table.add_row("slowest node", str(bottle.get("slowest")))
    for key in ("retries", "conflicts", "failures"):
        if bottle.get(key):
            table.add_row(key, json.dumps(bottle[key]))
    table.add_row("wall time", f"{elapsed:.1f} s")
    return table
