"""Sealing the per-round secrets a node sends each peer through the server:
ChaCha20-Poly1305 under the pair's run key K_uv, bound to run, round, sender and
recipient by the associated data, so the server can neither read nor re-route them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from numpy.typing import NDArray

from fedseg.common.secagg.derivation import encode_field, encode_info, int_fields
from fedseg.common.secagg.messages import KEY_BYTES, NONCE_BYTES, SECRETS_BYTES, SecAggError

@functools.lru_cache(maxsize=4096)
def _aead(key: bytes) -> ChaCha20Poly1305:
    """A cipher object per key, kept for the process: a long-lived simulation worker
    serves many messages of the same nodes and need not rebuild them."""
    return ChaCha20Poly1305(key)


@functools.lru_cache(maxsize=256)
def aead_table(keys: bytes) -> tuple[ChaCha20Poly1305, ...]:
    """The ciphers of a node's packed share-encryption keys (32 bytes each), kept for the
    process: one cache look-up per message instead of one per peer."""
    return tuple(_aead(keys[i : i + KEY_BYTES]) for i in range(0, len(keys), KEY_BYTES))


def seal_secrets(
    ciphers: Sequence[ChaCha20Poly1305],
    plain: bytes,
    nonces: bytes,
    *,
    run_id: str,
    round: int,
    sender: int,
    recipients: Sequence[int],
) -> dict[int, bytes]:
    """nonce | Enc_{K_uv}(secrets) per recipient v, the associated data
    "secrets" | run_id | r | sender | v binding each to its run, round and pair.

    `plain` holds SECRETS_BYTES per recipient and `nonces` NONCE_BYTES per recipient,
    both in the order of `recipients` (and of `ciphers`)."""
    aad_prefix = encode_info("secrets", run_id, round, sender)
    sealed = {}
    for i, (v, cipher, field) in enumerate(zip(recipients, ciphers, int_fields(recipients))):
        nonce = nonces[NONCE_BYTES * i : NONCE_BYTES * (i + 1)]
        body = plain[SECRETS_BYTES * i : SECRETS_BYTES * (i + 1)]
        sealed[v] = nonce + cipher.encrypt(nonce, body, aad_prefix + field)
    return sealed


def open_secrets(
    ciphers: Sequence[ChaCha20Poly1305],
    sealed: Sequence[bytes],
    *,
    run_id: str,
    round: int,
    senders: Sequence[int],
    recipient: int,
) -> NDArray[np.uint8]:
    """The secrets sealed by `senders` for `recipient`: a (len(senders), SECRETS_BYTES)
    matrix; raises SecAggError unless every one authenticates with its full length."""
    head, me = encode_info("secrets", run_id, round), encode_field(recipient)
    try:
        plains = [
            cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], head + field + me)
            for cipher, blob, field in zip(ciphers, sealed, int_fields(senders))
        ]
    except InvalidTag as exc:
        raise SecAggError("an encrypted share does not authenticate") from exc
    if set(map(len, plains)) - {SECRETS_BYTES}:
        raise SecAggError("an encrypted share does not authenticate: wrong plaintext length")
    return np.frombuffer(b"".join(plains), dtype=np.uint8).reshape(len(senders), SECRETS_BYTES)
