"""The messages between server and nodes, and their byte encoding.

Every request and reply is a pydantic model; arrays travel as base64 of their raw
little-endian bytes with dtype and shape, so a decode either gives back exactly the
array that was sent or fails with a clear error. Replies hold aggregates only: their
size depends on k, d and the number of hash buckets, never on the number of records.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, ClassVar, Literal, Union

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
)

from fedseg.common.schema import FeatureSchema
from fedseg.common.secagg.messages import (
    KeyAdvertisement,
    KeyBroadcast,
    MaskedInput,
    RoundRequest,
    SetupRequest,
    SetupShares,
    UnmaskRequest,
    UnmaskShares,
)

PROTOCOL = "fedseg-wire/1"
_DTYPES = {"float64": "<f8", "int64": "<i8"}


class WireError(ValueError):
    """A message that cannot be decoded into a known request or reply."""


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


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)
    protocol: Literal["fedseg-wire/1"] = PROTOCOL
    # fields holding customer counts: once DP noise is summed in they are clipped at 0
    nonnegative_counts: ClassVar[tuple[str, ...]] = ("count", "counts")


class Scaler(_Msg):
    """Global standardisation, per encoded feature."""

    mean: NDArray
    scale: NDArray


# ---- requests -------------------------------------------------------------------


class _Req(_Msg):
    """Every request carries the (public) schema, so a node needs no state between them."""

    schema_: FeatureSchema = Field(alias="schema")


class PrepareRequest(_Req):
    """Validate the local table against the schema and return preprocessing sums."""

    phase: Literal["prepare"] = "prepare"
    center: NDArray | None = None  # DP: public centre subtracted from the transformed values first


class BucketCountsRequest(_Req):
    """Count records per coreset bucket: tables of random hyperplanes in scaled space."""

    phase: Literal["bucket_counts"] = "bucket_counts"
    scaler: Scaler
    normals: NDArray  # (tables, bits, d)
    offsets: NDArray  # (tables, bits)


class BucketSumsRequest(BucketCountsRequest):
    """Sum the scaled records of the dense buckets only (global bucket ids)."""

    phase: Literal["bucket_sums"] = "bucket_sums"  # type: ignore[assignment]
    dense: NDArray  # (n_dense,) int64 ids in [0, tables * 2**bits)
    clip_norm: float = Field(default=0.0, ge=0.0)  # DP: scaled records clipped to this L2 norm; 0 = none


class LloydRequest(_Req):
    """One Lloyd step for a stack of candidate models at once."""

    phase: Literal["lloyd"] = "lloyd"
    scaler: Scaler
    centroids: NDArray  # (sum(sizes), d)
    sizes: list[int]
    clip_norm: float = Field(default=0.0, ge=0.0)  # DP: scaled records clipped to this L2 norm; 0 = none


class ProfileRequest(_Req):
    """Per-segment sums in original units for the final model."""

    phase: Literal["profile"] = "profile"
    scaler: Scaler
    centroids: NDArray  # (k, d)
    score_bins: NDArray | None = None  # (n_scored, 4) quintile edge bins: per-segment score sums


class HistogramRequest(_Req):
    """Counts per public bin of every feature that needs federated quantiles."""

    phase: Literal["histogram"] = "histogram"


class TransitionRequest(_Req):
    """Warm start: customers per (old segment, new segment), the old model applied with
    its own schema, scaler and centroids."""

    phase: Literal["transitions"] = "transitions"
    scaler: Scaler
    centroids: NDArray  # (k_new, d)
    old_schema: FeatureSchema
    old_scaler: Scaler
    old_centroids: NDArray  # (k_old, d)


PhaseRequest = Annotated[
    Union[PrepareRequest, BucketCountsRequest, BucketSumsRequest, LloydRequest, ProfileRequest,
          HistogramRequest, TransitionRequest],
    Field(discriminator="phase"),
]


# ---- secure mode: the same phase requests, wrapped in secure-aggregation steps --------


class ValidateRequest(_Req):
    """Secure mode, first exchange: validate the table; the reply says only 'ready'."""

    phase: Literal["validate"] = "validate"


class SecureSetupRequest(_Msg):
    phase: Literal["secure_setup"] = "secure_setup"
    setup: SetupRequest


class SecureBroadcastRequest(_Msg):
    phase: Literal["secure_broadcast"] = "secure_broadcast"
    broadcast: KeyBroadcast


class SecureRoundRequest(_Msg):
    """A phase request whose reply goes back masked, field by field divided by `scales`."""

    phase: Literal["secure_round"] = "secure_round"
    inner: PhaseRequest
    round: RoundRequest
    scales: dict[str, float]
    noise: dict[str, float | list[float]] = {}  # DP: per-node Gaussian std per field or entry


class SecureUnmaskRequest(_Msg):
    phase: Literal["secure_unmask"] = "secure_unmask"
    unmask: UnmaskRequest


Request = Annotated[
    Union[
        PrepareRequest, BucketCountsRequest, BucketSumsRequest, LloydRequest, ProfileRequest,
        HistogramRequest, TransitionRequest, ValidateRequest, SecureSetupRequest, SecureBroadcastRequest, SecureRoundRequest,
        SecureUnmaskRequest,
    ],
    Field(discriminator="phase"),
]

# ---- replies ----------------------------------------------------------------------


class NodeFailure(_Msg):
    """A node that cannot take part: its reason, as the node stated it."""

    phase: Literal["failure"] = "failure"
    error: str


class PrepareReply(_Msg):
    phase: Literal["prepare"] = "prepare"
    count: int
    sums: NDArray  # (n_numeric,) of transformed, clipped values
    sumsq: NDArray  # (n_numeric,)
    category_counts: NDArray  # (n_onehot,)


class BucketCountsReply(_Msg):
    phase: Literal["bucket_counts"] = "bucket_counts"
    counts: NDArray  # (tables * 2**bits,)


class BucketSumsReply(_Msg):
    phase: Literal["bucket_sums"] = "bucket_sums"
    sums: NDArray  # (n_dense, d)
    counts: NDArray  # (n_dense,)


class LloydReply(_Msg):
    """Per candidate cluster: sums of points, counts, inertia, distance and silhouette sums."""

    phase: Literal["lloyd"] = "lloyd"
    sums: NDArray  # (total, d)
    counts: NDArray  # (total,)
    inertia: NDArray  # (total,) sum of squared distances
    dist: NDArray  # (total,) sum of distances (Davies-Bouldin)
    silhouette: NDArray  # (total,) sum of simplified silhouettes


class ProfileReply(_Msg):
    phase: Literal["profile"] = "profile"
    counts: NDArray  # (k,)
    sums: NDArray  # (k, n_numeric) original units
    sumsq: NDArray  # (k, n_numeric)
    category_counts: NDArray  # (k, n_onehot)
    scores: NDArray | None = None  # (k, n_scored) sums of 1-5 quintile scores
    # (k, per-segment bins of the quantile features): customers per segment and bin, for
    # the segment quartiles; at most 256 bins per feature (`common.segment_quantiles`)
    histograms: NDArray | None = None


class HistogramReply(_Msg):
    phase: Literal["histogram"] = "histogram"
    counts: NDArray  # (sum of bins over quantile features,)
    # left as summed: the quantile phase makes the cumulative counts monotone instead
    # (clipping every empty bin first would add mass all along the range)
    nonnegative_counts: ClassVar[tuple[str, ...]] = ()


class TransitionReply(_Msg):
    phase: Literal["transitions"] = "transitions"
    counts: NDArray  # (k_old, k_new)


class ReadyReply(_Msg):
    phase: Literal["ready"] = "ready"


class SecureKeysReply(_Msg):
    phase: Literal["secure_keys"] = "secure_keys"
    keys: KeyAdvertisement


class SecureSharesReply(_Msg):
    phase: Literal["secure_shares"] = "secure_shares"
    shares: SetupShares


class SecureMaskedReply(_Msg):
    phase: Literal["secure_masked"] = "secure_masked"
    masked: MaskedInput


class SecureUnmaskReply(_Msg):
    phase: Literal["secure_unmasked"] = "secure_unmasked"
    shares: UnmaskShares


Reply = Annotated[
    Union[
        NodeFailure, PrepareReply, BucketCountsReply, BucketSumsReply, LloydReply, ProfileReply,
        HistogramReply, TransitionReply, ReadyReply, SecureKeysReply, SecureSharesReply, SecureMaskedReply, SecureUnmaskReply,
    ],
    Field(discriminator="phase"),
]

_REQUEST = TypeAdapter(Request)
_REPLY = TypeAdapter(Reply)


def encode(message: _Msg) -> bytes:
    """Bytes of a request or reply."""
    return message.model_dump_json(by_alias=True).encode()


def _decode(adapter: TypeAdapter, payload: bytes, what: str) -> Any:
    try:
        return adapter.validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise WireError(f"malformed {what}: {where}: {first['msg']}") from exc


def decode_request(payload: bytes) -> Request:
    """Parse a request, failing with `WireError` on anything malformed."""
    return _decode(_REQUEST, payload, "request")


def decode_reply(payload: bytes) -> Reply:
    """Parse a reply, failing with `WireError` on anything malformed."""
    return _decode(_REPLY, payload, "reply")
