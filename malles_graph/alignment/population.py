"""Reweighting on Ta Feng: make a simulated population's aggregate demand match the real one.

The simulated population is the set of customers in a case file (one agent per case, with
its demand: the predicted product's subclass, or the truth). The real population is every
purchase line of the cases' period in Ta Feng. Weights w(X) come from raking the agents on
customer margins (age group, residence area) to the real lines' shares of the same margins;
the figure of merit is the total-variation distance between simulated and real demand shares
per department (first 3 digits of the subclass), with and without the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from malles_graph.alignment.errors import AlignmentError
from malles_graph.alignment.reweighting import (
    aggregate_error,
    effective_sample_size,
    rake,
    save_weights,
    weighted_shares,
)
from malles_graph.evaluation.cases import ChoiceCase


def department(subclass: str) -> str:
    return str(subclass)[:3]


def real_shares(cases: Sequence[ChoiceCase], margins: Sequence[str], df=None) -> tuple[dict, dict[str, dict]]:
    """(department demand shares, margin shares) of all real purchase lines in the cases' date range."""
    import polars as pl

    if df is None:
        from malles_graph.data import tafeng

        df = tafeng.load(columns=["date", "customer_id", "age_group", "pin_code", "subclass", "quantity"])
    start, end = min(c.date for c in cases), max(c.date for c in cases)
    lines = df.filter(pl.col("date").is_between(start, end))
    if lines.height == 0:
        raise AlignmentError(f"no real purchase lines between {start} and {end}")
    dept = lines.with_columns(dept=pl.col("subclass").cast(pl.String).str.slice(0, 3)).group_by("dept").agg(
        n=pl.len()
    )
    demand = {d: float(n) for d, n in dept.iter_rows()}
    targets = {}
    for m in margins:
        if m not in lines.columns:
            raise AlignmentError(f"unknown margin {m!r}; customer fields available: age_group, pin_code")
        counts = lines.group_by(m).agg(n=pl.len())
        targets[m] = {str(k): float(n) for k, n in counts.iter_rows()}
    return demand, targets


def population_check(
    cases_path: str | Path,
    out: str | Path | None,
    margins: Sequence[str],
    predictions_path: str | Path | None = None,
    cases: Sequence[ChoiceCase] | None = None,
    df=None,
) -> dict:
    """Fit raking weights for the case population; aggregate demand error with and without them."""
    from malles_graph.evaluation.cases import read_cases, read_predictions

    cases = list(cases) if cases is not None else read_cases(cases_path)
    demand_sub = [c.subclass for c in cases]  # every candidate shares the case's subclass
    if predictions_path is not None:
        preds = {p.case_id: p for p in read_predictions(predictions_path, {c.case_id: c for c in cases})}
        kept = [i for i, c in enumerate(cases) if preds.get(c.case_id) and preds[c.case_id].product_id]
        cases = [cases[i] for i in kept]
        demand_sub = [demand_sub[i] for i in kept]
    real_demand, targets = real_shares(cases, margins, df)
    labels = {m: [str(getattr(c.customer, m)) for c in cases] for m in margins}
    # categories the real base has but no agent represents cannot be weighted up: report and drop them
    missing = {m: sorted(set(targets[m]) - set(labels[m])) for m in margins}
    targets = {m: {k: v for k, v in targets[m].items() if k in set(labels[m])} for m in margins}
    fit = rake(labels, targets)
    w = fit.weights(labels)
    depts = [department(s) for s in demand_sub]
    ones = np.ones(len(depts))
    report = {
        "agents": len(cases),
        "margins": list(margins),
        "unrepresented_categories": {m: v for m, v in missing.items() if v},
        "raking_converged": fit.converged,
        "iterations": fit.iterations,
        "effective_sample_size": effective_sample_size(w),
        "max_weight": float(w.max()),
        "demand_error_unweighted": aggregate_error(weighted_shares(depts, ones), real_demand),
        "demand_error_weighted": aggregate_error(weighted_shares(depts, ones, w), real_demand),
    }
    if out is not None:
        save_weights(fit, out)
    return report
