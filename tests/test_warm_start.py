"""Warm start from a previous model.json and the segment-change counts: summed over
nodes (secure mode: through secure aggregation), checked against the pooled data."""

from __future__ import annotations

import numpy as np
import pytest

from fedseg.client.assign import segment_labels
from fedseg.client.data import validate_frame
from fedseg.common.config import RunConfig
from fedseg.server.model import build_artifact
from fedseg.server.orchestrator import Orchestrator, RunError
from fedseg.common.synthetic import generate_customers, synthetic_schema
from tests.helpers import frame_nodes, transport


def run(df, warm=None, **cfg):
    schema = synthetic_schema()
    frames = [part[list(schema.columns)] for _, part in df.groupby("department")]
    nodes = frame_nodes(frames)
    config = RunConfig.parse({"k": 5, "seed": 5, "restarts": 1, **cfg, **({"warm_start": "old.json"} if warm else {})})
    result = Orchestrator(config, schema, transport(nodes), list(nodes), warm=warm).run()
    return result, build_artifact(result, config, schema)


@pytest.fixture(scope="module")
def base():
    customers = generate_customers(8000, 4, seed=21)
    # converged to a fixed point (tol 0): a model stopped by a tolerance may still move a
    # border customer on its next round, with or without a warm start
    return customers, run(customers, tol=0.0, max_rounds=200)[1]


def pooled_changes(df, old, new) -> int:
    """Customers whose nearest old centroid (old scaler) differs from the nearest new one."""
    table = validate_frame(df[list(synthetic_schema().columns)], synthetic_schema(), "pooled")
    return int((segment_labels(old, table) != segment_labels(new, table)).sum())


def test_warm_start_on_unchanged_data_changes_nobody(base):
    customers, old = base
    result, new = run(customers, warm=old, k=0)  # k=0: the old k is kept
    assert new.k == old.k
    assert result.lloyd_rounds <= 2  # already converged
    assert new.drift["changed_segment"] == 0 and new.drift["customers"] == len(customers)
    assert np.allclose(new.centroid_array(), old.centroid_array(), atol=1e-6)


def test_shifted_department_counts_match_pooled(base):
    customers, old = base
    # one department loses most of its dormant customers (segment 3) and gains 50 % more of segment 0
    rng = np.random.default_rng(2)
    dept = customers["department"] == customers["department"].iloc[0]
    drop = dept & (customers["true_segment"] == 3) & (rng.random(len(customers)) < 0.8)
    extra = customers[dept & (customers["true_segment"] == 0)].sample(frac=0.5, random_state=1).copy()
    extra["customer_id"] = extra["customer_id"].astype(str) + "-new"
    shifted = np.concatenate([customers[~drop].to_numpy(), extra.to_numpy()])
    import pandas as pd

    shifted = pd.DataFrame(shifted, columns=customers.columns)
    for secure in (False, True):
        _, new = run(shifted, warm=old, secure=secure)
        expected = pooled_changes(shifted, old, new)
        assert new.drift["changed_segment"] == expected, secure
        assert new.drift["customers"] == len(shifted)
        assert expected > 0


def test_other_k_matches_segments_and_counts(base):
    customers, old = base
    _, new = run(customers, warm=old, k=4)
    assert new.k == 4 and new.drift["old_k"] == 5
    match = new.drift["matched_new_segment"]
    assert sorted(j for j in match if j >= 0) == [0, 1, 2, 3]
    table = validate_frame(customers[list(synthetic_schema().columns)], synthetic_schema(), "pooled")
    old_l, new_l = segment_labels(old, table), segment_labels(new, table)
    stayed = sum(int(((old_l == i) & (new_l == j)).sum()) for i, j in enumerate(match) if j >= 0)
    assert new.drift["changed_segment"] == len(customers) - stayed


def test_incompatible_model_is_a_clear_error(base):
    customers, old = base
    bad = old.model_copy(update={"features": old.features[:-1] + ["other"]})
    with pytest.raises(RunError, match="features .* differ"):
        run(customers, warm=bad)
    schema = old.run.feature_schema.model_copy(update={"schema_version": 0})
    odd = old.model_copy(update={"run": old.run.model_copy(update={"feature_schema": schema})})
    with pytest.raises(RunError, match="schema_version 0"):
        run(customers, warm=odd)
    # under DP a warm start is budgeted, not refused (tests/test_dp_extensions.py)
