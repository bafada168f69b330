"""An in-process secure sum for the tests: set-up and rounds of `SecAggClient`s and a
`SecAggServer` in this process, optionally through JSON as a deployment would."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from fedseg.client.policy import NodePolicy
from fedseg.client.trust import node_trust
from fedseg.common.secagg.identity import NodeTrust
from fedseg.common.secagg.messages import Message, UnmaskRequest
from fedseg.common.secagg.node import Rng, SecAggClient
from fedseg.common.secagg.server import RoundResult, SecAggServer
from fedseg.server.identities import make_federation


def trusts(nodes: Sequence[int], **policy: int) -> dict[int, NodeTrust]:
    """Each node's trust as its own policy loads it, from a federation made for `nodes`
    (identity files, roster, pinned fingerprint); `policy`: min_cohort, max_colluders."""
    with tempfile.TemporaryDirectory(prefix="fedseg-ids-") as folder:
        made = make_federation(folder, [f"node-{u}" for u in nodes])
        return {u: node_trust(NodePolicy.model_validate({**made[f"node-{u}"], **policy})) for u in nodes}


def trusted_clients(nodes: Sequence[int], rng: Rng = os.urandom, **policy: int) -> dict[int, SecAggClient]:
    """One client per node, each with its own identity on a shared roster."""
    return {u: SecAggClient(u, rng=rng, trust=t) for u, t in trusts(nodes, **policy).items()}


def signed_if_dropped(
    server: SecAggServer, request: UnmaskRequest, sign: Callable[[int, UnmaskRequest], Message],
    skip: Collection[int] = (),
) -> UnmaskRequest:
    """The unmask request the nodes accept: with dropouts, after the survivors (but
    `skip`) signed the list (the extra exchange); otherwise `request` itself."""
    if not request.dropped:
        return request
    for u in request.survivors:
        if u not in skip:
            server.receive_survivors_signature(sign(u, request))
    return server.signed_unmask_request()


def set_up_clients(server: SecAggServer, clients: Mapping[int, SecAggClient]) -> None:
    """The two set-up exchanges between `server` and in-memory `clients` (the roster,
    in the mapping's order)."""
    request = server.setup_request(list(clients))
    for client in clients.values():
        server.receive_keys(client.advertise_keys(request))
    broadcast = server.key_broadcast()
    for client in clients.values():
        server.receive_setup_shares(client.share_keys(broadcast))
    server.finish_setup()


def run_local_secure_sum(
    inputs: Sequence[Mapping[int, Mapping[str, ArrayLike]]],
    *,
    threshold: int,
    frac_bits: int = 24,
    run_id: str = "local",
    drop_before_masking: Mapping[int, Collection[int]] | None = None,
    drop_after_masking: Mapping[int, Collection[int]] | None = None,
    rng: Rng = os.urandom,
    serialise: bool = True,
) -> list[RoundResult]:
    """Run set-up and one secure sum per entry of `inputs`, all in this process.

    Parameters
    ----------
    inputs : sequence over rounds of {node id: {tag: float vector}}
        The roster is the node ids of the first round; every node still active in a
        round must have an entry. Every round is run as DP-noised (`noised=True`) when
        the cohort shrinks after the first release, since nodes refuse it otherwise.
    drop_before_masking, drop_after_masking : {round (1-based): node ids}
        Nodes whose masked input is lost in that round, or that vanish after sending it
        (they do not answer the unmask request).
    serialise : bool
        Round-trip every client through `to_bytes`/`from_bytes` and every message
        through JSON, as a deployment (fresh process per message) would.

    Returns
    -------
    list of RoundResult, one per round.
    """
    before = {r: set(v) for r, v in (drop_before_masking or {}).items()}
    after = {r: set(v) for r, v in (drop_after_masking or {}).items()}
    noised = bool(after) or any(r > 1 for r in before)  # else the nodes refuse the smaller cohort
    roster = sorted(inputs[0])
    trust = trusts(roster)
    clients: dict[int, SecAggClient | bytes] = {u: SecAggClient(u, rng=rng, trust=trust[u]) for u in roster}

    def call(u: int, method: str, *args: object, **kwargs: object) -> Message:
        stored = clients[u]
        client = SecAggClient.from_bytes(stored, rng=rng, trust=trust[u]) if isinstance(stored, bytes) else stored
        reply = getattr(client, method)(*args, **kwargs)
        clients[u] = client.to_bytes() if serialise else client
        return type(reply).model_validate_json(reply.model_dump_json()) if serialise else reply

    server = SecAggServer(run_id=run_id, threshold=threshold, frac_bits=frac_bits)
    request = server.setup_request(roster)
    for u in roster:
        server.receive_keys(call(u, "advertise_keys", request))
    broadcast = server.key_broadcast()
    for u in roster:
        server.receive_setup_shares(call(u, "share_keys", broadcast))
    server.finish_setup()

    results = []
    for r, round_inputs in enumerate(inputs, start=1):
        first = round_inputs[server.active[0]]
        spec = {tag: len(np.asarray(vec)) for tag, vec in first.items()}
        for u, req in server.round_requests(spec).items():
            reply = call(u, "mask_input", req, round_inputs[u], noised=noised)
            if u not in before.get(r, set()):
                server.receive_masked(reply)
        unmask_request = signed_if_dropped(
            server, server.unmask_request(), lambda u, req: call(u, "sign_survivors", req)
        )
        for u in unmask_request.survivors:
            if u not in after.get(r, set()):
                server.receive_unmask_shares(call(u, "unmask", unmask_request))
        results.append(server.finish_round())
    return results
