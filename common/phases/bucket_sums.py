"""Coreset, step 2: sums and counts of the scaled records in the dense buckets only.

Counts come again with the sums, so a node lost in between leaves no bias. Under DP the
records are clipped to a public radius first and the sums take the rest of the
initialization budget (Δ = √tables · radius).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fedseg.common import coreset
from fedseg.common.dp import sensitivity
from fedseg.common.messages import Message, NDArray
from fedseg.common.phases import bounds
from fedseg.common.phases.base import DPRelease, Layout, LocalData, Phase
from fedseg.common.phases.bucket_counts import COUNTS_SHARE, BucketCountsRequest
from fedseg.common.phases.registry import register
from fedseg.common.schema import FeatureSchema


class BucketSumsRequest(BucketCountsRequest):
    """Sum the scaled records of the dense buckets only (global bucket ids)."""

    phase: Literal["bucket_sums"] = "bucket_sums"  # type: ignore[assignment]
    dense: NDArray  # (n_dense,) int64 ids in [0, tables * 2**bits)
    clip_norm: float = Field(default=0.0, ge=0.0)  # DP: scaled records clipped to this L2 norm; 0 = none


class BucketSumsReply(Message):
    phase: Literal["bucket_sums"] = "bucket_sums"
    sums: NDArray  # (n_dense, d)
    counts: NDArray  # (n_dense,)


def answer(req: BucketSumsRequest, data: LocalData) -> BucketSumsReply:
    X = data.matrix(req.schema_, req.scaler)
    sums, counts = coreset.local_bucket_sums(X, req.planes(), req.dense, bounds.clipped(X, req.clip_norm))
    return BucketSumsReply(sums=sums, counts=counts)


def layout(req: BucketSumsRequest) -> Layout:
    m = len(req.dense)
    return {"sums": (m, req.schema_.n_encoded), "counts": (m,)}


def reply_bounds(req: BucketSumsRequest) -> dict[str, float]:
    return {"sums": bounds.scaled_bound(req.schema_, req.scaler), "counts": 1.0}


def dp_release(req: BucketSumsRequest, schema: FeatureSchema) -> DPRelease:
    tables = req.normals.shape[0]
    box_norm = bounds.scaled_record_norm(schema, req.scaler)
    deltas = {"sums": bounds.sum_sensitivity(req.clip_norm, tables, box_norm),
              "counts": sensitivity.count_sensitivity(n_groupings=tables)}
    return DPRelease("initialization", 1.0 - COUNTS_SHARE, deltas)


PHASE = register(Phase("bucket_sums", BucketSumsRequest, BucketSumsReply, answer, layout, reply_bounds, dp_release))
