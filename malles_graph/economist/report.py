"""The economist report: welfare over time against the Saez and U.S. baselines, tables and PNG plots.

Works from the run store alone (see runs.py), so a report can be made long after the run, in any process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

from malles_graph.economist.runs import EconomistRunData as RunData  # noqa: E402
from malles_graph.economist.runs import load_economist_run  # noqa: E402
from malles_graph.economist.welfare import OBJECTIVES  # noqa: E402
from malles_graph.paths import output_folder

BASELINE_STYLES = {"us 2024": ("tab:red", "--"), "saez": ("tab:green", "--"), "flat": ("tab:gray", ":"),
                   "local search": ("tab:purple", "-.")}


@dataclass
class Report:
    run: RunData
    figures: list[Path] = field(default_factory=list)


def _baseline_rows(run: RunData) -> dict[str, dict]:
    return {row["schedule"]: row for row in run.analysis.get("table", [])}


def _style(name: str) -> tuple[str, str] | None:
    for prefix, style in BASELINE_STYLES.items():
        if name.startswith(prefix):
            return style
    return None


def plot_welfare(run: RunData, path: Path) -> Path:
    steps = run.steps["step"].to_list()
    baselines = _baseline_rows(run)
    objective = run.meta.get("objective", "skill_weighted")
    fig, axes = plt.subplots(1, len(OBJECTIVES), figsize=(15, 4.2))
    for ax, name in zip(axes, OBJECTIVES, strict=True):
        key = f"welfare_{name}"
        ax.plot(steps, run.steps[key].to_list(), color="tab:blue", marker="o", ms=3, label="run")
        for label, row in baselines.items():
            style = _style(label)
            if style is None or (label.startswith("saez") and f"({objective})" not in label):
                continue
            ax.axhline(row[key], color=style[0], ls=style[1], lw=1.2, label=label)
        ax.set_title(name + (" (planner objective)" if name == objective else ""))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("welfare per capita")
    axes[-1].legend(fontsize=8, loc="best")
    fig.suptitle(f"welfare over time — {run.run.name} ({run.run_id})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_rates(run: RunData, path: Path) -> Path:
    steps = run.steps["step"].to_list()
    rates = run.steps["schedule"].to_list()
    saez = run.saez.get("rates") or []
    fig, ax = plt.subplots(figsize=(8, 4.5))
    cmap = plt.get_cmap("viridis")
    n = len(rates[0]) if rates else 0
    for k in range(n):
        color = cmap(k / max(1, n - 1))
        ax.plot(steps, [r[k] for r in rates], color=color, label=f"bracket {k + 1}")
        if saez:
            ax.axhline(saez[k], color=color, ls=":", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("marginal rate, %")
    ax.set_title("marginal rates over time (dotted: Saez)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_labour(run: RunData, path: Path) -> Path:
    s = run.steps
    steps = s["step"].to_list()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    axes[0].plot(steps, s["mean_hours"].to_list(), marker="o", ms=3)
    axes[0].set_title("mean weekly hours")
    axes[1].plot(steps, s["gini_pretax"].to_list(), label="pre-tax")
    axes[1].plot(steps, s["gini_disposable"].to_list(), label="after tax and rebate")
    axes[1].set_title("Gini")
    axes[1].legend(fontsize=8)
    axes[2].plot(steps, s["mean_regret"].to_list(), color="tab:orange")
    axes[2].set_title("mean utility regret vs best response ($)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make_report(run_id: str, out_dir: Path | None = None, store_url: str | None = None) -> Report:
    """Load a stored run and write its plots (welfare.png, rates.png, labour.png) under ``out_dir``.

    The default folder is ``runs_dir()/<run id>/report``.
    """
    from malles_graph.paths import runs_dir

    run = load_economist_run(run_id, store_url)
    out = output_folder(out_dir or runs_dir() / run.run_id / "report")
    figures = [plot_welfare(run, out / "welfare.png"), plot_rates(run, out / "rates.png"), plot_labour(run, out / "labour.png")]
    return Report(run=run, figures=figures)
