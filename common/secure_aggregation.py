"""Secure aggregation: the server learns the sum of the nodes' vectors and nothing else.

Protocol
--------
This is the masking protocol of Bonawitz et al. 2017 ("Practical Secure Aggregation
for Privacy-Preserving Machine Learning", CCS 2017) in its honest-but-curious form,
run for many aggregation rounds after a single set-up per run, in the multi-round
setting of Bell et al. 2020 (we keep Bonawitz et al.'s complete graph: every pair of
nodes masks, O(n L) work per node). It differs from Bonawitz et al. in how a dropped
node's pairwise masks are recovered: instead of Shamir-sharing a fresh key-agreement
key every round (one X25519 agreement per peer and round), pair keys are derived per
round from one agreement per run, and every node escrows its pair keys to the server
under pads that only a dropped node's Shamir-shared round key opens. Values are
fixed-point numbers in Z/2^64 (`common.fixed_point`); 32-byte secrets are
Shamir-shared digit by digit in base 2^31 - 1 over GF(2^31 - 1) (`common.shamir.
split_secret`: independent polynomials per digit, one numpy matrix product).

Each node u holds one X25519 key pair (c_u, C_u) for the run. At set-up it computes
z_uv = X25519(c_u, C_v) once for every peer v (the only key agreements of the run) and
keeps, in its private state, K_uv = HKDF-SHA256(z_uv, "enc" | run_id), the
ChaCha20-Poly1305 key of everything it sends v through the server (associated data:
run, round, sender, recipient, so the server can neither read nor re-route it), and
the pair's mask root R_uv = HKDF-SHA256(z_uv, "mask-root" | run_id). Both ends derive
the same values; they never leave the nodes.

For round r:
* pair key k_{uv,r} = HKDF-Expand(R_uv, "pair" | run_id | r | layout), where layout
  lists the round's tags and lengths; the pairwise mask is the AES-256-CTR keystream
  under k_{uv,r}, read as uint64, one stream per pair and round covering all tags
  (in sorted tag order);
* two fresh 32-byte secrets per node: the self-mask seed b_{u,r} (self-mask: the
  keystream under HKDF-Expand(b_{u,r}, "self" | run_id | r | layout)) and the escrow
  key s_{u,r}, which yields the pads e_{u->v,r} = HKDF-Expand(s_{u,r}, "pad" | run_id |
  r | u | v) and a public commitment HKDF-Expand(s_{u,r}, "commit" | run_id | r | u);
  both secrets are Shamir-shared with threshold t among the roster.

Node u sends

    y_u = x_u + PRG(b_{u,r}) + sum_{v > u} PRG(k_{uv,r}) - sum_{v < u} PRG(k_{uv,r})   (mod 2^64)

and, for every other active v, the escrow k_{uv,r} XOR e_{v->u,r}. The pairwise masks
cancel in the sum over all nodes; the server removes what does not cancel once it
knows who dropped.

Message flow
------------
Set-up, once per run (2 exchanges):

1. server -> all: `SetupRequest` (run id, roster, threshold t, fractional bits);
   node -> server: `KeyAdvertisement` (C_u).
2. server -> all: `KeyBroadcast` (every advertised key); node -> server:
   `SetupShares`: the commitment to s_{u,1} and, for every other node v,
   Enc_{K_uv}(share_v(s_{u,1}) | share_v(b_{u,1}) | e_{u->v,1}).

Round r (2 exchanges, any number of tagged vectors of any lengths):

1. server -> node u: `RoundRequest` (r, tag -> length, the active set A_r, and the
   ciphertexts addressed to u); node -> server: `MaskedInput`: y_u per tag and the
   escrows k_{uv,r} XOR e_{v->u,r} for every other v in A_r.
2. server -> survivors: `UnmaskRequest` (survivors S_r, whose y arrived, and dropped
   D_r = A_r minus S_r); node -> server: `UnmaskShares`: its shares of b_{v,r} for v in
   S_r and of s_{v,r} for v in D_r, plus, for the next round, the commitment to
   s_{u,r+1} and the ciphertexts of round r+1 for every other survivor, so that round
   r+1 needs no extra exchange.

The server reconstructs b_{v,r} (v in S_r) and s_{v,r} (v in D_r) from any t answers,
checks each s_{v,r} against its commitment, opens, for every dropped v and survivor u,
the escrow of u with e_{v->u,r} to get k_{uv,r}, and computes sum_{u in S_r} x_u =
sum y_u - sum PRG(b_{u,r}) + sum_{v in D_r} (the pairwise masks v would have added
towards S_r). The nodes that answered form A_{r+1}; any other node has left the run
for good.

Per node and round this costs one Shamir split of both secrets (one matrix product),
n - 1 authenticated encryptions and n - 1 decryptions, about 2(n - 1) HMAC-SHA256 and
n - 1 AES-CTR keystreams of the round's length; no public-key operation. The n - 1
X25519 agreements happen once per run.

Guarantees and why
------------------
* The server sees only the sum over S_r: each y_u is masked by PRG(b_{u,r}) and by the
  pairwise masks towards every other active node; only the sum unmasks. The escrows
  of u towards a survivor w are one-time padded with e_{w->u,r}, a PRF output under
  s_{w,r}, of which the server never receives a share from an honest node (they
  reveal only b-shares for survivors): they hide k_{uw,r}.
* A late message reveals nothing. If v is declared dropped in round r, the honest nodes
  reveal shares of s_{v,r} but never of b_{v,r}: a node answers for each v with exactly
  one kind of share and refuses a request that lists itself as dropped. With s_{v,r}
  the server opens the survivors' escrows towards v and can strip v's pairwise masks
  from a late y_v, but y_v stays masked by PRG(b_{v,r}), of whose seed it holds fewer
  than t shares (none from honest nodes) (`tests/test_secure_aggregation.py::
  test_late_masked_input_reveals_nothing`, `test_revealed_pads_open_only_the_escrows_
  of_the_dropped_node`).
* A node that survives masking but goes silent before unmasking is still summed: its
  escrows arrived with y_u, so its pair keys with the dropped nodes are recovered from
  the dropped nodes' escrow keys (any t other answers), exactly the dropout tolerance
  of Bonawitz et al. This is why the pair keys are escrowed rather than revealed by the
  survivors at unmasking (only u and v know k_{uv,r}; if both are gone, a direct reveal
  would be impossible).
* Earlier and later rounds stay private when a node drops. When v drops in round r the
  server learns s_{v,r} and k_{uv,r} for the survivors u, nothing else: s_{v,r} is
  drawn fresh for round r, and the pair keys of other rounds, HKDF-Expand(R_uv, ... r'
  ...), are PRF outputs under the root R_uv, which never leaves the nodes, so k_{uv,r}
  says nothing about k_{uv,r'} (r' != r); the escrows of other rounds are padded under
  other rounds' escrow keys. The inputs of v's earlier rounds, whose self-masks
  b_{v,r'} the server rebuilt, therefore keep their pairwise masks
  (`test_later_dropout_keeps_earlier_inputs_private`, `test_per_round_keys_are_
  independent`). Per-round freshness comes from the per-round derivation and the
  per-round escrow key, not from a fresh key agreement.
* Dropped nodes stay out for the rest of the run. Clients enforce it: A_{r+1} must be a
  subset of S_r, the request must carry exactly one ciphertext per active peer, and
  declared-dropped nodes are remembered in the client state.
* Collusion: the server together with fewer than t nodes holds fewer than t shares of
  any honest node's b or s, hence (Shamir) nothing about them; the colluders know the
  roots, pair keys and pads of their own pairs only, while the pair keys between two
  honest nodes derive from their X25519 shared secret. They learn only the sum of the
  other survivors' inputs. Dropouts are tolerated while at least t nodes survive; with
  fewer, the round fails (`SecAggError`) before any share is revealed (unmask_request)
  or with fewer than t shares revealed (finish_round).
* Replays and mix-ups: every message carries the run id and round; both sides reject
  other runs, other rounds, unknown or duplicate nodes, vectors of the wrong tags or
  lengths and escrows for the wrong nodes; a ciphertext opens only for its sender,
  recipient, run and round. A client masks at most once per round.
* Overflow never wraps silently: each node checks its own values against the bound for
  the roster size, and the server rejects a sum outside that range on decode.

Threat model and limits
-----------------------
The server (and the relay) is honest-but-curious: it follows the protocol but may
inspect everything it sees. A malicious server could send different survivor lists to
different nodes and obtain both kinds of shares of one node; Bonawitz et al.'s
malicious-server variant (signed consistency checks, one more exchange per round) is
not implemented. Nodes are authenticated by the transport (Flower SuperNode
authentication over TLS); public keys are not signed. Inputs are not validated beyond
the fixed-point range: a node can bias the sum (no input-integrity proof), and a node
can send a wrong escrow, which corrupts the sum (decode then usually fails) but
reveals nothing. A threshold t > n/2 is recommended; t = n tolerates no dropout. The
client state (`SecAggClient.to_bytes`) holds private keys and the pair roots and must
stay on the node. The neighbour graph is complete; a sparse graph (Bell et al. 2020)
would cut the per-node work from n to O(log n) peers but needs its own dropout and
collusion argument and is not implemented.

References
----------
K. Bonawitz, V. Ivanov, B. Kreuter, A. Marcedone, H. B. McMahan, S. Patel, D. Ramage,
A. Segal, K. Seth. Practical Secure Aggregation for Privacy-Preserving Machine
Learning. ACM CCS 2017.
J. H. Bell, K. A. Bonawitz, A. Gascon, T. Lepoint, M. Raykova. Secure Single-Server
Aggregation with (Poly)Logarithmic Overhead. ACM CCS 2020.
A. Shamir. How to share a secret. Communications of the ACM 22(11), 1979.
"""

from __future__ import annotations

import bisect
import functools
import hmac
import os
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from fedseg.common import fixed_point, shamir
from fedseg.common.peer_bytes import PeerBytes

Rng = Callable[[int], bytes]
"""Source of random bytes, `os.urandom` by default; inject a seeded one in tests."""

KEY_BYTES = 32
NONCE_BYTES = 12
SECRETS_BYTES = 2 * shamir.PACKED_SHARE_BYTES + KEY_BYTES  # share of s | share of b | pad
CIPHERTEXT_BYTES = NONCE_BYTES + SECRETS_BYTES + 16  # nonce | secrets | Poly1305 tag
MAX_VECTOR_LENGTH = 1 << 26
_PROTOCOL = b"fedseg-secagg/2"


class SecAggError(ValueError):
    """A secure-aggregation message or step that violates the protocol."""


# --------------------------------------------------------------------------- messages

NodeId = Annotated[int, Field(ge=0, lt=2**64)]
Tag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:/-]{1,64}$")]
PublicKey = Annotated[bytes, Field(min_length=KEY_BYTES, max_length=KEY_BYTES)]
Key = Annotated[bytes, Field(min_length=KEY_BYTES, max_length=KEY_BYTES)]
Ciphertext = Annotated[bytes, Field(min_length=CIPHERTEXT_BYTES, max_length=CIPHERTEXT_BYTES)]
ShareValue = Annotated[
    bytes, Field(min_length=shamir.PACKED_SHARE_BYTES, max_length=shamir.PACKED_SHARE_BYTES)
]
RoundNumber = Annotated[int, Field(ge=1)]


class _Message(BaseModel):
    """Base of every message: immutable, no unknown fields, bytes as base64 in JSON."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_bytes="base64", val_json_bytes="base64"
    )

    run_id: str = Field(min_length=1, max_length=128)


class SetupRequest(_Message):
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


class KeyAdvertisement(_Message):
    """Set-up reply 1, node -> server: C_u, the node's X25519 public key for the run."""

    node_id: NodeId
    public_key: PublicKey


class KeyBroadcast(_Message):
    """Set-up exchange 2, server -> every node: the public key of every advertised node."""

    public_keys: dict[NodeId, PublicKey]


class SetupShares(_Message):
    """Set-up reply 2, node u -> server: the commitment to s_{u,1} and, per recipient v,
    Enc_uv(share_v(s_{u,1}) | share_v(b_{u,1}) | e_{u->v,1}), each nonce | ciphertext."""

    node_id: NodeId
    commitment: Key
    secrets: dict[NodeId, Ciphertext]


class RoundRequest(_Message):
    """Round exchange 1, server -> node u.

    `vectors` maps each tag to its length; `active` is A_r; `secrets[v]` is v's
    ciphertext for u, Enc_vu(share_u(s_{v,r}) | share_u(b_{v,r}) | e_{v->u,r}), for every
    other v in A_r.
    """

    round: RoundNumber
    vectors: dict[Tag, Annotated[int, Field(ge=1, le=MAX_VECTOR_LENGTH)]] = Field(min_length=1)
    active: tuple[NodeId, ...] = Field(min_length=2)
    secrets: dict[NodeId, Ciphertext]


class MaskedInput(_Message):
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
        return {tag: _bytes_to_u64(data) for tag, data in self.vectors.items()}


class UnmaskRequest(_Message):
    """Round exchange 2, server -> every survivor: who survived and who dropped."""

    round: RoundNumber
    survivors: tuple[NodeId, ...]
    dropped: tuple[NodeId, ...]


class UnmaskShares(_Message):
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


# ----------------------------------------------------------------------- crypto core


def _field(part: str | int | bytes) -> bytes:
    """One length-prefixed field of `_info`: ints as 8 big-endian bytes, str as UTF-8."""
    if type(part) is int:
        raw = part.to_bytes(8, "big")
    elif type(part) is str:
        raw = part.encode()
    else:
        raw = bytes(part)
    return len(raw).to_bytes(4, "big") + raw


def _info(*parts: str | int | bytes) -> bytes:
    """Unambiguous HKDF info / AEAD associated data: length-prefixed fields.

    `_info(a, b) + _field(c) == _info(a, b, c)`, so callers extend a fixed prefix."""
    return _PROTOCOL + b"".join([_field(p) for p in parts])


_ZERO_SALT = bytes(32)


def _hkdf(secret: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) with no salt and a 32-byte output: Extract, then one
    Expand block; built on the standard library's one-shot HMAC for speed."""
    prk = hmac.digest(_ZERO_SALT, secret, "sha256")
    return hmac.digest(prk, info + b"\x01", "sha256")


def _expand(key: bytes, info: bytes) -> bytes:
    """HKDF-Expand-SHA256 (RFC 5869, section 2.3) to 32 bytes: a PRF keyed by a uniformly
    random 32-byte key (a seed drawn from the rng or an HKDF output), so the Extract
    step, meant for non-uniform inputs such as X25519 outputs, is not needed."""
    return hmac.digest(key, info + b"\x01", "sha256")


def _prg(key: bytes, length: int) -> NDArray[np.uint64]:
    """`length` uint64 words of AES-256-CTR keystream (each key is used for one stream)."""
    return _bytes_to_u64(_prg_bytes(key, length))


_CTR_FROM_ZERO = modes.CTR(bytes(16))  # every key is used for one stream only


def _keystreams(keys: Sequence[bytes], n_bytes: int) -> list[bytes]:
    """`n_bytes` of AES-256-CTR keystream per key (each key is used for one stream only)."""
    zeros = bytes(n_bytes)
    return [Cipher(algorithms.AES(k), _CTR_FROM_ZERO).encryptor().update(zeros) for k in keys]


def _prg_bytes(key: bytes, length: int) -> bytes:
    """`length` uint64 words of keystream under `key`, as bytes."""
    return _keystreams([key], 8 * length)[0]


def _bytes_to_u64(data: bytes) -> NDArray[np.uint64]:
    return np.frombuffer(data, dtype="<u8").astype(np.uint64, copy=False)


def _agree(private_key: bytes | X25519PrivateKey, public_key: bytes) -> bytes:
    if isinstance(private_key, bytes):
        private_key = X25519PrivateKey.from_private_bytes(private_key)
    try:
        return private_key.exchange(X25519PublicKey.from_public_bytes(public_key))
    except ValueError as exc:  # low-order point: no usable shared secret
        raise SecAggError("invalid X25519 public key") from exc


def _public_key(private_key: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()


def _layout(tags: Mapping[str, int]) -> tuple[list[tuple[str, int]], int, bytes]:
    """Tags in a canonical (sorted) order, the total length, and the layout as HKDF info.

    One round masks all its tagged vectors with one keystream per key, read in this
    order: one key derivation and one cipher per peer and round, whatever the tags.
    """
    order = sorted(tags.items())
    return order, sum(n for _, n in order), _info(*[f"{t}={n}" for t, n in order])


def _split_tags(words: NDArray[np.uint64], order: list[tuple[str, int]]) -> dict[str, NDArray[np.uint64]]:
    out, start = {}, 0
    for tag, n in order:
        out[tag] = words[start : start + n]
        start += n
    return out


def self_masks(
    seed: bytes, *, run_id: str, round: int, tags: Mapping[str, int]
) -> dict[str, NDArray[np.uint64]]:
    """PRG(b_{u,r}) for every tag of a round: the self-mask a node adds (Bonawitz et al.
    2017), one keystream keyed by HKDF-Expand(b_{u,r}, run_id | r | layout), split by tag."""
    order, total, layout = _layout(tags)
    return _split_tags(_prg(_expand(seed, _info("self", run_id, round, layout)), total), order)


def self_mask(seed: bytes, *, run_id: str, round: int, tag: str, length: int) -> NDArray[np.uint64]:
    """The self-mask of a round that masks the single vector `tag`."""
    return self_masks(seed, run_id=run_id, round=round, tags={tag: length})[tag]


def pair_key(root: bytes, *, run_id: str, round: int, tags: Mapping[str, int]) -> bytes:
    """k_{uv,r} = HKDF-Expand(R_uv, "pair" | run_id | r | layout): the pair's key for one round,
    derived from the pair's run root R_uv; keys of different rounds are independent
    (HKDF is a PRF), so revealing one says nothing about the others or about R_uv."""
    return _expand(root, _info("pair", run_id, round, _layout(tags)[2]))


def escrow_pad(escrow_key: bytes, *, run_id: str, round: int, sender: int, recipient: int) -> bytes:
    """e_{v->u,r} = HKDF-Expand(s_{v,r}, "pad" | run_id | r | v | u): the one-time pad that v
    sends u (encrypted) and u puts over its escrowed pair key k_{uv,r}."""
    return _escrow_pad_list(escrow_key, run_id, round, sender, [recipient])[0]


def _escrow_pad_list(
    escrow_key: bytes, run_id: str, round: int, sender: int, recipients: Collection[int]
) -> list[bytes]:
    """e_{sender->u,r} for every recipient u, in order: `_expand` with the shared info
    prefix built once."""
    prefix = _info("pad", run_id, round, sender)
    return [hmac.digest(escrow_key, prefix + f + b"\x01", "sha256") for f in _int_fields(recipients)]


def _int_fields(values: Collection[int]) -> list[bytes]:
    """`_field(v)` for many ints at once (8-byte values with their 4-byte length)."""
    return [b"\x00\x00\x00\x08" + v.to_bytes(8, "big") for v in values]


def escrow_commitment(escrow_key: bytes, *, run_id: str, round: int, node_id: int) -> bytes:
    """HKDF-Expand(s_{v,r}, "commit" | ...): lets the server check a reconstructed s_{v,r}."""
    return _expand(escrow_key, _info("commit", run_id, round, node_id))


def pairwise_masks(
    pair_keys: Mapping[int, bytes], node_id: int, *, tags: Mapping[str, int]
) -> dict[str, NDArray[np.uint64]]:
    """Sum over peers v of +PRG(k_uv) for v > u and -PRG(k_uv) for v < u, per tag.

    Parameters
    ----------
    pair_keys : mapping peer id -> k_{uv,r} (32 bytes), see `pair_key`
    node_id : u
    tags : mapping tag -> vector length; one keystream per peer covers every tag in
        the canonical order of `_layout`.

    Returns
    -------
    dict tag -> ndarray of shape (length,), dtype uint64
    """
    order, total, _ = _layout(tags)
    plus = [key for v, key in pair_keys.items() if v > node_id]
    minus = [key for v, key in pair_keys.items() if v <= node_id]
    return _split_tags(_signed_stream_sum(plus, minus, total), order)


_SHORT_STREAM_WORDS = 1024  # below this, per-key numpy calls cost more than the adds
_STREAM_BATCH = 128  # keystreams per joined matrix


def _signed_stream_sum(
    plus: Sequence[bytes], minus: Sequence[bytes], length: int
) -> NDArray[np.uint64]:
    """sum PRG(k) over `plus` minus sum PRG(k) over `minus`, modulo 2^64 (uint64 sums
    wrap, as the ring requires).

    Short streams (a Lloyd round's few hundred words) are joined into one (keys,
    length) matrix and reduced by one numpy call instead of one add per key; long ones
    are added one by one, which touches memory less."""
    result = np.zeros(length, dtype=np.uint64)
    for keys, combine in ((plus, np.add), (minus, np.subtract)):
        if length <= _SHORT_STREAM_WORDS:
            for start in range(0, len(keys), _STREAM_BATCH):
                chunk = keys[start : start + _STREAM_BATCH]
                data = b"".join(_keystreams(chunk, 8 * length))
                words = np.frombuffer(data, dtype="<u8").reshape(len(chunk), length)
                combine(result, words.sum(axis=0, dtype=np.uint64), out=result)
        else:
            for k in keys:
                combine(result, np.frombuffer(_prg_bytes(k, length), dtype="<u8"), out=result)
    return result


@functools.lru_cache(maxsize=4096)
def _aead(key: bytes) -> ChaCha20Poly1305:
    """A cipher object per key, kept for the process: a long-lived simulation worker
    serves many messages of the same nodes and need not rebuild them."""
    return ChaCha20Poly1305(key)


@functools.lru_cache(maxsize=256)
def _aead_table(keys: bytes) -> tuple[ChaCha20Poly1305, ...]:
    """The ciphers of a node's packed share-encryption keys (32 bytes each), kept for the
    process: one cache look-up per message instead of one per peer."""
    return tuple(_aead(keys[i : i + KEY_BYTES]) for i in range(0, len(keys), KEY_BYTES))


# ----------------------------------------------------------------------------- client


class ClientState(BaseModel):
    """Everything a node keeps between messages (JSON-serialisable; holds private keys).

    `round` is the round the node is ready for (phase "ready") or has masked in
    (phase "masked"); `escrow_key` is s_{u,round} and `seed` is b_{u,round};
    `key_shares[v]` / `seed_shares[v]` are this node's shares of s_{v,round} /
    b_{v,round}; `enc_keys[v]` (share encryption) and `mask_roots[v]` (R_uv) are derived
    from X25519(c_u, C_v) once per run; `excluded` the nodes declared dropped, who may
    never take part again. The per-peer values are packed (`PeerBytes`): the state is
    reloaded on every message, and one blob per field parses much faster than a dict.
    """

    model_config = ConfigDict(extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    node_id: NodeId
    phase: Literal["new", "advertised", "ready", "masked", "excluded"] = "new"
    run_id: str = ""
    threshold: int = 0
    frac_bits: int = 0
    roster: tuple[int, ...] = ()
    round: int = 0
    private_key: bytes = b""
    enc_keys: PeerBytes = PeerBytes(width=KEY_BYTES)
    mask_roots: PeerBytes = PeerBytes(width=KEY_BYTES)
    active: tuple[int, ...] = ()
    excluded: tuple[int, ...] = ()
    escrow_key: bytes = b""
    key_shares: PeerBytes = PeerBytes(width=shamir.PACKED_SHARE_BYTES)
    seed: bytes = b""
    seed_shares: PeerBytes = PeerBytes(width=shamir.PACKED_SHARE_BYTES)

    @model_validator(mode="after")
    def _check(self) -> ClientState:
        widths = {"enc_keys": KEY_BYTES, "mask_roots": KEY_BYTES}
        widths |= {"key_shares": shamir.PACKED_SHARE_BYTES, "seed_shares": shamir.PACKED_SHARE_BYTES}
        for name, width in widths.items():
            if getattr(self, name).width != width:
                raise ValueError(f"{name} must hold {width}-byte values")
        if self.enc_keys.ids != self.mask_roots.ids:
            raise ValueError("enc_keys and mask_roots must cover the same peers")
        return self


class SecAggClient:
    """Node side of secure aggregation; one method per message received.

    Set-up: `advertise_keys(SetupRequest)`, `share_keys(KeyBroadcast)`. Each round:
    `mask_input(RoundRequest, vectors)`, `unmask(UnmaskRequest)`. Between messages,
    keep `to_bytes()` (e.g. in Flower's `context.state`) and restore with `from_bytes`.
    """

    def __init__(self, node_id: int, *, rng: Rng = os.urandom) -> None:
        self._state = ClientState(node_id=node_id)
        self._rng = rng

    @classmethod
    def from_bytes(cls, data: bytes, *, rng: Rng = os.urandom) -> SecAggClient:
        """Restore a client saved with `to_bytes`."""
        client = cls.__new__(cls)
        client._state, client._rng = ClientState.model_validate_json(data), rng
        return client

    def to_bytes(self) -> bytes:
        """The client state as JSON bytes (contains private keys: keep it on the node)."""
        return self._state.model_dump_json().encode()

    @property
    def state(self) -> ClientState:
        """A copy of the current state."""
        return self._state.model_copy(deep=True)

    # -- set-up

    def advertise_keys(self, request: SetupRequest) -> KeyAdvertisement:
        """Set-up step 1: draw the run's X25519 key pair and publish its public half."""
        st = self._state
        self._expect_phase("new")
        if st.node_id not in request.node_ids:
            raise SecAggError(f"node {st.node_id} is not in the roster")
        st.run_id, st.roster = request.run_id, request.node_ids
        st.threshold, st.frac_bits = request.threshold, request.frac_bits
        st.private_key = self._rng(KEY_BYTES)
        st.phase = "advertised"
        return KeyAdvertisement(
            run_id=st.run_id, node_id=st.node_id, public_key=_public_key(st.private_key)
        )

    def share_keys(self, broadcast: KeyBroadcast) -> SetupShares:
        """Set-up step 2: agree the pair keys with every peer (the only X25519 of the
        run), then Shamir-share s_{u,1} and b_{u,1}, encrypted for every other node."""
        st = self._state
        self._expect_phase("advertised")
        self._expect_run(broadcast.run_id)
        keys = broadcast.public_keys
        if keys.get(st.node_id) != _public_key(st.private_key):
            raise SecAggError("the broadcast does not carry this node's own public key")
        if not set(keys) <= set(st.roster):
            raise SecAggError(
                f"unknown node ids in the broadcast: {sorted(set(keys) - set(st.roster))}"
            )
        if len(keys) < st.threshold:
            raise SecAggError(
                f"only {len(keys)} nodes advertised keys; threshold is {st.threshold}"
            )
        if len(set(keys.values())) != len(keys):
            raise SecAggError("public keys in the broadcast are not distinct")
        private = X25519PrivateKey.from_private_bytes(st.private_key)
        enc_keys, roots = {}, {}
        for v, pk in keys.items():
            if v != st.node_id:
                secret = _agree(private, pk)
                enc_keys[v] = _hkdf(secret, _info("enc", st.run_id))
                roots[v] = _hkdf(secret, _info("mask-root", st.run_id))
        st.enc_keys = PeerBytes.pack(enc_keys, width=KEY_BYTES)
        st.mask_roots = PeerBytes.pack(roots, width=KEY_BYTES)
        st.active = tuple(sorted(keys))
        commitment, secrets = self._share_round_secrets(1, st.active)
        st.round, st.phase = 1, "ready"
        return SetupShares(
            run_id=st.run_id, node_id=st.node_id, commitment=commitment, secrets=secrets
        )

    # -- rounds

    def mask_input(self, request: RoundRequest, vectors: Mapping[str, ArrayLike]) -> MaskedInput:
        """Round step 1: encode `vectors` (tag -> float vector), mask them, and escrow
        every pair key under the pad the peer sent.

        Raises FixedPointOverflowError if a value could overflow a sum over the roster.
        """
        st = self._state
        self._expect_phase("ready")
        self._expect_run(request.run_id)
        self._expect_round(request.round, "request")
        active = request.active
        if st.node_id not in active:
            raise SecAggError("this node is not in the round's active set")
        if not set(active) <= set(st.active) or len(set(active)) != len(active):
            raise SecAggError("the active set may only shrink: it lists nodes that left the run")
        if len(active) < st.threshold:
            raise SecAggError(f"{len(active)} active nodes, below threshold {st.threshold}")
        if set(vectors) != set(request.vectors):
            raise SecAggError(
                f"vectors {sorted(vectors)} do not match the request {sorted(request.vectors)}"
            )
        peers = sorted(v for v in active if v != st.node_id)
        self._expect_senders(request.secrets, peers, "round secrets")
        opened = self._open_round_secrets(request.secrets, peers)
        order, total, layout = _layout(request.vectors)
        flat = fixed_point.encode(  # one range check over every tag, in the layout's order
            self._ordered_input(vectors, order), frac_bits=st.frac_bits, max_nodes=len(st.roster)
        )
        info = _info("pair", st.run_id, st.round, layout) + b"\x01"  # = pair_key's
        keys = [hmac.digest(root, info, "sha256") for root in st.mask_roots.values_for(peers)]
        below = bisect.bisect_left(peers, st.node_id)  # u adds PRG(k_uv) for v > u
        flat += _signed_stream_sum(keys[below:], keys[:below], total)
        self_key = _expand(st.seed, _info("self", st.run_id, st.round, layout))  # = self_masks'
        flat += _prg(self_key, total)
        masked = {tag: v.astype("<u8").tobytes() for tag, v in _split_tags(flat, order).items()}
        pads = opened[:, 2 * shamir.PACKED_SHARE_BYTES :]
        key_rows = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(-1, KEY_BYTES)
        escrow_blob = (key_rows ^ pads).tobytes()
        escrows = {v: escrow_blob[KEY_BYTES * i : KEY_BYTES * (i + 1)] for i, v in enumerate(peers)}

        everyone, n = tuple(sorted(active)), shamir.PACKED_SHARE_BYTES
        st.key_shares = self._with_own_share(st.key_shares, opened[:, :n], below, everyone)
        st.seed_shares = self._with_own_share(st.seed_shares, opened[:, n : 2 * n], below, everyone)
        st.active, st.phase = tuple(active), "masked"
        return MaskedInput(
            run_id=st.run_id, round=st.round, node_id=st.node_id, vectors=masked, escrows=escrows
        )

    def unmask(self, request: UnmaskRequest) -> UnmaskShares:
        """Round step 2: reveal b-shares of survivors and s-shares of dropped nodes, and
        send the next round's commitment and encrypted secrets.

        Never reveals both kinds for one node: a node listed as dropped is excluded for
        the rest of the run, and a request listing this node as dropped is refused.
        """
        st = self._state
        self._expect_phase("masked")
        self._expect_run(request.run_id)
        self._expect_round(request.round, "unmask request")
        survivors, dropped = set(request.survivors), set(request.dropped)
        if len(survivors) != len(request.survivors) or len(dropped) != len(request.dropped):
            raise SecAggError("duplicate node ids in the unmask request")
        if survivors & dropped or survivors | dropped != set(st.active):
            raise SecAggError("survivors and dropped must partition the round's active set")
        if st.node_id in dropped:
            st.phase = "excluded"
            raise SecAggError("this node was declared dropped; it takes no further part")
        if len(survivors) < st.threshold:
            raise SecAggError(f"{len(survivors)} survivors, below threshold {st.threshold}")
        kept, gone = sorted(survivors), sorted(dropped)
        reply_seed = dict(zip(kept, st.seed_shares.values_for(kept)))
        reply_key = dict(zip(gone, st.key_shares.values_for(gone)))
        next_active, next_round = tuple(sorted(survivors)), st.round + 1
        commitment, secrets = self._share_round_secrets(next_round, next_active)
        st.excluded = tuple(sorted(set(st.excluded) | dropped))
        st.active, st.round, st.phase = next_active, next_round, "ready"
        return UnmaskShares(
            run_id=st.run_id,
            round=request.round,
            node_id=st.node_id,
            seed_shares=reply_seed,
            key_shares=reply_key,
            next_commitment=commitment,
            next_secrets=secrets,
        )

    # -- helpers

    def _share_round_secrets(
        self, round: int, recipients: Sequence[int]
    ) -> tuple[bytes, dict[int, bytes]]:
        """Draw s_{u,round} and b_{u,round}, Shamir-share both; keep the own shares.

        Returns the commitment to s_{u,round} and, per other recipient v, one
        ciphertext Enc_uv(share_v(s) | share_v(b) | e_{u->v,round}).
        """
        st = self._state
        st.escrow_key, st.seed = self._rng(KEY_BYTES), self._rng(KEY_BYTES)
        shares = shamir.split_secrets(  # (n, 2 DIGITS): digits of s, then digits of b
            [st.escrow_key, st.seed], n=len(st.roster), t=st.threshold, rng=self._rng
        )
        rows = shares.astype(">u4").view(np.uint8)  # (n, 2 PACKED_SHARE_BYTES): s | b
        index = {v: i for i, v in enumerate(st.roster)}
        peers = [v for v in recipients if v != st.node_id]
        pads = _escrow_pad_list(st.escrow_key, st.run_id, round, st.node_id, peers)
        pad_rows = np.frombuffer(b"".join(pads), dtype=np.uint8).reshape(-1, KEY_BYTES)
        plain = np.concatenate([rows[[index[v] for v in peers]], pad_rows], axis=1).tobytes()
        nonces = self._rng(NONCE_BYTES * len(peers))
        aad_prefix = _info("secrets", st.run_id, round, st.node_id)
        secrets = {}
        for i, (v, cipher, field) in enumerate(zip(peers, self._ciphers(peers), _int_fields(peers))):
            nonce = nonces[NONCE_BYTES * i : NONCE_BYTES * (i + 1)]
            body = plain[SECRETS_BYTES * i : SECRETS_BYTES * (i + 1)]
            secrets[v] = nonce + cipher.encrypt(nonce, body, aad_prefix + field)
        own, n = rows[index[st.node_id]].tobytes(), shamir.PACKED_SHARE_BYTES
        st.key_shares = PeerBytes(width=n, ids=(st.node_id,), data=own[:n])
        st.seed_shares = PeerBytes(width=n, ids=(st.node_id,), data=own[n:])
        commitment = escrow_commitment(st.escrow_key, run_id=st.run_id, round=round, node_id=st.node_id)
        return commitment, secrets

    def _open_round_secrets(
        self, secrets: Mapping[int, bytes], peers: Sequence[int]
    ) -> NDArray[np.uint8]:
        """Decrypt every peer's round secrets: a (len(peers), SECRETS_BYTES) matrix whose
        rows are share of s | share of b | pad, with every share checked well formed."""
        st = self._state
        head, me = _info("secrets", st.run_id, st.round), _field(st.node_id)
        try:
            plains = [
                cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], head + field + me)
                for cipher, blob, field in zip(
                    self._ciphers(peers), [secrets[v] for v in peers], _int_fields(peers)
                )
            ]
        except InvalidTag as exc:
            raise SecAggError("an encrypted share does not authenticate") from exc
        if set(map(len, plains)) - {SECRETS_BYTES}:
            raise SecAggError("an encrypted share does not authenticate: wrong plaintext length")
        opened = np.frombuffer(b"".join(plains), dtype=np.uint8).reshape(len(peers), SECRETS_BYTES)
        try:  # every share opened must be well formed
            shamir.packed_shares_from_blob(opened[:, : 2 * shamir.PACKED_SHARE_BYTES].tobytes())
        except ValueError as exc:
            raise SecAggError(f"a decrypted share is malformed: {exc}") from exc
        return opened

    def _ordered_input(
        self, vectors: Mapping[str, ArrayLike], order: list[tuple[str, int]]
    ) -> NDArray[np.float64]:
        """The round's vectors concatenated in the layout's (sorted) tag order."""
        parts = []
        for tag, length in order:
            x = np.asarray(vectors[tag], dtype=np.float64)
            if x.shape != (length,):
                raise SecAggError(f"vector {tag!r} has shape {x.shape}, expected ({length},)")
            parts.append(x)
        return np.concatenate(parts)

    def _with_own_share(
        self, own: PeerBytes, opened: NDArray[np.uint8], position: int, everyone: tuple[int, ...]
    ) -> PeerBytes:
        """The peers' shares (rows of `opened`, peers in id order) with this node's own
        share inserted at `position`, packed for `everyone` (sorted, including this node)."""
        data, cut = opened.tobytes(), position * own.width
        data = data[:cut] + own[self._state.node_id] + data[cut:]
        return PeerBytes(width=own.width, ids=everyone, data=data)

    def _ciphers(self, peers: Sequence[int]) -> list[ChaCha20Poly1305]:
        """The ChaCha20-Poly1305 ciphers shared with `peers`, keyed by HKDF(X25519(c_u, C_v)).

        The keys are agreed once per run (`share_keys`) and kept in the client state, so
        no later message repeats an X25519 agreement."""
        keys = self._state.enc_keys
        table = _aead_table(keys.data)
        try:
            return [table[i] for i in keys.positions(peers)]
        except KeyError as exc:
            raise SecAggError(f"no share-encryption key for node {exc.args[0]}") from exc

    def _expect_phase(self, phase: str) -> None:
        if self._state.phase != phase:
            raise SecAggError(f"unexpected message: client is in phase {self._state.phase!r}")

    def _expect_run(self, run_id: str) -> None:
        if run_id != self._state.run_id:
            raise SecAggError(
                f"message for run {run_id!r}, this client is in run {self._state.run_id!r}"
            )

    def _expect_round(self, round: int, what: str) -> None:
        if round != self._state.round:
            raise SecAggError(f"{what} for round {round}, this node is at round {self._state.round}")

    @staticmethod
    def _expect_senders(got: Mapping[int, bytes], expected: Sequence[int], what: str) -> None:
        if set(got) != set(expected):
            raise SecAggError(f"{what}: expected senders {sorted(expected)}, got {sorted(got)}")


# ----------------------------------------------------------------------------- server


@dataclass(frozen=True)
class RoundResult:
    """The unmasked sums of one round and who contributed to them."""

    round: int
    sums: dict[str, NDArray[np.float64]]
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]


class SecAggServer:
    """Server side of secure aggregation; one method per step, messages in and out.

    Set-up: `setup_request`, `receive_keys`* , `key_broadcast`, `receive_setup_shares`*,
    `finish_setup`. Each round: `round_requests`, `receive_masked`*, `unmask_request`,
    `receive_unmask_shares`*, `finish_round` (* once per node reply). A message that
    does not fit the current step raises SecAggError and changes nothing.
    """

    def __init__(self, *, run_id: str, threshold: int, frac_bits: int = 24) -> None:
        self.run_id = run_id
        self.threshold = threshold
        self.frac_bits = frac_bits
        self.phase: str = "new"
        self.round = 0
        self.roster: tuple[int, ...] = ()
        self.active: tuple[int, ...] = ()
        self._keys: dict[int, bytes] = {}  # C_v for the run
        self._commitments: dict[int, bytes] = {}  # commitment to s_{v,r} of the current round
        self._secrets_ct: dict[int, dict[int, bytes]] = {}  # sender -> recipient -> ciphertext
        self._escrows: dict[int, dict[int, bytes]] = {}  # u -> v -> k_uv XOR e_{v->u}
        self._vectors: dict[str, int] = {}
        self._masked: dict[int, dict[str, NDArray[np.uint64]]] = {}
        self._survivors: tuple[int, ...] = ()
        self._dropped: tuple[int, ...] = ()
        self._unmask: dict[int, UnmaskShares] = {}
        # per helper: its shares of b (survivors' order) and of s (dropped order), parsed
        # once on receipt and reused to reconstruct every secret in one product
        self._share_digits: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # -- set-up

    def setup_request(self, node_ids: Sequence[int]) -> SetupRequest:
        """Set-up exchange 1: the same request for every node of the roster."""
        self._expect_phase("new")
        request = SetupRequest(
            run_id=self.run_id,
            node_ids=tuple(node_ids),
            threshold=self.threshold,
            frac_bits=self.frac_bits,
        )
        if 2 * self.threshold <= len(node_ids):
            warnings.warn(
                f"threshold {self.threshold} <= n/2 = {len(node_ids) / 2}; t > n/2 is recommended",
                stacklevel=2,
            )
        self.roster, self.phase = request.node_ids, "keys"
        return request

    def receive_keys(self, message: KeyAdvertisement) -> None:
        """Record one node's public keys."""
        self._expect_phase("keys")
        self._expect_node(message, self.roster, self._keys)
        self._keys[message.node_id] = message.public_key

    def key_broadcast(self) -> KeyBroadcast:
        """Set-up exchange 2: relay every advertised public key to every node."""
        self._expect_phase("keys")
        self._expect_enough(len(self._keys), "nodes advertised keys")
        self.phase = "shares"
        return KeyBroadcast(run_id=self.run_id, public_keys=dict(sorted(self._keys.items())))

    def receive_setup_shares(self, message: SetupShares) -> None:
        """Store one node's commitment and encrypted first-round secrets for relaying."""
        self._expect_phase("shares")
        self._expect_node(message, tuple(self._keys), self._secrets_ct)
        others = set(self._keys) - {message.node_id}
        if set(message.secrets) != others:
            raise SecAggError(
                f"node {message.node_id}: shares must address exactly {sorted(others)}"
            )
        self._secrets_ct[message.node_id] = dict(message.secrets)
        self._commitments[message.node_id] = message.commitment

    def finish_setup(self) -> None:
        """Close set-up: the nodes that sent their shares form the first active set."""
        self._expect_phase("shares")
        self._expect_enough(len(self._secrets_ct), "nodes completed set-up")
        self.active, self.round, self.phase = tuple(sorted(self._secrets_ct)), 1, "ready"

    # -- rounds

    def round_requests(self, vectors: Mapping[str, int]) -> dict[int, RoundRequest]:
        """Round exchange 1: one request per active node (tag -> vector length)."""
        self._expect_phase("ready")
        self._expect_enough(len(self.active), "active nodes")
        def secrets_for(u: int) -> dict[int, bytes]:
            return {v: self._secrets_ct[v][u] for v in self.active if v != u}

        first = RoundRequest(  # validates the shared fields (tags, lengths) once
            run_id=self.run_id,
            round=self.round,
            vectors=dict(vectors),
            active=self.active,
            secrets=secrets_for(self.active[0]),
        )
        # The requests differ only in the ciphertexts addressed to each node, each
        # validated when it arrived (SetupShares, UnmaskShares): copy, not re-validate.
        requests = {u: first.model_copy(update={"secrets": secrets_for(u)}) for u in self.active[1:]}
        requests = {self.active[0]: first, **requests}
        self._vectors, self._masked, self._escrows = dict(vectors), {}, {}
        self.phase = "masking"
        return requests

    def receive_masked(self, message: MaskedInput) -> None:
        """Record one masked input; rejects other runs/rounds, unknown or late nodes."""
        if self.phase != "masking":
            raise SecAggError(
                f"masked input from node {message.node_id} for round {message.round} "
                f"arrived while the server is in phase {self.phase!r} of round {self.round}"
            )
        self._expect_round(message.round)
        self._expect_node(message, self.active, self._masked)
        arrays = message.arrays()
        if {t: len(a) for t, a in arrays.items()} != self._vectors:
            raise SecAggError(
                f"node {message.node_id}: vectors { ({t: len(a) for t, a in arrays.items()}) } "
                f"do not match the request {self._vectors}"
            )
        if set(message.escrows) != set(self.active) - {message.node_id}:
            raise SecAggError(f"node {message.node_id}: escrows must address every other active node")
        self._masked[message.node_id] = arrays
        self._escrows[message.node_id] = dict(message.escrows)

    def unmask_request(self) -> UnmaskRequest:
        """Round exchange 2: close collection; survivors are the nodes whose input arrived."""
        self._expect_phase("masking")
        if len(self._masked) < self.threshold:
            self.phase = "failed"
            raise SecAggError(
                f"only {len(self._masked)} masked inputs arrived, below threshold {self.threshold}"
            )
        self._survivors = tuple(sorted(self._masked))
        self._dropped = tuple(v for v in self.active if v not in self._masked)
        self._unmask, self._share_digits, self.phase = {}, {}, "unmasking"
        return UnmaskRequest(
            run_id=self.run_id, round=self.round, survivors=self._survivors, dropped=self._dropped
        )

    def receive_unmask_shares(self, message: UnmaskShares) -> None:
        """Record one node's revealed shares and its encrypted next-round secrets."""
        self._expect_phase("unmasking")
        self._expect_round(message.round)
        self._expect_node(message, self._survivors, self._unmask)
        others = set(self._survivors) - {message.node_id}
        if (
            set(message.seed_shares) != set(self._survivors)
            or set(message.key_shares) != set(self._dropped)
            or set(message.next_secrets) != others
        ):
            raise SecAggError(f"node {message.node_id}: shares do not match the unmask request")
        try:
            seed_digits = shamir.packed_shares_from_bytes(
                [message.seed_shares[v] for v in self._survivors]
            )
            key_digits = (  # usually nobody dropped
                shamir.packed_shares_from_bytes([message.key_shares[v] for v in self._dropped])
                if self._dropped
                else np.empty((0, shamir.DIGITS), dtype=np.int64)
            )
        except ValueError as exc:
            raise SecAggError(f"node {message.node_id}: {exc}") from exc
        self._unmask[message.node_id] = message
        self._share_digits[message.node_id] = (seed_digits, key_digits)

    def finish_round(self) -> RoundResult:
        """Reconstruct the masks from t answers, unmask and decode the sums.

        Nodes that answered form the next active set. Raises SecAggError with fewer than
        t answers and FixedPointOverflowError if the sum is out of range.
        """
        self._expect_phase("unmasking")
        if len(self._unmask) < self.threshold:
            self.phase = "failed"
            raise SecAggError(
                f"only {len(self._unmask)} nodes revealed shares, below threshold {self.threshold}"
            )
        helpers = sorted(self._unmask)[: self.threshold]
        weights = shamir.lagrange_weights([self.roster.index(w) + 1 for w in helpers])
        seeds = self._reveal(weights, helpers, 0, self._survivors)
        dropped_keys = self._reveal(weights, helpers, 1, self._dropped)
        for v, key in dropped_keys.items():
            commitment = escrow_commitment(key, run_id=self.run_id, round=self.round, node_id=v)
            if not hmac.compare_digest(commitment, self._commitments[v]):
                raise SecAggError(
                    f"reconstructed escrow key of node {v} does not match its commitment"
                )

        order, total, layout = _layout(self._vectors)
        flat = np.zeros(total, dtype=np.uint64)
        start = 0
        for tag, n in order:  # sum of the y_u, tag by tag in layout order
            stacked = np.stack([self._masked[u][tag] for u in self._survivors])
            flat[start : start + n] = stacked.sum(axis=0, dtype=np.uint64)
            start += n
        self_info = _info("self", self.run_id, self.round, layout) + b"\x01"  # = self_masks'
        seed_keys = [hmac.digest(seeds[u], self_info, "sha256") for u in self._survivors]
        flat += _signed_stream_sum([], seed_keys, total)  # minus every PRG(b_{u,r})
        for v, key in dropped_keys.items():
            flat += self._dropped_masks(v, key, total)
        totals = _split_tags(flat, order)
        sums = {
            tag: fixed_point.decode(
                total,
                frac_bits=self.frac_bits,
                n_summands=len(self._survivors),
                max_nodes=len(self.roster),
            )
            for tag, total in totals.items()
        }
        result = RoundResult(self.round, sums, self._survivors, self._dropped)
        self.active = tuple(sorted(self._unmask))
        replies = [self._unmask[u] for u in self.active]
        self._commitments = {m.node_id: m.next_commitment for m in replies}
        self._secrets_ct = {m.node_id: dict(m.next_secrets) for m in replies}
        self.round, self.phase = self.round + 1, "ready"
        self._masked, self._unmask, self._escrows, self._share_digits = {}, {}, {}, {}
        return result

    def _reveal(
        self, weights: np.ndarray, helpers: Sequence[int], kind: int, owners: Sequence[int]
    ) -> dict[int, bytes]:
        """Reconstruct the secrets of `owners` (kind 0: b of survivors, 1: s of dropped
        nodes) from the helpers' shares, all in one matrix product."""
        if not owners:
            return {}
        shares = np.stack([self._share_digits[w][kind] for w in helpers])  # (t, owners, DIGITS)
        try:
            return dict(zip(owners, shamir.combine_many(weights, shares)))
        except shamir.InconsistentShares as exc:
            raise SecAggError(f"shares of node {owners[exc.index]} are inconsistent") from exc

    def _dropped_masks(self, v: int, escrow_key: bytes, total: int) -> NDArray[np.uint64]:
        """The pairwise masks dropped node v would have added towards the survivors.

        Survivors added -(v's masks towards them); adding v's masks back cancels them.
        Each survivor u escrowed k_uv under e_{v->u}, which s_{v,r} now yields."""
        survivors = self._survivors
        pads = _escrow_pad_list(escrow_key, self.run_id, self.round, v, survivors)
        escrows = b"".join([self._escrows[u][v] for u in survivors])
        keys = np.frombuffer(escrows, dtype=np.uint8) ^ np.frombuffer(b"".join(pads), dtype=np.uint8)
        blob = keys.tobytes()
        pair_keys = [blob[KEY_BYTES * i : KEY_BYTES * (i + 1)] for i in range(len(survivors))]
        below = bisect.bisect_left(survivors, v)  # v adds PRG(k_uv) for u > v
        return _signed_stream_sum(pair_keys[below:], pair_keys[:below], total)

    # -- checks

    def _expect_phase(self, phase: str) -> None:
        if self.phase != phase:
            raise SecAggError(f"server is in phase {self.phase!r}, not {phase!r}")

    def _expect_round(self, round: int) -> None:
        if round != self.round:
            raise SecAggError(f"message for round {round}, the server is at round {self.round}")

    def _expect_node(
        self,
        message: KeyAdvertisement | SetupShares | MaskedInput | UnmaskShares,
        allowed: Collection[int],
        seen: Collection[int],
    ) -> None:
        node = message.node_id
        if message.run_id != self.run_id:
            raise SecAggError(f"message for run {message.run_id!r}, not {self.run_id!r}")
        if node not in allowed:
            raise SecAggError(f"node {node} is unknown or not part of this step")
        if node in seen:
            raise SecAggError(f"node {node} already answered this step")

    def _expect_enough(self, count: int, what: str) -> None:
        if count < self.threshold:
            self.phase = "failed"
            raise SecAggError(f"only {count} {what}, below threshold {self.threshold}")


# ---------------------------------------------------------------------- local driver


def run_local_secure_sum(
    inputs: Sequence[Mapping[int, Mapping[str, ArrayLike]]],
    *,
    threshold: int,
    frac_bits: int = 24,
    run_id: str = "local",
    drop_before_masking: Mapping[int, Collection[int]] | None = None,
    drop_after_masking: Mapping[int, Collection[int]] | None = None,
    rng: Rng = os.urandom,
    serialise: bool = True,
) -> list[RoundResult]:
    """Run set-up and one secure sum per entry of `inputs`, all in this process.

    Parameters
    ----------
    inputs : sequence over rounds of {node id: {tag: float vector}}
        The roster is the node ids of the first round; every node still active in a
        round must have an entry.
    drop_before_masking, drop_after_masking : {round (1-based): node ids}
        Nodes whose masked input is lost in that round, or that vanish after sending it
        (they do not answer the unmask request).
    serialise : bool
        Round-trip every client through `to_bytes`/`from_bytes` and every message
        through JSON, as a deployment (fresh process per message) would.

    Returns
    -------
    list of RoundResult, one per round.
    """
    before = {r: set(v) for r, v in (drop_before_masking or {}).items()}
    after = {r: set(v) for r, v in (drop_after_masking or {}).items()}
    roster = sorted(inputs[0])
    clients: dict[int, SecAggClient | bytes] = {u: SecAggClient(u, rng=rng) for u in roster}

    def call(u: int, method: str, *args: object) -> _Message:
        stored = clients[u]
        client = SecAggClient.from_bytes(stored, rng=rng) if isinstance(stored, bytes) else stored
        reply = getattr(client, method)(*args)
        clients[u] = client.to_bytes() if serialise else client
        return type(reply).model_validate_json(reply.model_dump_json()) if serialise else reply

    server = SecAggServer(run_id=run_id, threshold=threshold, frac_bits=frac_bits)
    request = server.setup_request(roster)
    for u in roster:
        server.receive_keys(call(u, "advertise_keys", request))
    broadcast = server.key_broadcast()
    for u in roster:
        server.receive_setup_shares(call(u, "share_keys", broadcast))
    server.finish_setup()

    results = []
    for r, round_inputs in enumerate(inputs, start=1):
        first = round_inputs[server.active[0]]
        spec = {tag: len(np.asarray(vec)) for tag, vec in first.items()}
        for u, req in server.round_requests(spec).items():
            reply = call(u, "mask_input", req, round_inputs[u])
            if u not in before.get(r, set()):
                server.receive_masked(reply)
        unmask_request = server.unmask_request()
        for u in unmask_request.survivors:
            if u not in after.get(r, set()):
                server.receive_unmask_shares(call(u, "unmask", unmask_request))
        results.append(server.finish_round())
    return results
