"""Replies no honest node can send (issue 13, item 1): the node is dropped with a code
that names the check, the run goes on over the others; a secure sum that fails a check
stops the run naming the phase; nothing wrong is ever published."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from numpy.testing import assert_allclose

from fedseg.common.config import RunConfig
from fedseg.common.messages import Scaler
from fedseg.common.phases import registry
from fedseg.common.phases.lloyd import PHASE as LLOYD, LloydReply, LloydRequest
from fedseg.common.phases.prepare import PrepareReply, PrepareRequest
from fedseg.common.reply_checks import ReplyRejected, check_reply
from fedseg.common.synthetic import generate_customers, synthetic_schema
from fedseg.server.orchestrator import Event, Orchestrator, RunError
from fedseg.simulations.local_transport import LocalTransport
from tests.helpers import frame_nodes, numeric_schema

_FULL = synthetic_schema()
# no robust features: prepare is the first exchange, so a node dropped there never counted
SCHEMA = _FULL.model_copy(update={"numeric": tuple(f.model_copy(update={"scaling": "standard"}) for f in _FULL.numeric)})
EVIL = 3


def frames(n_nodes: int = 4, customers: int = 2400):
    df = generate_customers(customers, n_nodes, seed=5).drop(columns=["true_segment"])
    return [g.drop(columns=["department"]) for _, g in df.groupby("department")]


FRAMES = frames()


def nan_sums(r):
    return {"sums": np.where(np.arange(r.sums.size).reshape(r.sums.shape) == 0, np.nan, r.sums)}


FAULTS = {  # fault -> (how the reply is changed, the code the node is dropped with)
    "nan": (nan_sums, "bad-reply-not-finite"),
    "inf": (lambda r: {"sums": r.sums + np.inf}, "bad-reply-not-finite"),
    "1e300": (lambda r: {"sums": r.sums + 1e300}, "bad-reply-out-of-bounds"),
    "negative-counts": (lambda r: {"counts": -r.counts} if hasattr(r, "counts") else {"count": -r.count},
                        "bad-reply-count"),
    "wrong-length": (lambda r: {"sums": r.sums[:-1]}, "bad-reply-shape"),
}


class TamperingTransport(LocalTransport):
    """Node EVIL's reply to the `at`-th request of `phase` is changed by `tamper`."""

    def __init__(self, nodes, phase: str, tamper, at: int = 1):
        super().__init__(nodes)
        self.phase, self.tamper, self.at, self.seen = phase, tamper, at, 0

    def send(self, requests):
        replies = super().send(requests)
        if getattr(next(iter(requests.values())), "phase", None) == self.phase:
            self.seen += 1
            if self.seen == self.at and EVIL in replies:
                replies[EVIL] = replies[EVIL].model_copy(update=self.tamper(replies[EVIL]))
        return replies


def run(node_frames, config, tr=None, events=None):
    tr = tr or LocalTransport(frame_nodes(node_frames))
    return Orchestrator(config, SCHEMA, tr, list(tr.nodes), (events if events is not None else []).append).run()


# ---- the checks on hand-made replies --------------------------------------------------


def _prepare_reply(count=10, sums=(1.0, 2.0), sumsq=(1.0, 4.0)):
    return PrepareReply(count=count, sums=np.array(sums), sumsq=np.array(sumsq), category_counts=np.zeros(0))


@pytest.mark.parametrize("reply, check", [
    (_prepare_reply(), None),
    (_prepare_reply(count=-1), "count"),
    (_prepare_reply(count=11), "count"),  # more customers than the node prepared
    (_prepare_reply(sums=(1.0,)), "shape"),
    (_prepare_reply(sums=(np.nan, 1.0)), "finite"),
    (_prepare_reply(sumsq=(-1.0, 4.0)), "bounds"),
])
def test_check_reply_on_hand_made_prepare_replies(reply, check):
    request = PrepareRequest(schema=numeric_schema(2))  # no public bounds: sums unbounded
    if check is None:
        check_reply(request, reply, customers=10)
        return
    with pytest.raises(ReplyRejected) as err:
        check_reply(request, reply, customers=10)
    assert (err.value.phase, err.value.check) == ("prepare", check)


def test_sums_beyond_count_times_the_public_bound_are_rejected():
    """Lloyd sums of 4 customers in a box whose scaled entries are at most b: |sum| ≤ 4 b."""
    request = LloydRequest(schema=SCHEMA, scaler=Scaler(mean=np.zeros(SCHEMA.n_encoded),
                                                        scale=np.ones(SCHEMA.n_encoded)),
                           centroids=np.zeros((2, SCHEMA.n_encoded)), sizes=[2])
    b = LLOYD.bounds(request)["sums"]
    ok = dict(counts=np.array([1, 3]), inertia=np.zeros(2), dist=np.zeros(2), silhouette=np.zeros(2))
    check_reply(request, LloydReply(sums=np.full((2, SCHEMA.n_encoded), 4 * b), **ok), customers=4)
    with pytest.raises(ReplyRejected, match="sums"):
        check_reply(request, LloydReply(sums=np.full((2, SCHEMA.n_encoded), 4.01 * b), **ok), customers=4)
    with pytest.raises(ReplyRejected, match="inertia"):
        check_reply(request, LloydReply(sums=np.zeros((2, SCHEMA.n_encoded)),
                                        **{**ok, "inertia": np.array([0.0, -1e-3])}), customers=4)
    with pytest.raises(ReplyRejected, match="counts"):
        check_reply(request, LloydReply(sums=np.zeros((2, SCHEMA.n_encoded)),
                                        **{**ok, "counts": np.array([0.5, 3.5])}), customers=4)


# ---- whole runs in process --------------------------------------------------------------


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_node_with_an_impossible_prepare_reply_is_dropped_and_the_model_is_the_survivors(fault):
    """Tampered at the first exchange, the run must equal a run without that node."""
    tamper, code = FAULTS[fault]
    events: list[Event] = []
    tr = TamperingTransport(frame_nodes(FRAMES), "prepare", tamper)
    result = run(FRAMES, RunConfig(k=3, seed=2), tr, events)
    survivors = [f for i, f in enumerate(FRAMES, start=1) if i != EVIL]
    reference = run(survivors, RunConfig(k=3, seed=2))
    assert result.failures == {EVIL: code}
    assert result.n_customers == sum(len(f) for f in survivors)
    assert_allclose(result.chosen.centroids, reference.chosen.centroids, atol=1e-9)
    [drop] = [e.message for e in events if e.phase == "node-failed"]
    assert f"node {EVIL}" in drop and "phase prepare" in drop and code in drop


@pytest.mark.parametrize("fault", ["nan", "1e300", "negative-counts", "wrong-length"])
def test_a_node_with_an_impossible_lloyd_reply_is_dropped_mid_run(fault):
    tamper, code = FAULTS[fault]
    tr = TamperingTransport(frame_nodes(FRAMES), "lloyd", tamper, at=2)
    result = run(FRAMES, RunConfig(k=3, seed=2), tr)
    assert result.failures == {EVIL: code}
    survivors = sum(len(f) for i, f in enumerate(FRAMES, start=1) if i != EVIL)
    assert int(result.profile.counts.sum()) == survivors
    assert np.isfinite(result.chosen.centroids).all()


def test_a_secure_sum_with_impossible_counts_stops_the_run_naming_the_phase(monkeypatch):
    """The evil node negates its Lloyd counts before masking: only the sum shows it, the
    server cannot tell who, so it publishes nothing."""
    def evil_answer(request, data):
        reply = LLOYD.answer(request, data)
        return reply.model_copy(update={"counts": -reply.counts}) if data.key.startswith("evil") else reply

    monkeypatch.setitem(registry._PHASES, "lloyd", dataclasses.replace(LLOYD, answer=evil_answer))
    nodes = frame_nodes(FRAMES)
    nodes[EVIL].key = "evil-" + nodes[EVIL].key
    with pytest.raises(RunError, match=r"secure sum of phase lloyd: field 'counts' failed the count check"):
        run(FRAMES, RunConfig(k=3, seed=2, secure=True), LocalTransport(nodes))


def test_the_model_states_how_many_nodes_each_exchange_included():
    """Dropout semantics (issue 13, item 4): node EVIL leaves at the second Lloyd round, so
    histogram, prepare, coreset and the first round sum 4 nodes, the rest 3."""
    tr = TamperingTransport(frame_nodes(FRAMES), "lloyd", FAULTS["nan"][0], at=2)
    result = run(FRAMES, RunConfig(k=3, seed=2), tr)
    nodes = result.phase_nodes
    assert nodes["prepare"] == [4] and nodes["bucket_counts"] == [4] and nodes["bucket_sums"] == [4]
    assert nodes["lloyd"] == [4] + [3] * (result.lloyd_rounds - 1)
    assert set(nodes["profile"]) == {3}
