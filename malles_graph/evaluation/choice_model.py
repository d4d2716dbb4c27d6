"""The choice-model agent: a conditional logit over candidates plus a log-quantity regression.

It is the LLM-free decision maker (backend ``choice-model``): fitted on evaluation cases
built from a fit period, it gives choice probabilities, a quantity, a :class:`Decision`, and
short computed analyses per debate role (``explain``) that the decision graph can use in place
of LLM turns. Saved as plain JSON (coefficients and names; no pickled code).

Usage::

    model = ChoiceModel.fit(train_cases)            # classmethod: returns a fitted model
    model.predict_proba(situation)                   # {product_id: p}
    model.decide(situation)                          # Decision
    model.decide_many(situations)                    # vectorised, thousands per second
    model.explain(situation)                         # {"product_specialist": ..., "price_analyst": ..., "persona": ...}
    model.save("choice_model.json"); ChoiceModel.load("choice_model.json")
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from malles_graph.errors import MallesError
from malles_graph.evaluation.cases import require_choices
from malles_graph.evaluation.features import (
    FEATURES,
    QUANTITY_FEATURES,
    FeatureBlock,
    candidate_features,
    quantity_features,
    segment_ids,
    segment_softmax,
    stack,
)
from malles_graph.models import ChoiceSituation, Decision
from malles_graph.paths import output_file, written_whole

FORMAT = "malles-choice-model/1"
COMPUTED = "[computed by the choice model, not an LLM]"
MAX_QUANTITY = 1000
ROLE_TERMS = {
    "product_specialist": ("log_popularity", "own_count"),
    "price_analyst": ("log_price_rel", "discount", "price_gap"),
    "persona": ("own_count", "own_recency", "price_gap"),
}


def fit_conditional_logit(block: FeatureBlock, chosen_rows: np.ndarray, l2: float = 1e-2) -> np.ndarray:
    """Maximum-likelihood coefficients of a conditional logit (L2-penalised), by L-BFGS.

    ``chosen_rows[i]`` is the row index (into ``block.X``) of the chosen candidate of case i.
    """
    X, offsets = block.X, block.offsets
    n = block.n_situations
    if n == 0:
        raise MallesError("cannot fit a conditional logit on zero cases")
    seg = segment_ids(offsets)
    X_chosen_sum = X[chosen_rows].sum(axis=0)

    def objective(beta: np.ndarray) -> tuple[float, np.ndarray]:
        u = X @ beta
        p = segment_softmax(u, offsets)
        top = np.maximum.reduceat(u, offsets[:-1])
        log_norm = top + np.log(np.add.reduceat(np.exp(u - top[seg]), offsets[:-1]))
        nll = log_norm.sum() - u[chosen_rows].sum()
        grad = (p[:, None] * X).sum(axis=0) - X_chosen_sum
        return (nll / n + l2 * beta @ beta, grad / n + 2 * l2 * beta)

    result = minimize(objective, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B")
    return result.x


def fit_log_quantity(F: np.ndarray, quantity: np.ndarray, l2: float = 1e-3) -> tuple[np.ndarray, float]:
    """Ridge regression of log(units) on quantity features; returns (coef, intercept)."""
    y = np.log(np.maximum(quantity, 1).astype(float))
    mean = F.mean(axis=0)
    Fc = F - mean
    A = Fc.T @ Fc + l2 * len(y) * np.eye(F.shape[1])
    coef = np.linalg.solve(A, Fc.T @ (y - y.mean()))
    return coef, float(y.mean() - mean @ coef)


class ChoiceModel:
    """A fitted conditional logit (which product) and log-quantity regression (how many)."""

    max_units = MAX_QUANTITY  # the most units it answers (the decision graph accepts up to this many from it)

    def __init__(
        self,
        coef: Sequence[float],
        quantity_coef: Sequence[float],
        quantity_intercept: float,
        meta: dict | None = None,
    ) -> None:
        self.coef = np.asarray(coef, dtype=float)
        self.quantity_coef = np.asarray(quantity_coef, dtype=float)
        self.quantity_intercept = float(quantity_intercept)
        if self.coef.shape != (len(FEATURES),) or self.quantity_coef.shape != (len(QUANTITY_FEATURES),):
            raise MallesError(
                f"choice model needs {len(FEATURES)} utility and {len(QUANTITY_FEATURES)} quantity coefficients, "
                f"got {self.coef.shape} and {self.quantity_coef.shape}"
            )
        self.meta = dict(meta or {})

    # ---------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, cases: Sequence, l2: float = 1e-2) -> ChoiceModel:
        """Fit on evaluation cases (``ChoiceCase``: situations with truth) from a fit period."""
        if not cases:
            raise MallesError("cannot fit the choice model on zero cases")
        if not (np.isfinite(l2) and l2 >= 0):  # a negative or NaN penalty "fitted" runaway or NaN coefficients
            raise MallesError(f"l2 penalty {l2!r}: must be a finite number >= 0")
        require_choices(cases, "the choice model")
        block = stack(cases)
        chosen = np.array(
            [int(block.offsets[i]) + c.candidate_ids.index(c.truth_product_id) for i, c in enumerate(cases)]
        )
        coef = fit_conditional_logit(block, chosen, l2=l2)
        F = np.vstack([quantity_features(c, c.truth_product_id) for c in cases])
        q = np.array([c.truth_quantity for c in cases])
        q_coef, q_icpt = fit_log_quantity(F, q)
        model = cls(coef, q_coef, q_icpt, meta={"n_cases": len(cases), "l2": l2})
        model.meta["train_hit1"] = float(
            np.mean(
                [
                    max(p, key=p.get) == c.truth_product_id
                    for p, c in zip(model.predict_proba_many(cases), cases, strict=True)
                ]
            )
        )
        return model

    # ---------------------------------------------------------------- choice
    def utilities(self, situation: ChoiceSituation) -> np.ndarray:
        return candidate_features(situation) @ self.coef

    def predict_proba(self, situation: ChoiceSituation) -> dict[str, float]:
        """Choice probability of each candidate (sums to 1)."""
        u = self.utilities(situation)
        e = np.exp(u - u.max())
        p = e / e.sum()
        return {c.product_id: float(pi) for c, pi in zip(situation.candidates, p, strict=True)}

    def predict_proba_many(self, situations: Sequence[ChoiceSituation]) -> list[dict[str, float]]:
        block = stack(situations)
        p = segment_softmax(block.X @ self.coef, block.offsets)
        return [
            dict(zip(block.product_ids[block.rows(i)], p[block.rows(i)].tolist(), strict=True))
            for i in range(block.n_situations)
        ]

    # ---------------------------------------------------------------- quantity
    def _quantity_from_log(self, log_q: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(np.exp(log_q)), 1, MAX_QUANTITY).astype(int)

    def predict_quantity(self, situation: ChoiceSituation, product_id: str) -> int:
        """Units the customer would buy of ``product_id`` (at least 1)."""
        log_q = quantity_features(situation, product_id) @ self.quantity_coef + self.quantity_intercept
        return int(self._quantity_from_log(np.array([log_q]))[0])

    # ---------------------------------------------------------------- decisions
    def decide(self, situation: ChoiceSituation, rng: np.random.Generator | None = None) -> Decision:
        """The most probable candidate (or a draw from the probabilities when ``rng`` is given)."""
        return self.decide_many([situation], rng=rng)[0]

    def decide_many(
        self, situations: Sequence[ChoiceSituation], rng: np.random.Generator | None = None
    ) -> list[Decision]:
        """Decisions for many situations at once (vectorised features, softmax and quantities)."""
        if not situations:
            return []
        block = stack(situations)
        p = segment_softmax(block.X @ self.coef, block.offsets)
        picks = []
        for i in range(block.n_situations):
            rows = block.rows(i)
            pi = p[rows]
            k = int(rng.choice(len(pi), p=pi / pi.sum())) if rng is not None else int(np.argmax(pi))
            picks.append((rows.start + k, float(pi[k])))
        F = np.vstack([quantity_features(s, block.product_ids[r]) for s, (r, _) in zip(situations, picks, strict=True)])
        qty = self._quantity_from_log(F @ self.quantity_coef + self.quantity_intercept)
        return [
            Decision.model_construct(
                product_id=block.product_ids[r],
                quantity=int(q),
                rationale=f"choice model: p={prob:.2f} for the chosen candidate",
                confidence=prob,
            )
            for (r, prob), q in zip(picks, qty, strict=True)
        ]

    # ---------------------------------------------------------------- explanations
    def explain(self, situation: ChoiceSituation, top: int = 5) -> dict[str, str]:
        """Short computed analyses per debate role, from utility contributions.

        Each contribution is coefficient x (feature - its mean over the offered candidates),
        i.e. how much the term pushes the candidate above or below the average candidate.
        """
        X = candidate_features(situation)
        contrib = (X - X.mean(axis=0)) * self.coef
        probs = self.predict_proba(situation)
        order = sorted(range(len(situation.candidates)), key=lambda i: -probs[situation.candidates[i].product_id])
        order = order[:top]
        index = {name: j for j, name in enumerate(FEATURES)}

        def name(i: int) -> str:
            c = situation.candidates[i]
            return f"{c.label} ({c.product_id})" if c.label else c.product_id

        def terms(i: int, role: str) -> str:
            parts = [f"{t} {contrib[i, index[t]]:+.2f}" for t in ROLE_TERMS[role]]
            total = sum(contrib[i, index[t]] for t in ROLE_TERMS[role])
            return f"{', '.join(parts)} (sum {total:+.2f})"

        lines: dict[str, list[str]] = {role: [] for role in ROLE_TERMS}
        for i in order:
            c = situation.candidates[i]
            hist = situation.own_history.get(c.product_id)
            lines["product_specialist"].append(
                f"{name(i)}: popularity {c.popularity:.1%} of subclass units; {terms(i, 'product_specialist')}"
            )
            lines["price_analyst"].append(
                f"{name(i)}: price {c.price:.2f} vs regular {c.regular_price:.2f} ({_price_vs_regular(c)}); "
                f"{terms(i, 'price_analyst')}"
            )
            bought = (
                "never bought"
                if not hist or hist.times_bought == 0
                else (f"bought {hist.times_bought}x, last {_days(situation.date, hist.last_date)}")
            )
            lines["persona"].append(f"{name(i)}: {bought}; {terms(i, 'persona')}")
        best = order[0]
        summary = f"most likely {name(best)} with p={probs[situation.candidates[best].product_id]:.2f}"
        return {
            role: f"{COMPUTED} Utility contributions vs the average candidate; {summary}.\n" + "\n".join(text)
            for role, text in lines.items()
        }

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "features": list(FEATURES),
            "coef": self.coef.tolist(),
            "quantity_features": list(QUANTITY_FEATURES),
            "quantity_coef": self.quantity_coef.tolist(),
            "quantity_intercept": self.quantity_intercept,
            "meta": self.meta,
        }

    def save(self, path: str | Path) -> Path:
        path = output_file(path)
        with written_whole(path) as tmp:  # a concurrent reader never sees half a file
            tmp.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> ChoiceModel:
        path = Path(path)
        if not path.exists():
            raise MallesError(f"{path}: choice model file not found; fit one with `malles eval fit`")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:  # OSError: a folder
            raise MallesError(f"{path}: not a JSON choice model ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise MallesError(f"{path}: not a choice model file (expected format {FORMAT!r})")
        if data.get("features") != list(FEATURES) or data.get("quantity_features") != list(QUANTITY_FEATURES):
            raise MallesError(
                f"{path}: saved with features {data.get('features')} / {data.get('quantity_features')}, "
                f"this version uses {list(FEATURES)} / {list(QUANTITY_FEATURES)}; fit it again"
            )
        return cls(data["coef"], data["quantity_coef"], data["quantity_intercept"], meta=data.get("meta"))

    def coefficients(self) -> dict[str, float]:
        return dict(zip(FEATURES, self.coef.tolist(), strict=True))


def _price_vs_regular(product) -> str:
    if product.regular_price <= 0:
        return "no regular price"
    change = product.price / product.regular_price - 1.0
    if abs(change) < 0.005:
        return "at the regular price"
    return f"{-change:.0%} off" if change < 0 else f"{change:.0%} above regular"


def _days(today: dt.date, then: dt.date | None) -> str:
    if then is None:
        return "date unknown"
    days = (today - then).days
    return f"{days} day{'s' if days != 1 else ''} ago"


def default_model_path() -> Path:
    from malles_graph.paths import models_dir

    return models_dir() / "choice_model.json"


def default_model(refit: bool = False) -> ChoiceModel:
    """The choice model fitted on Ta Feng training cases, cached in ``$MALLES_HOME/models``.

    Fitted on first use (a few seconds) from cases of the default training split
    (see :data:`malles_graph.evaluation.builder.TRAIN_SPLIT`).
    """
    path = default_model_path()
    if path.exists() and not refit:
        return ChoiceModel.load(path)
    from malles_graph.evaluation.builder import TRAIN_SPLIT, build_cases

    cases = build_cases(TRAIN_SPLIT)
    model = ChoiceModel.fit(cases)
    model.meta["trained_on"] = TRAIN_SPLIT.model_dump(mode="json")
    model.save(path)
    return model


__all__ = ["ChoiceModel", "default_model", "default_model_path", "fit_conditional_logit"]
