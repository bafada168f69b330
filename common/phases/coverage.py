"""Coverage: per feature, how many values were missing, imputed, clipped or dropped.

The first exchange of a run without DP. A node applies the schema's gap and range
policies (`common.table_policy`) and returns the counts, summed over its rows; the server
learns from them which features have gaps (those get the federated median next) and
puts the totals in the artifact. Each customer adds at most 1 to every entry.

Under DP the phase is not run and nothing in it is released: its fields declare no
sensitivity, so a node under a DP limit refuses it (`client.node_dp.release_rho`).
"""

from __future__ import annotations

from typing import Literal

from fedseg.common.messages import Message, NDArray, SchemaRequest
from fedseg.common.phases.base import DPRelease, Layout, LocalData, Phase, by_name
from fedseg.common.phases.registry import register
from fedseg.common.schema import FeatureSchema
from fedseg.common.table_policy import Coverage


class CoverageRequest(SchemaRequest):
    """Counts of gaps and out-of-range values per feature, by the schema's policies."""

    phase: Literal["coverage"] = "coverage"


class CoverageReply(Message):
    phase: Literal["coverage"] = "coverage"
    rows: int  # rows read
    kept: int  # rows taking part
    missing: NDArray  # (n_numeric + n_categorical,)
    imputed: NDArray  # (n_numeric + n_categorical,)
    dropped: NDArray  # (n_numeric + n_categorical,) rows left out for this feature
    clipped: NDArray  # (n_numeric,)


def answer(req: CoverageRequest, data: LocalData) -> CoverageReply:
    table = data.table(req.schema_)
    return by_name(CoverageReply, table.coverage or Coverage.complete(table.n_rows, req.schema_))


def totals(reply: CoverageReply) -> Coverage:
    """The summed reply as `table_policy` counts it."""
    return by_name(Coverage, reply)


def layout(req: CoverageRequest) -> Layout:
    s = req.schema_
    p, c = len(s.numeric), len(s.categorical)
    return {"rows": (), "kept": (), "missing": (p + c,), "imputed": (p + c,), "dropped": (p + c,), "clipped": (p,)}


def reply_bounds(req: CoverageRequest) -> dict[str, float]:
    return {tag: 1.0 for tag in layout(req)}  # one per customer and entry


def dp_release(req: CoverageRequest, schema: FeatureSchema) -> DPRelease:
    return DPRelease("coverage", 0.0, {})  # not released under DP


PHASE = register(Phase("coverage", CoverageRequest, CoverageReply, answer, layout, reply_bounds, dp_release))
