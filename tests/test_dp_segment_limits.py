"""Per-segment DP clip limits of the profile sums: from the released centroids and scaler,
checked against limits worked out by hand; the node clips each customer to their own
segment's limits and the noise weights are each segment's own half-widths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from fedseg.common.dp.segment_limits import centroid_limits, spread_limits
from fedseg.common.phases.segment_spread import SpreadRequest
from fedseg.common.phases.segment_spread import answer as spread_answer
from fedseg.common.phases.segment_spread import dp_release as spread_dp_release
from fedseg.common.messages import Scaler
from fedseg.common.phases.profile import ProfileReply, ProfileRequest, clip_limits, dp_release, stats
from fedseg.common.preprocessing import LocalTable
from fedseg.common.profiles import local_profile_stats
from fedseg.common.schema import FeatureSchema, NumericFeature

SCHEMA = FeatureSchema(id="id", numeric=(NumericFeature(name="a", lower=0.0, upper=100.0),
                                         NumericFeature(name="spend", lower=0.0, upper=1e5, transform="log1p")))
BOX = np.array([[0.0, 0.0], [100.0, 1e5]])


def test_limits_are_the_centroid_plus_minus_three_std_and_two_on_the_log_scale():
    mean, scale = np.array([50.0, 5.0]), np.array([10.0, 2.0])
    centroids = np.array([[1.0, 0.5], [-4.0, 2.5]])  # a = 60 and 10; log1p(spend) = 6 and 10
    got = centroid_limits(SCHEMA, mean, scale, centroids, BOX)
    assert got.shape == (2, 2, 2)
    assert_allclose(got[0], [[30.0, math.expm1(2.0)], [90.0, math.expm1(10.0)]])
    # 10 − 30 is below the box: held at 0; log1p(1e5) = 11.51 < 10 + 4: held at 1e5
    assert_allclose(got[1], [[0.0, math.expm1(6.0)], [40.0, 1e5]], rtol=1e-9)


def test_limits_stay_inside_the_outer_limits():
    outer = np.array([[0.0, 0.0], [100.0, 2000.0]])  # e.g. money at 2 x its 99th percentile
    got = centroid_limits(SCHEMA, np.array([50.0, 5.0]), np.array([10.0, 2.0]), np.array([[1.0, 0.5]]), outer)
    assert_allclose(got[0], [[30.0, math.expm1(2.0)], [90.0, 2000.0]])


def _request(limits, k=2):
    return ProfileRequest(schema=SCHEMA, scaler=Scaler(mean=np.zeros(2), scale=np.ones(2)),
                          centroids=np.array([[0.0, 0.0], [1e3, 1e3]])[:k], limits=limits)


LIMITS = np.array([[[0.0, 0.0], [10.0, 200.0]],  # segment 0: midpoints 5, 100
                   [[40.0, 100.0], [60.0, 300.0]]])  # segment 1: midpoints 50, 200


def test_each_customer_is_clipped_to_their_own_segments_limits():
    values = np.array([[2.0, 500.0], [50.0, 500.0], [30.0, 50.0]])
    table = LocalTable(ids=np.array(["1", "2", "3"]), numeric=values, codes=np.zeros((3, 0), dtype=int))
    X = np.array([[0.0, 0.0], [1e3, 1e3], [1e3, 1e3]])  # customer 1 in segment 0, 2 and 3 in segment 1
    local = local_profile_stats(table, SCHEMA, X, np.array([[0.0, 0.0], [1e3, 1e3]]), LIMITS)
    assert_allclose(local.sums, [[2 - 5, 200 - 100], [50 - 50 + 40 - 50, 300 - 200 + 100 - 200]])
    reply = ProfileReply(counts=local.counts, sums=local.sums, sumsq=local.sumsq, category_counts=local.category_counts)
    back = stats(reply, _request(LIMITS))
    assert_allclose(back.sums, [[2.0, 200.0], [90.0, 400.0]])
    assert_allclose(back.sumsq, [[4.0, 200.0**2], [50**2 + 40**2, 300**2 + 100**2]])


def test_noise_weights_are_each_segments_half_widths():
    release = dp_release(_request(LIMITS), SCHEMA)
    assert release.deltas["sums"] == math.sqrt(2)  # a customer is in one segment
    assert_allclose(release.weights["sums"], [5.0, 100.0, 10.0, 100.0])
    assert_allclose(release.weights["sumsq"], [25.0, 1e4, 100.0, 1e4])


def test_a_server_cannot_widen_the_box_or_send_limits_of_another_shape():
    wide = LIMITS.copy()
    wide[1, 1, 1] = 1e9
    assert clip_limits(_request(wide), SCHEMA)[1, 1, 1] == 1e5
    with pytest.raises(ValueError):
        clip_limits(_request(LIMITS[:, :, :1]), SCHEMA)
    with pytest.raises(ValueError):
        clip_limits(_request(LIMITS, k=1), SCHEMA)  # limits for 2 segments, 1 centroid


class _Data:
    """A node's data as the phases see it: raw table, and the scaled matrix as given."""

    def __init__(self, values: np.ndarray, X: np.ndarray) -> None:
        self._table = LocalTable(ids=np.arange(len(values)).astype(str), numeric=values,
                                 codes=np.zeros((len(values), 0), dtype=int))
        self._X = X

    def table(self, schema):
        return self._table

    def matrix(self, schema, scaler):
        return self._X


def _spread_request(limits=LIMITS, centres=np.array([[4.0, 100.0], [55.0, 150.0]])):
    return SpreadRequest(schema=SCHEMA, scaler=Scaler(mean=np.zeros(2), scale=np.ones(2)),
                         centroids=np.array([[0.0, 0.0], [1e3, 1e3]]), limits=limits, centres=centres)


def test_spread_sums_absolute_deviations_of_clipped_values_per_segment():
    values = np.array([[2.0, 500.0], [50.0, 500.0], [30.0, 50.0]])
    X = np.array([[0.0, 0.0], [1e3, 1e3], [1e3, 1e3]])
    reply = spread_answer(_spread_request(), _Data(values, X))
    assert_allclose(reply.counts, [1, 2])
    # segment 0: |2 − 4|, |200 − 100|; segment 1: |50 − 55| + |40 − 55|, |300 − 150| + |100 − 150|
    assert_allclose(reply.deviations, [[2.0, 100.0], [20.0, 200.0]])


def test_spread_noise_weights_are_the_farther_limit_from_the_centre():
    release = spread_dp_release(_spread_request(), SCHEMA)
    assert release.deltas == {"counts": 1.0, "deviations": math.sqrt(2)}
    assert_allclose(release.weights["deviations"], [6.0, 100.0, 15.0, 150.0])
    with pytest.raises(ValueError):  # one centre per segment and feature, or refused
        spread_dp_release(_spread_request(centres=np.zeros((2, 3))), SCHEMA)


def test_spread_limits_are_the_centre_plus_minus_six_high_mean_deviations():
    counts, deviations = np.array([102.0, 52.0]), np.array([[400.0, 1000.0], [40.0, 10.0]])
    sigma_dev = np.array([50.0, 100.0, 5.0, 5.0])
    got = spread_limits(LIMITS, np.array([[4.0, 100.0], [55.0, 150.0]]), counts, deviations, 1.0, sigma_dev)
    # n = count − 2·1; widths 6·(400 + 50)/100 = 27, 6·(1000 + 100)/100 = 66, 6·45/50 = 5.4, 6·15/50 = 1.8
    assert_allclose(got[0], [[0.0, 34.0], [10.0, 166.0]])  # 4 ± 27 held inside [0, 10]
    assert_allclose(got[1], [[49.6, 148.2], [60.0, 151.8]])  # 55 + 5.4 held at 60
