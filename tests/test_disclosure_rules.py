"""The disclosure rules by hand (common/disclosure.py): quantile group sizes, merging
small segments into the nearest released one, complementary cell suppression."""

from __future__ import annotations

import numpy as np
import pytest

from fedseg.common import disclosure


@pytest.mark.parametrize("min_size, level, floor", [(10, 0.25, 40), (10, 0.5, 20), (10, 0.2, 50), (3, 0.25, 12)])
def test_quantile_floor_leaves_min_size_on_each_side(min_size, level, floor):
    assert disclosure.quantile_floor(min_size, level) == floor


def test_small_segment_joins_nearest_kept_centroid():
    centroids = np.array([[0.0, 0.0], [10.0, 0.0], [9.0, 1.0], [0.5, 0.5]])
    drop = np.array([False, False, True, True])
    target = disclosure.nearest_kept(centroids, drop)
    assert target.tolist() == [0, 1, 1, 0]
    counts = np.array([100.0, 50.0, 1.0, 2.0])
    assert disclosure.merge_rows(counts, target, drop).tolist() == [102.0, 51.0]
    sums = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    assert disclosure.merge_rows(sums, target, drop).tolist() == [[8.0, 10.0], [8.0, 10.0]]


def test_no_segment_left_is_an_error():
    with pytest.raises(ValueError, match="minimum size"):
        disclosure.nearest_kept(np.zeros((2, 1)), np.array([True, True]))


def test_complementary_suppression_by_hand():
    # (1, 1) = 3 is small. Row 1 has one withheld cell: its smallest other cell (1, 0)
    # = 60 goes; column 0 then has one: (0, 0) = 50 goes; column 1 has one: (0, 1) = 40
    # goes. Every row and column now has 0 or 2 withheld cells: a 2 x 2 block whose
    # published totals leave one degree of freedom.
    counts = np.array([[50, 40, 0], [60, 3, 70]])
    lines = disclosure.table_lines(counts.shape, np.array([-1, -1]))
    hidden = disclosure.suppress_cells(counts, 10, lines)
    for line in lines:
        assert sum(hidden[c] for c in line) != 1
    assert hidden.tolist() == [[True, True, False], [True, True, False]]


def test_no_small_cell_no_suppression():
    counts = np.array([[50, 0], [12, 70]])
    lines = disclosure.table_lines(counts.shape, np.array([0, 1]))
    assert not disclosure.suppress_cells(counts, 10, lines).any()


def test_global_quantile_levels_need_min_size_in_the_tail():
    levels = {"0.01": 1.0, "0.05": 2.0, "0.25": 3.0, "0.5": 4.0, "0.75": 5.0, "0.95": 6.0, "0.99": 7.0}
    # 300 customers, min 10: the 1 % tails hold 3 customers (withheld), the 5 % tails 15 (kept)
    assert disclosure.released_levels(levels, 300, 10) == {k: v for k, v in levels.items() if k not in ("0.01", "0.99")}
    assert disclosure.released_levels(levels, 1000, 10) == levels


def test_winsor_limits_on_too_few_customers_are_refused():
    from fedseg.common.schema import FeatureSchema, NumericFeature

    schema = FeatureSchema(id="id", numeric=(NumericFeature(name="x", lower=0.0, upper=1.0, winsorize=(0.01, 0.99)),))
    with pytest.raises(ValueError, match="needs 1000"):
        disclosure.check_quantile_levels(schema, 999, 10)
    disclosure.check_quantile_levels(schema, 1000, 10)
