"""Preprocessing: count, sums and sums of squares per numeric feature, category counts.

The server adds them up into the global scaler (`preprocessing.scaler_from_stats`). Under
DP the nodes sum values minus a public centre and per-feature sums are released
divided by their public bound (Δ = √p), so each feature gets noise in its own units.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from fedseg.common.dp import sensitivity
from fedseg.common.messages import Message, NDArray, SchemaRequest
from fedseg.common.phases import bounds
from fedseg.common.phases.base import DPRelease, Layout, LocalData, Phase, by_name
from fedseg.common.phases.registry import register
from fedseg.common.preprocessing import PrepareStats, local_prepare_stats
from fedseg.common.schema import FeatureSchema


class PrepareRequest(SchemaRequest):
    """Validate the local table against the schema and return preprocessing sums."""

    phase: Literal["prepare"] = "prepare"
    center: NDArray | None = None  # DP: public centre subtracted from the transformed values first


class PrepareReply(Message):
    phase: Literal["prepare"] = "prepare"
    count: int
    sums: NDArray  # (n_numeric,) of transformed, clipped values
    sumsq: NDArray  # (n_numeric,)
    category_counts: NDArray  # (n_onehot,)


def answer(req: PrepareRequest, data: LocalData) -> PrepareReply:
    return by_name(PrepareReply, local_prepare_stats(data.table(req.schema_), req.schema_, req.center))


def stats(reply: PrepareReply) -> PrepareStats:
    """The summed reply as `preprocessing` takes it."""
    return by_name(PrepareStats, reply)


def layout(req: PrepareRequest) -> Layout:
    s = req.schema_
    p = len(s.numeric)
    return {"count": (), "sums": (p,), "sumsq": (p,), "category_counts": (s.n_encoded - p,)}


def reply_bounds(req: PrepareRequest) -> dict[str, float]:
    t = bounds.transformed_bound(req.schema_)
    return {"count": 1.0, "sums": t, "sumsq": t * t, "category_counts": 1.0}


def dp_release(req: PrepareRequest, schema: FeatureSchema) -> DPRelease:
    """Values minus the public centre, bounded by the transformed box."""
    box = np.vstack(sensitivity.transformed_box(schema))
    if req.center is not None:
        box = box - req.center
    return DPRelease("preprocessing", 1.0, *bounds.feature_sums_release(schema, box, 1, "count"))


PHASE = register(Phase("prepare", PrepareRequest, PrepareReply, answer, layout, reply_bounds, dp_release))
