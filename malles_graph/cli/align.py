"""`malles align`: economic alignment: export, train, serve, calibrate, reweight."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from malles_graph.cli.progress import counted, stages
from malles_graph.cli.tables import print_table
from malles_graph.scenario import MAX_SEED

app = typer.Typer(
    help="Economic alignment: post-train on transactions (export, train, serve), calibration f, reweighting w.",
    no_args_is_help=True,
)
console = Console()


def graph_prompt_style():
    """The decision graph's single-agent prompt as an alignment PromptStyle (graphs imported only when rendering)."""
    from malles_graph.alignment.prompting import PromptStyle

    def messages(situation):
        from malles_graph.graphs.decision import single_agent_messages

        return single_agent_messages(situation)

    def keys(situation):
        from malles_graph.graphs.decision import label_keys

        return label_keys(situation)

    def answer_text(label: str, quantity: int) -> str:
        from malles_graph.graphs.decision import answer_text as graph_answer

        return graph_answer(label, quantity)

    return PromptStyle("graph", messages, keys, answer_text, product_field="product")


def register_graph_style() -> None:
    """Let every core scorer/predictor started from the CLI (e.g. `malles eval run`) render the graph format."""
    from malles_graph.alignment.prompting import register_prompt_style

    register_prompt_style(graph_prompt_style())


register_graph_style()  # cheap: graphs is imported only when a graph-format prompt is rendered


def _split_list(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for sft.jsonl, dpo.jsonl, manifest.json")],
    n_examples: Annotated[int, typer.Option(help="examples kept")] = 400,
    n_cases: Annotated[int, typer.Option(help="purchases drawn from the window before hold-out/caps")] = 800,
    fit_start: Annotated[str, typer.Option(help="first day of history/reference figures")] = "2000-11-01",
    fit_end: Annotated[str, typer.Option(help="last day of history/reference figures")] = "2000-12-31",
    start: Annotated[str, typer.Option(help="first decision day of the examples")] = "2001-01-01",
    end: Annotated[str, typer.Option(help="last decision day (must be before the evaluation's test start)")] = (
        "2001-01-31"
    ),
    max_per_customer: Annotated[int, typer.Option(help="cap of examples per customer (0: no cap)")] = 5,
    holdout: Annotated[list[str] | None, typer.Option(help="subclass ids kept out of training (comma list)")] = None,
    holdout_fraction: Annotated[float, typer.Option(help="also hold out this share of subclasses")] = 0.15,
    pairs: Annotated[int, typer.Option(help="DPO preference pairs per example")] = 1,
    prompt: Annotated[str, typer.Option(help="graph (the decision graph's single-agent prompt) | compact")] = "graph",
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED)] = 0,
) -> None:
    """Write supervised examples and preference pairs from transactions before the test period.

    --prompt graph (default): the decision graph's single-agent prompt exactly as the graph sends
    it (no retrieved neighbours), answered in the graph's decide JSON, so a model aligned on it and
    served by the `local` backend in the graph sees its training prompt. --prompt compact: the
    short prompts/align_system.txt + align_choice.txt (faster to train and score, never sent by the
    graph). The format is recorded in manifest.json; serve and scoring follow it.

    Examples:
      malles align export -o runs/align/data
      malles align export -o runs/align/compact --prompt compact
      malles align export -o runs/align/data --n-examples 2000 --n-cases 4000 --holdout 100205,110401
    """
    from pydantic import ValidationError

    from malles_graph.alignment.errors import AlignmentError
    from malles_graph.alignment.export import ExportConfig
    from malles_graph.alignment.export import export as run_export
    from malles_graph.evaluation.builder import TRAIN_SPLIT
    from malles_graph.scenario import format_validation_error

    # Validated, not model_copy'd: a bad date, count or fraction is one line naming the field, not a traceback.
    dates = {"fit_start": fit_start, "fit_end": fit_end, "test_start": start, "test_end": end}
    try:
        cfg = ExportConfig.model_validate(
            {
                "split": TRAIN_SPLIT.model_dump() | dates | {"n_cases": n_cases, "seed": seed + 1},
                "n_examples": n_examples,
                "max_per_customer": max_per_customer or None,
                "holdout_subclasses": _split_list(holdout),
                "holdout_fraction": holdout_fraction,
                "pairs_per_example": pairs,
                "prompt_format": prompt,
                "seed": seed,
            }
        )
    except ValidationError as exc:
        raise AlignmentError(format_validation_error("malles align export", exc)) from None
    style = graph_prompt_style() if prompt == "graph" else None
    with stages(console, "building examples") as say:
        manifest = run_export(cfg, out, progress=say, style=style)
    console.print(
        f"wrote {manifest['n_examples']} examples and {manifest['n_pairs']} pairs to {out} "
        f"({manifest['customers']} customers, {manifest['subclasses']} subclasses, "
        f"{len(manifest['holdout_subclasses'])} held out, {manifest['first_date']}..{manifest['last_date']}; "
        f"{manifest['prompt_format']} prompt)"
    )


@app.command()
def train(
    examples: Annotated[Path, typer.Option(help="export folder or sft.jsonl")],
    output: Annotated[Path, typer.Option("--output", "-o", help="folder for adapter, checkpoints, train_state.json")],
    config: Annotated[Path | None, typer.Option(help="YAML/JSON TrainConfig (options below override it)")] = None,
    base: Annotated[str | None, typer.Option(help="'bundled', a HF model folder or a GGUF file")] = None,
    objective: Annotated[str | None, typer.Option(help="sft | dpo")] = None,
    max_steps: Annotated[int | None, typer.Option(help="optimiser steps (default: epochs)")] = None,
    epochs: Annotated[float | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr")] = None,
    lora_r: Annotated[int | None, typer.Option()] = None,
    limit: Annotated[int | None, typer.Option(help="only the first N examples")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    resume: Annotated[bool, typer.Option(help="continue from <output>/checkpoint when present")] = True,
) -> None:
    """Fine-tune a LoRA adapter on the exported examples (transformers + peft; CPU or GPU).

    Needs the `align` extra: pip install torch==2.13.0 transformers peft gguf accelerate.
    Checkpoints every --save-every steps (config); rerun the same command to resume.

    Examples:
      malles align train --examples runs/align/data -o runs/align/model --max-steps 60
      malles align train --examples runs/align/data -o runs/align/dpo --objective dpo --config train.yaml
    """
    from pydantic import ValidationError

    from malles_graph.alignment.errors import AlignmentError
    from malles_graph.alignment.train import TrainConfig
    from malles_graph.alignment.train import train as run_train
    from malles_graph.scenario import format_validation_error
    from malles_graph.yaml_files import read_yaml

    data: dict = {}
    if config is not None:
        loaded = read_yaml(config, AlignmentError, "training config") or {}
        if not isinstance(loaded, dict):
            raise AlignmentError(f"{config}: expected a mapping of TrainConfig fields, got {type(loaded).__name__}")
        data = loaded
    overrides = {
        "examples": str(examples),
        "output": str(output),
        "base": base,
        "objective": objective,
        "max_steps": max_steps,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "lora_r": lora_r,
        "limit": limit,
        "device": device,
    }
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise AlignmentError(format_validation_error(str(config or "malles align train"), exc)) from None
    with ExitStack() as stack:  # the count starts at the first step, when the total is known
        advance: Callable[..., None] | None = None

        def on_step(step: int, total: int, loss: float, tps: float) -> None:
            nonlocal advance
            if advance is None:
                advance = stack.enter_context(counted(console, "training", total, done=step - 1))
            advance(1, f"loss {loss:.4f}  {tps:.0f} tok/s")

        result = run_train(cfg, on_step=on_step, resume=resume)
    console.print(
        f"trained {result.steps} steps ({result.examples_seen} examples, {result.tokens} tokens) in "
        f"{result.seconds:.0f}s, {result.tokens_per_s:.0f} tok/s; loss {result.losses[0]:.4f} -> "
        f"{result.losses[-1]:.4f}; adapter in {result.adapter_dir}"
    )


@app.command()
def serve(
    trained: Annotated[Path, typer.Option(help="folder written by `malles align train`")],
    base_gguf: Annotated[Path | None, typer.Option(help="quantised base GGUF (default: the bundled model)")] = None,
    check: Annotated[bool, typer.Option(help="answer one prompt through the local backend")] = True,
) -> None:
    """Export the LoRA adapter to GGUF and make the folder servable by the `local` backend.

    The adapter runs on the unchanged quantised base in llama.cpp. Afterwards:
      malles eval run -b likelihood:local --model FOLDER ...  (probabilities)
      malles eval run -b generate:local --model FOLDER ...    (generated answers)
    and a scenario may set backend.model=<base GGUF>, backend.lora=FOLDER/adapter.gguf.

    Examples:
      malles align serve --trained runs/align/model
    """
    from malles_graph.alignment.errors import AlignmentError
    from malles_graph.alignment.export import export_prompt_format
    from malles_graph.alignment.train import ADAPTER, STATE, export_adapter_gguf, write_served

    state_file = trained / STATE
    if not state_file.exists():
        raise AlignmentError(f"{trained}: no {STATE} (train first with `malles align train`)")
    state = json.loads(state_file.read_text(encoding="utf-8"))
    if base_gguf is None:
        from malles_graph.data.assets import bundled_model_path

        base_gguf = bundled_model_path()
    with stages(console, "converting the adapter to GGUF (llama.cpp convert_lora_to_gguf.py)"):
        out = export_adapter_gguf(trained / ADAPTER, state["base_dir"], trained / "adapter.gguf")
    # the adapter is served in the prompt format it was trained on (recorded by the export)
    manifest = write_served(trained, base_gguf, out, export_prompt_format(state["config"]["examples"]))
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {manifest}")
    if check:
        from malles_graph.alignment.predictors import ServedModel
        from malles_graph.backends.registry import build_client
        from malles_graph.scenario import BackendConfig

        served = ServedModel.resolve(trained)
        client = build_client(
            BackendConfig(name="local", model=served.model, lora=served.lora, temperature=0.0, max_tokens=48),
            use_cache=False,
        )
        from langchain_core.messages import HumanMessage, SystemMessage

        from malles_graph.alignment.export import read_examples

        example = read_examples(state["config"]["examples"])[0]  # a training prompt: the adapter should answer in form
        kinds = {"system": SystemMessage, "user": HumanMessage}
        reply = client.chat([kinds[m["role"]](content=m["content"]) for m in example.messages[:-1]])
        console.print(
            f"check through the local backend + adapter: answered {reply.text!r}, "
            f"training answer {example.messages[-1]['content']!r}"
        )


@app.command()
def calibrate(
    cases: Annotated[Path, typer.Option(help="validation cases (with truth)")],
    predictions: Annotated[Path, typer.Option(help="the backend's predictions for them (with probs)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="calibration JSON (e.g. MODEL_FOLDER/calibration.json)")],
    method: Annotated[str, typer.Option(help="temperature | stacked | platt | isotonic | none")] = "temperature",
    choice_model: Annotated[Path | None, typer.Option(help="choice-model JSON (needed by 'stacked')")] = None,
) -> None:
    """Fit the calibration f on a validation split and print ECE / log-loss before and after.

    Examples:
      malles align calibrate --cases val.jsonl --predictions preds/val-aligned.jsonl -o runs/align/model/calibration.json
      malles align calibrate --cases val.jsonl --predictions p.jsonl --method stacked --choice-model cm.json -o cal.json
    """
    from rich.table import Table

    from malles_graph.alignment.apply import fit_on_predictions
    from malles_graph.alignment.errors import AlignmentError
    from malles_graph.evaluation.cases import read_cases, read_predictions

    case_list = read_cases(cases)
    preds = read_predictions(predictions, {c.case_id: c for c in case_list})
    cm = None
    if method == "stacked":
        if choice_model is None:
            raise AlignmentError("--method stacked needs --choice-model FILE (fit one with `malles eval fit`)")
        from malles_graph.evaluation.choice_model import ChoiceModel

        cm = ChoiceModel.load(choice_model)
    cal = fit_on_predictions(case_list, preds, method=method, choice_model=cm)
    cal.save(out)
    if cm is not None:
        cm.save(out.parent / "choice_model.json")
    table = Table(title=f"calibration ({method}) on {int(cal.report['fit_n'])} validation cases")
    table.add_column("figure")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for name in ("ece", "classwise_ece", "logloss", "hit1"):
        table.add_row(name, f"{cal.report[f'fit_{name}_before']:.4f}", f"{cal.report[f'fit_{name}_after']:.4f}")
    print_table(console, table)
    console.print(f"wrote {out}")


@app.command()
def reweight(
    cases: Annotated[Path, typer.Option(help="cases whose customers form the simulated population")],
    out: Annotated[Path, typer.Option("--out", "-o", help="weights JSON (raking factor tables)")],
    margins: Annotated[str, typer.Option(help="customer fields to rake on (comma list)")] = "age_group,pin_code",
    predictions: Annotated[Path | None, typer.Option(help="predictions whose demand is aggregated (else truth)")] = None,
) -> None:
    """Rake the simulated population to the real customer base and report aggregate demand error.

    Targets are the shares of each margin among the real purchase lines of the cases' period;
    demand is aggregated per department (first 3 digits of the subclass) and compared with the
    real lines' department shares, with and without the weights.

    Examples:
      malles align reweight --cases test.jsonl -o runs/align/weights.json
    """
    from malles_graph.alignment.population import population_check

    report = population_check(cases, out, [m.strip() for m in margins.split(",") if m.strip()], predictions)
    console.print_json(json.dumps(report))
