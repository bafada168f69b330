"""Attack (issue 10, item 1): a server that substitutes key-agreement keys.

Real node code (`SecAggClient` with its own identity and pinned roster) against a server
that edits the key broadcast; every node must refuse before it encrypts a single share.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fedseg.client.policy import NodePolicy
from fedseg.client.trust import node_trust
from fedseg.common.secagg.identity import key_statement
from fedseg.common.secagg.messages import SecAggRefused
from fedseg.common.secagg.server import SecAggServer
from fedseg.server.identities import make_federation
from fedseg.common.secagg.node import SecAggClient
from tests.secagg_driver import trusts

NODES = [11, 22, 33, 44, 55]
TRUST = trusts(NODES)


def advertised(threshold=3):
    """Set-up exchange 1 done honestly; returns server, clients and the honest broadcast."""
    server = SecAggServer(run_id="run-k", threshold=threshold)
    clients = {u: SecAggClient(u, trust=t) for u, t in TRUST.items()}
    request = server.setup_request(NODES)
    for u in NODES:
        server.receive_keys(clients[u].advertise_keys(request))
    return server, clients, request, server.key_broadcast()


def attacker_key() -> bytes:
    return X25519PrivateKey.generate().public_key().public_bytes_raw()


def test_substituted_keys_are_refused_by_every_node():
    """Before: `share_keys` accepted any broadcast. The server put its own X25519 key in
    place of every peer's, decrypted every Shamir share addressed to "the peer", rebuilt
    every self-mask seed and pair root, and read every node's exact vector."""
    _, clients, _, honest = advertised()
    for u in NODES:
        forged = {v: (k if v == u else attacker_key()) for v, k in honest.public_keys.items()}
        with pytest.raises(SecAggRefused) as refused:
            clients[u].share_keys(honest.model_copy(update={"public_keys": forged}))
        assert refused.value.code == "bad-signature"


def test_keys_signed_by_an_identity_off_the_roster_are_refused():
    """Before: any key was accepted. Now a key must carry the signature of a roster
    identity: the server's own identity, however well it signs, is not on the roster."""
    _, clients, request, honest = advertised()
    mine = Ed25519PrivateKey.generate()
    key = attacker_key()
    statement = key_statement(run_id=request.run_id, node_id=22, identity="server", public_key=key,
                              node_ids=request.node_ids, threshold=request.threshold, frac_bits=request.frac_bits)
    forged = honest.model_copy(update={
        "public_keys": {**honest.public_keys, 22: key},
        "identities": {**honest.identities, 22: "server"},
        "signatures": {**honest.signatures, 22: mine.sign(statement)},
    })
    with pytest.raises(SecAggRefused) as refused:
        clients[11].share_keys(forged)
    assert refused.value.code == "unknown-key"


def test_one_identity_under_two_node_ids_is_refused():
    """A server that runs a node under a borrowed identity (a sybil) to reach the threshold."""
    _, clients, _, honest = advertised()
    forged = honest.model_copy(update={"identities": {**honest.identities, 44: honest.identities[33]}})
    with pytest.raises(SecAggRefused) as refused:
        clients[11].share_keys(forged)
    assert refused.value.code == "unknown-key"


def test_key_signed_for_another_setup_is_refused():
    """A genuine signature replayed under another announced node list (or threshold)."""
    _, clients, _, honest = advertised()
    lying = SecAggServer(run_id="run-k", threshold=4).setup_request([*NODES, 66])  # another view
    forged_advert = SecAggClient(22, trust=TRUST[22]).advertise_keys(lying)  # genuinely signed
    forged = honest.model_copy(update={
        "public_keys": {**honest.public_keys, 22: forged_advert.public_key},
        "identities": {**honest.identities, 22: forged_advert.identity},
        "signatures": {**honest.signatures, 22: forged_advert.signature},
    })
    with pytest.raises(SecAggRefused) as refused:
        clients[11].share_keys(forged)
    assert refused.value.code == "bad-signature"


def test_node_without_identity_or_with_an_unpinned_roster_refuses(tmp_path):
    """Before: every node took part in secure aggregation with whatever keys it got."""
    with pytest.raises(SecAggRefused) as refused:
        node_trust(NodePolicy())
    assert refused.value.code == "no-identity"
    made = make_federation(tmp_path, ["a", "b", "c"])["a"]
    with pytest.raises(SecAggRefused) as refused:
        node_trust(NodePolicy.model_validate({**made, "roster-sha256": "0" * 64}))
    assert refused.value.code == "no-identity"
    (tmp_path / "roster.toml").write_text((tmp_path / "roster.toml").read_text() + 'd = "AAAA"\n')
    with pytest.raises(SecAggRefused):  # edited after pinning: the fingerprint no longer matches
        node_trust(NodePolicy.model_validate(made))
