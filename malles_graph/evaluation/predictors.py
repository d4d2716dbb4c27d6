"""Predictors for `malles eval run`: a registry of baselines (the agent is the decision graph, see cli/eval_agent.py).

A predictor turns choice situations into :class:`Prediction` rows. Choice baselines pick a
candidate; the quantity strategy (``--quantity``) says how many units. Fitted predictors
(``baseline:logit``, ``baseline:lgbm``, quantity ``regressor``) are fitted on
*training cases* built from an earlier window, never on the cases they predict.

LLM backends live outside the core (they need ``graphs``); the CLI registers them with
:func:`register`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.stats import rankdata

from malles_graph.evaluation.cases import ChoiceCase, EvaluationError, Prediction, require_choices
from malles_graph.evaluation.features import (
    FEATURES,
    AttributeSchema,
    quantity_features,
    recent_median_quantity,
    segment_softmax,
    stack,
)
from malles_graph.models import ChoiceSituation


class Predictor(Protocol):
    name: str

    def predict(self, situations: Sequence[ChoiceSituation]) -> list[Prediction]: ...


@dataclass
class PredictorOptions:
    """What a predictor factory may need; unused fields are ignored."""

    train_cases: list[ChoiceCase] | None = None
    quantity: str = "customer-median"
    seed: int = 0
    model_path: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


Factory = Callable[[PredictorOptions], Predictor]
_REGISTRY: dict[str, tuple[Factory, str]] = {}


def register(name: str, factory: Factory, help: str = "") -> None:
    _REGISTRY[name] = (factory, help)


def backend_names() -> dict[str, str]:
    """Registered backend names and one-line descriptions."""
    return {name: help for name, (_, help) in sorted(_REGISTRY.items())}


def make_predictor(name: str, options: PredictorOptions | None = None) -> Predictor:
    options = options or PredictorOptions()
    if name not in _REGISTRY:
        raise EvaluationError(f"unknown backend {name!r}; choose one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name][0](options)


def case_rng(seed: int, case_id: str) -> np.random.Generator:
    """A generator per (seed, case): the same answers whatever the order, batch or resume point."""
    return np.random.default_rng([seed, zlib.crc32(case_id.encode())])


def _require_training(options: PredictorOptions, what: str) -> list[ChoiceCase]:
    if not options.train_cases:
        raise EvaluationError(
            f"{what} is fitted: pass --train FILE.jsonl (cases built from an earlier window, "
            "e.g. `malles eval build --split train`)"
        )
    return options.train_cases


# ------------------------------------------------------------------ quantity strategies
QuantityFn = Callable[[ChoiceSituation, str], int]


def _round_half_up(x: float) -> int:
    return max(1, int(math.floor(x + 0.5)))


def quantity_one(_s: ChoiceSituation, _p: str) -> int:
    return 1


def quantity_customer_median(s: ChoiceSituation, _p: str) -> int:
    """Median units per line in the customer's recent baskets (else their mean, else 1)."""
    med = recent_median_quantity(s)
    if med is None:
        med = s.customer.mean_quantity or 1.0
    return _round_half_up(med)


def quantity_product_median(s: ChoiceSituation, p: str) -> int:
    """The product's population median units per line in the fit period (else 1)."""
    product = next(c for c in s.candidates if c.product_id == p)
    return _round_half_up(product.median_quantity or 1.0)


class QuantityRegressor:
    """LightGBM regression of log(units) on the quantity features, fitted on training cases."""

    def __init__(self, train: Sequence[ChoiceCase], seed: int = 0) -> None:
        from lightgbm import LGBMRegressor

        F = np.vstack([quantity_features(c, c.truth_product_id) for c in train])
        y = np.log([c.truth_quantity for c in train])
        self.model = LGBMRegressor(
            n_estimators=200,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=20,
            random_state=seed,
            verbose=-1,
            n_jobs=1,
        )
        self.model.fit(F, y)

    def __call__(self, s: ChoiceSituation, p: str) -> int:
        return self.many([s], [p])[0]

    def many(self, situations: Sequence[ChoiceSituation], products: Sequence[str]) -> list[int]:
        F = np.vstack([quantity_features(s, p) for s, p in zip(situations, products, strict=True)])
        return [_round_half_up(float(np.exp(v))) for v in self.model.predict(F)]


QUANTITY_STRATEGIES = ("one", "customer-median", "product-median", "regressor")


def make_quantity(options: PredictorOptions) -> QuantityFn:
    if options.quantity == "one":
        return quantity_one
    if options.quantity == "customer-median":
        return quantity_customer_median
    if options.quantity == "product-median":
        return quantity_product_median
    if options.quantity == "regressor":
        return QuantityRegressor(_require_training(options, "quantity 'regressor'"), seed=options.seed)
    raise EvaluationError(
        f"unknown quantity strategy {options.quantity!r}; choose one of {', '.join(QUANTITY_STRATEGIES)}"
    )


# ------------------------------------------------------------------ choice baselines
def rank_probs(scores: np.ndarray) -> np.ndarray:
    """Ordinal probabilities for heuristic scores: halve per rank (ties share their average rank)."""
    ranks = rankdata(-scores, method="average") - 1
    p = 0.5**ranks
    return p / p.sum()


class ScoreBaseline:
    """Pick the highest-scoring candidate (ties broken by a seeded draw); probabilities from scores."""

    def __init__(
        self, name: str, score: Callable[[ChoiceSituation], np.ndarray], probs: str, options: PredictorOptions
    ):
        self.name = name
        self.score = score
        self.probs_kind = probs  # "rank", "proportional" or "uniform"
        self.quantity = make_quantity(options)
        self.seed = options.seed

    def _probs(self, scores: np.ndarray) -> np.ndarray:
        if self.probs_kind == "uniform":
            return np.full(len(scores), 1.0 / len(scores))
        if self.probs_kind == "proportional":
            p = np.maximum(scores, 0) + 1e-6
            return p / p.sum()
        return rank_probs(scores)

    def predict(self, situations: Sequence[ChoiceSituation]) -> list[Prediction]:
        out = []
        picks = []
        for s in situations:
            scores = self.score(s)
            best = np.flatnonzero(scores == scores.max())
            k = int(best[0]) if len(best) == 1 else int(case_rng(self.seed, s.situation_id).choice(best))
            picks.append(s.candidates[k].product_id)
            out.append((s, scores))
        qty = _quantities(self.quantity, situations, picks)
        return [
            Prediction(
                case_id=s.situation_id,
                product_id=pick,
                quantity=q,
                probs=dict(zip(s.candidate_ids, self._probs(scores).tolist(), strict=True)),
            )
            for (s, scores), pick, q in zip(out, picks, qty, strict=True)
        ]


def _quantities(fn: QuantityFn, situations: Sequence[ChoiceSituation], picks: Sequence[str]) -> list[int]:
    if isinstance(fn, QuantityRegressor):
        return fn.many(situations, picks)
    return [fn(s, p) for s, p in zip(situations, picks, strict=True)]


def _popularity(s: ChoiceSituation) -> np.ndarray:
    return np.array([c.popularity for c in s.candidates])


def _cheapness(s: ChoiceSituation) -> np.ndarray:
    return -np.array([c.price for c in s.candidates])


def _discount(s: ChoiceSituation) -> np.ndarray:
    return np.array([c.discount for c in s.candidates])


def _history(s: ChoiceSituation) -> np.ndarray:
    """Times bought before; popularity (< 1) breaks ties, so an unknown subclass falls back to it."""
    counts = np.array([(h.times_bought if (h := s.own_history.get(c.product_id)) else 0) for c in s.candidates])
    return counts + _popularity(s)


def _uniform(s: ChoiceSituation) -> np.ndarray:
    return np.zeros(len(s.candidates))


# ------------------------------------------------------------------ fitted choice models
class LogitBaseline:
    """The conditional logit of the choice model (fitted on training cases) with a quantity strategy."""

    def __init__(self, options: PredictorOptions, name: str = "baseline:logit"):
        from malles_graph.evaluation.choice_model import ChoiceModel

        self.name = name
        if options.model_path:
            self.model = ChoiceModel.load(options.model_path)
        else:
            train = _require_training(options, name)
            require_choices(train, name)
            self.model = ChoiceModel.fit(train)
        self.quantity = make_quantity(options)

    def predict(self, situations: Sequence[ChoiceSituation]) -> list[Prediction]:
        probs = self.model.predict_proba_many(situations)
        picks = [max(p, key=p.get) for p in probs]
        qty = _quantities(self.quantity, situations, picks)
        return [
            Prediction(case_id=s.situation_id, product_id=pick, quantity=q, probs=p)
            for s, pick, q, p in zip(situations, picks, qty, probs, strict=True)
        ]


RANKER_FEATURES = (*FEATURES, "log_price", "price_rank", "popularity_rank", "n_candidates", "log_regular_price")


def ranker_features(
    situations: Sequence[ChoiceSituation], attributes: AttributeSchema
) -> tuple[np.ndarray, np.ndarray]:
    """Logit features plus within-case ranks and raw levels (trees need them explicit), and the product
    attributes the ranker was fitted with (as the agent reads them)."""
    block = stack(situations)
    extra = []
    for s in situations:
        price = np.array([max(c.price, 0.01) for c in s.candidates])
        pop = _popularity(s)
        n = len(price)
        extra.append(
            np.column_stack(
                [
                    np.log(price),
                    rankdata(price) / n,
                    rankdata(-pop) / n,
                    np.full(n, n),
                    np.log([max(c.regular_price, 0.01) for c in s.candidates]),
                    np.array(attributes.rows(s), dtype=float).reshape(n, -1),
                ]
            )
        )
    return np.hstack([block.X, np.vstack(extra)]), block.offsets


class RankerBaseline:
    """LightGBM LGBMRanker (lambdarank) over candidate features, fitted on training cases. It reads the
    product attributes too, so on a case file that carries them the best classical baseline sees what the
    agent sees and the comparison measures the models, not the inputs."""

    def __init__(self, options: PredictorOptions):
        from lightgbm import LGBMRanker

        self.name = "baseline:lgbm"
        train = _require_training(options, self.name)
        require_choices(train, self.name)
        self.attributes = AttributeSchema.fit(train)
        X, offsets = ranker_features(train, self.attributes)
        y = np.zeros(len(X), dtype=int)
        for i, c in enumerate(train):
            y[offsets[i] + c.candidate_ids.index(c.truth_product_id)] = 1
        self.model = LGBMRanker(
            objective="lambdarank",
            n_estimators=200,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=20,
            random_state=options.seed,
            verbose=-1,
            n_jobs=1,  # threads oversubscribe a small shared machine and slow the fit down many times
        )
        self.model.fit(X, y, group=np.diff(offsets))
        self.quantity = make_quantity(options)

    def predict(self, situations: Sequence[ChoiceSituation]) -> list[Prediction]:
        X, offsets = ranker_features(situations, self.attributes)
        scores = self.model.predict(X)
        p = segment_softmax(scores, offsets)
        picks, probs = [], []
        for i, s in enumerate(situations):
            pi = p[offsets[i] : offsets[i + 1]]
            picks.append(s.candidates[int(np.argmax(pi))].product_id)
            probs.append(dict(zip(s.candidate_ids, pi.tolist(), strict=True)))
        qty = _quantities(self.quantity, situations, picks)
        return [
            Prediction(case_id=s.situation_id, product_id=pick, quantity=q, probs=pr)
            for s, pick, q, pr in zip(situations, picks, qty, probs, strict=True)
        ]


def _heuristic(name: str, score: Callable[[ChoiceSituation], np.ndarray], probs: str) -> Factory:
    return lambda options: ScoreBaseline(name, score, probs, options)


register("baseline:random", _heuristic("baseline:random", _uniform, "uniform"), "uniform random candidate (seeded)")
register(
    "baseline:popular",
    _heuristic("baseline:popular", _popularity, "proportional"),
    "most popular in the fit period; probabilities proportional to popularity",
)
register("baseline:cheapest", _heuristic("baseline:cheapest", _cheapness, "rank"), "lowest current price")
register("baseline:discount", _heuristic("baseline:discount", _discount, "rank"), "largest discount vs regular price")
register(
    "baseline:history", _heuristic("baseline:history", _history, "rank"), "most often bought before (ties: popularity)"
)
register("baseline:logit", lambda o: LogitBaseline(o), "conditional logit over candidate features (needs --train)")
register("baseline:lgbm", RankerBaseline, "LightGBM lambdarank ranker, logit features + attributes (needs --train)")
