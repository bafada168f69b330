"""The pairwise channel of PSI through a relaying server: per-session X25519 keys
signed under the nodes' roster identities, and ChaCha20-Poly1305 sealing of every
relayed point list under the pair's key.

The server carries every message, so it could otherwise swap a node's key and play the
peer (read the blinded ids, or answer with its own). Each key is signed together with
the session and the node ids announced (`statement`); a node checks every signature
against its own pinned roster (`common.secagg.identity`), so a swapped key is refused.
The associated data binds each sealed list to session, step, sender and recipient, so
the server can neither read nor re-route nor replay one into another step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from fedseg.common.secagg.derivation import encode_field, hkdf, int_fields
from fedseg.common.secagg.identity import Roster, verify, verify_broadcast_identities
from fedseg.common.secagg.messages import NONCE_BYTES, SecAggRefused

PSI_PROTOCOL = b"fedseg-psi/1"


class ChannelError(ValueError):
    """A sealed list that does not authenticate (tampered, re-routed or replayed)."""


def statement(*, session: str, node_id: int, identity: str, public_key: bytes, node_ids: Sequence[int]) -> bytes:
    """What a node signs with its PSI channel key: the key, who it is, and the session
    and node ids it was told, so peers notice a server that told them something else."""
    head = PSI_PROTOCOL + b"/key" + b"".join(encode_field(p) for p in (session, node_id, identity, public_key))
    return head + b"".join(int_fields(sorted(node_ids)))


def public_key_of(private_key: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()


def verified_peers(
    *, session: str, node_ids: Sequence[int], own: tuple[int, str, bytes], roster: Roster,
    public_keys: Mapping[int, bytes], identities: Mapping[int, str], signatures: Mapping[int, bytes],
) -> dict[int, bytes]:
    """node id -> channel public key of every peer, after checking that the adverts are
    those of the announced nodes, each identity on the roster and each key signed by it,
    and that this node's own key is unchanged; refuses (`SecAggRefused`) otherwise."""
    me, name, mine = own
    if not set(public_keys) == set(identities) == set(signatures) == set(node_ids):
        raise SecAggRefused("unknown-key", "the adverts do not cover exactly the announced nodes")
    identity_keys = verify_broadcast_identities(identities, roster, (me, name))
    if public_keys[me] != mine:
        raise SecAggRefused("unknown-key", "the server changed this node's own channel key")
    for nid, key in public_keys.items():
        said = statement(session=session, node_id=nid, identity=identities[nid], public_key=key, node_ids=node_ids)
        if not verify(identity_keys[nid], signatures[nid], said):
            raise SecAggRefused("bad-signature", f"node {nid}'s channel key is not signed by its identity")
    return {nid: key for nid, key in public_keys.items() if nid != me}


def pair_key(private_key: bytes, peer_public: bytes, *, session: str, a: int, b: int) -> bytes:
    """The pair's sealing key: HKDF of their X25519 secret, bound to session and pair."""
    secret = X25519PrivateKey.from_private_bytes(private_key).exchange(X25519PublicKey.from_public_bytes(peer_public))
    low, high = sorted((a, b))
    return hkdf(secret, PSI_PROTOCOL + b"/pair" + encode_field(session) + encode_field(low) + encode_field(high))


def _aad(session: str, step: str, sender: int, recipient: int) -> bytes:
    return PSI_PROTOCOL + b"".join(encode_field(p) for p in (session, step, sender, recipient))


def seal(key: bytes, data: bytes, *, session: str, step: str, sender: int, recipient: int) -> bytes:
    """nonce | ChaCha20-Poly1305(data), bound to session, step, sender and recipient."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, data, _aad(session, step, sender, recipient))


def open_sealed(key: bytes, blob: bytes, *, session: str, step: str, sender: int, recipient: int) -> bytes:
    try:
        return ChaCha20Poly1305(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                             _aad(session, step, sender, recipient))
    except (InvalidTag, ValueError) as exc:
        raise ChannelError(f"a sealed list from node {sender} does not authenticate") from exc
