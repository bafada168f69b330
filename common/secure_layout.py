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

from fedseg.common.secagg import fixed_point
from fedseg.common.messages import SchemaRequest
from fedseg.common.phases.base import Layout
from fedseg.common.phases.registry import phase_for
from fedseg.common.schema import FeatureSchema


class BoundsMissing(ValueError):
    """Secure mode needs public bounds on every numeric feature to size fixed point."""


def require_bounds(schema: FeatureSchema) -> None:
    missing = [f.name for f in schema.numeric if f.lower is None or f.upper is None]
    if missing:
        raise BoundsMissing(
            f"secure mode needs public lower and upper bounds for every numeric feature; "
            f"missing for {missing}"
        )


def layout_and_bounds(request: SchemaRequest) -> tuple[Layout, dict[str, float]]:
    """Reply field shapes and per-customer bounds per entry, from the request alone."""
    return reply_layout(request), reply_bounds(request)


def reply_layout(request: SchemaRequest) -> Layout:
    """Reply field shapes, from the request alone: all a node needs to flatten its reply
    (the bounds, which cost a pass through the schema's transforms, serve the server)."""
    return phase_for(request).layout(request)


def reply_bounds(request: SchemaRequest) -> dict[str, float]:
    """Public bound on what one customer adds to each entry of each reply field."""
    return phase_for(request).bounds(request)


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
