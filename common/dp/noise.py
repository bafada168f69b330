"""Noise shares (discrete Gaussian on the fixed-point grid; continuous Gaussian for
analysis) and the clipping of records that bounds what one adds."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fedseg.common.dp.checks import check_count, check_positive, check_sigma
from fedseg.common.dp.discrete_gaussian import RandomBytes, sample_discrete_gaussian
from fedseg.common.secagg import fixed_point

def _shape(shape: Any) -> tuple[int, ...]:
    shp = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    if any(s < 0 for s in shp):
        raise ValueError(f"shape must not have negative sizes, got {shp}")
    return shp


def gaussian_noise(shape: Any, *, sigma: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise N(0, σ²), ndarray of the given shape; σ a scalar or one per entry.

    Add it to a Δ-sensitive release for ρ = Δ²/(2σ²) (see `accounting.sigma_for`).
    """
    std = np.asarray(sigma, dtype=float)
    if std.ndim == 0:
        check_sigma(sigma)
    elif not (np.all(np.isfinite(std)) and np.all(std > 0)):
        raise ValueError("sigma (noise standard deviation) must be finite and > 0 in every entry")
    return rng.normal(0.0, std, size=_shape(shape))


def noise_share_std(*, sigma: float, n_clients: int) -> float:
    """Standard deviation of one node's share of distributed Gaussian noise: σ/sqrt(n).

    Each of ``n_clients`` nodes adds an independent share N(0, σ²/n) to its aggregate
    before secure aggregation; the sum of the n shares is N(0, σ²), so the unmasked sum
    carries the full noise although no node added it alone. Only valid under secure
    aggregation: one node's reply is far too lightly noised to be seen alone.

    Dropouts: if fewer than n shares reach the sum, its variance is only (survivors/n)·σ².
    Pass ``n_clients`` = `noise_share_count` of the fewest survivors the run tolerates,
    so that the variance of the sum stays ≥ σ².
    """
    return check_sigma(sigma) / math.sqrt(check_count("n_clients", n_clients))


def add_noise_shares(
    encoded: Mapping[str, np.ndarray],
    stds: Mapping[str, float | Sequence[float]],
    scales: Mapping[str, float],
    *,
    frac_bits: int,
    max_nodes: int,
    randbytes: RandomBytes = os.urandom,
) -> dict[str, np.ndarray]:
    """A node's encoded reply vectors with its share of the DP noise added on their grid.

    The share of field ``tag`` is a discrete Gaussian N_Z(0, s²) with s = std·2^frac_bits
    / scale: the node's std in the reply's own units, on the fixed-point grid the masked
    sum adds (`discrete_gaussian`; the t − c honest shares sum to variance σ²·4^frac_bits
    / scale², i.e. σ² once decoded and multiplied back by the scale).

    Args:
        encoded: tag -> uint64 fixed-point encoding of the reply divided by its scale.
        stds: tag -> this node's noise std in the reply's own units (`noise_share_std`,
            a scalar or one per entry); tags not listed are not released with noise.
        scales: tag -> the public scale the vector was divided by (the noise follows).
        frac_bits, max_nodes: the run's fixed-point encoding (for the grid and range).
        randbytes: injectable for tests; by default the OS's cryptographic RNG.
    """
    out = dict(encoded)
    for tag, std in stds.items():
        grid_sigma = np.broadcast_to(np.asarray(std, dtype=float) * 2.0**frac_bits / scales[tag], out[tag].shape)
        noise = sample_discrete_gaussian(grid_sigma, randbytes=randbytes)
        out[tag] = fixed_point.add_integers(out[tag], noise, max_nodes=max_nodes)
    return out


def noise_share_count(*, min_survivors: int, max_colluders: int = 0) -> int:
    """The ``n_clients`` to pass to `noise_share_std`: n_min − t, at least 1.

    With ≥ n_min surviving clients of which at most t collude with the server (and can
    remove their own shares), at least n_min − t honest shares of variance σ²/(n_min − t)
    remain in the sum, so its variance stays ≥ σ².
    """
    min_survivors = check_count("min_survivors", min_survivors)
    if isinstance(max_colluders, bool) or not isinstance(max_colluders, int | np.integer):
        raise ValueError(f"max_colluders must be an integer >= 0, got {max_colluders!r}")
    if not 0 <= max_colluders < min_survivors:
        raise ValueError(
            f"max_colluders must be >= 0 and below min_survivors ({min_survivors}), "
            f"got {max_colluders}"
        )
    return int(min_survivors - max_colluders)




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
    any per-group sum of clipped rows (`sensitivity.grouped_sum_sensitivity`), whatever the box.

    Args:
        X: array-like of shape (n_rows, n_features).
        max_norm: radius of the ball, finite and > 0.

    Returns:
        float ndarray of the same shape (a new array).
    """
    max_norm = check_positive("max_norm", max_norm)
    X = np.array(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    norms = np.linalg.norm(X, axis=1)
    factor = np.minimum(1.0, max_norm / np.maximum(norms, np.finfo(float).tiny))
    return X * factor[:, None]

