"""The sparse neighbour graph (issue 14 item 4): its parameters against independent
binomial / hypergeometric tails, a server that lies about the graph or isolates a node,
and sums and whole runs equal to the plaintext ones with the graph forced on small cohorts."""

from __future__ import annotations

from math import floor

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from fedseg.common.config import RunConfig
from fedseg.common.secagg import graph
from fedseg.common.secagg.graph import GraphParams, derive_graph, graph_params, out_choice
from fedseg.common.secagg.messages import CIPHERTEXT_BYTES, SecAggError, SecAggRefused
from fedseg.common.secagg.server import SecAggServer
from tests.helpers import frame_nodes
from tests.secagg_driver import run_local_secure_sum, set_up_clients, signed_if_dropped, trusted_clients
from tests.test_secure_run import FirstRoundDrop, frames, run

NODES = list(range(1, 13))
FORCED = GraphParams(degree=3, threshold=2)  # 4 holders per node, any 2 of them suffice


WIDE = GraphParams(degree=4, threshold=2)  # any two dropouts leave every node 2 out-neighbours


def force(monkeypatch, params):
    """A low cut-off for the test: 8 nodes or more use `params`. Returns the cohort
    sizes asked for, to show the runs used the sparse graph."""
    asked = []

    def forced(n):
        asked.append(n)
        return params if n >= 8 else None

    monkeypatch.setattr(graph, "graph_params", forced)
    return asked


@pytest.fixture
def sparse(monkeypatch):
    return force(monkeypatch, FORCED)


@pytest.fixture
def sparse_wide(monkeypatch):
    return force(monkeypatch, WIDE)


def fixed_point_sum(vectors, frac=24):
    """Reference: sum of round(x * 2^frac) in Python ints, scaled back."""
    scaled = [np.rint(np.asarray(v) * 2.0**frac).astype(np.int64).tolist() for v in vectors]
    return np.array([sum(col) for col in zip(*scaled, strict=True)], dtype=np.float64) / 2.0**frac


def set_up(nodes=NODES, threshold=7, **policy):
    server = SecAggServer(run_id="sparse", threshold=threshold)
    clients = trusted_clients(nodes, **policy)
    set_up_clients(server, clients)
    return server, clients


# ----------------------------------------------------------------------------- parameters


def test_small_cohorts_keep_the_complete_graph():
    assert all(graph_params(n) is None for n in (3, 5, 10, 50, 99))
    assert derive_graph(run_id="r", node_ids=NODES, public_keys={u: bytes([u]) * 32 for u in NODES}) is None


@pytest.mark.parametrize("n", [100, 200, 500])
def test_parameters_meet_the_stated_tails(n):
    params = graph_params(n)
    k, t = params.degree, params.threshold
    colluders = floor(graph.COLLUDER_FRACTION * n)
    # privacy: >= t colluders among k holders drawn without replacement from n - 1 others
    assert n * stats.hypergeom(n - 1, colluders, k).sf(t - 1) <= 2.0**-40
    # liveness: fewer than t of the k out-neighbours survive independent 20 % dropouts
    assert n * stats.binom(k, 1 - graph.DROPOUT_FRACTION).cdf(t - 1) <= 2.0**-20
    assert 2 * k < n - 1 and 1 <= t <= k + 1
    # k is the smallest degree that meets both tails (so the graph is no denser than needed)
    fewer = k - 1
    assert not any(
        n * stats.hypergeom(n - 1, colluders, fewer).sf(s - 1) <= 2.0**-40
        and n * stats.binom(fewer, 1 - graph.DROPOUT_FRACTION).cdf(s - 1) <= 2.0**-20
        for s in range(1, fewer + 2)
    )


def test_a_nodes_holders_follow_its_own_key_and_nothing_else():
    ids = tuple(range(1, 201))
    key = bytes(range(32))
    chosen = out_choice(run_id="r", node_id=5, public_key=key, node_ids=ids, degree=31)
    assert len(set(chosen)) == 31 and 5 not in chosen and set(chosen) <= set(ids)
    assert chosen == out_choice(run_id="r", node_id=5, public_key=key, node_ids=ids, degree=31)
    other_key = out_choice(run_id="r", node_id=5, public_key=bytes(32), node_ids=ids, degree=31)
    other_run = out_choice(run_id="s", node_id=5, public_key=key, node_ids=ids, degree=31)
    assert chosen != other_key and chosen != other_run
    flower_ids = tuple(i * 0x9E3779B97F4A7C15 % 2**64 for i in range(1, 201))  # 64-bit, as Flower's
    big = out_choice(run_id="r", node_id=flower_ids[5], public_key=key, node_ids=flower_ids, degree=31)
    assert len(set(big)) == 31 and set(big) <= set(flower_ids) - {flower_ids[5]}


def test_out_choice_follows_the_specified_encoding():
    """PRIVACY.md, "Sparse neighbour graph": SHA-256 of the protocol string, "/graph" and
    the length-prefixed fields, as an AES-256-CTR key; the k smallest little-endian words."""
    import hashlib
    import struct

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    def field(raw):
        return struct.pack(">I", len(raw)) + raw

    ids, me, key, k = (11, 3, 2**63 + 5, 40, 7, 99), 40, bytes(range(1, 33)), 3
    data = b"fedseg-secagg/2/graph" + field(b"run-1") + field(me.to_bytes(8, "big")) + field(key)
    data += b"".join(field(v.to_bytes(8, "big")) for v in ids)
    stream = Cipher(algorithms.AES(hashlib.sha256(data).digest()), modes.CTR(bytes(16))).encryptor()
    words = struct.unpack(f"<{len(ids)}Q", stream.update(bytes(8 * len(ids))))
    expected = sorted(sorted((w, v) for w, v in zip(words, ids) if v != me)[i][1] for i in range(k))
    assert out_choice(run_id="run-1", node_id=me, public_key=key, node_ids=ids, degree=k) == tuple(expected)


def test_every_pair_masks_on_both_sides(sparse):
    server, clients = set_up()
    g = server.graph
    assert g is not None
    for u, client in clients.items():
        st = client.state
        assert st.neighbours == g.neighbours(u) and len(st.neighbours) < len(NODES) - 1
        assert all(u in g.neighbours(v) for v in st.neighbours)
        assert st.holders == tuple(sorted({u, *g.out[u]})) and len(st.holders) == FORCED.degree + 1


# ----------------------------------------------------------------------------- attacks


def test_round_secrets_from_another_neighbour_set_are_refused(sparse):
    server, clients = set_up()
    requests = server.round_requests({"x": 4})
    u = NODES[0]
    request = requests[u]
    honest = set(request.secrets)
    stranger = next(v for v in NODES if v != u and v not in honest)
    swapped = dict(request.secrets)
    swapped.pop(min(honest))
    swapped[stranger] = bytes(CIPHERTEXT_BYTES)
    with pytest.raises(SecAggError, match="expected senders"):
        clients[u].mask_input(request.model_copy(update={"secrets": swapped}), {"x": np.ones(4)})
    complete = {v: bytes(CIPHERTEXT_BYTES) for v in NODES if v != u}  # as if the graph were complete
    with pytest.raises(SecAggError, match="expected senders"):
        clients[u].mask_input(request.model_copy(update={"secrets": complete}), {"x": np.ones(4)})


def test_a_broadcast_key_swapped_to_move_the_graph_is_refused(sparse):
    server = SecAggServer(run_id="sparse", threshold=7)
    clients = trusted_clients(NODES)
    request = server.setup_request(NODES)
    for client in clients.values():
        server.receive_keys(client.advertise_keys(request))
    broadcast = server.key_broadcast()
    victim, other = NODES[0], NODES[1]
    regrind = dict(broadcast.public_keys) | {other: bytes([9]) * 32}  # a key the server chose
    with pytest.raises(SecAggRefused) as refused:
        clients[victim].share_keys(broadcast.model_copy(update={"public_keys": regrind}))
    assert refused.value.code == "bad-signature"


def test_dropping_all_of_a_nodes_neighbours_cannot_unmask_it_alone(sparse):
    server, clients = set_up()
    g = server.graph
    victim = min(NODES, key=lambda u: len(g.neighbours(u)))
    cut = set(g.neighbours(victim))
    assert len(cut) <= len(NODES) - 7  # within the global dropout tolerance
    x = {u: np.full(3, float(u)) for u in NODES}
    for u, req in server.round_requests({"x": 3}).items():
        masked = clients[u].mask_input(req, {"x": x[u]})
        if u not in cut:  # the server pretends the victim's neighbours never answered
            server.receive_masked(masked)
    request = signed_if_dropped(server, server.unmask_request(), lambda u, r: clients[u].sign_survivors(r))
    assert set(request.dropped) == cut
    with pytest.raises(SecAggRefused) as refused:
        clients[victim].unmask(request)
    assert refused.value.code == "inconsistent-survivors"
    revealed = []
    for u in request.survivors:
        if u != victim:
            try:  # a node whose own neighbourhood was cut refuses too
                reply = clients[u].unmask(request)
            except SecAggRefused as exc:
                assert exc.code == "inconsistent-survivors"
                continue
            revealed += [v for v in reply.seed_shares if v == victim]
            server.receive_unmask_shares(reply)
    assert revealed == []  # nobody else holds a share of the victim's self-mask
    with pytest.raises(SecAggError, match=f"holders of node {victim}|below threshold"):
        server.finish_round()


def test_a_node_whose_policy_counts_more_colluders_than_the_graph_tolerates_refuses(sparse):
    server = SecAggServer(run_id="sparse", threshold=8)
    clients = trusted_clients(NODES, max_colluders=1)  # floor(0.05 * 12) = 0 tolerated
    request = server.setup_request(NODES)
    for client in clients.values():
        server.receive_keys(client.advertise_keys(request))
    with pytest.raises(SecAggRefused) as refused:
        clients[NODES[0]].share_keys(server.key_broadcast())
    assert refused.value.code == "threshold-refused"


# ----------------------------------------------------------------------------- correctness


def test_sparse_sums_equal_the_plain_sums_with_dropouts(sparse_wide):
    rng = np.random.default_rng(3)
    inputs = [{u: {"s": rng.normal(50, 30, 40), "c": rng.integers(0, 500, 5).astype(float)} for u in NODES}
              for _ in range(3)]
    results = run_local_secure_sum(
        inputs, threshold=7, drop_before_masking={1: [4]}, drop_after_masking={2: [9]},
    )
    members = [[u for u in NODES if u != 4], [u for u in NODES if u != 4], [u for u in NODES if u not in (4, 9)]]
    for round_inputs, result, alive in zip(inputs, results, members, strict=True):
        assert list(result.survivors) == alive
        assert_allclose(result.sums["s"], fixed_point_sum([round_inputs[u]["s"] for u in alive]), atol=1e-9)
        assert (result.sums["c"] == np.sum([round_inputs[u]["c"] for u in alive], axis=0)).all()


@pytest.mark.integration  # whole runs: ~15 s each on a shared machine
def test_a_sparse_secure_run_equals_the_plaintext_run(sparse):
    node_frames = frames(10, 4000)
    plain, _ = run(node_frames, RunConfig(k=3, seed=2, min_nodes=3))
    secure, _ = run(node_frames, RunConfig(k=3, seed=2, secure=True, min_nodes=3))
    assert set(sparse) == {10}  # every node and the server used the sparse graph
    assert_allclose(secure.scaler.mean, plain.scaler.mean, rtol=1e-9, atol=1e-9)
    assert_allclose(secure.chosen.centroids, plain.chosen.centroids, atol=1e-6)
    assert (secure.profile.counts == plain.profile.counts).all()
    assert secure.lloyd_rounds == plain.lloyd_rounds


@pytest.mark.integration
def test_a_sparse_run_with_dropouts_equals_the_plaintext_run_over_survivors(sparse_wide):
    node_frames, before = frames(10, 4000), {2, 7}
    secure, _ = run(node_frames, RunConfig(k=3, seed=2, secure=True, min_nodes=3),
                    FirstRoundDrop(frame_nodes(node_frames), before))
    assert set(secure.failures) == before and set(sparse_wide) == {10}
    kept = [f for i, f in enumerate(node_frames, start=1) if i not in before]
    plain, _ = run(kept, RunConfig(k=3, seed=2, min_nodes=3))
    assert_allclose(secure.chosen.centroids, plain.chosen.centroids, atol=1e-6)
    assert (secure.profile.counts == plain.profile.counts).all()
