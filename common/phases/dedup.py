"""Overlap counts after the PSI (`common.psi`): how many of a node's customers some
other node holds too, split into those it owns and those it gave up to their owner.

Summed over nodes, `shared` is the number of distinct customers held by more than one
unit and `removed` the number of duplicate rows left out of every later phase; the
server releases them only at or above min-segment-size (`server/psi_phase.py`). Not
sent under DP (the counts would need budget), so `dp_release` is never planned.
"""

from __future__ import annotations

from typing import Literal

from fedseg.common.messages import Message, SchemaRequest
from fedseg.common.phases.base import DPRelease, Layout, LocalData, Phase
from fedseg.common.phases.registry import register
from fedseg.common.psi.messages import Session
from fedseg.common.psi.protocol import PsiError
from fedseg.common.schema import FeatureSchema


class DedupRequest(SchemaRequest):
    """The overlap counts of the PSI session that decided this node's rows."""

    phase: Literal["dedup"] = "dedup"
    session: Session


class DedupReply(Message):
    phase: Literal["dedup"] = "dedup"
    shared: int  # customers held by a peer too, owned here
    removed: int  # customers held by a peer too, owned there (left out of every phase)


def answer(req: DedupRequest, data: LocalData) -> DedupReply:
    result = getattr(data, "dedup", None)
    if result is None or result.session != req.session:
        raise PsiError("no deduplication of this session on this node")
    return DedupReply(shared=result.shared, removed=result.removed)


def layout(req: DedupRequest) -> Layout:
    return {"shared": (), "removed": ()}


def reply_bounds(req: DedupRequest) -> dict[str, float]:
    return {"shared": 1.0, "removed": 1.0}


def dp_release(req: DedupRequest, schema: FeatureSchema) -> DPRelease:
    return DPRelease("dedup", 0.0, {"shared": 1.0, "removed": 1.0})


PHASE = register(Phase("dedup", DedupRequest, DedupReply, answer, layout, reply_bounds, dp_release))
