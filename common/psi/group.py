"""The group arithmetic of DH-PSI: ids hashed onto Curve25519, blinded by X25519.

Why this group: X25519 with clamped scalars commutes (clamped scalars are integers,
[a]([b]P) = [b]([a]P)), so H(x)^{ab} can be computed in either order; it is the
construction of Meadows (1986) / Huberman-Franklin-Hogg (1999) as used by ECDH-PSI in
production (e.g. SecretFlow's ECDH-PSI on Curve25519). Ids go onto the curve through
libsodium's Elligator 2 map (`crypto_core_ed25519_from_uniform`, cofactor cleared) and
the Edwards-to-Montgomery map, so nobody knows the discrete log of H(x): without a
node's scalar no one can compute H(guess)^a to test a guessed id offline. Clamped
scalars are multiples of 8, so a point with a small-order part sent by a deviating
peer loses it. Each call is one libsodium scalar multiplication (about 30 µs).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence

import numpy as np
from nacl.bindings import crypto_core_ed25519_from_uniform, crypto_scalarmult
from nacl.bindings import crypto_sign_ed25519_pk_to_curve25519
from nacl.exceptions import CryptoError

POINT_BYTES = 32
TOKEN_BYTES = 16  # compared prefix of a double-blinded point: 2^-128 per false match
_DOMAIN = b"fedseg-psi/1/id\x00"
Rng = Callable[[int], bytes]


class GroupError(ValueError):
    """A point that is not a usable group element (small order, malformed)."""


def hash_ids(ids: Sequence[str]) -> list[bytes]:
    """H(x): each id's point (Montgomery u-coordinate, 32 bytes), in order."""
    return [crypto_sign_ed25519_pk_to_curve25519(
        crypto_core_ed25519_from_uniform(hashlib.sha256(_DOMAIN + x.encode()).digest())) for x in ids]


def new_scalar(rng: Rng = os.urandom) -> bytes:
    """A fresh blinding scalar (X25519 clamps it on use)."""
    return rng(POINT_BYTES)


def blind(scalar: bytes, points: Sequence[bytes]) -> list[bytes]:
    """[a]P for every point; GroupError when a point has small order (result zero)."""
    try:
        return [crypto_scalarmult(scalar, p) for p in points]
    except (CryptoError, RuntimeError, TypeError, ValueError) as exc:
        raise GroupError("a point is not a usable group element") from exc


def pack(points: Sequence[bytes]) -> bytes:
    return b"".join(points)


def unpack(data: bytes) -> list[bytes]:
    """Points from their concatenation; GroupError unless a whole number of points."""
    if len(data) % POINT_BYTES:
        raise GroupError("a point list is not a whole number of points")
    return [data[i : i + POINT_BYTES] for i in range(0, len(data), POINT_BYTES)]


def tokens(points: Sequence[bytes]) -> np.ndarray:
    """The compared prefixes of double-blinded points, as an array for `np.isin`."""
    return np.frombuffer(b"".join(p[:TOKEN_BYTES] for p in points), dtype=f"S{TOKEN_BYTES}")


def padded_size(n: int) -> int:
    """Set size as the peers and the server see it: rounded up to a multiple of 1/8 of
    the largest power of two below it, so a node's table size leaks to within 12.5 %."""
    if n <= 8:
        return 8
    step = 1 << (n.bit_length() - 4)
    return -(-n // step) * step


def dummies(count: int, rng: Rng = os.urandom) -> list[bytes]:
    """Padding points: hashes of random strings, indistinguishable from blinded ids."""
    return [crypto_sign_ed25519_pk_to_curve25519(crypto_core_ed25519_from_uniform(rng(32))) for _ in range(count)]
