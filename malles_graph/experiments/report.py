"""The experiment report: the same tables as rows of text for the CLI, the TUI, markdown and HTML.

``report.md`` and ``report.html`` (with an inline SVG plot drawn by matplotlib, so the page is one
self-contained file) and ``result.json`` (every figure) are written into the experiment folder.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

from malles_graph.evaluation.report import interval_text
from malles_graph.experiments.insight import DEBATE_ROLES, bottleneck
from malles_graph.experiments.scoring import ExperimentResult
from malles_graph.paths import output_folder
from malles_graph.prompt_sets import SHORT

Table = tuple[list[str], list[list[str]]]  # header, rows (text cells)

VARIANT_HEADER = [
    "variant",
    "prompt set",
    "n",
    "hit@1",
    "hit@3",
    "log-loss",
    "qty MAE",
    "failures",
    "repairs",
    "prompt tok/dec",
    "compl. tok/dec",
    "s/dec",
    "stability",
]
DIFF_HEADER = [
    "variant - reference",
    "n",
    "Δ hit@1 [95% CI]",
    "Δ log-loss [95% CI]",
    "Δ qty MAE [95% CI]",
    "wins/losses",
    "sign test p",
]
ROLE_HEADER = [
    "variant",
    "role",
    "calls",
    "prompt tok",
    "compl. tok",
    "s total",
    "s/dec",
    "retries",
    "failures",
    "preference stated",
    "agrees with decision",
]


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def variant_table(result: ExperimentResult) -> Table:
    rows = [
        [
            r.name,
            r.digest + (f" +personas {r.persona_digest}" if r.persona_digest else ""),
            str(r.n),
            _f(r.hit1),
            _f(r.hit3),
            _f(r.logloss),
            _f(r.mae, 2),
            _pct(r.failure_rate),
            _pct(r.repair_rate),
            _f(r.prompt_tokens, 0),
            _f(r.completion_tokens, 0),
            _f(r.latency_s, 1),
            _f(r.stability, 2),
        ]
        for r in result.rows
    ]
    return VARIANT_HEADER, rows


def difference_table(result: ExperimentResult) -> Table:
    rows = [
        [
            f"{d.name} - {d.reference}",
            str(d.n),
            interval_text(d.hit1, d.hit1_low, d.hit1_high),
            interval_text(d.logloss, d.logloss_low, d.logloss_high),
            interval_text(d.mae, d.mae_low, d.mae_high, 2),
            f"{d.wins}/{d.losses}",
            _f(d.sign_p, 3),
        ]
        for d in result.differences
    ]
    return DIFF_HEADER, rows


def role_table(result: ExperimentResult) -> Table:
    rows = []
    for variant, roles in result.roles.items():
        slowest = bottleneck(roles)
        for name, r in roles.items():
            if name in DEBATE_ROLES:
                stated = f"{r.stated}/{r.turns}" if r.turns else "-"
                agrees = (
                    "no preference stated"
                    if r.turns and not r.stated
                    else f"{r.agreed}/{r.stated} ({_pct(r.agreement)})"
                    if r.stated
                    else "-"
                )
            else:
                stated = agrees = "-"  # retrieve, Z, decide, stabilise state no preference
            label = name + (" (slowest)" if name == slowest else "")
            rows.append(
                [
                    variant,
                    label,
                    str(r.tokens.calls or r.llm_calls),
                    str(r.tokens.prompt_tokens),
                    str(r.tokens.completion_tokens),
                    _f(r.latency_s, 1),
                    _f(r.mean_latency_s, 2),
                    str(r.retries),
                    str(r.failures),
                    stated,
                    agrees,
                ]
            )
    return ROLE_HEADER, rows


def _intro(result: ExperimentResult) -> list[str]:
    m = result.manifest
    lines = [
        f"{result.n_paired} of {result.n_cases} cases answered by every variant (paired) from {m.cases}; "
        f"backend {m.backend}" + (f" with {', '.join(m.sets)}" if m.sets else "") + f"; seed {m.seed}; "
        f"{m.repeats} repeat(s) per case. Scores use repeat 0; failed answers count as misses; "
        "stability = mean share of repeats agreeing with the most common product.",
        "",
    ]
    lines += [
        f"- `{v.name}`: {v.folder} (prompt set {v.digest[:SHORT]})"
        + (f", personas {v.personas.file} (persona set {v.personas.digest[:SHORT]})" if v.personas else "")
        for v in m.variants
    ]
    return lines


def _md_table(table: Table) -> list[str]:
    header, rows = table
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows),
    ]


SECTIONS = (
    ("Variants", variant_table, ""),
    (
        "Difference from the reference (first variant)",
        difference_table,
        "Paired per case; 95% bootstrap interval (2,000 resamples). Hit@1: higher is better; log-loss and "
        "MAE: lower is better. The sign test compares the cases only one of the two hit.",
    ),
    (
        "Per role",
        role_table,
        "Tokens and latency per role or node over all repeats; a debate role's preference is the product its "
        'last turn names ("no preference stated" when none of its turns names one).',
    ),
)


def markdown(result: ExperimentResult, plot: str | None = None) -> str:
    lines = ["# Prompt experiment", "", *_intro(result), ""]
    for title, make, note in SECTIONS:
        lines += [f"## {title}", ""] + ([note, ""] if note else []) + _md_table(make(result)) + [""]
    if plot:
        lines += [f"![hit@1 per variant]({plot})", ""]
    return "\n".join(lines)


def _html_table(table: Table) -> str:
    header, rows = table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plot_svg(result: ExperimentResult) -> str:
    """hit@1 per variant, and each variant's paired difference from the reference with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    names = [r.name for r in result.rows]
    left.bar(names, [r.hit1 or 0.0 for r in result.rows], color="#4c78a8")
    left.set_ylim(0, 1)
    left.set_ylabel("hit@1")
    left.set_title(f"hit@1 on {result.n_paired} paired cases")
    diffs = result.differences
    if diffs:
        y = list(range(len(diffs)))
        right.errorbar(
            [d.hit1 for d in diffs],
            y,
            fmt="o",
            color="#f58518",
            capsize=4,
            xerr=[[d.hit1 - d.hit1_low for d in diffs], [d.hit1_high - d.hit1 for d in diffs]],
        )
        right.set_yticks(y, [d.name for d in diffs])
        right.set_ylim(-0.8, len(diffs) - 0.2)
    right.axvline(0, color="grey", linewidth=1)
    right.set_xlabel(f"Δ hit@1 vs {names[0] if names else '-'} (95% CI)")
    right.set_title("paired difference")
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prolog: the SVG is inlined in the HTML page


def write_report(result: ExperimentResult, out: Path) -> list[Path]:
    """Write report.md, report.html (inline plot), hit1.svg and result.json into ``out``."""
    output_folder(out)
    svg = plot_svg(result)
    (out / "hit1.svg").write_text(svg, encoding="utf-8")
    (out / "report.md").write_text(markdown(result, "hit1.svg"), encoding="utf-8")
    sections = "".join(
        f"<h2>{html.escape(title)}</h2>" + (f"<p>{html.escape(note)}</p>" if note else "") + _html_table(make(result))
        for title, make, note in SECTIONS
    )
    intro = "".join(f"<p>{html.escape(line.lstrip('- '))}</p>" for line in _intro(result) if line)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Prompt experiment</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}</style>"
        f"</head><body><h1>Prompt experiment</h1>{intro}{sections}<div>{svg}</div></body></html>"
    )
    (out / "report.html").write_text(page, encoding="utf-8")
    (out / "result.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    return [out / "report.md", out / "report.html", out / "hit1.svg", out / "result.json"]
