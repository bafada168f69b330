"""Profile sums under DP limits: clipped, centred on the limits' midpoint, moved back by hand."""

from __future__ import annotations

import math

import numpy as np
from numpy.testing import assert_allclose

from fedseg.common.messages import Scaler
from fedseg.common.phases.profile import ProfileReply, ProfileRequest, clip_limits, dp_release, stats
from fedseg.common.preprocessing import LocalTable
from fedseg.common.profiles import local_profile_stats
from fedseg.common.schema import FeatureSchema, NumericFeature

SCHEMA = FeatureSchema(id="id", numeric=(NumericFeature(name="a", lower=0.0, upper=10.0),
                                         NumericFeature(name="spend", lower=0.0, upper=1000.0)))


def _request(limits):
    return ProfileRequest(schema=SCHEMA, scaler=Scaler(mean=np.zeros(2), scale=np.ones(2)),
                          centroids=np.array([[0.0, 0.0], [1e4, 1e4]]), limits=limits)


def test_limits_stay_inside_the_public_box():
    got = clip_limits(_request(np.array([[-5.0, 0.0], [20.0, 200.0]])), SCHEMA)
    assert_allclose(got, [[[0.0, 0.0], [10.0, 200.0]]] * 2)  # a server cannot widen the box (k = 2)
    assert clip_limits(_request(None), SCHEMA) is None


def test_centred_sums_moved_back_equal_the_clipped_sums_by_hand():
    values = np.array([[2.0, 50.0], [4.0, 500.0], [6.0, 150.0]])  # 500 is above the limit 200
    table = LocalTable(ids=np.array(["1", "2", "3"]), numeric=values, codes=np.zeros((3, 0), dtype=int))
    limits = np.array([[0.0, 0.0], [10.0, 200.0]])  # midpoints 5 and 100
    local = local_profile_stats(table, SCHEMA, values, np.array([[0.0, 0.0], [1e4, 1e4]]), limits)
    assert_allclose(local.sums[0], [2 - 5 + 4 - 5 + 6 - 5, 50 - 100 + 100 + 50])  # all three in segment 0
    reply = ProfileReply(counts=local.counts, sums=local.sums, sumsq=local.sumsq, category_counts=local.category_counts)
    back = stats(reply, _request(limits))
    assert_allclose(back.sums[0], [12.0, 50 + 200 + 150])
    assert_allclose(back.sumsq[0], [4 + 16 + 36, 50**2 + 200**2 + 150**2])


def test_dp_release_weights_are_the_half_widths():
    release = dp_release(_request(np.array([[0.0, 0.0], [10.0, 200.0]])), SCHEMA)
    deltas, weights = release.deltas, release.weights
    assert deltas["sums"] == math.sqrt(2)
    assert_allclose(weights["sums"], [5.0, 100.0, 5.0, 100.0])  # k = 2 segments
    assert_allclose(dp_release(_request(None), SCHEMA).weights["sums"], [10.0, 1000.0, 10.0, 1000.0])
