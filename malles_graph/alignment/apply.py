"""Calibration on evaluation files: fit f from (cases, predictions), apply it to predictions.

A prediction without probabilities counts as a one-hot on its product (smoothed by the
normaliser's floor), so generated answers can be calibrated too, only less usefully.
Predictions that failed (no product) are passed through untouched: calibration never invents
an answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from malles_graph.alignment.calibration import Calibration, fit_calibration
from malles_graph.alignment.errors import AlignmentError
from malles_graph.evaluation.cases import ChoiceCase, Prediction
from malles_graph.evaluation.features import recent_median_quantity
from malles_graph.models import ChoiceSituation


def usual_quantity(situation: ChoiceSituation, product_id: str | None = None) -> float:
    """The customer's usual units: own mean for this product, else recent median, else mean, else 1."""
    hist = situation.own_history.get(product_id) if product_id else None
    if hist is not None and hist.times_bought > 0:
        return hist.total_quantity / hist.times_bought
    med = recent_median_quantity(situation)
    if med is not None:
        return med
    return situation.customer.mean_quantity or 1.0


def prob_vector(situation: ChoiceSituation, pred: Prediction) -> np.ndarray:
    ids = situation.candidate_ids
    if pred.probs:
        return np.array([max(0.0, float(pred.probs.get(c, 0.0))) for c in ids])
    return np.array([1.0 if c == pred.product_id else 0.0 for c in ids])


def _paired(cases: Sequence[ChoiceCase], preds: Sequence[Prediction]) -> list[tuple[ChoiceCase, Prediction]]:
    by_id = {p.case_id: p for p in preds}
    pairs = [(c, by_id[c.case_id]) for c in cases if c.case_id in by_id and by_id[c.case_id].product_id is not None]
    if not pairs:
        raise AlignmentError("no valid predictions to fit the calibration on")
    return pairs


def utilities_of(choice_model, situations: Sequence[ChoiceSituation]) -> list[np.ndarray] | None:
    if choice_model is None:
        return None
    return [choice_model.utilities(s) for s in situations]


def fit_on_predictions(
    cases: Sequence[ChoiceCase],
    preds: Sequence[Prediction],
    method: str = "temperature",
    choice_model=None,
    fitted_for: dict[str, str] | None = None,
) -> Calibration:
    """Fit f on validation cases and a backend's predictions for them.

    ``fitted_for`` ({"backend", "model"}) names whose answers these are; when empty it is read from
    the predictions' ``meta`` (when every prediction names the same backend and model).
    """
    pairs = _paired(cases, preds)
    probs = [prob_vector(c, p) for c, p in pairs]
    truth = [c.candidate_ids.index(c.truth_product_id) for c, _ in pairs]
    raw_q = [float(p.quantity or 1) for _, p in pairs]
    usual = [usual_quantity(c, p.product_id) for c, p in pairs]
    true_q = [float(c.truth_quantity) for c, _ in pairs]
    utilities = utilities_of(choice_model, [c for c, _ in pairs]) if method == "stacked" else None
    return fit_calibration(
        probs,
        truth,
        method=method,
        utilities=utilities,
        raw_quantity=raw_q,
        usual_quantity=usual,
        true_quantity=true_q,
        fitted_for=fitted_for or source_of(preds),
    )


def source_of(preds: Sequence[Prediction]) -> dict[str, str]:
    """{"backend", "model"} shared by every prediction's meta (keys that differ or are absent are left out)."""
    out: dict[str, str] = {}
    for key in ("backend", "model"):
        values = {str((p.meta or {}).get(key)) for p in preds if (p.meta or {}).get(key)}
        if len(values) == 1 and all((p.meta or {}).get(key) for p in preds):
            out[key] = values.pop()
    return out


def apply_to_predictions(
    situations: Sequence[ChoiceSituation], preds: Sequence[Prediction], calibration: Calibration, choice_model=None
) -> list[Prediction]:
    """Calibrated predictions: probabilities mapped, product = their argmax, quantity mapped."""
    by_id = {s.situation_id: s for s in situations}
    out = []
    needs_utility = calibration.probability.use_utility
    if needs_utility and choice_model is None:
        raise AlignmentError("this calibration is stacked on choice-model utilities: pass the choice model")
    for pred in preds:
        s = by_id.get(pred.case_id)
        if s is None or pred.product_id is None or pred.product_id not in s.candidate_ids:
            out.append(pred)
            continue
        utility = choice_model.utilities(s) if needs_utility else None
        p = calibration.calibrate_probs(prob_vector(s, pred), utility)
        pick = s.candidate_ids[int(np.argmax(p))]
        raw_q = float(pred.quantity or 1)
        quantity = calibration.calibrate_quantity(raw_q, usual_quantity(s, pick))
        out.append(
            pred.model_copy(
                update={
                    "product_id": pick,
                    "quantity": quantity,
                    "probs": dict(zip(s.candidate_ids, p.tolist(), strict=True)),
                }
            )
        )
    return out
