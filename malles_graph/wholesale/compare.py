"""Side-by-side evaluation: the dialogue's rule, an optional reference rule and the three baselines."""

from __future__ import annotations

from malles_graph.wholesale.demand import ItemDemand
from malles_graph.wholesale.formula import PurchasingFormula
from malles_graph.wholesale.options import WholesaleOptions
from malles_graph.wholesale.policies import FormulaPolicy, baselines
from malles_graph.wholesale.simulator import SimulationResult, simulate

DIALOGUE = "dialogue rule"
REFERENCE = "reference rule"


def compare(
    items: list[ItemDemand],
    options: WholesaleOptions,
    rule: PurchasingFormula | None = None,
    reference: PurchasingFormula | None = None,
) -> list[SimulationResult]:
    """Simulate every policy on the held-out window; the dialogue rule first when there is one."""
    policies: list = []
    if rule is not None:
        policies.append(FormulaPolicy(DIALOGUE, rule))
    if reference is not None:
        policies.append(FormulaPolicy(REFERENCE, reference))
    policies += baselines(options.service_level, options.demand_distribution)
    return [simulate(policy, items, options) for policy in policies]
