"""Shamir secret sharing: hand-computed shares, threshold behaviour, perfect secrecy."""

from collections import Counter
from itertools import combinations, product

import numpy as np
import pytest

from common.shamir import (
    PRIME,
    SHARE_BYTES,
    Share,
    _split_with_coefficients,
    lagrange_at_zero,
    reconstruct,
    share_from_bytes,
    share_to_bytes,
    split,
)

# f(x) = 1234 + 166 x + 94 x^2 over GF(1613), evaluated by hand:
# f(1) = 1494, f(2) = 1942 - 1613 = 329, f(3) = 2578 - 1613 = 965,
# f(4) = 3402 - 2*1613 = 176, f(5) = 4414 - 2*1613 = 1188, f(6) = 5614 - 3*1613 = 775
HAND_SHARES = [
    Share(1, 1494),
    Share(2, 329),
    Share(3, 965),
    Share(4, 176),
    Share(5, 1188),
    Share(6, 775),
]


def test_split_hand_computed():
    assert _split_with_coefficients(1234, [166, 94], n=6, prime=1613) == HAND_SHARES


@pytest.mark.parametrize("subset", list(combinations(HAND_SHARES, 3)))
def test_any_three_hand_shares_reconstruct(subset):
    assert reconstruct(subset, prime=1613) == 1234


def test_lagrange_weights_hand_computed():
    # x = 1, 2, 3: l_1(0) = 3, l_2(0) = -3, l_3(0) = 1
    assert lagrange_at_zero([1, 2, 3], prime=1613) == [3, 1613 - 3, 1]


def test_split_draws_coefficients_by_rejection_sampling():
    # GF(17): 5-bit values from one byte shifted right by 3; 0xff -> 31 is rejected,
    # 0x50 -> 10 is kept, so f(x) = 3 + 10 x: 13, 23 mod 17 = 6, 33 mod 17 = 16
    stream = iter([b"\xff", b"\x50"])

    shares = split(3, n=3, t=2, rng=lambda k: next(stream), prime=17)

    assert shares == [Share(1, 13), Share(2, 6), Share(3, 16)]


def test_default_field_threshold():
    rng = np.random.default_rng(0)
    secret = int.from_bytes(rng.bytes(32), "big")
    shares = split(secret, n=7, t=4, rng=rng.bytes)

    for subset in combinations(shares, 4):
        assert reconstruct(subset) == secret
    for subset in combinations(shares, 3):
        assert reconstruct(subset) != secret
    # more than t shares also work
    assert reconstruct(shares) == secret


def test_fewer_than_t_shares_are_independent_of_the_secret():
    # Perfect secrecy, checked exhaustively in GF(17) with t = 3: over all polynomials,
    # the pair of shares (f(1), f(2)) is uniform on GF(17)^2 for every secret.
    p = 17
    for secret in (0, 5, 16):
        pairs = Counter(
            tuple(s.y for s in _split_with_coefficients(secret, list(c), n=2, prime=p))
            for c in product(range(p), repeat=2)
        )
        assert len(pairs) == p * p
        assert set(pairs.values()) == {1}


def test_split_is_deterministic_given_rng():
    a = split(42, n=5, t=3, rng=np.random.default_rng(7).bytes)
    b = split(42, n=5, t=3, rng=np.random.default_rng(7).bytes)
    c = split(42, n=5, t=3, rng=np.random.default_rng(8).bytes)

    assert a == b
    assert a != c


def test_share_bytes_round_trip_and_validation():
    y = PRIME - 1
    assert SHARE_BYTES == 66
    assert share_from_bytes(share_to_bytes(y)) == y
    with pytest.raises(ValueError, match="66 bytes"):
        share_from_bytes(b"\x00" * 65)
    with pytest.raises(ValueError, match="field element"):
        share_from_bytes(b"\xff" * 66)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="t <= n"):
        split(1, n=3, t=4)
    with pytest.raises(ValueError, match="secret"):
        split(PRIME, n=3, t=2)
    with pytest.raises(ValueError, match="distinct"):
        reconstruct([Share(1, 5), Share(1, 6)])
    with pytest.raises(ValueError, match="at least one"):
        reconstruct([])
