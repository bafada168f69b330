"""Warm start: customers per (old segment, new segment), counted on the nodes.

The old model is applied with its own schema, scaler and centroids; a customer adds 1
to one cell (DP: Δ = 1).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from fedseg.common import kmeans
from fedseg.common.dp import sensitivity
from fedseg.common.messages import Message, NDArray, Scaler, SchemaRequest
from fedseg.common.phases.base import DPRelease, Layout, LocalData, Phase
from fedseg.common.phases.registry import register
from fedseg.common.schema import FeatureSchema


class TransitionRequest(SchemaRequest):
    """Warm start: customers per (old segment, new segment), the old model applied with
    its own schema, scaler and centroids."""

    phase: Literal["transitions"] = "transitions"
    scaler: Scaler
    centroids: NDArray  # (k_new, d)
    old_schema: FeatureSchema
    old_scaler: Scaler
    old_centroids: NDArray  # (k_old, d)


class TransitionReply(Message):
    phase: Literal["transitions"] = "transitions"
    counts: NDArray  # (k_old, k_new)


def answer(req: TransitionRequest, data: LocalData) -> TransitionReply:
    """Old model's segment vs new segment per customer, counted: (k_old, k_new)."""
    new = kmeans.assign(data.matrix(req.schema_, req.scaler), req.centroids)
    old = kmeans.assign(data.matrix(req.old_schema, req.old_scaler), req.old_centroids)
    k_old, k_new = len(req.old_centroids), len(req.centroids)
    counts = np.bincount(old * k_new + new, minlength=k_old * k_new).reshape(k_old, k_new)
    return TransitionReply(counts=counts.astype(np.int64))


def layout(req: TransitionRequest) -> Layout:
    return {"counts": (len(req.old_centroids), len(req.centroids))}


def reply_bounds(req: TransitionRequest) -> dict[str, float]:
    return {"counts": 1.0}


def dp_release(req: TransitionRequest, schema: FeatureSchema) -> DPRelease:
    return DPRelease("transitions", 1.0, {"counts": sensitivity.count_sensitivity()})


PHASE = register(Phase("transitions", TransitionRequest, TransitionReply, answer, layout, reply_bounds, dp_release))
