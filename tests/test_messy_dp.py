"""Gaps under differential privacy (issue 12): no coverage counts are released, a gap in a
feature with a DP histogram takes its noisy median, a gap elsewhere leaves the node out."""

from __future__ import annotations

import numpy as np

from fedseg.common.config import RunConfig
from fedseg.common.synthetic import generate_customers, synthetic_schema
from fedseg.server.orchestrator import Orchestrator
from fedseg.simulations.local_transport import LocalTransport
from tests.helpers import frame_nodes


def test_dp_run_releases_no_counts_and_imputes_only_from_its_dp_histograms():
    df = generate_customers(6000, 4, seed=8).drop(columns=["true_segment"])
    frames = [g.drop(columns=["department"]).astype(str).reset_index(drop=True) for _, g in df.groupby("department")]
    frames[0].loc[:40, "income"] = ""  # income is money: robust-scaled from a DP histogram
    frames[1].loc[:40, "age"] = ""  # age has no histogram under DP: nothing to impute from
    tr = LocalTransport(frame_nodes(frames))
    orch = Orchestrator(RunConfig(k=4, seed=1, max_rounds=4, epsilon=2.0), synthetic_schema(), tr, list(tr.nodes))
    result = orch.run()
    assert result.coverage == {"released": False, "reason": "differential privacy: coverage counts are not released"}
    assert list(result.failures.values()) == ["bad-table"] and sorted(result.active) == [1, 3, 4]
    income = result.schema.numeric[result.schema.numeric_names.index("income")]
    median = next(q.median for q in result.quantiles if q.name == "income")
    expected = np.expm1(median) if income.transform == "log1p" else median  # the histogram's scale back
    assert income.impute_value == expected
    assert "coverage" not in {r["phase"] for r in result.privacy["releases"]}
