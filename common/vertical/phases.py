"""The three phases of a vertical run, each answered by one party on its own block of
the shared customers (positions in the common order, `align`): its scaler, its partial
squared distances (Lloyd), its block of the segment profiles.

Replies are laid out over all parties' features (this party's columns at its offset,
zeros elsewhere) or over positions x centroids, so the sum over parties is the joined
reply and secure aggregation carries them like any phase. `bound` is the public
per-entry bound the server derives from the schema's box and the released scaler.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from fedseg.common.messages import Message, NDArray, SchemaRequest
from fedseg.common.phases import bounds as public_bounds
from fedseg.common.phases.base import DPRelease, LocalData, Phase
from fedseg.common.phases.registry import register
from fedseg.common.preprocessing import clip_numeric, one_hot
from fedseg.common.schema import FeatureSchema
from fedseg.common.vertical import party


class _Placed(SchemaRequest):
    """Where this party's block sits among all parties' features."""

    start: int = Field(ge=0)
    width: int = Field(ge=1)
    n_shared: int = Field(ge=1)


class VPrepareRequest(_Placed):
    phase: Literal["vertical_prepare"] = "vertical_prepare"


class VPrepareReply(Message):
    phase: Literal["vertical_prepare"] = "vertical_prepare"
    mean: NDArray  # (width,) encoded features, this party's at its offset
    scale: NDArray


class VLloydRequest(SchemaRequest):
    """One Lloyd round for `n_cand` stacked candidates of `k` centroids (PRIVACY.md,
    "Vertical federation"). First round of a stage: `from_groups` (means of public
    groups of positions) or `init` (indices into the fine stage's centroids); later
    rounds: `labels` (rows, n_cand) of the last round, each party updates its block. The
    fine and main stages may run on a public `sample` of positions (`blocks.sample`),
    the full stage then refines the best candidate on every position."""

    phase: Literal["vertical_lloyd"] = "vertical_lloyd"
    stage: Literal["fine", "main", "full"]
    k: int = Field(ge=1)
    n_cand: int = Field(ge=1, le=64)
    n_shared: int = Field(ge=1)
    from_groups: int = Field(default=0, ge=0)  # seed of the public groups (0: not this round)
    init: NDArray | None = None  # (n_cand * k,) indices into `init_stage`'s centroids
    init_stage: Literal["fine", "main"] = "fine"
    sample: int = Field(default=0, ge=0)  # a public sample of this many positions (0: all)
    sample_seed: int = Field(default=0, ge=0)
    labels: NDArray | None = None  # (n_shared, n_cand)
    keep: NDArray | None = None  # candidates that go on (indices into the last round's), before the update
    distances: bool = True
    gaps: bool = False  # also the partial squared distances between each candidate's centroids
    offset_scale: float = Field(default=0.0, ge=0.0)
    bound: float = Field(default=0.0, ge=0.0)


class VLloydReply(Message):
    phase: Literal["vertical_lloyd"] = "vertical_lloyd"
    dist: NDArray  # (n_shared, n_cand * k) partial squared distances + the row's offset
    gaps: NDArray  # (n_cand * k, k)


class VProfileRequest(_Placed):
    """The final labels: each party keeps them and returns its block of every segment's
    sums, in original units (`sums`) and in the scaled space (`encoded`)."""

    phase: Literal["vertical_profile"] = "vertical_profile"
    k: int = Field(ge=1)
    labels: NDArray  # (n_shared,)
    raw_start: int = Field(ge=0)
    raw_width: int = Field(ge=1)
    bound: float = Field(default=0.0, ge=0.0)


class VProfileReply(Message):
    phase: Literal["vertical_profile"] = "vertical_profile"
    sums: NDArray  # (k, raw_width): numeric values (original units, clipped) and one-hot counts
    encoded: NDArray  # (k, width): sums of the scaled encoded values


def _prepare(req: VPrepareRequest, data: LocalData) -> VPrepareReply:
    scaler = party.fit_scaler(data, req.schema_, req.n_shared)
    mean, scale = np.zeros(req.width), np.zeros(req.width)
    d = len(scaler.mean)
    party.check_placement(req.start, d, req.width)
    mean[req.start:req.start + d], scale[req.start:req.start + d] = scaler.mean, scaler.scale
    return VPrepareReply(mean=mean, scale=scale)


def _lloyd(req: VLloydRequest, data: LocalData) -> VLloydReply:
    dist, gaps = party.lloyd_round(data, req)
    return VLloydReply(dist=dist, gaps=gaps)


def _profile(req: VProfileRequest, data: LocalData) -> VProfileReply:
    X, table = party.final_block(data, req)
    labels = req.labels.astype(np.int64)
    raw = np.hstack([clip_numeric(table.numeric, req.schema_), one_hot(table.codes, req.schema_)])
    party.check_placement(req.raw_start, raw.shape[1], req.raw_width)
    party.check_placement(req.start, X.shape[1], req.width)
    sums, encoded = np.zeros((req.k, req.raw_width)), np.zeros((req.k, req.width))
    np.add.at(sums, (labels, slice(req.raw_start, req.raw_start + raw.shape[1])), raw)
    np.add.at(encoded, (labels, slice(req.start, req.start + X.shape[1])), X)
    return VProfileReply(sums=sums, encoded=encoded)


def _no_dp(req: SchemaRequest, schema: FeatureSchema) -> DPRelease:
    return DPRelease("vertical", 0.0, {})


def _prepare_bounds(req: VPrepareRequest) -> dict[str, float]:
    b = max(public_bounds.transformed_bound(req.schema_), 1.0)
    return {"mean": b, "scale": b}


PREPARE = register(Phase("vertical_prepare", VPrepareRequest, VPrepareReply, _prepare,
                         lambda r: {"mean": (r.width,), "scale": (r.width,)}, _prepare_bounds, _no_dp))
LLOYD = register(Phase(
    "vertical_lloyd", VLloydRequest, VLloydReply, _lloyd,
    lambda r: {"dist": ((r.sample or r.n_shared) if r.distances else 0, r.n_cand * r.k),
               "gaps": (r.n_cand * r.k if r.gaps else 0, r.k)},
    lambda r: {"dist": r.bound, "gaps": r.bound}, _no_dp))
PROFILE = register(Phase("vertical_profile", VProfileRequest, VProfileReply, _profile,
                         lambda r: {"sums": (r.k, r.raw_width), "encoded": (r.k, r.width)},
                         lambda r: {"sums": r.bound, "encoded": r.bound}, _no_dp))
