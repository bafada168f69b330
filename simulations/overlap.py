"""Customers held by two units: a share of the customers copied into one other node, so
that deduplication (`--dedup`) has real work in a simulation (`--overlap SHARE`)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def shared_parts(parts: list[np.ndarray], share: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Row indices per node after copying round(share * n) customers, drawn over all
    nodes, each into one other node chosen at random (so exactly that many are held twice)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"overlap {share} is not a share between 0 and 1")
    if len(parts) < 2 and share > 0:
        raise ValueError("an overlap needs at least two nodes")
    home = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
    rows = np.concatenate(parts)
    picked = rng.choice(len(rows), int(round(share * len(rows))), replace=False)
    shift = rng.integers(1, len(parts), size=len(picked)) if len(parts) > 1 else np.zeros(0, int)
    target = (home[picked] + shift) % len(parts)  # never the customer's own node
    return [np.concatenate([p, rows[picked[target == i]]]) for i, p in enumerate(parts)]


def with_shared_customers(frames: list[pd.DataFrame], share: float, seed: int) -> list[pd.DataFrame]:
    """The frames with a share of their customers copied into one other frame each."""
    pooled = pd.concat(frames, ignore_index=True)
    offsets = np.cumsum([0] + [len(f) for f in frames])
    parts = [np.arange(offsets[i], offsets[i + 1]) for i in range(len(frames))]
    return [pooled.iloc[p].reset_index(drop=True) for p in shared_parts(parts, share, np.random.default_rng(seed))]
