"""Reweighting w(X, Z): weights that make a simulated population's aggregates match the real one.

Two estimators, both giving weights as a *function* of a unit's features, so the same w
applies to new agents of the same kinds:

- **raking** (iterative proportional fitting) on categorical margins, e.g. archetype mix,
  age group and favourite category: w(x) = base x prod_m f_m[x_m], one factor table per
  margin, scaled in turn until every weighted margin equals its target share.
- **entropy balancing** (Hainmueller 2012) on numeric moments: w(x) = base x exp(lambda . x)
  / normaliser, the weights closest to the base weights (in Kullback-Leibler divergence) whose
  weighted means equal the target means; lambda solves the convex dual by L-BFGS.

:func:`aggregate_error` measures what the weights are for: the distance between simulated and
real aggregate demand shares (half the L1 distance, i.e. total variation).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from malles_graph.alignment.errors import AlignmentError
from malles_graph.paths import output_file

FORMAT = "malles-reweighting/1"


@dataclass
class RakingWeights:
    """Multiplicative factor tables fitted by iterative proportional fitting."""

    factors: dict[str, dict[str, float]] = field(default_factory=dict)
    iterations: int = 0
    max_margin_gap: float = 0.0
    converged: bool = False

    def weight(self, unit: Mapping[str, str]) -> float:
        """w(x) of one unit (relative; 1.0 for categories never seen when fitting)."""
        w = 1.0
        for margin, table in self.factors.items():
            w *= table.get(str(unit.get(margin)), 1.0)
        return w

    def weights(self, margins: Mapping[str, Sequence[str]], base: np.ndarray | None = None) -> np.ndarray:
        n = _n_units(margins)
        w = np.ones(n) if base is None else np.asarray(base, dtype=float).copy()
        for margin, table in self.factors.items():
            labels = margins[margin]
            w *= np.array([table.get(str(v), 1.0) for v in labels])
        return w / w.sum() * n


def _n_units(margins: Mapping[str, Sequence[str]]) -> int:
    sizes = {len(v) for v in margins.values()}
    if len(sizes) != 1:
        raise AlignmentError(f"every margin needs one label per unit; got lengths {sorted(sizes)}")
    return sizes.pop()


def rake(
    margins: Mapping[str, Sequence[str]],
    targets: Mapping[str, Mapping[str, float]],
    base: Sequence[float] | None = None,
    max_iter: int = 500,
    tol: float = 1e-9,
) -> RakingWeights:
    """Iterative proportional fitting of unit weights to target margin shares.

    ``margins[m][i]`` is unit i's category on margin m; ``targets[m][c]`` the real share of
    category c (renormalised to sum 1). A target category with no units is an error: no weight
    can create people that were never simulated.
    """
    if not margins:
        raise AlignmentError("raking needs at least one margin")
    n = _n_units(margins)
    if n == 0:
        raise AlignmentError("raking needs at least one unit")
    if set(targets) != set(margins):
        raise AlignmentError(f"targets cover margins {sorted(targets)} but units have {sorted(margins)}")
    labels = {m: np.array([str(v) for v in margins[m]]) for m in margins}
    shares: dict[str, dict[str, float]] = {}
    for m, tgt in targets.items():
        total = float(sum(tgt.values()))
        if total <= 0 or any(v < 0 for v in tgt.values()):
            raise AlignmentError(f"targets of margin {m!r} must be non-negative with a positive sum")
        present = set(labels[m])
        empty = [c for c, v in tgt.items() if v > 0 and str(c) not in present]
        if empty:
            raise AlignmentError(f"margin {m!r}: target categories {empty} have no simulated units")
        shares[m] = {str(c): v / total for c, v in tgt.items()}
    base_w = np.ones(n) if base is None else np.asarray(base, dtype=float)
    if base_w.shape != (n,) or np.any(base_w <= 0):
        raise AlignmentError(f"base weights must be {n} positive numbers")
    factors = {m: {c: 1.0 for c in np.unique(labels[m])} for m in margins}
    w = base_w / base_w.sum()
    gap = math.inf
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        for m in margins:
            for c in factors[m]:
                mask = labels[m] == c
                current = w[mask].sum()
                target = shares[m].get(c, 0.0)
                scale = target / current if current > 0 else 0.0
                factors[m][c] *= scale
                w[mask] *= scale
            w /= w.sum()
        gap = max(abs(w[labels[m] == c].sum() - shares[m].get(c, 0.0)) for m in margins for c in factors[m])
        if gap < tol:
            break
    return RakingWeights(factors=factors, iterations=iterations, max_margin_gap=float(gap), converged=bool(gap < tol))


@dataclass
class EntropyWeights:
    """w(x) = base x exp(lambda . (x - target)) / normaliser, fitted by entropy balancing."""

    names: list[str]
    lam: list[float]
    target: list[float]
    max_moment_gap: float = 0.0
    converged: bool = False

    def weights(self, X: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        z = (X - np.asarray(self.target)) @ np.asarray(self.lam)
        w = np.exp(z - z.max()) * (1.0 if base is None else np.asarray(base, dtype=float))
        return w / w.sum() * len(w)


def entropy_balance(
    X: np.ndarray, target_means: Sequence[float], names: Sequence[str] | None = None, base: Sequence[float] | None = None
) -> EntropyWeights:
    """Weights closest to ``base`` (KL) whose weighted column means of ``X`` equal ``target_means``."""
    X = np.asarray(X, dtype=float)
    t = np.asarray(target_means, dtype=float)
    if X.ndim != 2 or X.shape[1] != t.shape[0] or X.shape[0] == 0:
        raise AlignmentError(f"entropy balancing needs X of shape (n, {t.shape[0]}) with n > 0, got {X.shape}")
    lo, hi = X.min(axis=0), X.max(axis=0)
    outside = [i for i in range(len(t)) if not lo[i] - 1e-12 <= t[i] <= hi[i] + 1e-12]
    if outside:
        raise AlignmentError(f"target means of columns {outside} lie outside the simulated range: unreachable")
    q = np.ones(len(X)) if base is None else np.asarray(base, dtype=float)
    q = q / q.sum()
    D = X - t
    scale = D.std(axis=0) + 1e-12  # standardise for a well-conditioned dual

    def dual(lam_s: np.ndarray) -> tuple[float, np.ndarray]:
        z = (D / scale) @ lam_s
        top = z.max()
        e = q * np.exp(z - top)
        s = e.sum()
        return float(top + math.log(s)), (e[:, None] * (D / scale)).sum(axis=0) / s

    res = minimize(dual, np.zeros(len(t)), jac=True, method="L-BFGS-B")
    lam = res.x / scale
    ew = EntropyWeights(
        names=list(names or [f"x{i}" for i in range(len(t))]), lam=lam.tolist(), target=t.tolist()
    )
    w = ew.weights(X, q)
    gap = float(np.max(np.abs((w / w.sum()) @ X - t)))
    ew.max_moment_gap = gap
    ew.converged = bool(gap < 1e-6 * max(1.0, float(np.abs(t).max())))
    return ew


# ---------------------------------------------------------------- diagnostics
def effective_sample_size(w: np.ndarray) -> float:
    """Kish's n_eff = (sum w)^2 / sum w^2: how many equally weighted units the weights are worth."""
    w = np.asarray(w, dtype=float)
    return float(w.sum() ** 2 / (w**2).sum())


def weighted_shares(labels: Sequence[str], values: Sequence[float], weights: Sequence[float] | None = None) -> dict:
    """Aggregate ``values`` (e.g. units bought) per label, weighted, as shares summing to 1."""
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=float)
    out: dict[str, float] = {}
    for label, v, wi in zip(labels, values, w, strict=True):
        out[str(label)] = out.get(str(label), 0.0) + float(v) * float(wi)
    total = sum(out.values())
    return {k: v / total for k, v in out.items()} if total > 0 else out


def aggregate_error(simulated: Mapping[str, float], real: Mapping[str, float]) -> float:
    """Total variation distance between two share vectors (0 equal .. 1 disjoint)."""
    keys = set(simulated) | set(real)
    s_tot = sum(simulated.values()) or 1.0
    r_tot = sum(real.values()) or 1.0
    return 0.5 * float(sum(abs(simulated.get(k, 0.0) / s_tot - real.get(k, 0.0) / r_tot) for k in keys))


def save_weights(obj: RakingWeights | EntropyWeights, path: str | Path) -> Path:
    path = output_file(path)
    kind = "raking" if isinstance(obj, RakingWeights) else "entropy"
    path.write_text(json.dumps({"format": FORMAT, "kind": kind, **obj.__dict__}, indent=2), encoding="utf-8")
    return path


def load_weights(path: str | Path) -> RakingWeights | EntropyWeights:
    path = Path(path)
    if not path.exists():
        raise AlignmentError(f"{path}: reweighting file not found")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.pop("format", None) != FORMAT:
        raise AlignmentError(f"{path}: not a {FORMAT} file")
    kind = data.pop("kind", None)
    if kind == "raking":
        return RakingWeights(**data)
    if kind == "entropy":
        return EntropyWeights(**data)
    raise AlignmentError(f"{path}: unknown reweighting kind {kind!r}")
