"""Per-segment clip limits of DP profile sums, from figures the run already released.

The noise on a DP segment mean is proportional to the half-width of the range each
customer's value is clipped to. The public box is far wider than any one segment
(frequency 1-500 for segments whose members buy 3-30 times), so the box alone makes
the noise several within-segment standard deviations. The released centroids and the
released scaler say where each segment sits and how wide the population is: the limits
below are the segment's centroid ± SPREAD population standard deviations on the
scale the run clusters on (± SPREAD_LOG on the log1p scale of money: there the
population's spread is mostly between segments, ~3 x a segment's own, and a factor
e^1 either side is already wide), mapped back to original units and held inside the
given limits. Only released figures go in: post-processing, no budget.
A segment's own spread is at most the population's (a little more for a few outliers),
so few members are clipped and the clipping bias stays small (measured in
BENCHMARKS.md, "What a marketer reads under DP").
"""

from __future__ import annotations

import numpy as np

from fedseg.common.dp.sensitivity import transformed_box
from fedseg.common.schema import FeatureSchema

SPREAD = 3.0  # population standard deviations either side of a segment's centroid
SPREAD_LOG = 1.0  # the same on the log1p scale of money, where segments sit far apart


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
