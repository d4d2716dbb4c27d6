"""Calibration f: raw agent choice distributions and quantities -> calibrated ones.

Fitted on a validation split (cases with truth that the aligned model did not train on), f has
three parts:

- a **probability map** over the candidates of one case. ``temperature`` fits one exponent
  (p_k ** a, renormalised: temperature scaling, T = 1/a); ``stacked`` is a conditional logit
  on [log p_llm, choice-model utility, candidate-position dummies] so the LLM's scores are
  combined with the econometric utilities and a position bias is undone; ``platt`` is a
  logistic regression of the truth indicator on logit(p) per candidate and ``isotonic`` a
  monotone map of p per candidate, both renormalised within the case.
- a **quantity map** toward the customer's usual quantity: a median (quantile 0.5) regression
  of log(true units) on [log raw units, log usual units]; the median minimises absolute error,
  the metric we report, and Ta Feng quantities are heavily skewed (most lines are 1 unit).
- a **confidence map** for single decisions (isotonic on the top-label confidence), used by
  the decision graph's hook ``f(decision, X, Z)`` when no full distribution is available.

Everything is stored as plain numbers in JSON (no pickles), so a calibration file is readable
and portable. Expected calibration error (top-label, equal-width bins) is reported before and
after by :func:`calibration_report`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from malles_graph.alignment.errors import AlignmentError
from malles_graph.models import ChoiceSituation, Decision, HiddenFactors
from malles_graph.paths import output_file

FORMAT = "malles-calibration/1"
FLOOR = 1e-6
Method = Literal["none", "temperature", "stacked", "platt", "isotonic"]
METHODS: tuple[str, ...] = ("none", "temperature", "stacked", "platt", "isotonic")


# ---------------------------------------------------------------- calibration errors
def _check(probs: Sequence[np.ndarray], truth: Sequence[int]) -> None:
    if len(probs) != len(truth):
        raise AlignmentError(f"{len(probs)} probability vectors but {len(truth)} truth indices")
    if not probs:
        raise AlignmentError("no cases to calibrate on")
    for i, (p, t) in enumerate(zip(probs, truth, strict=True)):
        if not 0 <= t < len(p):
            raise AlignmentError(f"case {i}: truth index {t} outside its {len(p)} candidates")


def normalise(p: np.ndarray) -> np.ndarray:
    p = np.maximum(np.asarray(p, dtype=float), 0.0) + FLOOR
    return p / p.sum()


def expected_calibration_error(probs: Sequence[np.ndarray], truth: Sequence[int], n_bins: int = 10) -> float:
    """Top-label ECE: sum over confidence bins of |accuracy - mean confidence| x bin share."""
    _check(probs, truth)
    conf = np.array([float(np.max(p)) for p in probs])
    correct = np.array([float(int(np.argmax(p)) == t) for p, t in zip(probs, truth, strict=True)])
    return _binned_gap(conf, correct, n_bins)


def classwise_ece(probs: Sequence[np.ndarray], truth: Sequence[int], n_bins: int = 10) -> float:
    """ECE over every (case, candidate) probability against its 0/1 outcome."""
    _check(probs, truth)
    p = np.concatenate([np.asarray(x, dtype=float) for x in probs])
    y = np.concatenate([np.eye(len(x))[t] for x, t in zip(probs, truth, strict=True)])
    return _binned_gap(p, y, n_bins)


def _binned_gap(conf: np.ndarray, outcome: np.ndarray, n_bins: int) -> float:
    bins = np.clip((conf * n_bins).astype(int), 0, n_bins - 1)
    gap = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            gap += mask.mean() * abs(outcome[mask].mean() - conf[mask].mean())
    return float(gap)


def log_loss(probs: Sequence[np.ndarray], truth: Sequence[int]) -> float:
    _check(probs, truth)
    return float(np.mean([-math.log(normalise(p)[t]) for p, t in zip(probs, truth, strict=True)]))


def hit_at_1(probs: Sequence[np.ndarray], truth: Sequence[int]) -> float:
    _check(probs, truth)
    return float(np.mean([int(np.argmax(p)) == t for p, t in zip(probs, truth, strict=True)]))


# ---------------------------------------------------------------- probability maps
MAX_POSITIONS = 8  # position dummies for candidates 2..8 (the first is the reference)


def _stacked_features(p: np.ndarray, utility: np.ndarray | None, use_utility: bool, positions: bool) -> np.ndarray:
    cols = [np.log(normalise(p))]
    if use_utility:
        if utility is None:
            raise AlignmentError("this calibration was fitted with choice-model utilities; pass them to transform")
        cols.append(np.asarray(utility, dtype=float))
    if positions:
        k = len(p)
        dummies = np.zeros((k, MAX_POSITIONS - 1))
        for j in range(1, min(k, MAX_POSITIONS)):
            dummies[j, j - 1] = 1.0
        cols.extend(dummies.T)
    return np.column_stack(cols)


@dataclass
class ProbabilityMap:
    """One fitted map from raw candidate probabilities (and optional utilities) to calibrated ones."""

    method: str = "none"
    coef: list[float] = field(default_factory=list)
    intercept: float = 0.0
    use_utility: bool = False
    positions: bool = False
    x_knots: list[float] = field(default_factory=list)
    y_knots: list[float] = field(default_factory=list)

    @classmethod
    def fit(
        cls,
        probs: Sequence[np.ndarray],
        truth: Sequence[int],
        method: str = "temperature",
        utilities: Sequence[np.ndarray] | None = None,
        positions: bool = True,
        l2: float = 1e-3,
    ) -> ProbabilityMap:
        _check(probs, truth)
        if method not in METHODS:
            raise AlignmentError(f"unknown calibration method {method!r}; choose one of {', '.join(METHODS)}")
        if method == "none":
            return cls()
        if method in ("temperature", "stacked"):
            use_utility = method == "stacked" and utilities is not None
            pos = method == "stacked" and positions
            feats = [
                _stacked_features(p, utilities[i] if use_utility else None, use_utility, pos)  # type: ignore[index]
                for i, p in enumerate(probs)
            ]
            coef = _fit_conditional_logit(feats, truth, l2=l2)
            return cls(method=method, coef=coef.tolist(), use_utility=use_utility, positions=pos)
        flat_p = np.concatenate([normalise(p) for p in probs])
        flat_y = np.concatenate([np.eye(len(p))[t] for p, t in zip(probs, truth, strict=True)])
        if method == "platt":
            from sklearn.linear_model import LogisticRegression

            z = np.log(flat_p / (1 - flat_p + FLOOR)).reshape(-1, 1)
            model = LogisticRegression(C=1e4).fit(z, flat_y)
            return cls(method=method, coef=[float(model.coef_[0, 0])], intercept=float(model.intercept_[0]))
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(flat_p, flat_y)
        return cls(method=method, x_knots=iso.X_thresholds_.tolist(), y_knots=iso.y_thresholds_.tolist())

    def transform_one(self, p: np.ndarray, utility: np.ndarray | None = None) -> np.ndarray:
        p = normalise(p)
        if self.method == "none":
            return p
        if self.method in ("temperature", "stacked"):
            u = _stacked_features(p, utility, self.use_utility, self.positions) @ np.asarray(self.coef)
            e = np.exp(u - u.max())
            return e / e.sum()
        if self.method == "platt":
            z = np.log(p / (1 - p + FLOOR))
            return normalise(1.0 / (1.0 + np.exp(-(self.coef[0] * z + self.intercept))))
        return normalise(np.interp(p, self.x_knots, self.y_knots))

    def transform(
        self, probs: Sequence[np.ndarray], utilities: Sequence[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        return [self.transform_one(p, None if utilities is None else utilities[i]) for i, p in enumerate(probs)]

    @property
    def temperature(self) -> float | None:
        """T of temperature scaling (1 / the log-probability coefficient)."""
        if self.method in ("temperature", "stacked") and self.coef and self.coef[0] != 0:
            return 1.0 / self.coef[0]
        return None


def _fit_conditional_logit(feats: Sequence[np.ndarray], truth: Sequence[int], l2: float) -> np.ndarray:
    from malles_graph.evaluation.choice_model import fit_conditional_logit
    from malles_graph.evaluation.features import FeatureBlock

    sizes = [len(f) for f in feats]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    block = FeatureBlock(X=np.vstack(feats), offsets=offsets, product_ids=[""] * int(offsets[-1]))
    chosen = offsets[:-1] + np.asarray(truth, dtype=np.int64)
    return fit_conditional_logit(block, chosen, l2=l2)


# ---------------------------------------------------------------- quantity map
@dataclass
class QuantityMap:
    """Median regression of log(true units) on [log raw units, log usual units]."""

    coef: list[float] = field(default_factory=lambda: [1.0, 0.0])
    intercept: float = 0.0
    max_quantity: int = 1000

    @classmethod
    def fit(cls, raw: Sequence[float], usual: Sequence[float], truth: Sequence[float]) -> QuantityMap:
        if not (len(raw) == len(usual) == len(truth)) or len(raw) == 0:
            raise AlignmentError(
                f"quantity calibration needs equal, non-empty lists (got {len(raw)}, {len(usual)}, {len(truth)})"
            )
        from sklearn.linear_model import QuantileRegressor

        X = np.column_stack([_log_units(raw), _log_units(usual)])
        y = _log_units(truth)
        model = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(X, y)
        return cls(coef=model.coef_.tolist(), intercept=float(model.intercept_))

    def __call__(self, raw: float, usual: float | None) -> int:
        usual = raw if usual is None or usual <= 0 else usual
        z = self.coef[0] * math.log(max(raw, 1.0)) + self.coef[1] * math.log(max(usual, 1.0)) + self.intercept
        return int(min(self.max_quantity, max(1, math.floor(math.exp(z) + 0.5))))


def _log_units(values: Sequence[float]) -> np.ndarray:
    return np.log(np.maximum(np.asarray(values, dtype=float), 1.0))


# ---------------------------------------------------------------- confidence map
@dataclass
class ConfidenceMap:
    """Isotonic map of a single decision's stated (or top-label) confidence to its hit rate."""

    x_knots: list[float] = field(default_factory=list)
    y_knots: list[float] = field(default_factory=list)

    @classmethod
    def fit(cls, confidence: Sequence[float], correct: Sequence[bool]) -> ConfidenceMap:
        from sklearn.isotonic import IsotonicRegression

        if len(confidence) != len(correct) or len(confidence) == 0:
            raise AlignmentError("confidence calibration needs equal, non-empty lists")
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
            np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
        )
        return cls(x_knots=iso.X_thresholds_.tolist(), y_knots=iso.y_thresholds_.tolist())

    def __call__(self, confidence: float) -> float:
        if not self.x_knots:
            return confidence
        return float(np.interp(confidence, self.x_knots, self.y_knots))


# ---------------------------------------------------------------- the calibration f
@dataclass
class Calibration:
    """The fitted f: probability, quantity and confidence maps, with fit-time figures."""

    probability: ProbabilityMap = field(default_factory=ProbabilityMap)
    quantity: QuantityMap | None = None
    confidence: ConfidenceMap | None = None
    report: dict[str, float] = field(default_factory=dict)
    fitted_for: dict[str, str] = field(default_factory=dict)  # {"backend": ..., "model": ...} the answers came from

    # the decision graph's hook (malles_graph.retail.stabilise.Calibrator)
    def __call__(self, decision: Decision, situation: ChoiceSituation, hidden: HiddenFactors | None = None) -> Decision:
        """Calibrate one decision: quantity toward the usual quantity, confidence to a hit rate.

        The usual quantity is Z's ``usual_quantity`` when given, else the customer's own history
        with the product, recent median or mean (X). The chosen product is kept: one decision has
        no distribution to re-rank (use :meth:`calibrate_probs` when probabilities exist).
        """
        if decision.product_id == "none":
            return decision
        if hidden is not None and hidden.usual_quantity > 0:
            usual = hidden.usual_quantity
        else:
            from malles_graph.alignment.apply import usual_quantity

            usual = usual_quantity(situation, decision.product_id)
        quantity = self.quantity(decision.quantity, usual) if self.quantity else decision.quantity
        confidence = self.confidence(decision.confidence) if self.confidence else decision.confidence
        return decision.model_copy(update={"quantity": quantity, "confidence": confidence})

    def calibrate_probs(self, probs: np.ndarray, utility: np.ndarray | None = None) -> np.ndarray:
        return self.probability.transform_one(probs, utility)

    def calibrate_quantity(self, raw: float, usual: float | None) -> int:
        return self.quantity(raw, usual) if self.quantity else max(1, int(round(raw)))

    # persistence
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "probability": self.probability.__dict__,
            "quantity": None if self.quantity is None else self.quantity.__dict__,
            "confidence": None if self.confidence is None else self.confidence.__dict__,
            "report": self.report,
            "fitted_for": self.fitted_for,
        }

    def save(self, path: str | Path) -> Path:
        path = output_file(path)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        path = Path(path)
        if not path.exists():
            raise AlignmentError(f"{path}: calibration file not found (fit one with `malles align calibrate`)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise AlignmentError(f"{path}: not valid JSON ({exc.msg})") from None
        except (UnicodeDecodeError, OSError) as exc:  # a binary file, a folder: not a calibration either
            raise AlignmentError(f"{path}: not a readable calibration file ({exc.__class__.__name__})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            if not isinstance(data, dict):
                found = f"a JSON {type(data).__name__}"
            elif "format" not in data:
                found = "no 'format' field"
            else:
                found = f"format {data['format']!r}"
            raise AlignmentError(
                f"{path}: {found}, not a calibration file (format {FORMAT!r}; `malles align calibrate` writes one)"
            )
        try:
            return cls(
                probability=ProbabilityMap(**data["probability"]),
                quantity=QuantityMap(**data["quantity"]) if data.get("quantity") else None,
                confidence=ConfidenceMap(**data["confidence"]) if data.get("confidence") else None,
                report=data.get("report", {}),
                fitted_for=dict(data.get("fitted_for") or {}),
            )
        except (KeyError, TypeError) as exc:
            raise AlignmentError(f"{path}: malformed calibration ({exc})") from None

    @classmethod
    def load_for(cls, path: str | Path, backend: str, model: str | None = None) -> Calibration:
        """Load a calibration for the decisions of ``backend`` / ``model``; a mismatch is an error.

        A calibration maps one model's answers: applied to another model's it would distort them,
        so a file whose ``fitted_for`` names another backend or model is refused, naming the field.
        """
        cal = cls.load(path)
        for key, wanted in (("backend", backend), ("model", model)):
            fitted = cal.fitted_for.get(key)
            if fitted and wanted and fitted != wanted:
                raise AlignmentError(
                    f"{path}: fitted_for.{key} is {fitted!r} but the decisions come from {key} {wanted!r}; "
                    "fit a calibration on this model's answers (`malles align calibrate`)"
                )
        if cal.probability.method not in METHODS:
            raise AlignmentError(f"{path}: probability.method {cal.probability.method!r} is not one of {METHODS}")
        return cal


def fit_calibration(
    probs: Sequence[np.ndarray],
    truth: Sequence[int],
    *,
    method: str = "temperature",
    utilities: Sequence[np.ndarray] | None = None,
    raw_quantity: Sequence[float] | None = None,
    usual_quantity: Sequence[float] | None = None,
    true_quantity: Sequence[float] | None = None,
    positions: bool = True,
    fitted_for: dict[str, str] | None = None,
) -> Calibration:
    """Fit f on a validation split; ``report`` holds the fit-split ECE/log-loss before and after.

    ``fitted_for`` ({"backend", "model"}) records whose answers were calibrated, so the graph can
    refuse the file for another model.
    """
    prob_map = ProbabilityMap.fit(probs, truth, method=method, utilities=utilities, positions=positions)
    qmap = None
    if raw_quantity is not None and usual_quantity is not None and true_quantity is not None:
        qmap = QuantityMap.fit(raw_quantity, usual_quantity, true_quantity)
    conf = ConfidenceMap.fit(
        [float(np.max(p)) for p in probs], [int(np.argmax(p)) == t for p, t in zip(probs, truth, strict=True)]
    )
    cal = Calibration(probability=prob_map, quantity=qmap, confidence=conf, fitted_for=dict(fitted_for or {}))
    cal.report = calibration_report(probs, truth, prob_map.transform(probs, utilities), prefix="fit_")
    return cal


def calibration_report(
    raw: Sequence[np.ndarray], truth: Sequence[int], calibrated: Sequence[np.ndarray], prefix: str = ""
) -> dict[str, float]:
    """ECE, class-wise ECE, log-loss and hit@1 before and after calibration."""
    return {
        f"{prefix}n": float(len(truth)),
        f"{prefix}ece_before": expected_calibration_error(raw, truth),
        f"{prefix}ece_after": expected_calibration_error(calibrated, truth),
        f"{prefix}classwise_ece_before": classwise_ece(raw, truth),
        f"{prefix}classwise_ece_after": classwise_ece(calibrated, truth),
        f"{prefix}logloss_before": log_loss(raw, truth),
        f"{prefix}logloss_after": log_loss(calibrated, truth),
        f"{prefix}hit1_before": hit_at_1(raw, truth),
        f"{prefix}hit1_after": hit_at_1(calibrated, truth),
    }
