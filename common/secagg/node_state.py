"""What a node keeps between secure-aggregation messages (holds its private keys)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from fedseg.common.secagg import shamir
from fedseg.common.secagg.messages import KEY_BYTES, NodeId
from fedseg.common.secagg.peer_bytes import PeerBytes


class ClientState(BaseModel):
    """Everything a node keeps between messages (JSON-serialisable; holds private keys).

    `round` is the round the node is ready for (phase "ready") or has masked in
    (phase "masked"); `escrow_key` is s_{u,round} and `seed` is b_{u,round};
    `key_shares[v]` / `seed_shares[v]` are this node's shares of s_{v,round} /
    b_{v,round}; `enc_keys[v]` (share encryption) and `mask_roots[v]` (R_uv) are derived
    from X25519(c_u, C_v) once per run; `identity_keys[v]` is v's Ed25519 identity key
    (from the roster, checked at set-up); `excluded` the nodes declared dropped, who may
    never take part again; `cohort` the survivors of the first released round (the run's
    cohort: it only shrinks, and only under DP); `noised` whether the current round
    carries DP noise; `signed` the survivor list this node signed in this round.
    With a sparse neighbour graph (`graph`; `graph_threshold` t_k > 0, else the complete
    graph): `neighbours` whom this node masks with, `holders` who hold its shares (itself
    included), `owner_holders[v]` the holders of each node v whose shares it holds. The per-peer values are packed (`PeerBytes`): the state is
    reloaded on every message, and one blob per field parses much faster than a dict.
    """

    model_config = ConfigDict(extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    node_id: NodeId
    phase: Literal["new", "advertised", "ready", "masked", "signed", "excluded"] = "new"
    run_id: str = ""
    threshold: int = 0
    frac_bits: int = 0
    roster: tuple[int, ...] = ()
    round: int = 0
    private_key: bytes = b""
    enc_keys: PeerBytes = PeerBytes(width=KEY_BYTES)
    mask_roots: PeerBytes = PeerBytes(width=KEY_BYTES)
    identity_keys: PeerBytes = PeerBytes(width=KEY_BYTES)
    cohort: tuple[int, ...] = ()
    noised: bool = False
    signed: tuple[int, ...] = ()
    active: tuple[int, ...] = ()
    excluded: tuple[int, ...] = ()
    escrow_key: bytes = b""
    key_shares: PeerBytes = PeerBytes(width=shamir.PACKED_SHARE_BYTES)
    seed: bytes = b""
    seed_shares: PeerBytes = PeerBytes(width=shamir.PACKED_SHARE_BYTES)
    graph_threshold: int = 0
    neighbours: tuple[int, ...] = ()
    holders: tuple[int, ...] = ()
    owner_holders: dict[NodeId, tuple[int, ...]] = {}

    @model_validator(mode="after")
    def _check(self) -> ClientState:
        widths = {"enc_keys": KEY_BYTES, "mask_roots": KEY_BYTES, "identity_keys": KEY_BYTES}
        widths |= {"key_shares": shamir.PACKED_SHARE_BYTES, "seed_shares": shamir.PACKED_SHARE_BYTES}
        for name, width in widths.items():
            if getattr(self, name).width != width:
                raise ValueError(f"{name} must hold {width}-byte values")
        if self.enc_keys.ids != self.mask_roots.ids:
            raise ValueError("enc_keys and mask_roots must cover the same peers")
        return self
