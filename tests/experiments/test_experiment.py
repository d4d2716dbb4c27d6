"""Prompt experiments: a real difference in the prompt wording is detected, identical sets show none,
role insight reads the debate, and the folder resumes and rescores without LLM calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from malles_graph.cli.eval import eval_scenario
from malles_graph.cli.prompt_experiment import _prepare, graph_decide
from malles_graph.errors import PromptError
from malles_graph.experiments.insight import stated_preference
from malles_graph.experiments.report import markdown, write_report
from malles_graph.experiments.running import run_experiment
from malles_graph.experiments.scoring import ExperimentResult, score_experiment
from malles_graph.experiments.store import load_predictions, open_experiment, predictions_path, read_manifest
from malles_graph.experiments.variants import ExperimentError
from tests.experiments.scripted import WORD, prompt_folder, scripted_client, write_cases

SETS = ["decision.debate_rounds=1", "decision.hidden_factors=false"]


def run(
    tmp: Path,
    folders: list[Path],
    n: int = 24,
    samples: int = 1,
    resume: bool = False,
    stop_after: int | None = None,
    out: Path | None = None,
    parallel: int = 1,
) -> tuple[ExperimentResult, Path, int]:
    cases_file = tmp / "cases.jsonl"
    if not cases_file.exists():
        write_cases(cases_file, n)
    manifest, cases, variants = _prepare(folders, cases_file, n, 0, samples, "local", SETS, None)
    out = out or tmp / "exp"
    open_experiment(out, manifest, resume)
    client, _ = scripted_client()
    decide = graph_decide(eval_scenario("local", None, SETS, []), client=client)
    answered = [0]

    def stop() -> bool:
        return stop_after is not None and answered[0] >= stop_after

    run_experiment(
        out,
        manifest,
        cases,
        variants,
        decide,
        should_stop=stop,
        parallel=parallel,
        on_answer=lambda *_: answered.__setitem__(0, answered[0] + 1),
    )
    return score_experiment(manifest, cases, load_predictions(out, manifest, cases)), out, answered[0]


def test_a_word_in_decide_txt_is_detected(tmp_path: Path) -> None:
    ref, thrifty = prompt_folder(tmp_path / "ref"), prompt_folder(tmp_path / "thrifty", WORD)
    result, out, _ = run(tmp_path, [ref, thrifty])
    by_name = {r.name: r for r in result.rows}
    assert by_name["ref"].hit1 == pytest.approx(6 / 24)  # picks A: right on the 6 cases bought A
    assert by_name["thrifty"].hit1 == pytest.approx(18 / 24)  # picks the cheapest C
    diff = result.differences[0]
    assert diff.hit1 == pytest.approx(0.5)
    assert diff.hit1_low > 0  # the interval excludes 0
    assert (diff.wins, diff.losses) == (18, 6)
    assert diff.sign_p < 0.05
    # tokens per role: the debate roles and decide all spoke, and the longer decide.txt costs more prompt tokens
    ref_roles, thr_roles = result.roles["ref"], result.roles["thrifty"]
    assert {"product_specialist", "price_analyst", "persona", "decide"} <= set(ref_roles)
    assert thr_roles["decide"].tokens.prompt_tokens > ref_roles["decide"].tokens.prompt_tokens
    # the roles always prefer A: they agree with ref's decisions and never with thrifty's
    assert (ref_roles["persona"].stated, ref_roles["persona"].agreed) == (24, 24)
    assert (thr_roles["persona"].stated, thr_roles["persona"].agreed) == (24, 0)
    assert ref_roles["decide"].latency_s > 0 and ref_roles["decide"].llm_calls == 3 * 24  # local: 3 samples
    assert by_name["thrifty"].logloss < by_name["ref"].logloss  # the vote shares are probabilities
    paths = write_report(result, out)
    text = paths[0].read_text(encoding="utf-8")
    assert "| thrifty - ref | 24 | +0.500 [" in text and "product_specialist" in text
    assert "<svg" in paths[1].read_text(encoding="utf-8")


def test_identical_sets_show_no_difference(tmp_path: Path) -> None:
    a, b = prompt_folder(tmp_path / "a", WORD), prompt_folder(tmp_path / "b", WORD)
    result, _, _ = run(tmp_path, [a, b], n=12)
    diff = result.differences[0]
    assert (diff.hit1, diff.hit1_low, diff.hit1_high) == (0.0, 0.0, 0.0)
    assert (diff.wins, diff.losses, diff.sign_p) == (0, 0, 1.0)
    assert result.rows[0].digest == result.rows[1].digest


def test_parallel_variants_give_the_same_answers(tmp_path: Path) -> None:
    ref, thrifty = prompt_folder(tmp_path / "ref"), prompt_folder(tmp_path / "thrifty", WORD)
    one, out_one, _ = run(tmp_path, [ref, thrifty], n=6, out=tmp_path / "one")
    two, out_two, _ = run(tmp_path, [ref, thrifty], n=6, out=tmp_path / "two", parallel=2)
    assert [r.hit1 for r in one.rows] == [r.hit1 for r in two.rows] == [2 / 6, 4 / 6]
    for name in ("ref", "thrifty"):
        ids = [line[:40] for line in predictions_path(out_two, name, 0).read_text().splitlines()]
        assert ids == [line[:40] for line in predictions_path(out_one, name, 0).read_text().splitlines()]


def test_interrupted_run_resumes_and_rescoring_needs_no_llm(tmp_path: Path) -> None:
    ref, thrifty = prompt_folder(tmp_path / "ref"), prompt_folder(tmp_path / "thrifty", WORD)
    first, out, answered = run(tmp_path, [ref, thrifty], n=8, samples=2, stop_after=5)
    assert answered == 6 and first.n_paired == 3  # a case's variants are answered together: stops paired
    with pytest.raises(ExperimentError, match="pass --resume"):
        run(tmp_path, [ref, thrifty], n=8, samples=2)
    done, _, answered = run(tmp_path, [ref, thrifty], n=8, samples=2, resume=True)
    assert answered == 2 * 8 * 2 - 6
    assert done.n_paired == 8 and done.rows[1].stability == 1.0
    lines = predictions_path(out, "thrifty", 1).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 8  # nothing answered twice
    manifest = read_manifest(out)
    from malles_graph.experiments.store import load_cases

    cases = load_cases(manifest)
    again = score_experiment(manifest, cases, load_predictions(out, manifest, cases))  # from disk only
    assert markdown(again) == markdown(done)


def test_resume_refuses_another_setup(tmp_path: Path) -> None:
    ref, thrifty = prompt_folder(tmp_path / "ref"), prompt_folder(tmp_path / "thrifty", WORD)
    run(tmp_path, [ref, thrifty], n=4)
    (thrifty / "decide.txt").write_text((thrifty / "decide.txt").read_text().replace(WORD, "FRUGAL"))
    with pytest.raises(ExperimentError, match="variants differs"):
        run(tmp_path, [ref, thrifty], n=4, resume=True)


def test_repairs_are_counted(tmp_path: Path) -> None:
    ref, garble = prompt_folder(tmp_path / "ref"), prompt_folder(tmp_path / "garble", "GARBLE")
    result, _, _ = run(tmp_path, [ref, garble], n=4)
    assert [r.repair_rate for r in result.rows] == [0.0, 1.0]
    assert [r.failure_rate for r in result.rows] == [0.0, 0.0]
    assert result.roles["garble"]["decide"].retries == 3 * 4  # each of the 3 samples repaired once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I prefer B, it is cheaper than A.", "pB"),
        ("A good choice here: product C offers the best value.", "pC"),
        ("B is the best value; A costs more.", "pB"),
        ("All three are fine for a weekly shop.", None),
        ("A, B and C are similar.", None),
        ("I would buy nothing today.", "none"),
    ],
)
def test_stated_preference(text: str, expected: str | None) -> None:
    assert stated_preference(text, {"A": "pA", "B": "pB", "C": "pC"}) == expected


def test_bad_input_is_refused_before_any_call(tmp_path: Path) -> None:
    ref = prompt_folder(tmp_path / "ref")
    cases_file = write_cases(tmp_path / "cases.jsonl", 5)
    with pytest.raises(ExperimentError, match="two variants named 'ref'"):
        _prepare([ref, ref], cases_file, None, 0, 1, "local", [], None)
    with pytest.raises(ExperimentError, match=r"cases.jsonl: 5 cases, fewer than --limit 6"):
        _prepare([ref, prompt_folder(tmp_path / "b")], cases_file, 6, 0, 1, "local", [], None)
    broken = prompt_folder(tmp_path / "broken")
    (broken / "persona.txt").unlink()
    with pytest.raises(PromptError, match=r"broken/persona.txt: prompt file not found"):
        _prepare([ref, broken], cases_file, None, 0, 1, "local", [], None)
    (broken / "persona.txt").write_text((ref / "persona.txt").read_text().replace("{style}", "{stlye}"))
    with pytest.raises(PromptError, match=r"broken/persona.txt: unknown variable\(s\) \['stlye'\]"):
        _prepare([ref, broken], cases_file, None, 0, 1, "local", [], None)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    ref = prompt_folder(tmp_path / "ref")
    cases_file = write_cases(tmp_path / "cases.jsonl", 3)
    code = (
        "import typer\nfrom malles_graph.cli.errors import run_app\n"
        "from malles_graph.cli.prompt_experiment import experiment\n"
        "app = typer.Typer()\napp.command('experiment')(experiment)\napp.command('other')(lambda: None)\nrun_app(app)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "experiment", str(ref), str(ref), "--cases", str(cases_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: two variants named 'ref'")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 2  # rich may wrap once


def test_unsaved_texts_are_what_the_decision_records(tmp_path: Path) -> None:
    """The TUI's editor experiment answers with unsaved buffers: the decision records their digest, not the disk's."""
    from malles_graph.experiments.variants import Variant
    from malles_graph.prompt_sets import load_prompt_set, set_of_texts
    from tests.experiments.scripted import cases

    saved = load_prompt_set(prompt_folder(tmp_path / "ref"))
    edited = set_of_texts(saved.folder, {**saved.texts, "decide": saved.texts["decide"] + f"\n{WORD}\n"})
    assert edited.digest != saved.digest
    client, _ = scripted_client()
    decide = graph_decide(eval_scenario("local", None, SETS, []), client=client)
    case = cases(1)[0]
    on_disk = decide(case.situation(), Variant("saved", saved), 0)
    unsaved = decide(case.situation(), Variant("edited", edited), 0)
    assert on_disk.outcome.details["prompt_set"] == saved.digest
    assert unsaved.outcome.details["prompt_set"] == edited.digest
