"""Coreset, step 1: customers per hash bucket of server-drawn random hyperplanes.

The server keeps only the dense buckets (count at least the minimum release size) and
asks for their sums next (`bucket_sums`). Under DP the counts take `COUNTS_SHARE` of the
initialization budget; a customer adds 1 to one bucket per table (Δ = √tables).
"""

from __future__ import annotations

from typing import Literal

from fedseg.common import coreset
from fedseg.common.dp import sensitivity
from fedseg.common.messages import Message, NDArray, Scaler, SchemaRequest
from fedseg.common.phases.base import DPRelease, Layout, LocalData, Phase
from fedseg.common.phases.registry import register
from fedseg.common.schema import FeatureSchema

COUNTS_SHARE = 0.5  # of the initialization budget; the bucket sums take the rest


class BucketCountsRequest(SchemaRequest):
    """Count records per coreset bucket: tables of random hyperplanes in scaled space."""

    phase: Literal["bucket_counts"] = "bucket_counts"
    scaler: Scaler
    normals: NDArray  # (tables, bits, d)
    offsets: NDArray  # (tables, bits)

    def planes(self) -> coreset.Hyperplanes:
        return coreset.Hyperplanes(normals=self.normals, offsets=self.offsets)


class BucketCountsReply(Message):
    phase: Literal["bucket_counts"] = "bucket_counts"
    counts: NDArray  # (tables * 2**bits,)


def answer(req: BucketCountsRequest, data: LocalData) -> BucketCountsReply:
    X = data.matrix(req.schema_, req.scaler)
    return BucketCountsReply(counts=coreset.local_bucket_counts(X, req.planes()))


def layout(req: BucketCountsRequest) -> Layout:
    tables, bits, _ = req.normals.shape
    return {"counts": (tables * 2**bits,)}


def reply_bounds(req: BucketCountsRequest) -> dict[str, float]:
    return {"counts": 1.0}


def dp_release(req: BucketCountsRequest, schema: FeatureSchema) -> DPRelease:
    tables = sensitivity.count_sensitivity(n_groupings=req.normals.shape[0])
    return DPRelease("initialization", COUNTS_SHARE, {"counts": tables})


PHASE = register(Phase("bucket_counts", BucketCountsRequest, BucketCountsReply, answer, layout,
                       reply_bounds, dp_release))
