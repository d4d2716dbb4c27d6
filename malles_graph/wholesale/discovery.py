"""Decision logs of a wholesale run, fed to symbolic regression.

Sources:

- ``dialogue``: the dialogue's rule, evaluated at every decision state the simulation visited
  (all policies' states, so the log covers under- and over-stocked situations, not only the
  rule's own path);
- a policy name (``newsvendor``, ``order-up-to``, ``last-period demand``, ``reference rule``): the
  quantities that policy asked for, before rounding and the minimum order;
- ``demand``: the real customers' quantities, units demanded per item and period, against
  what was known before the period (last demand, moving average, its spread).
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from malles_graph.errors import MallesError
from malles_graph.wholesale.compare import DIALOGUE
from malles_graph.wholesale.economics import resolve_economics
from malles_graph.wholesale.formula import FormulaError, parse_formula
from malles_graph.wholesale.regression import Discovery, discover
from malles_graph.wholesale.runs import WholesaleRun
from malles_graph.wholesale.simulator import state_variables

ORDER_VARIABLES = ["forecast", "demand_sd", "last_demand", "inventory", "on_order"]
DEMAND_VARIABLES = ["last_demand", "forecast", "demand_sd"]


def decision_log(run: WholesaleRun, source: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(x, y, variable names) of one source; constant columns are dropped."""
    if source == "demand":
        return _demand_log(run)
    orders = run.orders
    if orders.is_empty():
        raise MallesError(f"run {run.run_id}: no simulation records")
    if source == "dialogue":
        if not run.rule:
            raise MallesError(
                f"run {run.run_id}: the dialogue made no valid rule ({run.meta.get('error')}); "
                "use --source demand or a policy name"
            )
        formula = parse_formula(run.rule["formula"])
        names = list(dict.fromkeys(ORDER_VARIABLES + formula.variables))
        states = orders.select([f"x_{n}" for n in names]).unique(maintain_order=True)
        rows, targets = [], []
        for row in states.iter_rows():
            values = dict(zip(names, row, strict=True))
            try:
                targets.append(formula.evaluate(values))
            except FormulaError:
                continue  # a state where the rule has no value is not a decision; the simulation recorded it
            rows.append(row)
        return _drop_constant(np.asarray(rows, dtype=float), np.asarray(targets, dtype=float), names)
    policies = orders["policy"].unique().to_list()
    if source not in policies:
        raise MallesError(f"unknown source {source!r}; choose dialogue, demand or one of {sorted(policies)}")
    chosen = orders.filter((pl.col("policy") == source) & pl.col("proposed").is_not_nan())
    x = chosen.select([f"x_{n}" for n in ORDER_VARIABLES]).to_numpy().astype(float)
    return _drop_constant(x, chosen["proposed"].to_numpy().astype(float), ORDER_VARIABLES)


def _demand_log(run: WholesaleRun) -> tuple[np.ndarray, np.ndarray, list[str]]:
    options = run.scenario.wholesale
    rows, targets = [], []
    for item in run.items:
        economics = resolve_economics(options, item)
        for t in range(2, len(item.units)):
            state = state_variables(item.units[:t], 0, 0, t, economics, options.forecast_window)
            rows.append([state[n] for n in DEMAND_VARIABLES])
            targets.append(float(item.units[t]))
    return _drop_constant(np.asarray(rows, dtype=float), np.asarray(targets, dtype=float), DEMAND_VARIABLES)


def _drop_constant(x: np.ndarray, y: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if x.size == 0:
        raise MallesError("the decision log is empty")
    keep = [i for i in range(x.shape[1]) if np.ptp(x[:, i]) > 0]
    return x[:, keep], y, [names[i] for i in keep]


def discover_run(
    run: WholesaleRun,
    source: str | None = None,
    *,
    population: int | None = None,
    generations: int | None = None,
    random_state: int | None = None,
) -> Discovery:
    """Fit the run's decision log and save discovery.json next to it."""
    options = run.scenario.wholesale
    source = source or ("dialogue" if run.rule else "demand")
    x, y, names = decision_log(run, source)
    result = discover(
        x,
        y,
        names,
        target=f"{source} orders" if source != "demand" else "units demanded",
        population=population or options.sr_population,
        generations=generations or options.sr_generations,
        random_state=run.meta.get("seed", 0) if random_state is None else random_state,
    )
    result.settings["source"] = source
    payload = {**result.to_dict(), "dialogue_rule": run.rule, "policy": DIALOGUE if source == "dialogue" else source}
    (run.folder / "discovery.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return result


def rule_at_constants(run: WholesaleRun) -> str | None:
    """The dialogue's formula with the variables that never changed in the run replaced by their value
    (lead time, discount, ...), so it reads like the regression's expressions."""
    if not run.rule or run.orders.is_empty():
        return None
    import sympy as sp

    from malles_graph.wholesale.formula import SYMBOLS, safe_simplify

    formula = parse_formula(run.rule["formula"])
    constants = {}
    for name in formula.variables:
        values = run.orders[f"x_{name}"].unique()
        if len(values) == 1:
            value = float(values[0])
            constants[SYMBOLS[name]] = sp.Integer(int(value)) if value.is_integer() else sp.Float(value, 6)
    return str(safe_simplify(formula.expr.xreplace(constants)))
