"""L2 sensitivities of the released fields under add/remove one customer.

Records are clipped to public bounds first, so every bound here comes from public
numbers, never from the data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fedseg.common.dp.checks import check_count, check_positive
from fedseg.common.preprocessing import transform_numeric
from fedseg.common.schema import FeatureSchema
from fedseg.common.messages import Scaler


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


def feature_bounds(lower: Any, upper: Any) -> np.ndarray:
    """Per feature, the bound farthest from zero: max(|lo_j|, |hi_j|), shape (n_features,).

    What one customer adds at most to one entry of a per-feature sum.
    """
    lo, hi = _box(lower, upper)
    return np.maximum(np.abs(lo), np.abs(hi))


def max_entry_bound(lower: Any, upper: Any) -> float:
    """Largest |entry| of a record in the box (1.0 for an empty box): sizes fixed point."""
    bounds = feature_bounds(lower=lower, upper=upper)
    return float(bounds.max()) if bounds.size else 1.0


def max_record_norm(lower: Any, upper: Any) -> float:
    """Largest L2 norm of a point in the box: sqrt(Σ_j max(|lo_j|, |hi_j|)²).

    The norm is convex, so its maximum over the box is at a corner, coordinate-wise the
    bound farthest from zero.
    """
    return float(np.sqrt(np.sum(feature_bounds(lower=lower, upper=upper) ** 2)))


# --------------------------------------------------------------------------- public boxes


def raw_box(schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray]:
    """The schema's public bounds of the numeric features, original units, shape (p,) each."""
    return _box([f.lower for f in schema.numeric], [f.upper for f in schema.numeric])


def transformed_box(schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray]:
    """Public bounds of the numeric features after clipping and their transforms.

    The transforms (clip, log1p, winsor clip) are monotone, so the box maps to a box.
    """
    transformed = transform_numeric(np.vstack(raw_box(schema)), schema)
    return transformed[0], transformed[1]


def scaled_box(schema: FeatureSchema, scaler: Scaler) -> tuple[np.ndarray, np.ndarray]:
    """Public bounds of an encoded, scaled record: transformed numerics, one-hots in [0, 1]."""
    lo, hi = transformed_box(schema)
    q = schema.n_encoded - len(schema.numeric)
    lower, upper = np.concatenate([lo, np.zeros(q)]), np.concatenate([hi, np.ones(q)])
    return scaled_bounds(lower=lower, upper=upper, mean=scaler.mean, scale=scaler.scale)


# --------------------------------------------------------------------------- sensitivities


def grouped_sum_sensitivity(*, record_norm: float, n_groupings: int = 1, clip_norm: float = 0.0) -> float:
    """L2 sensitivity of stacked per-group sums of records (clusters, coreset buckets).

    Adding/removing one customer changes one group's sum by its record x in each of
    ``n_groupings`` stacked partitions (candidate models, hash tables):
    Δ = sqrt(n_groupings) · max ‖x‖₂. ``record_norm`` is the largest norm the public box
    allows (`max_record_norm`); with ``clip_norm`` > 0 the nodes shrink every record onto
    that ball (`noise.clip_rows`) and Δ = sqrt(n_groupings) · min(clip_norm, record_norm):
    clipping never makes a record longer.
    """
    radius = check_positive("record_norm", record_norm)
    if clip_norm > 0:
        radius = min(check_positive("clip_norm", clip_norm), radius)
    return math.sqrt(check_count("n_groupings", n_groupings)) * radius


def bounded_sum_sensitivity(*, n_features: int) -> float:
    """L2 sensitivity of per-feature sums released divided by each feature's public bound.

    One customer adds x_j / b_j, |x_j| ≤ b_j (`feature_bounds`), to each of n features
    (sums of squares: x_j² / b_j²): Δ = sqrt(n). The noise on the raw sums is then σ·b_j,
    proportional to each feature's own range.
    """
    return math.sqrt(check_count("n_features", n_features))


def count_sensitivity(*, n_groupings: int = 1) -> float:
    """L2 sensitivity of cluster/bucket count vectors: 1 per partition, sqrt(n) for n.

    Adding/removing one customer changes one count by 1 in each of ``n_groupings``
    partitions.
    """
    return math.sqrt(check_count("n_groupings", n_groupings))


def histogram_sensitivity(*, n_tables: int = 1) -> float:
    """L2 sensitivity of bucket (histogram) counts: sqrt(n_tables), i.e. 1 for one table."""
    return count_sensitivity(n_groupings=n_tables)


def category_count_sensitivity(*, n_categorical: int) -> float:
    """L2 sensitivity of the category counts of ``n_categorical`` categorical columns.

    A customer adds 1 to exactly one category of each column: Δ = sqrt(n_categorical).
    """
    return math.sqrt(check_count("n_categorical", n_categorical))


def score_sum_sensitivity(*, n_scored: int, max_score: float = 5.0) -> float:
    """L2 sensitivity of per-segment sums of 1..``max_score`` scores of ``n_scored`` features.

    A customer adds one score in [1, max_score] per scored feature to one segment:
    Δ = max_score · sqrt(n_scored) (the public range bounds it; nothing is clipped).
    """
    return check_positive("max_score", max_score) * math.sqrt(check_count("n_scored", n_scored))
