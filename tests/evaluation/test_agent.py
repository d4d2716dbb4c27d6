"""The computed agent on a case file from another domain: a generated household brand-choice panel.

Four detergent brands with price, in-store display, feature advertising and pack size; each
household's choice follows a true utility that depends on them (and on its own last brand). The
agent is fitted and scored through the documented case format with no code change, and must
use the attributes: stripped of them, the same agent does clearly worse.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import joblib
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from malles_graph.evaluation.cases import ChoiceCase, EvaluationError, Prediction, read_cases, write_jsonl
from malles_graph.evaluation.features import segment_softmax
from malles_graph.evaluation.metrics import paired_effect, score
from malles_graph.roles.agent import ROLES, AgentModelError, ComputedAgent, no_evidence
from malles_graph.roles.fitting import RANKER_SEEDS

BRANDS = {"tide": 0.6, "ariel": 0.3, "omo": 0.0, "store": -0.4}
PACK = {"tide": 2.0, "ariel": 1.5, "omo": 1.0, "store": 3.0}
START = dt.date(2001, 1, 1)


def panel(n_households: int, weeks: range, seed: int, attributes: bool = True) -> list[ChoiceCase]:
    """One purchase per household-week; utility = brand + price + 1.5 display + 1.0 feature + loyalty."""
    rng = np.random.default_rng(seed)
    names = list(BRANDS)
    cases = []
    for h in range(n_households):
        last: list[tuple[dt.date, str, int, float]] = []
        for week in weeks:
            day = START + dt.timedelta(days=7 * week + h % 7)
            regular = {b: 4.0 + 0.5 * i for i, b in enumerate(names)}
            display = {b: int(rng.random() < 0.25) for b in names}
            feature = {b: int(rng.random() < 0.2) for b in names}
            price = {b: round(regular[b] * (0.75 if rng.random() < 0.3 else 1.0), 2) for b in names}
            u = np.array(
                [
                    BRANDS[b]
                    - 2.5 * math.log(price[b])
                    + 1.5 * display[b]
                    + 1.0 * feature[b]
                    + (0.8 if last and last[0][1] == b else 0.0)
                    for b in names
                ]
            )
            p = np.exp(u - u.max())
            choice = names[int(rng.choice(len(names), p=p / p.sum()))]
            qty = 1 + int(rng.poisson(0.3 * PACK[choice]))
            if len(last) >= 2:  # enough history to be a case
                candidates = [
                    {
                        "product_id": b,
                        "subclass": "detergent",
                        "price": price[b],
                        "regular_price": regular[b],
                        "popularity": 0.25,
                        "label": "ABCD"[i],
                        "attributes": (
                            {"display": display[b], "feature": feature[b], "pack_kg": PACK[b], "brand": b}
                            if attributes
                            else {}
                        ),
                    }
                    for i, b in enumerate(names)
                ]
                baskets = [
                    {
                        "date": d.isoformat(),
                        "items": [{"product_id": b, "subclass": "detergent", "quantity": q, "unit_price": pr}],
                    }
                    for d, b, q, pr in last[:3]
                ]
                history: dict[str, dict] = {}
                for d, b, q, pr in reversed(last):
                    row = history.setdefault(
                        b, {"times_bought": 0, "total_quantity": 0, "last_date": None, "mean_price_paid": pr}
                    )
                    row["times_bought"] += 1
                    row["total_quantity"] += q
                    row["last_date"] = d.isoformat()
                cases.append(
                    ChoiceCase.model_validate(
                        {
                            "case_id": f"h{h}-w{week}",
                            "date": day.isoformat(),
                            "customer": {"customer_id": f"h{h}", "n_baskets": len(last), "mean_quantity": 1.5},
                            "subclass": "detergent",
                            "candidates": candidates,
                            "recent_baskets": baskets,
                            "own_history": history,
                            "truth_product_id": choice,
                            "truth_quantity": qty,
                        }
                    )
                )
            last.insert(0, (day, choice, qty, price[choice]))
    return cases


def batch_scores(agent: ComputedAgent, cases: list[ChoiceCase]) -> tuple[float, float]:
    """hit@1 and log-loss of the agent's decide over the cases (the graph's computation, batched)."""
    agent = agent.with_memory(cases)
    situations = [c.situation() for c in cases]
    evidence = [no_evidence(s) for s in situations]
    p, offsets = agent.probabilities(situations, agent.opinions_many(situations, evidence), evidence)
    hits, losses = [], []
    for i, c in enumerate(cases):
        pi = p[offsets[i] : offsets[i + 1]]
        k = c.candidate_ids.index(c.truth_product_id)
        hits.append(float(np.argmax(pi) == k))
        losses.append(-math.log(pi[k]))
    return float(np.mean(hits)), float(np.mean(losses))


@pytest.fixture(scope="module")
def panels() -> dict[str, list[ChoiceCase]]:
    return {
        "train": panel(60, range(0, 12), seed=1),
        "test": panel(60, range(12, 18), seed=2),
        "train_bare": panel(60, range(0, 12), seed=1, attributes=False),
        "test_bare": panel(60, range(12, 18), seed=2, attributes=False),
    }


def test_agent_uses_the_attributes_of_another_domain(panels):
    with_attrs = ComputedAgent.fit(panels["train"], replicas=2, seed=0)
    bare = ComputedAgent.fit(panels["train_bare"], replicas=2, seed=0)
    assert set(with_attrs.attributes.kinds) == {"display", "feature", "pack_kg", "brand"}
    assert with_attrs.attributes.kinds["brand"] == "text" and with_attrs.attributes.kinds["display"] == "number"
    hit, loss = batch_scores(with_attrs, panels["test"])
    hit_bare, loss_bare = batch_scores(bare, panels["test_bare"])
    # display and feature move utility by 1.0-1.5: an agent that reads them must do clearly better
    assert hit > hit_bare + 0.05, (hit, hit_bare)
    assert loss < loss_bare - 0.05, (loss, loss_bare)


def test_same_seed_same_agent(panels):
    a = ComputedAgent.fit(panels["train"][:200], replicas=2, seed=3)
    b = ComputedAgent.fit(panels["train"][:200], replicas=2, seed=3)
    assert batch_scores(a, panels["test"][:50]) == batch_scores(b, panels["test"][:50])


def test_ranker_decide_replicas_and_a_silent_roles_slice(panels):
    """The vote draws bootstrap replicas of the decide ranker; a role that does not speak leaves its
    raw slice missing (NaN) in the ranker's rows, not only its opinion."""
    agent = ComputedAgent.fit(panels["train"][:200], replicas=3, seed=0).with_memory(panels["test"][:20])
    assert len(agent.rankers) == agent.replicas == 3
    situations = [c.situation() for c in panels["test"][:20]]
    evidence = [no_evidence(s) for s in situations]
    full = agent.raw_rows(situations, evidence)
    silent = agent.raw_rows(situations, evidence, roles=("product_specialist", "persona"))
    lost = np.isnan(silent).all(axis=0) & ~np.isnan(full).all(axis=0)
    assert lost.sum() == np.asarray(agent.role_features("price_analyst", situations[0], [], None)).shape[1]
    opinions = agent.opinions_many(situations, evidence)
    first, _ = agent.probabilities(situations, opinions, evidence, member=0)
    second, _ = agent.probabilities(situations, opinions, evidence, member=1)
    assert not np.allclose(first, second)
    stacker, _ = agent.with_mechanisms(ranker=False).probabilities(situations, opinions, evidence)
    assert not np.allclose(first, stacker)


def test_decide_is_the_mean_of_a_seed_ensemble(panels):
    """The decide averages rankers fitted with different random states (one ranker's choices move
    with its subsampling); each vote replica is one bootstrap ranker."""
    agent = ComputedAgent.fit(panels["train"][:200], replicas=2, seed=0).with_memory(panels["test"][:20])
    ensemble, *replicas = agent.rankers
    assert len(ensemble) == RANKER_SEEDS > 1 and [len(r) for r in replicas] == [1]
    situations = [c.situation() for c in panels["test"][:20]]
    evidence = [no_evidence(s) for s in situations]
    opinions = agent.opinions_many(situations, evidence)
    offsets = np.concatenate([[0], np.cumsum([len(s.candidates) for s in situations])])
    market = np.concatenate([agent.market_column(s) for s in situations])
    shared, _ = agent.design(opinions, market, offsets, [s.subclass for s in situations], ROLES)
    X = np.column_stack([shared.toarray(), agent.raw_rows(situations, evidence)])
    scores = np.array([m.booster_.predict(X) for m in ensemble])
    assert not np.allclose(scores[0], scores[1])  # the members differ
    p, _ = agent.probabilities(situations, opinions, evidence)
    assert np.allclose(p, segment_softmax(scores.mean(axis=0) / agent.ranker_temperature, offsets))


def test_the_graph_accepts_the_units_its_agent_was_fitted_on_above_max_quantity(panels):
    """The decision graph's max_quantity (100) guards against an LLM's garbage; an agent fitted on orders
    of 120 units and more answers them, and the graph must not record its every answer as a failure."""
    from malles_graph.graphs.decision.api import decide_situation, make_context

    big = [c.model_copy(update={"truth_quantity": 120 * c.truth_quantity}) for c in panels["train"][:300]]
    test = panels["test"][:8]
    agent = ComputedAgent.fit(big, replicas=2, seed=0).with_memory(test)
    ctx = make_context({"backend": {"name": "choice-model"}, "retrieval": False})
    ctx.choice_model = agent
    assert ctx.max_quantity == 100 < 120 <= agent.max_units == ctx.quantity_limit
    results = [decide_situation(c.situation(), ctx) for c in test]
    assert [r.outcome.error for r in results] == [None] * len(test)
    assert all(r.decision is not None and r.decision.quantity % 120 == 0 for r in results)


def test_saved_agent_refuses_cases_of_another_kind(panels, tmp_path: Path):
    agent = ComputedAgent.fit(panels["train"][:200], replicas=1)
    path = tmp_path / "agent.joblib"
    agent.save(path)
    loaded = ComputedAgent.load(path)
    assert batch_scores(loaded, panels["test"][:40]) == batch_scores(agent, panels["test"][:40])
    assert loaded.memory_lines == agent.memory_lines  # saved as columns, read back as the same lines
    older = joblib.load(path)  # 0.5.4 and before saved the list of lines itself
    older["state"]["memory_lines"] = agent.memory_lines
    joblib.dump(older, tmp_path / "older.joblib")
    assert ComputedAgent.load(tmp_path / "older.joblib").memory_lines == agent.memory_lines
    texty = [
        c.model_copy(
            update={
                "candidates": [
                    p.model_copy(update={"attributes": {**p.attributes, "display": "yes"}}) for p in c.candidates
                ]
            }
        )
        for c in panels["test"][:3]
    ]
    with pytest.raises(AgentModelError, match=r"feb\.jsonl: attribute 'display' is text in the cases but a number in the agent's training cases"):
        loaded.check_cases(texty, "feb.jsonl")
    with pytest.raises(AgentModelError, match=r"feb\.jsonl: the cases carry none of the product attributes .* another kind of data"):
        loaded.check_cases(panels["test_bare"][:3], "feb.jsonl")
    greener = [  # an attribute the training cases lacked: accepted, and named as unused
        c.model_copy(
            update={
                "candidates": [p.model_copy(update={"attributes": {**p.attributes, "eco": 1.0}}) for p in c.candidates]
            }
        )
        for c in panels["test"][:3]
    ]
    loaded.check_cases(greener, "feb.jsonl")
    assert loaded.unused_attributes(greener) == ["eco"]
    assert loaded.unused_attributes(panels["test"][:3]) == []
    (tmp_path / "junk.joblib").write_bytes(b"not a model")
    with pytest.raises(AgentModelError, match=r"junk\.joblib: not a saved computed agent \(joblib cannot read it: "):
        ComputedAgent.load(tmp_path / "junk.joblib")
    with pytest.raises(AgentModelError, match=r"gone\.joblib: agent model file not found \(fit one with `malles eval fit"):
        ComputedAgent.load(tmp_path / "gone.joblib")


def test_case_file_with_an_attribute_of_two_types_is_refused(panels, tmp_path: Path):
    rows = [c.model_dump(mode="json") for c in panels["test"][:3]]
    rows[2]["candidates"][1]["attributes"]["display"] = "yes"
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(
        EvaluationError,
        match=r"cases\.jsonl:3: candidates\.ariel\.attributes\.display: text 'yes', "
        r"but a number at line 1",
    ):
        read_cases(path)


def test_cli_runs_the_graph_agent_on_the_panel_and_reports_ablations(panels, tmp_path: Path):
    from malles_graph.cli.eval import app

    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    write_jsonl(panels["train"][:150], train)
    write_jsonl(panels["test"][:20], test)
    runner = CliRunner()
    model = tmp_path / "agent.joblib"
    result = runner.invoke(app, ["fit", "--cases", str(train), "--out", str(model)])
    assert result.exit_code == 0, result.output
    for ablation in ("none", "vote"):
        out = tmp_path / ("agent.jsonl" if ablation == "none" else f"agent-{ablation}.jsonl")
        result = runner.invoke(
            app,
            ["run", "--cases", str(test), "-b", "agent", "--model", str(model), "--ablation", ablation, "-o", str(out)],
        )
        assert result.exit_code == 0, result.output
    preds = [json.loads(line) for line in (tmp_path / "agent.jsonl").read_text().splitlines()]
    assert len(preds) == 20 and all(p["error"] is None and p["quantity"] >= 1 for p in preds)
    assert all(abs(sum(p["probs"].values()) - 1) < 1e-3 for p in preds)  # the vote's mean probabilities
    assert all(sum(p["meta"]["votes"].values()) == 1 for p in preds)  # one sample by default
    voted = [json.loads(line) for line in (tmp_path / "agent-vote.jsonl").read_text().splitlines()]
    assert all(sum(p["meta"]["votes"].values()) == 5 for p in voted)  # five stacker replicas voted
    result = runner.invoke(
        app,
        [
            "report",
            str(tmp_path / "agent.jsonl"),
            str(tmp_path / "agent-vote.jsonl"),
            "--cases",
            str(test),
            "--reference",
            "agent",
            "--out",
            str(tmp_path / "rep"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "agent-vote" in (tmp_path / "rep" / "report.md").read_text()
    # piped, the effects table is as wide as its rows: each run's effect and interval on one line
    effect_row = [line for line in result.output.splitlines() if "│ agent-vote" in line and "│ all" in line]
    assert len(effect_row) == 1 and effect_row[0].count("[") == 3 and effect_row[0].count("]") == 3
    # a saved agent and cases of another kind: one line naming the file and the field, exit 2, nothing written
    rows = [json.loads(line) for line in test.read_text().splitlines()]
    for row in rows:
        for cand in row["candidates"]:
            cand["attributes"]["feature"] = "yes" if cand["attributes"]["feature"] else "no"
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "malles_graph.cli",
            "eval",
            "run",
            "--cases",
            str(other),
            "-b",
            "agent",
            "--model",
            str(model),
            "-o",
            str(tmp_path / "never.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "other.jsonl: attribute 'feature' is text in the cases but a number in the agent's training cases" in (
        done.stdout + done.stderr
    )
    assert "Traceback" not in done.stderr and not (tmp_path / "never.jsonl").exists()


def test_paired_effect_signs_and_interval():
    cases = panel(20, range(0, 6), seed=5)
    truth = [
        Prediction(
            case_id=c.case_id,
            product_id=c.truth_product_id,
            quantity=c.truth_quantity,
            probs={p: (0.7 if p == c.truth_product_id else 0.1) for p in c.candidate_ids},
        )
        for c in cases
    ]
    wrong = [
        Prediction(
            case_id=c.case_id,
            product_id=next(p for p in c.candidate_ids if p != c.truth_product_id),
            quantity=c.truth_quantity + 1,
            probs={p: 0.25 for p in c.candidate_ids},
        )
        for c in cases
    ]
    effect = paired_effect(cases, truth, wrong, "off")
    assert effect.hit1 == 1.0 and effect.hit1_low == 1.0
    assert effect.logloss == pytest.approx(math.log(0.25 / 0.7) * -1, rel=1e-3) and effect.logloss_low > 0
    assert effect.mae == 1.0
    assert score(cases, truth).overall.hit1 == 1.0


def test_memory_holds_baskets_never_a_case_truth(panels):
    """At test time no truth is known, so the memory never holds one when fitting either (the same
    evidence density in both): a household's last purchase is a truth no later basket carries."""
    from malles_graph.roles.memory import PopulationMemory

    cases = panels["train"]
    lines = {(ln.customer_id, ln.day) for ln in PopulationMemory.case_lines(cases)}
    baskets = {(c.customer.customer_id, b.date.toordinal()) for c in cases for b in c.recent_baskets}
    assert lines == baskets
    last = {c.customer.customer_id: c for c in cases}  # cases are in week order per household
    assert all((h, c.date.toordinal()) not in lines for h, c in last.items())


def test_agent_of_an_older_format_is_refused_with_a_clear_error(tmp_path: Path):
    import joblib

    old = tmp_path / "old.joblib"
    joblib.dump({"format": "malles-computed-agent/4", "state": {}}, old)
    with pytest.raises(AgentModelError, match=r"old\.joblib: format 'malles-computed-agent/4' is not .*refit"):
        ComputedAgent.load(old)
    from malles_graph.roles.agent import FORMAT

    odd = tmp_path / "odd.joblib"  # the right tag, contents of another build (a field renamed or dropped)
    joblib.dump({"format": FORMAT, "state": {"attributes": {"kinds": {}, "values": {}}, "retired_field": 1}}, odd)
    with pytest.raises(AgentModelError, match=r"odd\.joblib: a computed agent whose contents .*refit"):
        ComputedAgent.load(odd)


def test_cases_without_baskets_fit_and_run_without_a_memory(panels, tmp_path: Path, capsys):
    """A panel that carries only the customers' own history (no recent baskets) has nothing to retrieve:
    the agent fits and answers every case without a memory, instead of failing to build an empty one."""
    from tests.cli.in_process import malles

    def bare(cases: list[ChoiceCase]) -> list[ChoiceCase]:
        return [c.model_copy(update={"recent_baskets": []}) for c in cases]

    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    write_jsonl(bare(panels["train"][:120]), train)
    write_jsonl(bare(panels["test"][:15]), test)
    out = tmp_path / "agent.jsonl"
    done = malles(capsys, "eval", "run", "--cases", str(test), "-b", "agent", "--train", str(train), "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    preds = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(preds) == 15 and all(p["error"] is None and p["product_id"] in BRANDS for p in preds)


def test_training_cases_without_a_choice_are_refused_before_any_work(panels, tmp_path: Path, capsys):
    from tests.cli.in_process import malles

    train = tmp_path / "train.jsonl"
    rows = [c.model_dump(mode="json") for c in panels["train"][:60]]
    for row in rows[5:]:  # 55 of 60 cases offer only the product bought
        row["candidates"] = [p for p in row["candidates"] if p["product_id"] == row["truth_product_id"]]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for args in (
        ["fit", "--cases", str(train), "--out", str(tmp_path / "a.joblib")],
        ["run", "--cases", str(train), "-b", "agent", "--train", str(train), "-o", str(tmp_path / "p.jsonl")],
    ):
        done = malles(capsys, "eval", *args)
        lines = (done.stdout + done.stderr).strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, lines
        assert lines[0] == (
            f"error: {train}: the agent needs at least 20 training cases with two or more candidates, got 5 (of 60 cases)"
        )
    assert not (tmp_path / "a.joblib").exists() and not (tmp_path / "p.jsonl").exists()


def test_a_piped_fit_and_run_tell_their_progress_on_stderr(panels, tmp_path: Path, capsys, monkeypatch):
    """Off a terminal (a log file, CI) rich draws no spinner or bar: each stage and each tenth of the
    cases is a line on stderr, and stdout keeps the result, which reads as words, not a dict."""
    from malles_graph.cli import eval_agent
    from tests.cli.in_process import malles

    monkeypatch.setattr(eval_agent, "memory_folder", lambda: tmp_path / "memories")  # built here, not cached

    train, test, model = tmp_path / "train.jsonl", tmp_path / "test.jsonl", tmp_path / "agent.joblib"
    write_jsonl(panels["train"][:120], train)
    write_jsonl(panels["test"][:30], test)
    done = malles(capsys, "eval", "fit", "--cases", str(train), "--out", str(model))
    assert done.returncode == 0, done.stderr
    stages = [line.rsplit(": ", 1)[0] for line in done.stderr.splitlines()]
    assert stages[0] == "fitting the agent" and "writing the case memory's Chroma collection" == stages[-1], stages
    assert {"retrieving evidence for the training cases", "fitting the persona"} <= set(stages)
    # the memory build counts its episodes inside its stage
    assert re.search(r"^case memory texts embedded: (\d+) of \1 \(100%\) in \d+ s$", done.stderr, re.M), done.stderr
    assert re.fullmatch(
        r"agent fitted on 120 cases \(\d+ memory lines; decide rankers of (15|4) leaves, temperature \d\.\d{3}, "
        r"5 vote replicas; quantity .+; "
        r"attributes brand \(text\), display \(number\), feature \(number\), pack_kg \(number\); seed 0\); "
        rf"saved {re.escape(str(model))}\n",  # one line, however long, when piped
        done.stdout,
    ), done.stdout
    done = malles(capsys, "eval", "run", "--cases", str(test), "-b", "agent", "--model", str(model), "-o", str(tmp_path / "p.jsonl"))
    assert done.returncode == 0, done.stderr
    *_, counted, written = done.stderr.splitlines()  # the run's memory (new) is written to Chroma at the end
    assert counted.startswith("agent: 30 of 30 (100%) in ") and written.startswith("writing the case memory's Chroma")
    assert done.stdout.strip() == f"wrote 30 predictions to {tmp_path / 'p.jsonl'}"


def as_subclass(cases: list[ChoiceCase], subclass: str, tag: str) -> list[ChoiceCase]:
    """The same panel as another subclass: its own products, households and cases."""
    out = []
    for case in cases:
        d = case.model_dump(mode="json")
        d["case_id"] = d["situation_id"] = f"{tag}-{d['case_id']}"
        d["subclass"] = subclass
        d["customer"]["customer_id"] = f"{tag}-{d['customer']['customer_id']}"
        d["truth_product_id"] = f"{tag}-{d['truth_product_id']}"
        for item in [*d["candidates"], *(i for b in d["recent_baskets"] for i in b["items"])]:
            item["product_id"], item["subclass"] = f"{tag}-{item['product_id']}", subclass
        d["own_history"] = {f"{tag}-{p}": row for p, row in d["own_history"].items()}
        out.append(ChoiceCase.model_validate(d))
    return out


def test_a_saved_agents_run_remembers_only_its_cases_subclasses(panels, tmp_path: Path, monkeypatch):
    """The retrieve node searches within the case's subclass, so a run of a saved agent writes only the
    episodes of its cases' subclasses to the memory, and finds the same neighbours as in a memory of
    every line (a fit keeps every line: see in_subclasses)."""
    from malles_graph.graphs.decision import make_context
    from malles_graph.retrieval.store import ChromaRetriever, iter_embeddings

    from malles_graph.cli import eval_agent
    from malles_graph.roles.memory import PopulationMemory, merge_lines

    monkeypatch.setattr(eval_agent, "memory_folder", lambda: tmp_path / "memories")
    train = [*panels["train"][:120], *as_subclass(panels["train"][:120], "softener", "s")]
    test = panels["test"][:20]  # detergent only
    model = tmp_path / "agent.joblib"
    eval_agent.fit_standalone(train).save(model)

    run = eval_agent.AgentPredictor(None, str(model), test, "test.jsonl")
    # searched in its side index at once, while a second process writes the Chroma collection
    assert run.ctx.retriever.collection is None and set(run.ctx.retriever.side_index.columns["subclass"]) == {"detergent"}
    eval_agent.finish_memories()
    stored = []
    for folder in memories(tmp_path):  # the fit's memory and the run's, complete
        chroma = ChromaRetriever.open(path=folder, collection="case_memory")
        assert (folder / "complete").exists() and chroma.count() == chroma.side_index.size
        stored.append(sorted({m["subclass"] for _ids, _v, metas in iter_embeddings(chroma.collection) for m in metas}))
    assert sorted(stored) == [["detergent"], ["detergent", "softener"]]

    lines = merge_lines(run.agent.memory_lines, PopulationMemory.case_lines(test))
    assert {ln.subclass for ln in lines} == {"detergent", "softener"}
    everything = eval_agent.case_memory(lines, test, lambda _m: None)
    situations = [c.situation() for c in test]
    found = {}
    for name, retriever in (("subclass", run.ctx.retriever), ("all", everything)):
        evidence = eval_agent.graph_evidence(make_context({**eval_agent.DEFAULTS, "seed": 0}, retriever=retriever))
        found[name] = [[r.id for r in evidence(s)[0]] for s in situations]
    assert found["subclass"] == found["all"] and sum(map(len, found["all"])) > 0


def test_a_new_memory_embeds_only_the_texts_no_complete_memory_holds(panels, tmp_path: Path, monkeypatch):
    """A text's vector does not depend on the texts embedded with it, so a new case memory takes the
    vectors complete memories hold and embeds only the rest, and its vectors are the same bits as a
    memory embedded from scratch."""
    from malles_graph.retrieval.embedding import MiniLMEmbeddingFunction

    from malles_graph.cli import eval_agent
    from malles_graph.roles.memory import PopulationMemory

    monkeypatch.setattr(eval_agent, "memory_folder", lambda: tmp_path / "memories")
    ef = eval_agent.prewarmed_embedder()
    asked: list[str] = []
    embed = ef.embed
    monkeypatch.setattr(ef, "embed", lambda texts: asked.extend(texts) or embed(texts))
    lines = PopulationMemory.case_lines(panels["train"][:100])
    eval_agent.build_memory(lines, ef)
    eval_agent.finish_memories()
    first = set(asked)
    asked.clear()
    # the same lines and other households' lines with more units: texts the first memory lacks
    bulk = [replace(ln, customer_id=f"{ln.customer_id}-bulk", quantity=ln.quantity + 10) for ln in lines[:50]]
    later = eval_agent.build_memory([*lines, *bulk], ef)
    eval_agent.finish_memories()
    side = later.side_index
    texts = pl.read_parquet(side.folder / "texts.parquet")["text"].to_list()
    assert asked and not first & set(asked) and set(asked) | first >= set(texts)  # only what is new
    assert np.array_equal(side.vectors, MiniLMEmbeddingFunction().embed(texts))  # bit for bit


def memories(tmp_path: Path) -> list[Path]:
    """The case memories' folders (beside each, the lock file of its build)."""
    return [p for p in (tmp_path / "memories").iterdir() if p.is_dir()]


WAITING_BUILDER = """
import pickle, sys
from pathlib import Path
from malles_graph.cli import eval_agent

eval_agent.memory_folder = lambda: Path(sys.argv[1]) / "memories"
lines = pickle.loads(Path(sys.argv[1], "lines.pkl").read_bytes())
memory = eval_agent.build_memory(lines, eval_agent.prewarmed_embedder(), lambda m: print(m, flush=True))
eval_agent.finish_memories()
print("opened from Chroma" if memory.collection is not None else "built its own", flush=True)
"""


def test_a_memory_another_process_is_building_is_waited_for_not_built_again(panels, tmp_path: Path, monkeypatch):
    """Two runs at once on the same new case file: the second waits for the first's memory and opens it
    complete, instead of removing the folder the first is writing and searching and building it again."""
    import pickle

    from malles_graph.cli import eval_agent
    from malles_graph.roles.memory import PopulationMemory

    monkeypatch.setattr(eval_agent, "memory_folder", lambda: tmp_path / "memories")
    lines = PopulationMemory.case_lines(panels["train"][:40])
    (tmp_path / "lines.pkl").write_bytes(pickle.dumps(lines))
    first = eval_agent.build_memory(lines, eval_agent.prewarmed_embedder())  # claimed, not finished
    side = first.side_index.folder / "texts.parquet"
    second = subprocess.Popen(
        [sys.executable, "-c", WAITING_BUILDER, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        said = second.stdout.readline()  # blocks until the second process has met the claim
        assert said.startswith("waiting for another process that is building the case memory"), said
        assert side.exists() and second.poll() is None  # the first's memory is untouched; the second waits
        eval_agent.finish_memories()
        out, err = second.communicate(timeout=300)
    finally:
        second.kill()
    assert second.returncode == 0, err[-2000:]
    assert out.strip() == "opened from Chroma" and "building" not in out  # built once, by the first
    assert side.exists() and (side.parents[2] / "complete").exists() and len(memories(tmp_path)) == 1


def test_an_incomplete_case_memory_is_built_again(panels, tmp_path: Path, monkeypatch):
    """A memory is complete only once its Chroma collection is written; what an interrupted run left
    (here: the marker gone and a stray file) is removed and built again, and lends no vectors."""
    from malles_graph.cli import eval_agent
    from malles_graph.roles.memory import PopulationMemory

    monkeypatch.setattr(eval_agent, "memory_folder", lambda: tmp_path / "memories")
    lines = PopulationMemory.case_lines(panels["train"][:40])
    ef = eval_agent.prewarmed_embedder()
    first = eval_agent.build_memory(lines, ef)
    eval_agent.finish_memories()
    (folder,) = memories(tmp_path)
    (folder / "complete").unlink()
    (folder / "stray").write_text("left by an interrupted run")
    texts = pl.read_parquet(first.side_index.folder / "texts.parquet")["text"].to_list()
    assert eval_agent.embedded_before(texts) == {}  # an incomplete memory lends nothing
    again = eval_agent.build_memory(lines, ef)
    assert not (folder / "stray").exists() and again.collection is None  # rebuilt: Chroma being written
    eval_agent.finish_memories()
    assert (folder / "complete").exists() and len(eval_agent.embedded_before(texts)) == len(texts)
