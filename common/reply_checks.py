"""What a decoded reply can possibly hold, checked before the server adds it to anything.

A node's reply is a sum over at most `customers` records whose values lie in the
schema's public box, so every field has an exact shape (the phase's `layout`), is
finite, and stays within `customers` times the phase's per-customer `bounds`; counts are
non-negative integers no larger than `customers`; sums of squares, inertia, distances,
scores and histograms are non-negative. A reply that breaks one of these came from a
buggy or hostile node (or, for a secure sum, from a node whose masked vector was wrong):
the server drops that node, or stops a secure run, naming the phase and the check,
never a value (issue 13). Pure numpy, no Flower.
"""

from __future__ import annotations

import numpy as np

from fedseg.common.messages import Message, SchemaRequest
from fedseg.common.phases.base import Phase, reply_fields
from fedseg.common.phases.registry import phase_for

COUNT_FIELDS = frozenset({"count", "counts"})
NONNEGATIVE_FIELDS = frozenset({"sumsq", "inertia", "dist", "category_counts", "histograms", "scores"})
REL_TOL = 1e-9  # float sums of values at the bound may land a few ulps above it
CHECK_CODES = {  # check -> the failure code the run records for the node (`FailureCode`)
    "shape": "bad-reply-shape",
    "finite": "bad-reply-not-finite",
    "count": "bad-reply-count",
    "bounds": "bad-reply-out-of-bounds",
}


class ReplyRejected(ValueError):
    """A reply that no honest node can send: which check failed, on which field."""

    def __init__(self, phase: str, check: str, field: str) -> None:
        super().__init__(f"phase {phase}: field {field!r} failed the {check} check")
        self.phase, self.check, self.field = phase, check, field

    @property
    def code(self) -> str:
        return CHECK_CODES[self.check]


def check_reply(request: SchemaRequest, reply: Message, customers: float, *, exact: bool = True) -> None:
    """Raise `ReplyRejected` unless `reply` is possible for `request` from at most
    `customers` records. `exact=False` (a DP-noised secure sum) checks shapes and
    finiteness only: noise may legitimately push a sum past its bound."""
    phase = phase_for(request)
    layout = phase.layout(request)
    limits = _per_customer_bounds(phase, request) if exact else {}
    for name in reply_fields(type(reply)):
        value = getattr(reply, name)
        if value is None:
            continue
        arr = np.asarray(value)
        if name not in layout or arr.shape != tuple(layout[name]):
            raise ReplyRejected(phase.name, "shape", name)
        if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
            raise ReplyRejected(phase.name, "finite", name)
        if exact:
            _check_values(phase.name, name, arr.astype(float), customers, limits.get(name))


def _check_values(phase: str, name: str, arr: np.ndarray, customers: float, bound: float | None) -> None:
    top = customers * (1 + REL_TOL)
    if name in COUNT_FIELDS and ((arr < 0).any() or (arr != np.rint(arr)).any() or (arr > top).any()):
        raise ReplyRejected(phase, "count", name)
    if name in NONNEGATIVE_FIELDS and (arr < 0).any():
        raise ReplyRejected(phase, "bounds", name)
    if bound is not None and (np.abs(arr) > customers * bound * (1 + REL_TOL) + REL_TOL).any():
        raise ReplyRejected(phase, "bounds", name)


def _per_customer_bounds(phase: Phase, request: SchemaRequest) -> dict[str, float]:
    """The phase's public bound per customer and entry, where the schema gives one (a
    numeric feature without public bounds leaves the sums unbounded; counts are still
    checked against `customers`)."""
    if any(f.lower is None or f.upper is None for f in request.schema_.numeric):
        return {}
    return {n: float(b) for n, b in phase.bounds(request).items() if np.isfinite(b)}
