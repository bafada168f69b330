"""Per-segment clip limits of DP profile sums, from figures the run already released.

The noise on a DP segment mean is proportional to the half-width of the range each
customer's value is clipped to. The public box is far wider than any one segment
(frequency 1-500 for segments whose members buy 3-30 times), so the box alone makes
the noise several within-segment standard deviations. The released centroids and the
released scaler say where each segment sits and how wide the population is: the limits
below are the segment's centroid ± SPREAD population standard deviations on the
scale the run clusters on (± SPREAD_LOG on the log1p scale of money: there the
population's spread is mostly between segments, ~3 x a segment's own), mapped back to
original units and held inside the given limits. Only released figures go in:
post-processing, no budget. These limits bound the first of the two DP profile
exchanges (`phases.segment_spread`: each segment's mean absolute deviation around its
centroid); `spread_limits` then narrows them to each segment's own spread for the
profile sums. Clipping bias and noise, measured: BENCHMARKS.md, "What a marketer reads
under DP".
"""

from __future__ import annotations

import numpy as np

from fedseg.common.dp.sensitivity import transformed_box
from fedseg.common.schema import FeatureSchema

SPREAD = 3.0  # population standard deviations either side of a segment's centroid
SPREAD_LOG = 2.0  # the same on the log1p scale of money (a factor e^2 = 7.4 either side at spread 1)
DEVIATIONS = 6.0  # (high) mean absolute deviations either side of the centre (`spread_limits`)


def centroid_limits(schema: FeatureSchema, mean: np.ndarray, scale: np.ndarray, centroids: np.ndarray,
                    outer: np.ndarray) -> np.ndarray:
    """Clip limits per segment in original units, shape (k, 2, p), inside `outer` (2, p).

    `mean`/`scale` are the released scaler (encoded features, numerics first),
    `centroids` the released centroids (k, d) in the scaled space."""
    p = len(schema.numeric)
    mu, sd = np.asarray(mean, dtype=float)[:p], np.asarray(scale, dtype=float)[:p]
    centre = np.asarray(centroids, dtype=float)[:, :p] * sd + mu  # (k, p), transformed scale
    log = np.array([f.transform == "log1p" for f in schema.numeric], dtype=bool)
    spread = np.where(log, SPREAD_LOG, SPREAD)
    t_lo, t_hi = (np.asarray(b, dtype=float) for b in transformed_box(schema))
    lo = np.clip(centre - spread * sd, t_lo, t_hi)
    hi = np.clip(centre + spread * sd, t_lo, t_hi)
    lo[:, log], hi[:, log] = np.expm1(lo[:, log]), np.expm1(hi[:, log])
    lo = np.clip(lo, outer[0], outer[1])
    hi = np.clip(hi, lo, outer[1])
    return np.stack([lo, hi], axis=1)


def centres_in_original_units(schema: FeatureSchema, mean: np.ndarray, scale: np.ndarray,
                              centroids: np.ndarray) -> np.ndarray:
    """The released centroids' numeric coordinates in original units (k, p)."""
    p = len(schema.numeric)
    centre = np.asarray(centroids, dtype=float)[:, :p] * np.asarray(scale, dtype=float)[:p] + np.asarray(mean)[:p]
    t_lo, t_hi = (np.asarray(b, dtype=float) for b in transformed_box(schema))
    centre = np.clip(centre, t_lo, t_hi)
    log = np.array([f.transform == "log1p" for f in schema.numeric], dtype=bool)
    centre[:, log] = np.expm1(centre[:, log])
    return centre


def spread_limits(limits: np.ndarray, centres: np.ndarray, counts: np.ndarray, deviations: np.ndarray,
                  sigma_counts: float, sigma_deviations: np.ndarray, factor: float = DEVIATIONS) -> np.ndarray:
    """Limits (k, 2, p) tightened to centre ± `factor` × a high estimate of each
    segment's mean absolute deviation around its centre, inside `limits`.

    From the noisy spread release (`phases.segment_spread`), post-processing: the
    deviation sum plus 1σ of its noise over the count minus 2σ of its noise, so noise
    seldom makes the range too narrow (too narrow biases the mean, too wide only adds
    noise). For a normal feature the mean absolute deviation is 0.8 sd, so factor 6
    clips beyond ~4.8 sd; a 0/1 feature with 5 % ones is clipped at ~0.6 (its mean
    biased by ~0.1 sd), one with 10 % ones is not clipped."""
    n = np.maximum(np.asarray(counts, dtype=float) - 2.0 * sigma_counts, 1.0)[:, None]
    sigma = np.asarray(sigma_deviations, dtype=float).reshape(deviations.shape)
    width = factor * np.maximum(deviations + sigma, 0.0) / n
    lo = np.clip(centres - width, limits[:, 0], limits[:, 1])
    hi = np.clip(centres + width, lo, limits[:, 1])
    return np.stack([lo, hi], axis=1)
