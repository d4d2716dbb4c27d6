"""Side-by-side comparison of methods: markdown + HTML report with plots (matplotlib, Agg)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from malles_graph.evaluation.cases import ChoiceCase, Prediction
from malles_graph.evaluation.metrics import (
    SIZE_BUCKETS,
    GroupScore,
    PairedEffect,
    Score,
    hit_by_bucket,
    paired_effect,
    quantity_errors,
    score,
)
from malles_graph.paths import output_folder

COLUMNS: tuple[tuple[str, str], ...] = (
    ("hit1", "hit@1"),
    ("hit3", "hit@3"),
    ("logloss", "logloss"),
    ("mae", "qty MAE"),
    ("mape", "qty MAPE"),
    ("mae_hit", "MAE hits"),
    ("coverage", "cover"),
)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def table_rows(scores: Sequence[Score]) -> list[list[str]]:
    """One row per method: overall figures, then hit@1 on sparse and dense cases."""
    rows = []
    for s in scores:
        o: GroupScore = s.overall
        rows.append(
            [s.name, *(fmt(getattr(o, key)) for key, _ in COLUMNS), fmt(s.sparse.hit1), fmt(s.dense.hit1), str(o.n)]
        )
    return rows


def header() -> list[str]:
    return ["method", *(label for _, label in COLUMNS), "hit@1 sparse", "hit@1 dense", "n"]


def markdown_table(scores: Sequence[Score]) -> str:
    head = header()
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(scores)]
    return "\n".join(lines)


def rich_table(scores: Sequence[Score], title: str = "evaluation"):
    from rich.table import Table

    table = Table(title=title)
    for i, name in enumerate(header()):
        table.add_column(name, justify="left" if i == 0 else "right", overflow="fold")
    for row in table_rows(scores):
        table.add_row(*row)
    return table


def effects(
    cases: Sequence[ChoiceCase], runs: dict[str, Sequence[Prediction]], reference: str
) -> list[PairedEffect]:
    """Each other run against ``reference`` (e.g. the agent with one mechanism off), on all and on sparse cases."""
    from malles_graph.evaluation.cases import EvaluationError

    if reference not in runs:
        raise EvaluationError(f"--reference {reference!r} is not one of the runs: {', '.join(runs)}")
    subsets = ["all"] + (["sparse"] if any(c.sparse for c in cases) else [])
    return [
        paired_effect(cases, runs[reference], preds, name, subset)
        for name, preds in runs.items()
        if name != reference
        for subset in subsets
    ]


def signed(value: float, digits: int = 3) -> str:
    """``value`` with its sign; one that rounds to zero is ``+0.000``, never ``-0.000``."""
    text = f"{value:+.{digits}f}"
    return "+" + text[1:] if float(text) == 0 else text


def interval_text(value: float | None, low: float | None, high: float | None, digits: int = 3) -> str:
    """An effect and its 95% interval, ``+0.012 [-0.003, +0.027]``; ``-`` when there is none."""
    if value is None or low is None or high is None:
        return "-"
    return f"{signed(value, digits)} [{signed(low, digits)}, {signed(high, digits)}]"


EFFECT_HEADER = ["compared run", "cases", "n", "hit@1 effect [95% CI]", "log-loss effect [95% CI]",
                 "qty MAE effect [95% CI]"]


def effect_rows(rows: Sequence[PairedEffect]) -> list[list[str]]:
    return [
        [e.name, e.subset, str(e.n), interval_text(e.hit1, e.hit1_low, e.hit1_high),
         interval_text(e.logloss, e.logloss_low, e.logloss_high), interval_text(e.mae, e.mae_low, e.mae_high)]
        for e in rows
    ]


def effects_title(reference: str) -> str:
    """The effects table's title in every front end (terminal, report.md, report.html)."""
    return (
        f"{reference} minus each compared run (positive: {reference} better; for a mechanism switched off, "
        "what it adds; paired bootstrap 95% CI)"
    )


def effects_markdown(rows: Sequence[PairedEffect], reference: str) -> str:
    lines = [
        f"## {effects_title(reference)}",
        "",
        f"Effect = {reference} minus the compared run, paired per case, bootstrap 95% interval (2,000 resamples). "
        f"Positive means {reference} does better: higher hit@1, lower log-loss, lower MAE. For a run of "
        f"{reference} with one mechanism switched off (`--ablation`) that is what the mechanism adds; for "
        f"another method, {reference}'s lead over it.",
        "",
        "| " + " | ".join(EFFECT_HEADER) + " |",
        "|" + "---|" * len(EFFECT_HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in effect_rows(rows)]
    return "\n".join(lines)


def effects_rich_table(rows: Sequence[PairedEffect], reference: str):
    from rich.table import Table

    table = Table(title=effects_title(reference))
    for i, name in enumerate(EFFECT_HEADER):
        table.add_column(name, justify="left" if i < 2 else "right", overflow="fold")
    for row in effect_rows(rows):
        table.add_row(*row)
    return table


def hit_interval(hit: float, n: int) -> tuple[float, float]:
    """The 95% Wilson interval of a hit rate over ``n`` cases: methods can differ in a small bucket (Feb's
    sparse one has 105 cases) by less than its own uncertainty, and the bars should say so."""
    from scipy.stats import binomtest

    if not n or hit != hit:  # an empty bucket (its hit rate is NaN): no bar, no interval
        return float("nan"), float("nan")
    interval = binomtest(round(hit * n), n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def _plots(cases: Sequence[ChoiceCase], runs: dict[str, Sequence[Prediction]], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    files = []
    labels = [label for *_, label in SIZE_BUCKETS]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(runs) + 4), 4))
    width = 0.8 / max(len(runs), 1)
    counts: dict[str, int] = {}
    for i, (name, preds) in enumerate(runs.items()):
        buckets = hit_by_bucket(cases, preds)
        counts = {k: n for k, (_, n) in buckets.items()}
        hits = np.array([buckets[b][0] for b in labels])
        low, high = np.array([hit_interval(*buckets[b]) for b in labels]).T
        ax.bar(np.arange(len(labels)) + i * width, hits, width, label=name,
               yerr=[hits - low, high - hits], capsize=2, error_kw={"linewidth": 0.8})
    ax.set_xticks(np.arange(len(labels)) + width * (len(runs) - 1) / 2)
    ax.set_xticklabels([f"{b}\n(n={counts.get(b, 0)})" for b in labels])
    ax.set_xlabel("subclass size (fit-period lines)")
    ax.set_ylabel("hit@1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Hit rate per subclass size bucket (95% Wilson intervals)")
    fig.tight_layout()
    fig.savefig(out / "hit_by_subclass_size.png", dpi=110)
    plt.close(fig)
    files.append("hit_by_subclass_size.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.arange(-6.5, 7.5, 1.0)
    for name, preds in runs.items():
        errors = np.clip(quantity_errors(cases, preds), -6, 6)
        if len(errors):
            ax.hist(errors, bins=bins, histtype="step", linewidth=1.5, label=name, density=True)
    ax.set_xlabel("predicted - true units (clipped at +-6)")
    ax.set_ylabel("share of cases (log scale)")
    ax.set_yscale("log")  # most errors are 0; the tails are what differs between methods
    ax.set_title("Quantity error distribution")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "quantity_error.png", dpi=110)
    plt.close(fig)
    files.append("quantity_error.png")
    return files


def write_report(
    cases: Sequence[ChoiceCase],
    runs: dict[str, Sequence[Prediction]],
    out: str | Path,
    cases_source: str = "",
    reference: str | None = None,
) -> tuple[list[Score], list[Path], list[PairedEffect]]:
    """Score every run and write report.md, report.html, scores.json and the plots into ``out``.

    With ``reference``, every other run is compared with it case by case (paired bootstrap), which
    is how an ablation table is made: the full agent as reference, one run per mechanism off.
    """
    out = output_folder(out)  # before the scoring and plots, so a bad --out costs nothing
    scores = [score(cases, preds, name) for name, preds in runs.items()]
    effect_list = effects(cases, runs, reference) if reference else []
    plots = _plots(cases, runs, out)
    n_sparse = sum(c.sparse for c in cases)
    intro = (
        f"{len(cases)} cases ({n_sparse} from sparse subclasses) from {cases_source or 'the case file'}; "
        f"{len(runs)} method(s). Missing or invalid predictions count as misses."
    )
    md = ["# Evaluation report", "", intro, "", markdown_table(scores), ""]
    if reference:
        md += [effects_markdown(effect_list, reference), ""]
    md += [f"![{p}]({p})" for p in plots]
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header())
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table_rows(scores))
    if reference:
        eff_head = "".join(f"<th>{html.escape(h)}</th>" for h in EFFECT_HEADER)
        eff_body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in effect_rows(effect_list)
        )
        body += (
            f"</tbody></table><h2>{html.escape(effects_title(reference))}</h2>"
            f"<table><thead><tr>{eff_head}</tr></thead><tbody>{eff_body}"
        )
    imgs = "".join(f'<p><img src="{html.escape(p)}" alt="{html.escape(p)}"></p>' for p in plots)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Evaluation report</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}</style>"
        f"</head><body><h1>Evaluation report</h1><p>{html.escape(intro)}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{imgs}</body></html>"
    )
    (out / "report.html").write_text(page, encoding="utf-8")
    payload = {"scores": [s.model_dump() for s in scores], "effects": [e.model_dump() for e in effect_list]}
    (out / "scores.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    paths = [out / "report.md", out / "report.html", out / "scores.json", *(out / p for p in plots)]
    return scores, paths, effect_list
