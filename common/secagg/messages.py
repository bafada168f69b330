"""The secure-aggregation messages, their size limits, and the protocol's error.

One pydantic model per message of PRIVACY.md's message flow; every message is
validated on receipt, so the node and server code trusts the shapes it gets.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from fedseg.common.secagg import fixed_point, shamir

KEY_BYTES = 32
SIGNATURE_BYTES = 64  # Ed25519
NONCE_BYTES = 12
SECRETS_BYTES = 2 * shamir.PACKED_SHARE_BYTES + KEY_BYTES  # share of s | share of b | pad
CIPHERTEXT_BYTES = NONCE_BYTES + SECRETS_BYTES + 16  # nonce | secrets | Poly1305 tag
MAX_VECTOR_LENGTH = 1 << 26


class SecAggError(ValueError):
    """A secure-aggregation message or step that violates the protocol."""


RefusalCode = Literal[
    "no-identity", "bad-signature", "unknown-key", "threshold-refused", "cohort-too-small",
    "cohort-changed", "inconsistent-survivors",
]


class SecAggRefused(SecAggError):
    """The node refuses a step that would break its own guarantees (PRIVACY.md, "Threat
    model: a deviating server"); `code` goes to the server, `detail` stays in the node's log."""

    CODES: frozenset[str] = frozenset(RefusalCode.__args__)  # type: ignore[attr-defined]

    def __init__(self, code: str, detail: str) -> None:
        if code not in self.CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


def bytes_to_u64(data: bytes) -> NDArray[np.uint64]:
    """A wire vector (little-endian uint64 words) as a uint64 array, without a copy."""
    return np.frombuffer(data, dtype="<u8").astype(np.uint64, copy=False)


NodeId = Annotated[int, Field(ge=0, lt=2**64)]
Tag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:/-]{1,64}$")]
PublicKey = Annotated[bytes, Field(min_length=KEY_BYTES, max_length=KEY_BYTES)]
Signature = Annotated[bytes, Field(min_length=SIGNATURE_BYTES, max_length=SIGNATURE_BYTES)]
IdentityName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Key = Annotated[bytes, Field(min_length=KEY_BYTES, max_length=KEY_BYTES)]
Signature = Annotated[bytes, Field(min_length=SIGNATURE_BYTES, max_length=SIGNATURE_BYTES)]
IdentityName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Ciphertext = Annotated[bytes, Field(min_length=CIPHERTEXT_BYTES, max_length=CIPHERTEXT_BYTES)]
ShareValue = Annotated[
    bytes, Field(min_length=shamir.PACKED_SHARE_BYTES, max_length=shamir.PACKED_SHARE_BYTES)
]
RoundNumber = Annotated[int, Field(ge=1)]


class Message(BaseModel):
    """Base of every message: immutable, no unknown fields, bytes as base64 in JSON."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_bytes="base64", val_json_bytes="base64"
    )

    run_id: str = Field(min_length=1, max_length=128)


class SetupRequest(Message):
    """Set-up exchange 1, server -> every node: roster and run parameters.

    A node's Shamir evaluation point is its 1-based position in `node_ids`.
    """

    node_ids: tuple[NodeId, ...] = Field(min_length=2)
    threshold: int = Field(ge=2)
    frac_bits: int = Field(default=24, ge=0, le=fixed_point.MAX_FRAC_BITS)

    @model_validator(mode="after")
    def _check(self) -> SetupRequest:
        if len(set(self.node_ids)) != len(self.node_ids):
            raise ValueError("node ids must be distinct")
        if self.threshold > len(self.node_ids):
            raise ValueError(f"threshold {self.threshold} exceeds {len(self.node_ids)} nodes")
        return self


class KeyAdvertisement(Message):
    """Set-up reply 1, node -> server: C_u, the node's X25519 public key for the run,
    signed under its roster identity together with the set-up it answers
    (`identity.key_statement`)."""

    node_id: NodeId
    public_key: PublicKey
    identity: IdentityName
    signature: Signature


class KeyBroadcast(Message):
    """Set-up exchange 2, server -> every node: every advertised node's public key, its
    roster identity and its signature, each keyed by node id."""

    public_keys: dict[NodeId, PublicKey]
    identities: dict[NodeId, IdentityName]
    signatures: dict[NodeId, Signature]

    @model_validator(mode="after")
    def _check(self) -> KeyBroadcast:
        if not set(self.public_keys) == set(self.identities) == set(self.signatures):
            raise ValueError("keys, identities and signatures must cover the same nodes")
        return self


class SetupShares(Message):
    """Set-up reply 2, node u -> server: the commitment to s_{u,1} and, per recipient v,
    Enc_uv(share_v(s_{u,1}) | share_v(b_{u,1}) | e_{u->v,1}), each nonce | ciphertext."""

    node_id: NodeId
    commitment: Key
    secrets: dict[NodeId, Ciphertext]


class RoundRequest(Message):
    """Round exchange 1, server -> node u.

    `vectors` maps each tag to its length; `active` is A_r; `secrets[v]` is v's
    ciphertext for u, Enc_vu(share_u(s_{v,r}) | share_u(b_{v,r}) | e_{v->u,r}), for every
    other v in A_r.
    """

    round: RoundNumber
    vectors: dict[Tag, Annotated[int, Field(ge=1, le=MAX_VECTOR_LENGTH)]] = Field(min_length=1)
    active: tuple[NodeId, ...] = Field(min_length=2)
    secrets: dict[NodeId, Ciphertext]


class MaskedInput(Message):
    """Round reply 1, node u -> server: per tag, the masked vector as little-endian
    uint64; per other active node v, the escrowed pair key k_{uv,r} XOR e_{v->u,r}."""

    round: RoundNumber
    node_id: NodeId
    vectors: dict[Tag, bytes] = Field(min_length=1)
    escrows: dict[NodeId, Key]

    @model_validator(mode="after")
    def _check(self) -> MaskedInput:
        for tag, data in self.vectors.items():
            if not data or len(data) % 8:
                raise ValueError(f"vector {tag!r}: {len(data)} bytes is not a uint64 vector")
        return self

    def arrays(self) -> dict[str, NDArray[np.uint64]]:
        """The masked vectors as uint64 arrays."""
        return {tag: bytes_to_u64(data) for tag, data in self.vectors.items()}


class UnmaskRequest(Message):
    """Round exchange 2, server -> every survivor: who survived and who dropped.

    With dropouts, `signatures` holds the survivors' signatures over this very list
    (`SurvivorsSignature`, one extra exchange); nobody reveals a share for a smaller
    list without at least t of them."""

    round: RoundNumber
    survivors: tuple[NodeId, ...]
    dropped: tuple[NodeId, ...]
    signatures: dict[NodeId, Signature] = {}


class SurvivorsSignature(Message):
    """Reply to an unsigned unmask request with dropouts, node u -> server: u's signature
    over (run, round, survivors, dropped) (`identity.survivors_statement`)."""

    round: RoundNumber
    node_id: NodeId
    signature: Signature


class UnmaskShares(Message):
    """Round reply 2, node u -> server.

    Revealed: `seed_shares[v]`, u's share of b_{v,r} (v survived), and `key_shares[v]`,
    u's share of s_{v,r} (v dropped). For the next round: `next_commitment` to s_{u,r+1}
    and, for every other survivor w, `next_secrets[w]` =
    Enc_uw(share_w(s_{u,r+1}) | share_w(b_{u,r+1}) | e_{u->w,r+1}).
    """

    round: RoundNumber
    node_id: NodeId
    seed_shares: dict[NodeId, ShareValue]
    key_shares: dict[NodeId, ShareValue]
    next_commitment: Key
    next_secrets: dict[NodeId, Ciphertext]
