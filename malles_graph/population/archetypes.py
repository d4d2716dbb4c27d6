"""Customers grouped into archetypes: standardised features, k-means, masses and representatives.

The mean-field loop simulates a few representatives per archetype instead of every customer, so
LLM calls per round depend on K (archetypes) x R (representatives), never on N (customers).

* features: a numeric table, one row per customer (``customer_id`` plus the columns in
  :data:`FEATURES`); skewed money/count columns are log1p-transformed before standardising;
* clustering: scikit-learn k-means on the standardised features (``MiniBatchKMeans`` above
  :data:`MINIBATCH_ABOVE` customers, so setup stays seconds at a million customers);
* mass of an archetype: its share of customers (sums to 1);
* representatives: the R customers closest to the centroid (the medoid first), each carrying
  weight mass / R in the aggregation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from malles_graph.errors import MallesError

# Numeric customer features used for clustering (log1p-transformed where skewed).
FEATURES = ("n_baskets", "mean_basket_value", "mean_unit_price", "mean_quantity", "age_index")
LOG_FEATURES = ("n_baskets", "mean_basket_value", "mean_unit_price", "mean_quantity")
AGE_GROUPS = ["<25", "25-29", "30-34", "35-39", "40-44", "45-49", "50-54", "55-59", "60-64", ">64"]
MINIBATCH_ABOVE = 50_000


class PopulationError(MallesError):
    """The population cannot be built as configured (too few customers, missing columns, ...)."""


class Archetype(BaseModel):
    """One cluster of customers: its mass, centroid (in raw feature units) and representatives."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=0)
    size: int = Field(ge=1, description="customers in the cluster")
    mass: float = Field(gt=0, le=1, description="share of the population")
    centroid: dict[str, float] = Field(default_factory=dict, description="mean raw feature values")
    representatives: list[str] = Field(min_length=1, description="customer ids, closest to the centroid first")

    @property
    def weight_per_representative(self) -> float:
        return self.mass / len(self.representatives)


@dataclass
class Clustering:
    """The result of :func:`cluster_customers`: archetypes plus each customer's label."""

    archetypes: list[Archetype]
    labels: np.ndarray
    n_customers: int
    inertia: float = 0.0
    feature_names: tuple[str, ...] = field(default=FEATURES)


def customer_features(transactions: pl.DataFrame) -> pl.DataFrame:
    """One row per customer from Ta Feng transactions (the ``tafeng.load()`` schema)."""
    missing = {"customer_id", "date", "age_group", "quantity", "sales"} - set(transactions.columns)
    if missing:
        raise PopulationError(f"transactions lack columns {sorted(missing)} (expected the tafeng.load() schema)")
    age_index = {g: float(i) for i, g in enumerate(AGE_GROUPS)}
    per_customer = transactions.group_by("customer_id").agg(
        n_baskets=pl.col("date").n_unique(),
        sales=pl.col("sales").sum(),
        units=pl.col("quantity").sum(),
        n_lines=pl.len(),
        age_group=pl.col("age_group").first(),
        pin_code=pl.col("pin_code").first() if "pin_code" in transactions.columns else pl.lit("Unknown"),
    )
    table = per_customer.with_columns(
        mean_basket_value=pl.col("sales") / pl.col("n_baskets"),
        mean_unit_price=pl.col("sales") / pl.col("units").clip(lower_bound=1),
        mean_quantity=pl.col("units") / pl.col("n_lines"),
        age_index=pl.col("age_group").replace_strict(age_index, default=None, return_dtype=pl.Float64),
    )
    # Unknown ages sit at the mean known age, so they neither pull clusters young nor old.
    mean_age = table["age_index"].mean()
    table = table.with_columns(pl.col("age_index").fill_null(mean_age if mean_age is not None else 4.5))
    return table.select("customer_id", "age_group", "pin_code", *FEATURES).sort("customer_id")


def synthesise_customers(features: pl.DataFrame, n: int, rng: np.random.Generator, noise: float = 0.05) -> pl.DataFrame:
    """``n`` synthetic customers resampled from ``features`` with multiplicative noise.

    Each synthetic customer keeps ``source_id`` (the real customer it was drawn from) so a
    representative can borrow that customer's history. Used for scale tests and benchmarks.
    """
    if features.height == 0:
        raise PopulationError("cannot synthesise customers from an empty feature table")
    picks = rng.integers(0, features.height, size=n)
    base = features[picks]
    cols = {}
    for name in FEATURES:
        values = base[name].to_numpy().astype(float)
        jitter = rng.normal(1.0, noise, size=n).clip(0.5, 1.5)
        cols[name] = values * jitter if name != "age_index" else values
    return pl.DataFrame(
        {
            "customer_id": [f"syn{i:07d}" for i in range(n)],
            "source_id": base["customer_id"],
            "age_group": base["age_group"],
            "pin_code": base["pin_code"] if "pin_code" in base.columns else ["Unknown"] * n,
            **cols,
        }
    )


def standardise(features: pl.DataFrame, names: tuple[str, ...] = FEATURES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The feature matrix log1p-transformed (skewed columns) and z-scored; returns (Z, mean, std)."""
    missing = [c for c in names if c not in features.columns]
    if missing:
        raise PopulationError(f"customer feature table lacks columns {missing}")
    X = np.column_stack(
        [np.log1p(np.maximum(features[c].to_numpy().astype(float), 0)) if c in LOG_FEATURES else features[c].to_numpy()
         for c in names]
    ).astype(float)
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std[std == 0] = 1.0  # a constant column carries no information; keep it at 0 after centring
    return (X - mean) / std, mean, std


def cluster_customers(
    features: pl.DataFrame,
    k: int,
    representatives: int = 1,
    seed: int = 0,
    names: tuple[str, ...] = FEATURES,
) -> Clustering:
    """Group customers into ``k`` archetypes and pick ``representatives`` per archetype.

    Raises PopulationError when k exceeds the number of customers.
    """
    n = features.height
    if k > n:
        raise PopulationError(f"population.archetypes ({k}) exceeds the number of customers ({n})")
    Z, _, _ = standardise(features, names)
    picked = pick_archetypes(Z, k, seed=seed, representatives=representatives, n_init=3)
    labels = picked.labels
    ids = features["customer_id"].to_list()
    raw = {c: features[c].to_numpy().astype(float) for c in names}
    archetypes: list[Archetype] = []
    for j in range(k):
        members = np.flatnonzero(labels == j)
        if members.size == 0:  # k-means can leave a cluster empty on duplicated points; skip it
            continue
        reps = [ids[i] for i in picked.representatives[j]]
        archetypes.append(
            Archetype(
                index=len(archetypes),
                size=int(members.size),
                mass=members.size / n,
                centroid={c: float(raw[c][members].mean()) for c in names},
                representatives=reps,
            )
        )
    return Clustering(archetypes, labels, n, picked.inertia, names)


@dataclass
class Picked:
    """What :func:`pick_archetypes` found: a cluster per row, the rows nearest each centre, the centres."""

    labels: np.ndarray  # (n,) cluster of each row
    representatives: list[list[int]]  # per cluster: row indices nearest its centre first (empty: an empty cluster)
    centres: np.ndarray  # (k, d)
    inertia: float


def pick_archetypes(x: np.ndarray, k: int, *, seed: int = 0, representatives: int = 1, n_init: int = 3) -> Picked:
    """The one k-means archetype picker (retail customers, economist workers): k-means on ``x`` (already
    standardised; mini-batch above MINIBATCH_ABOVE rows, one BLAS thread) and, per cluster, the
    ``representatives`` members nearest its centre."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    if len(x) > MINIBATCH_ABOVE:
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=n_init)
    # One BLAS/OpenMP thread: on a shared, busy machine the spinning thread pool is slower than one core.
    with threadpool_limits(limits=1):
        labels = model.fit_predict(x)
    centres = model.cluster_centers_
    reps: list[list[int]] = []
    for j in range(k):
        members = np.flatnonzero(labels == j)
        dist = ((x[members] - centres[j]) ** 2).sum(axis=1)
        order = members[np.argsort(dist, kind="stable")]
        reps.append([int(i) for i in order[: min(representatives, members.size)]])
    return Picked(labels, reps, centres, float(getattr(model, "inertia_", 0.0)))
