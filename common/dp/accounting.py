"""zCDP arithmetic: pure, keyword-only functions that cite their source.

After opacus ``accountants/analysis/rdp.py``: the state (`ledger.PrivacyLedger`) only
keeps a history and calls these.

Zero-concentrated DP (Bun & Steinke, "Concentrated Differential Privacy:
Simplifications, Extensions, and Lower Bounds", TCC 2016, arXiv:1605.02065):

* Gaussian mechanism, L2 sensitivity Δ, noise N(0, σ²) per coordinate: ρ = Δ²/(2σ²)
  (Proposition 1.6).
* Composition: ρ adds up (Lemma 1.7), also adaptively.
* ρ-zCDP ⇒ (ε, δ)-DP with ε = ρ + 2·sqrt(ρ·ln(1/δ)) (Proposition 1.3). This is the
  default conversion (``"bun-steinke"``).
* Optional improved conversion (``"cks"``): Canonne, Kamath & Steinke, "The Discrete
  Gaussian for Differential Privacy", NeurIPS 2020, arXiv:2004.00010, Proposition 12 /
  Corollary 13 (Section 2.3): for every α > 1, ρ-zCDP implies (ε_α, δ)-DP with
  ε_α = αρ + ln(1 − 1/α) − (ln δ + ln α)/(α − 1); we minimise ε_α over α numerically.
  Every α gives a valid guarantee, so an imperfect minimum is only less tight, never
  wrong. It is never worse than the Bun–Steinke bound.

Post-processing (dividing sums by counts, k-means++ on noisy bucket means, clipping
centroids back into the box) costs no privacy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

from fedseg.common.dp.checks import check_delta, check_epsilon, check_nonnegative, check_positive, check_sigma

Conversion = Literal["bun-steinke", "cks"]
"""ρ-zCDP → (ε, δ)-DP conversion: Bun–Steinke 2016 Prop. 1.3, or Canonne–Kamath–Steinke 2020."""

def gaussian_rho(*, sensitivity: float, sigma: float) -> float:
    """zCDP parameter of the Gaussian mechanism: ρ = Δ²/(2σ²).

    Bun & Steinke 2016, Proposition 1.6: adding N(0, σ² I) to a query of L2
    sensitivity Δ is (Δ²/(2σ²))-zCDP.

    Args:
        sensitivity: L2 sensitivity Δ ≥ 0 of the released vector.
        sigma: standard deviation σ > 0 of the noise on each coordinate.
    """
    sensitivity = check_nonnegative("sensitivity", sensitivity)
    sigma = check_sigma(sigma)
    return sensitivity**2 / (2.0 * sigma**2)


def sigma_for(*, rho: float, sensitivity: float) -> float:
    """Noise standard deviation that makes a Δ-sensitive release ρ-zCDP: σ = Δ/sqrt(2ρ).

    Inverse of `gaussian_rho` (Bun & Steinke 2016, Proposition 1.6).
    """
    rho = check_positive("rho", rho)
    sensitivity = check_positive("sensitivity", sensitivity)
    return sensitivity / math.sqrt(2.0 * rho)


def distributed_discrete_gaussian_rho(*, sensitivity: float, sigma_share: float, n_shares: int, dim: int) -> float:
    """zCDP ρ of a sum of ``n_shares`` independent N_Z(0, σ²)^dim shares added to an
    integer query of L2 sensitivity Δ (all in grid units).

    Kairouz, Liu & Steinke, "The Distributed Discrete Gaussian Mechanism for Federated
    Learning with Secure Aggregation", ICML 2021, arXiv:2102.06387, Theorem 11: the sum
    is ½ε²-zCDP with ε = min(sqrt(Δ²/(nσ²) + ½τd), Δ/(sqrt(n)σ) + τ·sqrt(d)),
    τ = 10 Σ_{k=1}^{n−1} exp(−2π²σ²·k/(k+1)). The excess over the continuous
    Δ²/(2nσ²) is the price of the sum of discrete Gaussians not being one: for σ ≥ 1
    grid unit it is below 10(n−1)e^{−π²}d/4, for the σ of 10^5+ units our encodings
    give it underflows to 0.
    """
    sensitivity = check_nonnegative("sensitivity", sensitivity)
    sigma_share = check_sigma(sigma_share)
    if n_shares < 1 or dim < 1:
        raise ValueError(f"n_shares and dim must be >= 1, got {n_shares} and {dim}")
    s2 = sigma_share**2
    tau = 10.0 * math.fsum(math.exp(-2.0 * math.pi**2 * s2 * k / (k + 1)) for k in range(1, n_shares))
    eps = min(math.sqrt(sensitivity**2 / (n_shares * s2) + 0.5 * tau * dim),
              sensitivity / (math.sqrt(n_shares) * sigma_share) + tau * math.sqrt(dim))
    return 0.5 * eps**2


def compose_rho(*, rhos: Iterable[float]) -> float:
    """Total ρ of an (adaptive) sequence of zCDP releases: the sum.

    Bun & Steinke 2016, Lemma 1.7 (composition).
    """
    return math.fsum(check_nonnegative("rho", r) for r in rhos)


def split_rho(*, rho: float, weights: Sequence[float]) -> list[float]:
    """Split a ρ budget into parts proportional to ``weights`` (they compose back to ρ).

    Useful when one release is several vectors (e.g. per-cluster sums and counts).
    """
    rho = check_nonnegative("rho", rho)
    w = [check_nonnegative("weight", x) for x in weights]
    total = math.fsum(w)
    if not w or total <= 0.0:
        raise ValueError("weights must contain at least one value > 0")
    return [rho * x / total for x in w]


def epsilon_bun_steinke(*, rho: float, delta: float) -> float:
    """ε = ρ + 2·sqrt(ρ·ln(1/δ)): ρ-zCDP ⇒ (ε, δ)-DP (Bun & Steinke 2016, Prop. 1.3)."""
    rho = check_nonnegative("rho", rho)
    delta = check_delta(delta)
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def epsilon_cks(*, rho: float, delta: float) -> float:
    """ε of the improved zCDP → (ε, δ)-DP conversion, minimised numerically over α.

    Canonne, Kamath & Steinke 2020 (arXiv:2004.00010), Proposition 12 with the
    (α, αρ)-Rényi-DP curve of ρ-zCDP (Corollary 13): for every α > 1,

        ε_α = αρ + ln(1 − 1/α) − (ln δ + ln α)/(α − 1).

    The minimum is searched on a log grid of α − 1 around the Bun–Steinke optimum
    α* − 1 = sqrt(ln(1/δ)/ρ), then refined by golden-section search. Any α is valid,
    so the result is a sound bound; it is never larger than `epsilon_bun_steinke`.
    """
    rho = check_nonnegative("rho", rho)
    delta = check_delta(delta)
    if rho == 0.0:
        return 0.0
    log_delta = math.log(delta)

    def eps_at(t: np.ndarray | float) -> np.ndarray | float:
        am1 = np.exp(t)  # α − 1 > 0
        alpha = 1.0 + am1
        return alpha * rho + (np.log(am1) - np.log(alpha)) - (log_delta + np.log(alpha)) / am1

    t0 = 0.5 * math.log(-log_delta / rho)
    grid = np.linspace(t0 - 12.0, t0 + 12.0, 2401)
    values = eps_at(grid)
    i = int(np.nanargmin(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    invphi = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(80):
        c = hi - invphi * (hi - lo)
        d = lo + invphi * (hi - lo)
        if eps_at(c) <= eps_at(d):
            hi = d
        else:
            lo = c
    best = min(float(values[i]), float(eps_at(0.5 * (lo + hi))))
    return max(0.0, min(best, epsilon_bun_steinke(rho=rho, delta=delta)))


def epsilon_from_rho(*, rho: float, delta: float, conversion: Conversion = "bun-steinke") -> float:
    """ε such that ρ-zCDP implies (ε, δ)-DP, with the chosen conversion."""
    if conversion == "bun-steinke":
        return epsilon_bun_steinke(rho=rho, delta=delta)
    if conversion == "cks":
        return epsilon_cks(rho=rho, delta=delta)
    raise ValueError(f"unknown conversion {conversion!r}; expected 'bun-steinke' or 'cks'")


def rho_from_epsilon(
    *, epsilon: float, delta: float, conversion: Conversion = "bun-steinke"
) -> float:
    """Largest total ρ whose (ε, δ)-DP conversion stays within the target ε.

    Bun–Steinke: closed form, solving ε = ρ + 2·sqrt(ρ·L) with L = ln(1/δ) for sqrt(ρ):
    ρ = (sqrt(ε + L) − sqrt(L))².  CKS: bisection on ρ (ε_cks is increasing in ρ),
    starting from the Bun–Steinke ρ, which is always feasible; returns the feasible end.
    """
    epsilon = check_epsilon(epsilon)
    delta = check_delta(delta)
    log_inv_delta = math.log(1.0 / delta)
    rho_bs = (math.sqrt(epsilon + log_inv_delta) - math.sqrt(log_inv_delta)) ** 2
    if conversion == "bun-steinke":
        return rho_bs
    if conversion != "cks":
        raise ValueError(f"unknown conversion {conversion!r}; expected 'bun-steinke' or 'cks'")
    lo, hi = rho_bs, 2.0 * rho_bs
    while epsilon_cks(rho=hi, delta=delta) <= epsilon:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        if hi - lo <= 1e-13 * hi:
            break
        mid = 0.5 * (lo + hi)
        if epsilon_cks(rho=mid, delta=delta) <= epsilon:
            lo = mid
        else:
            hi = mid
    return lo

