"""DP Lloyd: the published centroids are the mean of the last rounds' (post-processing)."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose

from fedseg.common.config import RunConfig
from fedseg.common.synthetic import synthetic_schema
from fedseg.server.dp_planner import DPPlanner


def _planner() -> DPPlanner:
    return DPPlanner(RunConfig(k=2, epsilon=1.0, delta=1e-6), synthetic_schema())


def test_the_last_five_of_the_second_half_are_averaged():
    rounds = [np.full((2, 3), float(r)) for r in range(1, 21)]  # round r's centroids all equal r
    assert_allclose(_planner().averaged(rounds, rounds[-1]), np.full((2, 3), (16 + 17 + 18 + 19 + 20) / 5))
    few = rounds[:5]  # 5 rounds: the second half is rounds 3, 4, 5
    assert_allclose(_planner().averaged(few, few[-1]), np.full((2, 3), 4.0))


def test_averaging_settled_noisy_rounds_cuts_the_noise():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(6, 10))
    rounds = [truth + rng.normal(scale=0.1, size=truth.shape) for _ in range(20)]
    err_last = np.sqrt(np.square(rounds[-1] - truth).mean())
    err_avg = np.sqrt(np.square(_planner().averaged(rounds, rounds[-1]) - truth).mean())
    assert err_avg < 0.6 * err_last  # 1/sqrt(5) = 0.45 expected


def test_no_rounds_leave_the_centroids_as_they_are():
    last = np.ones((2, 3))
    assert _planner().averaged([], last) is last
