"""Tests of common.dp.discrete_gaussian against the discrete Gaussian's pmf computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2

from fedseg.common.dp.accounting import distributed_discrete_gaussian_rho, gaussian_rho
from fedseg.common.dp.discrete_gaussian import sample_discrete_gaussian, uniform_below, uniform_unit


def seeded_bytes(seed: int):
    """Reproducible uniform bytes for a test (the running path reads os.urandom)."""
    rng = np.random.default_rng(seed)
    return lambda n: rng.bytes(n)


def hand_pmf(sigma: float, support: np.ndarray) -> np.ndarray:
    """P(Z = z) = exp(−z²/2σ²) / Σ_y exp(−y²/2σ²), the sum over |y| <= 60σ (the rest < 1e-700)."""
    ys = np.arange(-int(60 * sigma) - 1, int(60 * sigma) + 2)
    norm = math.fsum(math.exp(-y * y / (2 * sigma**2)) for y in ys)
    return np.array([math.exp(-z * z / (2 * sigma**2)) / norm for z in support])


@pytest.mark.parametrize("sigma", [0.8, 1.5, 4.0])
def test_sampler_matches_the_hand_pmf_chi_square(sigma):
    draws = sample_discrete_gaussian(np.full(200_000, sigma), randbytes=seeded_bytes(1))
    assert draws.dtype == np.int64
    edge = int(math.ceil(3 * sigma))
    support = np.arange(-edge, edge + 1)
    p = hand_pmf(sigma, support)
    observed = np.array([np.sum(draws == z) for z in support] + [np.sum(np.abs(draws) > edge)])
    expected = np.append(p, 1.0 - p.sum()) * draws.size
    stat = float(np.sum((observed - expected) ** 2 / expected))
    assert chi2.sf(stat, df=len(expected) - 1) > 1e-3


@pytest.mark.parametrize("sigma", [2.0, 37.5, 1.0e6])
def test_sampler_variance_matches_the_hand_variance(sigma):
    draws = sample_discrete_gaussian(np.full(100_000, sigma), randbytes=seeded_bytes(2))
    if sigma < 100:  # exact variance of N_Z(0, σ²): Σ z² p(z), by hand
        support = np.arange(-int(60 * sigma), int(60 * sigma) + 1)
        var = float(np.sum(support.astype(float) ** 2 * hand_pmf(sigma, support)))
    else:  # below σ² by a factor 1 − O(σ²e^{−4π²σ²}) (CKS20): σ² here
        var = sigma**2
    se = var * math.sqrt(2.0 / draws.size)  # standard error of a sample variance
    assert abs(draws.astype(float).var() - var) < 4 * se
    assert abs(draws.mean()) < 4 * math.sqrt(var / draws.size)


def test_per_entry_sigma_and_shape():
    sigma = np.array([[1.0, 1000.0], [5.0, 1.0e9]])
    draws = sample_discrete_gaussian(np.broadcast_to(sigma, (20_000, 2, 2)), randbytes=seeded_bytes(3))
    assert draws.shape == (20_000, 2, 2) and draws.dtype == np.int64
    np.testing.assert_allclose(draws.std(axis=0), sigma, rtol=0.03)
    with pytest.raises(ValueError, match="sigma"):
        sample_discrete_gaussian([1.0, 0.0])


def test_node_shares_sum_to_the_planned_variance():
    """t − c shares of std σ/sqrt(t − c) each: their sum has variance σ² (integer units)."""
    sigma, shares, draws = 3.0e4, 4, 50_000
    total = sum(sample_discrete_gaussian(np.full(draws, sigma / math.sqrt(shares)), randbytes=seeded_bytes(10 + i))
                for i in range(shares))
    assert total.dtype == np.int64
    assert total.astype(float).std() == pytest.approx(sigma, rel=0.02)


def test_default_source_is_the_os():
    a = sample_discrete_gaussian(np.full(64, 100.0))
    b = sample_discrete_gaussian(np.full(64, 100.0))
    assert not np.array_equal(a, b)


def test_uniform_below_is_exact_and_in_range():
    bounds = np.array([1, 3, 7, 2**40 + 5] * 30_000, dtype=np.int64)
    got = uniform_below(bounds, randbytes=seeded_bytes(4))
    assert np.all((got >= 0) & (got < bounds))
    threes = got[bounds == 3]
    counts = np.bincount(threes, minlength=3)
    stat = float(np.sum((counts - threes.size / 3) ** 2 / (threes.size / 3)))
    assert chi2.sf(stat, df=2) > 1e-3
    u = uniform_unit(10_000, randbytes=seeded_bytes(5))
    assert np.all((u > 0) & (u <= 1))


def test_uniform_below_redraws_words_in_the_biased_range():
    """bound 3: 2^64 mod 3 = 1, so the word 0 is rejected and the next word (5 -> 2) used."""
    words = iter([np.array([0], dtype="<u8").tobytes(), np.array([5], dtype="<u8").tobytes()])
    assert uniform_below(np.array([3]), randbytes=lambda n: next(words)).tolist() == [2]


def test_distributed_rho_kls21_by_hand():
    # large σ: τ underflows, ρ is the continuous Δ²/(2nσ²)
    assert distributed_discrete_gaussian_rho(sensitivity=10.0, sigma_share=50.0, n_shares=4, dim=3) == \
        pytest.approx(gaussian_rho(sensitivity=10.0, sigma=100.0), rel=1e-12)
    # σ = 0.5, n = 2, d = 1: τ = 10·exp(−2π²·0.25·½), ε = min(sqrt(4/(2·0.25) + τ/2), 2/(sqrt 2·0.5) + τ)
    tau = 10 * math.exp(-math.pi**2 / 4)
    eps = min(math.sqrt(8 + tau / 2), 2 / (math.sqrt(2) * 0.5) + tau)
    assert distributed_discrete_gaussian_rho(sensitivity=2.0, sigma_share=0.5, n_shares=2, dim=1) == \
        pytest.approx(eps**2 / 2, rel=1e-12)
    assert eps**2 / 2 > gaussian_rho(sensitivity=2.0, sigma=0.5 * math.sqrt(2))  # the penalty is real
