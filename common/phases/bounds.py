"""Public bounds on what one customer's record can be, as the phases need them.

Secure aggregation sizes its fixed-point scales from them and DP sizes its noise from
them; both read the schema's public box (`lower`/`upper` per numeric feature, one-hots
in [0, 1]), never the data. The arithmetic itself lives once, in `common/dp/`
(`sensitivity` for boxes and Δ, `noise.clip_rows` for clipping); this module only
adapts it to the shapes the phases use.
"""

from __future__ import annotations

import numpy as np

from fedseg.common.dp import noise, sensitivity
from fedseg.common.messages import Scaler
from fedseg.common.schema import FeatureSchema


def box(schema: FeatureSchema) -> np.ndarray:
    """The public box in original units: shape (2, n_numeric), lower then upper."""
    return np.vstack(sensitivity.raw_box(schema))


def raw_bound(schema: FeatureSchema) -> float:
    """Largest |value| of any numeric feature in original units."""
    return sensitivity.max_entry_bound(*sensitivity.raw_box(schema))


def transformed_bound(schema: FeatureSchema) -> float:
    """Largest |value| of any numeric feature after its transform."""
    return sensitivity.max_entry_bound(*sensitivity.transformed_box(schema))


def scaled_bound(schema: FeatureSchema, scaler: Scaler) -> float:
    """Largest |entry| of an encoded, scaled record (numerics from bounds, one-hots 0/1)."""
    return sensitivity.max_entry_bound(*sensitivity.scaled_box(schema, scaler))


def scaled_record_norm(schema: FeatureSchema, scaler: Scaler) -> float:
    """Largest L2 norm of an encoded, scaled record whose values lie in the public box."""
    return sensitivity.max_record_norm(*sensitivity.scaled_box(schema, scaler))


def clipped(X: np.ndarray, clip_norm: float) -> np.ndarray:
    """DP: every scaled record shrunk onto the ball of radius `clip_norm` (0 = as is)."""
    return X if clip_norm <= 0 else noise.clip_rows(X, clip_norm)


def sum_sensitivity(clip_norm: float, groupings: int, box_norm: float) -> float:
    """Δ of stacked per-group sums of scaled records: the clip radius if the request
    asks the nodes to clip (never more than the box allows), else the box's."""
    return sensitivity.grouped_sum_sensitivity(record_norm=box_norm, n_groupings=groupings, clip_norm=clip_norm)


def feature_sums_release(schema: FeatureSchema, values: np.ndarray, k: int,
                         count_tag: str) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Δ and per-entry noise weights of count, per-feature sums and sums of squares and
    category counts, for `k` groups of a record bounded by `values` (a 2 × p box, or
    k × 2 × p: one box per group, a record being in one group).

    Per-feature sums are released as sums of values divided by their public bound
    (Δ = √p), i.e. with noise proportional to each feature's own bound: a feature
    ranging to 10,000 does not drown one ranging to 100."""
    per_group = np.broadcast_to(np.asarray(values, dtype=float), (k, *np.shape(values)[-2:]))
    if not np.all(np.isfinite(per_group)):
        raise ValueError("differential privacy needs finite public bounds for every feature")
    bound = np.maximum(np.abs(per_group).max(axis=1), 1e-12).ravel()  # max(|lo|, |hi|) per entry
    weights = {"sums": bound, "sumsq": np.square(bound)}
    root_p = sensitivity.bounded_sum_sensitivity(n_features=len(schema.numeric))
    deltas = {count_tag: 1.0, "sums": root_p, "sumsq": root_p}
    if schema.categorical:
        deltas["category_counts"] = sensitivity.category_count_sensitivity(n_categorical=len(schema.categorical))
    return deltas, weights


def segment_limits(schema: FeatureSchema, limits: np.ndarray, k: int) -> np.ndarray:
    """Clip limits a request states, per segment and held inside the public box (a
    server cannot widen them): shape (k, 2, p). Limits of shape (2, p) hold for every
    segment; any other shape is refused (ValueError)."""
    outer = box(schema)
    lim = np.asarray(limits, dtype=float)
    if lim.shape == outer.shape:
        lim = np.broadcast_to(lim, (k, *outer.shape))
    if lim.shape != (k, *outer.shape):
        raise ValueError(f"clip limits: shape {lim.shape}, expected {outer.shape} or {(k, *outer.shape)}")
    lo = np.clip(lim[:, 0], outer[0], outer[1])
    return np.stack([lo, np.clip(lim[:, 1], lo, outer[1])], axis=1)
