"""Tests of common.privacy against independent references.

References: closed forms written out by hand with math.sqrt/log; the exact privacy
profile of the Gaussian mechanism (Balle & Wang 2018, Theorem 8) as a lower bound that
no sound zCDP conversion may beat; brute force over neighbouring datasets for
sensitivities; Monte-Carlo for noise scales.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import brentq
from scipy.stats import norm

from fedseg.common.privacy import (
    BudgetPlan,
    PrivacyBudgetExceeded,
    PrivacyLedger,
    category_count_sensitivity,
    client_noise_share,
    clip_to_bounds,
    cluster_sum_sensitivity,
    compose_rho,
    count_sensitivity,
    epsilon_bun_steinke,
    epsilon_cks,
    epsilon_from_rho,
    feature_sum_sensitivity,
    feature_sumsq_sensitivity,
    gaussian_noise,
    gaussian_rho,
    histogram_sensitivity,
    inertia_sensitivity,
    noise_share_count,
    rho_from_epsilon,
    scaled_bounds,
    score_sum_sensitivity,
    sigma_for,
    split_rho,
)

# ----------------------------------------------------------------------------- helpers


def exact_gaussian_epsilon(*, sensitivity: float, sigma: float, delta: float) -> float:
    """Smallest ε for which the Gaussian mechanism is (ε, δ)-DP (Balle & Wang 2018, Thm 8).

    δ(ε) = Φ(Δ/(2σ) − εσ/Δ) − e^ε Φ(−Δ/(2σ) − εσ/Δ), solved for ε.
    """
    a, b = sensitivity / (2 * sigma), sigma / sensitivity

    def gap(eps: float) -> float:
        return norm.cdf(a - eps * b) - math.exp(eps) * norm.cdf(-a - eps * b) - delta

    return brentq(gap, 0.0, 200.0, xtol=1e-12)


def local_cluster_stats(X: np.ndarray, centroids: np.ndarray):
    """Per-cluster sums, counts, inertia of X against centroids (written for the test)."""
    k = centroids.shape[0]
    d2 = ((X[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    labels = d2.argmin(axis=1)
    sums = np.zeros_like(centroids)
    counts = np.zeros(k)
    inertia = np.zeros(k)
    for i, c in enumerate(labels):
        sums[c] += X[i]
        counts[c] += 1
        inertia[c] += d2[i, c]
    return sums, counts, inertia


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


# ----------------------------------------------------------------------------- budget plan


def test_budget_plan_shares_by_hand():
    plan = BudgetPlan(
        epsilon=1.0,
        delta=1e-6,
        preprocessing_weight=1.0,
        initialization_weight=2.0,
        round_weight=0.5,
        max_rounds=8,
        profiling_weight=1.0,
    )
    total = (math.sqrt(1 + math.log(1e6)) - math.sqrt(math.log(1e6))) ** 2
    # weights: 1 + 2 + 0.5*8 + 1 = 8
    assert plan.total_rho == pytest.approx(total, rel=1e-12)
    assert plan.rho_for("preprocessing") == pytest.approx(total / 8, rel=1e-12)
    assert plan.rho_for("initialization") == pytest.approx(total * 2 / 8, rel=1e-12)
    assert plan.rho_for("lloyd") == pytest.approx(total * 0.5 / 8, rel=1e-12)
    assert plan.phase_rho("lloyd") == pytest.approx(total * 4 / 8, rel=1e-12)
    assert plan.rho_for("profiling") == pytest.approx(total / 8, rel=1e-12)
    assert plan.model_dump()["total_rho"] == pytest.approx(total, rel=1e-12)


def test_budget_plan_quantile_and_transition_shares_by_hand():
    plan = BudgetPlan(epsilon=2.0, delta=1e-6, preprocessing_weight=1.0, initialization_weight=2.0,
                      round_weight=0.5, max_rounds=10, profiling_weight=1.0,
                      quantiles_weight=1.0, transitions_weight=1.0)
    total = (math.sqrt(2 + math.log(1e6)) - math.sqrt(math.log(1e6))) ** 2
    # weights: 1 + 1 + 2 + 0.5*10 + 1 + 1 = 11
    assert plan.rho_for("quantiles") == pytest.approx(total / 11, rel=1e-12)
    assert plan.rho_for("transitions") == pytest.approx(total / 11, rel=1e-12)
    assert plan.rho_for("preprocessing") == pytest.approx(total / 11, rel=1e-12)
    assert sum(plan.phase_rho(p) for p in plan.phase_weights) == pytest.approx(total, rel=1e-12)
    # unused by default: no share taken from the other phases
    with pytest.raises(ValueError, match="no privacy budget"):
        BudgetPlan(epsilon=2.0, delta=1e-6).rho_for("quantiles")


def test_score_sum_sensitivity_by_brute_force():
    """Adding a customer with scores in 1..5 to one segment moves the per-segment score
    sums by at most 5·sqrt(n_scored), attained by all-5 scores."""
    rng = np.random.default_rng(4)
    worst = 0.0
    for _ in range(200):
        change = np.zeros((3, 2))  # 3 segments, 2 scored features
        change[rng.integers(3)] = rng.integers(1, 6, size=2)
        worst = max(worst, float(np.linalg.norm(change)))
    worst = max(worst, float(np.linalg.norm([5.0, 5.0])))
    assert score_sum_sensitivity(n_scored=2) == pytest.approx(worst) == pytest.approx(5 * math.sqrt(2))
    assert histogram_sensitivity(n_tables=3) == pytest.approx(math.sqrt(3))  # one bin per feature


def test_budget_plan_with_cks_gives_more_rho():
    bs = BudgetPlan(epsilon=2.0, delta=1e-7)
    cks = BudgetPlan(epsilon=2.0, delta=1e-7, conversion="cks")
    assert cks.total_rho > bs.total_rho
    assert epsilon_cks(rho=cks.total_rho, delta=1e-7) == pytest.approx(2.0, rel=1e-8)


def test_budget_plan_rejects_unknown_or_empty_phase():
    plan = BudgetPlan(epsilon=1.0, delta=1e-6, profiling_weight=0.0)
    with pytest.raises(ValueError, match="no privacy budget"):
        plan.rho_for("profiling")
    with pytest.raises(ValueError, match="unknown phase"):
        plan.rho_for("handshake")
    with pytest.raises(ValueError, match="weight > 0"):
        BudgetPlan(
            epsilon=1.0,
            delta=1e-6,
            preprocessing_weight=0,
            initialization_weight=0,
            round_weight=0,
            profiling_weight=0,
        )


# ----------------------------------------------------------------------------- ledger


def _spend_plan(ledger: PrivacyLedger, plan: BudgetPlan, sensitivity: float = 1.0) -> None:
    phases = ["preprocessing", "initialization", *["lloyd"] * plan.max_rounds, "profiling"]
    for i, phase in enumerate(phases):
        rho = plan.rho_for(phase)
        sigma = sigma_for(rho=rho, sensitivity=sensitivity)
        ledger.record(phase, "distributed-gaussian", rho, sigma, sensitivity, f"release {i}")


def test_ledger_accepts_the_whole_plan_then_refuses_more():
    plan = BudgetPlan(epsilon=1.0, delta=1e-6, max_rounds=7, initialization_weight=3.0)
    ledger = PrivacyLedger(plan)
    _spend_plan(ledger, plan)
    assert len(ledger.history) == 10
    assert ledger.total_rho == pytest.approx(plan.total_rho, rel=1e-12)
    assert ledger.epsilon() == pytest.approx(1.0, rel=1e-9)

    with pytest.raises(PrivacyBudgetExceeded, match="budget"):
        ledger.record("lloyd", "gaussian", 1e-6, 1000.0, 1.0, "one round too many")
    assert len(ledger.history) == 10  # nothing recorded


def test_ledger_refuses_single_over_budget_release():
    plan = BudgetPlan(epsilon=0.5, delta=1e-5)
    ledger = PrivacyLedger(plan)
    too_much = plan.total_rho * 1.01
    with pytest.raises(PrivacyBudgetExceeded):
        sigma = sigma_for(rho=too_much, sensitivity=1.0)
        ledger.record("preprocessing", "gaussian", too_much, sigma, 1.0, "sums")
    assert ledger.history == []
    assert ledger.total_rho == 0.0


def test_ledger_rejects_understated_gaussian_rho():
    ledger = PrivacyLedger(BudgetPlan(epsilon=5.0, delta=1e-6))
    # Delta=1, sigma=2 costs 0.125; claiming 0.1 must fail
    with pytest.raises(ValueError, match="understates"):
        ledger.record("lloyd", "gaussian", 0.1, 2.0, 1.0, "sums")
    with pytest.raises(ValueError, match="sigma"):
        ledger.record("lloyd", "gaussian", 0.125, 0.0, 1.0, "sums")
    assert ledger.history == []


def test_ledger_to_dict_is_the_artifact_privacy_section():
    plan = BudgetPlan(epsilon=2.0, delta=1e-6, max_rounds=3)
    ledger = PrivacyLedger(plan, mode="secure+dp")
    ledger.record("preprocessing", "distributed-gaussian", 0.02, 5.0, 1.0, "feature sums")
    sigma = math.sqrt(29 / 0.06)  # Delta = sqrt(29), rho = 0.03
    ledger.record("lloyd", "distributed-gaussian", 0.03, sigma, math.sqrt(29), "round 0")
    out = json.loads(json.dumps(ledger.to_dict()))
    assert out["mode"] == "secure+dp"
    assert out["delta"] == 1e-6
    assert out["rho"] == pytest.approx(0.05, rel=1e-12)
    assert out["epsilon"] == pytest.approx(0.05 + 2 * math.sqrt(0.05 * math.log(1e6)), rel=1e-12)
    assert out["budget"]["epsilon"] == 2.0
    assert out["neighbouring"] == "add/remove one customer"
    assert [r["what"] for r in out["releases"]] == ["feature sums", "round 0"]
    assert out["releases"][1]["sensitivity"] == pytest.approx(math.sqrt(29))
    assert set(out["releases"][0]) >= {"phase", "mechanism", "rho", "sigma", "sensitivity", "what"}


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
        client_noise_share((3,), sigma, 4, rng)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_noise((3,), sigma=sigma, rng=rng)


def test_invalid_rho_and_counts():
    with pytest.raises(ValueError, match="rho"):
        sigma_for(rho=0.0, sensitivity=1.0)
    with pytest.raises(ValueError, match="n_clients"):
        client_noise_share((3,), 1.0, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown conversion"):
        epsilon_from_rho(rho=0.1, delta=1e-6, conversion="moments")


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


# ----------------------------------------------------------------------------- sensitivities

BOX_LO = np.array([-1.0, -3.0, 0.5])
BOX_HI = np.array([2.0, 1.0, 4.0])
# farthest corner from 0: (2, -3, 4) -> sqrt(4 + 9 + 16) = sqrt(29)


def _corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.array(list(itertools.product(*zip(lo, hi, strict=True))))


def test_cluster_sum_sensitivity_hand_made_box():
    assert cluster_sum_sensitivity(lower=BOX_LO, upper=BOX_HI) == pytest.approx(math.sqrt(29))
    assert cluster_sum_sensitivity(lower=BOX_LO, upper=BOX_HI, n_groupings=3) == pytest.approx(
        math.sqrt(3 * 29)
    )


def test_cluster_stats_sensitivities_by_brute_force_add_remove():
    rng = np.random.default_rng(0)
    D = rng.uniform(BOX_LO, BOX_HI, size=(40, 3))
    candidates = [rng.uniform(BOX_LO, BOX_HI, size=(k, 3)) for k in (2, 3, 4)]
    added = np.vstack([_corners(BOX_LO, BOX_HI), rng.uniform(BOX_LO, BOX_HI, size=(200, 3))])

    def stacked(X):
        stats = [local_cluster_stats(X, C) for C in candidates]
        sums = np.concatenate([s.ravel() for s, _, _ in stats])
        counts = np.concatenate([c for _, c, _ in stats])
        inertia = np.concatenate([i for _, _, i in stats])
        return sums, counts, inertia

    base_one = local_cluster_stats(D, candidates[0])
    base = stacked(D)
    worst_one = worst_sum = worst_count = worst_inertia = 0.0
    for x in added:
        D2 = np.vstack([D, x])
        one = local_cluster_stats(D2, candidates[0])
        worst_one = max(worst_one, np.linalg.norm(one[0] - base_one[0]))
        s, c, i = stacked(D2)
        worst_sum = max(worst_sum, np.linalg.norm(s - base[0]))
        worst_count = max(worst_count, np.linalg.norm(c - base[1]))
        worst_inertia = max(worst_inertia, np.linalg.norm(i - base[2]))

    # the worst added customer attains the bound exactly
    assert worst_one == pytest.approx(cluster_sum_sensitivity(lower=BOX_LO, upper=BOX_HI))
    stacked_bound = cluster_sum_sensitivity(lower=BOX_LO, upper=BOX_HI, n_groupings=3)
    assert worst_sum == pytest.approx(stacked_bound)
    assert worst_count == pytest.approx(count_sensitivity(n_groupings=3))
    assert count_sensitivity(n_groupings=3) == pytest.approx(math.sqrt(3))
    assert count_sensitivity() == 1.0
    assert worst_inertia <= inertia_sensitivity(lower=BOX_LO, upper=BOX_HI, n_groupings=3) + 1e-12


def test_inertia_sensitivity_hand_made_box_and_attained():
    # widths 3, 4, 3.5 -> 9 + 16 + 12.25
    bound = inertia_sensitivity(lower=BOX_LO, upper=BOX_HI)
    assert bound == pytest.approx(37.25)
    # one centroid at a corner, the customer at the opposite corner
    _, _, inertia = local_cluster_stats(BOX_HI[None, :], BOX_LO[None, :])
    assert inertia[0] == pytest.approx(bound)


def test_feature_sum_and_sumsq_sensitivities_by_hand_and_brute_force():
    lo, hi = np.array([-2.0, 1.0]), np.array([1.0, 3.0])
    # sums: max |x| = (2, 3) -> sqrt(13); squares: max x^2 = (4, 9) -> sqrt(16 + 81)
    assert feature_sum_sensitivity(lower=lo, upper=hi) == pytest.approx(math.sqrt(13))
    assert feature_sumsq_sensitivity(lower=lo, upper=hi) == pytest.approx(math.sqrt(97))
    rng = np.random.default_rng(1)
    points = np.vstack([_corners(lo, hi), rng.uniform(lo, hi, size=(500, 2)), [[0.0, 1.0]]])
    assert np.linalg.norm(points, axis=1).max() == pytest.approx(math.sqrt(13))
    assert np.linalg.norm(points**2, axis=1).max() == pytest.approx(math.sqrt(97))


def test_count_like_sensitivities():
    assert category_count_sensitivity(n_categorical=3) == pytest.approx(math.sqrt(3))
    assert histogram_sensitivity() == 1.0
    assert histogram_sensitivity(n_tables=4) == 2.0


def test_scaled_bounds_contain_standardised_clipped_records():
    lo_s, hi_s = scaled_bounds(
        lower=[0.0, 10.0], upper=[100.0, 20.0], mean=[50.0, 12.0], scale=[25.0, 4.0]
    )
    assert_allclose(lo_s, [-2.0, -0.5])
    assert_allclose(hi_s, [2.0, 2.0])
    assert cluster_sum_sensitivity(lower=lo_s, upper=hi_s) == pytest.approx(math.sqrt(8))
    rng = np.random.default_rng(2)
    raw = rng.normal([50, 15], [80, 10], size=(1000, 2))
    z = (clip_to_bounds(raw, [0.0, 10.0], [100.0, 20.0]) - [50.0, 12.0]) / [25.0, 4.0]
    assert np.all(z >= lo_s - 1e-12) and np.all(z <= hi_s + 1e-12)


def test_sensitivity_needs_finite_ordered_bounds():
    with pytest.raises(ValueError, match="finite"):
        cluster_sum_sensitivity(lower=[0.0, -np.inf], upper=[1.0, 1.0])
    with pytest.raises(ValueError, match="above"):
        feature_sum_sensitivity(lower=[2.0], upper=[1.0])
    with pytest.raises(ValueError, match="n_groupings"):
        cluster_sum_sensitivity(lower=[0.0], upper=[1.0], n_groupings=0)


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
