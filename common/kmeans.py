"""Federated Lloyd: local statistics for a stack of candidate models, and the update.

A *stack* is several candidate models (several k, several restarts) concatenated into
one centroid matrix of shape (sum(sizes), d); `sizes[m]` is the k of candidate m. A node
computes, per candidate and cluster, the sum of its points, the count, the inertia (sum
of squared distances), the sum of distances and the sum of simplified silhouettes. The
server adds these over nodes and divides: with the same initial centroids this is
exactly Lloyd's algorithm on the pooled data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

_BLOCK_ROWS = 8192


@dataclass(frozen=True)
class ClusterStats:
    """Summable per-cluster statistics for a stack; each array has `total` rows.

    sums: ndarray of shape (total, d); counts, inertia, dist, silhouette: shape (total,).
    """

    sums: np.ndarray
    counts: np.ndarray
    inertia: np.ndarray
    dist: np.ndarray
    silhouette: np.ndarray

    def __add__(self, other: ClusterStats) -> ClusterStats:
        return ClusterStats(
            self.sums + other.sums,
            self.counts + other.counts,
            self.inertia + other.inertia,
            self.dist + other.dist,
            self.silhouette + other.silhouette,
        )

    @classmethod
    def zeros(cls, total: int, d: int) -> ClusterStats:
        z = np.zeros(total)
        return cls(np.zeros((total, d)), z.astype(np.int64), z, z.copy(), z.copy())


def offsets_of(sizes: list[int]) -> np.ndarray:
    """Start row of each candidate in the stack, plus the end: shape (len(sizes)+1,)."""
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def squared_distances(X: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, shape (n, total), clipped at 0 against rounding."""
    d2 = (
        np.einsum("ij,ij->i", X, X)[:, None]
        - 2.0 * X @ centroids.T
        + np.einsum("ij,ij->i", centroids, centroids)[None, :]
    )
    return np.maximum(d2, 0.0)


def _block_assign(d2: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per candidate: global label, nearest and second-nearest squared distance."""
    n, m = d2.shape[0], len(offsets) - 1
    labels = np.empty((n, m), dtype=np.int64)
    first = np.empty((n, m))
    second = np.empty((n, m))
    for c in range(m):  # loop over candidate models, not records
        block = d2[:, offsets[c] : offsets[c + 1]]
        local = np.argmin(block, axis=1)
        labels[:, c] = local + offsets[c]
        first[:, c] = block[np.arange(n), local]
        if block.shape[1] > 1:
            second[:, c] = np.partition(block, 1, axis=1)[:, 1]
        else:
            second[:, c] = first[:, c]
    return labels, first, second


def _simplified_silhouette(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(b - a) / max(a, b) with a, b the distances to the nearest two centroids."""
    a, b = np.sqrt(first), np.sqrt(second)
    denom = np.maximum(a, b)
    return np.divide(b - a, denom, out=np.zeros_like(a), where=denom > 0)


def local_stats(X: np.ndarray, centroids: np.ndarray, sizes: list[int]) -> ClusterStats:
    """This node's per-cluster statistics for every candidate in the stack.

    X: ndarray of shape (n, d), the node's encoded scaled records.
    centroids: ndarray of shape (sum(sizes), d).
    """
    offsets = offsets_of(sizes)
    total = int(offsets[-1])
    stats = ClusterStats.zeros(total, X.shape[1])
    for start in range(0, X.shape[0], _BLOCK_ROWS):  # bounded memory, blocks of rows
        Xb = X[start : start + _BLOCK_ROWS]
        labels, first, second = _block_assign(squared_distances(Xb, centroids), offsets)
        flat = labels.ravel()
        rows = np.repeat(np.arange(Xb.shape[0]), labels.shape[1])
        member = sparse.csr_matrix((np.ones(flat.size), (flat, rows)), shape=(total, Xb.shape[0]))
        stats = stats + ClusterStats(
            sums=np.asarray(member @ Xb),
            counts=np.bincount(flat, minlength=total).astype(np.int64),
            inertia=np.bincount(flat, weights=first.ravel(), minlength=total),
            dist=np.bincount(flat, weights=np.sqrt(first).ravel(), minlength=total),
            silhouette=np.bincount(
                flat, weights=_simplified_silhouette(first, second).ravel(), minlength=total
            ),
        )
    return stats


def assign(X: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest-centroid label per record, shape (n,)."""
    labels = np.empty(X.shape[0], dtype=np.int64)
    for start in range(0, X.shape[0], _BLOCK_ROWS):
        Xb = X[start : start + _BLOCK_ROWS]
        labels[start : start + len(Xb)] = np.argmin(squared_distances(Xb, centroids), axis=1)
    return labels


def update_centroids(
    stats: ClusterStats, old: np.ndarray, reseed: np.ndarray | None = None
) -> np.ndarray:
    """New centroids = sums / counts; an empty cluster keeps its old centroid unless
    `reseed` supplies a replacement row (shape like `old`) built from aggregates."""
    nonempty = stats.counts > 0
    new = old.copy() if reseed is None else reseed.copy()
    new[nonempty] = stats.sums[nonempty] / stats.counts[nonempty, None]
    return new


def centroid_shift(old: np.ndarray, new: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Total squared centroid movement per candidate, shape (len(sizes),)."""
    per_row = np.square(new - old).sum(axis=1)
    return np.add.reduceat(per_row, offsets_of(sizes)[:-1])
