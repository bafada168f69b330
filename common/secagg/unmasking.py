"""The server's unmasking arithmetic: from the survivors' masked vectors, their
reconstructed self-mask seeds and the dropped nodes' escrow keys, the plain sum in the
ring Z/2^64 (PRIVACY.md, "Secure aggregation").
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from fedseg.common.secagg import shamir
from fedseg.common.secagg.derivation import escrow_pads, self_mask_keys, tag_layout, xor_keys
from fedseg.common.secagg.graph import NeighbourGraph, owned_in, peers_in
from fedseg.common.secagg.messages import SecAggError
from fedseg.common.secagg.masks import signed_stream_sum, split_tags


def unmasked_totals(
    masked: Mapping[int, Mapping[str, NDArray[np.uint64]]],
    escrows: Mapping[int, Mapping[int, bytes]],
    *,
    seeds: Mapping[int, bytes],
    dropped_keys: Mapping[int, bytes],
    run_id: str,
    round: int,
    vectors: Mapping[str, int],
    graph: NeighbourGraph | None = None,
) -> dict[str, NDArray[np.uint64]]:
    """sum_u y_u - sum_u PRG(b_{u,r}) + the pairwise masks each dropped node would have
    added towards the survivors, per tag (ring elements, not yet decoded).

    Parameters
    ----------
    masked : survivor u -> tag -> y_u, the masked vectors (the survivors are its keys)
    escrows : survivor u -> peer v -> k_uv XOR e_{v->u,r}
    seeds : survivor u -> reconstructed b_{u,r}
    dropped_keys : dropped v -> reconstructed s_{v,r}
    vectors : tag -> length of the round
    graph : the sparse neighbour graph (None: complete), who masked with each dropped node
    """
    survivors = sorted(masked)
    order, total, layout = tag_layout(vectors)
    flat = np.zeros(total, dtype=np.uint64)
    start = 0
    for tag, n in order:  # sum of the y_u, tag by tag in layout order
        stacked = np.stack([masked[u][tag] for u in survivors])
        flat[start : start + n] = stacked.sum(axis=0, dtype=np.uint64)
        start += n
    seed_keys = self_mask_keys([seeds[u] for u in survivors], run_id=run_id, round=round, layout=layout)
    flat += signed_stream_sum([], seed_keys, total)  # minus every PRG(b_{u,r})
    for v, key in dropped_keys.items():
        partners = peers_in(graph, v, survivors)
        survivor_escrows = [escrows[u][v] for u in partners]
        flat += dropped_masks(v, key, partners, survivor_escrows, run_id=run_id, round=round, total=total)
    return split_tags(flat, order)


def dropped_masks(
    v: int,
    escrow_key: bytes,
    survivors: Sequence[int],
    survivor_escrows: Sequence[bytes],
    *,
    run_id: str,
    round: int,
    total: int,
) -> NDArray[np.uint64]:
    """The pairwise masks dropped node v would have added towards the survivors.

    Survivors added -(v's masks towards them); adding v's masks back cancels them.
    Each survivor u escrowed k_uv under e_{v->u}, which s_{v,r} now yields."""
    pads = escrow_pads(escrow_key, run_id=run_id, round=round, sender=v, recipients=survivors)
    pair_keys = xor_keys(b"".join(survivor_escrows), b"".join(pads))
    below = bisect.bisect_left(survivors, v)  # v adds PRG(k_uv) for u > v
    return signed_stream_sum(pair_keys[below:], pair_keys[:below], total)


def reveal_by_neighbourhood(
    graph: NeighbourGraph,
    roster: Sequence[int],
    share_digits: Mapping[int, tuple[np.ndarray, np.ndarray]],
    answered: Collection[int],
) -> Callable[[int, Sequence[int]], dict[int, bytes]]:
    """With a sparse graph, each secret is rebuilt from t_k of its owner's own holders.

    `share_digits[w]`: w's revealed shares of b (kind 0, in the order of the survivors
    it holds shares of) and of s (kind 1, the dropped ones). Returns reveal(kind, owners)."""
    position = {v: i + 1 for i, v in enumerate(roster)}

    def reveal(kind: int, owners: Sequence[int]) -> dict[int, bytes]:
        rows = {w: dict(zip(owned_in(graph, w, owners), share_digits[w][kind])) for w in answered}
        out = {}
        for v in owners:
            helpers = [w for w in graph.holders(v) if w in rows][: graph.threshold]
            if len(helpers) < graph.threshold:
                raise SecAggError(f"only {len(helpers)} holders of node {v} answered, below {graph.threshold}")
            weights = shamir.lagrange_weights([position[w] for w in helpers])
            try:
                [out[v]] = shamir.combine_many(weights, np.stack([rows[w][v] for w in helpers])[:, None, :])
            except shamir.InconsistentShares:
                raise SecAggError(f"shares of node {v} are inconsistent") from None
        return out

    return reveal
