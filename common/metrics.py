"""Model-selection criteria computed from aggregated cluster statistics only.

All four come from the per-cluster sums a Lloyd round already returns, so choosing k
costs no extra exchange and no record leaves a node:

- inertia: sum of squared distances to the assigned centroid;
- Calinski–Harabasz: (BSS / (k-1)) / (WSS / (n-k)) with WSS taken around the cluster
  means (inertia minus n_j·|mean_j - c_j|², an exact identity);
- Davies–Bouldin: mean over clusters of max_{i≠j} (S_i + S_j) / |c_i - c_j| with S_j
  the mean distance of cluster j's members to its centroid;
- simplified silhouette (Hruschka et al. 2004): the mean of (b - a) / max(a, b) with a,
  b the distances to the nearest and second-nearest centroid.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from fedseg.common.kmeans import ClusterStats


class Criteria(BaseModel):
    """Selection criteria of one fitted candidate."""

    k: int
    inertia: float
    calinski_harabasz: float
    davies_bouldin: float
    silhouette: float


def criteria(stats: ClusterStats, centroids: np.ndarray) -> Criteria:
    """Criteria of one candidate from its summed stats (rows of this candidate only)."""
    k = len(centroids)
    counts = stats.counts.astype(float)
    n = counts.sum()
    filled = counts > 0
    means = np.where(filled[:, None], stats.sums / np.maximum(counts, 1)[:, None], centroids)
    grand = stats.sums.sum(axis=0) / n
    wss = stats.inertia.sum() - (counts * np.square(means - centroids).sum(axis=1)).sum()
    bss = (counts * np.square(means - grand).sum(axis=1)).sum()
    ch = float(bss * (n - k) / (wss * (k - 1))) if wss > 0 and k > 1 else float("inf")
    return Criteria(
        k=k,
        inertia=float(stats.inertia.sum()),
        calinski_harabasz=ch,
        davies_bouldin=_davies_bouldin(stats, centroids),
        silhouette=float(stats.silhouette.sum() / n),
    )


def _davies_bouldin(stats: ClusterStats, centroids: np.ndarray) -> float:
    counts = stats.counts.astype(float)
    spread = np.divide(stats.dist, counts, out=np.zeros_like(counts), where=counts > 0)
    gaps = np.sqrt(np.square(centroids[:, None, :] - centroids[None, :, :]).sum(axis=2))
    gaps[gaps == 0] = np.inf  # as scikit-learn: coinciding centroids add nothing
    ratio = (spread[:, None] + spread[None, :]) / gaps
    np.fill_diagonal(ratio, -np.inf)
    return float(np.max(ratio, axis=1).mean())


def choose_k(table: list[Criteria], rule: str) -> Criteria:
    """The best candidate under `rule` (higher silhouette/CH, lower Davies–Bouldin)."""
    if rule == "davies_bouldin":
        return min(table, key=lambda c: c.davies_bouldin)
    return max(table, key=lambda c: getattr(c, rule))
