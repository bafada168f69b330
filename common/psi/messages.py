"""The PSI messages the server relays, four exchanges before any phase (PRIVACY.md,
"Customers shared between units"). Everything a node sends in them is either its
signed channel key or a list of points sealed for one peer: the server relays bytes
it cannot open."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from fedseg.common.messages import SchemaRequest, Message
from fedseg.common.secagg.messages import IdentityName, NodeId, PublicKey, Signature

Session = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{8,96}$")]
Sealed = dict[NodeId, bytes]  # sender (in requests) or recipient (in replies) -> nonce | ciphertext
_BYTES = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")


class PsiKeysRequest(SchemaRequest):
    """Exchange 1: draw this session's channel key and blinding scalar; sign the key."""

    model_config = _BYTES
    phase: Literal["psi_keys"] = "psi_keys"
    session: Session
    node_ids: tuple[NodeId, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _distinct(self) -> PsiKeysRequest:
        if len(set(self.node_ids)) != len(self.node_ids):
            raise ValueError("node ids must be distinct")
        return self


class PsiKeyReply(Message):
    model_config = _BYTES
    phase: Literal["psi_key"] = "psi_key"
    node_id: NodeId
    public_key: PublicKey
    identity: IdentityName
    signature: Signature


class PsiBlindRequest(SchemaRequest):
    """Exchange 2: every node's signed channel key; seal H(ids)^a to each peer."""

    model_config = _BYTES
    phase: Literal["psi_blind"] = "psi_blind"
    session: Session
    public_keys: dict[NodeId, PublicKey]
    identities: dict[NodeId, IdentityName]
    signatures: dict[NodeId, Signature]


class _SealedListsRequest(SchemaRequest):
    """One sealed list from each peer (exchanges 3 and 4)."""

    model_config = _BYTES
    session: Session
    sealed: Sealed


class PsiCrossRequest(_SealedListsRequest):
    """Exchange 3: each peer's sealed H(y)^b; blind them again, seal them back."""

    phase: Literal["psi_cross"] = "psi_cross"


class PsiMatchRequest(_SealedListsRequest):
    """Exchange 4: this node's own points blinded by each peer; find the shared ids,
    keep the rows this node owns."""

    phase: Literal["psi_match"] = "psi_match"


class PsiSealedReply(Message):
    """Exchanges 2 and 3: one sealed point list per peer."""

    model_config = _BYTES
    phase: Literal["psi_sealed"] = "psi_sealed"
    sealed: Sealed


PSI_REQUESTS = (PsiKeysRequest, PsiBlindRequest, PsiCrossRequest, PsiMatchRequest)
PSI_REPLIES = (PsiKeyReply, PsiSealedReply)
