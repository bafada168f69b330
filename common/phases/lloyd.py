"""One Lloyd step for a stack of candidate models (several k and restarts at once).

Per candidate cluster a node returns the sum of its points, the count, the inertia, the
sum of distances (Davies-Bouldin) and of simplified silhouettes; the server divides.
Under DP only sums and counts are released, of records clipped to a public radius
(Δ = √candidates · radius).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from fedseg.common import kmeans
from fedseg.common.dp import sensitivity
from fedseg.common.messages import Message, NDArray, Scaler, SchemaRequest
from fedseg.common.phases import bounds
from fedseg.common.phases.base import DPRelease, Layout, LocalData, Phase, by_name
from fedseg.common.phases.registry import register
from fedseg.common.schema import FeatureSchema


class LloydRequest(SchemaRequest):
    """One Lloyd step for a stack of candidate models at once."""

    phase: Literal["lloyd"] = "lloyd"
    scaler: Scaler
    centroids: NDArray  # (sum(sizes), d)
    sizes: list[int]
    clip_norm: float = Field(default=0.0, ge=0.0)  # DP: scaled records clipped to this L2 norm; 0 = none


class LloydReply(Message):
    """Per candidate cluster: sums of points, counts, inertia, distance and silhouette sums."""

    phase: Literal["lloyd"] = "lloyd"
    sums: NDArray  # (total, d)
    counts: NDArray  # (total,)
    inertia: NDArray  # (total,) sum of squared distances
    dist: NDArray  # (total,) sum of distances (Davies-Bouldin)
    silhouette: NDArray  # (total,) sum of simplified silhouettes


def answer(req: LloydRequest, data: LocalData) -> LloydReply:
    X = bounds.clipped(data.matrix(req.schema_, req.scaler), req.clip_norm)
    return by_name(LloydReply, kmeans.local_stats(X, req.centroids, req.sizes))


def stats(reply: LloydReply) -> kmeans.ClusterStats:
    """The summed reply as `kmeans` and `metrics` take it."""
    return by_name(kmeans.ClusterStats, reply)


def layout(req: LloydRequest) -> Layout:
    total = int(sum(req.sizes))
    per_cluster = {"counts": (total,), "inertia": (total,), "dist": (total,), "silhouette": (total,)}
    return {"sums": (total, req.schema_.n_encoded), **per_cluster}


def reply_bounds(req: LloydRequest) -> dict[str, float]:
    s = req.schema_
    b = bounds.scaled_bound(s, req.scaler)
    far = 4.0 * s.n_encoded * b * b  # squared distance between two points of the box
    return {"sums": b, "counts": 1.0, "inertia": far, "dist": math.sqrt(far), "silhouette": 1.0}


def dp_release(req: LloydRequest, schema: FeatureSchema) -> DPRelease:
    cands = len(req.sizes)
    box_norm = bounds.scaled_record_norm(schema, req.scaler)
    deltas = {"sums": bounds.sum_sensitivity(req.clip_norm, cands, box_norm),
              "counts": sensitivity.count_sensitivity(n_groupings=cands)}
    return DPRelease("lloyd", 1.0, deltas)


PHASE = register(Phase("lloyd", LloydRequest, LloydReply, answer, layout, reply_bounds, dp_release))
