"""Benchmark of the evaluation: 2,000 test cases, every baseline, and the agent (the decision graph).

    python benchmarks/bench_eval.py                      # baselines + the agent, timed
    python benchmarks/bench_eval.py --ablations          # also every mechanism off in turn (+ CI table)
    python benchmarks/bench_eval.py --llm-cases 5        # also the `local` LLM graph on 5 cases
    python benchmarks/bench_eval.py --llm-cases 3 --llm-mode debate --out bench.md
    python benchmarks/bench_eval.py --cv 3                # only: the agent's CV within the training month
    python benchmarks/bench_eval.py --temporal 0          # only: a date split within the training month
    python benchmarks/bench_eval.py --transfer            # only: fitted on Dec 2000, scored on Jan 2001

`--cv K` is where the agent's choices are made: K folds of the training cases grouped by customer,
each fold's agent fitted on the others and scored on it with retrieval and the market signal on
and off, the memory holding what it would at test time (the fitted lines and the held-out cases'
baskets, never a held-out truth). The test month is not read.

`--temporal T` simulates the test month inside the training month: the agent is fitted on two
thirds of the customers' cases before the middle date and scored on the other third's (T = 0, 1, 2)
cases from that date on, as Feb is scored after the January fit. Past truths are past data at prediction time
(the January truths precede Feb), so it compares a memory of baskets only with one that also holds
the fitted cases' truths at prediction time, and at fitting and prediction time.

`--transfer` is the whole Jan -> Feb protocol one month earlier, so the test month stays unread:
the agent and the two best baselines (`--quantity regressor`) are fitted on December's cases
(fit period November) and scored on the January training cases (fit period November-December),
as `malles eval fit` / `eval run` would do it. It has 5,000 scored cases against Feb's 2,000, a
shift of month and a longer history at scoring time, as Feb has.

The agent row is `malles eval run -b agent`: fitted once (`--model`), then the decision graph runs
every case (retrieval from the Chroma memory built from the case files, Z, three computed roles,
decide, the vote). "graph 2,000 cases" times that batch (the target is under 60 s).

Training cases come from the earlier window (fit Nov-Dec 2000, cases Jan 2001); test cases
from the default split (fit Nov 2000-Jan 2001, cases Feb 2001). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from rich.console import Console

from malles_graph.evaluation.builder import TEST_SPLIT, TRAIN_SPLIT, build_cases
from malles_graph.evaluation.cases import Prediction, read_cases, write_jsonl
from malles_graph.evaluation.metrics import score
from malles_graph.evaluation.predictors import PredictorOptions, make_predictor
from malles_graph.evaluation.report import effects, effects_markdown, effects_rich_table, markdown_table, rich_table

console = Console(width=160)

METHODS: list[tuple[str, str, str]] = [  # (row name, backend, quantity strategy)
    ("random", "baseline:random", "customer-median"),
    ("popular", "baseline:popular", "customer-median"),
    ("cheapest", "baseline:cheapest", "customer-median"),
    ("discount", "baseline:discount", "customer-median"),
    ("history", "baseline:history", "customer-median"),
    ("logit", "baseline:logit", "customer-median"),
    ("lgbm-ranker", "baseline:lgbm", "customer-median"),
    ("logit + qty one", "baseline:logit", "one"),
    ("logit + qty product-median", "baseline:logit", "product-median"),
    ("logit + qty regressor", "baseline:logit", "regressor"),
    ("lgbm + qty regressor", "baseline:lgbm", "regressor"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-cases", type=int, default=2000)
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--llm-cases", type=int, default=0, help="run the local LLM graph on this many test cases")
    parser.add_argument("--llm-mode", choices=["single-agent", "debate"], default="single-agent")
    parser.add_argument("--out", type=Path, help="also write the tables as markdown")
    parser.add_argument("--ablations", action="store_true", help="run the agent with each mechanism off in turn")
    parser.add_argument("--cache", type=Path, default=Path(".bench-eval"), help="folder of built cases and fits")
    parser.add_argument("--cv", type=int, default=0, help="only the agent's K-fold CV within the training cases")
    parser.add_argument(
        "--temporal",
        type=int,
        default=-1,
        help="only a date split within the training cases (customer third 0, 1 or 2)",
    )
    parser.add_argument("--transfer", action="store_true", help="only: fitted on Dec 2000 cases, scored on Jan 2001")
    args = parser.parse_args()
    if args.transfer:
        args.cache.mkdir(parents=True, exist_ok=True)
        earlier = cached_cases(args.cache / f"dec-{args.n_train}.jsonl", DEC_SPLIT, args.n_train)
        later = cached_cases(args.cache / f"train-{args.n_train}.jsonl", TRAIN_SPLIT, args.n_train)
        rows, lines = transfer_check(earlier, later, args.cache)
        console.print(rich_table(rows, title=f"fitted on {len(earlier)} Dec cases, scored on {len(later)} Jan cases"))
        for line in lines:
            console.print(line)
        return
    if args.temporal >= 0:
        args.cache.mkdir(parents=True, exist_ok=True)
        train = cached_cases(args.cache / f"train-{args.n_train}.jsonl", TRAIN_SPLIT, args.n_train)
        rows, title = temporal_check(train, args.temporal)
        console.print(rich_table(rows, title=title))
        return
    if args.cv:
        args.cache.mkdir(parents=True, exist_ok=True)
        train = cached_cases(args.cache / f"train-{args.n_train}.jsonl", TRAIN_SPLIT, args.n_train)
        console.print(
            rich_table(training_cv(train, args.cv), title=f"agent, {args.cv}-fold CV of {len(train)} training cases")
        )
        return

    args.cache.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    test = cached_cases(args.cache / f"test-{args.n_cases}.jsonl", TEST_SPLIT, args.n_cases)
    t_test = time.perf_counter() - t
    t = time.perf_counter()
    train = cached_cases(args.cache / f"train-{args.n_train}.jsonl", TRAIN_SPLIT, args.n_train)
    t_train = time.perf_counter() - t
    console.print(
        f"built {len(test)} test cases in {t_test:.1f} s ({sum(c.sparse for c in test)} sparse), "
        f"{len(train)} training cases in {t_train:.1f} s"
    )

    situations = [c.situation() for c in test]
    scores, timings = [], {}
    for row, backend, quantity in METHODS:
        t = time.perf_counter()
        predictor = make_predictor(backend, PredictorOptions(train_cases=train, quantity=quantity, seed=0))
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        preds = predictor.predict(situations)
        timings[row] = (fit_s, time.perf_counter() - t)
        scores.append(score(test, preds, row))
    console.print(rich_table(scores, title=f"baselines on {len(test)} Ta Feng test cases (Feb 2001)"))
    for row, (fit_s, pred_s) in timings.items():
        console.print(f"  {row:28s} fit {fit_s:6.2f} s   predict {pred_s:6.2f} s")

    agent_rows, runs, lines = run_agent(train, test, args.cache, args.ablations)
    scores += agent_rows
    console.print(rich_table(scores, title=f"baselines and the agent on {len(test)} Ta Feng test cases (Feb 2001)"))
    for line in lines:
        console.print(line)
    md = [
        f"# bench_eval: {len(test)} test cases, {len(train)} training cases",
        "",
        markdown_table(scores),
        "",
        *lines,
    ]
    if args.ablations:
        table = effects(test, runs, "agent")
        console.print(effects_rich_table(table, "agent"))
        md += ["", effects_markdown(table, "agent")]

    if args.llm_cases:
        md += ["", *llm_subset(test[: args.llm_cases], train, args.llm_mode)]
    if args.out:
        args.out.write_text("\n".join(md) + "\n", encoding="utf-8")
        console.print(f"wrote {args.out}")


DEC_SPLIT = TRAIN_SPLIT.model_copy(  # Jan -> Feb one month earlier: fit period Nov, cases Dec
    update={"fit_end": dt.date(2000, 11, 30), "test_start": dt.date(2000, 12, 1), "test_end": dt.date(2000, 12, 31)}
)


def transfer_check(earlier, later, cache: Path):
    """The agent and the best baselines fitted on ``earlier`` cases, scored on ``later`` ones."""
    situations = [c.situation() for c in later]
    rows = []
    for row, backend, quantity in METHODS[-2:]:  # lgbm and logit, each with the regressor
        predictor = make_predictor(backend, PredictorOptions(train_cases=earlier, quantity=quantity, seed=0))
        rows.append(score(later, predictor.predict(situations), row))
    agent_rows, _, lines = run_agent(earlier, later, cache, False, tag="dec")
    return agent_rows + rows, lines


def cached_cases(path: Path, split, n: int):
    """Built cases, read from ``path`` when an earlier run wrote them (building takes a while)."""
    if path.exists():
        return read_cases(path)
    cases = build_cases(split.model_copy(update={"n_cases": n}))
    write_jsonl(cases, path)
    return cases


def run_agent(train, test, cache: Path, ablations: bool, tag: str = "jan"):
    """Fit the agent once, then run the decision graph on every test case (and each ablation)."""
    from malles_graph.cli.eval_agent import AGENT_ABLATIONS, AgentPredictor

    model = cache / f"agent-{tag}-{len(train)}.joblib"
    lines = []
    t = time.perf_counter()
    if not model.exists():
        AgentPredictor(train, None, test[:1], "bench", save_to=str(model))
        lines.append(f"agent fit (memory build + graph evidence + role fits): {time.perf_counter() - t:.1f} s")
    rows, runs = [], {}
    for ablation in AGENT_ABLATIONS if ablations else ["none"]:
        t = time.perf_counter()
        predictor = AgentPredictor(None, str(model), test, "bench", ablation=ablation)
        ready = time.perf_counter() - t
        t = time.perf_counter()
        preds = predictor.predict([c.situation() for c in test])
        elapsed = time.perf_counter() - t
        name = predictor.name
        runs[name] = preds
        rows.append(score(test, preds, name))
        lines.append(
            f"{name}: load + memory {ready:.1f} s; graph {len(test):,} cases {elapsed:.1f} s "
            f"({1000 * elapsed / len(test):.1f} ms per case)"
        )
    return rows, runs, lines


CV_VARIANTS = {  # name: (graph context overrides, agent mechanism switches)
    "agent": ({}, {}),
    "agent:no-retrieval": ({"retrieval": False}, {}),
    "agent:no-market": ({}, {"market": False}),
    "agent:no-ranker": ({}, {"ranker": False}),
}


def training_cv(train, folds: int):
    """The agent's grouped K-fold CV within the training cases (retrieval and market on and off)."""
    from sklearn.model_selection import GroupKFold

    from malles_graph.cli.eval_agent import case_memory, fit_agent
    from malles_graph.roles.memory import PopulationMemory

    held_all, preds = [], {name: [] for name in CV_VARIANTS}
    splits = GroupKFold(n_splits=folds).split(train, groups=[c.customer.customer_id for c in train])
    for k, (tr, te) in enumerate(splits):
        fit_cases, held = [train[i] for i in tr], [train[i] for i in te]
        lines = PopulationMemory.case_lines([*fit_cases, *held])  # baskets only, as at test time
        retriever = case_memory(lines, [*held, *fit_cases], lambda _m: None)
        agent = fit_agent(fit_cases, retriever, seed=0).with_memory(held)
        for name, p in predict_variants(agent, retriever, held, CV_VARIANTS).items():
            preds[name] += p
        held_all += held
        console.print(f"fold {k + 1}/{folds} done")
    return [score(held_all, p, name) for name, p in preds.items()]


def temporal_check(train, third: int):
    """Fit on two thirds of the customers before the middle date; score the other third from that date on."""
    from dataclasses import replace

    from malles_graph.cli.eval_agent import case_memory, fit_agent
    from malles_graph.roles.memory import PopulationMemory

    days = sorted(c.date for c in train)
    cut = days[len(days) // 2]
    customers = sorted({c.customer.customer_id for c in train})
    scored_customers = set(customers[third::3])  # every third customer id: deterministic
    fit_cases = [c for c in train if c.date < cut and c.customer.customer_id not in scored_customers]
    held = [c for c in train if c.date >= cut and c.customer.customer_id in scored_customers]
    baskets = PopulationMemory.case_lines([*fit_cases, *held])
    truths = PopulationMemory.truth_lines(fit_cases)  # all before `cut`: past data for every scored case
    plain = case_memory(baskets, [*held, *fit_cases], lambda _m: None)
    with_truths = case_memory([*baskets, *truths], [*held, *fit_cases], lambda _m: None)
    variants = {"agent": ({}, {}), "agent:no-ranker": ({}, {"ranker": False})}
    rows = []
    agent = fit_agent(fit_cases, plain, seed=0)
    for tag, memory, a in (
        ("baskets", plain, agent),
        (
            "baskets; past truths at prediction",
            with_truths,
            replace(agent, memory_lines=[*agent.memory_lines, *truths]),
        ),
        ("past truths at fit and prediction", with_truths, fit_agent(fit_cases, with_truths, 0, extra_lines=truths)),
    ):
        for name, p in predict_variants(a.with_memory(held), memory, held, variants).items():
            rows.append(score(held, p, f"{name} ({tag})"))
    title = (
        f"agent fitted on {len(fit_cases)} cases before {cut:%d %b %Y}, scored on {len(held)} cases "
        f"of other customers from {cut:%d %b} on"
    )
    return rows, title


def predict_variants(agent, retriever, held, variants) -> dict[str, list[Prediction]]:
    """The agent's predictions for ``held`` under each (graph context, mechanism) variant."""
    import numpy as np
    from malles_graph.graphs.decision import make_context

    from malles_graph.cli.eval_agent import DEFAULTS, graph_evidence

    situations = [c.situation() for c in held]
    out = {}
    for name, (overrides, switches) in variants.items():
        evidence = graph_evidence(make_context({**DEFAULTS, "seed": 0, **overrides}, retriever=retriever))
        ev = [evidence(s) for s in situations]
        a = agent.with_mechanisms(**switches)
        p, off = a.probabilities(situations, a.opinions_many(situations, ev), ev)
        probs = [p[off[i] : off[i + 1]] for i in range(len(situations))]
        units = a.quantity_for(situations, probs)
        out[name] = [
            Prediction(
                case_id=s.situation_id,
                product_id=s.candidate_ids[int(np.argmax(pr))],
                quantity=q,
                probs=dict(zip(s.candidate_ids, map(float, pr), strict=True)),
            )
            for s, pr, q in zip(situations, probs, units, strict=True)
        ]
    return out


def llm_subset(subset, train, mode: str) -> list[str]:
    """The `local` LLM decision graph on a few cases, next to baselines on the same cases."""
    try:
        import malles_graph.graphs.decision  # noqa: F401
    except ImportError as exc:
        console.print(f"[yellow]graphs/decision.py not available ({exc}); LLM row skipped[/]")
        return [f"LLM row skipped: {exc}"]
    from malles_graph.cli.eval import LLMPredictor, eval_scenario

    ablation = ["single-agent"] if mode == "single-agent" else []
    sets = ["backend.max_tokens=96", "backend.cache=false"]
    predictor = LLMPredictor("local", eval_scenario("local", None, sets, ablation), seed=0)
    preds: list[Prediction] = []
    t = time.perf_counter()
    for case in subset:
        start = time.perf_counter()
        try:
            pred = predictor.predict([case.situation()])[0]
        except Exception as exc:  # recorded as a miss, as `eval run` does
            pred = Prediction(case_id=case.case_id, error=f"{type(exc).__name__}: {exc}")
        preds.append(pred.model_copy(update={"elapsed_s": time.perf_counter() - start}))
        answer = f"{pred.product_id} x{pred.quantity}" if pred.product_id else f"failed: {pred.error}"
        console.print(f"  local {case.case_id}: {answer} ({time.perf_counter() - start:.0f} s)")
    elapsed = time.perf_counter() - t
    rows = [score(subset, preds, f"local LLM ({mode}, SmolLM2-135M)")]
    for row, backend, quantity in (
        ("popular", "baseline:popular", "customer-median"),
        ("logit", "baseline:logit", ""),
    ):
        p = make_predictor(backend, PredictorOptions(train_cases=train, quantity=quantity or "customer-median"))
        rows.append(score(subset, p.predict([c.situation() for c in subset]), row))
    title = f"local LLM vs baselines on the first {len(subset)} test cases ({elapsed / len(subset):.0f} s per case)"
    console.print(rich_table(rows, title=title))
    return [f"## {title}", "", markdown_table(rows)]


if __name__ == "__main__":
    main()
