"""Discrete Gaussian noise on the integer grid, from the OS's cryptographic RNG.

Secure aggregation sums integers (fixed-point encodings, `secagg/fixed_point.py`), so the
DP noise is drawn there too: each node adds a discrete Gaussian N_Z(0, σ²) share,
P(Z = z) ∝ exp(−z²/(2σ²)) on the integers, to its already encoded vector. No rounding
of continuous noise after the fact, and no floating-point artefacts in the low bits of
a noised value (Mironov 2012's attack on textbook Laplace samplers).

Sampler: Canonne, Kamath & Steinke, "The Discrete Gaussian for Differential Privacy",
NeurIPS 2020, arXiv:2004.00010, Algorithm 3 (rejection from a discrete Laplace of scale
t = ⌊σ⌋ + 1), vectorised over entries with numpy. Every random bit comes from
``randbytes`` (default `os.urandom`), never from a seeded PRNG.

Floating-point steps, and why they are acceptable: uniform integers below t are exact
(rejection on 64-bit words). The three Bernoulli trials exp(−U/t), the geometric
V = ⌊−ln U'⌋ and exp(−(|Z| − σ²/t)²/(2σ²)) compare a uniform on the 2^-53 grid with a
float64 exp/log (error ≤ 1 ulp): each trial's probability is off by at most ~2^-52. A
draw takes < 2 rounds on average (CKS20, Thm. 6) of 3 trials each, so its law is within
total variation η ≈ 2^-48 ≈ 4e-15 of N_Z(0, σ²). Over the N entries a node releases in a
run that adds at most (1 + e^ε)·N·η to δ: below 1e-7 for N ≤ 10^6 and ε ≤ 4, i.e. under a
tenth of the smallest δ (1e-6) the CLI plans with (PRIVACY.md, "The noise").
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

RandomBytes = Callable[[int], bytes]
"""n -> n uniformly random bytes; `os.urandom` unless a test injects one."""

MAX_SIGMA = 2.0**48
"""Largest σ the float64 steps represent exactly enough (t·V and σ²/t stay well inside 2^53)."""


def uniform_unit(n: int, *, randbytes: RandomBytes = os.urandom) -> NDArray[np.float64]:
    """n uniforms on the grid {1, 2, ..., 2^53}·2^-53 ⊂ (0, 1]: never 0, so ln is finite."""
    words = np.frombuffer(randbytes(8 * n), dtype="<u8") >> np.uint64(11)
    return (words.astype(np.float64) + 1.0) * 2.0**-53


def uniform_below(bound: NDArray[np.int64], *, randbytes: RandomBytes = os.urandom) -> NDArray[np.int64]:
    """One exact uniform integer in [0, bound_i) per entry (1 <= bound_i < 2^63).

    Rejection on 64-bit words: a word below 2^64 mod bound would make low values more
    likely, so it is redrawn (Lemire 2019); the rest is reduced modulo bound."""
    bound_u = np.asarray(bound, dtype=np.int64).astype(np.uint64)
    reject_below = (np.uint64(0) - bound_u) % bound_u  # 2^64 mod bound, per entry
    out = np.empty(bound_u.shape, dtype=np.uint64)
    todo = np.arange(bound_u.size)
    while todo.size:
        words = np.frombuffer(randbytes(8 * todo.size), dtype="<u8")
        ok = words >= reject_below[todo]
        out[todo[ok]] = words[ok] % bound_u[todo[ok]]
        todo = todo[~ok]
    return out.astype(np.int64)


def _bernoulli_exp(x: NDArray[np.float64], randbytes: RandomBytes) -> NDArray[np.bool_]:
    """Bernoulli(exp(−x)) per entry, x >= 0."""
    return uniform_unit(x.size, randbytes=randbytes) <= np.exp(-x)


def sample_discrete_gaussian(sigma: ArrayLike, *, randbytes: RandomBytes = os.urandom) -> NDArray[np.int64]:
    """One draw of N_Z(0, σ_i²) per entry of ``sigma`` (CKS20, Algorithm 3).

    Args:
        sigma: array-like of σ_i, each in (0, MAX_SIGMA]; the output has its shape.
        randbytes: the source of uniform bytes (default the OS's cryptographic RNG).

    Returns:
        int64 ndarray of the shape of ``sigma``.
    """
    s = np.asarray(sigma, dtype=np.float64)
    if not (np.all(np.isfinite(s)) and np.all(s > 0) and np.all(s <= MAX_SIGMA)):
        raise ValueError(f"sigma must be finite, > 0 and <= 2^48 in every entry, got {s.min(initial=0)}..{s.max(initial=0)}")
    flat = s.reshape(-1)
    t = np.floor(flat).astype(np.int64) + 1
    out = np.zeros(flat.size, dtype=np.int64)
    todo = np.arange(flat.size)
    while todo.size:
        tt, ss = t[todo], flat[todo]
        u = uniform_below(tt, randbytes=randbytes)
        keep = _bernoulli_exp(u / tt, randbytes)  # D
        v = np.floor(-np.log(uniform_unit(todo.size, randbytes=randbytes))).astype(np.int64)  # Geom(1 − 1/e)
        y = u + tt * v  # one-sided discrete Laplace of scale t
        negative = (np.frombuffer(randbytes(todo.size), dtype=np.uint8) & 1).astype(bool)
        keep &= ~(negative & (y == 0))  # +0 and −0 are one point
        z = np.where(negative, -y, y)
        keep &= _bernoulli_exp(np.square(np.abs(z) - ss * ss / tt) / (2.0 * ss * ss), randbytes)  # C
        out[todo[keep]] = z[keep]
        todo = todo[~keep]
    return out.reshape(s.shape)
