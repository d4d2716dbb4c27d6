"""Probe the `malles` CLI as a hostile new user would, and print the counts issue 16 asks for.

Each probe runs the real console entry point in a subprocess (what a user types) and is classified:

  clean    the expected refusal: a short `error:` (exit 2), or for `prompts check` / `backends --check` a
           failed check (exit 1) naming the file or the backend, and no traceback
  trace    a Python traceback reached the user
  hang     no answer within the probe's time limit
  accept   exit 0 although the input is bad (a silent wrong accept)
  leak     the planted API key appeared in the output

Families: CLI usage errors, scenario files (tests/fuzz/corpus/scenarios + a folder + a missing file),
--set overrides (tests/fuzz/corpus/sets), prompt folders (one bad file each), eval case and prediction files
(tests/fuzz/corpus/cases, predictions), backends that refuse the key, fail, hang or echo the key (a real
HTTP server on loopback), and a short `malles run` against a backend that refuses the key.

    .venv/bin/python scripts/probe_bad_inputs.py            # all families, two probes at a time
    .venv/bin/python scripts/probe_bad_inputs.py --family cli --jobs 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.core.loopback_llm import loopback_llm  # noqa: E402 - the repository root is on the path first
from tests.evaluation.test_cases import case_dict  # noqa: E402

CORPUS = REPO / "tests" / "fuzz" / "corpus"
KEY = "sk-probePLANTED-0a1b2c3d4e5f6789"


@dataclass
class Probe:
    family: str
    name: str
    args: list[str]
    expect_exit: tuple[int, ...] = (2,)
    must_name: str | None = None  # text the error must contain (a file, a backend); alternatives split by |
    timeout_s: float = 90
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    probe: Probe
    verdict: str
    code: int | None
    seconds: float
    first_line: str


def classify(probe: Probe, code: int | None, output: str, seconds: float) -> Outcome:
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    first = (errors or lines or [""])[0][:160]
    if code is None:
        verdict = "hang"
    elif "Traceback (most recent call last)" in output:
        verdict = "trace"
    elif KEY in output:
        verdict = "leak"
    elif code == 0:
        verdict = "accept"
    elif (
        code in probe.expect_exit
        and (code != 2 or errors)  # a refusal is an `error:` line
        and (probe.must_name is None or any(name in " ".join(output.split()) for name in probe.must_name.split("|")))
    ):
        verdict = "clean"
    else:
        verdict = f"exit {code}"
    return Outcome(probe, verdict, code, seconds, first)


def run(probe: Probe, cwd: Path) -> Outcome:
    env = os.environ | {"COLUMNS": "400", "MALLES_RUNS": str(cwd / "runs")} | probe.env
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "malles_graph.cli", *probe.args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=probe.timeout_s,
        )
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code, output = None, str(exc.stdout or "") + str(exc.stderr or "")
    return classify(probe, code, output, time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------- families
def cli_probes(demo: str) -> list[Probe]:
    cases = {
        "run without a file": ["run"],
        "--seed abc": ["run", demo, "--seed", "abc"],
        "--bogus-opt": ["run", demo, "--bogus-opt"],
        "unknown command": ["nosuchcommand"],
        "--seeds 0": ["run", demo, "--seeds", "0"],
        "--rounds -1": ["run", demo, "--rounds", "-1"],
        "eval run --bogus": ["eval", "run", "--bogus"],
        "show without id": ["show"],
        "export bad format": ["export", "x", "--format", "xml"],
        "decide bad date": ["decide", "--customer", "1", "--date", "yesterday"],
    }
    return [Probe("cli usage", name, args) for name, args in cases.items()]


def scenario_probes(work: Path) -> list[Probe]:
    probes = [
        Probe("scenario files", p.name, ["run", str(p)], must_name=str(p))
        for p in sorted((CORPUS / "scenarios").iterdir())
    ]
    folder = work / "folder.yaml"
    folder.mkdir(exist_ok=True)
    probes.append(Probe("scenario files", "a folder", ["run", str(folder)], must_name=str(folder)))
    probes.append(Probe("scenario files", "missing file", ["run", str(work / "nope.yaml")], must_name="nope.yaml"))
    return probes


def set_probes(demo: str) -> list[Probe]:
    pairs = [line for line in (CORPUS / "sets" / "overrides.txt").read_text().splitlines() if not line.startswith("#")]
    # Refused either as a malformed --set, or by the scenario's validation naming the file and the field.
    return [Probe("--set overrides", pair, ["run", demo, "--set", pair], must_name=f"--set|{demo}") for pair in pairs]


def prompt_probes(work: Path) -> list[Probe]:
    from malles_graph.paths import prompts_dir

    probes = []
    for bad in sorted((CORPUS / "prompts").iterdir()):
        folder = work / f"prompts-{bad.stem}"
        shutil.copytree(prompts_dir(), folder, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
        shutil.copy(bad, folder / "persona.txt")
        probes.append(
            Probe("prompt folders", bad.name, ["prompts", "check", "--dir", str(folder)], (1,), "persona.txt")
        )
    folder = work / "prompts-folder-entry"
    shutil.copytree(prompts_dir(), folder, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    (folder / "persona.txt").unlink()
    (folder / "persona.txt").mkdir()
    probes.append(
        Probe(
            "prompt folders", "persona.txt is a folder", ["prompts", "check", "--dir", str(folder)], (1,), "is a folder"
        )
    )
    probes.append(
        Probe("prompt folders", "missing folder", ["prompts", "check", "--dir", str(work / "none")], (2,), "none")
    )
    return probes


def eval_probes(work: Path) -> list[Probe]:
    cases = work / "cases.jsonl"
    cases.write_text("\n".join(json.dumps(case_dict(f"c{i}")) for i in range(2)) + "\n")
    preds = work / "preds.jsonl"
    preds.write_text(json.dumps({"case_id": "c0", "product_id": "p1", "quantity": 1}) + "\n")
    probes = [
        Probe("eval files", f"cases/{p.name}", ["eval", "score", str(preds), "--cases", str(p)], must_name=str(p))
        for p in sorted((CORPUS / "cases").iterdir())
    ]
    probes += [
        Probe("eval files", f"predictions/{p.name}", ["eval", "score", str(p), "--cases", str(cases)], must_name=str(p))
        for p in sorted((CORPUS / "predictions").iterdir())
    ]
    probes.append(
        Probe(
            "eval files",
            "case file is a folder",
            ["eval", "score", str(preds), "--cases", str(work)],
            must_name=str(work),
        )
    )
    return probes


def backend_probes(work: Path, servers: dict[str, str]) -> list[Probe]:
    env = {"OPENAI_API_KEY": KEY}
    probes = []
    for mode in ("401", "500", "echo"):
        args = ["backends", "--check", "--backend", "openai", "--base-url", servers[mode], "--model", "loopback"]
        probes.append(Probe("backends", f"--check, server answers {mode}", args, (1,), "openai", env=env))
    hung = work / "hung.yaml"
    hung.write_text(
        f"name: hung\nbackend: {{name: openai, base_url: '{servers['hang']}', model: loopback, timeout_s: 2, call_retries: 1}}\n"
    )
    probes.append(
        Probe(
            "backends",
            "--check, server hangs (timeout_s 2)",
            ["backends", "--check", "--scenario", str(hung)],
            (1,),
            "timed out",
            120,  # process start-up is most of it; the two attempts cost 2 x timeout_s
            env,
        )
    )
    run401 = work / "run401.yaml"
    run401.write_text(
        "name: run401\n"
        f"backend: {{name: openai, base_url: '{servers['401']}', model: loopback, timeout_s: 5}}\n"
        "population: {n_customers: 40, archetypes: 2}\nenvironment: {n_candidates: 3, start_date: 2001-02-01}\n"
        "mean_field: {max_rounds: 1}\ndecision: {debate_rounds: 1, retrieval: false, hidden_factors: false}\n"
    )
    probes.append(Probe("backends", "run against a 401 server", ["run", str(run401)], (1, 2), "401", 180, env))
    return probes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--family", action="append", help="only these families (cli, scenario, set, prompt, eval, backend)"
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--verbose", "-v", action="store_true", help="print every probe, not only the bad ones")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="malles-probe-"))
    demo = str(REPO / "scenarios" / "demo.yaml")
    with (
        loopback_llm("401") as s401,
        loopback_llm("500") as s500,
        loopback_llm("echo") as secho,
        loopback_llm("hang") as shang,
    ):
        servers = {"401": s401.base_url, "500": s500.base_url, "echo": secho.base_url, "hang": shang.base_url}
        families = {
            "cli": cli_probes(demo),
            "scenario": scenario_probes(work),
            "set": set_probes(demo),
            "prompt": prompt_probes(work),
            "eval": eval_probes(work),
            "backend": backend_probes(work, servers),
        }
        chosen = [
            p for name, probes in families.items() if not options.family or name in options.family for p in probes
        ]
        start = time.perf_counter()
        with ThreadPoolExecutor(options.jobs) as pool:
            outcomes = list(pool.map(lambda p: run(p, work), chosen))
    by_family: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        by_family.setdefault(outcome.probe.family, Counter())[outcome.verdict] += 1
        if options.verbose or outcome.verdict != "clean":
            print(
                f"[{outcome.verdict:>6}] {outcome.probe.family} / {outcome.probe.name} "
                f"(exit {outcome.code}, {outcome.seconds:.1f} s): {outcome.first_line}"
            )
    print(f"\n{'family':<18}{'tried':>6}{'clean':>7}{'trace':>7}{'hang':>6}{'accept':>8}{'leak':>6}{'other':>7}")
    total: Counter[str] = Counter()
    for family, counts in by_family.items():
        total.update(counts)
        other = sum(v for k, v in counts.items() if k not in ("clean", "trace", "hang", "accept", "leak"))
        print(
            f"{family:<18}{sum(counts.values()):>6}{counts['clean']:>7}{counts['trace']:>7}{counts['hang']:>6}"
            f"{counts['accept']:>8}{counts['leak']:>6}{other:>7}"
        )
    other = sum(v for k, v in total.items() if k not in ("clean", "trace", "hang", "accept", "leak"))
    print(
        f"{'all':<18}{sum(total.values()):>6}{total['clean']:>7}{total['trace']:>7}{total['hang']:>6}"
        f"{total['accept']:>8}{total['leak']:>6}{other:>7}   ({time.perf_counter() - start:.0f} s)"
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0 if total["clean"] == sum(total.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
