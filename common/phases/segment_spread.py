"""DP only: how widely each segment spreads around a public centre, before its profile.

The noise on a DP segment mean is proportional to the half-width of the range its
members are clipped to (`profile.dp_release`). Limits from the released centroids and
scaler (`common.dp.segment_limits.centroid_limits`) are as wide as the whole
population; a segment of customers who all bought in the last two weeks needs a range
of weeks, not of the population's two years. So under DP the profile is two exchanges:
this one releases, per segment and numeric feature, the count and the sum of
|x − centre| over the members (values clipped to the centroid limits, centre the
segment's centroid in original units, both in the request); the server turns the
noisy mean absolute deviation into tighter limits (`segment_limits.spread_limits`,
post-processing) for the profile sums. It takes SPREAD_SHARE of the profiling budget.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from fedseg.common import kmeans
from fedseg.common.dp import sensitivity
from fedseg.common.messages import Message, NDArray, Scaler, SchemaRequest
from fedseg.common.phases import bounds
from fedseg.common.phases.base import DPRelease, Layout, LocalData, Phase
from fedseg.common.phases.registry import register
from fedseg.common.preprocessing import clip_numeric
from fedseg.common.schema import FeatureSchema

SPREAD_SHARE = 0.3  # of the profiling budget; the profile sums get the rest


class SpreadRequest(SchemaRequest):
    """Per-segment sums of |x − centre| of values clipped to the limits."""

    phase: Literal["segment_spread"] = "segment_spread"
    scaler: Scaler
    centroids: NDArray  # (k, d): the segments
    limits: NDArray  # (k, 2, n_numeric) original units, held inside the public box
    centres: NDArray  # (k, n_numeric) original units, held inside the limits


class SpreadReply(Message):
    phase: Literal["segment_spread"] = "segment_spread"
    counts: NDArray  # (k,)
    deviations: NDArray  # (k, n_numeric) sums of |clipped x − centre|


def limits_and_centres(req: SpreadRequest, schema: FeatureSchema) -> tuple[np.ndarray, np.ndarray]:
    """The request's limits (k, 2, p) inside the box and centres (k, p) inside them."""
    limits = bounds.segment_limits(schema, req.limits, len(req.centroids))
    centres = np.asarray(req.centres, dtype=float)
    if centres.shape != limits[:, 0].shape:
        raise ValueError(f"spread centres: shape {centres.shape}, expected {limits[:, 0].shape}")
    return limits, np.clip(centres, limits[:, 0], limits[:, 1])


def half_widths(req: SpreadRequest, schema: FeatureSchema) -> np.ndarray:
    """The most one member adds to a deviation sum: (k, p), the farther limit's distance."""
    limits, centres = limits_and_centres(req, schema)
    return np.maximum(centres - limits[:, 0], limits[:, 1] - centres)


def answer(req: SpreadRequest, data: LocalData) -> SpreadReply:
    schema = req.schema_
    limits, centres = limits_and_centres(req, schema)
    labels = kmeans.assign(data.matrix(schema, req.scaler), req.centroids)
    own = limits[labels]  # (n, 2, p)
    values = np.clip(clip_numeric(data.table(schema).numeric, schema), own[:, 0], own[:, 1])
    sums = np.zeros(centres.shape)
    np.add.at(sums, labels, np.abs(values - centres[labels]))
    return SpreadReply(counts=np.bincount(labels, minlength=len(centres)).astype(np.int64), deviations=sums)


def layout(req: SpreadRequest) -> Layout:
    k, p = len(req.centroids), len(req.schema_.numeric)
    return {"counts": (k,), "deviations": (k, p)}


def reply_bounds(req: SpreadRequest) -> dict[str, float]:
    r = bounds.raw_bound(req.schema_)
    return {"counts": 1.0, "deviations": 2.0 * r}


def dp_release(req: SpreadRequest, schema: FeatureSchema) -> DPRelease:
    """A member adds 1 to one count and at most the half-width to each of its segment's
    p deviation sums (divided by it: Δ = √p)."""
    weights = np.maximum(half_widths(req, schema), 1e-12).ravel()
    deltas = {"counts": 1.0, "deviations": sensitivity.bounded_sum_sensitivity(n_features=len(schema.numeric))}
    return DPRelease("profiling", SPREAD_SHARE, deltas, {"deviations": weights})


PHASE = register(Phase("segment_spread", SpreadRequest, SpreadReply, answer, layout, reply_bounds, dp_release))
