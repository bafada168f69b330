"""The PSI's group arithmetic against independent references: RFC 7748's X25519 vector,
commutativity of blinding, and the padding sizes computed by hand."""

from __future__ import annotations

import pytest

from fedseg.common.psi import group


def test_blinding_is_rfc7748_x25519():
    scalar = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert group.blind(scalar, [u]) == [bytes.fromhex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")]


def test_blinding_commutes_and_separates_ids():
    a, b = bytes(range(32)), bytes(range(1, 33))
    points = group.hash_ids(["ann", "bob", "ann "])
    assert len(set(points)) == 3  # the hash is of the exact text
    assert group.blind(b, group.blind(a, points)) == group.blind(a, group.blind(b, points))
    assert group.blind(a, points) != group.blind(b, points)


def test_a_small_order_point_is_refused():
    with pytest.raises(group.GroupError):
        group.blind(bytes(range(32)), [bytes(32)])  # u = 0: order 1, the result would be zero


@pytest.mark.parametrize("n,padded", [(1, 8), (8, 8), (9, 9), (100, 104), (1000, 1024), (100_000, 106_496)])
def test_padded_sizes_by_hand(n, padded):
    # 100: step 2^(7-4) = 8 -> 13 * 8; 1000: step 64 -> 16 * 64; 100000: step 8192 -> 13 * 8192
    assert group.padded_size(n) == padded
    assert padded - n <= max(7, n / 8)
