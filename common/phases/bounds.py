"""Public bounds on what one customer's record can be, shared by the phases.

Secure aggregation sizes its fixed-point scales from them and DP sizes its noise from
them; both read the schema's public box (`lower`/`upper` per numeric feature, one-hots
in [0, 1]), never the data. Scaled-record sums may ask the nodes to clip each record
to a public radius first (`clipped`).
"""

from __future__ import annotations

import math

import numpy as np

from fedseg.common import privacy
from fedseg.common.messages import Scaler
from fedseg.common.preprocessing import transform_numeric
from fedseg.common.schema import FeatureSchema


def box(schema: FeatureSchema) -> np.ndarray:
    """The public box in original units: shape (2, n_numeric), lower then upper."""
    return np.array([[f.lower for f in schema.numeric], [f.upper for f in schema.numeric]], dtype=float)


def raw_bound(schema: FeatureSchema) -> float:
    """Largest |value| of any numeric feature in original units."""
    return max([max(abs(f.lower), abs(f.upper)) for f in schema.numeric], default=1.0)


def transformed_bound(schema: FeatureSchema) -> float:
    """Largest |value| of any numeric feature after its transform."""
    return float(np.abs(transform_numeric(box(schema), schema)).max()) if schema.numeric else 1.0


def feature_bounds(values: np.ndarray) -> np.ndarray:
    """Largest |value| per feature over a 2 × p box (at least a tiny positive number)."""
    return np.maximum(np.abs(values).max(axis=0), 1e-12)


def _scaled_box(schema: FeatureSchema, scaler: Scaler) -> np.ndarray:
    """|corners| of the box, encoded and scaled: shape (2, n_encoded)."""
    q = schema.n_encoded - len(schema.numeric)
    lo_hi = np.hstack([transform_numeric(box(schema), schema), np.array([[0.0] * q, [1.0] * q])])
    return np.abs((lo_hi - scaler.mean) / scaler.scale)


def scaled_bound(schema: FeatureSchema, scaler: Scaler) -> float:
    """Largest |entry| of an encoded, scaled record (numerics from bounds, one-hots 0/1)."""
    return float(_scaled_box(schema, scaler).max())


def scaled_record_norm(schema: FeatureSchema, scaler: Scaler) -> float:
    """Largest L2 norm of an encoded, scaled record whose values lie in the public box."""
    return float(np.sqrt(np.square(_scaled_box(schema, scaler).max(axis=0)).sum()))


def clipped(X: np.ndarray, clip_norm: float) -> np.ndarray:
    """DP: every scaled record shrunk onto the ball of radius `clip_norm` (0 = as is)."""
    return X if clip_norm <= 0 else privacy.clip_rows(X, clip_norm)


def sum_sensitivity(clip_norm: float, groupings: int, box_norm: float) -> float:
    """Δ of stacked per-group sums of scaled records: the clip radius if the request
    asks the nodes to clip (never more than the box allows), else the box's."""
    if clip_norm > 0:
        return privacy.clipped_sum_sensitivity(max_norm=clip_norm, n_groupings=groupings, box_norm=box_norm)
    return math.sqrt(groupings) * box_norm


def feature_sums_release(schema: FeatureSchema, values: np.ndarray, k: int,
                         count_tag: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Δ and per-entry noise weights of count, per-feature sums and sums of squares and
    category counts, for `k` groups of a record bounded by `values` (a 2 × p box).

    Per-feature sums are released as sums of values divided by their public bound
    (Δ = √p), i.e. with noise proportional to each feature's own bound: a feature
    ranging to 10,000 does not drown one ranging to 100."""
    bound = feature_bounds(values)
    weights = {"sums": np.tile(bound, k), "sumsq": np.tile(np.square(bound), k)}
    root_p = math.sqrt(len(schema.numeric))
    deltas = {count_tag: 1.0, "sums": root_p, "sumsq": root_p}
    if schema.categorical:
        deltas["category_counts"] = privacy.category_count_sensitivity(n_categorical=len(schema.categorical))
    return deltas, weights
