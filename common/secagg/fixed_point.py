"""Fixed-point encoding of float64 vectors into the ring Z/2^64 for secure aggregation.

Secure aggregation (Bonawitz et al. 2017, section 3) adds vectors of integers modulo
R = 2^64; a float x becomes round(x * 2^frac_bits), stored in two's complement so that
negative values need no offset and a sum of encodings, read back as a signed int64,
is the encoding of the sum.

The sum is only correct while it stays in the signed range [-2^63, 2^63 - 1].
`encode` guarantees this: with `max_nodes` summands it accepts a scaled value only if
|round(x * 2^frac_bits)| <= (2^63 - 1) // max_nodes, and raises (never wraps or clips)
otherwise. `decode` repeats the check on the sum (|total| <= n_summands * that bound), so
a sum that cannot come from honestly encoded inputs, e.g. one still carrying a mask,
raises instead of returning garbage whenever the bound leaves room to tell.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

MAX_FRAC_BITS = 52
"""float64 has a 53-bit significand; more fractional bits than that add no precision."""


class FixedPointOverflowError(ValueError):
    """A value, or a possible sum of values, does not fit the signed 64-bit range."""


def max_abs_scaled(max_nodes: int) -> int:
    """Largest |scaled integer| one node may send so that `max_nodes` of them sum in int64."""
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be >= 1, got {max_nodes}")
    return (2**63 - 1) // max_nodes


def max_abs_value(*, frac_bits: int, max_nodes: int) -> float:
    """Largest |float| `encode` accepts (about 2^(63 - frac_bits) / max_nodes)."""
    _check_frac_bits(frac_bits)
    return max_abs_scaled(max_nodes) / 2.0**frac_bits


def encode(values: ArrayLike, *, frac_bits: int, max_nodes: int) -> NDArray[np.uint64]:
    """Encode floats as uint64 ring elements round(x * 2^frac_bits) mod 2^64.

    Parameters
    ----------
    values : array-like of shape (n,)
        Finite float64 values.
    frac_bits : int
        Number of fractional bits; the resolution is 2^-frac_bits.
    max_nodes : int
        Largest number of encodings that will ever be summed.

    Returns
    -------
    ndarray of shape (n,), dtype uint64

    Raises
    ------
    FixedPointOverflowError
        If a value is not finite or a sum over `max_nodes` such values could leave
        the signed 64-bit range.
    """
    _check_frac_bits(frac_bits)
    limit = max_abs_scaled(max_nodes)
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-d vector, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise FixedPointOverflowError("cannot encode NaN or infinite values")
    scaled = np.rint(np.ldexp(x, frac_bits))
    # 2^63 is exact in float64, so this comparison is exact and guards the cast below.
    if scaled.size and np.max(np.abs(scaled)) >= 2.0**63:
        raise FixedPointOverflowError(_overflow_message(x, frac_bits, max_nodes))
    as_int = scaled.astype(np.int64)
    if as_int.size and np.max(np.abs(as_int)) > limit:
        raise FixedPointOverflowError(_overflow_message(x, frac_bits, max_nodes))
    return as_int.view(np.uint64)


def add_integers(encoded: NDArray[np.uint64], noise: NDArray[np.int64], *, max_nodes: int) -> NDArray[np.uint64]:
    """An encoding plus integer noise on the same grid (DP shares), range-checked as
    `encode` checks a value: the noised entry must still fit a sum of `max_nodes`."""
    if max_nodes < 2:  # two values of up to 2^63 − 1 could overflow int64 while adding
        raise ValueError(f"noise shares need max_nodes >= 2, got {max_nodes}")
    signed = np.asarray(encoded, dtype=np.uint64).view(np.int64)
    noise = np.asarray(noise, dtype=np.int64)
    if signed.shape != noise.shape:
        raise ValueError(f"noise of shape {noise.shape} for an encoding of shape {signed.shape}")
    limit = max_abs_scaled(max_nodes)
    if noise.size and (np.max(np.abs(noise)) > limit or np.max(np.abs(signed)) > limit):
        raise FixedPointOverflowError("noise or encoding outside the fixed-point range")
    total = signed + noise  # both within 2^63/max_nodes: no int64 overflow for max_nodes >= 2
    if total.size and np.max(np.abs(total)) > limit:
        raise FixedPointOverflowError(
            f"a noised entry exceeds the fixed-point bound {limit} (max_nodes={max_nodes}); "
            "use fewer fractional bits"
        )
    return total.view(np.uint64)


def decode(
    total: NDArray[np.uint64], *, frac_bits: int, n_summands: int, max_nodes: int
) -> NDArray[np.float64]:
    """Decode a sum of `n_summands` encodings back to float64.

    Raises FixedPointOverflowError if more summands were added than `max_nodes` allows,
    or if |total| exceeds what `n_summands` in-range encodings can add up to (a sign
    that the sum is corrupt or still masked).
    """
    _check_frac_bits(frac_bits)
    if not 1 <= n_summands <= max_nodes:
        raise FixedPointOverflowError(
            f"{n_summands} summands, but the encoding only allows 1..{max_nodes}"
        )
    signed = np.asarray(total, dtype=np.uint64).view(np.int64)
    # int64 min has no int64 absolute value: it is out of range by itself.
    bound = n_summands * max_abs_scaled(max_nodes)
    if signed.size and (
        np.any(signed == np.iinfo(np.int64).min) or int(np.max(np.abs(signed))) > bound
    ):
        raise FixedPointOverflowError(
            f"sum of {n_summands} encodings is out of range: the inputs overflowed "
            "or the sum is not fully unmasked"
        )
    return np.ldexp(signed.astype(np.float64), -frac_bits)


def _check_frac_bits(frac_bits: int) -> None:
    if not 0 <= frac_bits <= MAX_FRAC_BITS:
        raise ValueError(f"frac_bits must be in 0..{MAX_FRAC_BITS}, got {frac_bits}")


def _overflow_message(x: NDArray[np.float64], frac_bits: int, max_nodes: int) -> str:
    worst = float(np.max(np.abs(x)))
    bound = max_abs_value(frac_bits=frac_bits, max_nodes=max_nodes)
    return (
        f"value {worst:.6g} exceeds the fixed-point bound {bound:.6g} "
        f"(frac_bits={frac_bits}, max_nodes={max_nodes}); use fewer fractional bits"
    )
