"""The protocol's key derivations: info encoding, HKDF, the run keys of a pair, and per
round the pair keys, self-mask keys, escrow pads and commitments.

The byte encoding is specified in PRIVACY.md ("Secure aggregation", "Encoding") and
pinned by tests/vectors/secagg_kat.json: a change here that alters any output makes old
and new nodes incompatible and must change `PROTOCOL`.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Iterable, Mapping

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from fedseg.common.secagg.messages import KEY_BYTES, SecAggError

PROTOCOL = b"fedseg-secagg/2"
TagOrder = list[tuple[str, int]]

# ------------------------------------------------------------------ encoding and HKDF


def encode_field(part: str | int | bytes) -> bytes:
    """One length-prefixed field of `encode_info`: ints as 8 big-endian bytes, str as UTF-8."""
    if type(part) is int:
        raw = part.to_bytes(8, "big")
    elif type(part) is str:
        raw = part.encode()
    else:
        raw = bytes(part)
    return len(raw).to_bytes(4, "big") + raw


def encode_info(*parts: str | int | bytes) -> bytes:
    """Unambiguous HKDF info / AEAD associated data: length-prefixed fields.

    `encode_info(a, b) + encode_field(c) == encode_info(a, b, c)`, so callers extend a
    fixed prefix."""
    return PROTOCOL + b"".join([encode_field(p) for p in parts])


def int_fields(values: Collection[int]) -> list[bytes]:
    """`encode_field(v)` for many ints at once (8-byte values with their 4-byte length)."""
    return [b"\x00\x00\x00\x08" + v.to_bytes(8, "big") for v in values]


_ZERO_SALT = bytes(32)


def hkdf(secret: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) with no salt and a 32-byte output: Extract, then one
    Expand block; built on the standard library's one-shot HMAC for speed."""
    prk = hmac.digest(_ZERO_SALT, secret, "sha256")
    return hmac.digest(prk, info + b"\x01", "sha256")


def expand_many(keys: Iterable[bytes], info: bytes) -> list[bytes]:
    """HKDF-Expand-SHA256 (RFC 5869, section 2.3) to 32 bytes of each key under one info:
    a PRF keyed by a uniformly random 32-byte key (a seed drawn from the rng or an HKDF
    output), so the Extract step, meant for non-uniform inputs such as X25519 outputs,
    is not needed."""
    block = info + b"\x01"
    return [hmac.digest(key, block, "sha256") for key in keys]


def expand(key: bytes, info: bytes) -> bytes:
    """HKDF-Expand-SHA256 of one key, see `expand_many`."""
    return expand_many([key], info)[0]


# ------------------------------------------------------------------ run keys of a pair


def public_key_of(private_key: bytes) -> bytes:
    """C_u, the X25519 public key of the private key c_u."""
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()


def agree(private_key: bytes | X25519PrivateKey, public_key: bytes) -> bytes:
    """z_uv = X25519(c_u, C_v); a low-order public key is a protocol error."""
    if isinstance(private_key, bytes):
        private_key = X25519PrivateKey.from_private_bytes(private_key)
    try:
        return private_key.exchange(X25519PublicKey.from_public_bytes(public_key))
    except ValueError as exc:  # low-order point: no usable shared secret
        raise SecAggError("invalid X25519 public key") from exc


def pair_secrets(
    private_key: bytes | X25519PrivateKey, public_key: bytes, *, run_id: str
) -> tuple[bytes, bytes]:
    """(K_uv, R_uv): the pair's share-encryption key HKDF(z_uv, "enc" | run_id) and mask
    root HKDF(z_uv, "mask-root" | run_id), from the run's one agreement z_uv."""
    secret = agree(private_key, public_key)
    return hkdf(secret, encode_info("enc", run_id)), hkdf(secret, encode_info("mask-root", run_id))


# ------------------------------------------------------------------ round keys and pads


def tag_layout(tags: Mapping[str, int]) -> tuple[TagOrder, int, bytes]:
    """Tags in a canonical (sorted) order, the total length, and the layout as HKDF info.

    One round masks all its tagged vectors with one keystream per key, read in this
    order: one key derivation and one cipher per peer and round, whatever the tags.
    """
    order = sorted(tags.items())
    return order, sum(n for _, n in order), encode_info(*[f"{t}={n}" for t, n in order])


def pair_keys(roots: Iterable[bytes], *, run_id: str, round: int, layout: bytes) -> list[bytes]:
    """k_{uv,r} = HKDF-Expand(R_uv, "pair" | run_id | r | layout) for each root R_uv.

    Keys of different rounds are independent (HKDF is a PRF), so revealing one says
    nothing about the others or about R_uv."""
    return expand_many(roots, encode_info("pair", run_id, round, layout))


def pair_key(root: bytes, *, run_id: str, round: int, tags: Mapping[str, int]) -> bytes:
    """k_{uv,r} of one pair for a round that masks `tags` (tag -> length)."""
    return pair_keys([root], run_id=run_id, round=round, layout=tag_layout(tags)[2])[0]


def self_mask_keys(seeds: Iterable[bytes], *, run_id: str, round: int, layout: bytes) -> list[bytes]:
    """HKDF-Expand(b_{u,r}, "self" | run_id | r | layout) for each seed: the keys of the
    self-mask keystreams."""
    return expand_many(seeds, encode_info("self", run_id, round, layout))


def escrow_pads(
    escrow_key: bytes, *, run_id: str, round: int, sender: int, recipients: Collection[int]
) -> list[bytes]:
    """e_{v->u,r} = HKDF-Expand(s_{v,r}, "pad" | run_id | r | v | u) for every recipient u,
    in order: the one-time pad that v sends u (encrypted) and u puts over its escrowed
    pair key k_{uv,r}."""
    prefix = encode_info("pad", run_id, round, sender)
    return [hmac.digest(escrow_key, prefix + f + b"\x01", "sha256") for f in int_fields(recipients)]


def escrow_pad(escrow_key: bytes, *, run_id: str, round: int, sender: int, recipient: int) -> bytes:
    """e_{sender->recipient,r}, see `escrow_pads`."""
    return escrow_pads(escrow_key, run_id=run_id, round=round, sender=sender, recipients=[recipient])[0]


def escrow_commitment(escrow_key: bytes, *, run_id: str, round: int, node_id: int) -> bytes:
    """HKDF-Expand(s_{v,r}, "commit" | ...): lets the server check a reconstructed s_{v,r}."""
    return expand(escrow_key, encode_info("commit", run_id, round, node_id))


def xor_keys(a: bytes, b: bytes) -> list[bytes]:
    """The 32-byte keys of `a XOR b`, two equally long blobs of packed keys (escrows, pads)."""
    blob = (np.frombuffer(a, dtype=np.uint8) ^ np.frombuffer(b, dtype=np.uint8)).tobytes()
    return [blob[i : i + KEY_BYTES] for i in range(0, len(blob), KEY_BYTES)]
