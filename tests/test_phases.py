"""Every protocol phase's declaration agrees with what its node handler sends.

One phase module declares request, reply, handler, layout, bounds and DP release; these
tests check the declarations against real replies on small hand-built tables, the
generic sum of replies against hand sums, and that a new phase is one registration.
"""

from __future__ import annotations

import uuid
from typing import Literal

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fedseg.client.handlers import NodeData, handle
from fedseg.common.secagg import messages as sa
from fedseg.common.messages import Message, NDArray, Scaler, SchemaRequest
from fedseg.common.phases.base import DPRelease, LocalData, Phase, add_replies, reply_fields
from fedseg.common.phases.bucket_counts import BucketCountsRequest
from fedseg.common.phases.bucket_sums import BucketSumsRequest
from fedseg.common.phases.histogram import HistogramRequest
from fedseg.common.phases.lloyd import LloydReply, LloydRequest
from fedseg.common.phases.prepare import PrepareReply, PrepareRequest
from fedseg.common.phases.profile import ProfileReply, ProfileRequest
from fedseg.common.phases.registry import all_phases, phase_for, register, unregister
from fedseg.common.phases.transitions import TransitionRequest
from fedseg.common.preprocessing import LocalTable
from fedseg.common.schema import CategoricalFeature, FeatureSchema, NumericFeature
from fedseg.common.secure_layout import reply_layout
from fedseg.common.wire import SecureRoundRequest, decode_reply, decode_request, encode

SCHEMA = FeatureSchema(
    id="id",
    numeric=(
        NumericFeature(name="spend", transform="log1p", lower=0.0, upper=100.0, score="high", bins=20),
        NumericFeature(name="tenure", lower=-5.0, upper=5.0),
    ),
    categorical=(CategoricalFeature(name="region", values=("n", "s", "w")),),
)
D = SCHEMA.n_encoded  # 2 numeric + 3 one-hot
SCALER = Scaler(mean=np.zeros(D), scale=np.ones(D))  # scaled = encoded: centroid 0 lies in the box
CENTROIDS = np.zeros((2, D))
LOWER = [0.0, -5.0]
UPPER = [100.0, 5.0]


def requests() -> dict[str, SchemaRequest]:
    """One request of every built-in phase, by phase name."""
    rng = np.random.default_rng(0)
    normals, offsets = rng.normal(size=(2, 3, D)), rng.normal(size=(2, 3))
    planes = {"schema": SCHEMA, "scaler": SCALER, "normals": normals, "offsets": offsets}
    reqs = [
        PrepareRequest(schema=SCHEMA),
        BucketCountsRequest(**planes),
        BucketSumsRequest(**planes, dense=np.array([0, 3, 9]), clip_norm=0.0),
        LloydRequest(schema=SCHEMA, scaler=SCALER, centroids=np.vstack([CENTROIDS, np.zeros((3, D))]), sizes=[2, 3]),
        ProfileRequest(schema=SCHEMA, scaler=SCALER, centroids=CENTROIDS, score_bins=np.array([[3, 7, 11, 15]])),
        HistogramRequest(schema=SCHEMA),
        TransitionRequest(schema=SCHEMA, scaler=SCALER, centroids=CENTROIDS, old_schema=SCHEMA,
                          old_scaler=SCALER, old_centroids=np.zeros((3, D))),
    ]
    return {r.phase: r for r in reqs}


def node(numeric: list[list[float]], codes: list[int]) -> NodeData:
    """An in-process node holding these customers."""
    table = LocalTable(ids=np.array([str(i) for i in range(len(codes))]), numeric=np.array(numeric, dtype=float),
                       codes=np.array(codes, dtype=np.int64).reshape(-1, 1))
    return NodeData(f"phases-{uuid.uuid4()}", lambda schema: table)


FIRST = ([[10.0, 1.0], [55.0, -2.0], [0.0, 4.5]], [0, 2, 1])
SECOND = ([[99.0, 0.0], [3.0, -5.0]], [1, 1])


def test_every_built_in_phase_is_registered_under_its_request_phase():
    assert {p.name for p in all_phases()} >= set(requests())
    for name, req in requests().items():
        assert phase_for(req).name == name
    # found by the `phase` literal: the subclass finds its own phase, not its parent's
    assert isinstance(requests()["bucket_sums"], BucketCountsRequest)
    assert phase_for(requests()["bucket_sums"]).name == "bucket_sums"


@pytest.mark.parametrize("name", sorted(requests()))
def test_layout_matches_the_shapes_of_a_real_reply(name):
    req = requests()[name]
    phase = phase_for(req)
    reply = phase.answer(req, node(*FIRST))
    layout = phase.layout(req)
    assert isinstance(reply, phase.reply)
    assert set(layout) == set(reply_fields(phase.reply))
    for tag, shape in layout.items():
        assert np.shape(getattr(reply, tag)) == shape, tag


@pytest.mark.parametrize("corner", [LOWER, UPPER, [1e6, -1e6]], ids=["lower", "upper", "beyond"])
@pytest.mark.parametrize("name", sorted(requests()))
def test_bounds_cover_one_customer_at_the_box_corner(name, corner):
    req = requests()[name]
    phase = phase_for(req)
    bounds = phase.bounds(req)
    assert set(bounds) == set(phase.layout(req))
    for code in range(3):
        reply = phase.answer(req, node([corner], [code]))
        for tag, bound in bounds.items():
            value = np.abs(np.asarray(getattr(reply, tag), dtype=float))
            assert value.size == 0 or value.max() <= bound * (1 + 1e-12), (tag, value.max(), bound)


def test_add_replies_sums_every_field_by_hand():
    a = LloydReply(sums=np.array([[1.0, 2.0]]), counts=np.array([3]), inertia=np.array([0.5]),
                   dist=np.array([1.0]), silhouette=np.array([0.25]))
    b = LloydReply(sums=np.array([[-1.0, 4.0]]), counts=np.array([2]), inertia=np.array([1.5]),
                   dist=np.array([2.0]), silhouette=np.array([0.5]))
    total = add_replies([a, b])
    assert isinstance(total, LloydReply)
    assert_array_equal(total.sums, [[0.0, 6.0]])
    assert_array_equal(total.counts, [5])
    assert total.counts.dtype == np.int64
    assert_array_equal(total.inertia, [2.0])
    assert_array_equal(total.dist, [3.0])
    assert_array_equal(total.silhouette, [0.75])

    p = add_replies([PrepareReply(count=3, sums=np.array([1.0]), sumsq=np.array([1.0]), category_counts=np.array([1.0, 2.0])),
                     PrepareReply(count=4, sums=np.array([2.0]), sumsq=np.array([4.0]), category_counts=np.array([0.0, 4.0]))])
    assert p.count == 7 and isinstance(p.count, int)
    assert_array_equal(p.sums, [3.0]) and assert_array_equal(p.sumsq, [5.0])
    assert_array_equal(p.category_counts, [1.0, 6.0])


def test_add_replies_drops_an_optional_field_one_reply_lacks():
    full = ProfileReply(counts=np.array([1]), sums=np.ones((1, 1)), sumsq=np.ones((1, 1)),
                        category_counts=np.zeros((1, 0)), scores=np.array([[4.0]]), histograms=np.ones((1, 2)))
    bare = full.model_copy(update={"scores": None})
    total = add_replies([full, bare])
    assert total.scores is None
    assert_array_equal(total.histograms, [[2.0, 2.0]])
    assert add_replies([full]) is full


@pytest.mark.parametrize("name", sorted(requests()))
def test_summed_replies_of_two_nodes_equal_the_reply_of_their_union(name):
    req = requests()[name]
    phase = phase_for(req)
    summed = add_replies([phase.answer(req, node(*FIRST)), phase.answer(req, node(*SECOND))])
    pooled = phase.answer(req, node(FIRST[0] + SECOND[0], FIRST[1] + SECOND[1]))
    for tag in reply_fields(phase.reply):
        assert_allclose(getattr(summed, tag), getattr(pooled, tag), rtol=1e-12, atol=1e-12, err_msg=tag)


# ---- a new phase is one declaration ----------------------------------------------------


class RowCountRequest(SchemaRequest):
    """Toy phase: how many rows the node holds."""

    phase: Literal["toy_rows"] = "toy_rows"


class RowCountReply(Message):
    phase: Literal["toy_rows"] = "toy_rows"
    counts: NDArray  # (1,)


def _rows(req: RowCountRequest, data: LocalData) -> RowCountReply:
    return RowCountReply(counts=np.array([data.table(req.schema_).n_rows]))


TOY = Phase("toy_rows", RowCountRequest, RowCountReply, _rows, lambda req: {"counts": (1,)},
            lambda req: {"counts": 1.0}, lambda req, schema: DPRelease("toy", 1.0, {"counts": 1.0}))


@pytest.fixture
def toy_phase():
    register(TOY)
    yield TOY
    unregister(TOY.name)


def test_a_new_phase_travels_the_wire_and_is_answered_by_handle(toy_phase):
    request = decode_request(encode(RowCountRequest(schema=SCHEMA)))
    assert isinstance(request, RowCountRequest)
    reply = decode_reply(encode(handle(request, node(*FIRST))))
    assert isinstance(reply, RowCountReply)
    assert_array_equal(reply.counts, [3])
    assert reply_layout(request) == {"counts": (1,)}
    total = add_replies([reply, decode_reply(encode(handle(request, node(*SECOND))))])
    assert_array_equal(total.counts, [5])
    # secure mode wraps it like any built-in phase
    round_ = sa.RoundRequest(run_id="toy", round=1, vectors={"counts": 1}, active=(1, 2), secrets={})
    wrapped = decode_request(encode(SecureRoundRequest(inner=request, round=round_, scales={"counts": 1.0})))
    assert isinstance(wrapped.inner, RowCountRequest)


def test_a_phase_must_be_named_like_its_messages():
    with pytest.raises(ValueError, match="phase must default"):
        register(Phase("other", RowCountRequest, RowCountReply, _rows, TOY.layout, TOY.bounds, TOY.dp_release))
    with pytest.raises(ValueError, match="already registered"):
        register(Phase("prepare", PrepareRequest, PrepareReply, _rows, TOY.layout, TOY.bounds, TOY.dp_release))
