"""The server side of secure aggregation: one method per step, messages in and out.

The steps follow PRIVACY.md ("Secure aggregation", "Message flow"); the arithmetic of
unmasking lives in `unmasking`, the Shamir reconstruction in `shamir`.
"""

from __future__ import annotations

import hmac
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fedseg.common.secagg import fixed_point, shamir
from fedseg.common.secagg.derivation import escrow_commitment
from fedseg.common.secagg.graph import NeighbourGraph, derive_graph, owned_in, peers_in
from fedseg.common.secagg.messages import (
    KeyAdvertisement,
    KeyBroadcast,
    MaskedInput,
    RoundRequest,
    SecAggError,
    SetupRequest,
    SetupShares,
    SurvivorsSignature,
    UnmaskRequest,
    UnmaskShares,
)
from fedseg.common.secagg.unmasking import reveal_by_neighbourhood, unmasked_totals


@dataclass(frozen=True)
class RoundResult:
    """The unmasked sums of one round and who contributed to them."""

    round: int
    sums: dict[str, NDArray[np.float64]]
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]


class SecAggServer:
    """Server side of secure aggregation; one method per step, messages in and out.

    Set-up: `setup_request`, `receive_keys`* , `key_broadcast`, `receive_setup_shares`*,
    `finish_setup`. Each round: `round_requests`, `receive_masked`*, `unmask_request`,
    [with dropouts: `receive_survivors_signature`*, `signed_unmask_request`],
    `receive_unmask_shares`*, `finish_round` (* once per node reply). A message that
    does not fit the current step raises SecAggError and changes nothing.
    """

    def __init__(self, *, run_id: str, threshold: int, frac_bits: int = 24) -> None:
        self.run_id = run_id
        self.threshold = threshold
        self.frac_bits = frac_bits
        self.phase: str = "new"
        self.round = 0
        self.roster: tuple[int, ...] = ()
        self.active: tuple[int, ...] = ()
        self._keys: dict[int, bytes] = {}  # C_v for the run
        self.graph: NeighbourGraph | None = None  # None: the complete graph
        self._adverts: dict[int, KeyAdvertisement] = {}  # with identity and signature
        self._signatures: dict[int, bytes] = {}  # survivors' signatures of this round's list
        self._commitments: dict[int, bytes] = {}  # commitment to s_{v,r} of the current round
        self._secrets_ct: dict[int, dict[int, bytes]] = {}  # sender -> recipient -> ciphertext
        self._escrows: dict[int, dict[int, bytes]] = {}  # u -> v -> k_uv XOR e_{v->u}
        self._vectors: dict[str, int] = {}
        self._masked: dict[int, dict[str, NDArray[np.uint64]]] = {}
        self._survivors: tuple[int, ...] = ()
        self._dropped: tuple[int, ...] = ()
        self._unmask: dict[int, UnmaskShares] = {}
        # per helper: its shares of b (survivors' order) and of s (dropped order), parsed
        # once on receipt and reused to reconstruct every secret in one product
        self._share_digits: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # -- set-up

    def setup_request(self, node_ids: Sequence[int]) -> SetupRequest:
        """Set-up exchange 1: the same request for every node of the roster."""
        self._expect_phase("new")
        request = SetupRequest(
            run_id=self.run_id,
            node_ids=tuple(node_ids),
            threshold=self.threshold,
            frac_bits=self.frac_bits,
        )
        if 2 * self.threshold <= len(node_ids):
            warnings.warn(
                f"threshold {self.threshold} <= n/2 = {len(node_ids) / 2}; t > n/2 is recommended",
                stacklevel=2,
            )
        self.roster, self.phase = request.node_ids, "keys"
        return request

    def receive_keys(self, message: KeyAdvertisement) -> None:
        """Record one node's public keys."""
        self._expect_phase("keys")
        self._expect_node(message, self.roster, self._keys)
        self._keys[message.node_id] = message.public_key
        self._adverts[message.node_id] = message

    def key_broadcast(self) -> KeyBroadcast:
        """Set-up exchange 2: relay every advertised public key to every node."""
        self._expect_phase("keys")
        self._expect_enough(len(self._keys), "nodes advertised keys")
        self.phase = "shares"
        self.graph = derive_graph(run_id=self.run_id, node_ids=self.roster, public_keys=self._keys)
        adverts = [self._adverts[v] for v in sorted(self._keys)]
        return KeyBroadcast(
            run_id=self.run_id,
            public_keys={a.node_id: a.public_key for a in adverts},
            identities={a.node_id: a.identity for a in adverts},
            signatures={a.node_id: a.signature for a in adverts},
        )

    def receive_setup_shares(self, message: SetupShares) -> None:
        """Store one node's commitment and encrypted first-round secrets for relaying."""
        self._expect_phase("shares")
        self._expect_node(message, tuple(self._keys), self._secrets_ct)
        others = set(peers_in(self.graph, message.node_id, self._keys))
        if set(message.secrets) != others:
            raise SecAggError(
                f"node {message.node_id}: shares must address exactly {sorted(others)}"
            )
        self._secrets_ct[message.node_id] = dict(message.secrets)
        self._commitments[message.node_id] = message.commitment

    def finish_setup(self) -> None:
        """Close set-up: the nodes that sent their shares form the first active set."""
        self._expect_phase("shares")
        self._expect_enough(len(self._secrets_ct), "nodes completed set-up")
        self.active, self.round, self.phase = tuple(sorted(self._secrets_ct)), 1, "ready"

    # -- rounds

    def round_requests(self, vectors: Mapping[str, int]) -> dict[int, RoundRequest]:
        """Round exchange 1: one request per active node (tag -> vector length)."""
        self._expect_phase("ready")
        self._expect_enough(len(self.active), "active nodes")
        def secrets_for(u: int) -> dict[int, bytes]:
            return {v: self._secrets_ct[v][u] for v in peers_in(self.graph, u, self.active)}

        first = RoundRequest(  # validates the shared fields (tags, lengths) once
            run_id=self.run_id,
            round=self.round,
            vectors=dict(vectors),
            active=self.active,
            secrets=secrets_for(self.active[0]),
        )
        # The requests differ only in the ciphertexts addressed to each node, each
        # validated when it arrived (SetupShares, UnmaskShares): copy, not re-validate.
        requests = {u: first.model_copy(update={"secrets": secrets_for(u)}) for u in self.active[1:]}
        requests = {self.active[0]: first, **requests}
        self._vectors, self._masked, self._escrows = dict(vectors), {}, {}
        self.phase = "masking"
        return requests

    def receive_masked(self, message: MaskedInput) -> None:
        """Record one masked input; rejects other runs/rounds, unknown or late nodes."""
        if self.phase != "masking":
            raise SecAggError(
                f"masked input from node {message.node_id} for round {message.round} "
                f"arrived while the server is in phase {self.phase!r} of round {self.round}"
            )
        self._expect_round(message.round)
        self._expect_node(message, self.active, self._masked)
        arrays = message.arrays()
        if {t: len(a) for t, a in arrays.items()} != self._vectors:
            raise SecAggError(
                f"node {message.node_id}: vectors { ({t: len(a) for t, a in arrays.items()}) } "
                f"do not match the request {self._vectors}"
            )
        if set(message.escrows) != set(peers_in(self.graph, message.node_id, self.active)):
            raise SecAggError(f"node {message.node_id}: escrows must address every active neighbour")
        self._masked[message.node_id] = arrays
        self._escrows[message.node_id] = dict(message.escrows)

    def unmask_request(self) -> UnmaskRequest:
        """Round exchange 2: close collection; survivors are the nodes whose input arrived."""
        self._expect_phase("masking")
        if len(self._masked) < self.threshold:
            self.phase = "failed"
            raise SecAggError(
                f"only {len(self._masked)} masked inputs arrived, below threshold {self.threshold}"
            )
        self._survivors = tuple(sorted(self._masked))
        self._dropped = tuple(v for v in self.active if v not in self._masked)
        self._unmask, self._share_digits, self._signatures = {}, {}, {}
        self.phase = "signing" if self._dropped else "unmasking"
        return UnmaskRequest(
            run_id=self.run_id, round=self.round, survivors=self._survivors, dropped=self._dropped
        )

    def receive_survivors_signature(self, message: SurvivorsSignature) -> None:
        """Record one survivor's signature of the survivor list (rounds with dropouts)."""
        self._expect_phase("signing")
        self._expect_round(message.round)
        self._expect_node(message, self._survivors, self._signatures)
        self._signatures[message.node_id] = message.signature

    def signed_unmask_request(self) -> UnmaskRequest:
        """The unmask request again, with the survivors' signatures the nodes check."""
        self._expect_phase("signing")
        self._expect_enough(len(self._signatures), "survivors signed the survivor list")
        self.phase = "unmasking"
        return UnmaskRequest(
            run_id=self.run_id, round=self.round, survivors=self._survivors, dropped=self._dropped,
            signatures=dict(sorted(self._signatures.items())),
        )

    def receive_unmask_shares(self, message: UnmaskShares) -> None:
        """Record one node's revealed shares and its encrypted next-round secrets."""
        self._expect_phase("unmasking")
        self._expect_round(message.round)
        self._expect_node(message, self._survivors, self._unmask)
        u = message.node_id
        kept, gone = owned_in(self.graph, u, self._survivors), owned_in(self.graph, u, self._dropped)
        if (
            set(message.seed_shares) != set(kept)
            or set(message.key_shares) != set(gone)
            or set(message.next_secrets) != set(peers_in(self.graph, u, self._survivors))
        ):
            raise SecAggError(f"node {message.node_id}: shares do not match the unmask request")
        try:
            seed_digits = shamir.packed_shares_from_bytes([message.seed_shares[v] for v in kept])
            key_digits = (  # usually nobody dropped
                shamir.packed_shares_from_bytes([message.key_shares[v] for v in gone])
                if gone
                else np.empty((0, shamir.DIGITS), dtype=np.int64)
            )
        except ValueError as exc:
            raise SecAggError(f"node {message.node_id}: {exc}") from exc
        self._unmask[message.node_id] = message
        self._share_digits[message.node_id] = (seed_digits, key_digits)

    def finish_round(self) -> RoundResult:
        """Reconstruct the masks from t answers, unmask and decode the sums.

        Nodes that answered form the next active set. Raises SecAggError with fewer than
        t answers and FixedPointOverflowError if the sum is out of range.
        """
        self._expect_phase("unmasking")
        if len(self._unmask) < self.threshold:
            self.phase = "failed"
            raise SecAggError(
                f"only {len(self._unmask)} nodes revealed shares, below threshold {self.threshold}"
            )
        seeds, dropped_keys = self._reveal_all()
        for v, key in dropped_keys.items():
            commitment = escrow_commitment(key, run_id=self.run_id, round=self.round, node_id=v)
            if not hmac.compare_digest(commitment, self._commitments[v]):
                raise SecAggError(
                    f"reconstructed escrow key of node {v} does not match its commitment"
                )

        totals = unmasked_totals(
            self._masked,
            self._escrows,
            seeds=seeds,
            dropped_keys=dropped_keys,
            run_id=self.run_id,
            round=self.round,
            vectors=self._vectors,
            graph=self.graph,
        )
        sums = {
            tag: fixed_point.decode(
                total,
                frac_bits=self.frac_bits,
                n_summands=len(self._survivors),
                max_nodes=len(self.roster),
            )
            for tag, total in totals.items()
        }
        result = RoundResult(self.round, sums, self._survivors, self._dropped)
        self.active = tuple(sorted(self._unmask))
        replies = [self._unmask[u] for u in self.active]
        self._commitments = {m.node_id: m.next_commitment for m in replies}
        self._secrets_ct = {m.node_id: dict(m.next_secrets) for m in replies}
        self.round, self.phase = self.round + 1, "ready"
        self._masked, self._unmask, self._escrows, self._share_digits = {}, {}, {}, {}
        return result

    def _reveal_all(self) -> tuple[dict[int, bytes], dict[int, bytes]]:
        """b_{v,r} of every survivor and s_{v,r} of every dropped node: from the first t
        answers (complete graph), or from t_k of each node's own holders (sparse)."""
        if self.graph is not None:
            reveal = reveal_by_neighbourhood(self.graph, self.roster, self._share_digits, self._unmask)
            return reveal(0, self._survivors), reveal(1, self._dropped)
        helpers = sorted(self._unmask)[: self.threshold]
        weights = shamir.lagrange_weights([self.roster.index(w) + 1 for w in helpers])
        return self._reveal(weights, helpers, 0, self._survivors), self._reveal(weights, helpers, 1, self._dropped)

    def _reveal(
        self, weights: np.ndarray, helpers: Sequence[int], kind: int, owners: Sequence[int]
    ) -> dict[int, bytes]:
        """Reconstruct the secrets of `owners` (kind 0: b of survivors, 1: s of dropped
        nodes) from the helpers' shares, all in one matrix product."""
        if not owners:
            return {}
        shares = np.stack([self._share_digits[w][kind] for w in helpers])  # (t, owners, DIGITS)
        try:
            return dict(zip(owners, shamir.combine_many(weights, shares)))
        except shamir.InconsistentShares as exc:
            raise SecAggError(f"shares of node {owners[exc.index]} are inconsistent") from exc

    # -- checks

    def _expect_phase(self, phase: str) -> None:
        if self.phase != phase:
            raise SecAggError(f"server is in phase {self.phase!r}, not {phase!r}")

    def _expect_round(self, round: int) -> None:
        if round != self.round:
            raise SecAggError(f"message for round {round}, the server is at round {self.round}")

    def _expect_node(
        self,
        message: KeyAdvertisement | SetupShares | MaskedInput | SurvivorsSignature | UnmaskShares,
        allowed: Collection[int],
        seen: Collection[int],
    ) -> None:
        node = message.node_id
        if message.run_id != self.run_id:
            raise SecAggError(f"message for run {message.run_id!r}, not {self.run_id!r}")
        if node not in allowed:
            raise SecAggError(f"node {node} is unknown or not part of this step")
        if node in seen:
            raise SecAggError(f"node {node} already answered this step")

    def _expect_enough(self, count: int, what: str) -> None:
        if count < self.threshold:
            self.phase = "failed"
            raise SecAggError(f"only {count} {what}, below threshold {self.threshold}")
