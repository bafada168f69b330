"""How a reply travels under secure aggregation: named flat vectors with public scales.

Secure aggregation sums fixed-point vectors. For each phase the server knows, from the
request alone, the shape of every field of the reply and a public bound on what one
customer adds to each entry (from the schema's public bounds). A node divides each
field by a public power-of-two scale so that even `max_records_per_node` customers fit
the fixed-point range; the server multiplies the unmasked sums back. Counts keep scale 1
and so stay exact integers.
"""

from __future__ import annotations

import math

import numpy as np

from fedseg.common import fixed_point
from fedseg.common.dp.sensitivity import max_entry_bound, raw_box, scaled_box, transformed_box
from fedseg.common.schema import FeatureSchema
from fedseg.common.segment_quantiles import histogram_width
from fedseg.common.wire import (
    BucketCountsReply,
    BucketCountsRequest,
    BucketSumsReply,
    BucketSumsRequest,
    HistogramReply,
    HistogramRequest,
    LloydReply,
    LloydRequest,
    PrepareReply,
    PrepareRequest,
    ProfileReply,
    ProfileRequest,
    Request,
    TransitionReply,
    TransitionRequest,
)

Layout = dict[str, tuple[int, ...]]
REPLY_TYPES = {
    PrepareRequest: PrepareReply,
    BucketCountsRequest: BucketCountsReply,
    BucketSumsRequest: BucketSumsReply,
    LloydRequest: LloydReply,
    ProfileRequest: ProfileReply,
    HistogramRequest: HistogramReply,
    TransitionRequest: TransitionReply,
}


class BoundsMissing(ValueError):
    """Secure mode needs public bounds on every numeric feature to size fixed point."""


def require_bounds(schema: FeatureSchema) -> None:
    missing = [f.name for f in schema.numeric if f.lower is None or f.upper is None]
    if missing:
        raise BoundsMissing(
            f"secure mode needs public lower and upper bounds for every numeric feature; "
            f"missing for {missing}"
        )


def layout_and_bounds(request: Request) -> tuple[Layout, dict[str, float]]:
    """Reply field shapes and per-customer bounds per entry, from the request alone."""
    return reply_layout(request), reply_bounds(request)


def reply_layout(request: Request) -> Layout:
    """Reply field shapes, from the request alone: all a node needs to flatten its reply
    (the bounds, which cost a pass through the schema's transforms, serve the server)."""
    s = request.schema_
    p, q, d = len(s.numeric), s.n_encoded - len(s.numeric), s.n_encoded
    if isinstance(request, PrepareRequest):
        return {"count": (), "sums": (p,), "sumsq": (p,), "category_counts": (q,)}
    if isinstance(request, ProfileRequest):
        k = len(request.centroids)
        n_scored = 0 if request.score_bins is None else len(request.score_bins)
        per_customer = {"sums": (k, p), "sumsq": (k, p), "category_counts": (k, q)}
        return {"counts": (k,), **per_customer, "scores": (k, n_scored), "histograms": (k, histogram_width(s))}
    if isinstance(request, HistogramRequest):  # one count per customer and feature
        return {"counts": (sum(s.numeric[i].n_bins for i in s.quantile_indices),)}
    if isinstance(request, TransitionRequest):
        return {"counts": (len(request.old_centroids), len(request.centroids))}
    if isinstance(request, BucketSumsRequest):
        m = len(request.dense)
        return {"sums": (m, d), "counts": (m,)}
    if isinstance(request, BucketCountsRequest):
        tables, bits, _ = request.normals.shape
        return {"counts": (tables * 2**bits,)}
    total = int(sum(request.sizes))
    per_cluster = {"counts": (total,), "inertia": (total,), "dist": (total,), "silhouette": (total,)}
    return {"sums": (total, d), **per_cluster}


def reply_bounds(request: Request) -> dict[str, float]:
    """Public bound on what one customer adds to each entry of each reply field."""
    s = request.schema_
    if isinstance(request, PrepareRequest):
        t = max_entry_bound(*transformed_box(s))
        return {"count": 1.0, "sums": t, "sumsq": t * t, "category_counts": 1.0}
    if isinstance(request, ProfileRequest):
        r = max_entry_bound(*raw_box(s))
        return {"counts": 1.0, "sums": r, "sumsq": r * r, "category_counts": 1.0, "scores": 5.0, "histograms": 1.0}
    if isinstance(request, BucketSumsRequest):  # before its base class BucketCountsRequest
        return {"sums": max_entry_bound(*scaled_box(s, request.scaler)), "counts": 1.0}
    if isinstance(request, (HistogramRequest, TransitionRequest, BucketCountsRequest)):
        return {"counts": 1.0}
    b = max_entry_bound(*scaled_box(s, request.scaler))
    far = 4.0 * s.n_encoded * b * b  # squared distance between two points of the box
    return {"sums": b, "counts": 1.0, "inertia": far, "dist": math.sqrt(far), "silhouette": 1.0}


def tag_scales(bounds: dict[str, float], *, max_records: int, frac_bits: int, max_nodes: int) -> dict[str, float]:
    """Power-of-two divisors so `max_records` customers at the bound fit the range."""
    limit = fixed_point.max_abs_value(frac_bits=frac_bits, max_nodes=max_nodes)
    return {
        tag: float(2.0 ** max(0, math.ceil(math.log2(max_records * bound / limit)))) if bound > 0 else 1.0
        for tag, bound in bounds.items()
    }


def flatten(reply: object, layout: Layout, scales: dict[str, float]) -> dict[str, np.ndarray]:
    """The reply's fields as flat float vectors divided by their public scales."""
    return {
        tag: np.asarray(getattr(reply, tag), dtype=float).reshape(-1) / scales[tag]
        for tag in vector_lengths(layout)
    }


def unflatten(reply_type: type, sums: dict[str, np.ndarray], layout: Layout, scales: dict[str, float]) -> object:
    """The summed reply: fields reshaped and multiplied back; counts rounded to integers."""
    fields: dict[str, object] = {}
    for tag, shape in layout.items():
        if tag not in sums:  # an empty field (e.g. no categorical features) is not sent
            fields[tag] = np.zeros(shape)
            continue
        value = (np.asarray(sums[tag]) * scales[tag]).reshape(shape)
        if tag in ("count", "counts"):
            value = np.rint(value).astype(np.int64)
            fields[tag] = int(value) if shape == () else value
        else:
            fields[tag] = value
    return reply_type(**fields)


def vector_lengths(layout: Layout) -> dict[str, int]:
    """Tag -> flat length of every non-empty field; a scalar field is a vector of one."""
    lengths = {tag: math.prod(shape) for tag, shape in layout.items()}
    return {tag: n for tag, n in lengths.items() if n > 0}
