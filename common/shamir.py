"""Shamir t-out-of-n secret sharing over a prime field (Shamir 1979, "How to share a secret").

A secret s is the constant term of a random polynomial f of degree t - 1 over GF(p);
party i (x = 1..n) receives the share (i, f(i)). Any t shares determine f and hence
s = f(0) by Lagrange interpolation; any t - 1 shares are jointly uniform and independent
of s (perfect secrecy), because for every candidate secret exactly one polynomial passes
through them.

The default field is GF(2^521 - 1), a Mersenne prime, so every 32-byte secret used by
secure aggregation (an X25519 private key, a 32-byte PRG seed) is a field element and
no encoding trick is needed. Shares are serialised as `SHARE_BYTES` big-endian bytes.

All functions are pure; randomness comes from an injectable `rng(n_bytes) -> bytes`
(`split` -> `_split_with_coefficients`, in the style of cryptography's Fernet
`encrypt` -> `_encrypt_from_parts`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import NamedTuple

PRIME = 2**521 - 1
"""The Mersenne prime M521; every secret below 2^521 - 1 is a field element."""

SHARE_BYTES = (PRIME.bit_length() + 7) // 8
"""Bytes of one share value y in GF(PRIME) (66)."""


class Share(NamedTuple):
    """One share: the evaluation point x (a party's 1-based index) and y = f(x)."""

    x: int
    y: int


def split(
    secret: int,
    *,
    n: int,
    t: int,
    rng: Callable[[int], bytes] = os.urandom,
    prime: int = PRIME,
) -> list[Share]:
    """Split `secret` into `n` shares, any `t` of which reconstruct it.

    Returns shares for x = 1..n, in that order. Coefficients are drawn uniformly from
    GF(prime) by rejection sampling on `rng` bytes.
    """
    if not 0 <= secret < prime:
        raise ValueError("secret must lie in [0, prime)")
    if not 1 <= t <= n:
        raise ValueError(f"need 1 <= t <= n, got t={t}, n={n}")
    if n >= prime:
        raise ValueError("n must be smaller than the field size")
    coefficients = [_uniform_below(prime, rng) for _ in range(t - 1)]
    return _split_with_coefficients(secret, coefficients, n=n, prime=prime)


def _split_with_coefficients(
    secret: int, coefficients: Sequence[int], *, n: int, prime: int = PRIME
) -> list[Share]:
    """Shares of f(x) = secret + c_1 x + ... + c_{t-1} x^{t-1} at x = 1..n (Horner)."""
    high_first = [secret, *coefficients][::-1]
    shares = []
    for x in range(1, n + 1):
        # Horner over the integers with one reduction at the end: y grows by only
        # log2(n) bits per coefficient, so the big-int products stay cheap.
        y = 0
        for c in high_first:
            y = y * x + c
        shares.append(Share(x, y % prime))
    return shares


def lagrange_at_zero(xs: Sequence[int], *, prime: int = PRIME) -> list[int]:
    """Lagrange basis coefficients l_i(0) = prod_{j != i} x_j / (x_j - x_i) mod prime.

    With the same evaluation points they serve every secret of a round, so callers
    reconstructing many secrets from the same parties compute them once.
    """
    if len(set(xs)) != len(xs):
        raise ValueError("evaluation points must be distinct")
    if any(not 0 < x < prime for x in xs):
        raise ValueError("evaluation points must lie in [1, prime)")
    coefficients = []
    for i, xi in enumerate(xs):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * xj % prime
                den = den * (xj - xi) % prime
        coefficients.append(num * pow(den, -1, prime) % prime)
    return coefficients


def reconstruct(shares: Sequence[Share], *, prime: int = PRIME) -> int:
    """Interpolate f(0) from the given shares.

    With at least t shares of a degree t - 1 polynomial this is the secret; with fewer
    it is a value carrying no information about the secret.
    """
    if not shares:
        raise ValueError("need at least one share")
    weights = lagrange_at_zero([s.x for s in shares], prime=prime)
    return sum(w * s.y for w, s in zip(weights, shares, strict=True)) % prime


def share_to_bytes(y: int) -> bytes:
    """Serialise a share value of the default field."""
    return y.to_bytes(SHARE_BYTES, "big")


def share_from_bytes(data: bytes) -> int:
    """Parse a share value of the default field, rejecting malformed input."""
    if len(data) != SHARE_BYTES:
        raise ValueError(f"a share is {SHARE_BYTES} bytes, got {len(data)}")
    y = int.from_bytes(data, "big")
    if y >= PRIME:
        raise ValueError("share value is not a field element")
    return y


def _uniform_below(bound: int, rng: Callable[[int], bytes]) -> int:
    """A uniform integer in [0, bound) by rejection sampling (no modulo bias)."""
    n_bits = bound.bit_length()
    n_bytes = (n_bits + 7) // 8
    while True:
        value = int.from_bytes(rng(n_bytes), "big") >> (8 * n_bytes - n_bits)
        if value < bound:
            return value
