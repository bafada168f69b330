"""Lloyd arithmetic on one party's block of features (vertical k-means).

Squared Euclidean distance splits over disjoint blocks of features: |x - c|^2 is the
sum over parties of |x_p - c_p|^2. So each party computes its partial distances from
its own block of the rows and of the centroids, the parties' partials are summed, the
argmin of the sum is the assignment, and each party updates its centroid block from
the labels alone. Positions index the shared customers in the parties' common order
(`align`); candidates (restarts) are stacked side by side, k columns each.
"""

from __future__ import annotations

import numpy as np

from fedseg.common.secagg.masks import prg


def groups(n: int, n_groups: int, seed: int) -> np.ndarray:
    """Public group of each position: a seeded shuffle dealt round-robin, so every group
    holds n // n_groups or one more customers (never a single record when n >= 2 G)."""
    return np.random.default_rng(seed).permutation(n) % n_groups


def sample(n: int, size: int, seed: int) -> np.ndarray:
    """Public sample of `size` positions (sorted), or every position when size is 0 or >= n."""
    if not size or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:size])


def group_means(X: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """(G, d) mean of each group's rows."""
    sums = np.zeros((n_groups, X.shape[1]))
    np.add.at(sums, group, X)
    return sums / np.maximum(np.bincount(group, minlength=n_groups), 1)[:, None]


def sq_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(len A, len B) squared distances, never negative."""
    d = (A * A).sum(1)[:, None] - 2.0 * A @ B.T + (B * B).sum(1)[None, :]
    return np.maximum(d, 0.0)


def update(X: np.ndarray, labels: np.ndarray, old: np.ndarray, k: int) -> np.ndarray:
    """New centroid blocks (L*k, d) from labels (n, L): the mean of each segment's rows;
    an empty segment keeps its old block (every party sees the same labels, so all keep it)."""
    n_cand = labels.shape[1]
    flat = (labels + k * np.arange(n_cand)[None, :]).ravel()  # candidate c, label j -> column c*k + j
    counts = np.bincount(flat, minlength=n_cand * k)
    sums = np.zeros((n_cand * k, X.shape[1]))
    np.add.at(sums, flat, np.repeat(X, n_cand, axis=0))
    return np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], old)


def offsets(key: bytes, n: int, scale: float) -> np.ndarray:
    """Per-position offsets in [0, scale) from a keystream of the parties' shared key:
    every party adds the same r_i to all distances of row i, so the argmin is unchanged
    and the summer never sees an absolute distance."""
    if scale <= 0:
        return np.zeros(n)
    return (prg(key, n) >> np.uint64(11)).astype(float) / float(1 << 53) * scale


def assign(summed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels (n, L) and the per-candidate sums of the chosen distances (L,) from the
    summed distances (n, L*k)."""
    n = summed.shape[0]
    stacked = summed.reshape(n, -1, k)
    labels = stacked.argmin(axis=2)
    return labels, np.take_along_axis(stacked, labels[:, :, None], axis=2)[:, :, 0].sum(axis=0)
