"""A deviating server against the PSI: it cannot swap a node's key, re-route a sealed
list, or get a node to blind an oversized list of guesses; and the intersection found
is exactly the set intersection (hand-made ids)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedseg.client.handlers import NodeData
from fedseg.client.policy import NodePolicy
from fedseg.common.config import RunConfig
from fedseg.common.messages import NodeFailure
from fedseg.common.preprocessing import LocalTable
from fedseg.common.psi.messages import PsiBlindRequest, PsiCrossRequest
from fedseg.common.psi.protocol import RESULT
from fedseg.common.psi import channel
from fedseg.server import psi_phase
from fedseg.server.orchestrator import Orchestrator, RunError
from fedseg.simulations.local_transport import LocalTransport
from tests.helpers import numeric_schema

SCHEMA = numeric_schema(1)
HELD = {1: ["ann", "bob", "cy", "dee", "eve"], 2: ["cy", "dee", "fay"], 3: ["dee", "gus", "bob", "hal"]}


def nodes(held=HELD) -> dict[int, NodeData]:
    def table(ids):
        return LocalTable(ids=np.array(ids), numeric=np.arange(len(ids), dtype=float)[:, None],
                          codes=np.zeros((len(ids), 0), np.int64))
    return {n: NodeData(f"psi-{n}-{json.dumps(ids)}", lambda s, t=table(ids): t) for n, ids in held.items()}


class Relay(LocalTransport):
    """The server's relay, with a hook to tamper with one kind of request."""

    def __init__(self, held=HELD, tamper=None, policies=None):
        super().__init__(nodes(held), policies)
        self.tamper = tamper or (lambda reqs: reqs)
        self.replies: list[dict] = []

    def send(self, requests):
        replies = super().send(self.tamper(dict(requests)))
        self.replies.append(replies)
        return replies


def send_each(tr: Relay):
    return lambda reqs, expect: {n: r for n, r in tr.send(reqs).items() if isinstance(r, expect)}


def kept(tr: Relay) -> dict[int, set[str]]:
    out = {}
    for n, ids in HELD.items():
        mask = np.unpackbits(np.frombuffer(base64.urlsafe_b64decode(
            json.loads(tr.states[n][RESULT])["keep"]), dtype=np.uint8), count=len(ids)).astype(bool)
        out[n] = {x for x, k in zip(ids, mask) if k}
    return out


def test_intersection_and_owners_match_the_set_reference():
    tr = Relay()
    psi_phase.run_psi(send_each(tr), SCHEMA, lambda: [1, 2, 3])
    owned = kept(tr)
    everyone = set().union(*map(set, HELD.values()))
    assert set().union(*owned.values()) == everyone  # nobody lost
    assert sum(len(v) for v in owned.values()) == len(everyone)  # nobody twice
    for n, ids in HELD.items():  # an id nobody else holds always stays home
        alone = set(ids) - set().union(*(set(v) for m, v in HELD.items() if m != n))
        assert alone <= owned[n]
    removed = {n: json.loads(tr.states[n][RESULT])["removed"] for n in HELD}
    assert sum(removed.values()) == 12 - 8  # 12 rows, 8 distinct customers


def _swap_key(reqs):
    """The server puts its own channel key in place of node 2's (keeping its signature)."""
    first = next(iter(reqs.values()))
    if isinstance(first, PsiBlindRequest):
        mine = channel.public_key_of(b"\x05" * 32)
        forged = first.model_copy(update={"public_keys": {**first.public_keys, 2: mine}})
        return {n: forged for n in reqs}
    return reqs


def _swap_identity(reqs):
    """The server signs its own key under its own identity, claimed to be node 2's."""
    first = next(iter(reqs.values()))
    if isinstance(first, PsiBlindRequest):
        own = Ed25519PrivateKey.generate()
        key = channel.public_key_of(b"\x07" * 32)
        said = channel.statement(session=first.session, node_id=2, identity=first.identities[2], public_key=key,
                                 node_ids=sorted(first.public_keys))
        forged = first.model_copy(update={"public_keys": {**first.public_keys, 2: key},
                                          "signatures": {**first.signatures, 2: own.sign(said)}})
        return {n: forged for n in reqs}
    return reqs


@pytest.mark.parametrize("tamper", [_swap_key, _swap_identity])
def test_a_server_that_swaps_a_psi_key_is_refused(tamper):
    tr = Relay(tamper=tamper)
    with pytest.raises(psi_phase.PsiFailed):
        psi_phase.run_psi(send_each(tr), SCHEMA, lambda: [1, 2, 3])
    blind_replies = [r for r in tr.replies if all(isinstance(x, NodeFailure) for x in r.values())]
    assert blind_replies, "every node refused the forged key set"
    codes = {x.code for x in blind_replies[0].values()}
    assert codes <= {"bad-signature", "unknown-key"}
    assert not any(RESULT in s for s in tr.states.values())  # no node deduplicated anything


def test_the_run_stops_when_the_server_swaps_keys():
    tr = Relay(tamper=_swap_key)
    orch = Orchestrator(RunConfig(k=2, min_nodes=2, min_segment_size=1, dedup=True), SCHEMA, tr, [1, 2, 3])
    with pytest.raises(RunError):
        orch.run()
    assert set(orch.failures.values()) <= {"bad-signature", "unknown-key"}


def _reroute(reqs):
    """The server hands node 1 the list node 2 sealed for node 3."""
    first = reqs.get(1)
    if isinstance(first, PsiCrossRequest):
        sealed = dict(first.sealed)
        sealed[2] = reqs[3].sealed[2]
        return {**reqs, 1: first.model_copy(update={"sealed": sealed})}
    return reqs


def test_a_rerouted_list_does_not_open():
    tr = Relay(tamper=_reroute)
    with pytest.raises(psi_phase.PsiFailed):
        psi_phase.run_psi(send_each(tr), SCHEMA, lambda: [1, 2, 3])
    crossed = next(r for r in tr.replies if 1 in r and isinstance(r[1], NodeFailure))
    assert crossed[1].code == "protocol-error"


def test_a_node_refuses_to_blind_a_list_above_its_record_limit():
    big = {1: [f"g{i}" for i in range(40)], 2: ["a", "b"]}  # node 1 "guesses" 40 ids
    tr = Relay(held=big, policies={2: NodePolicy(max_records=8)})
    with pytest.raises(psi_phase.PsiFailed):
        psi_phase.run_psi(send_each(tr), SCHEMA, lambda: [1, 2])
    cross = [r for r in tr.replies if 2 in r and isinstance(r[2], NodeFailure)]
    assert cross and cross[0][2].code == "protocol-error"
