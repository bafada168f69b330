"""Federated quantiles: customers per public bin of every feature that needs quantiles.

A customer adds 1 to one bin of each such feature (DP: Δ = √features). The summed
counts are left as they come out of the noise: the quantile phase makes the cumulative
counts monotone instead (clipping every empty bin first would add mass all along the range).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from fedseg.common import quantiles
from fedseg.common.dp import sensitivity
from fedseg.common.messages import Message, NDArray, SchemaRequest
from fedseg.common.phases.base import DPRelease, Layout, LocalData, Phase
from fedseg.common.phases.registry import register
from fedseg.common.schema import FeatureSchema


class HistogramRequest(SchemaRequest):
    """Counts per public bin of every feature that needs federated quantiles."""

    phase: Literal["histogram"] = "histogram"


class HistogramReply(Message):
    phase: Literal["histogram"] = "histogram"
    counts: NDArray  # (sum of bins over quantile features,)
    nonnegative_counts: ClassVar[tuple[str, ...]] = ()


def answer(req: HistogramRequest, data: LocalData) -> HistogramReply:
    return HistogramReply(counts=quantiles.local_histograms(data.table(req.schema_), req.schema_))


def layout(req: HistogramRequest) -> Layout:
    s = req.schema_
    return {"counts": (sum(s.numeric[i].n_bins for i in s.quantile_indices),)}


def reply_bounds(req: HistogramRequest) -> dict[str, float]:
    return {"counts": 1.0}  # one count per customer and feature


def dp_release(req: HistogramRequest, schema: FeatureSchema) -> DPRelease:
    # the request's own schema, as the planner has always used for this phase
    delta = sensitivity.histogram_sensitivity(n_tables=len(req.schema_.quantile_indices))
    return DPRelease("quantiles", 1.0, {"counts": delta})


PHASE = register(Phase("histogram", HistogramRequest, HistogramReply, answer, layout, reply_bounds, dp_release))
