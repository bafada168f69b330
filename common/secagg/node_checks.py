"""The node's own checks against a deviating server: signed set-up keys, a cohort that
only shrinks (and only under DP), and a survivor list every survivor agreed to.

Each function takes the node's state and a message and raises `SecAggRefused` with a
code for the server and a detail for the node's log; none of them changes the state.
PRIVACY.md, "Threat model: a deviating server", says which attack each one stops.
"""

from __future__ import annotations

from collections.abc import Sequence

from fedseg.common.secagg.identity import (
    NodeTrust,
    check_threshold,
    key_statement,
    survivors_statement,
    verify,
    verify_broadcast_identities,
)
from fedseg.common.secagg.messages import KeyBroadcast, SecAggRefused, UnmaskRequest
from fedseg.common.secagg.node_state import ClientState


def require_trust(trust: NodeTrust | None) -> NodeTrust:
    """A node without its own identity and roster takes no part in secure aggregation."""
    if trust is None:
        raise SecAggRefused("no-identity", "no identity key / roster configured on this node")
    return trust


def verified_identity_keys(st: ClientState, broadcast: KeyBroadcast, trust: NodeTrust) -> dict[int, bytes]:
    """node id -> identity key of every node in the broadcast, after checking each
    advertised X25519 key is signed by a distinct roster identity for this very set-up."""
    ids = verify_broadcast_identities(broadcast.identities, trust.roster, (st.node_id, trust.name))
    for v, public_key in broadcast.public_keys.items():
        statement = key_statement(
            run_id=st.run_id, node_id=v, identity=broadcast.identities[v], public_key=public_key,
            node_ids=st.roster, threshold=st.threshold, frac_bits=st.frac_bits,
        )
        if not verify(ids[v], broadcast.signatures[v], statement):
            raise SecAggRefused("bad-signature", f"the key of node {v} is not signed for this set-up")
    check_threshold(st.threshold, len(broadcast.public_keys), trust)
    return ids


def check_round_cohort(st: ClientState, active: Sequence[int], noised: bool, trust: NodeTrust) -> None:
    """A round's nodes: never one that left (no re-admission, no swap), and after the
    first release exactly the run's cohort unless the round is DP-noised; otherwise the
    difference of two sums would be a node's exact input (Must show: differencing)."""
    if not set(active) <= set(st.active) or len(set(active)) != len(active):
        raise SecAggRefused("cohort-changed", "the round lists nodes that are not in the cohort")
    if st.cohort and set(active) != set(st.cohort) and not noised:
        raise SecAggRefused("cohort-changed", f"{len(active)} nodes, the run's cohort is {len(st.cohort)}")
    check_threshold(st.threshold, len(active), trust)


def check_survivors(st: ClientState, request: UnmaskRequest, trust: NodeTrust) -> None:
    """The unmask request's survivor list, before this node signs or reveals anything."""
    survivors, dropped = set(request.survivors), set(request.dropped)
    if len(survivors) != len(request.survivors) or len(dropped) != len(request.dropped):
        raise SecAggRefused("inconsistent-survivors", "duplicate node ids in the unmask request")
    if survivors & dropped or survivors | dropped != set(st.active):
        raise SecAggRefused("inconsistent-survivors", "survivors and dropped must partition the round")
    if survivors & set(st.excluded):  # their escrow keys were revealed: never a b-share too
        raise SecAggRefused("inconsistent-survivors", "a node declared dropped is listed as a survivor")
    if st.cohort and survivors != set(st.cohort) and not st.noised:
        raise SecAggRefused("cohort-changed", "a node dropped after the first release; the round is not noised")
    check_threshold(st.threshold, len(survivors), trust)


def check_signatures(st: ClientState, request: UnmaskRequest) -> None:
    """With dropouts: at least t survivors signed exactly this list (Bonawitz et al. 2017,
    consistency check); honest nodes sign one list per round, so with 2t > n + c no two
    lists both pass, and no peer's self-mask and pair secret are both revealed."""
    statement = survivors_statement(
        run_id=st.run_id, round=st.round, survivors=request.survivors, dropped=request.dropped
    )
    signers = [v for v in request.signatures if v in set(request.survivors)]
    keys = st.identity_keys.values_for(signers)
    valid = sum(verify(k, request.signatures[v], statement) for v, k in zip(signers, keys))
    if valid < st.threshold or valid != len(request.signatures):
        raise SecAggRefused(
            "inconsistent-survivors", f"{valid} valid survivor signatures of {len(request.signatures)}, need {st.threshold}"
        )
