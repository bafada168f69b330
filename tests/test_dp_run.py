"""Differential privacy in a run: budget accounted, noise present at the planned scale,
quality close to plaintext when the budget is large, clear errors on bad settings."""

from __future__ import annotations

import numpy as np
import pytest

from fedseg.client.data import validate_frame
from fedseg.client.handlers import handle
from fedseg.common.config import ConfigError, RunConfig
from fedseg.common.dp.accounting import epsilon_from_rho
from fedseg.common.phases.lloyd import LloydRequest
from fedseg.server.orchestrator import Orchestrator
from fedseg.simulations.local_transport import LocalTransport
from fedseg.common.synthetic import generate_customers, synthetic_schema
from tests.helpers import frame_nodes

SCHEMA = synthetic_schema()


@pytest.fixture(scope="module")
def node_frames():
    df = generate_customers(6000, 4, seed=8).drop(columns=["true_segment"])
    return [g.drop(columns=["department"]) for _, g in df.groupby("department")]


def run(node_frames, **config):
    tr = LocalTransport(frame_nodes(node_frames))
    orch = Orchestrator(RunConfig(k=4, seed=1, max_rounds=4, **config), SCHEMA, tr, list(tr.nodes))
    return orch.run(), orch


def test_budget_is_accounted_and_never_exceeded(node_frames):
    result, orch = run(node_frames, epsilon=1.0, delta=1e-6)
    priv = result.privacy
    assert priv["mode"] == "dp+secure"
    total_rho = sum(r["rho"] for r in priv["releases"])
    assert epsilon_from_rho(rho=total_rho, delta=1e-6) <= 1.0 + 1e-9
    # the guarantee is the budget; what the releases cost is informational and never more
    assert priv["epsilon"] == priv["guarantee"]["epsilon"] == 1.0 and priv["guarantee"]["delta"] == 1e-6
    assert priv["spent"]["epsilon"] == pytest.approx(epsilon_from_rho(rho=total_rho, delta=1e-6))
    assert "informational" in priv["spent"]["note"]
    phases = {r["phase"] for r in priv["releases"]}
    # quantiles: income and monetary are money, robust-scaled from noisy histograms by default
    assert phases == {"quantiles", "preprocessing", "initialization", "lloyd", "profiling"}
    # only sums and counts are released in Lloyd rounds under DP
    assert {r["what"] for r in priv["releases"] if r["phase"] == "lloyd"} == {"lloyd.sums", "lloyd.counts"}


def test_noise_is_present_at_the_planned_scale(node_frames):
    plain, _ = run(node_frames)
    noisy, orch = run(node_frames, epsilon=0.5)
    sigma = orch.release.planner.count_sigma["prepare"]
    assert noisy.n_customers != plain.n_customers  # the server never sees the exact count
    assert abs(noisy.n_customers - plain.n_customers) < 6 * sigma


def test_large_budget_approaches_the_plaintext_quality(node_frames):
    plain, _ = run(node_frames)
    private, _ = run(node_frames, epsilon=1e4)
    X = np.vstack([validate_frame(f, SCHEMA, "t").numeric for f in node_frames])  # sanity: same data
    assert private.n_customers == pytest.approx(len(X), abs=3)
    tr = LocalTransport(frame_nodes(node_frames))
    cost = {}
    for name, res in (("plain", plain), ("dp", private)):
        req = LloydRequest(schema=SCHEMA, scaler=plain.scaler, centroids=res.chosen.centroids, sizes=[4])
        cost[name] = sum(handle(req, node).inertia.sum() for node in tr.nodes.values())
    assert cost["dp"] <= 1.05 * cost["plain"]


@pytest.mark.parametrize("bad, match", [({"epsilon": -1.0}, "epsilon"), ({"epsilon": 1.0, "delta": 0.0}, "delta"),
                                        ({"epsilon": 1.0, "k": 0}, "fixed k")])
def test_bad_dp_settings_are_clear_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig.parse({"k": 3, **bad})


def test_dp_runs_default_to_five_lloyd_rounds():
    """The README's DP command runs the rounds bench_dp measured (5), not the exact
    runs' 20: every DP round is paid for, so 20 would give each a quarter of the noise
    budget. The app config's `max-rounds = 0` and the CLI default pick per mode; an
    explicit value wins."""
    import tomllib
    from pathlib import Path

    app = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    flower = app["tool"]["flwr"]["app"]["config"]
    assert RunConfig.from_flower(flower).max_rounds == 20
    assert RunConfig.from_flower({**flower, "k": 4, "epsilon": 1.0}).max_rounds == 5
    assert RunConfig.parse({"k": 4, "epsilon": 1.0, "max_rounds": 8}).max_rounds == 8
