"""Attack (issue 10, item 3): differencing two sums over different cohorts.

Real node code (`SecAggClient`) against a server that (a) silently leaves node v out of
a round and repeats the same query, and (b) subtracts a later count from the prepare
count after v really dropped. Each sum is exact, so the difference is v's own data.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from fedseg.common.secagg.messages import SecAggRefused
from fedseg.common.secagg.server import SecAggServer
from tests.secagg_driver import set_up_clients, signed_if_dropped, trusted_clients

NODES = [1, 2, 3, 4, 5]
V = 3
QUERY = {u: {"count": np.array([100.0 * u + 7]), "sums": np.arange(4.0) * u} for u in NODES}


def one_round(server, clients, *, withhold=(), skip_unmask=(), noised=False):
    """A round of QUERY; the masked inputs of `withhold` never count, `skip_unmask`
    never answer the unmask request. Returns the released sums."""
    requests = server.round_requests({"count": 1, "sums": 4})
    for u, req in requests.items():
        masked = clients[u].mask_input(req, QUERY[u], noised=noised)
        if u not in withhold:
            server.receive_masked(masked)
    request = signed_if_dropped(server, server.unmask_request(), lambda u, r: clients[u].sign_survivors(r))
    for u in request.survivors:
        if u not in skip_unmask:
            server.receive_unmask_shares(clients[u].unmask(request))
    return server.finish_round().sums


def started():
    server = SecAggServer(run_id="run-c", threshold=3)
    clients = trusted_clients(NODES)
    set_up_clients(server, clients)
    first = one_round(server, clients)  # the first release fixes the cohort
    assert_array_equal(first["count"], [sum(QUERY[u]["count"][0] for u in NODES)])
    return server, clients, first


def test_silently_shrunk_cohort_with_a_repeated_query_is_refused():
    """Before: the server treated v's masked input as lost in round 2 and repeated the
    query: round 1 minus round 2 was v's exact vector (count 307, sums 0, 3, 6, 9)."""
    server, clients, _ = started()
    requests = server.round_requests({"count": 1, "sums": 4})
    for u, req in requests.items():
        server.receive_masked(clients[u].mask_input(req, QUERY[u]))  # v's input arrives too
    unsigned = server.unmask_request().model_copy(  # ...and the server claims it did not
        update={"survivors": tuple(u for u in NODES if u != V), "dropped": (V,)}
    )
    for u in NODES:
        if u != V:
            with pytest.raises(SecAggRefused) as refused:
                clients[u].unmask(unsigned)
            assert refused.value.code in {"cohort-changed", "inconsistent-survivors"}
            with pytest.raises(SecAggRefused) as refused:
                clients[u].sign_survivors(unsigned)
            assert refused.value.code == "cohort-changed"


def test_a_round_that_leaves_a_node_out_is_refused_after_the_first_release():
    """Before: a round request whose active set omitted v was answered, so round 1 minus
    that round was v's vector, without even claiming a dropout."""
    server, clients, _ = started()
    requests = server.round_requests({"count": 1, "sums": 4})
    for u, req in requests.items():
        if u != V:
            without_v = req.model_copy(update={
                "active": tuple(w for w in req.active if w != V),
                "secrets": {w: c for w, c in req.secrets.items() if w != V},
            })
            with pytest.raises(SecAggRefused) as refused:
                clients[u].mask_input(without_v, QUERY[u])
            assert refused.value.code == "cohort-changed"


def test_count_after_a_natural_dropout_is_not_released():
    """Before: v dropped after sending its masked prepare reply; the server released the
    prepare count with v and the next count without it: their difference, 307, was v's
    row count (PRIVACY.md said per-node counts are never revealed)."""
    server, clients, _ = started()
    # round 2: v's input counts, then v is gone before unmasking (a real dropout)
    one_round(server, clients, skip_unmask=(V,))
    assert V not in server.active
    requests = server.round_requests({"count": 1, "sums": 4})
    for u, req in requests.items():
        with pytest.raises(SecAggRefused) as refused:
            clients[u].mask_input(req, QUERY[u])
        assert refused.value.code == "cohort-changed"


def test_a_dp_noised_round_may_run_over_the_smaller_cohort():
    """Under DP (the nodes add noise shares, checked against their own policy), a real
    dropout does not end the run: the shrunk cohort's sum is released, noise covers v."""
    server, clients, _ = started()
    sums = one_round(server, clients, withhold=(V,), noised=True)
    assert_array_equal(sums["count"], [sum(QUERY[u]["count"][0] for u in NODES if u != V)])
    again = one_round(server, clients, noised=True)
    assert_array_equal(again["sums"], sum(QUERY[u]["sums"] for u in NODES if u != V))
    with pytest.raises(SecAggRefused, match="cohort-changed"):  # never back to the full cohort
        req = server.round_requests({"count": 1, "sums": 4})[1]
        clients[1].mask_input(req.model_copy(update={"active": tuple(NODES)}), QUERY[1], noised=True)
