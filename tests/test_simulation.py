"""End to end through Flower's Simulation Engine (Ray): 3 good nodes and 1 bad one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from fedseg.common.artifact import load_artifact
from fedseg.common.config import RunConfig
from fedseg.common.schema import FeatureSchema
from fedseg.simulations.driver import simulate

pytestmark = pytest.mark.integration  # every test shares one run on the Simulation Engine (Ray)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    X, _ = make_blobs(4000, 4, centers=4, cluster_std=1.5, random_state=11)
    cols = ["a", "b", "c", "d"]
    frame = pd.DataFrame(X, columns=cols)
    frame.insert(0, "customer_id", [f"C{i}" for i in range(len(X))])
    frames = [frame.iloc[idx] for idx in np.array_split(np.arange(len(X)), 4)]
    bad = frames[3].copy()
    bad["c"] = bad["c"].astype(object)
    bad.loc[bad.index[4], "c"] = "n/a"  # a text cell in a numeric column
    frames[3] = bad
    schema = FeatureSchema.numeric_only("customer_id", cols)
    out = tmp_path_factory.mktemp("sim")
    events = []
    model, timings = simulate(frames, schema, RunConfig(k_min=2, k_max=6, seed=5), out, events.append)
    good = frame.iloc[:3000]
    return model, out, events, good[cols].to_numpy()


def test_simulation_writes_a_model_that_matches_sklearn(simulated):
    model, out, _, X = simulated
    assert load_artifact(out / "model.json") == model
    assert (out / "report.md").read_text().startswith("# Customer segmentation")
    assert model.k == 4 and model.run.clients == 3
    Xs = (X - X.mean(0)) / X.std(0)
    np.testing.assert_allclose(model.scaler.mean, X.mean(0), rtol=1e-12)
    C = np.asarray(model.centroids)
    ours = ((Xs[:, None, :] - C[None]) ** 2).sum(-1).min(1).sum()
    ref = KMeans(4, n_init=10, random_state=0).fit(Xs).inertia_
    assert ours / ref <= 1.01
    assert sum(s.size for s in model.segments) == len(X)
    assert model.run.rounds == 5 + model.run.lloyd_rounds  # coverage, prepare, 2 coreset, profile


def test_bad_node_fails_alone_with_a_clear_reason(simulated):
    """The model holds the node's code only (issue 10); the simulate user, who owns every
    partition, reads the reason from the driver's local check before the engine starts."""
    model, out, events, _ = simulated
    assert list(model.run.clients_failed.values()) == ["bad-table"]
    assert "n/a" not in (out / "model.json").read_text()
    [reason] = [e.message for e in events if e.phase == "data-check"]
    assert "node-3.csv" in reason and "column 'c'" in reason and "'n/a' is not a number" in reason
    assert "row 5" in reason
    assert [e.round for e in events if e.phase == "lloyd"] == list(range(1, model.run.lloyd_rounds + 1))


def test_model_records_the_fedseg_version_of_the_server(simulated):
    import fedseg

    model, *_ = simulated
    assert model.run.fedseg_version == fedseg.__version__



def test_secure_simulation_gives_every_node_its_identity(tmp_path):
    # each simulated node reads its node-<i>.policy.toml (identity key, roster, pinned
    # fingerprint): without it every node would refuse secure aggregation (no-identity)
    from fedseg.common.synthetic import generate_customers, synthetic_schema

    df = generate_customers(1500, 3, seed=2).drop(columns=["true_segment"])
    frames = [g.drop(columns=["department"]) for _, g in df.groupby("department")]
    events = []
    model, _ = simulate(frames, synthetic_schema(), RunConfig(k=3, seed=1, secure=True, max_rounds=3),
                        tmp_path, events.append)
    assert model.run.clients == 3 and not model.run.clients_failed
    assert sum(s.size for s in model.segments) == 1500
    assert any(e.phase == "secure" and "keys agreed with 3 nodes" in e.message for e in events)
