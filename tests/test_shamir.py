"""Shamir secret sharing: hand-computed shares, threshold behaviour, perfect secrecy."""

from collections import Counter
from itertools import combinations, product

import numpy as np
import pytest

from fedseg.common.secagg.shamir import (
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


# ------------------------------------------------------------- byte secrets, vectorised

from fedseg.common.secagg.shamir import (  # noqa: E402
    DIGIT_PRIME,
    PACKED_SHARE_BYTES,
    combine_shares,
    digits_to_secret,
    lagrange_weights,
    packed_share_from_bytes,
    packed_share_to_bytes,
    InconsistentShares,
    _mulmod,
    combine_many,
    packed_shares_from_blob,
    secret_to_digits,
    split_secret,
    split_secrets,
)


def test_split_secret_matches_hand_evaluated_polynomials():
    # one polynomial per base-p digit: the constant terms are the digits of the
    # secret; the rng's 31-bit words fill the coefficients degree by degree (all
    # digits' degree-1 coefficients first)
    secret = bytes(range(32))
    words = [5, 7, 2**31 - 2] * 9  # 27 words for t = 4, DIGITS = 9
    stream = b"".join(w.to_bytes(4, "big") for w in words)
    shares = split_secret(secret, n=6, t=4, rng=lambda k: stream[:k])
    value, digits = int.from_bytes(secret, "big"), []
    for _ in range(9):
        value, d = divmod(value, 2**31 - 1)
        digits.append(d)
    for x in range(1, 7):
        for k in range(9):
            c = [digits[k], *(words[9 * (i - 1) + k] for i in (1, 2, 3))]
            expected = sum(ci * x**i for i, ci in enumerate(c)) % (2**31 - 1)
            assert shares[x - 1, k] == expected


def test_any_t_shares_of_a_byte_secret_reconstruct_it():
    rng = np.random.default_rng(3)
    secret = rng.bytes(32)
    shares = split_secret(secret, n=7, t=4, rng=rng.bytes)
    for subset in combinations(range(7), 4):
        xs = [i + 1 for i in subset]
        assert combine_shares(lagrange_weights(xs), shares[list(subset)]) == secret
    for extreme in (bytes(32), b"\xff" * 32):
        digits = secret_to_digits(extreme)
        assert digits_to_secret(digits) == extreme
        big = split_secret(extreme, n=300, t=200, rng=rng.bytes)  # large t: no overflow
        assert combine_shares(lagrange_weights(list(range(101, 301))), big[100:]) == extreme


def test_t_minus_one_digit_shares_are_uniform_whatever_the_secret():
    rng = np.random.default_rng(4)
    for secret in (bytes(32), b"\xff" * 32):
        first = np.array([split_secret(secret, n=5, t=3, rng=rng.bytes)[:2] for _ in range(400)])
        top = (first >> 27).ravel()  # top 4 bits of 31-bit digits
        counts = np.bincount(top, minlength=16)
        assert counts.min() > 0.6 * counts.mean()


def test_packed_shares_round_trip_and_reject_malformed():
    share = split_secret(bytes(32), n=3, t=2)[0]
    data = packed_share_to_bytes(share)
    assert len(data) == PACKED_SHARE_BYTES == 36
    assert (packed_share_from_bytes(data) == share).all()
    with pytest.raises(ValueError, match="36 bytes"):
        packed_share_from_bytes(data[:-1])
    with pytest.raises(ValueError, match="field element"):
        packed_share_from_bytes(DIGIT_PRIME.to_bytes(4, "big") + data[4:])
    with pytest.raises(ValueError, match="do not encode"):
        digits_to_secret([DIGIT_PRIME - 1] * 9)  # beyond 2^256 - 1


def test_split_secrets_shares_each_digit_with_its_own_polynomial():
    # two secrets side by side: 18 digit columns; the rng's words fill the coefficients
    # degree by degree across all 18 columns, each column evaluated by hand below
    secrets = [bytes(range(32)), bytes(range(100, 132))]
    words = [(11 * i + 3) % (2**31 - 1) for i in range(18 * 2)]  # t = 3: 2 rows of 18
    stream = b"".join(w.to_bytes(4, "big") for w in words)
    shares = split_secrets(secrets, n=5, t=3, rng=lambda k: stream[:k])
    assert shares.shape == (5, 18)
    digits = secret_to_digits(secrets[0]) + secret_to_digits(secrets[1])
    for x in range(1, 6):
        for k in range(18):
            c = [digits[k], words[k], words[18 + k]]
            assert shares[x - 1, k] == sum(ci * x**i for i, ci in enumerate(c)) % (2**31 - 1)
    weights = lagrange_weights([2, 4, 5])
    for j, secret in enumerate(secrets):
        assert combine_shares(weights, shares[[1, 3, 4], 9 * j : 9 * (j + 1)]) == secret


def test_packed_shares_from_blob_rejects_partial_shares_and_non_field_digits():
    shares = split_secret(bytes(range(32)), n=4, t=2)
    blob = b"".join(packed_share_to_bytes(row) for row in shares)
    assert len(blob) == 4 * 36
    assert (packed_shares_from_blob(blob) == shares).all()
    with pytest.raises(ValueError, match="whole number"):
        packed_shares_from_blob(blob[:-4])
    with pytest.raises(ValueError, match="field element"):
        packed_shares_from_blob(blob[:36] + DIGIT_PRIME.to_bytes(4, "big") + blob[40:])


def test_combine_many_reconstructs_each_secret_and_names_an_inconsistent_one():
    rng = np.random.default_rng(5)
    secrets = [rng.bytes(32) for _ in range(4)]
    shares = [split_secret(secret, n=6, t=3, rng=rng.bytes) for secret in secrets]
    parties = [2, 5, 6]
    stacked = np.stack([np.stack([s[x - 1] for s in shares]) for x in parties])  # (3, 4, 9)

    assert combine_many(lagrange_weights(parties), stacked) == secrets

    # reconstructing f(0) from other points of the same polynomials agrees digit by digit
    for j, s in enumerate(shares):
        assert combine_shares(lagrange_weights([1, 3, 4]), s[[0, 2, 3]]) == secrets[j]
    # all digits p - 1 interpolate to a value beyond 2^256 - 1: not a secret
    bad = stacked.copy()
    bad[:, 2, :] = DIGIT_PRIME - 1  # constant polynomial p - 1 in every digit
    with pytest.raises(InconsistentShares) as info:
        combine_many(lagrange_weights(parties), bad)
    assert info.value.index == 2


@pytest.mark.parametrize("t", [1, 26, 64, 65, 200])  # float64 path up to 64 terms, int64 beyond
def test_mulmod_is_exact_at_the_extremes(t):
    rng = np.random.default_rng(t)
    a = rng.integers(0, DIGIT_PRIME, size=(7, t))
    b = rng.integers(0, DIGIT_PRIME, size=(t, 5))
    a[0], b[:, 0] = DIGIT_PRIME - 1, DIGIT_PRIME - 1  # the largest products
    expected = [[sum(int(x) * int(y) for x, y in zip(row, col)) % DIGIT_PRIME for col in b.T] for row in a]
    assert _mulmod(a, b).tolist() == expected
