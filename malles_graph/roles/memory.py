"""The population memory the computed roles read: purchase lines known from the case files.

Built from nothing but the baskets every case carries, so it works for any domain written in the
case format. A case's truth is never a line of the memory: at test time no case's truth is known,
so the memory near a test date holds only the cases' baskets; a memory that also held the training
truths would make every training case's evidence (neighbours, market, trend) denser than any test
case's, and the roles would learn to trust evidence they never meet (3-fold CV within January,
held-out truths kept out: with truths, retrieval changed hit@1 by -0.001 and sparse hit@1 by
-0.005; without, sparse hit@1 0.466 -> 0.487, log-loss 1.059 -> 1.056, quantity MAE 0.312 ->
0.310; docs/agent-choices.md). Every query is cut strictly before the decision date, so a case never
sees its own day or the future:

* ``demand_share``: a product's share of its subclass's purchase lines in a window before the
  date (the market signal and the popularity trend);
* ``quantity_profile``: how many units a product's buyers took per line before the date (the
  count model's population evidence: pack effects show up as products bought several at a time);
* ``copurchase``: how often a candidate was bought in the same basket as the products of the
  customer's recent baskets (co-purchase affinity), counted over baskets before the date;
* ``lines``: the purchase lines themselves (customer, date, subclass, product, units, price),
  from which the Chroma transaction memory is built for retrieval.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from malles_graph.models import ChoiceSituation

ORDINAL_BASE = dt.date(2000, 1, 1).toordinal()


@dataclass(frozen=True)
class Line:
    """One purchase line (a customer bought a product on a day)."""

    customer_id: str
    day: int  # date ordinal
    subclass: str
    product_id: str
    quantity: int
    unit_price: float
    age_group: str = "Unknown"
    pin_code: str = "Unknown"


def lines_to_columns(lines: Sequence[Line]) -> dict[str, Any]:
    """The lines as one numpy array per field, for saving: joblib writes an array as one buffer, while
    each of 63,000 Line objects took the pure-Python unpickler 1.5-2.5 s of every `eval run --model`."""
    import numpy as np

    return {f.name: np.asarray([getattr(ln, f.name) for ln in lines]) for f in fields(Line)}


def lines_from_columns(columns: dict[str, Any]) -> list[Line]:
    """The lines back from :func:`lines_to_columns` (``tolist`` gives Python str, int and float again)."""
    names = [f.name for f in fields(Line)]
    return [Line(*row) for row in zip(*(columns[n].tolist() for n in names), strict=True)]


def line_order(ln: Line) -> tuple[int, str, str]:
    """The memory's order of lines: by day, customer, product (each line is unique on these)."""
    return (ln.day, ln.customer_id, ln.product_id)


def merge_lines(*groups: Iterable[Line]) -> list[Line]:
    """The lines of ``groups``, one per (day, customer, product): a later group's line replaces an
    earlier one's in its place (the order is kept: a case memory's folder is named by it)."""
    return list({line_order(ln): ln for group in groups for ln in group}.values())


@dataclass
class PopulationMemory:
    """Purchase lines by product and by basket, with date-cut queries."""

    lines: list[Line] = field(default_factory=list)
    _product_days: dict[str, list[int]] = field(default_factory=dict, repr=False)
    _subclass_days: dict[str, list[int]] = field(default_factory=dict, repr=False)
    _baskets: dict[tuple[str, int], set[str]] = field(default_factory=dict, repr=False)
    _pair_days: dict[tuple[str, str], list[int]] = field(default_factory=dict, repr=False)
    # per product, beside its lines' days above: running counts of lines bought several at a time and of log
    # units (prefix sums, so a date-cut quantity profile is a bisection, not a scan of a popular product's lines)
    _product_units: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict, repr=False)

    @staticmethod
    def case_lines(cases: Iterable[Any]) -> list[Line]:
        """The purchase lines of every basket in the cases (never a case's truth, see the module docstring),
        each once, in the memory's order: day, customer, product."""
        seen: dict[tuple[str, int, str], Line] = {}
        for case in cases:
            customer = case.customer
            who = (customer.age_group, customer.pin_code)
            for basket in case.recent_baskets:
                day = basket.date.toordinal()
                for item in basket.items:
                    key = (customer.customer_id, day, item.product_id)
                    if key not in seen:
                        seen[key] = Line(
                            customer.customer_id,
                            day,
                            item.subclass,
                            item.product_id,
                            item.quantity,
                            item.unit_price,
                            *who,
                        )
        return sorted(seen.values(), key=line_order)

    @staticmethod
    def truth_lines(cases: Iterable[Any]) -> list[Line]:
        """The cases' real purchases as lines: past data for anything decided after the cases' dates."""
        out = []
        for case in cases:
            product = next(p for p in case.candidates if p.product_id == case.truth_product_id)
            who = (case.customer.age_group, case.customer.pin_code)
            out.append(
                Line(
                    case.customer.customer_id,
                    case.date.toordinal(),
                    product.subclass,
                    product.product_id,
                    case.truth_quantity,
                    product.price,
                    *who,
                )
            )
        return out

    @classmethod
    def from_lines(cls, lines: Iterable[Line], focus: set[str] | None = None) -> PopulationMemory:
        """The memory of ``lines``, indexed. Co-purchase pairs are kept only for the products in ``focus``
        (the candidates of the cases it answers, the only pairs ever asked for), which keeps it small."""
        memory = cls(lines=sorted(lines, key=line_order))
        product_days: dict[str, list[int]] = defaultdict(list)
        subclass_days: dict[str, list[int]] = defaultdict(list)
        baskets: dict[tuple[str, int], set[str]] = defaultdict(set)
        product_units: dict[str, tuple[list[int], list[float]]] = {}
        for ln in memory.lines:
            several, log_units = product_units.setdefault(ln.product_id, ([0], [0.0]))
            several.append(several[-1] + (ln.quantity > 1))
            log_units.append(log_units[-1] + (math.log(ln.quantity) if ln.quantity > 0 else 0.0))
            product_days[ln.product_id].append(ln.day)
            subclass_days[ln.subclass].append(ln.day)
            baskets[(ln.customer_id, ln.day)].add(ln.product_id)
        pair_days: dict[tuple[str, str], list[int]] = defaultdict(list)
        for (_, day), products in sorted(baskets.items(), key=lambda kv: kv[0][1]):
            if len(products) > 40:  # a huge basket says little about any one pair and costs quadratic time
                continue
            for a in products if focus is None else products & focus:
                for b in products:
                    if b == a or ((focus is None or b in focus) and b < a):
                        continue  # each pair once
                    pair_days[(a, b) if a < b else (b, a)].append(day)
        memory._product_days = dict(product_days)
        memory._subclass_days = dict(subclass_days)
        memory._baskets = dict(baskets)
        memory._pair_days = dict(pair_days)
        memory._product_units = product_units
        return memory

    def __len__(self) -> int:
        return len(self.lines)

    def customers(self) -> set[str]:
        return {ln.customer_id for ln in self.lines}

    @staticmethod
    def _count(days: Sequence[int] | None, start: int, end: int) -> int:
        """Entries with start <= day < end (days are sorted)."""
        if not days:
            return 0
        return bisect_left(days, end) - bisect_left(days, start)

    def demand_share(self, situation: ChoiceSituation, window_days: int, skip_days: int = 0) -> dict[str, float]:
        """Each candidate's share of its subclass's lines in [date - window - skip, date - skip), smoothed.

        Additive smoothing (half a line per candidate) keeps a product nobody bought in the window
        above zero and pulls thin windows toward uniform.
        """
        end = situation.date.toordinal() - skip_days
        start = end - window_days
        total = self._count(self._subclass_days.get(situation.subclass), start, end)
        k = len(situation.candidates)
        return {
            p.product_id: (self._count(self._product_days.get(p.product_id), start, end) + 0.5) / (total + 0.5 * k)
            for p in situation.candidates
        }

    def subclass_lines(self, situation: ChoiceSituation, window_days: int) -> int:
        end = situation.date.toordinal()
        return self._count(self._subclass_days.get(situation.subclass), end - window_days, end)

    def quantity_profile(self, product_id: str, date: dt.date) -> tuple[float, float, float]:
        """The product's lines before ``date``: (count, smoothed share bought more than one at a time,
        mean log units shrunk toward 0 by one pseudo-line)."""
        several, log_units = self._product_units.get(product_id, ([0], [0.0]))
        n = bisect_left(self._product_days.get(product_id, []), date.toordinal())
        return float(n), (several[n] + 0.2) / (n + 1.0), log_units[n] / (n + 1.0)

    def copurchase(self, situation: ChoiceSituation) -> dict[str, float]:
        """Per candidate: baskets (before the date) holding it together with a product of the customer's recent baskets,
        over the baskets holding the candidate at all (a conditional co-purchase rate)."""
        end = situation.date.toordinal()
        mine = {i.product_id for b in situation.recent_baskets for i in b.items if i.subclass != situation.subclass}
        out: dict[str, float] = {}
        for p in situation.candidates:
            pid = p.product_id
            together = 0
            for q in mine:
                key = (pid, q) if pid < q else (q, pid)
                together += self._count(self._pair_days.get(key), -(10**9), end)
            n = self._count(self._product_days.get(pid), -(10**9), end)
            out[pid] = together / (n + 5.0)
        return out
