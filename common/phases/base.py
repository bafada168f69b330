"""What a protocol phase declares, in one place: the `Phase` record and its parts.

A phase is one exchange of the run: the request the server sends, the reply every node
returns, the node's handler, and what the server needs to carry the reply safely — the
shape of every reply field and a public per-customer bound on each (secure
aggregation's fixed-point scales), and what the reply releases under differential
privacy. Replies are sums over a node's customers, so the server adds them up field by
field (`add_replies`) whatever the phase.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from fedseg.common.messages import Message, Scaler, SchemaRequest
from fedseg.common.preprocessing import LocalTable
from fedseg.common.schema import FeatureSchema

Layout = dict[str, tuple[int, ...]]  # reply field -> its shape
_ENVELOPE = ("protocol", "phase")  # fields every message has; not part of the sums
R = TypeVar("R", bound=Message)
T = TypeVar("T")


class LocalData(Protocol):
    """A node's customers as a phase handler reads them (`client.handlers.NodeData`)."""

    def table(self, schema: FeatureSchema) -> LocalTable:
        """The validated table, raw values in original units."""

    def matrix(self, schema: FeatureSchema, scaler: Scaler) -> np.ndarray:
        """The encoded, scaled records: shape (n, n_encoded)."""


@dataclasses.dataclass(frozen=True)
class DPRelease:
    """What one request releases under DP: the ledger phase it is charged to, which
    share of that phase's budget it takes, the L2 sensitivity Δ of every released field
    and, for fields released per entry, the public weight of each entry's noise."""

    ledger_phase: str
    share: float
    deltas: dict[str, float]
    weights: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, eq=False)
class Phase:
    """One exchange, declared once and found through `phases.registry`.

    `answer(request, data)` is the node's handler; `layout(request)` gives the reply's
    field shapes and `bounds(request)` what one customer adds at most to an entry of each
    field, from the request alone; `dp_release(request, schema)` states the release,
    `schema` being the one whose public box bounds a record for the DP planner.
    """

    name: str
    request: type[SchemaRequest]
    reply: type[Message]
    answer: Callable[[Any, LocalData], Message]
    layout: Callable[[Any], Layout]
    bounds: Callable[[Any], dict[str, float]]
    dp_release: Callable[[Any, FeatureSchema], DPRelease]


def reply_fields(reply_type: type[Message]) -> list[str]:
    """The fields of a reply that carry aggregates (all but protocol and phase)."""
    return [name for name in reply_type.model_fields if name not in _ENVELOPE]


def add_replies(replies: Sequence[R]) -> R:
    """The replies of one phase summed field by field, in order; an optional field is
    None as soon as one reply lacks it."""
    first = replies[0]
    if len(replies) == 1:
        return first
    summed: dict[str, Any] = {}
    for name in reply_fields(type(first)):
        values = [getattr(r, name) for r in replies]
        summed[name] = None if any(v is None for v in values) else functools.reduce(operator.add, values)
    return type(first)(**summed)


def by_name(target: type[T], source: object, **given: Any) -> T:
    """`target` built from the attributes of `source` named like its fields (a reply
    from local statistics or back), `given` ones aside."""
    if dataclasses.is_dataclass(target):
        names = [f.name for f in dataclasses.fields(target)]
    else:
        names = reply_fields(target)  # type: ignore[arg-type]
    return target(**{n: getattr(source, n) for n in names if n not in given}, **given)
