"""Profiling: per-segment sums in original units for the final model.

Counts, sums and sums of squares of the clipped raw values, category counts, optional
sums of 1-5 quintile scores and per-segment histograms (segment quartiles). Under DP
the per-feature sums are divided by their public bound as in preprocessing; score sums
have Δ = 5·√scored, per-segment histograms Δ = √features.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from fedseg.common import kmeans, quantiles
from fedseg.common.dp import sensitivity
from fedseg.common.messages import Message, NDArray, Scaler, SchemaRequest
from fedseg.common.phases import bounds
from fedseg.common.phases.base import DPRelease, Layout, LocalData, Phase, by_name
from fedseg.common.phases.registry import register
from fedseg.common.phases.segment_spread import SPREAD_SHARE
from fedseg.common.profiles import ProfileStats, local_profile_stats
from fedseg.common.schema import FeatureSchema
from fedseg.common.segment_quantiles import histogram_width

MAX_SCORE = 5.0  # RFM scores are 1..5


class ProfileRequest(SchemaRequest):
    """Per-segment sums in original units for the final model."""

    phase: Literal["profile"] = "profile"
    scaler: Scaler
    centroids: NDArray  # (k, d)
    score_bins: NDArray | None = None  # (n_scored, 4) quintile edge bins: per-segment score sums
    # DP: clip limits in original units, inside the public box, (2, n_numeric) for every
    # segment or (k, 2, n_numeric) per segment (`common.dp.segment_limits`); sums are
    # centred on the midpoint of the customer's segment's limits
    limits: NDArray | None = None


class ProfileReply(Message):
    phase: Literal["profile"] = "profile"
    counts: NDArray  # (k,)
    sums: NDArray  # (k, n_numeric) original units
    sumsq: NDArray  # (k, n_numeric)
    category_counts: NDArray  # (k, n_onehot)
    scores: NDArray | None = None  # (k, n_scored) sums of 1-5 quintile scores
    # (k, per-segment bins of the quantile features): customers per segment and bin, for
    # the segment quartiles; at most 256 bins per feature (`common.segment_quantiles`)
    histograms: NDArray | None = None


def answer(req: ProfileRequest, data: LocalData) -> ProfileReply:
    X = data.matrix(req.schema_, req.scaler)
    table = data.table(req.schema_)
    local = local_profile_stats(table, req.schema_, X, req.centroids, clip_limits(req, req.schema_))
    scores = np.zeros((len(req.centroids), 0))
    if req.score_bins is not None and len(req.score_bins):  # sums of 1-5 scores per segment
        labels = kmeans.assign(X, req.centroids)
        per_customer = quantiles.local_scores(table, req.schema_, req.score_bins)
        scores = np.zeros((len(req.centroids), per_customer.shape[1]))
        np.add.at(scores, labels, per_customer)
    return by_name(ProfileReply, local, scores=scores)


def stats(reply: ProfileReply, req: ProfileRequest | None = None) -> ProfileStats:
    """The summed reply as `profiles.build_profiles` takes it; sums centred on c (DP
    limits) are moved back: Σx = Σ(x − c) + n·c, Σx² = Σ(x − c)² + 2c·Σ(x − c) + n·c²,
    with the (noisy) released n: post-processing."""
    out = by_name(ProfileStats, reply)
    limits = None if req is None else clip_limits(req, req.schema_)
    if limits is None:
        return out
    c, n = limits.mean(axis=1), np.asarray(out.counts, dtype=float)[:, None]
    return by_name(ProfileStats, reply, sums=out.sums + n * c,
                   sumsq=out.sumsq + 2 * c * out.sums + n * np.square(c))


def clip_limits(req: ProfileRequest, schema: FeatureSchema) -> np.ndarray | None:
    """The request's DP clip limits per segment, held inside the public box (a server
    cannot widen them), shape (k, 2, p); None without limits. Limits of shape (2, p)
    hold for every segment; any other shape is refused (ValueError)."""
    return None if req.limits is None else bounds.segment_limits(schema, req.limits, len(req.centroids))


def _n_scored(req: ProfileRequest) -> int:
    return 0 if req.score_bins is None else len(req.score_bins)


def layout(req: ProfileRequest) -> Layout:
    s = req.schema_
    k, p = len(req.centroids), len(s.numeric)
    q = s.n_encoded - p
    per_customer = {"sums": (k, p), "sumsq": (k, p), "category_counts": (k, q)}
    return {"counts": (k,), **per_customer, "scores": (k, _n_scored(req)), "histograms": (k, histogram_width(s))}


def reply_bounds(req: ProfileRequest) -> dict[str, float]:
    r = bounds.raw_bound(req.schema_)
    return {"counts": 1.0, "sums": r, "sumsq": r * r, "category_counts": 1.0, "scores": MAX_SCORE, "histograms": 1.0}


def dp_release(req: ProfileRequest, schema: FeatureSchema) -> DPRelease:
    """Raw values bounded by the public box, per segment; a customer adds a 1..5 score
    per scored feature and 1 to one bin of each quantile feature, in one segment."""
    limits = clip_limits(req, schema)
    values = bounds.box(schema) if limits is None else limits - limits.mean(axis=1, keepdims=True)  # half-widths
    deltas, weights = bounds.feature_sums_release(schema, values, len(req.centroids), "counts")
    if _n_scored(req):
        deltas["scores"] = sensitivity.score_sum_sensitivity(n_scored=_n_scored(req), max_score=MAX_SCORE)
    if schema.quantile_indices:
        deltas["histograms"] = sensitivity.histogram_sensitivity(n_tables=len(schema.quantile_indices))
    return DPRelease("profiling", 1.0 - SPREAD_SHARE if limits is not None else 1.0, deltas, weights)


PHASE = register(Phase("profile", ProfileRequest, ProfileReply, answer, layout, reply_bounds, dp_release))
