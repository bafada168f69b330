"""Tests of common.dp.noise: Monte-Carlo noise scales, clipping by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from fedseg.common.dp.accounting import sigma_for
from fedseg.common.dp.noise import clip_to_bounds, gaussian_noise, noise_share_count, noise_share_std


def client_noise_share(shape, sigma, n_clients, rng):
    """One node's share as the running path draws it: planner std, node draw."""
    return gaussian_noise(shape, sigma=noise_share_std(sigma=sigma, n_clients=n_clients), rng=rng)

# ----------------------------------------------------------------------------- noise


def test_summed_client_shares_have_std_sigma_monte_carlo():
    rng = np.random.default_rng(12345)
    sigma, n_clients, draws = 3.0, 7, 20_000
    shares = np.stack(
        [client_noise_share((draws,), sigma, n_clients, rng) for _ in range(n_clients)]
    )
    per_client = np.full(n_clients, sigma / math.sqrt(n_clients))
    assert shares.std(axis=1) == pytest.approx(per_client, rel=0.03)
    total = shares.sum(axis=0)
    assert abs(total.mean()) < 4 * sigma / math.sqrt(draws)
    assert total.std() == pytest.approx(sigma, rel=0.03)


def test_noise_share_count_keeps_sigma_under_dropout_and_collusion_monte_carlo():
    # run tolerates down to 5 survivors, 1 of them colluding: shares sized for 4
    n_shares = noise_share_count(min_survivors=5, max_colluders=1)
    assert n_shares == 4
    rng = np.random.default_rng(7)
    sigma, draws = 2.0, 20_000
    honest = sum(client_noise_share((draws,), sigma, n_shares, rng) for _ in range(4))
    assert honest.std() == pytest.approx(sigma, rel=0.03)  # worst case still has sigma
    with pytest.raises(ValueError, match="max_colluders"):
        noise_share_count(min_survivors=3, max_colluders=3)


def test_gaussian_noise_scale_and_injected_rng():
    sigma = sigma_for(rho=0.125, sensitivity=1.0)  # = 2
    draws = gaussian_noise((20_000,), sigma=sigma, rng=np.random.default_rng(3))
    assert draws.std() == pytest.approx(2.0, rel=0.03)
    again = gaussian_noise((20_000,), sigma=sigma, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(draws, again)
    assert gaussian_noise((2, 3), sigma=1.0, rng=np.random.default_rng(0)).shape == (2, 3)


# ----------------------------------------------------------------------------- clipping


def test_clip_to_bounds_by_hand():
    X = np.array([[-5.0, 0.5, 10.0], [3.0, -1.0, 2.0]])
    got = clip_to_bounds(X, [0.0, -0.5, 1.0], [2.0, 0.5, 5.0])
    assert_allclose(got, [[0.0, 0.5, 5.0], [2.0, -0.5, 2.0]])
    assert_allclose(clip_to_bounds([7.0, -7.0], -1.0, 1.0), [1.0, -1.0])
    one_sided = clip_to_bounds(X, [-np.inf, 0.0, -np.inf], [np.inf, np.inf, 3.0])
    assert_allclose(one_sided, [[-5.0, 0.5, 3.0], [3.0, 0.0, 2.0]])


def test_clip_to_bounds_rejects_bad_bounds():
    X = np.zeros((2, 3))
    with pytest.raises(ValueError, match="one value per feature"):
        clip_to_bounds(X, [0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="above"):
        clip_to_bounds(X, [0.0, 2.0, 0.0], [1.0, 1.0, 1.0])
