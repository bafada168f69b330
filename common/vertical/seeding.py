"""The server's choices in vertical k-means, from summed distances only: starts by
greedy k-means++ over the fine stage's cells, the best candidate, and small segments
merged into their nearest kept one (disclosure control).

The server never holds a centroid: it knows the squared distances between cell means
(`gaps`, summed over parties) and the cells' sizes (it assigned the labels), which is
all k-means++ needs. Only cells with at least `min_cell` customers may start a
segment, so no starting centroid is a record.
"""

from __future__ import annotations

import numpy as np


def kmeanspp_starts(gaps: np.ndarray, sizes: np.ndarray, k: int, n_starts: int, rng: np.random.Generator,
                    min_cell: int = 3) -> np.ndarray:
    """(n_starts, k) cell indices: greedy k-means++ (2 + log k trials per pick, as
    scikit-learn) on the cells, each weighted by its size."""
    weights = np.where(np.asarray(sizes) >= min_cell, np.asarray(sizes, dtype=float), 0.0)
    if np.count_nonzero(weights) < k:
        raise ValueError(f"fewer than k={k} groups of at least {min_cell} customers to start from")
    trials = 2 + int(np.log(k))
    starts = np.zeros((n_starts, k), dtype=np.int64)
    for s in range(n_starts):
        chosen = [int(rng.choice(len(weights), p=weights / weights.sum()))]
        closest = gaps[chosen[0]].copy()
        for _ in range(1, k):
            p = weights * closest
            p[chosen] = 0.0
            if p.sum() <= 0:  # every eligible cell at distance 0: pick among the unchosen
                p = weights.copy()
                p[chosen] = 0.0
            cands = rng.choice(len(weights), size=trials, p=p / p.sum())
            pots = [(weights * np.minimum(closest, gaps[c])).sum() for c in cands]
            best = int(cands[int(np.argmin(pots))])
            chosen.append(best)
            closest = np.minimum(closest, gaps[best])
        starts[s] = chosen
    return starts


def merge_small(labels: np.ndarray, gaps: np.ndarray, k: int, min_size: int) -> tuple[np.ndarray, int]:
    """Labels with every segment below `min_size` merged into the kept segment whose
    centroid is nearest (by the summed gaps), renumbered 0..k'-1; and how many merged."""
    sizes = np.bincount(labels, minlength=k)
    drop = sizes < min_size
    keep = np.flatnonzero(~drop)
    if not len(keep):
        raise ValueError(f"no segment reaches min-segment-size {min_size}")
    target = np.where(drop, keep[np.argmin(gaps[:, keep], axis=1)], np.arange(k))
    renumber = np.full(k, -1)
    renumber[keep] = np.arange(len(keep))
    return renumber[target[labels]], int((drop & (sizes > 0)).sum())
