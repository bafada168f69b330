"""Tests of common.dp.accounting against independent references.

References: closed forms written out by hand with math.sqrt/log; the exact privacy
profile of the Gaussian mechanism (Balle & Wang 2018, Theorem 8) as a lower bound that
no sound zCDP conversion may beat.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import brentq
from scipy.stats import norm

from fedseg.common.dp.accounting import (
    compose_rho,
    epsilon_bun_steinke,
    epsilon_cks,
    epsilon_from_rho,
    gaussian_rho,
    rho_from_epsilon,
    sigma_for,
    split_rho,
)
from fedseg.common.dp.ledger import BudgetPlan, PrivacyLedger
from fedseg.common.dp.noise import gaussian_noise, noise_share_std

# ----------------------------------------------------------------------------- helpers


def exact_gaussian_epsilon(*, sensitivity: float, sigma: float, delta: float) -> float:
    """Smallest ε for which the Gaussian mechanism is (ε, δ)-DP (Balle & Wang 2018, Thm 8).

    δ(ε) = Φ(Δ/(2σ) − εσ/Δ) − e^ε Φ(−Δ/(2σ) − εσ/Δ), solved for ε.
    """
    a, b = sensitivity / (2 * sigma), sigma / sensitivity

    def gap(eps: float) -> float:
        return norm.cdf(a - eps * b) - math.exp(eps) * norm.cdf(-a - eps * b) - delta

    return brentq(gap, 0.0, 200.0, xtol=1e-12)

# ----------------------------------------------------------------------------- accounting


@pytest.mark.parametrize(
    ("sensitivity", "sigma", "expected"),
    [(1.0, 2.0, 0.125), (3.0, 1.5, 2.0), (2.0, 1.0, 2.0), (0.5, 5.0, 0.005)],
)
def test_gaussian_rho_closed_form(sensitivity, sigma, expected):
    assert gaussian_rho(sensitivity=sensitivity, sigma=sigma) == pytest.approx(expected, rel=1e-12)


def test_sigma_for_inverts_gaussian_rho():
    assert sigma_for(rho=0.125, sensitivity=1.0) == pytest.approx(2.0, rel=1e-12)
    assert sigma_for(rho=2.0, sensitivity=3.0) == pytest.approx(1.5, rel=1e-12)
    sigma = sigma_for(rho=0.037, sensitivity=4.2)
    assert gaussian_rho(sensitivity=4.2, sigma=sigma) == pytest.approx(0.037, rel=1e-12)


def test_bun_steinke_conversion_by_hand():
    # rho = 0.125, delta = 1e-5: 0.125 + 2*sqrt(0.125*11.5129255) = 2.5242630
    expected = 0.125 + 2 * math.sqrt(0.125 * math.log(1e5))
    assert epsilon_bun_steinke(rho=0.125, delta=1e-5) == pytest.approx(expected, rel=1e-12)
    assert epsilon_from_rho(rho=0.125, delta=1e-5) == pytest.approx(2.5242630, abs=1e-6)


def test_zero_rho_is_zero_epsilon():
    assert epsilon_bun_steinke(rho=0.0, delta=1e-6) == 0.0
    assert epsilon_cks(rho=0.0, delta=1e-6) == 0.0


def test_rho_from_epsilon_closed_form_by_hand():
    # eps = 1, delta = 1e-6: L = 13.8155106, (sqrt(14.8155106) - sqrt(13.8155106))^2
    log_inv_delta = math.log(1e6)
    expected = (math.sqrt(1 + log_inv_delta) - math.sqrt(log_inv_delta)) ** 2
    assert rho_from_epsilon(epsilon=1.0, delta=1e-6) == pytest.approx(expected, rel=1e-12)
    assert rho_from_epsilon(epsilon=1.0, delta=1e-6) == pytest.approx(0.0174689, abs=1e-7)


@pytest.mark.parametrize("conversion", ["bun-steinke", "cks"])
@pytest.mark.parametrize(
    ("epsilon", "delta"), [(0.1, 1e-5), (1.0, 1e-6), (3.0, 1e-8), (10.0, 1e-10)]
)
def test_inverse_round_trips(conversion, epsilon, delta):
    rho = rho_from_epsilon(epsilon=epsilon, delta=delta, conversion=conversion)
    back = epsilon_from_rho(rho=rho, delta=delta, conversion=conversion)
    assert back == pytest.approx(epsilon, rel=1e-8)
    assert back <= epsilon * (1 + 1e-12)  # the returned rho never overshoots the target


@pytest.mark.parametrize("rho", [1e-3, 0.01, 0.125, 0.5, 2.0, 10.0])
@pytest.mark.parametrize("delta", [1e-5, 1e-10])
def test_cks_conversion_between_exact_gaussian_and_bun_steinke(rho, delta):
    # The Gaussian mechanism with Delta=1, sigma=1/sqrt(2 rho) is exactly rho-zCDP, so its
    # exact (eps, delta) curve is a lower bound for every sound conversion from rho-zCDP.
    exact = exact_gaussian_epsilon(sensitivity=1.0, sigma=1 / math.sqrt(2 * rho), delta=delta)
    cks = epsilon_cks(rho=rho, delta=delta)
    bs = rho + 2 * math.sqrt(rho * math.log(1 / delta))
    assert exact <= cks < bs
    assert cks / exact < 1.15


@pytest.mark.parametrize(("rho", "delta"), [(0.05, 1e-6), (1.0, 1e-5), (4.0, 1e-9)])
def test_cks_conversion_matches_paper_delta_form_minimised_on_a_grid(rho, delta):
    # CKS 2020, Prop. 12 in its delta form, for the (alpha, alpha*rho)-RDP curve of zCDP:
    #   delta = exp((alpha-1)(alpha*rho - eps)) * (1 - 1/alpha)**alpha / (alpha - 1);
    # solved here for eps at each alpha of a fine grid, then minimised.
    alpha = 1 + np.geomspace(1e-3, 1e4, 200_001)
    eps_alpha = alpha * rho - (
        math.log(delta) + np.log(alpha - 1) - alpha * np.log(1 - 1 / alpha)
    ) / (alpha - 1)
    grid_min = float(eps_alpha.min())
    got = epsilon_cks(rho=rho, delta=delta)
    assert got <= grid_min + 1e-9
    assert got == pytest.approx(grid_min, rel=1e-6)


def test_composition_of_ten_rounds():
    rhos = [gaussian_rho(sensitivity=1.0, sigma=2.0) for _ in range(10)]
    assert compose_rho(rhos=rhos) == pytest.approx(1.25, rel=1e-12)
    # ten releases at sigma equal one release at sigma/sqrt(10)
    one = gaussian_rho(sensitivity=1.0, sigma=2.0 / math.sqrt(10))
    assert compose_rho(rhos=rhos) == pytest.approx(one, rel=1e-12)

    plan = BudgetPlan(epsilon=20.0, delta=1e-6)
    ledger = PrivacyLedger(plan)
    for r in range(10):
        ledger.record("lloyd", "gaussian", 0.125, 2.0, 1.0, f"round {r} sums")
    assert ledger.total_rho == pytest.approx(1.25, rel=1e-12)
    expected_eps = 1.25 + 2 * math.sqrt(1.25 * math.log(1e6))
    assert ledger.epsilon() == pytest.approx(expected_eps, rel=1e-12)
    assert ledger.epsilon(1e-3) == pytest.approx(1.25 + 2 * math.sqrt(1.25 * math.log(1e3)))


def test_split_rho_proportional_and_composes_back():
    parts = split_rho(rho=0.3, weights=[2, 1, 0])
    assert_allclose(parts, [0.2, 0.1, 0.0], rtol=1e-12)
    assert compose_rho(rhos=parts) == pytest.approx(0.3, rel=1e-12)
    with pytest.raises(ValueError, match="weights"):
        split_rho(rho=0.3, weights=[0, 0])

# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("epsilon", [0.0, -1.0, float("nan"), float("inf")])
def test_invalid_epsilon(epsilon):
    with pytest.raises(ValueError, match="epsilon"):
        rho_from_epsilon(epsilon=epsilon, delta=1e-6)
    with pytest.raises(ValueError, match="epsilon"):
        BudgetPlan(epsilon=epsilon, delta=1e-6)


@pytest.mark.parametrize("delta", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_invalid_delta(delta):
    with pytest.raises(ValueError, match="delta"):
        epsilon_from_rho(rho=0.1, delta=delta)
    with pytest.raises(ValueError, match="delta"):
        rho_from_epsilon(epsilon=1.0, delta=delta)
    with pytest.raises(ValueError, match="delta"):
        BudgetPlan(epsilon=1.0, delta=delta)


@pytest.mark.parametrize("sigma", [0.0, -2.0, float("nan")])
def test_invalid_sigma(sigma):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_rho(sensitivity=1.0, sigma=sigma)
    with pytest.raises(ValueError, match="sigma"):
        noise_share_std(sigma=sigma, n_clients=4)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_noise((3,), sigma=sigma, rng=rng)


def test_invalid_rho_and_counts():
    with pytest.raises(ValueError, match="rho"):
        sigma_for(rho=0.0, sensitivity=1.0)
    with pytest.raises(ValueError, match="n_clients"):
        noise_share_std(sigma=1.0, n_clients=0)
    with pytest.raises(ValueError, match="unknown conversion"):
        epsilon_from_rho(rho=0.1, delta=1e-6, conversion="moments")
