"""Fixed-point encoding: hand-computed vectors and sums against plain integer arithmetic."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fedseg.common.secagg.fixed_point import (
    FixedPointOverflowError,
    decode,
    encode,
    max_abs_scaled,
    max_abs_value,
)

MOD = 2**64


def test_encode_hand_computed():
    # 1.5 * 2^2 = 6; -0.25 * 2^2 = -1 -> 2^64 - 1 in two's complement; 2.6 * 4 = 10.4 -> 10
    got = encode([1.5, -0.25, 0.0, 2.6, -2.6], frac_bits=2, max_nodes=4)

    assert got.dtype == np.uint64
    assert got.tolist() == [6, MOD - 1, 0, 10, MOD - 10]


def test_decode_hand_computed_negative_sum():
    got = decode(np.array([MOD - 6, 7], dtype=np.uint64), frac_bits=2, n_summands=3, max_nodes=4)

    assert got.tolist() == [-1.5, 1.75]


def test_twos_complement_sum_wraps_to_signed_result():
    # -3 + 5 = 2: the uint64 sum wraps past 2^64
    a = encode([-3.0], frac_bits=0, max_nodes=2)
    b = encode([5.0], frac_bits=0, max_nodes=2)
    total = np.array([(int(a[0]) + int(b[0])) % MOD], dtype=np.uint64)

    assert int(a[0]) + int(b[0]) > MOD
    assert decode(total, frac_bits=0, n_summands=2, max_nodes=2).tolist() == [2.0]


@pytest.mark.parametrize("frac_bits", [16, 24, 32])
def test_sum_of_encodings_matches_numpy_sum(frac_bits):
    rng = np.random.default_rng(0)
    n_nodes = 20
    vectors = rng.normal(scale=1e3, size=(n_nodes, 500))
    # reference: the sum modulo 2^64 with Python integers, independent of numpy wrapping
    encoded = [encode(v, frac_bits=frac_bits, max_nodes=n_nodes) for v in vectors]
    total = [sum(int(e[i]) for e in encoded) % MOD for i in range(500)]

    got = decode(
        np.array(total, dtype=np.uint64), frac_bits=frac_bits, n_summands=n_nodes, max_nodes=n_nodes
    )

    # each value is rounded to within 2^-(frac_bits+1)
    assert_allclose(got, vectors.sum(axis=0), rtol=0, atol=n_nodes * 2.0 ** -(frac_bits + 1))


def test_integer_counts_are_exact():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 1_000_000, size=(50, 64)).astype(np.float64)
    total = np.zeros(64, dtype=np.uint64)
    for row in counts:
        total += encode(row, frac_bits=24, max_nodes=50)

    got = decode(total, frac_bits=24, n_summands=50, max_nodes=50)

    assert_array_equal(got, counts.sum(axis=0))


def test_bound_is_exact_at_the_edge():
    # (2^63 - 1) // 2^20 = 2^43 - 1: the largest value 2^20 nodes may each send
    assert max_abs_scaled(2**20) == 2**43 - 1
    assert max_abs_value(frac_bits=0, max_nodes=2**20) == 2**43 - 1

    ok = encode([2.0**43 - 1, -(2.0**43 - 1)], frac_bits=0, max_nodes=2**20)
    assert ok.tolist() == [2**43 - 1, MOD - 2**43 + 1]
    with pytest.raises(FixedPointOverflowError, match="exceeds the fixed-point bound"):
        encode([2.0**43], frac_bits=0, max_nodes=2**20)
    with pytest.raises(FixedPointOverflowError):
        encode([-(2.0**43)], frac_bits=0, max_nodes=2**20)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300, 2.0**63])
def test_encode_rejects_non_finite_and_huge(bad):
    with pytest.raises(FixedPointOverflowError):
        encode([0.0, bad], frac_bits=24, max_nodes=1)


def test_overflow_depends_on_declared_nodes():
    value = 2.0**38  # * 2^24 = 2^62: fits one or two summands, not three
    encode([value], frac_bits=24, max_nodes=1)
    with pytest.raises(FixedPointOverflowError):
        encode([value], frac_bits=24, max_nodes=3)


def test_decode_rejects_sums_out_of_range():
    limit = max_abs_scaled(2**20)
    # one summand cannot exceed the per-node bound
    with pytest.raises(FixedPointOverflowError, match="out of range"):
        decode(np.array([limit + 1], dtype=np.uint64), frac_bits=0, n_summands=1, max_nodes=2**20)
    # int64 min is out of range for any bound
    with pytest.raises(FixedPointOverflowError):
        decode(np.array([2**63], dtype=np.uint64), frac_bits=0, n_summands=2, max_nodes=2)
    # more summands than declared
    with pytest.raises(FixedPointOverflowError, match="summands"):
        decode(np.array([0], dtype=np.uint64), frac_bits=0, n_summands=3, max_nodes=2)
    # at the bound it decodes
    got = decode(np.array([2 * limit], dtype=np.uint64), frac_bits=0, n_summands=2, max_nodes=2**20)
    assert got.tolist() == [float(2 * limit)]


def test_invalid_arguments():
    with pytest.raises(ValueError, match="frac_bits"):
        encode([1.0], frac_bits=53, max_nodes=2)
    with pytest.raises(ValueError, match="max_nodes"):
        encode([1.0], frac_bits=8, max_nodes=0)
    with pytest.raises(ValueError, match="1-d"):
        encode([[1.0]], frac_bits=8, max_nodes=2)
