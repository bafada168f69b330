"""The neighbour graph of secure aggregation: who masks with whom and who holds whose
Shamir shares (PRIVACY.md, "Sparse neighbour graph").

Small cohorts use the complete graph (Bonawitz et al. 2017). From `SPARSE_MIN_NODES`
nodes on, each node v picks k out-neighbours, its share *holders*, from a keystream
keyed by a hash of its own signed run key C_v: v draws C_v fresh at random, so neither
the server nor colluding nodes can choose or grind v's holders (Bell et al. 2020 let
the server pick the graph; here nobody can). Masks run along every edge of the union
of the out-choices, so each node has about 2k neighbours instead of n - 1. Every node
derives the whole graph itself from the keys it verified; nothing about it is sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from math import comb, floor

import numpy as np

from fedseg.common.secagg.derivation import PROTOCOL, encode_field, int_fields
from fedseg.common.secagg.masks import prg

SPARSE_MIN_NODES = 100
"""Below this the complete graph: it measured within 2x plaintext up to 50 nodes, and a
cohort of fewer than 100 tolerates fewer than 5 colluders at COLLUDER_FRACTION."""
COLLUDER_FRACTION = 0.05
"""Colluding nodes (with the server) the sparse graph is sized for: floor(0.05 n)."""
DROPOUT_FRACTION = 0.2
"""Independent dropout probability per node the sparse graph is sized for (liveness)."""
PRIVACY_BITS = 40
"""Per run: P[some neighbourhood holds >= t_k colluders] <= 2^-40 (union over nodes)."""
LIVENESS_BITS = 20
"""Per round: P[some node keeps < t_k surviving out-neighbours] <= 2^-20 at DROPOUT_FRACTION."""


@dataclass(frozen=True)
class GraphParams:
    """k out-neighbours per node and the per-neighbourhood Shamir threshold t_k (of the
    k + 1 holders: the node itself and its k out-neighbours)."""

    degree: int
    threshold: int


def _colluders_tail(t: int, n: int, k: int) -> float:
    """P[at least t of k holders drawn from the n - 1 others collude] (hypergeometric,
    floor(COLLUDER_FRACTION n) colluders)."""
    bad = floor(COLLUDER_FRACTION * n)
    hits = sum(comb(bad, i) * comb(n - 1 - bad, k - i) for i in range(t, min(bad, k) + 1))
    return hits / comb(n - 1, k)


def _dropout_tail(t: int, k: int) -> float:
    """P[fewer than t of the k out-neighbours survive] with independent dropouts (the
    nodes' check before revealing a survivor's share; t of k + 1 holders then rebuild)."""
    p, m = DROPOUT_FRACTION, k
    return sum(comb(m, i) * p**i * (1 - p) ** (m - i) for i in range(m - t + 1, m + 1))


@lru_cache(maxsize=64)
def graph_params(n: int) -> GraphParams | None:
    """The smallest k (and its t_k) meeting PRIVACY_BITS and LIVENESS_BITS for n nodes,
    or None for the complete graph (n < SPARSE_MIN_NODES, or 2k >= n - 1: a sparse
    graph would save nothing)."""
    if n < SPARSE_MIN_NODES:
        return None
    for k in range(2, (n - 1) // 2):
        for t in range(1, k + 2):
            if _colluders_tail(t, n, k) * n <= 2.0**-PRIVACY_BITS and _dropout_tail(t, k) * n <= 2.0**-LIVENESS_BITS:
                return GraphParams(degree=k, threshold=t)
    return None


@lru_cache(maxsize=8)
def _roster_field(node_ids: tuple[int, ...]) -> bytes:
    """The roster's encoding, once per graph rather than once per node."""
    return b"".join(int_fields(node_ids))


def out_choice(
    *, run_id: str, node_id: int, public_key: bytes, node_ids: Sequence[int], degree: int
) -> tuple[int, ...]:
    """v's k out-neighbours among `node_ids` (the set-up's roster, signed in every key
    statement): the k smallest words of an AES-CTR keystream keyed by
    SHA-256(PROTOCOL "/graph" | run id | v | C_v | node ids), one word per roster position."""
    seed = hashlib.sha256(
        PROTOCOL + b"/graph" + b"".join(encode_field(p) for p in (run_id, node_id, public_key))
        + _roster_field(tuple(node_ids))
    ).digest()
    words = prg(seed, len(node_ids)).copy()
    words[list(node_ids).index(node_id)] = np.iinfo(np.uint64).max  # never itself
    picked = np.argsort(words, kind="stable")[:degree]
    return tuple(sorted(node_ids[i] for i in picked.tolist()))  # ids are up to 2^64: no numpy


@dataclass(frozen=True)
class NeighbourGraph:
    """The sparse graph of one run over the nodes whose keys were verified.

    `out[v]`: v's out-neighbours still in the run (a node missing from the key broadcast
    is treated as dropped)."""

    threshold: int
    out: Mapping[int, tuple[int, ...]]
    _in: dict[int, set[int]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for v, chosen in self.out.items():
            for u in chosen:
                self._in.setdefault(u, set()).add(v)

    def holders(self, v: int) -> tuple[int, ...]:
        """Who holds shares of v's secrets: v itself and its out-neighbours."""
        return tuple(sorted({v, *self.out[v]}))

    def neighbours(self, u: int) -> tuple[int, ...]:
        """Who u masks with and exchanges encrypted secrets with (both directions)."""
        return tuple(sorted(set(self.out[u]) | self._in.get(u, set())))

    def owners(self, u: int) -> tuple[int, ...]:
        """Whose shares u holds: itself and every node that chose u."""
        return tuple(sorted({u} | self._in.get(u, set())))


def derive_graph(
    *, run_id: str, node_ids: Sequence[int], public_keys: Mapping[int, bytes]
) -> NeighbourGraph | None:
    """The run's graph from the set-up's roster and the verified run keys; None means the
    complete graph. Server and nodes call this with the same inputs and get the same
    graph; a node never takes it from a message."""
    params = graph_params(len(node_ids))
    if params is None:
        return None
    present = set(public_keys)
    out = {
        v: tuple(w for w in out_choice(
            run_id=run_id, node_id=v, public_key=public_keys[v], node_ids=tuple(node_ids),
            degree=params.degree,
        ) if w in present)
        for v in sorted(present)
    }
    return NeighbourGraph(threshold=params.threshold, out=out)


def restrict(ids: Iterable[int], allowed: Iterable[int]) -> list[int]:
    """`ids` that are in `allowed`, sorted."""
    keep = set(allowed)
    return sorted(v for v in ids if v in keep)


def peers_in(graph: NeighbourGraph | None, u: int, among: Iterable[int]) -> list[int]:
    """The nodes of `among` that u masks with (server side; None: the complete graph)."""
    if graph is None:
        return sorted(v for v in among if v != u)
    return restrict(among, graph.neighbours(u))


def owned_in(graph: NeighbourGraph | None, u: int, among: Iterable[int]) -> list[int]:
    """The nodes of `among` whose shares u holds (server side; None: the complete graph)."""
    return sorted(among) if graph is None else restrict(among, graph.owners(u))
