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

import functools
import os
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

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


# ------------------------------------------------------------- byte secrets, vectorised
#
# Secure aggregation shares two 32-byte secrets per node and round among up to a few
# hundred nodes. Rather than one polynomial over GF(2^521 - 1) evaluated with Python
# big integers, a secret is written in base p = 2^31 - 1 (DIGITS digits, since
# 2^256 < p^9) and each digit is shared with its own independent random polynomial
# over GF(p); all evaluations are one small integer matrix product in numpy. Each
# digit's shares are a Shamir sharing, so any t - 1 shares are uniform and independent
# of every digit (perfect secrecy digit by digit, and the polynomials are independent),
# hence of the secret; any t shares give every digit back.

DIGIT_PRIME = 2**31 - 1
"""The Mersenne prime M31: each digit is shared over GF(2^31 - 1)."""

SECRET_BYTES = 32
DIGITS = 9
"""Base-DIGIT_PRIME digits of a SECRET_BYTES secret (2^256 < (2^31 - 1)^9)."""

PACKED_SHARE_BYTES = 4 * DIGITS
"""Bytes of one share of a byte secret: DIGITS big-endian uint32 (36)."""

_MAX_PARTIES = 1 << 16  # keeps the split matrix products below below 2^63


_EXACT_FLOAT_TERMS = 64
"""Inner dimensions up to this sum exactly in float64: 64 products below 2^31 * 2^16
stay below 2^53, so every partial sum is an integer float64 represents exactly."""


def _mulmod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a @ b) mod DIGIT_PRIME for int64 matrices with entries in [0, p) and an inner
    dimension below 2^16: b is split into 16-bit halves so no int64 sum overflows.

    Up to `_EXACT_FLOAT_TERMS` terms the two products run in float64 (BLAS, several
    times faster than numpy's integer matmul) and are still exact."""
    p = DIGIT_PRIME
    if a.shape[-1] <= _EXACT_FLOAT_TERMS:  # both halves in one product
        halves = np.concatenate([b & 0xFFFF, b >> 16], axis=1).astype(np.float64)
        both = (a.astype(np.float64) @ halves).astype(np.int64) % p
        lo, hi = both[:, : b.shape[1]], both[:, b.shape[1] :]
    else:
        lo = (a @ (b & 0xFFFF)) % p  # each product < 2^47, fewer than 2^16 of them
        hi = (a @ (b >> 16)) % p
    return (hi * (1 << 16) + lo) % p


@functools.lru_cache(maxsize=64)
def _vandermonde(n: int, t: int) -> np.ndarray:
    """x^j mod p for x = 1..n (rows) and j = 0..t-1 (columns)."""
    out = np.ones((n, t), dtype=np.int64)
    x = np.arange(1, n + 1, dtype=np.int64)
    for j in range(1, t):
        out[:, j] = out[:, j - 1] * x % DIGIT_PRIME
    out.setflags(write=False)
    return out


def _uniform_digits(count: int, rng: Callable[[int], bytes]) -> np.ndarray:
    """`count` uniform elements of GF(p) by rejection sampling of 31-bit words."""
    out = np.frombuffer(rng(4 * count), dtype=">u4").astype(np.int64) & 0x7FFFFFFF
    while True:
        bad = np.flatnonzero(out == DIGIT_PRIME)  # the only 31-bit value >= p
        if not bad.size:
            return out
        out[bad] = np.frombuffer(rng(4 * bad.size), dtype=">u4").astype(np.int64) & 0x7FFFFFFF


def secret_to_digits(secret: bytes) -> list[int]:
    """The DIGITS base-p digits of a SECRET_BYTES secret, least significant first."""
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a secret is {SECRET_BYTES} bytes, got {len(secret)}")
    value, digits = int.from_bytes(secret, "big"), []
    for _ in range(DIGITS):
        value, d = divmod(value, DIGIT_PRIME)
        digits.append(d)
    return digits


def digits_to_secret(digits: Sequence[int]) -> bytes:
    """Inverse of `secret_to_digits`; ValueError if the digits exceed 2^256 - 1."""
    value = 0
    for d in reversed(list(digits)):
        value = value * DIGIT_PRIME + int(d)
    if value >= 1 << (8 * SECRET_BYTES):
        raise ValueError("the digits do not encode a secret")
    return value.to_bytes(SECRET_BYTES, "big")


def split_secret(
    secret: bytes, *, n: int, t: int, rng: Callable[[int], bytes] = os.urandom
) -> np.ndarray:
    """Split a SECRET_BYTES secret into `n` shares, any `t` of which reconstruct it.

    Returns an int64 array of shape (n, DIGITS); row x - 1 is party x's share.
    """
    return split_secrets([secret], n=n, t=t, rng=rng)


def _coefficients(secrets: Sequence[bytes], t: int, rng: Callable[[int], bytes]) -> np.ndarray:
    """(t, secrets * DIGITS): the digits as constant terms, then uniform coefficients,
    an independent polynomial per digit."""
    width = len(secrets) * DIGITS
    coefficients = np.empty((t, width), dtype=np.int64)
    coefficients[0] = [d for secret in secrets for d in secret_to_digits(secret)]
    coefficients[1:] = _uniform_digits((t - 1) * width, rng).reshape(t - 1, width)
    return coefficients


def split_secrets(
    secrets: Sequence[bytes], *, n: int, t: int, rng: Callable[[int], bytes] = os.urandom
) -> np.ndarray:
    """Split several SECRET_BYTES secrets among the same `n` parties in one product.

    Every digit of every secret gets its own independent random polynomial, exactly as
    separate `split_secret` calls would; sharing them together costs one matrix product.
    Returns an int64 array of shape (n, len(secrets) * DIGITS): row x - 1 is party x's
    shares, secret after secret.
    """
    if not 1 <= t <= n:
        raise ValueError(f"need 1 <= t <= n, got t={t}, n={n}")
    if n >= _MAX_PARTIES:
        raise ValueError(f"at most {_MAX_PARTIES - 1} parties")
    return _mulmod(_vandermonde(n, t), _coefficients(secrets, t, rng))


def split_secrets_at(
    secrets: Sequence[bytes], *, xs: Sequence[int], t: int, rng: Callable[[int], bytes] = os.urandom
) -> np.ndarray:
    """`split_secrets` for the parties at evaluation points `xs` only (a sparse
    neighbourhood: its holders' 1-based roster positions). Row i is party xs[i]'s share."""
    if not 1 <= t <= len(xs):
        raise ValueError(f"need 1 <= t <= holders, got t={t}, {len(xs)} holders")
    if len(set(xs)) != len(xs) or min(xs) < 1 or max(xs) >= _MAX_PARTIES:
        raise ValueError(f"evaluation points must be distinct, in 1..{_MAX_PARTIES - 1}")
    rows = _vandermonde(max(xs), t)[np.asarray(xs) - 1]
    return _mulmod(rows, _coefficients(secrets, t, rng))


def lagrange_weights(xs: Sequence[int]) -> np.ndarray:
    """Lagrange coefficients at zero over GF(DIGIT_PRIME), for `combine_shares`; compute
    them once for every secret reconstructed from the same parties."""
    if len(xs) >= _MAX_PARTIES:
        raise ValueError(f"at most {_MAX_PARTIES - 1} shares")
    return np.array(lagrange_at_zero(xs, prime=DIGIT_PRIME), dtype=np.int64)


def combine_shares(weights: np.ndarray, shares: np.ndarray) -> bytes:
    """The secret from the shares (rows, in the order of the weights' parties);
    ValueError if they are inconsistent in a way that shows (digits beyond a
    32-byte secret)."""
    shares = np.asarray(shares, dtype=np.int64)
    if shares.shape != (len(weights), DIGITS):
        raise ValueError(f"need {len(weights)} shares of {DIGITS} digits, got {shares.shape}")
    return combine_many(weights, shares[:, None, :])[0]


class InconsistentShares(ValueError):
    """Shares that do not interpolate to a 32-byte secret; `index` says whose."""

    def __init__(self, index: int) -> None:
        super().__init__(f"the shares of secret {index} do not encode a secret")
        self.index = index


def combine_many(weights: np.ndarray, shares: np.ndarray) -> list[bytes]:
    """Every secret from the same parties' shares in one product.

    `shares` has shape (len(weights), secrets, DIGITS): party by party (in the order of
    the weights), each party's share of every secret. Raises InconsistentShares for the
    first secret whose digits exceed a 32-byte value.
    """
    shares = np.asarray(shares, dtype=np.int64)
    t, m = len(weights), shares.shape[1] if shares.ndim == 3 else -1
    if shares.shape != (t, m, DIGITS):
        raise ValueError(f"need {t} x secrets x {DIGITS} shares, got {shares.shape}")
    digits = _mulmod(weights[None, :], shares.reshape(t, m * DIGITS)).reshape(m, DIGITS)
    secrets = []
    for i, row in enumerate(digits.tolist()):
        try:
            secrets.append(digits_to_secret(row))
        except ValueError:
            raise InconsistentShares(i) from None
    return secrets


def reconstruct_secret(xs: Sequence[int], shares: np.ndarray) -> bytes:
    """The secret from the shares (rows) of parties `xs`."""
    return combine_shares(lagrange_weights(xs), shares)


def packed_share_to_bytes(share: np.ndarray) -> bytes:
    """One share of a byte secret (DIGITS digits) as PACKED_SHARE_BYTES bytes."""
    return np.asarray(share, dtype=np.int64).astype(">u4").tobytes()


def packed_share_from_bytes(data: bytes) -> np.ndarray:
    """Parse one share of a byte secret, rejecting malformed input."""
    if len(data) != PACKED_SHARE_BYTES:
        raise ValueError(f"a share is {PACKED_SHARE_BYTES} bytes, got {len(data)}")
    return packed_shares_from_blob(data)[0]


def packed_shares_from_bytes(blobs: Sequence[bytes]) -> np.ndarray:
    """Parse many shares at once into a (len(blobs), DIGITS) matrix, rejecting any
    malformed one."""
    if set(map(len, blobs)) - {PACKED_SHARE_BYTES}:
        raise ValueError(f"a share is {PACKED_SHARE_BYTES} bytes")
    return packed_shares_from_blob(b"".join(blobs))


def packed_shares_from_blob(data: bytes) -> np.ndarray:
    """Parse shares packed back to back into a (rows, DIGITS) matrix, rejecting a
    length that is not whole shares and any digit outside the field."""
    if len(data) % PACKED_SHARE_BYTES:
        raise ValueError(
            f"{len(data)} bytes is not a whole number of {PACKED_SHARE_BYTES}-byte shares"
        )
    digits = np.frombuffer(data, dtype=">u4").astype(np.int64).reshape(-1, DIGITS)
    if (digits >= DIGIT_PRIME).any():
        raise ValueError("share digit is not a field element")
    return digits
