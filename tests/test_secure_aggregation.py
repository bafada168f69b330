"""Secure aggregation: sums against numpy, dropouts, privacy of masked payloads, validation."""

import time
from typing import NamedTuple

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from numpy.testing import assert_allclose, assert_array_equal
from pydantic import ValidationError
from scipy import stats

from fedseg.common.secagg.derivation import encode_info, escrow_pad, hkdf, pair_key
from fedseg.common.secagg.fixed_point import FixedPointOverflowError, decode, encode
from fedseg.common.secagg.masks import keystreams, pairwise_masks, self_mask
from fedseg.common.secagg.messages import (
    KeyBroadcast,
    MaskedInput,
    RoundRequest,
    SecAggError,
    SetupRequest,
    UnmaskShares,
)
from fedseg.common.secagg.server import RoundResult, SecAggServer
from tests.secagg_driver import run_local_secure_sum, set_up_clients, signed_if_dropped, trusted_clients

FRAC = 24
NODES = [101, 7, 55, 3000, 42]  # arbitrary, unsorted ids


def seeded(seed):
    return np.random.default_rng(seed).bytes


def fixed_point_sum(vectors):
    """Reference: sum of round(x * 2^FRAC) with Python ints, scaled back."""
    scaled = [np.rint(np.asarray(v) * 2.0**FRAC).astype(np.int64).tolist() for v in vectors]
    return np.array([sum(col) for col in zip(*scaled, strict=True)], dtype=np.float64) / 2.0**FRAC


def make_inputs(nodes, specs, seed):
    """One dict per round: node -> {tag: vector}; specs: per round {tag: length}."""
    rng = np.random.default_rng(seed)
    rounds = []
    for spec in specs:
        rounds.append(
            {
                u: {
                    tag: (
                        rng.integers(0, 500, n).astype(float)
                        if tag == "counts"
                        else rng.normal(50, 30, n)
                    )
                    for tag, n in spec.items()
                }
                for u in nodes
            }
        )
    return rounds


def set_up(nodes, threshold, seed=0):
    """Run the two set-up exchanges; returns the server and the clients."""
    rng = seeded(seed)
    server = SecAggServer(run_id="run-1", threshold=threshold, frac_bits=FRAC)
    clients = trusted_clients(nodes, rng=rng)
    set_up_clients(server, clients)
    return server, clients


class Transcript(NamedTuple):
    """Everything the server saw in one round, and its result."""

    result: RoundResult
    requests: dict[int, RoundRequest]
    masked: dict[int, MaskedInput]  # including withheld (late) ones
    replies: dict[int, UnmaskShares]


def run_round(server, clients, inputs, *, withhold=(), noised=False):
    """One full round in which the masked inputs of `withhold` are lost."""
    spec = {tag: len(v) for tag, v in next(iter(inputs.values())).items()}
    requests = server.round_requests(spec)
    masked = {u: clients[u].mask_input(req, inputs[u], noised=noised) for u, req in requests.items()}
    for u, msg in masked.items():
        if u not in withhold:
            server.receive_masked(msg)
    request = signed_if_dropped(server, server.unmask_request(), lambda u, req: clients[u].sign_survivors(req))
    replies = {u: clients[u].unmask(request) for u in request.survivors}
    for reply in replies.values():
        server.receive_unmask_shares(reply)
    return Transcript(server.finish_round(), requests, masked, replies)


def reconstruct_key(replies, field, owner):
    """What the server can rebuild from the revealed shares of one node's secret.

    Independent of the module: Lagrange interpolation at zero with Python integers,
    digit by digit over GF(2^31 - 1), then the base-p digits recombined."""
    p = 2**31 - 1
    xs = [NODES.index(u) + 1 for u in replies]
    rows = [np.frombuffer(getattr(r, field)[owner], dtype=">u4").tolist() for r in replies.values()]
    value = 0
    for digit in reversed(range(9)):
        y = 0
        for i, xi in enumerate(xs):
            num = den = 1
            for j, xj in enumerate(xs):
                if j != i:
                    num, den = num * xj % p, den * (xj - xi) % p
            y += rows[i][digit] * num * pow(den, -1, p)
        value = value * p + y % p
    return value.to_bytes(32, "big")


def public_key(private_key):
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def strip_pairwise(y, owner, escrow_key, masked, round, length):
    """The server's best effort on `owner`'s masked vector with a revealed escrow key
    s_{owner,r}: open every survivor's escrow of its pair key with `owner`, and remove
    the pairwise masks `owner` added. Pair masks are rebuilt here from the HKDF pad and
    AES-CTR directly, not through the module's own mask helpers."""
    total = np.zeros(length, dtype=np.uint64)
    for u, msg in masked.items():
        if u == owner or owner not in msg.escrows:
            continue
        pad = escrow_pad(escrow_key, run_id="run-1", round=round, sender=owner, recipient=u)
        k = xor(msg.escrows[owner], pad)
        stream = aes_ctr_words(k, length)
        total = total + stream if u > owner else total - stream
    return y - total


def aes_ctr_words(key, length):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    return np.frombuffer(enc.update(bytes(8 * length)), dtype="<u8").astype(np.uint64)


# ------------------------------------------------------------------------- correctness


def test_sum_matches_numpy_over_rounds_with_varying_lengths():
    specs = [{"sums": 257, "counts": 12, "inertia": 1}, {"sums": 3}, {"sums": 1000, "counts": 40}]
    inputs = make_inputs(NODES, specs, seed=1)

    results = run_local_secure_sum(inputs, threshold=3, frac_bits=FRAC, rng=seeded(2))

    for r, (round_inputs, result) in enumerate(zip(inputs, results, strict=True), start=1):
        assert result.round == r
        assert result.survivors == tuple(sorted(NODES)) and result.dropped == ()
        for tag in specs[r - 1]:
            vectors = [round_inputs[u][tag] for u in NODES]
            assert_array_equal(result.sums[tag], fixed_point_sum(vectors))
            assert_allclose(
                result.sums[tag], np.sum(vectors, axis=0), rtol=0, atol=len(NODES) * 2.0**-FRAC
            )
        if "counts" in specs[r - 1]:
            assert_array_equal(
                result.sums["counts"], np.sum([round_inputs[u]["counts"] for u in NODES], axis=0)
            )


def test_negative_values_sum_correctly():
    inputs = [{u: {"x": np.array([-1.5, -1e6, 0.25 * i])} for i, u in enumerate(NODES)}]

    [result] = run_local_secure_sum(inputs, threshold=3, rng=seeded(3))

    assert result.sums["x"].tolist() == [-7.5, -5e6, 0.25 * (0 + 1 + 2 + 3 + 4)]


def test_runs_are_deterministic_given_rng():
    inputs = make_inputs(NODES, [{"sums": 8}], seed=4)
    server_a, clients_a = set_up(NODES, 3, seed=9)
    server_b, clients_b = set_up(NODES, 3, seed=9)

    masked_a = run_round(server_a, clients_a, inputs[0]).masked
    masked_b = run_round(server_b, clients_b, inputs[0]).masked

    assert all(masked_a[u].vectors == masked_b[u].vectors for u in NODES)


# ----------------------------------------------------------------------------- dropouts


def test_one_of_five_drops_before_masking_and_stays_out():
    inputs = make_inputs(NODES, [{"sums": 50, "counts": 5}] * 2, seed=5)

    results = run_local_secure_sum(
        inputs, threshold=3, rng=seeded(6), drop_before_masking={1: [55]}
    )

    survivors = [u for u in NODES if u != 55]
    for round_inputs, result in zip(inputs, results, strict=True):
        assert set(result.survivors) == set(survivors)
        assert_array_equal(
            result.sums["sums"], fixed_point_sum([round_inputs[u]["sums"] for u in survivors])
        )
        assert_array_equal(
            result.sums["counts"], np.sum([round_inputs[u]["counts"] for u in survivors], axis=0)
        )
    assert results[0].dropped == (55,)
    assert results[1].dropped == ()  # not even asked in round 2


def test_three_of_ten_drop_before_and_after_masking():
    nodes = list(range(1, 11))
    inputs = make_inputs(nodes, [{"sums": 64}, {"sums": 64}, {"sums": 7}], seed=7)

    results = run_local_secure_sum(
        inputs,
        threshold=6,
        rng=seeded(8),
        drop_before_masking={1: [2, 9]},
        drop_after_masking={1: [5]},  # its input arrived: it is summed, then it leaves
    )

    expected_survivors = [[1, 3, 4, 5, 6, 7, 8, 10], [1, 3, 4, 6, 7, 8, 10], [1, 3, 4, 6, 7, 8, 10]]
    for round_inputs, result, members in zip(inputs, results, expected_survivors, strict=True):
        assert list(result.survivors) == members
        assert_array_equal(
            result.sums["sums"], fixed_point_sum([round_inputs[u]["sums"] for u in members])
        )
    assert results[0].dropped == (2, 9)


def test_dropped_node_cannot_be_readmitted():
    server, clients = set_up(NODES, 3, seed=10)
    inputs = make_inputs(NODES, [{"x": 4}], seed=11)[0]
    run_round(server, clients, inputs, withhold=[55])
    assert 55 not in server.active

    requests = server.round_requests({"x": 4})
    assert set(requests) == set(NODES) - {55}
    smuggled = requests[7].model_copy(update={"active": (*requests[7].active, 55)})
    with pytest.raises(SecAggError, match="cohort-changed"):
        clients[7].mask_input(smuggled, inputs[7])
    # the dropped node itself was never told to unmask and its state refuses to go on
    with pytest.raises(SecAggError):
        clients[55].mask_input(requests[7], inputs[55])


def test_too_few_survivors_fail_without_revealing():
    server, clients = set_up(NODES, 4, seed=12)
    inputs = make_inputs(NODES, [{"x": 4}], seed=13)[0]
    requests = server.round_requests({"x": 4})
    for u in [101, 7, 55]:
        server.receive_masked(clients[u].mask_input(requests[u], inputs[u]))

    with pytest.raises(SecAggError, match="below threshold"):
        server.unmask_request()


def test_client_refuses_to_unmask_with_too_few_survivors_or_when_declared_dropped():
    server, clients = set_up(NODES, 4, seed=14)
    inputs = make_inputs(NODES, [{"x": 4}], seed=15)[0]
    for u, req in server.round_requests({"x": 4}).items():
        server.receive_masked(clients[u].mask_input(req, inputs[u]))
    honest = server.unmask_request()

    few = honest.model_copy(update={"survivors": (7, 55, 101), "dropped": (42, 3000)})
    with pytest.raises(SecAggError, match="below threshold"):
        clients[7].unmask(few)
    dropped_me = honest.model_copy(update={"survivors": (7, 55, 101, 3000), "dropped": (42,)})
    with pytest.raises(SecAggError, match="declared dropped"):
        clients[42].unmask(dropped_me)


# ----------------------------------------------------------------------------- privacy


def test_late_masked_input_reveals_nothing():
    server, clients = set_up(NODES, 3, seed=16)
    x_late = np.linspace(-100, 100, 2000)
    inputs = {u: {"x": x_late if u == 55 else np.ones(2000)} for u in NODES}

    result, requests, masked, replies = run_round(server, clients, inputs, withhold=[55])

    assert result.dropped == (55,)
    assert_array_equal(result.sums["x"], np.full(2000, 4.0))
    # the late message is rejected by the server state
    with pytest.raises(SecAggError, match="arrived while"):
        server.receive_masked(masked[55])
    # no honest node revealed a share of node 55's self-mask seed
    assert all(55 not in r.seed_shares for r in replies.values())

    # The server's best effort: rebuild s_55 from the revealed key shares, open every
    # survivor's escrowed pair key with 55, strip all pairwise masks from the late y_55.
    s_55 = reconstruct_key(replies, "key_shares", 55)
    state_55 = clients[55].state
    assert s_55 == state_55.escrow_key
    residue = strip_pairwise(masked[55].arrays()["x"], 55, s_55, masked, 1, 2000)
    encoded = encode(x_late, frac_bits=FRAC, max_nodes=len(NODES))

    assert np.count_nonzero(residue == encoded) == 0
    as_float = residue.view(np.int64) / 2.0**FRAC
    assert np.median(np.abs(as_float - x_late)) > 1e6
    assert abs(np.corrcoef(as_float, x_late)[0, 1]) < 0.1
    # ...because the only thing left is the self-mask, which the server never learns
    b_55 = self_mask(state_55.seed, run_id="run-1", round=1, tag="x", length=2000)
    assert_array_equal(residue - b_55, encoded)


def test_revealed_pads_open_only_the_escrows_of_the_dropped_node():
    # With s_55 revealed, the escrows that survivors hold for each other stay closed:
    # the pad e_{v->u} of a survivor v comes from s_{v,r}, of which the server has no
    # share at all, so a survivor's pairwise masks cannot be stripped.
    server, clients = set_up(NODES, 3, seed=40)
    inputs = {u: {"x": np.full(50, float(u))} for u in NODES}
    states = {u: clients[u].state for u in NODES}  # the test's own view of the secrets
    transcript = run_round(server, clients, inputs, withhold=[55])
    s_55 = reconstruct_key(transcript.replies, "key_shares", 55)
    tags = {"x": 50}
    for u in (7, 42, 101):
        k = pair_key(states[u].mask_roots[55], run_id="run-1", round=1, tags=tags)
        pad = escrow_pad(s_55, run_id="run-1", round=1, sender=55, recipient=u)
        assert xor(transcript.masked[u].escrows[55], pad) == k  # 55's pairs: recoverable
        for v in NODES:
            if v not in (u, 55):
                k_uv = pair_key(states[u].mask_roots[v], run_id="run-1", round=1, tags=tags)
                guess = escrow_pad(s_55, run_id="run-1", round=1, sender=v, recipient=u)
                assert xor(transcript.masked[u].escrows[v], guess) != k_uv
    assert all(r.key_shares.keys() == {55} for r in transcript.replies.values())


def test_later_dropout_keeps_earlier_inputs_private():
    # Node 55 survives round 1 (its b_{55,1} is revealed) and drops in round 2 (its
    # round-2 escrow key is revealed, opening its round-2 pair keys). Its round-1 input
    # must stay hidden: pair keys and escrow keys are fresh every round.
    server, clients = set_up(NODES, 3, seed=30)
    x_1 = np.linspace(0, 1000, 300)
    inputs = {u: {"x": x_1 if u == 55 else np.ones(300)} for u in NODES}
    roots_55 = clients[55].state.mask_roots  # known to the test only

    first = run_round(server, clients, inputs)
    second = run_round(server, clients, inputs, withhold=[55], noised=True)  # DP: may shrink

    assert second.result.dropped == (55,)
    assert all(not r.key_shares for r in first.replies.values())
    # everything the server holds about node 55's round-1 input
    y_1 = first.masked[55].arrays()["x"]
    b_1 = reconstruct_key(first.replies, "seed_shares", 55)
    s_2 = reconstruct_key(second.replies, "key_shares", 55)
    unmasked = y_1 - self_mask(b_1, run_id="run-1", round=1, tag="x", length=300)
    encoded = encode(x_1, frac_bits=FRAC, max_nodes=len(NODES))
    # the round-2 key opens the round-2 escrows, and with them round 2's pair keys; used
    # on round 1's escrows or as round-1 pads, they do not strip round 1's masks
    for escrows_from in (first.masked, second.masked):
        for pad_round in (1, 2):
            guess = strip_pairwise(unmasked, 55, s_2, escrows_from, pad_round, 300)
            assert np.count_nonzero(guess == encoded) == 0
    round_2_keys = {
        u: xor(second.masked[u].escrows[55], escrow_pad(s_2, run_id="run-1", round=2, sender=55, recipient=u))
        for u in NODES if u != 55
    }
    guess = unmasked - pairwise_masks(round_2_keys, 55, tags={"x": 300})["x"]
    assert np.count_nonzero(guess == encoded) == 0
    # had the round-1 pair keys been revealed, the input would be exposed:
    round_1_keys = {u: pair_key(roots_55[u], run_id="run-1", round=1, tags={"x": 300}) for u in roots_55}
    assert set(round_1_keys.values()).isdisjoint(round_2_keys.values())
    exposed = unmasked - sum(
        (aes_ctr_words(k, 300) if u > 55 else np.uint64(0) - aes_ctr_words(k, 300))
        for u, k in round_1_keys.items()
    )
    assert_array_equal(exposed, encoded)


def test_masked_payload_looks_uniform_and_uncorrelated():
    length = 100_000
    structured = np.arange(length) * 0.01  # strongly structured input
    inputs = [{u: {"x": structured if u == 7 else np.zeros(length)} for u in NODES}]
    server, clients = set_up(NODES, 3, seed=17)

    masked = run_round(server, clients, inputs[0]).masked

    for u in (7, 42):  # a structured and an all-zero input
        y = masked[u].arrays()["x"]
        top_byte = (y >> np.uint64(56)).astype(np.int64)
        counts = np.bincount(top_byte, minlength=256)
        assert stats.chisquare(counts).pvalue > 1e-4
        as_unit = (y >> np.uint64(11)).astype(np.float64) / 2.0**53
        assert stats.kstest(as_unit, "uniform").pvalue > 1e-4
        assert abs(np.corrcoef(as_unit, structured)[0, 1]) < 0.02


def test_removing_any_one_masked_input_breaks_the_sum():
    server, clients = set_up(NODES, 3, seed=18)
    inputs = make_inputs(NODES, [{"x": 500}], seed=19)[0]
    seeds = {u: clients[u].state.seed for u in NODES}  # b_{u,1}, known to the test only
    masked = run_round(server, clients, inputs).masked
    y = {u: masked[u].arrays()["x"] for u in NODES}
    b = {u: self_mask(seeds[u], run_id="run-1", round=1, tag="x", length=500) for u in NODES}
    full = sum((y[u] - b[u] for u in NODES), start=np.zeros(500, dtype=np.uint64))
    true_sum = fixed_point_sum([inputs[u]["x"] for u in NODES])
    assert_array_equal(decode(full, frac_bits=FRAC, n_summands=5, max_nodes=5), true_sum)

    for u in NODES:
        partial = full - (y[u] - b[u])  # every mask except u's pairwise ones cancels
        with pytest.raises(FixedPointOverflowError):
            decode(partial, frac_bits=FRAC, n_summands=4, max_nodes=5)
        wrong = partial.view(np.int64) / 2.0**FRAC
        assert np.median(np.abs(wrong - (true_sum - inputs[u]["x"]))) > 1e6


@pytest.mark.parametrize("length", [1, 180, 1024, 1025, 5000])  # batched up to 1024 words
def test_pairwise_masks_match_stream_by_stream_reference(length):
    rng = np.random.default_rng(length)
    keys = {v: rng.bytes(32) for v in (3, 9, 20, 41, 77)}

    masks = pairwise_masks(keys, 20, tags={"x": length})["x"]

    expected = np.zeros(length, dtype=np.uint64)
    for v, key in keys.items():  # node 20 adds streams of larger ids, subtracts smaller
        expected = expected + aes_ctr_words(key, length) if v > 20 else expected - aes_ctr_words(key, length)
    assert_array_equal(masks, expected)


def test_batched_keystreams_equal_aes_ctr_per_key():
    keys = [np.random.default_rng(i).bytes(32) for i in range(4)]
    assert [np.frombuffer(k, dtype="<u8").tolist() for k in keystreams(keys, 80)] == [
        aes_ctr_words(key, 10).tolist() for key in keys
    ]
    with pytest.raises(ValueError):  # the key length is still checked
        keystreams([bytes(31)], 16)


def test_pairwise_masks_cancel_between_two_nodes():
    server, clients = set_up(NODES, 3, seed=20)
    # both ends derive the pair's root from their own X25519 key and the other's public key
    root_7, root_42 = clients[7].state.mask_roots[42], clients[42].state.mask_roots[7]
    assert root_7 == root_42
    assert clients[7].state.mask_roots[55] != root_7
    tags = {"t": 64, "u": 64}

    k_7 = pair_key(root_7, run_id="r", round=3, tags=tags)
    k_42 = pair_key(root_42, run_id="r", round=3, tags=tags)
    m_7 = pairwise_masks({42: k_7}, 7, tags=tags)
    m_42 = pairwise_masks({7: k_42}, 42, tags=tags)
    other_round = pairwise_masks({42: pair_key(root_7, run_id="r", round=4, tags=tags)}, 7, tags=tags)
    stream = aes_ctr_words(k_7, 128)  # independent reference: the tags in sorted order

    for tag in tags:
        assert_array_equal(m_7[tag] + m_42[tag], np.zeros(64, dtype=np.uint64))
        assert np.count_nonzero(m_7[tag] == other_round[tag]) == 0
    assert_array_equal(m_7["t"], stream[:64])  # 42 > 7: node 7 adds the stream
    assert_array_equal(m_42["u"], np.uint64(0) - stream[64:])
    assert np.count_nonzero(m_7["t"] == m_7["u"]) == 0  # each tag has its own mask


def test_per_round_keys_are_independent():
    # k_{uv,r} for different rounds, runs, layouts and pairs are all different, and the
    # HKDF matches the `cryptography` implementation of RFC 5869
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

    root = bytes(range(32))
    keys = {
        pair_key(root, run_id=run, round=r, tags=tags)
        for run in ("a", "b")
        for r in range(1, 20)
        for tags in ({"x": 3}, {"x": 4}, {"x": 3, "y": 1})
    }
    assert len(keys) == 2 * 19 * 3
    info = encode_info("pair", "a", 5, b"layout")
    reference = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(root)
    assert hkdf(root, info) == reference
    expand = HKDFExpand(
        algorithm=hashes.SHA256(), length=32, info=encode_info("pair", "a", 5, encode_info("x=3"))
    )
    assert pair_key(root, run_id="a", round=5, tags={"x": 3}) == expand.derive(root)
    pads = {escrow_pad(root, run_id="a", round=r, sender=1, recipient=v) for r in (1, 2) for v in (2, 3)}
    assert len(pads) == 4


# -------------------------------------------------------------------------- validation


def test_replayed_messages_are_rejected():
    server, clients = set_up(NODES, 3, seed=21)
    inputs = make_inputs(NODES, [{"x": 4}] * 2, seed=22)
    spec = {"x": 4}
    old_requests = server.round_requests(spec)
    old_masked = {u: clients[u].mask_input(old_requests[u], inputs[0][u]) for u in NODES}
    for msg in old_masked.values():
        server.receive_masked(msg)
    with pytest.raises(SecAggError, match="already answered"):
        server.receive_masked(old_masked[7])
    unmask_request = server.unmask_request()
    old_replies = {u: clients[u].unmask(unmask_request) for u in NODES}
    for reply in old_replies.values():
        server.receive_unmask_shares(reply)
    server.finish_round()

    requests = server.round_requests(spec)
    with pytest.raises(SecAggError, match="round 1"):
        server.receive_masked(old_masked[7])
    with pytest.raises(SecAggError, match="round 1"):
        clients[7].mask_input(old_requests[7], inputs[1][7])
    for u in NODES:
        server.receive_masked(clients[u].mask_input(requests[u], inputs[1][u]))
    with pytest.raises(SecAggError, match="round 1"):
        clients[7].unmask(unmask_request)
    server.unmask_request()
    with pytest.raises(SecAggError, match="round 1"):
        server.receive_unmask_shares(old_replies[7])


def test_wrong_run_unknown_node_and_wrong_length_are_rejected():
    server, clients = set_up(NODES, 3, seed=23)
    inputs = make_inputs(NODES, [{"x": 4}], seed=24)[0]
    requests = server.round_requests({"x": 4})
    good = clients[7].mask_input(requests[7], inputs[7])

    with pytest.raises(SecAggError, match="run"):
        server.receive_masked(good.model_copy(update={"run_id": "other"}))
    with pytest.raises(SecAggError, match="unknown"):
        server.receive_masked(good.model_copy(update={"node_id": 999}))
    with pytest.raises(SecAggError, match="do not match"):
        server.receive_masked(good.model_copy(update={"vectors": {"x": good.vectors["x"][:-8]}}))
    with pytest.raises(SecAggError, match="do not match"):
        server.receive_masked(good.model_copy(update={"vectors": {"y": good.vectors["x"]}}))
    with pytest.raises(ValidationError, match="uint64"):
        MaskedInput(run_id="run-1", round=1, node_id=7, vectors={"x": b"\x00" * 12}, escrows={})
    with pytest.raises(ValidationError):
        MaskedInput.model_validate_json(
            '{"run_id": "run-1", "round": 0, "node_id": 7, "vectors": {}}'
        )
    with pytest.raises(SecAggError, match="escrows"):
        server.receive_masked(good.model_copy(update={"escrows": {}}))
    with pytest.raises(SecAggError, match="shape"):
        clients[42].mask_input(requests[42], {"x": np.zeros(5)})
    server.receive_masked(good)  # nothing above changed the server state


def test_client_rejects_tampered_share_and_overflowing_input():
    server, clients = set_up(NODES, 3, seed=25)
    requests = server.round_requests({"x": 2})
    req = requests[7]
    blob = bytearray(req.secrets[42])
    blob[-1] ^= 1
    tampered = req.model_copy(update={"secrets": {**req.secrets, 42: bytes(blob)}})

    with pytest.raises(SecAggError, match="authenticate"):
        clients[7].mask_input(tampered, {"x": np.zeros(2)})
    with pytest.raises(FixedPointOverflowError):
        clients[7].mask_input(req, {"x": np.array([0.0, 1e30])})
    # a share relayed for another recipient does not open either
    swapped = req.model_copy(
        update={"secrets": {**req.secrets, 42: requests[55].secrets[42]}}
    )
    with pytest.raises(SecAggError, match="authenticate"):
        clients[7].mask_input(swapped, {"x": np.zeros(2)})


def test_setup_validation():
    with pytest.raises(ValidationError, match="exceeds"):
        SetupRequest(run_id="r", node_ids=(1, 2, 3), threshold=4)
    with pytest.raises(ValidationError, match="distinct"):
        SetupRequest(run_id="r", node_ids=(1, 1, 3), threshold=2)
    with pytest.warns(UserWarning, match="recommended"):
        SecAggServer(run_id="r", threshold=2, frac_bits=FRAC).setup_request([1, 2, 3, 4])

    server = SecAggServer(run_id="r", threshold=3, frac_bits=FRAC)
    request = server.setup_request(NODES)
    rng = seeded(26)
    clients = trusted_clients([*NODES, 8], rng=rng)
    adverts = {u: clients[u].advertise_keys(request) for u in NODES}
    with pytest.raises(SecAggError, match="unknown"):
        server.receive_keys(adverts[7].model_copy(update={"node_id": 8}))
    with pytest.raises(SecAggError, match="not in the roster"):
        clients[8].advertise_keys(request)
    for u in (101, 7):
        server.receive_keys(adverts[u])
    with pytest.raises(SecAggError, match="below threshold"):
        server.key_broadcast()

    # a broadcast that swaps a node's key is refused by that node
    signed = {u: adverts[u] for u in (7, 101, 55)}
    fake = KeyBroadcast(
        run_id="r",
        public_keys={7: adverts[42].public_key, **{u: adverts[u].public_key for u in (101, 55)}},
        identities={u: a.identity for u, a in signed.items()},
        signatures={u: a.signature for u, a in signed.items()},
    )
    with pytest.raises(SecAggError, match="own public key"):
        clients[7].share_keys(fake)
    # and a broadcast that reuses one key for two nodes is refused by everyone
    duplicated = fake.model_copy(
        update={"public_keys": {**fake.public_keys, 42: fake.public_keys[7]}}
    )
    with pytest.raises(SecAggError, match="not distinct"):
        clients[101].share_keys(duplicated)


def test_client_state_and_messages_survive_json():
    nodes = list(range(1, 8))
    inputs = make_inputs(nodes, [{"sums": 30, "counts": 3}] * 3, seed=27)

    results = run_local_secure_sum(
        inputs,
        threshold=4,
        rng=seeded(28),
        serialise=True,
        drop_before_masking={2: [3]},
        drop_after_masking={2: [6]},
    )

    for round_inputs, result in zip(inputs, results, strict=True):
        assert_array_equal(
            result.sums["sums"],
            fixed_point_sum([round_inputs[u]["sums"] for u in result.survivors]),
        )
    assert results[2].survivors == (1, 2, 4, 5, 7)


# ------------------------------------------------------------------------- performance


def test_fifty_nodes_hundred_thousand_entries_sum_exactly():
    nodes = list(range(50))
    rng = np.random.default_rng(29)
    inputs = [{u: {"x": rng.normal(size=100_000)} for u in nodes}]

    start = time.perf_counter()
    [result] = run_local_secure_sum(
        inputs, threshold=26, rng=rng.bytes, serialise=False, drop_before_masking={1: [3]}
    )
    elapsed = time.perf_counter() - start

    members = [u for u in nodes if u != 3]
    assert_allclose(
        result.sums["x"],
        np.sum([inputs[0][u]["x"] for u in members], axis=0),
        rtol=0,
        atol=50 * 2.0**-FRAC,
    )
    print(f"\n50 nodes x 100k entries: {elapsed:.1f} s")  # a timing to read, not to assert (loaded machines vary)


def test_bad_tags_and_double_masking_are_rejected():
    server, clients = set_up(NODES, 3, seed=31)
    with pytest.raises(ValidationError):
        server.round_requests({"bad tag!": 3})
    with pytest.raises(ValidationError):
        server.round_requests({"x": 0})
    assert server.phase == "ready"  # nothing changed

    requests = server.round_requests({"x": 3})
    clients[7].mask_input(requests[7], {"x": np.zeros(3)})
    with pytest.raises(SecAggError, match="phase 'masked'"):
        clients[7].mask_input(requests[7], {"x": np.ones(3)})
