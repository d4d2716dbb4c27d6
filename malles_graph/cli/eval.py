"""`malles eval`: build choice cases from real purchases, run methods on them, score and report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from malles_graph.cli.progress import counted, stages
from malles_graph.cli.tables import CsvOpt, JsonOpt, emit, output_format, print_table
from malles_graph.scenario import LLM_BACKENDS, MAX_SEED, format_validation_error

app = typer.Typer(
    help="Evaluate decision makers against real Ta Feng purchases: build cases, run, score, report.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)  # a message is one line when piped, however long its paths

ABLATIONS: dict[str, dict[str, object]] = {
    "no-retrieval": {"decision.retrieval": False},
    "no-z": {"decision.hidden_factors": False},
    "single-agent": {"decision.single_agent": True},
    "no-multi-sampling": {"decision.samples": 1},
}


def writable_out(out: Path, *inputs: Path | None) -> Path:
    """``--out`` checked before any work: a folder or a path through a file is refused (paths.output_file), and so
    is one of the command's own inputs, which writing would overwrite."""
    from malles_graph.evaluation.cases import EvaluationError
    from malles_graph.paths import output_file

    for given in inputs:
        if given is not None and out.resolve() == Path(given).resolve():
            raise EvaluationError(f"--out {out} is also an input ({given}); write to another file")
    return output_file(out)


# ---------------------------------------------------------------------------- build / schema
@app.command()
def build(
    out: Annotated[Path, typer.Option("--out", "-o", help="case file to write (JSON lines)")],
    split: Annotated[
        str, typer.Option(help="preset: 'test' (fit Nov-Jan, cases Feb) or 'train' (fit Nov-Dec, cases Jan)")
    ] = "test",
    fit_start: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="first fit-period day")] = None,
    fit_end: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="last fit-period day")] = None,
    test_start: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="first case day")] = None,
    test_end: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="last case day")] = None,
    n_cases: Annotated[int | None, typer.Option("--n-cases", "-n", help="cases to sample")] = None,
    k: Annotated[int | None, typer.Option("-k", help="candidates per case")] = None,
    seed: Annotated[int | None, typer.Option(help="sampling and shuffling seed")] = None,
    min_baskets: Annotated[int | None, typer.Option(help="baskets a customer needs before the date")] = None,
    sparse_threshold: Annotated[
        int | None, typer.Option(help="fit-period lines below which a subclass is sparse")
    ] = None,
    subclass: Annotated[list[str] | None, typer.Option("--subclass", help="restrict to subclass (repeatable)")] = None,
) -> None:
    """Write choice cases (JSON lines) cut from Ta Feng with a time split.

    Each case: a customer with enough history, on a day they bought a product, offered K
    candidates of the same subclass (the bought one plus seeded draws, shuffled, labelled A, B, ...),
    with features from strictly before the date (except the current price) and the truth.

    Examples:
      malles eval build --out cases/test.jsonl                      # 2,000 Feb-2001 cases
      malles eval build --split train --out cases/train.jsonl       # fit baselines on these
      malles eval build -o cases/small.jsonl -n 200 -k 4 --seed 3 --test-start 2001-02-15
    """
    from malles_graph.evaluation.builder import TEST_SPLIT, TRAIN_SPLIT, SplitConfig, build_cases
    from malles_graph.evaluation.cases import EvaluationError, write_jsonl

    presets = {"test": TEST_SPLIT, "train": TRAIN_SPLIT}
    if split not in presets:
        raise EvaluationError(f"unknown split {split!r}; choose test or train")
    updates: dict[str, Any] = {
        "fit_start": fit_start.date() if fit_start else None,
        "fit_end": fit_end.date() if fit_end else None,
        "test_start": test_start.date() if test_start else None,
        "test_end": test_end.date() if test_end else None,
        "n_cases": n_cases,
        "k": k,
        "seed": seed,
        "min_baskets": min_baskets,
        "sparse_threshold": sparse_threshold,
        "subclasses": subclass or None,
    }
    data = presets[split].model_dump() | {key: v for key, v in updates.items() if v is not None}
    from pydantic import ValidationError

    try:
        cfg = SplitConfig.model_validate(data)
    except ValidationError as exc:
        raise EvaluationError(format_validation_error("malles eval build", exc)) from None
    writable_out(out)
    import time

    start = time.perf_counter()
    with stages(console, "building cases") as say:
        cases = build_cases(cfg, progress=say)
    n = write_jsonl(cases, out)
    sparse = sum(c.sparse for c in cases)
    console.print(
        f"wrote {n} cases to {out} ({sparse} sparse; fit {cfg.fit_start}..{cfg.fit_end}, "
        f"cases {cfg.test_start}..{cfg.test_end}, k={cfg.k}, seed={cfg.seed}) in {time.perf_counter() - start:.1f} s"
    )
    if n < cfg.n_cases:
        console.print(
            f"[yellow]note:[/] only {n} eligible purchases with at least two candidates (asked {cfg.n_cases})"
        )


@app.command()
def schema(
    which: Annotated[str, typer.Argument(help="case | prediction")] = "case",
) -> None:
    """Print the JSON schema of the case or prediction format (generated from the pydantic models).

    Examples:
      malles eval schema case > case.schema.json
      malles eval schema prediction
    """
    from malles_graph.evaluation.cases import schema as make_schema

    typer.echo(json.dumps(make_schema(which), indent=2))


# ---------------------------------------------------------------------------- fit / run
@app.command()
def fit(
    cases: Annotated[Path, typer.Option("--cases", help="training cases (an earlier window than the test cases)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="model file (agent: joblib; choice-model: JSON)")],
    kind: Annotated[str, typer.Option(help="agent (backend `agent`) | choice-model (scenario backend, align)")] = "agent",
    l2: Annotated[float, typer.Option(help="L2 penalty of the conditional logit (choice-model)")] = 1e-2,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="seed of the agent's fits")] = 0,
) -> None:
    """Fit the computed agent (or the scenario choice model) on training cases and save it.

    The agent is fitted with the evidence the decision graph gathers (retrieval from a Chroma
    memory built from the case files, Z), so fitting builds that memory first.

    Examples:
      malles eval fit --cases cases/train.jsonl --out models/agent.joblib
      malles eval run --cases cases/test.jsonl -b agent --model models/agent.joblib --out preds/agent.jsonl
      malles eval fit --kind choice-model --cases cases/train.jsonl --out models/choice_model.json
    """
    from rich.table import Table

    from malles_graph.evaluation.cases import EvaluationError, read_cases, require_choices
    from malles_graph.evaluation.choice_model import ChoiceModel

    writable_out(out, cases)
    if kind == "agent":
        from malles_graph.cli.eval_agent import fit_standalone
        from malles_graph.roles.fitting import check_training

        train_cases = read_cases(cases)
        check_training(train_cases, str(cases))
        with stages(console, "fitting the agent") as say:
            fitted = fit_standalone(train_cases, seed=seed, say=say)
        fitted.meta["trained_on"] = str(cases)
        fitted.save(out)
        console.print(f"agent fitted on {len(train_cases)} cases ({_fit_summary(fitted.meta)}); saved {out}")
        return
    if kind != "choice-model":
        raise EvaluationError(f"unknown --kind {kind!r}; choose agent or choice-model")

    train_cases = read_cases(cases)
    require_choices(train_cases, f"{cases}: the choice model")
    model = ChoiceModel.fit(train_cases, l2=l2)
    model.meta["trained_on"] = str(cases)
    model.save(out)
    table = Table(title=f"choice model ({model.meta['n_cases']} cases, train hit@1 {model.meta['train_hit1']:.3f})")
    table.add_column("utility term")
    table.add_column("coefficient", justify="right")
    for name, value in model.coefficients().items():
        table.add_row(name, f"{value:+.3f}")
    print_table(console, table)
    console.print(f"saved {out}")


def _fit_summary(meta: dict[str, Any]) -> str:
    """The saved agent's settings a user checks, in words (the full record is in the file's meta)."""
    kinds = meta["attributes"]["kinds"]
    attributes = ", ".join(f"{name} ({kind})" for name, kind in kinds.items()) or "none"
    # the decide's own temperature: `temperature` is the logistic stacker's, used only by the no-ranker ablation
    return (
        f"{meta['memory_lines']} memory lines; decide rankers of {meta['ranker_leaves']} leaves, temperature "
        f"{meta['ranker_temperature']:.3f}, {meta['replicas']} vote replicas; quantity {meta['quantity_objective']}; "
        f"attributes {attributes}; seed {meta['seed']}"
    )


def _retriever(memory: Path | None, scenario: Any, cases: Any = ()) -> Any:
    """The Chroma transaction memory for LLM runs: --memory, else the scenario's memory section.

    Without either the graph's retrieve node finds nothing. The memory returns only episodes
    strictly before each case's date, so it cannot leak the truth. It is checked against the
    cases before any decision (``check_memory_covers``).
    """
    if not scenario.decision.retrieval:
        return None
    if memory is None and not (scenario.memory.path or scenario.memory.url):
        return None
    from malles_graph.errors import MallesError

    try:
        from malles_graph.retrieval import ChromaRetriever
    except ImportError as exc:
        raise MallesError(f"retrieval needs the retrieval package: {exc}") from None
    if memory is not None:
        retriever = ChromaRetriever.open(path=memory, collection=scenario.memory.collection)
    else:
        retriever = ChromaRetriever.from_config(scenario.memory)
    check_memory_covers(retriever, cases, str(memory or scenario.memory.path or scenario.memory.url))
    return retriever


def check_memory_covers(retriever: Any, cases: Any, source: str) -> None:
    """A memory must hold episodes of every subclass the cases face and know some of their customers.

    The retrieve node filters to the case's subclass: a memory of other subclasses (or another data
    set) would answer nothing and the run would silently be a no-retrieval run.
    """
    from malles_graph.evaluation.cases import EvaluationError

    subclasses = sorted({c.subclass for c in cases})
    missing = [s for s in subclasses if not retriever.collection.get(where={"subclass": s}, limit=1, include=[])["ids"]]
    if missing:
        raise EvaluationError(
            f"{source}: memory {retriever.where} has no episodes of subclass {missing[0]!r}"
            + (f" (and {len(missing) - 1} more of the cases' {len(subclasses)})" if len(missing) > 1 else "")
            + "; build it for these cases (`malles memory build`) or drop --memory"
        )
    customers = sorted({c.customer.customer_id for c in cases})
    if customers and not any(retriever.knows_customer(c) for c in customers):
        raise EvaluationError(
            f"{source}: memory {retriever.where} knows none of the cases' {len(customers)} customers "
            f"(e.g. customer_id {customers[0]!r}): it was built from other data"
        )


def eval_scenario(backend: str, scenario_file: Path | None, sets: list[str], ablation: list[str]):
    """The scenario an LLM backend runs with: a file or defaults, plus --set and --ablation overrides."""
    from malles_graph.evaluation.cases import EvaluationError
    from malles_graph.scenario import load_scenario, parse_scenario, parse_sets, set_dotted

    overrides: dict[str, object] = {"backend.name": backend}
    for name in ablation:
        if name not in ABLATIONS:
            raise EvaluationError(f"unknown ablation {name!r}; choose from {', '.join(ABLATIONS)}")
        overrides.update(ABLATIONS[name])
    overrides.update(parse_sets(sets))
    if scenario_file is not None:
        return load_scenario(scenario_file, overrides)
    data: dict[str, Any] = {"name": "eval"}
    for key, value in overrides.items():
        set_dotted(data, key, value)
    return parse_scenario(data, "eval defaults + --set")


class LLMPredictor:
    """Runs the decision graph (``malles_graph.graphs.decision.decide_situation``) on each case, one at a time.

    With ``decision.samples`` > 1 the share of votes per product becomes the prediction's
    probabilities, so hit@3 and log-loss are defined for multi-sampled LLM runs too.
    """

    def __init__(self, name: str, scenario: Any, seed: int = 0, retriever: Any = None) -> None:
        from malles_graph.graphs.decision import context_for_scenario, decide_situation

        self.decide = decide_situation
        if retriever is None:  # no memory for these cases: the retrieve node is skipped, nothing is built
            scenario = scenario.model_copy(update={"decision": scenario.decision.model_copy(update={"retrieval": False})})
        # one context for all cases: the LLM client is built once
        self.config, _ = context_for_scenario(scenario, retriever=retriever)
        self.config.seed = seed
        self.name = name

    def predict(self, situations):
        from malles_graph.evaluation.cases import Prediction

        out = []
        for situation in situations:
            result = self.decide(situation, self.config)
            outcome = getattr(result, "outcome", None)
            decision = getattr(result, "decision", None)
            meta = None
            if outcome is not None:
                meta = {
                    "llm_calls": outcome.llm_calls,
                    "prompt_tokens": outcome.prompt_tokens,
                    "completion_tokens": outcome.completion_tokens,
                    "agreement": outcome.agreement,
                }
            if decision is None:
                error = getattr(outcome, "error", None) or "the decision graph returned no decision"
                out.append(Prediction(case_id=situation.situation_id, error=str(error), meta=meta))
                continue
            probs = None
            votes = (outcome.details.get("votes") if outcome is not None else None) or {}
            if isinstance(votes, dict) and sum(votes.values()) > 1:
                total = sum(votes.values())
                probs = {c: votes.get(c, 0) / total for c in situation.candidate_ids}
            out.append(
                Prediction(
                    case_id=situation.situation_id,
                    product_id=decision.product_id,
                    quantity=decision.quantity,
                    probs=probs,
                    meta=meta,
                )
            )
        return out


# The fitted backends that read product attributes: a --train file and a --cases file that disagree on one
# would hand them missing values silently, so the disagreement is refused before the fit.
ATTRIBUTE_READERS = ("agent", "baseline:lgbm")


def check_attributes(train: list[Any], train_path: str, cases: list[Any], cases_path: str) -> None:
    from malles_graph.evaluation.cases import EvaluationError
    from malles_graph.evaluation.features import AttributeSchema

    if problem := AttributeSchema.fit(train).mismatch(cases, f"--train {train_path}"):
        raise EvaluationError(f"{cases_path}: {problem}")


@app.command()
def run(
    cases: Annotated[Path, typer.Option("--cases", help="case file (JSON lines, see `malles eval schema`)")],
    backend: Annotated[str, typer.Option("--backend", "-b", help="see `malles eval backends`")],
    out: Annotated[Path, typer.Option("--out", "-o", help="prediction file (JSON lines)")],
    train: Annotated[Path | None, typer.Option(help="training cases for fitted baselines (earlier window)")] = None,
    model: Annotated[Path | None, typer.Option(help="saved model of a fitted backend (instead of --train)")] = None,
    quantity: Annotated[
        str, typer.Option(help="one | customer-median | product-median | regressor")
    ] = "customer-median",
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="seed of random choices and tie breaks")] = 0,
    resume: Annotated[bool, typer.Option(help="skip case ids already in --out")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N cases")] = None,
    scenario: Annotated[Path | None, typer.Option(help="scenario YAML for LLM backends")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="scenario override key.path=value (LLM backends)")
    ] = None,
    ablation: Annotated[
        list[str] | None,
        typer.Option(help="LLM: no-retrieval | no-z | single-agent | no-multi-sampling (repeatable); "
                     "agent: one of `malles eval backends` agent ablations"),
    ] = None,
    max_failures: Annotated[int, typer.Option(min=1, help="stop after this many failed cases in a row")] = 10,
    memory: Annotated[
        Path | None, typer.Option(help="Chroma transaction memory folder for the retrieve node (LLM backends)")
    ] = None,
) -> None:
    """Run one method on every case and write predictions line by line (flushed; --resume continues).

    Backends: baseline:random|popular|cheapest|discount|history|logit|lgbm, agent (the decision graph
    with computed roles; --train or --model; --ablation switches one mechanism off), and the
    LLM decision graph: local | openai | ollama (scenario options via --scenario, --set, --ablation).

    Examples:
      malles eval run --cases test.jsonl -b baseline:popular -o preds/popular.jsonl
      malles eval run --cases test.jsonl -b baseline:logit --train train.jsonl --quantity regressor -o preds/logit.jsonl
      malles eval run --cases test.jsonl -b agent --train train.jsonl -o preds/agent.jsonl
      malles eval run --cases test.jsonl -b agent --model agent.joblib --ablation no-market -o preds/agent-no-market.jsonl
      malles eval run --cases test.jsonl -b local --limit 20 --ablation no-retrieval -o preds/local-norag.jsonl
      malles eval run --cases test.jsonl -b ollama --set backend.model=qwen2.5:7b --set decision.samples=3 -o p.jsonl --resume
    """
    import malles_graph.alignment.predictors  # noqa: F401  (registers likelihood:local, generate:local)
    from malles_graph.evaluation.cases import read_cases
    from malles_graph.evaluation.predictors import PredictorOptions, make_predictor
    from malles_graph.evaluation.runner import run_predictions

    writable_out(out, cases, train, model)
    all_cases = read_cases(cases)
    if limit is not None:
        all_cases = all_cases[:limit]
    train_cases = read_cases(train) if train and backend not in LLM_BACKENDS else None
    if train_cases is not None and backend in ATTRIBUTE_READERS:
        check_attributes(train_cases, str(train), all_cases, str(cases))
    if backend in LLM_BACKENDS:
        llm_scenario = eval_scenario(backend, scenario, set_ or [], ablation or [])
        predictor: Any = LLMPredictor(backend, llm_scenario, seed=seed, retriever=_retriever(memory, llm_scenario, all_cases))
        batch = 1
    elif backend == "agent":
        from malles_graph.cli.eval_agent import AgentPredictor
        from malles_graph.evaluation.cases import EvaluationError
        from malles_graph.roles.fitting import check_training

        if set_ or scenario or memory:
            console.print("[yellow]note:[/] --scenario/--set/--memory apply to LLM backends; the agent builds its memory")
        if len(ablation or []) > 1:
            raise EvaluationError("backend agent takes one --ablation at a time (each mechanism off in turn)")
        if train_cases is not None:
            check_training(train_cases, str(train))
        with stages(console, "preparing the agent") as say:
            predictor = AgentPredictor(
                train_cases, str(model) if model else None, all_cases, str(cases),
                seed=seed, ablation=(ablation or ["none"])[0], say=say,
            )
        if unused := predictor.agent.unused_attributes(all_cases):
            console.print(
                f"[yellow]note:[/] {cases}: attributes {', '.join(unused)} were not in the training cases; "
                "the agent does not use them"
            )
        batch = 256
    else:
        if set_ or ablation or scenario:
            console.print(f"[yellow]note:[/] --scenario/--set/--ablation apply to LLM backends only, not {backend}")
        options = PredictorOptions(
            train_cases=train_cases,
            quantity=quantity,
            seed=seed,
            model_path=str(model) if model else None,
        )
        predictor = make_predictor(backend, options)
        batch = 256
    done = 0
    if resume:
        from malles_graph.evaluation.cases import done_case_ids

        done = len(done_case_ids(out) & {c.case_id for c in all_cases})
    with counted(console, backend, len(all_cases), done) as advance:
        written, skipped = run_predictions(
            all_cases,
            predictor,
            out,
            resume=resume,
            batch_size=batch,
            on_progress=advance,
            max_consecutive_failures=max_failures,
        )
    if backend == "agent":
        from malles_graph.cli.eval_agent import finish_memories, pending_memories

        if pending_memories():  # written by a second process while the cases ran
            with stages(console, "writing the case memory's Chroma collection"):
                finish_memories()
    console.print(f"wrote {written} predictions to {out}" + (f" (skipped {skipped} already there)" if skipped else ""))


@app.command()
def backends() -> None:
    """List the methods `malles eval run --backend` accepts.

    Example:
      malles eval backends
    """
    from rich.table import Table

    import malles_graph.alignment.predictors  # noqa: F401  (registers likelihood:local, generate:local)
    from malles_graph.evaluation.predictors import backend_names

    table = Table(title="eval backends")
    table.add_column("name")
    table.add_column("what it does")
    for name, text in backend_names().items():
        table.add_row(name, text)
    from malles_graph.cli.eval_agent import AGENT_ABLATIONS

    table.add_row("agent", "the decision graph with computed roles (--train or --model); --ablation: "
                  + ", ".join(a for a in AGENT_ABLATIONS if a != "none"))
    for name in LLM_BACKENDS:
        table.add_row(name, "LLM decision graph (graphs/decision/) with this chat backend")
    print_table(console, table)


# ---------------------------------------------------------------------------- score / stability / report
def _named(files: list[Path], names: list[str] | None) -> dict[str, Path]:
    from malles_graph.evaluation.cases import EvaluationError

    if names and len(names) != len(files):
        raise EvaluationError(f"--name given {len(names)} times for {len(files)} prediction files")
    labels = names or [f.stem for f in files]
    if len(set(labels)) != len(labels):
        labels = [str(f) for f in files]
    return dict(zip(labels, files, strict=True))


@app.command()
def score(
    preds: Annotated[list[Path], typer.Argument(help="prediction file(s)")],
    cases: Annotated[Path, typer.Option("--cases", help="the case file the predictions answer")],
    name: Annotated[list[str] | None, typer.Option("--name", help="method name per file (default: file stem)")] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
    with_stability: Annotated[
        bool, typer.Option("--stability", help="the files are repeated runs of one method: print their agreement")
    ] = False,
) -> None:
    """Score prediction files: hit@1, hit@3, log-loss, quantity MAE/MAPE, coverage; overall and sparse/dense.

    With --stability the files are taken as repeated runs (different seeds) and their agreement is printed.

    Examples:
      malles eval score preds/logit.jsonl --cases test.jsonl
      malles eval score preds/*.jsonl --cases test.jsonl --json > scores.json
      malles eval score preds/*.jsonl --cases test.jsonl --csv > scores.csv
      malles eval score run-s0.jsonl run-s1.jsonl run-s2.jsonl --cases test.jsonl --stability
    """
    from rich.table import Table

    from malles_graph.evaluation.cases import read_cases, read_predictions
    from malles_graph.evaluation.metrics import score as score_fn
    from malles_graph.evaluation.report import fmt, rich_table

    form = output_format(as_json, as_csv)
    case_list = read_cases(cases)
    by_id = {c.case_id: c for c in case_list}
    runs = {label: read_predictions(path, by_id) for label, path in _named(preds, name).items()}
    results = [score_fn(case_list, p, label) for label, p in runs.items()]
    overall = rich_table(results, title=f"scores on {cases} ({len(case_list)} cases)")
    detail = Table(title="sparse / dense detail")
    for col in ("method", "split", "n", "hit@1", "hit@3", "logloss", "MAE", "cover", "missing", "invalid"):
        detail.add_column(col, justify="left" if col in ("method", "split") else "right", overflow="fold")
    for r in results:
        for split, g in (("sparse", r.sparse), ("dense", r.dense)):
            detail.add_row(
                r.name, split, str(g.n), fmt(g.hit1), fmt(g.hit3), fmt(g.logloss), fmt(g.mae), fmt(g.coverage),
                str(g.n_missing), str(g.n_invalid),
            )  # fmt: skip
    emit(console, [overall, detail], form, results)
    if with_stability and form == "table":
        _print_stability(case_list, runs)


def _print_stability(case_list, runs) -> None:
    from rich.table import Table

    from malles_graph.evaluation.metrics import stability as stability_fn

    s = stability_fn(case_list, runs)
    table = Table(title=f"stability of {len(runs)} runs on {s.n_cases} cases")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("pairwise product agreement", f"{s.pairwise_product_agreement:.3f}")
    table.add_row("pairwise product+quantity agreement", f"{s.pairwise_quantity_agreement:.3f}")
    table.add_row("modal share", f"{s.modal_share:.3f}")
    for figure, spread in s.spread.items():
        if spread.mean is not None:
            value = f"{spread.mean:.3f} +- {spread.sd:.3f} ({spread.low:.3f} to {spread.high:.3f})"
            table.add_row(f"{figure} mean +- sd (range)", value)
    print_table(console, table)


@app.command()
def stability(
    preds: Annotated[list[Path], typer.Argument(help="two or more prediction files (runs with different seeds)")],
    cases: Annotated[Path, typer.Option("--cases", help="the case file the predictions answer")],
) -> None:
    """Agreement of repeated runs: pairwise product agreement, modal share, hit@1 spread.

    Example:
      malles eval stability preds/local-s0.jsonl preds/local-s1.jsonl preds/local-s2.jsonl --cases test.jsonl
    """
    from malles_graph.evaluation.cases import read_cases, read_predictions

    case_list = read_cases(cases)
    by_id = {c.case_id: c for c in case_list}
    runs = {label: read_predictions(path, by_id) for label, path in _named(preds, None).items()}
    _print_stability(case_list, runs)


@app.command()
def report(
    preds: Annotated[list[Path], typer.Argument(help="prediction files, one per method")],
    cases: Annotated[Path, typer.Option("--cases", help="the case file the predictions answer")],
    out: Annotated[Path, typer.Option("--out", "-o", help="report folder")] = Path("eval-report"),
    name: Annotated[list[str] | None, typer.Option("--name", help="method name per file (default: file stem)")] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="run name to compare every other run with (paired bootstrap 95% CI): the ablation table"),
    ] = None,
) -> None:
    """Compare methods side by side; write report.md, report.html, scores.json and plots into a folder.

    Plots: hit@1 per subclass-size bucket (95% intervals), quantity error distribution (matplotlib, Agg).
    With --reference, a table of what each other run loses against the reference, on all cases and on
    the sparse subset, with paired bootstrap 95% intervals (the ablation table of the agent).

    Examples:
      malles eval report preds/*.jsonl --cases test.jsonl --out reports/feb
      malles eval report a.jsonl b.jsonl --name logit --name local --cases test.jsonl
      malles eval report ablations/*.jsonl --cases test.jsonl --reference agent --out reports/ablations
    """
    from malles_graph.evaluation.cases import read_cases, read_predictions
    from malles_graph.evaluation.report import effects_rich_table, rich_table, write_report

    case_list = read_cases(cases)
    by_id = {c.case_id: c for c in case_list}
    runs = {label: read_predictions(path, by_id) for label, path in _named(preds, name).items()}
    scores, paths, effect_list = write_report(case_list, runs, out, cases_source=str(cases), reference=reference)
    print_table(console, rich_table(scores, title=f"methods on {cases} ({len(case_list)} cases)"))
    if reference:
        print_table(console, effects_rich_table(effect_list, reference))
    console.print("wrote " + ", ".join(str(p) for p in paths))
