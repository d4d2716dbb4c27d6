"""Side-by-side comparison of methods: markdown + HTML report with plots (matplotlib, Agg)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

from malles_graph.evaluation.cases import ChoiceCase, Prediction
from malles_graph.evaluation.metrics import SIZE_BUCKETS, GroupScore, Score, hit_by_bucket, quantity_errors, score

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
        ax.bar(np.arange(len(labels)) + i * width, [buckets[b][0] for b in labels], width, label=name)
    ax.set_xticks(np.arange(len(labels)) + width * (len(runs) - 1) / 2)
    ax.set_xticklabels([f"{b}\n(n={counts.get(b, 0)})" for b in labels])
    ax.set_xlabel("subclass size (fit-period lines)")
    ax.set_ylabel("hit@1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Hit rate per subclass size bucket")
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
) -> tuple[list[Score], list[Path]]:
    """Score every run and write report.md, report.html, scores.json and the plots into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scores = [score(cases, preds, name) for name, preds in runs.items()]
    plots = _plots(cases, runs, out)
    n_sparse = sum(c.sparse for c in cases)
    intro = (
        f"{len(cases)} cases ({n_sparse} from sparse subclasses) from {cases_source or 'the case file'}; "
        f"{len(runs)} method(s). Missing or invalid predictions count as misses."
    )
    md = ["# Evaluation report", "", intro, "", markdown_table(scores), ""]
    md += [f"![{p}]({p})" for p in plots]
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header())
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table_rows(scores))
    imgs = "".join(f'<p><img src="{html.escape(p)}" alt="{html.escape(p)}"></p>' for p in plots)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Evaluation report</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}</style>"
        f"</head><body><h1>Evaluation report</h1><p>{html.escape(intro)}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{imgs}</body></html>"
    )
    (out / "report.html").write_text(page, encoding="utf-8")
    (out / "scores.json").write_text(json.dumps([s.model_dump() for s in scores], indent=2), encoding="utf-8")
    paths = [out / "report.md", out / "report.html", out / "scores.json", *(out / p for p in plots)]
    return scores, paths
