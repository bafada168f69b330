"""A node's own view of the neighbour graph (`graph`): whom it masks with, who holds
its shares, whose shares it may reveal, and its per-neighbourhood checks.

The node derives the graph itself from the run keys it verified (`adopt_graph`) and
keeps only its own part in its state; with `graph_threshold == 0` every function here
is the complete graph's, so small cohorts behave exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from fedseg.common.secagg import shamir
from fedseg.common.secagg.graph import COLLUDER_FRACTION, derive_graph
from fedseg.common.secagg.identity import NodeTrust
from fedseg.common.secagg.messages import SecAggRefused
from fedseg.common.secagg.node_state import ClientState


def adopt_graph(st: ClientState, public_keys: Mapping[int, bytes], trust: NodeTrust) -> None:
    """Derive the run's graph from the verified keys and keep this node's part of it.

    A node whose own policy counts more colluders than the sparse graph is sized for
    refuses; so does one whose own shares would have fewer holders than t_k."""
    graph = derive_graph(run_id=st.run_id, node_ids=st.roster, public_keys=public_keys)
    if graph is None:
        return
    if trust.max_colluders > int(COLLUDER_FRACTION * len(st.roster)):
        raise SecAggRefused(
            "threshold-refused",
            f"the sparse graph tolerates {int(COLLUDER_FRACTION * len(st.roster))} colluders, "
            f"this node requires {trust.max_colluders}",
        )
    u = st.node_id
    st.graph_threshold, st.neighbours, st.holders = graph.threshold, graph.neighbours(u), graph.holders(u)
    st.owner_holders = {v: graph.holders(v) for v in graph.owners(u) if v != u}
    check_own_holders(st, public_keys)


def peers_of(st: ClientState, nodes: Iterable[int]) -> list[int]:
    """The nodes of `nodes` this node masks with and sends secrets to, sorted."""
    others = (v for v in nodes if v != st.node_id)
    if not st.graph_threshold:
        return sorted(others)
    mine = set(st.neighbours)
    return sorted(v for v in others if v in mine)


def revealable(st: ClientState, nodes: Iterable[int]) -> list[int]:
    """The nodes of `nodes` whose shares this node holds, sorted."""
    if not st.graph_threshold:
        return sorted(nodes)
    mine = set(st.owner_holders) | {st.node_id}
    return sorted(v for v in nodes if v in mine)


def share_rows(st: ClientState, secrets: Sequence[bytes], rng: Callable[[int], bytes]) -> np.ndarray:
    """Shares of `secrets` for every roster position (row i: the node at position i):
    the complete graph shares among the roster with threshold t; a sparse graph among
    this node's holders with threshold t_k, and the other rows are zero (a neighbour that
    is not a holder gets the pad only and ignores them)."""
    if not st.graph_threshold:
        return shamir.split_secrets(secrets, n=len(st.roster), t=st.threshold, rng=rng)
    index = {v: i for i, v in enumerate(st.roster)}
    positions = [index[v] for v in st.holders]
    rows = np.zeros((len(st.roster), len(secrets) * shamir.DIGITS), dtype=np.int64)
    rows[positions] = shamir.split_secrets_at(
        secrets, xs=[i + 1 for i in positions], t=st.graph_threshold, rng=rng
    )
    return rows


def check_own_holders(st: ClientState, active: Iterable[int]) -> None:
    """At least t_k of this node's out-neighbours active: else its secrets could not be
    rebuilt, nor would its peers reveal its self-mask share (`check_neighbourhoods`)."""
    mine = set(st.holders) - {st.node_id}
    if st.graph_threshold and len(mine.intersection(active)) < st.graph_threshold:
        raise SecAggRefused("threshold-refused", f"fewer than {st.graph_threshold} of this node's share holders remain")


def check_neighbourhoods(st: ClientState, survivors: Iterable[int]) -> None:
    """Before revealing a survivor's self-mask share: at least t_k of its out-neighbours
    (its holders but itself) survive. With fewer than t_k colluders among them, one is an
    honest survivor whose pair mask with it stays hidden, so a server that declares a
    node's neighbours dropped cannot unmask that node alone."""
    if not st.graph_threshold:
        return
    alive = set(survivors)
    for v in revealable(st, alive):
        holders = st.holders if v == st.node_id else st.owner_holders[v]
        if len(alive.intersection(holders) - {v}) < st.graph_threshold:
            raise SecAggRefused(
                "inconsistent-survivors", f"fewer than {st.graph_threshold} holders of node {v} survive"
            )
