"""L2 sensitivities of the released fields under add/remove one customer.

Records are clipped to public bounds first, so every bound here comes from public
numbers, never from the data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fedseg.common.dp.checks import check_count, check_positive

def _box(lower: Any, upper: Any) -> tuple[np.ndarray, np.ndarray]:
    lo = np.atleast_1d(np.asarray(lower, dtype=float))
    hi = np.atleast_1d(np.asarray(upper, dtype=float))
    if lo.ndim != 1 or lo.shape != hi.shape:
        raise ValueError(
            f"lower and upper must be 1-D with one bound per feature, got shapes "
            f"{lo.shape} and {hi.shape}"
        )
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError("differential privacy needs finite public bounds for every feature")
    if np.any(lo > hi):
        bad = np.flatnonzero(lo > hi).tolist()
        raise ValueError(f"lower bound above upper bound for feature index(es) {bad}")
    return lo, hi


def scaled_bounds(
    *, lower: Any, upper: Any, mean: Any, scale: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Map a public box from original units into the standardised space.

    A record clipped to [lower, upper] and standardised as (x − mean)/scale lies in
    [(lower − mean)/scale, (upper − mean)/scale] per feature (scale > 0). The scaler
    must itself be public (released with DP or fixed in advance), else the box leaks.

    Returns:
        (lower_scaled, upper_scaled), each ndarray of shape (n_features,).
    """
    lo, hi = _box(lower, upper)
    mu = np.broadcast_to(np.asarray(mean, dtype=float), lo.shape)
    sc = np.broadcast_to(np.asarray(scale, dtype=float), lo.shape)
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sc)) and np.all(sc > 0)):
        raise ValueError("scaler mean must be finite and scale finite and > 0")
    return (lo - mu) / sc, (hi - mu) / sc


def max_record_norm(*, lower: Any, upper: Any) -> float:
    """Largest L2 norm of a point in the box: sqrt(Σ_j max(|lo_j|, |hi_j|)²).

    The norm is convex, so its maximum over the box is at a corner, coordinate-wise the
    bound farthest from zero.
    """
    lo, hi = _box(lower, upper)
    return float(np.sqrt(np.sum(np.maximum(np.abs(lo), np.abs(hi)) ** 2)))


def cluster_sum_sensitivity(*, lower: Any, upper: Any, n_groupings: int = 1) -> float:
    """L2 sensitivity of the per-cluster sum vectors, shape (n_clusters, n_features).

    Adding/removing one customer changes exactly one cluster's sum by that customer's
    (clipped, scaled) record x, so Δ = max ‖x‖₂ over the box = `max_record_norm`.
    The same holds for per-bucket sums of an LSH coreset. When one message stacks
    ``n_groupings`` independent partitions (candidate models, hash tables), the record
    enters one group of each: Δ = sqrt(n_groupings)·max ‖x‖₂.

    Args:
        lower, upper: per-feature bounds of a record in the space being summed (the
            scaled space for Lloyd rounds; see `scaled_bounds`), shape (n_features,).
        n_groupings: number of partitions the record is assigned in simultaneously.
    """
    n_groupings = check_count("n_groupings", n_groupings)
    return math.sqrt(n_groupings) * max_record_norm(lower=lower, upper=upper)


def count_sensitivity(*, n_groupings: int = 1) -> float:
    """L2 sensitivity of cluster/bucket count vectors: 1 per partition, sqrt(n) for n.

    Adding/removing one customer changes one count by 1 in each of ``n_groupings``
    partitions.
    """
    return math.sqrt(check_count("n_groupings", n_groupings))


def histogram_sensitivity(*, n_tables: int = 1) -> float:
    """L2 sensitivity of bucket (histogram) counts: sqrt(n_tables), i.e. 1 for one table."""
    return count_sensitivity(n_groupings=n_tables)


def score_sum_sensitivity(*, n_scored: int, max_score: float = 5.0) -> float:
    """L2 sensitivity of per-segment sums of 1..``max_score`` scores of ``n_scored`` features.

    A customer adds one score in [1, max_score] per scored feature to one segment:
    Δ = max_score · sqrt(n_scored) (the public range bounds it; nothing is clipped).
    """
    return check_positive("max_score", max_score) * math.sqrt(check_count("n_scored", n_scored))


def inertia_sensitivity(*, lower: Any, upper: Any, n_groupings: int = 1) -> float:
    """L2 sensitivity of per-cluster inertia (sum of squared distances to the centroid).

    A customer adds min_c ‖x − c‖² to one cluster. With every centroid inside the box
    (the server clips centroids into it, which is post-processing), this is at most the
    squared box diameter Σ_j (hi_j − lo_j)². Stacked partitions scale by sqrt(n).
    """
    lo, hi = _box(lower, upper)
    n_groupings = check_count("n_groupings", n_groupings)
    return math.sqrt(n_groupings) * float(np.sum((hi - lo) ** 2))


def feature_sum_sensitivity(*, lower: Any, upper: Any) -> float:
    """L2 sensitivity of the per-feature sums Σ_i x_ij (standardisation), original units.

    One customer adds its clipped record: Δ = sqrt(Σ_j max(|lo_j|, |hi_j|)²). Bounds are
    in the units actually summed (after the schema transform). Summing x − c for a
    public centre c (e.g. the box midpoint) and passing the shifted bounds lowers Δ.
    """
    return max_record_norm(lower=lower, upper=upper)


def feature_sumsq_sensitivity(*, lower: Any, upper: Any) -> float:
    """L2 sensitivity of the per-feature sums of squares Σ_i x_ij².

    One customer adds x_j² ≤ max(lo_j², hi_j²) per feature:
    Δ = sqrt(Σ_j max(lo_j², hi_j²)²).
    """
    lo, hi = _box(lower, upper)
    return float(np.sqrt(np.sum(np.maximum(lo**2, hi**2) ** 2)))


def category_count_sensitivity(*, n_categorical: int) -> float:
    """L2 sensitivity of the category counts of ``n_categorical`` categorical columns.

    A customer adds 1 to exactly one category of each column: Δ = sqrt(n_categorical).
    """
    return math.sqrt(check_count("n_categorical", n_categorical))



def clipped_sum_sensitivity(*, max_norm: float, n_groupings: int = 1, box_norm: float | None = None) -> float:
    """L2 sensitivity of per-group sums of rows clipped to L2 norm ``max_norm``.

    One customer's clipped row enters one group of each of ``n_groupings`` stacked
    partitions: Δ = sqrt(n_groupings) · min(max_norm, box_norm), where ``box_norm`` (if
    given) is the largest norm a row of the public box can have anyway
    (`max_record_norm`): clipping never makes a row longer.
    """
    radius = check_positive("max_norm", max_norm)
    if box_norm is not None:
        radius = min(radius, check_positive("box_norm", box_norm))
    return math.sqrt(check_count("n_groupings", n_groupings)) * radius

