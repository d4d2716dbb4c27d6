"""Economic alignment end to end on Ta Feng: export -> LoRA SFT -> GGUF adapter -> likelihood scoring
-> calibration f, against the conditional logit and the LightGBM ranker; plus reweighting w.

Usage (defaults fit a shared 2-core CPU; raise them on a bigger machine or a GPU):

    .venv/bin/python benchmarks/bench_alignment.py --out runs/bench-align
    .venv/bin/python benchmarks/bench_alignment.py --n-train 2000 --epochs 2 --n-test 500 --n-val 300

Rows of the table (all on the same test cases, Feb 2001; nothing trains on them):
  baseline:logit / baseline:lgbm   fitted on cases from Jan 2001 (history Nov-Dec 2000)
  zero-shot                        bundled SmolLM2-135M, candidate log-probabilities (llama.cpp)
  aligned                          the same + LoRA adapter trained on exported Jan 2001 examples
  ... + temperature / + stacked    calibration f fitted on separate validation cases (Feb 2001)
Columns: hit@1 overall, on sparse subclasses, on subclasses with no training example (held out
or never drawn), hit@3, quantity MAE, log-loss, top-label ECE.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from malles_graph.alignment.apply import apply_to_predictions, fit_on_predictions, prob_vector  # noqa: E402
from malles_graph.alignment.calibration import expected_calibration_error  # noqa: E402
from malles_graph.evaluation.builder import TEST_SPLIT, TRAIN_SPLIT, build_cases  # noqa: E402
from malles_graph.evaluation.cases import ChoiceCase, Prediction, write_jsonl  # noqa: E402
from malles_graph.evaluation.metrics import score  # noqa: E402


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/bench-align"))
    ap.add_argument("--n-train", type=int, default=64, help="SFT examples exported (Jan 2001)")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lora-layers", type=int, default=8, help="adapt only the top N layers (None: all)")
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--n-test", type=int, default=100, help="test cases (Feb 2001)")
    ap.add_argument("--n-val", type=int, default=50, help="validation cases for calibration (Feb 2001, disjoint)")
    ap.add_argument("--n-baseline-train", type=int, default=2000, help="cases fitting logit/lgbm (Jan 2001)")
    ap.add_argument("--holdout-fraction", type=float, default=0.15)
    ap.add_argument("--n-llm-test", type=int, default=None, help="LLM rows on the first N test cases (all: None)")
    ap.add_argument("--n-llm-val", type=int, default=None, help="LLM calibration on the first N validation cases")
    ap.add_argument("--skip-train", action="store_true", help="reuse <out>/model if it is there")
    return ap.parse_args()


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_predictor(predictor, cases: list[ChoiceCase], path: Path) -> list[Prediction]:
    if path.exists():
        from malles_graph.evaluation.cases import read_predictions

        preds = read_predictions(path)
        if len(preds) == len(cases):
            return preds
    start = time.perf_counter()
    preds = predictor.predict([c.situation() for c in cases])
    write_jsonl(preds, path)
    say(f"{predictor.name}: {len(cases)} cases in {time.perf_counter() - start:.0f}s")
    return preds


def row(name: str, cases: list[ChoiceCase], preds: list[Prediction], unseen: set[str]) -> dict:
    s = score(cases, preds, name)
    by_id = {p.case_id: p for p in preds}
    unseen_cases = [c for c in cases if c.subclass in unseen]
    s_unseen = score(unseen_cases, [by_id[c.case_id] for c in unseen_cases if c.case_id in by_id], name)
    with_probs = [(c, by_id[c.case_id]) for c in cases if c.case_id in by_id and by_id[c.case_id].probs]
    ece = None
    if with_probs:
        probs = [prob_vector(c, p) / max(prob_vector(c, p).sum(), 1e-12) for c, p in with_probs]
        ece = expected_calibration_error(probs, [c.candidate_ids.index(c.truth_product_id) for c, _ in with_probs])
    return {
        "method": name,
        "hit1": s.overall.hit1,
        "hit1_sparse": s.sparse.hit1,
        "n_sparse": s.sparse.n,
        "hit1_unseen": s_unseen.overall.hit1,
        "n_unseen": len(unseen_cases),
        "hit3": s.overall.hit3,
        "mae": s.overall.mae,
        "logloss": s.overall.logloss,
        "ece": ece,
        "coverage": s.overall.coverage,
    }


def main() -> None:
    args = parse()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    # ------------------------------------------------------------ cases
    say("building cases")
    feb = build_cases(TEST_SPLIT.model_copy(update={"n_cases": args.n_val + args.n_test}))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(feb))
    val = [feb[int(i)] for i in order[: args.n_val]]
    test = [feb[int(i)] for i in order[args.n_val :]]
    base_train = build_cases(TRAIN_SPLIT.model_copy(update={"n_cases": args.n_baseline_train}))
    write_jsonl(test, out / "test.jsonl")
    write_jsonl(val, out / "val.jsonl")
    say(f"{len(test)} test, {len(val)} validation, {len(base_train)} baseline-training cases")

    # ------------------------------------------------------------ export + train + serve
    from malles_graph.alignment.export import ExportConfig, export, read_examples

    model_dir = out / "model"
    t0 = time.perf_counter()
    manifest = export(
        ExportConfig(
            split=TRAIN_SPLIT.model_copy(update={"n_cases": 2 * args.n_train, "seed": 11}),
            n_examples=args.n_train,
            holdout_fraction=args.holdout_fraction,
        ),
        out / "data",
    )
    timings["export_s"] = time.perf_counter() - t0
    trained_subclasses = {e.subclass for e in read_examples(out / "data")}
    unseen = {c.subclass for c in test} - trained_subclasses
    say(f"exported {manifest['n_examples']} examples ({manifest['subclasses']} subclasses, "
        f"{len(manifest['holdout_subclasses'])} held out); {len(unseen)} test subclasses unseen in training")

    from malles_graph.alignment.train import TrainConfig, export_adapter_gguf, train, write_served

    if not (args.skip_train and (model_dir / "aligned.json").exists()):
        cfg = TrainConfig(
            examples=str(out / "data"),
            output=str(model_dir),
            epochs=args.epochs,
            max_steps=args.max_steps,
            batch_size=args.batch_size,
            lora_layers=args.lora_layers,
            lora_r=args.lora_r,
            learning_rate=args.lr,
            save_every=10,
        )
        t0 = time.perf_counter()
        last = [0.0]

        def on_step(step: int, total: int, loss: float, tps: float) -> None:
            if time.perf_counter() - last[0] > 60 or step == total:
                last[0] = time.perf_counter()
                eta = (total - step) * (time.perf_counter() - t0) / step
                say(f"train step {step}/{total} loss {loss:.4f} {tps:.1f} tok/s, ETA {eta / 60:.1f} min")

        result = train(cfg, on_step=on_step)
        timings["train_s"] = time.perf_counter() - t0
        say(f"trained {result.steps} steps on {result.examples_seen} examples, {result.tokens} tokens, "
            f"{result.tokens_per_s:.1f} tok/s, loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}")
        state = json.loads((model_dir / "train_state.json").read_text())
        t0 = time.perf_counter()
        adapter = export_adapter_gguf(model_dir / "adapter", state["base_dir"], model_dir / "adapter.gguf")
        from malles_graph.data.assets import bundled_model_path

        write_served(model_dir, bundled_model_path(), adapter, "compact")
        timings["gguf_export_s"] = time.perf_counter() - t0
    train_state = json.loads((model_dir / "train_state.json").read_text())

    # ------------------------------------------------------------ predictions
    from malles_graph.alignment.predictors import LikelihoodPredictor, ServedModel
    from malles_graph.evaluation.choice_model import ChoiceModel
    from malles_graph.evaluation.predictors import PredictorOptions, make_predictor

    options = PredictorOptions(train_cases=base_train, quantity="customer-median")
    preds: dict[str, list[Prediction]] = {}
    all_logit = run_predictor(make_predictor("baseline:logit", options), test, out / "p-logit.jsonl")
    all_lgbm = run_predictor(make_predictor("baseline:lgbm", options), test, out / "p-lgbm.jsonl")
    preds["baseline:logit"], preds["baseline:lgbm"] = all_logit, all_lgbm
    choice_model = ChoiceModel.fit(base_train)

    # the LLM rows may use a prefix of the test/validation cases (scoring costs seconds per case on a busy
    # CPU); every row of the table is then scored on that same prefix
    llm_test = test[: args.n_llm_test] if args.n_llm_test else test
    llm_val = val[: args.n_llm_val] if args.n_llm_val else val
    from concurrent.futures import ThreadPoolExecutor

    def score_model(name: str, served: ServedModel, tag: str) -> tuple[list[Prediction], list[Prediction], float]:
        t0 = time.perf_counter()
        predictor = LikelihoodPredictor(name, served)
        v = run_predictor(predictor, llm_val, out / f"p-{tag}-val-{len(llm_val)}.jsonl")
        t = run_predictor(predictor, llm_test, out / f"p-{tag}-{len(llm_test)}.jsonl")
        return v, t, time.perf_counter() - t0

    # two llama.cpp servers (base, base + adapter) score side by side
    with ThreadPoolExecutor(2) as pool:
        zero_job = pool.submit(score_model, "zero-shot", ServedModel(), "zero")
        aligned_job = pool.submit(score_model, "aligned", ServedModel.resolve(model_dir), "aligned")
        z_val, preds["zero-shot"], timings["score_zero_s"] = zero_job.result()
        a_val, preds["aligned"], timings["score_aligned_s"] = aligned_job.result()
    val = llm_val
    test_all = test
    test = llm_test
    preds = {k: ([p for p in v if p.case_id in {c.case_id for c in test}]) for k, v in preds.items()}
    baseline_all = {name: row(name, test_all, preds_all, unseen) for name, preds_all in
                    (("baseline:logit", all_logit), ("baseline:lgbm", all_lgbm))}

    cal_report = {}
    for base_name, val_preds in (("zero-shot", z_val), ("aligned", a_val)):
        for method in ("temperature", "stacked"):
            cal = fit_on_predictions(val, val_preds, method=method, choice_model=choice_model)
            name = f"{base_name} + {method}"
            preds[name] = apply_to_predictions(
                [c.situation() for c in test], preds[base_name], cal, choice_model
            )
            cal_report[name] = {"temperature": cal.probability.temperature, "coef": cal.probability.coef,
                                "quantity_coef": cal.quantity.coef if cal.quantity else None}
            if base_name == "aligned" and method == "temperature":
                cal.save(model_dir / "calibration.json")

    # ------------------------------------------------------------ table
    rows = [row(name, test, p, unseen) for name, p in preds.items()]
    order_names = ["baseline:logit", "baseline:lgbm", "zero-shot", "zero-shot + temperature", "zero-shot + stacked",
                   "aligned", "aligned + temperature", "aligned + stacked"]
    rows.sort(key=lambda r: order_names.index(r["method"]))

    def f(v, d=3):
        return "-" if v is None else f"{v:.{d}f}"

    header = f"{'method':26s} {'hit@1':>6s} {'sparse':>7s} {'unseen':>7s} {'hit@3':>6s} {'qtyMAE':>7s} " \
             f"{'logloss':>8s} {'ECE':>6s}"
    print("\n" + header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['method']:26s} {f(r['hit1']):>6s} {f(r['hit1_sparse']):>7s} {f(r['hit1_unseen']):>7s} "
              f"{f(r['hit3']):>6s} {f(r['mae']):>7s} {f(r['logloss']):>8s} {f(r['ece']):>6s}")
    for r in baseline_all.values():
        print(f"{r['method'] + ' (all ' + str(len(test_all)) + ')':26s} {f(r['hit1']):>6s} {f(r['hit1_sparse']):>7s} "
              f"{f(r['hit1_unseen']):>7s} {f(r['hit3']):>6s} {f(r['mae']):>7s} {f(r['logloss']):>8s} {f(r['ece']):>6s}")
    n_sparse = rows[0]["n_sparse"]
    print(f"\n{len(test)} test cases ({n_sparse} sparse, {rows[0]['n_unseen']} in subclasses without training "
          f"examples); calibration fitted on {len(val)} validation cases")
    first_share = {
        name: float(np.mean([p.product_id == c.candidate_ids[0] for c, p in zip(test, preds[name], strict=True)]))
        for name in ("zero-shot", "aligned")
    }
    print(f"share of picks that are the first listed candidate: {first_share}")
    print(f"training: {train_state['n_data']} examples, {train_state['steps']} steps, {train_state['tokens']} tokens, "
          f"{train_state['seconds']:.0f}s ({train_state['tokens_per_s']:.1f} tok/s), loss "
          f"{train_state['losses'][0]:.3f} -> {train_state['losses'][-1]:.3f}")
    print(f"timings: {json.dumps({k: round(v) for k, v in timings.items()})}")

    # ------------------------------------------------------------ reweighting on a biased population
    from malles_graph.alignment.population import population_check

    pool = build_cases(TEST_SPLIT.model_copy(update={"n_cases": 1500, "seed": 5}))
    rng = np.random.default_rng(1)
    # a simulated population that over-represents some age groups (as an archetype mix would)
    keep_rate = {g: r for g, r in zip(sorted({c.customer.age_group for c in pool}),
                                      rng.uniform(0.1, 1.0, size=20), strict=False)}
    biased = [c for c in pool if rng.random() < keep_rate[c.customer.age_group]]
    rw_uniform = population_check(None, None, ["age_group", "pin_code"], cases=pool)
    rw_biased = population_check(None, out / "weights.json", ["age_group", "pin_code"], cases=biased)
    print(f"\nreweighting (department demand shares vs all real lines of Feb 2001, TV distance):\n"
          f"  representative sample of {len(pool)} agents: {rw_uniform['demand_error_unweighted']:.4f} unweighted, "
          f"{rw_uniform['demand_error_weighted']:.4f} raked\n"
          f"  age-biased sample of {len(biased)} agents:     {rw_biased['demand_error_unweighted']:.4f} unweighted, "
          f"{rw_biased['demand_error_weighted']:.4f} raked (n_eff {rw_biased['effective_sample_size']:.0f})")
    (out / "results.json").write_text(json.dumps({
        "rows": rows, "baselines_all_test": baseline_all, "timings": timings, "train_state": train_state, "calibration": cal_report,
        "first_candidate_share": first_share, "reweighting": {"representative": rw_uniform, "biased": rw_biased},
        "export": {k: v for k, v in manifest.items() if k != "config"},
    }, indent=2, default=str))
    say(f"wrote {out / 'results.json'}")


if __name__ == "__main__":
    main()
