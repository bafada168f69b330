"""The wire: the secure-mode wrapper messages, the message unions, and their bytes.

Phase requests and replies live with their phase (`fedseg.common.phases`); this module
adds the messages that wrap them in secure-aggregation steps and builds the
discriminated `Request`/`Reply` unions from the phase registry, so a phase registered
later (a new module) is decoded like the built-in ones. Replies hold aggregates only:
their size depends on k, d and the number of hash buckets, never on the number of records.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, Union

from pydantic import Field, SerializeAsAny, TypeAdapter, ValidationError, field_validator

from fedseg.common import phases  # noqa: F401  (registers the built-in phases)
from fedseg.common.secagg.messages import (
    KeyAdvertisement,
    KeyBroadcast,
    MaskedInput,
    RoundRequest,
    SetupRequest,
    SetupShares,
    SurvivorsSignature,
    UnmaskRequest,
    UnmaskShares,
)
from fedseg.common.messages import Message, NodeFailure, ReadyReply, SchemaRequest
from fedseg.common.phases.base import Phase
from fedseg.common.phases.registry import all_phases
from fedseg.common.psi.messages import PSI_REPLIES, PSI_REQUESTS
from fedseg.common.vertical.messages import VERTICAL_REPLIES, VERTICAL_REQUESTS


class WireError(ValueError):
    """A message that cannot be decoded into a known request or reply."""


# ---- secure mode: the phase requests, wrapped in secure-aggregation steps --------------


class ValidateRequest(SchemaRequest):
    """Secure mode, first exchange: validate the table; the reply says only 'ready'."""

    phase: Literal["validate"] = "validate"


class RunEndRequest(Message):
    """After the run: a node may drop what it kept for the run (its cached table); the
    reply says only 'ready'. A node that never gets it drops the cache after a while."""

    phase: Literal["run_end"] = "run_end"


class SecureSetupRequest(Message):
    phase: Literal["secure_setup"] = "secure_setup"
    setup: SetupRequest


class SecureBroadcastRequest(Message):
    phase: Literal["secure_broadcast"] = "secure_broadcast"
    broadcast: KeyBroadcast


class SecureRoundRequest(Message):
    """A phase request whose reply goes back masked, field by field divided by `scales`."""

    phase: Literal["secure_round"] = "secure_round"
    inner: SerializeAsAny[SchemaRequest]  # any registered phase's request
    round: RoundRequest
    scales: dict[str, float]
    noise: dict[str, float | list[float]] = {}  # DP: per-node Gaussian std per field or entry

    @field_validator("inner", mode="before")
    @classmethod
    def _phase_request(cls, value: Any) -> Any:
        return _adapters(all_phases())[0].validate_python(value)


class SecureUnmaskRequest(Message):
    phase: Literal["secure_unmask"] = "secure_unmask"
    unmask: UnmaskRequest


class SecureCheckRequest(Message):
    """Only in a round with dropouts, before unmasking: sign this survivor list."""

    phase: Literal["secure_check"] = "secure_check"
    unmask: UnmaskRequest


class SecureKeysReply(Message):
    phase: Literal["secure_keys"] = "secure_keys"
    keys: KeyAdvertisement


class SecureSharesReply(Message):
    phase: Literal["secure_shares"] = "secure_shares"
    shares: SetupShares


class SecureMaskedReply(Message):
    phase: Literal["secure_masked"] = "secure_masked"
    masked: MaskedInput


class SecureUnmaskReply(Message):
    phase: Literal["secure_unmasked"] = "secure_unmasked"
    shares: UnmaskShares


class SecureCheckReply(Message):
    phase: Literal["secure_signed"] = "secure_signed"
    signature: SurvivorsSignature


_SECURE_REQUESTS = (ValidateRequest, SecureSetupRequest, SecureBroadcastRequest, SecureRoundRequest,
                    SecureCheckRequest, SecureUnmaskRequest, RunEndRequest) + PSI_REQUESTS + VERTICAL_REQUESTS
_OTHER_REPLIES = (NodeFailure, ReadyReply, SecureKeysReply, SecureSharesReply, SecureMaskedReply,
                  SecureCheckReply, SecureUnmaskReply) + PSI_REPLIES + VERTICAL_REPLIES


def _union(members: tuple[type, ...]) -> Any:
    return Annotated[Union[members], Field(discriminator="phase")]  # type: ignore[valid-type]


Request = _union(tuple(p.request for p in all_phases()) + _SECURE_REQUESTS)
Reply = _union(tuple(p.reply for p in all_phases()) + _OTHER_REPLIES)


@functools.lru_cache(maxsize=8)
def _adapters(registered: tuple[Phase, ...]) -> tuple[TypeAdapter, TypeAdapter, TypeAdapter]:
    """Phase requests, all requests, all replies: rebuilt when a phase is registered."""
    requests = tuple(p.request for p in registered)
    return (TypeAdapter(_union(requests)), TypeAdapter(_union(requests + _SECURE_REQUESTS)),
            TypeAdapter(_union(tuple(p.reply for p in registered) + _OTHER_REPLIES)))


def encode(message: Message) -> bytes:
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
    return _decode(_adapters(all_phases())[1], payload, "request")


def decode_reply(payload: bytes) -> Reply:
    """Parse a reply, failing with `WireError` on anything malformed."""
    return _decode(_adapters(all_phases())[2], payload, "reply")
