"""Whole runs in secure mode (in-process): equal to plaintext, dropouts, what the server sees."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from fedseg.client.handlers import handle
from fedseg.common.config import RunConfig
from fedseg.common.messages import ReadyReply
from fedseg.common.phases.lloyd import LloydRequest
from fedseg.common.wire import (
    SecureKeysReply,
    SecureCheckRequest,
    SecureMaskedReply,
    SecureRoundRequest,
    SecureSharesReply,
    SecureUnmaskReply,
    SecureUnmaskRequest,
    decode_reply,
)
from fedseg.server.orchestrator import Orchestrator, RunError
from fedseg.simulations.local_transport import LocalTransport
from fedseg.common.synthetic import generate_customers, synthetic_schema
from tests.helpers import frame_nodes

SCHEMA = synthetic_schema()


def frames(n_nodes: int, customers: int = 3000):
    df = generate_customers(customers, n_nodes, seed=4).drop(columns=["true_segment"])
    return [g.drop(columns=["department"]) for _, g in df.groupby("department")]


class DroppingTransport(LocalTransport):
    """Loses nodes at a chosen Lloyd round: before they mask, or after (no unmask reply)."""

    def __init__(self, nodes, at_round: int, before: set[int] = frozenset(), after: set[int] = frozenset()):
        super().__init__(nodes)
        self.at_round, self.before, self.after, self.lloyd = at_round, set(before), set(after), 0

    def send(self, requests):
        first = next(iter(requests.values()))
        if isinstance(first, SecureRoundRequest) and isinstance(first.inner, LloydRequest):
            self.lloyd += 1
            if self.lloyd == self.at_round:
                self.dead |= self.before
        if isinstance(first, SecureUnmaskRequest) and self.lloyd == self.at_round:
            self.dead |= self.after
        return super().send(requests)


def run(node_frames, config, tr=None):
    tr = tr or LocalTransport(frame_nodes(node_frames))
    return Orchestrator(config, SCHEMA, tr, list(tr.nodes)).run(), tr


def test_secure_run_equals_plaintext_run():
    node_frames = frames(4)
    plain, _ = run(node_frames, RunConfig(k=4, seed=9))
    secure, tr = run(node_frames, RunConfig(k=4, seed=9, secure=True))
    assert secure.n_customers == plain.n_customers == 3000
    assert_allclose(secure.scaler.mean, plain.scaler.mean, rtol=1e-9, atol=1e-9)
    assert_allclose(secure.chosen.centroids, plain.chosen.centroids, atol=1e-6)
    assert (secure.profile.counts == plain.profile.counts).all()  # counts exact
    assert secure.lloyd_rounds == plain.lloyd_rounds
    assert secure.rounds == 3 + 2 * plain.rounds  # validate + 2 set-up, then 2 per exchange


@pytest.mark.parametrize("n_nodes, before, after", [(5, set(), {3}), (10, {2, 5, 8}, set()), (10, {1}, {4, 7})])
def test_a_dropout_after_the_first_release_ends_an_exact_secure_run(n_nodes, before, after):
    # Changed by issue 10: an exact sum over a smaller cohort, next to one over the full
    # cohort, is the missing nodes' data (differencing); the nodes refuse it, and the
    # server says why instead of asking them.
    node_frames = frames(n_nodes, 4000)
    tr = DroppingTransport(frame_nodes(node_frames), at_round=2, before=before, after=after)
    with pytest.raises(RunError, match="cohort shrank .* without differential privacy cannot continue"):
        run(node_frames, RunConfig(k=3, seed=2, secure=True, min_nodes=3), tr)


class FirstRoundDrop(LocalTransport):
    """Loses nodes before they mask their first secure reply (before any release)."""

    def __init__(self, nodes, before):
        super().__init__(nodes)
        self.before = set(before)

    def send(self, requests):
        if isinstance(next(iter(requests.values())), SecureRoundRequest):
            self.dead |= self.before
        return super().send(requests)


@pytest.mark.parametrize("n_nodes, before", [(5, {3}), (10, {2, 5, 8})])
def test_dropouts_before_the_first_release_reach_the_plaintext_result_over_survivors(n_nodes, before):
    node_frames = frames(n_nodes, 4000)
    secure, tr = run(node_frames, RunConfig(k=3, seed=2, secure=True, min_nodes=3),
                     FirstRoundDrop(frame_nodes(node_frames), before))
    assert set(secure.failures) == before
    assert any(isinstance(r, SecureCheckRequest) for r in tr.sent)  # the survivors signed the list
    kept = [f for i, f in enumerate(node_frames, start=1) if i not in before]
    plain, _ = run(kept, RunConfig(k=3, seed=2, min_nodes=3))
    assert_allclose(secure.chosen.centroids, plain.chosen.centroids, atol=1e-6)
    assert (secure.profile.counts == plain.profile.counts).all()


@pytest.mark.parametrize("before, after", [({2}, set()), (set(), {4})])
def test_a_dp_run_continues_over_the_smaller_cohort(before, after):
    node_frames = frames(5, 4000)
    tr = DroppingTransport(frame_nodes(node_frames), at_round=2, before=before, after=after)
    result, _ = run(node_frames, RunConfig(k=3, seed=2, secure=True, min_nodes=3, epsilon=1e4, max_rounds=4), tr)
    assert set(result.failures) == before | after
    kept = 4000 - sum(len(node_frames[i - 1]) for i in before | after)
    assert result.profile.counts.sum() == pytest.approx(kept, rel=0.01)


def test_steady_state_costs_two_exchanges_per_secure_round():
    node_frames = frames(4)
    result, tr = run(node_frames, RunConfig(k=3, seed=2, secure=True, max_rounds=3))
    kinds = [type(r).__name__ for r in tr.sent]
    rounds = kinds.count("SecureRoundRequest")
    assert kinds.count("SecureUnmaskRequest") == rounds > 0
    assert "SecureCheckRequest" not in kinds  # nobody dropped: no signing exchange
    assert len(kinds) == 3 + 2 * rounds  # validate + 2 set-up, then exactly 2 per round


def test_too_many_dropouts_stop_the_run_clearly():
    node_frames = frames(5)
    tr = DroppingTransport(frame_nodes(node_frames), at_round=1, before={1, 2})
    with pytest.raises(RunError, match="secure aggregation failed|below threshold"):
        run(node_frames, RunConfig(k=3, seed=2, secure=True, max_dropout=0.2), tr)


def test_secure_mode_needs_public_bounds():
    from fedseg.common.schema import FeatureSchema
    schema = FeatureSchema.numeric_only("customer_id", ["age"])
    tr = LocalTransport(frame_nodes([f[["customer_id", "age"]] for f in frames(3)]))
    with pytest.raises(RunError, match="public lower and upper bounds"):
        Orchestrator(RunConfig(k=2, secure=True), schema, tr, list(tr.nodes)).run()


def test_server_sees_only_masked_vectors_uncorrelated_with_node_statistics():
    node_frames = frames(4)
    result, tr = run(node_frames, RunConfig(k=4, seed=9, secure=True, max_rounds=3))
    allowed = (ReadyReply, SecureKeysReply, SecureSharesReply, SecureMaskedReply, SecureUnmaskReply)
    replies = [(nid, decode_reply(raw)) for nid, raw in tr.received]
    assert all(isinstance(r, allowed) for _, r in replies)  # no plaintext statistics at all

    # replay one Lloyd request to each node in plaintext to get its true statistics
    request = next(
        r.inner for r in tr.sent if isinstance(r, SecureRoundRequest) and r.round.round == 6
    )
    assert isinstance(request, LloydRequest)
    masked = [r.masked for _, r in replies if isinstance(r, SecureMaskedReply) and r.masked.round == 6]
    assert len(masked) == 4
    for m in masked:
        truth = handle(request, tr.nodes[m.node_id])
        sums = m.arrays()["sums"]
        top = (sums >> np.uint64(56)).astype(int)  # high byte of each masked word
        _, p = stats.chisquare(np.bincount(top, minlength=256))
        assert p > 1e-4
        r = np.corrcoef(sums.astype(float), truth.sums.ravel())[0, 1]
        assert abs(r) < 0.2


def test_aggregate_is_not_decodable_without_all_masks():
    node_frames = frames(4)
    _, tr = run(node_frames, RunConfig(k=2, seed=9, secure=True, max_rounds=1))
    uploads = [decode_reply(raw).masked for _, raw in tr.received if isinstance(decode_reply(raw), SecureMaskedReply)]
    # the preprocessing round (after the histograms of the money features): customer counts
    prepare = min(m.round for m in uploads if "count" in m.arrays())
    masked = [m for m in uploads if m.round == prepare]
    assert len(masked) == 4
    for left_out in range(4):  # add up all nodes but one, as the server could on its own
        partial = sum(m.arrays()["count"] for i, m in enumerate(masked) if i != left_out)
        value = partial.astype(np.int64)[0] / 2**24
        assert not 0 <= value <= 3000  # nothing like a count of customers
    full = sum(m.arrays()["count"] for m in masked)  # still self-masked: needs the unmask step
    assert not 0 <= full.astype(np.int64)[0] / 2**24 <= 3000
