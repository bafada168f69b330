"""What every message between server and nodes is built from.

A message is a frozen pydantic model; arrays travel as base64 of their raw
little-endian bytes with dtype and shape, so a decode either gives back exactly the
array that was sent or fails with a clear error. The phase modules
(`fedseg.common.phases`) and the wire (`fedseg.common.wire`) both build on this module,
so it imports neither.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from fedseg.common.schema import FeatureSchema
from fedseg.common.secagg.messages import RefusalCode

PROTOCOL = "fedseg-wire/1"
_DTYPES = {"float64": "<f8", "int64": "<i8"}


def _array_from_wire(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data"}:
        raise ValueError("array must be an object with dtype, shape and data")
    if value["dtype"] not in _DTYPES:
        raise ValueError(f"unsupported array dtype {value['dtype']!r}")
    shape = tuple(int(s) for s in value["shape"])
    if any(s < 0 for s in shape):
        raise ValueError("array shape has a negative dimension")
    raw = base64.b64decode(value["data"], validate=True)
    dtype = np.dtype(_DTYPES[value["dtype"]])
    if len(raw) != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"array data length {len(raw)} does not match shape {shape}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _array_to_wire(arr: np.ndarray) -> dict[str, Any]:
    kind = "int64" if np.issubdtype(arr.dtype, np.integer) else "float64"
    data = np.ascontiguousarray(arr, dtype=_DTYPES[kind]).tobytes()
    return {"dtype": kind, "shape": list(arr.shape), "data": base64.b64encode(data).decode()}


NDArray = Annotated[
    np.ndarray,
    BeforeValidator(_array_from_wire),
    PlainSerializer(_array_to_wire, return_type=dict),
]


class Message(BaseModel):
    """Base of every request and reply: immutable, no unknown fields, versioned."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)
    protocol: Literal["fedseg-wire/1"] = PROTOCOL
    # fields holding customer counts: once DP noise is summed in they are clipped at 0
    nonnegative_counts: ClassVar[tuple[str, ...]] = ("count", "counts")


class SchemaRequest(Message):
    """Every request carries the (public) schema, so a node needs no state between them."""

    schema_: FeatureSchema = Field(alias="schema")


class Scaler(Message):
    """Global standardisation, per encoded feature."""

    mean: NDArray
    scale: NDArray


FailureCode = Literal[
    # the node's own checks (client/guard.py, client/node_dp.py)
    "bad-table", "bad-request", "schema-mismatch", "policy-refused", "overflow", "budget-exhausted",
    "protocol-error",
    "table-changed",  # the node's table is not the one it read at the run's first exchange
    # secure aggregation's refusals (`SecAggRefused.code`)
    RefusalCode,
    # what the server notes for a node that sent nothing usable
    "no-reply", "node-error", "bad-reply", "left-secure-round", "no-secure-setup",
    # a decoded reply no honest node can send (`common/reply_checks.py`): which check failed
    "bad-reply-shape", "bad-reply-not-finite", "bad-reply-count", "bad-reply-out-of-bounds",
    # a node that missed the exchange's deadline (`exchange-timeout`)
    "timeout",
]
FAILURE_CODES: frozenset[str] = frozenset(FailureCode.__args__)  # type: ignore[attr-defined]


class NodeFailure(Message):
    """A node that cannot take part, as one code from a fixed set: never text, so no cell
    value or count can travel in an error (the node logs the detail on its side)."""

    phase: Literal["failure"] = "failure"
    code: FailureCode


class ReadyReply(Message):
    phase: Literal["ready"] = "ready"
