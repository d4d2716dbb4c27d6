"""`malles prompts experiment`: paired A/B runs of prompt sets and persona files on real purchase cases.

Also home of :func:`graph_decide`, the one place an experiment's decision is made with the
decision graph (the TUI editor's Experiment action uses it too); the core's
``malles_graph.experiments`` never imports the graphs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from malles_graph.cli.tables import CsvOpt, JsonOpt, emit, output_format
from malles_graph.scenario import MAX_SEED

console = Console()


def graph_decide(scenario: Any, client: Any = None, retriever: Any = None) -> Any:
    """An experiments ``Decide`` running the decision graph of ``scenario`` with each variant's prompts.

    One LLM client serves every variant (built once); each variant gets its own context whose
    prompt templates are parsed from the set's texts, so unsaved editor buffers run as they are.
    """
    from malles_graph.experiments.running import Answer
    from malles_graph.graphs.decision import context_for_scenario, decide_situation, label_of, with_prompt_set

    if retriever is None:  # no memory for these cases: the retrieve node is skipped, nothing is built
        scenario = scenario.model_copy(update={"decision": scenario.decision.model_copy(update={"retrieval": False})})
    base, _ = context_for_scenario(scenario, client, retriever=retriever)
    contexts: dict[str, Any] = {}

    def decide(situation, variant, seed):
        if variant.name not in contexts:
            contexts[variant.name] = with_prompt_set(base, variant.prompts, variant.templates())
        ctx = replace(contexts[variant.name], seed=seed)  # the parsed templates are shared, not copied
        result = decide_situation(situation, ctx)
        labels = {label: pid for pid, label in label_of(situation).items()}
        return Answer(outcome=result.outcome, decision=result.decision, labels=labels)

    return decide


def experiment(
    variants: Annotated[
        list[str] | None,
        typer.Argument(
            help="variants, the first is the reference (not needed with --rescore): a prompt FOLDER, a "
            "persona FILE.yaml (with the default prompts) or FOLDER:FILE.yaml",
            show_default=False,
            metavar="VARIANT",
        ),
    ] = None,
    cases: Annotated[Path | None, typer.Option("--cases", help="case file (JSON lines, `malles eval build`)")] = None,
    limit: Annotated[int | None, typer.Option(help="only the first N cases (the file must hold at least N)")] = None,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="decision seed; repeat k uses seed + k")] = 0,
    samples: Annotated[
        int,
        typer.Option(
            min=1,
            help="repeated answers per case (seed, seed+1, ...), reported as stability; the "
            "graph's own multi-sampling is --set decision.samples=N",
        ),
    ] = 1,
    backend: Annotated[str, typer.Option("--backend", "-b", help="LLM backend: local | openai | ollama")] = "local",
    set_: Annotated[list[str] | None, typer.Option("--set", help="scenario override key.path=value")] = None,
    name: Annotated[
        list[str] | None,
        typer.Option(
            "--name",
            help="variant names, one per variant, in order (default: the "
            "folder's name, the persona file's stem, or folder+stem)",
        ),
    ] = None,
    memory: Annotated[
        Path | None, typer.Option(help="Chroma transaction memory for the retrieve node (else retrieval is off)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="experiment folder (default experiments/A-vs-B)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue the experiment in --out (same set-up)")] = False,
    rescore: Annotated[
        bool, typer.Option(help="rewrite the report of --out from its predictions, no LLM call")
    ] = False,
    max_failures: Annotated[
        int, typer.Option(min=1, help="stop after this many failed cases in a row of one variant")
    ] = 10,
    parallel: Annotated[
        int,
        typer.Option(
            min=1,
            help="variants of a case answered at once (the local server batches them; "
            "its slots are backend.max_concurrency)",
        ),
    ] = 1,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Run prompt sets or persona files on the same cases, paired, and report which decides more like the real customers.

    Every variant answers every case with the same backend and seed. A
    variant is a prompt FOLDER, a persona FILE.yaml (with the default
    prompts) or FOLDER:FILE.yaml. With a persona file each case is answered
    as the file's persona closest to the real customer (same age group
    first, then same area; else the earlier persona): its text goes to the
    persona prompts, its style to the decision, and the persona set's digest
    is recorded next to the prompt set's. Every folder and persona file is
    checked before any LLM call.

    The report (report.md, report.html with a plot, result.json in --out)
    gives per variant hit@1, hit@3, log-loss (when the graph multi-samples),
    quantity MAE, failure and repair rates, tokens and latency; each
    variant's paired difference from the first with a bootstrap 95% interval
    and a sign test; and per role the tokens, latency and stated-preference
    agreement. Predictions stay in --out: --resume continues a stopped run,
    --rescore rewrites the report without LLM calls.

    Examples:
      malles prompts experiment prompts/ mine/ --cases test.jsonl --limit 20
      malles prompts experiment prompts/ terse/ --cases test.jsonl -o exp1 \\
          --set decision.debate_rounds=1
      malles prompts experiment prompts/ terse/ --cases t.jsonl -o exp1 --resume
      malles prompts experiment --rescore -o exp1
      malles prompts experiment retail_households.yaml mine.yaml \\
          --cases t.jsonl --limit 20
      malles prompts experiment prompts/ prompts/:mine.yaml --cases t.jsonl
    """
    from malles_graph.experiments.report import difference_table, role_table, variant_table, write_report
    from malles_graph.experiments.scoring import score_experiment
    from malles_graph.experiments.store import load_cases, load_predictions, open_experiment, read_manifest
    from malles_graph.experiments.variants import ExperimentError

    form = output_format(as_json, as_csv)
    if rescore:
        if out is None:
            raise ExperimentError("--rescore needs --out, the experiment folder to rescore")
        manifest = read_manifest(out)
        case_list = load_cases(manifest, cases)
    else:
        if not variants:
            raise ExperimentError(
                "give at least two variants: prompt folders or persona files (the first is the reference)"
            )
        if cases is None:
            raise ExperimentError("--cases is required: a case file from `malles eval build`")
        manifest, case_list, chosen = _prepare(variants, cases, limit, seed, samples, backend, set_ or [], name)
        out = out or Path("experiments") / "-vs-".join(v.name for v in chosen)
        scenario = _scenario(backend, set_ or [])
        open_experiment(out, manifest, resume)
        _run(out, manifest, case_list, chosen, scenario, memory, max_failures, parallel)
    result = score_experiment(manifest, case_list, load_predictions(out, manifest, case_list))
    paths = write_report(result, out)
    emit(
        console,
        [
            _rich(t, title)
            for t, title in (
                (variant_table(result), "variants"),
                (difference_table(result), f"difference from {manifest.variants[0].name} (paired, bootstrap 95% CI)"),
                (role_table(result), "per role"),
            )
        ],
        form,
        result.model_dump(mode="json"),
    )
    if form == "table":
        console.print(f"report: {paths[0]}, {paths[1]}")


def _prepare(specs, cases_file, limit, seed, samples, backend, sets, names):
    """Every check before any LLM call: the variants (folders and persona files), the case file and --limit."""
    from malles_graph.evaluation.cases import read_cases
    from malles_graph.experiments.store import Manifest
    from malles_graph.experiments.variants import ExperimentError, load_variants
    from malles_graph.scenario import LLM_BACKENDS

    if backend not in LLM_BACKENDS:
        raise ExperimentError(f"backend {backend!r} does not use prompts; choose one of {', '.join(LLM_BACKENDS)}")
    chosen = load_variants(list(specs), names)
    case_list = read_cases(cases_file)
    if limit is not None:
        if limit < 1:
            raise ExperimentError(f"--limit {limit}: give a positive number of cases")
        if len(case_list) < limit:
            raise ExperimentError(f"{cases_file}: {len(case_list)} cases, fewer than --limit {limit}")
        case_list = case_list[:limit]
    manifest = Manifest.of(cases_file, case_list, backend, sets, seed, samples, chosen)
    return manifest, case_list, chosen


def _scenario(backend: str, sets: list[str]) -> Any:
    from malles_graph.cli.eval import eval_scenario

    return eval_scenario(backend, None, sets, [])


def _run(out, manifest, case_list, chosen, scenario, memory, max_failures, parallel) -> None:
    from malles_graph.cli.eval import _retriever
    from malles_graph.cli.progress import counted, stages
    from malles_graph.evaluation.cases import done_case_ids
    from malles_graph.experiments.running import run_experiment
    from malles_graph.experiments.store import predictions_path

    with stages(console, "loading the backend"):
        decide = graph_decide(scenario, retriever=_retriever(memory, scenario))
    total = manifest.repeats * len(case_list) * len(chosen)
    ids = {c.case_id for c in case_list}
    done = sum(
        len(done_case_ids(predictions_path(out, v.name, k)) & ids) for v in chosen for k in range(manifest.repeats)
    )
    with counted(console, "answering", total, done) as advance:
        run_experiment(
            out,
            manifest,
            case_list,
            chosen,
            decide,
            max_consecutive_failures=max_failures,
            parallel=parallel,
            on_answer=lambda *_: advance(1),
        )


def _rich(table: tuple[list[str], list[list[str]]], title: str):
    from rich.table import Table

    header, rows = table
    out = Table(title=title)
    for i, column in enumerate(header):
        out.add_column(column, justify="left" if i < 2 else "right", overflow="fold")
    for row in rows:
        out.add_row(*row)
    return out
