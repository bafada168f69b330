"""Attack (issue 10, item 2): a server-chosen threshold and inconsistent survivor lists.

Real node code (`SecAggClient`) against a server that lowers the threshold and tells
some nodes "v survived" and others "v dropped", to collect both v's self-mask seed and
its pair secret, and so v's vector in the clear.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fedseg.common.secagg.messages import SecAggError, SecAggRefused, SetupRequest
from fedseg.common.secagg.server import SecAggServer
from tests.secagg_driver import set_up_clients, trusted_clients

NODES = [1, 2, 3, 4, 5]
V = 5  # the victim


def test_threshold_two_of_five_is_refused_by_every_node():
    """Before: a node accepted any 2 <= t <= n. With t = 2 of 5, two nodes told "v
    survived" revealed v's self-mask seed and two told "v dropped" its pair secret."""
    clients = trusted_clients(NODES)
    request = SetupRequest(run_id="run-t", node_ids=tuple(NODES), threshold=2)
    for u in NODES:
        with pytest.raises(SecAggRefused) as refused:
            clients[u].advertise_keys(request)
        assert refused.value.code == "threshold-refused"


def test_threshold_floor_grows_with_the_colluders_a_node_tolerates():
    """2t > n + c: with c = 1 colluder among 5, t = 3 is refused and t = 4 accepted."""
    clients = trusted_clients(NODES, max_colluders=1)
    with pytest.raises(SecAggRefused, match="threshold-refused"):
        clients[1].advertise_keys(SetupRequest(run_id="r", node_ids=tuple(NODES), threshold=3))
    clients[2].advertise_keys(SetupRequest(run_id="r", node_ids=tuple(NODES), threshold=4))


def masked_round():
    """Set-up and one round's masked inputs, every input received (t = 3 of 5)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        server = SecAggServer(run_id="run-t", threshold=3)
    clients = trusted_clients(NODES)
    set_up_clients(server, clients)
    rng = np.random.default_rng(0)
    for u, req in server.round_requests({"x": 6}).items():
        server.receive_masked(clients[u].mask_input(req, {"x": rng.normal(size=6)}))
    return server, clients, server.unmask_request()


def test_inconsistent_survivor_lists_reveal_no_pair_secret():
    """Before: nodes 3 and 4, told "v dropped" (unsigned), revealed their shares of v's
    escrow key while nodes 1, 2 and v, told "everyone survived", revealed their shares of
    v's self-mask seed: with t <= 2, or colluders, both secrets and v's vector."""
    server, clients, everyone = masked_round()
    assert everyone.dropped == ()
    v_dropped = everyone.model_copy(update={"survivors": (1, 2, 3, 4), "dropped": (V,)})

    for u in (3, 4):  # no signatures on the smaller list: nothing revealed
        with pytest.raises(SecAggRefused) as refused:
            clients[u].unmask(v_dropped)
        assert refused.value.code == "inconsistent-survivors"
    for u in (1, 2, V):  # the honest list: b-shares of v, as in any round
        assert V in clients[u].unmask(everyone).seed_shares

    # nodes 3 and 4 sign "v dropped"; nodes 1 and 2 have moved on and sign nothing more
    signatures = {u: clients[u].sign_survivors(v_dropped).signature for u in (3, 4)}
    for u in (1, 2):
        with pytest.raises(SecAggError):
            clients[u].sign_survivors(v_dropped)
    with_two = v_dropped.model_copy(update={"signatures": signatures})
    for u in (3, 4):  # two signatures < t = 3: still no share of v's escrow key
        with pytest.raises(SecAggRefused) as refused:
            clients[u].unmask(with_two)
        assert refused.value.code == "inconsistent-survivors"
    forged = with_two.model_copy(update={"signatures": {**signatures, 1: signatures[3]}})
    with pytest.raises(SecAggRefused, match="inconsistent-survivors"):
        clients[3].unmask(forged)  # a signature copied under another signer's id


def test_a_node_that_signed_one_list_never_unmasks_another():
    """Once a node signed "v dropped", the full list gets no b-share of v from it, and
    vice versa: never both kinds of share for one peer in one round."""
    server, clients, everyone = masked_round()
    v_dropped = everyone.model_copy(update={"survivors": (1, 2, 3, 4), "dropped": (V,)})
    clients[3].sign_survivors(v_dropped)
    with pytest.raises(SecAggRefused, match="inconsistent-survivors"):
        clients[3].unmask(everyone)
