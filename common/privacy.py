"""Differential privacy for fedseg: Gaussian mechanisms, zCDP accounting, a ledger.

Layout (after opacus ``accountants/analysis/rdp.py`` under ``accountants/rdp.py``):
keyword-only pure functions do the math and cite their source; `BudgetPlan` splits a
target (ε, δ) over the phases of a run; `PrivacyLedger` only keeps the history of
releases and asks the pure functions for totals.

Neighbouring relation
---------------------
Every guarantee here is for **add/remove one customer**: two datasets are neighbours
when one is the other plus one customer's record (wherever that record lives, on any
node). A customer appears in at most one row of one table; deduplication across nodes
is the deployment's responsibility. Under add/remove the number of customers is itself
private, which is why counts are released with noise too. (Under replace-one
neighbouring the sensitivities below would be larger: a record moving between clusters
changes two sums.)

Accounting
----------
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
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    computed_field,
    field_validator,
    model_validator,
)

Conversion = Literal["bun-steinke", "cks"]
"""ρ-zCDP → (ε, δ)-DP conversion: Bun–Steinke 2016 Prop. 1.3, or Canonne–Kamath–Steinke 2020."""

NEIGHBOURING = "add/remove one customer"

PHASES: tuple[str, ...] = ("quantiles", "preprocessing", "initialization", "lloyd", "profiling", "transitions")
"""Phases of a run that spend budget; ``"lloyd"`` is spent once per round. ``"quantiles"``
(federated histograms) and ``"transitions"`` (warm-start segment changes) only when the
run makes those releases (their weights default to 0)."""

GAUSSIAN_MECHANISMS = frozenset({"gaussian", "distributed-gaussian"})
"""Mechanism names whose ρ the ledger checks against Δ²/(2σ²)."""

_BUDGET_RTOL = 1e-9  # float slack when the planned releases add up to exactly the budget


class PrivacyBudgetExceeded(RuntimeError):
    """A release would spend more ρ than the run's privacy budget allows."""


# --------------------------------------------------------------------------- validation


def check_epsilon(epsilon: float) -> float:
    """Return ``epsilon`` as float; ValueError unless it is a finite number > 0."""
    return _check_positive("epsilon", epsilon)


def check_delta(delta: float) -> float:
    """Return ``delta`` as float; ValueError unless 0 < delta < 1."""
    delta = _as_float("delta", delta)
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be strictly between 0 and 1, got {delta!r}")
    return delta


def check_sigma(sigma: float) -> float:
    """Return ``sigma`` as float; ValueError unless it is a finite number > 0."""
    return _check_positive("sigma (noise standard deviation)", sigma)


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(out):
        raise ValueError(f"{name} must be a number, got NaN")
    return out


def _check_positive(name: str, value: Any) -> float:
    out = _as_float(name, value)
    if not (out > 0.0 and math.isfinite(out)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return out


def _check_nonnegative(name: str, value: Any) -> float:
    out = _as_float(name, value)
    if not (out >= 0.0 and math.isfinite(out)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- accounting


def gaussian_rho(*, sensitivity: float, sigma: float) -> float:
    """zCDP parameter of the Gaussian mechanism: ρ = Δ²/(2σ²).

    Bun & Steinke 2016, Proposition 1.6: adding N(0, σ² I) to a query of L2
    sensitivity Δ is (Δ²/(2σ²))-zCDP.

    Args:
        sensitivity: L2 sensitivity Δ ≥ 0 of the released vector.
        sigma: standard deviation σ > 0 of the noise on each coordinate.
    """
    sensitivity = _check_nonnegative("sensitivity", sensitivity)
    sigma = check_sigma(sigma)
    return sensitivity**2 / (2.0 * sigma**2)


def sigma_for(*, rho: float, sensitivity: float) -> float:
    """Noise standard deviation that makes a Δ-sensitive release ρ-zCDP: σ = Δ/sqrt(2ρ).

    Inverse of `gaussian_rho` (Bun & Steinke 2016, Proposition 1.6).
    """
    rho = _check_positive("rho", rho)
    sensitivity = _check_positive("sensitivity", sensitivity)
    return sensitivity / math.sqrt(2.0 * rho)


def compose_rho(*, rhos: Iterable[float]) -> float:
    """Total ρ of an (adaptive) sequence of zCDP releases: the sum.

    Bun & Steinke 2016, Lemma 1.7 (composition).
    """
    return math.fsum(_check_nonnegative("rho", r) for r in rhos)


def split_rho(*, rho: float, weights: Sequence[float]) -> list[float]:
    """Split a ρ budget into parts proportional to ``weights`` (they compose back to ρ).

    Useful when one release is several vectors (e.g. per-cluster sums and counts).
    """
    rho = _check_nonnegative("rho", rho)
    w = [_check_nonnegative("weight", x) for x in weights]
    total = math.fsum(w)
    if not w or total <= 0.0:
        raise ValueError("weights must contain at least one value > 0")
    return [rho * x / total for x in w]


def epsilon_bun_steinke(*, rho: float, delta: float) -> float:
    """ε = ρ + 2·sqrt(ρ·ln(1/δ)): ρ-zCDP ⇒ (ε, δ)-DP (Bun & Steinke 2016, Prop. 1.3)."""
    rho = _check_nonnegative("rho", rho)
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
    rho = _check_nonnegative("rho", rho)
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


# --------------------------------------------------------------------------- budget plan


class BudgetPlan(BaseModel):
    """How a run's (ε, δ) budget is split over its phases, as ρ per release.

    The total ρ is `rho_from_epsilon` of the target; each phase gets a share
    proportional to its weight, the Lloyd phase ``round_weight × max_rounds`` split
    evenly over its rounds. A run that stops early simply spends less.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    epsilon: float
    delta: float
    preprocessing_weight: float = Field(default=1.0, ge=0)
    initialization_weight: float = Field(default=1.0, ge=0)
    round_weight: float = Field(default=1.0, ge=0)
    max_rounds: int = Field(default=10, ge=0)
    profiling_weight: float = Field(default=1.0, ge=0)
    quantiles_weight: float = Field(default=0.0, ge=0)
    transitions_weight: float = Field(default=0.0, ge=0)
    conversion: Conversion = "bun-steinke"

    @field_validator("epsilon")
    @classmethod
    def _epsilon_positive(cls, v: float) -> float:
        return check_epsilon(v)

    @field_validator("delta")
    @classmethod
    def _delta_in_unit_interval(cls, v: float) -> float:
        return check_delta(v)

    _total_rho: float = PrivateAttr(default=0.0)

    @model_validator(mode="after")
    def _budget(self) -> BudgetPlan:
        if self.total_weight <= 0.0:
            raise ValueError("budget plan: at least one phase needs a weight > 0")
        self._total_rho = rho_from_epsilon(
            epsilon=self.epsilon, delta=self.delta, conversion=self.conversion
        )
        return self

    @property
    def phase_weights(self) -> dict[str, float]:
        """Weight of each whole phase (the Lloyd phase counts all its rounds)."""
        return {
            "quantiles": self.quantiles_weight,
            "preprocessing": self.preprocessing_weight,
            "initialization": self.initialization_weight,
            "lloyd": self.round_weight * self.max_rounds,
            "profiling": self.profiling_weight,
            "transitions": self.transitions_weight,
        }

    @property
    def total_weight(self) -> float:
        return math.fsum(self.phase_weights.values())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_rho(self) -> float:
        """ρ budget of the whole run."""
        return self._total_rho

    def phase_rho(self, phase: str) -> float:
        """ρ of a whole phase (all rounds for ``"lloyd"``)."""
        weights = self.phase_weights
        if phase not in weights:
            raise ValueError(f"unknown phase {phase!r}; expected one of {list(PHASES)}")
        return self.total_rho * weights[phase] / self.total_weight

    def rho_for(self, phase: str) -> float:
        """ρ of one release of ``phase`` (one round for ``"lloyd"``); > 0 or ValueError."""
        rho = self.phase_rho(phase)
        if phase == "lloyd" and self.max_rounds > 0:
            rho /= self.max_rounds
        if rho <= 0.0:
            raise ValueError(f"budget plan gives phase {phase!r} no privacy budget (weight 0)")
        return rho


# --------------------------------------------------------------------------- sensitivities


def _box(lower: Any, upper: Any) -> tuple[np.ndarray, np.ndarray]:
    lo = np.atleast_1d(np.asarray(lower, dtype=float))
    hi = np.atleast_1d(np.asarray(upper, dtype=float))
    if lo.ndim != 1 or lo.shape != hi.shape:
        raise ValueError(
            f"lower and upper must be 1-D with one bound per feature, got shapes "
            f"{lo.shape} and {hi.shape}"
        )
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError("differential privacy needs finite public bounds for every feature")
    if np.any(lo > hi):
        bad = np.flatnonzero(lo > hi).tolist()
        raise ValueError(f"lower bound above upper bound for feature index(es) {bad}")
    return lo, hi


def scaled_bounds(
    *, lower: Any, upper: Any, mean: Any, scale: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Map a public box from original units into the standardised space.

    A record clipped to [lower, upper] and standardised as (x − mean)/scale lies in
    [(lower − mean)/scale, (upper − mean)/scale] per feature (scale > 0). The scaler
    must itself be public (released with DP or fixed in advance), else the box leaks.

    Returns:
        (lower_scaled, upper_scaled), each ndarray of shape (n_features,).
    """
    lo, hi = _box(lower, upper)
    mu = np.broadcast_to(np.asarray(mean, dtype=float), lo.shape)
    sc = np.broadcast_to(np.asarray(scale, dtype=float), lo.shape)
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sc)) and np.all(sc > 0)):
        raise ValueError("scaler mean must be finite and scale finite and > 0")
    return (lo - mu) / sc, (hi - mu) / sc


def max_record_norm(*, lower: Any, upper: Any) -> float:
    """Largest L2 norm of a point in the box: sqrt(Σ_j max(|lo_j|, |hi_j|)²).

    The norm is convex, so its maximum over the box is at a corner, coordinate-wise the
    bound farthest from zero.
    """
    lo, hi = _box(lower, upper)
    return float(np.sqrt(np.sum(np.maximum(np.abs(lo), np.abs(hi)) ** 2)))


def cluster_sum_sensitivity(*, lower: Any, upper: Any, n_groupings: int = 1) -> float:
    """L2 sensitivity of the per-cluster sum vectors, shape (n_clusters, n_features).

    Adding/removing one customer changes exactly one cluster's sum by that customer's
    (clipped, scaled) record x, so Δ = max ‖x‖₂ over the box = `max_record_norm`.
    The same holds for per-bucket sums of an LSH coreset. When one message stacks
    ``n_groupings`` independent partitions (candidate models, hash tables), the record
    enters one group of each: Δ = sqrt(n_groupings)·max ‖x‖₂.

    Args:
        lower, upper: per-feature bounds of a record in the space being summed (the
            scaled space for Lloyd rounds; see `scaled_bounds`), shape (n_features,).
        n_groupings: number of partitions the record is assigned in simultaneously.
    """
    n_groupings = _check_count("n_groupings", n_groupings)
    return math.sqrt(n_groupings) * max_record_norm(lower=lower, upper=upper)


def count_sensitivity(*, n_groupings: int = 1) -> float:
    """L2 sensitivity of cluster/bucket count vectors: 1 per partition, sqrt(n) for n.

    Adding/removing one customer changes one count by 1 in each of ``n_groupings``
    partitions.
    """
    return math.sqrt(_check_count("n_groupings", n_groupings))


def histogram_sensitivity(*, n_tables: int = 1) -> float:
    """L2 sensitivity of bucket (histogram) counts: sqrt(n_tables), i.e. 1 for one table."""
    return count_sensitivity(n_groupings=n_tables)


def score_sum_sensitivity(*, n_scored: int, max_score: float = 5.0) -> float:
    """L2 sensitivity of per-segment sums of 1..``max_score`` scores of ``n_scored`` features.

    A customer adds one score in [1, max_score] per scored feature to one segment:
    Δ = max_score · sqrt(n_scored) (the public range bounds it; nothing is clipped).
    """
    return _check_positive("max_score", max_score) * math.sqrt(_check_count("n_scored", n_scored))


def inertia_sensitivity(*, lower: Any, upper: Any, n_groupings: int = 1) -> float:
    """L2 sensitivity of per-cluster inertia (sum of squared distances to the centroid).

    A customer adds min_c ‖x − c‖² to one cluster. With every centroid inside the box
    (the server clips centroids into it, which is post-processing), this is at most the
    squared box diameter Σ_j (hi_j − lo_j)². Stacked partitions scale by sqrt(n).
    """
    lo, hi = _box(lower, upper)
    n_groupings = _check_count("n_groupings", n_groupings)
    return math.sqrt(n_groupings) * float(np.sum((hi - lo) ** 2))


def feature_sum_sensitivity(*, lower: Any, upper: Any) -> float:
    """L2 sensitivity of the per-feature sums Σ_i x_ij (standardisation), original units.

    One customer adds its clipped record: Δ = sqrt(Σ_j max(|lo_j|, |hi_j|)²). Bounds are
    in the units actually summed (after the schema transform). Summing x − c for a
    public centre c (e.g. the box midpoint) and passing the shifted bounds lowers Δ.
    """
    return max_record_norm(lower=lower, upper=upper)


def feature_sumsq_sensitivity(*, lower: Any, upper: Any) -> float:
    """L2 sensitivity of the per-feature sums of squares Σ_i x_ij².

    One customer adds x_j² ≤ max(lo_j², hi_j²) per feature:
    Δ = sqrt(Σ_j max(lo_j², hi_j²)²).
    """
    lo, hi = _box(lower, upper)
    return float(np.sqrt(np.sum(np.maximum(lo**2, hi**2) ** 2)))


def category_count_sensitivity(*, n_categorical: int) -> float:
    """L2 sensitivity of the category counts of ``n_categorical`` categorical columns.

    A customer adds 1 to exactly one category of each column: Δ = sqrt(n_categorical).
    """
    return math.sqrt(_check_count("n_categorical", n_categorical))


# --------------------------------------------------------------------------- noise


def _shape(shape: Any) -> tuple[int, ...]:
    shp = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    if any(s < 0 for s in shp):
        raise ValueError(f"shape must not have negative sizes, got {shp}")
    return shp


def gaussian_noise(shape: Any, *, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Central Gaussian noise N(0, σ²), ndarray of the given shape.

    Add it to a Δ-sensitive release for ρ = Δ²/(2σ²) (see `sigma_for`).
    """
    return rng.normal(0.0, check_sigma(sigma), size=_shape(shape))


def client_noise_share(
    shape: Any, sigma: float, n_clients: int, rng: np.random.Generator
) -> np.ndarray:
    """One client's share of distributed Gaussian noise: N(0, σ²/n_clients).

    Each of ``n_clients`` clients adds an independent share to its aggregate before
    secure aggregation; the sum of the n shares is N(0, σ²), so the aggregated release
    carries the full noise although no client added it alone. Only valid under secure
    aggregation: a single client's reply is far too lightly noised to be seen alone.

    Dropouts: if fewer than n shares reach the sum, the total variance is only
    (survivors/n)·σ². Pass ``n_clients = n_min``, the smallest number of survivors the
    run tolerates (its minimum node count), so that whenever at least n_min clients
    survive the total variance is ≥ σ². To also tolerate t colluding clients who
    subtract their own shares, use n_min − t (see `noise_share_count`).

    Args:
        shape: shape of the aggregate the noise is added to.
        sigma: standard deviation σ of the total noise wanted on the sum.
        n_clients: number of shares that together make σ² (≥ 1).
        rng: injectable random generator.

    Returns:
        ndarray of the given shape.
    """
    sigma = check_sigma(sigma)
    n_clients = _check_count("n_clients", n_clients)
    return rng.normal(0.0, sigma / math.sqrt(n_clients), size=_shape(shape))


def noise_share_count(*, min_survivors: int, max_colluders: int = 0) -> int:
    """The ``n_clients`` to pass to `client_noise_share`: n_min − t, at least 1.

    With ≥ n_min surviving clients of which at most t collude with the server (and can
    remove their own shares), at least n_min − t honest shares of variance σ²/(n_min − t)
    remain in the sum, so its variance stays ≥ σ².
    """
    min_survivors = _check_count("min_survivors", min_survivors)
    if isinstance(max_colluders, bool) or not isinstance(max_colluders, int | np.integer):
        raise ValueError(f"max_colluders must be an integer >= 0, got {max_colluders!r}")
    if not 0 <= max_colluders < min_survivors:
        raise ValueError(
            f"max_colluders must be >= 0 and below min_survivors ({min_survivors}), "
            f"got {max_colluders}"
        )
    return int(min_survivors - max_colluders)


# --------------------------------------------------------------------------- clipping


def clip_to_bounds(X: Any, lower: Any, upper: Any) -> np.ndarray:
    """Clip each feature of ``X`` into its public bounds [lower_j, upper_j].

    Args:
        X: array-like of shape (n_samples, n_features) or (n_features,).
        lower, upper: per-feature bounds, shape (n_features,) or scalars; ±inf means
            unbounded on that side (no DP guarantee is then possible for that feature).

    Returns:
        float ndarray of the same shape as ``X``; NaNs are left as they are.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim not in (1, 2):
        raise ValueError(f"X must be 1-D or 2-D, got shape {X.shape}")
    n_features = X.shape[-1]
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    lo = np.broadcast_to(lo, (n_features,)) if lo.ndim == 0 else lo
    hi = np.broadcast_to(hi, (n_features,)) if hi.ndim == 0 else hi
    if lo.shape != (n_features,) or hi.shape != (n_features,):
        raise ValueError(
            f"bounds must have one value per feature ({n_features}), got shapes "
            f"{lo.shape} and {hi.shape}"
        )
    if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
        raise ValueError("bounds must not be NaN")
    if np.any(lo > hi):
        bad = np.flatnonzero(lo > hi).tolist()
        raise ValueError(f"lower bound above upper bound for feature index(es) {bad}")
    return np.clip(X, lo, hi)


def clip_rows(X: Any, max_norm: float) -> np.ndarray:
    """Shrink every row of ``X`` whose L2 norm exceeds ``max_norm`` onto that sphere.

    Rows inside the ball are returned unchanged; a row x outside becomes
    x · max_norm/‖x‖ (same direction). After this, adding or removing one row changes a
    sum of rows by a vector of norm at most ``max_norm``: that is the L2 sensitivity of
    any per-group sum of clipped rows (`clipped_sum_sensitivity`), whatever the box.

    Args:
        X: array-like of shape (n_rows, n_features).
        max_norm: radius of the ball, finite and > 0.

    Returns:
        float ndarray of the same shape (a new array).
    """
    max_norm = _check_positive("max_norm", max_norm)
    X = np.array(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    norms = np.linalg.norm(X, axis=1)
    factor = np.minimum(1.0, max_norm / np.maximum(norms, np.finfo(float).tiny))
    return X * factor[:, None]


def clipped_sum_sensitivity(*, max_norm: float, n_groupings: int = 1, box_norm: float | None = None) -> float:
    """L2 sensitivity of per-group sums of rows clipped to L2 norm ``max_norm``.

    One customer's clipped row enters one group of each of ``n_groupings`` stacked
    partitions: Δ = sqrt(n_groupings) · min(max_norm, box_norm), where ``box_norm`` (if
    given) is the largest norm a row of the public box can have anyway
    (`max_record_norm`): clipping never makes a row longer.
    """
    radius = _check_positive("max_norm", max_norm)
    if box_norm is not None:
        radius = min(radius, _check_positive("box_norm", box_norm))
    return math.sqrt(_check_count("n_groupings", n_groupings)) * radius


# --------------------------------------------------------------------------- ledger


class Release(BaseModel):
    """One noisy release recorded in the ledger (public: goes into the artifact)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    index: int = Field(ge=0)
    phase: str = Field(min_length=1)
    mechanism: str = Field(min_length=1)
    rho: float = Field(gt=0)
    sigma: float = Field(gt=0)
    sensitivity: float = Field(gt=0)
    what: str = ""


class PrivacyLedger:
    """History of the DP releases of one run, checked against a `BudgetPlan`.

    Holds state only; totals come from the pure functions above (as opacus'
    ``RDPAccountant`` keeps a history and calls ``analysis.rdp``).
    """

    def __init__(self, plan: BudgetPlan, *, mode: str = "dp") -> None:
        if not isinstance(plan, BudgetPlan):
            raise TypeError("plan must be a BudgetPlan")
        if not mode:
            raise ValueError("mode must be a non-empty string")
        self.plan = plan
        self.mode = mode
        self.history: list[Release] = []

    @property
    def budget_rho(self) -> float:
        return self.plan.total_rho

    @property
    def total_rho(self) -> float:
        """ρ spent so far (Bun & Steinke 2016, Lemma 1.7)."""
        return compose_rho(rhos=(r.rho for r in self.history))

    @property
    def remaining_rho(self) -> float:
        return max(0.0, self.budget_rho - self.total_rho)

    def can_afford(self, rho: float) -> bool:
        return self.total_rho + rho <= self.budget_rho * (1.0 + _BUDGET_RTOL)

    def record(
        self,
        phase: str,
        mechanism: str,
        rho: float,
        sigma: float,
        sensitivity: float,
        what: str,
    ) -> Release:
        """Record a release before it is made; raise if it would break the budget.

        For ``gaussian``/``distributed-gaussian`` mechanisms (σ = std of the total noise
        on the released sum), ``rho`` must be at least Δ²/(2σ²).

        Raises:
            PrivacyBudgetExceeded: the release would take the total ρ over the budget;
                nothing is recorded.
            ValueError: invalid numbers, or ρ understated for a Gaussian mechanism.
        """
        rho = _check_positive("rho", rho)
        sigma = check_sigma(sigma)
        sensitivity = _check_positive("sensitivity", sensitivity)
        if mechanism in GAUSSIAN_MECHANISMS:
            needed = gaussian_rho(sensitivity=sensitivity, sigma=sigma)
            if rho < needed * (1.0 - _BUDGET_RTOL):
                raise ValueError(
                    f"rho {rho!r} understates the cost of a {mechanism} release with "
                    f"sensitivity {sensitivity!r} and sigma {sigma!r} (needs {needed!r})"
                )
        if not self.can_afford(rho):
            raise PrivacyBudgetExceeded(
                f"release {what!r} ({phase}) needs rho={rho:.6g} but only "
                f"{self.remaining_rho:.6g} of the budget rho={self.budget_rho:.6g} "
                f"(epsilon={self.plan.epsilon}, delta={self.plan.delta}) remains"
            )
        release = Release(
            index=len(self.history),
            phase=phase,
            mechanism=mechanism,
            rho=rho,
            sigma=sigma,
            sensitivity=sensitivity,
            what=what,
        )
        self.history.append(release)
        return release

    def epsilon(self, delta: float | None = None) -> float:
        """ε of the releases so far at ``delta`` (default: the plan's δ)."""
        return epsilon_from_rho(
            rho=self.total_rho,
            delta=self.plan.delta if delta is None else delta,
            conversion=self.plan.conversion,
        )

    def to_dict(self) -> dict[str, Any]:
        """The artifact's ``privacy`` section (JSON-ready)."""
        return {
            "mode": self.mode,
            "accounting": "zCDP",
            "neighbouring": NEIGHBOURING,
            "conversion": self.plan.conversion,
            "epsilon": self.epsilon(),
            "delta": self.plan.delta,
            "rho": self.total_rho,
            "budget": {
                "epsilon": self.plan.epsilon,
                "delta": self.plan.delta,
                "rho": self.budget_rho,
            },
            "releases": [r.model_dump() for r in self.history],
        }
