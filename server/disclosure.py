"""The server's side of disclosure control: which segments a run releases.

A segment below `min-segment-size` is merged into its nearest released segment before
anything is published (`common.disclosure`, PRIVACY.md "Disclosure control"). Exact runs
re-profile the remaining centroids until no segment is small, so the published sizes and
profiles are what `fedseg assign` gives; a DP run, whose one profile release is
budgeted, adds a small segment's noisy sums to its nearest segment's instead
(post-processing, no budget).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from fedseg.common import disclosure
from fedseg.common.profiles import ProfileStats


def merged_stats(stats: ProfileStats, target: np.ndarray, drop: np.ndarray) -> ProfileStats:
    """Every per-segment field with each dropped row added into its target row."""
    return ProfileStats(**{f.name: None if getattr(stats, f.name) is None else
                           disclosure.merge_rows(getattr(stats, f.name), target, drop)
                           for f in dataclasses.fields(stats)})


def release_segments(centroids: np.ndarray, profile: Callable[[np.ndarray], ProfileStats], min_size: int,
                     noisy: bool) -> tuple[np.ndarray, ProfileStats]:
    """The released centroids (ndarray of shape (k_released, d)) and their profile sums.

    `profile` runs the profile exchange for a set of centroids; raises ValueError when
    no segment reaches the minimum size."""
    stats = profile(centroids)
    while (drop := disclosure.small(stats.counts, min_size)).any():
        if drop.all():
            raise ValueError(f"no segment holds min-segment-size {min_size} customers")
        if noisy:
            return centroids[~drop], merged_stats(stats, disclosure.nearest_kept(centroids, drop), drop)
        centroids = centroids[~drop]
        stats = profile(centroids)
    return centroids, stats
