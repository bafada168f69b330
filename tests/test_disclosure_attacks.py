"""Read-back attacks on what a run publishes (issue 11, item 1), each played against a
real in-process run (LocalTransport + Orchestrator + build_artifact).

The table holds two blobs of 200 customers and ONE far-away customer; the run is
warm-started from a model whose third centroid sits on that customer, so Lloyd leaves
them alone in a segment. With min-segment-size 10 nothing published may describe them,
directly or by difference. Each attacker below uses only the published model.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from fedseg.common.artifact import ModelArtifact, RunInfo, ScalerOut, Segment
from fedseg.common.config import RunConfig
from fedseg.common.schema import FeatureSchema, NumericFeature
from fedseg.server.model import build_artifact
from fedseg.server.orchestrator import Orchestrator
from tests.helpers import numeric_nodes, transport

MIN = 10
LONER = np.array([97.0, 4.0])
SCHEMA = FeatureSchema(id="id", numeric=(
    NumericFeature(name="x0", lower=0.0, upper=100.0, bins=100, scaling="robust"),
    NumericFeature(name="x1", lower=0.0, upper=100.0),
))
OLD_MEAN, OLD_SCALE = np.array([50.0, 50.0]), np.array([20.0, 20.0])


def table_with_loner(seed: int = 0) -> np.ndarray:
    """(401, 2): blobs around (20, 20) and (60, 60), then the lone customer."""
    rng = np.random.default_rng(seed)
    a = rng.normal([20.0, 20.0], 3.0, size=(200, 2))
    b = rng.normal([60.0, 60.0], 3.0, size=(200, 2))
    return np.vstack([a, b, LONER])


def warm_model(centres: np.ndarray, schema: FeatureSchema = SCHEMA) -> ModelArtifact:
    """A previous model with these centroids (original units), as a warm start reads it."""
    k = len(centres)
    return ModelArtifact(
        features=schema.encoded_names, scaler=ScalerOut(mean=OLD_MEAN.tolist(), scale=OLD_SCALE.tolist()),
        centroids=((centres - OLD_MEAN) / OLD_SCALE).tolist(), k=k,
        segments=[Segment(id=j, size=100, share=1 / k, name=f"old {j}", profile=None) for j in range(k)],
        selection=[], metrics={}, privacy={"mode": "plaintext"},
        run=RunInfo(config={}, seed=0, clients=3, rounds=1, lloyd_rounds=1, converged=True, timings={},
                    feature_schema=schema),
    )


def published(X: np.ndarray, warm: ModelArtifact, mode: str, schema: FeatureSchema = SCHEMA) -> ModelArtifact:
    """The model a real run publishes (3 nodes, k kept from the warm start)."""
    parts = np.array_split(np.random.default_rng(1).permutation(len(X)), 3)
    nodes = numeric_nodes(X, parts)
    extra = {"secure": {"secure": True}, "dp": {"epsilon": 50.0, "k": warm.k}}.get(mode, {})
    config = RunConfig.parse({"seed": 3, "restarts": 1, "min_segment_size": MIN, "warm_start": "old.json",
                              "max_rounds": 30, **extra})
    result = Orchestrator(config, schema, transport(nodes), list(nodes), warm=warm).run()
    return build_artifact(result, config, schema)


MODELS: dict[str, ModelArtifact] = {}


def loner_run(mode: str) -> ModelArtifact:
    """The published model of the lone-customer table in one mode (built once)."""
    if mode not in MODELS:
        warm = warm_model(np.array([[20.0, 20.0], [60.0, 60.0], LONER]))
        MODELS[mode] = published(table_with_loner(), warm, mode)
    return MODELS[mode]


@pytest.fixture(params=["plaintext", "secure", "dp"])
def loner_model(request) -> ModelArtifact:
    return loner_run(request.param)


@pytest.fixture(params=["plaintext", "secure"])  # DP cells and sizes are noisy: no exact system to solve
def exact_loner_model(request) -> ModelArtifact:
    return loner_run(request.param)


def test_no_centroid_is_the_lone_customers_record(loner_model):
    """Attack (a): centroid x published scale + published mean. Before the fix the third
    centroid mapped back to (97.0, 4.0), the lone customer's exact record."""
    mean, scale = loner_model.scaler_arrays()
    back = loner_model.centroid_array() * scale + mean
    assert np.min(np.abs(back - LONER).max(axis=1)) > 1.0
    assert all(s.size >= MIN for s in loner_model.segments)


def test_population_minus_segments_recovers_nobody(loner_model):
    """Attack (b): population mean x N minus each described segment's mean x size. Before
    the fix the residual held 1 customer whose values were (97.0, 4.0)."""
    described = [s for s in loner_model.segments if s.profile is not None]
    n = loner_model.metrics["customers"]
    names = [f.name for f in SCHEMA.numeric]
    pop = np.array([described[0].profile.numeric[f].population_mean for f in names])
    rest_count = n - sum(s.size for s in described)
    rest_sum = pop * n - sum(np.array([s.profile.numeric[f].mean for f in names]) * s.size for s in described)
    assert rest_count == 0 or rest_count >= MIN, f"{rest_count} customer(s) left: {rest_sum / max(rest_count, 1)}"


def _pinned_cells(model: ModelArtifact) -> list[tuple[int, int, float]]:
    """Withheld transition cells that the published figures determine exactly: for each,
    minimise and maximise it subject to every published constraint (non-negative cells,
    published cells, column totals = published segment sizes, matched cells = customers
    minus changed); equal bounds mean the attacker knows the cell."""
    drift = model.drift
    cells = drift["transitions"]
    rows, cols = len(cells), len(cells[0])
    idx = lambda i, j: i * cols + j  # noqa: E731
    a_eq, b_eq = [], []
    for i in range(rows):
        for j in range(cols):
            if cells[i][j] is not None:
                a = np.zeros(rows * cols)
                a[idx(i, j)] = 1
                a_eq.append(a), b_eq.append(cells[i][j])
    sizes = {s.id: s.size for s in model.segments}
    for j in range(cols):
        a = np.zeros(rows * cols)
        a[[idx(i, j) for i in range(rows)]] = 1
        a_eq.append(a), b_eq.append(sizes[j])
    a = np.zeros(rows * cols)
    for i, j in enumerate(drift["matched_new_segment"]):
        if j >= 0:
            a[idx(i, j)] = 1
    a_eq.append(a), b_eq.append(drift["customers"] - drift["changed_segment"])
    pinned = []
    for i in range(rows):
        for j in range(cols):
            if cells[i][j] is None:
                c = np.zeros(rows * cols)
                c[idx(i, j)] = 1
                lo = linprog(c, A_eq=np.array(a_eq), b_eq=b_eq, bounds=(0, None)).fun
                hi = -linprog(-c, A_eq=np.array(a_eq), b_eq=b_eq, bounds=(0, None)).fun
                if hi - lo < 0.5:
                    pinned.append((i, j, lo))
    return pinned


def test_withheld_transition_cells_cannot_be_recomputed(exact_loner_model):
    """Attack (c): a withheld cell = its column's published segment size minus the other
    cells. Before the fix cell (2, 2) was withheld but its column (segment size 1, the
    other cells 0) gave it back: 1 customer stayed in the lone segment."""
    assert exact_loner_model.drift is not None
    assert _pinned_cells(exact_loner_model) == []


def test_quartiles_of_a_ten_customer_segment_are_withheld():
    """Quartiles are order statistics: of a 10-customer segment each is one customer's
    value. Before the fix the 10-customer segment (x0 = 70.5, 72.5, ..., 88.5) published
    q25 = 74, median = 78, q75 = 84: the left edges of the bins of its 3rd, 5th and 8th
    members' own values."""
    rng = np.random.default_rng(4)
    big = rng.normal([20.0, 20.0], 3.0, size=(300, 2))
    small = np.column_stack([np.linspace(70.5, 88.5, 10), rng.normal(80.0, 2.0, 10)])
    model = published(np.vstack([big, small]), warm_model(np.array([[20.0, 20.0], [80.0, 80.0]])), "plaintext")
    seg = next(s for s in model.segments if s.size == 10)
    x0 = seg.profile.numeric["x0"]
    assert (x0.q25, x0.median, x0.q75) == (None, None, None)
    big_seg = next(s for s in model.segments if s.size == 300)
    assert big_seg.profile.numeric["x0"].median == pytest.approx(np.quantile(big[:, 0], 0.5), abs=1.0)
