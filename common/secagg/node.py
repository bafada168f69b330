"""The node side of secure aggregation: one method per message the node receives.

The steps follow PRIVACY.md ("Secure aggregation", "Message flow"); the node keeps its
state between messages as bytes (`SecAggClient.to_bytes`), which hold its private keys
and must stay on the node.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from numpy.typing import ArrayLike, NDArray

from fedseg.common.secagg import fixed_point, shamir
from fedseg.common.secagg.derivation import (
    TagOrder,
    escrow_commitment,
    escrow_pads,
    pair_keys,
    pair_secrets,
    public_key_of,
    self_mask_keys,
    tag_layout,
    xor_keys,
)
from fedseg.common.secagg.masks import prg, signed_stream_sum, split_tags
from fedseg.common.secagg.identity import NodeTrust, check_threshold, key_statement, survivors_statement
from fedseg.common.secagg.messages import (
    KEY_BYTES,
    NONCE_BYTES,
    KeyAdvertisement,
    KeyBroadcast,
    MaskedInput,
    RoundRequest,
    SecAggError,
    SecAggRefused,
    SetupRequest,
    SetupShares,
    SurvivorsSignature,
    UnmaskRequest,
    UnmaskShares,
)
from fedseg.common.secagg.node_checks import (
    check_round_cohort,
    check_signatures,
    check_survivors,
    require_trust,
    verified_identity_keys,
)
from fedseg.common.secagg.node_graph import (
    adopt_graph,
    check_neighbourhoods,
    check_own_holders,
    peers_of,
    revealable,
    share_rows,
)
from fedseg.common.secagg.node_state import ClientState
from fedseg.common.secagg.peer_bytes import PeerBytes
from fedseg.common.secagg.sealing import aead_table, open_secrets, seal_secrets

Rng = Callable[[int], bytes]
"""Source of random bytes, `os.urandom` by default; inject a seeded one in tests."""


class SecAggClient:
    """Node side of secure aggregation; one method per message received.

    Set-up: `advertise_keys(SetupRequest)`, `share_keys(KeyBroadcast)`. Each round:
    `mask_input(RoundRequest, vectors)`, then with dropouts `sign_survivors(UnmaskRequest)`,
    then `unmask(UnmaskRequest)`. Between messages, keep `to_bytes()` (e.g. in Flower's
    `context.state`) and restore with `from_bytes`. `trust` is the node's own identity,
    roster and floors; without it the node refuses (`no-identity`).
    """

    def __init__(self, node_id: int, *, rng: Rng = os.urandom, trust: NodeTrust | None = None) -> None:
        self._state = ClientState(node_id=node_id)
        self._rng, self._trust = rng, trust

    @classmethod
    def from_bytes(cls, data: bytes, *, rng: Rng = os.urandom, trust: NodeTrust | None = None) -> SecAggClient:
        """Restore a client saved with `to_bytes`."""
        client = cls.__new__(cls)
        client._state, client._rng, client._trust = ClientState.model_validate_json(data), rng, trust
        return client

    def to_bytes(self) -> bytes:
        """The client state as JSON bytes (contains private keys: keep it on the node)."""
        return self._state.model_dump_json().encode()

    @property
    def state(self) -> ClientState:
        """A copy of the current state."""
        return self._state.model_copy(deep=True)

    @property
    def run_facts(self) -> tuple[str, int, int, int]:
        """(run id, threshold, fixed-point fraction bits, roster size): what the node's
        policy checks read every round, without copying the whole state."""
        st = self._state
        return st.run_id, st.threshold, st.frac_bits, len(st.roster)

    # -- set-up

    def advertise_keys(self, request: SetupRequest) -> KeyAdvertisement:
        """Set-up step 1: check the cohort and threshold against the node's own floors,
        draw the run's X25519 key pair and publish its public half, signed."""
        st, trust = self._state, require_trust(self._trust)
        self._expect_phase("new")
        if st.node_id not in request.node_ids:
            raise SecAggError(f"node {st.node_id} is not in the roster")
        check_threshold(request.threshold, len(request.node_ids), trust)
        st.run_id, st.roster = request.run_id, request.node_ids
        st.threshold, st.frac_bits = request.threshold, request.frac_bits
        st.private_key = self._rng(KEY_BYTES)
        st.phase = "advertised"
        public_key, name = public_key_of(st.private_key), trust.name
        statement = key_statement(
            run_id=st.run_id, node_id=st.node_id, identity=name, public_key=public_key,
            node_ids=st.roster, threshold=st.threshold, frac_bits=st.frac_bits,
        )
        return KeyAdvertisement(
            run_id=st.run_id, node_id=st.node_id, public_key=public_key, identity=name,
            signature=trust.sign(statement),
        )

    def share_keys(self, broadcast: KeyBroadcast) -> SetupShares:
        """Set-up step 2: agree the pair keys with every peer (the only X25519 of the
        run), then Shamir-share s_{u,1} and b_{u,1}, encrypted for every other node.

        Every key must be signed by a distinct roster identity for this set-up."""
        st, trust = self._state, require_trust(self._trust)
        self._expect_phase("advertised")
        self._expect_run(broadcast.run_id)
        keys = broadcast.public_keys
        if keys.get(st.node_id) != public_key_of(st.private_key):
            raise SecAggError("the broadcast does not carry this node's own public key")
        if not set(keys) <= set(st.roster):
            raise SecAggError(
                f"unknown node ids in the broadcast: {sorted(set(keys) - set(st.roster))}"
            )
        if len(keys) < st.threshold:
            raise SecAggError(
                f"only {len(keys)} nodes advertised keys; threshold is {st.threshold}"
            )
        if len(set(keys.values())) != len(keys):
            raise SecAggError("public keys in the broadcast are not distinct")
        st.identity_keys = PeerBytes.pack(verified_identity_keys(st, broadcast, trust), width=KEY_BYTES)
        adopt_graph(st, keys, trust)
        private = X25519PrivateKey.from_private_bytes(st.private_key)
        enc_keys, roots = {}, {}
        for v in peers_of(st, keys):
            enc_keys[v], roots[v] = pair_secrets(private, keys[v], run_id=st.run_id)
        st.enc_keys = PeerBytes.pack(enc_keys, width=KEY_BYTES)
        st.mask_roots = PeerBytes.pack(roots, width=KEY_BYTES)
        st.active = tuple(sorted(keys))
        commitment, secrets = self._share_round_secrets(1, st.active)
        st.round, st.phase = 1, "ready"
        return SetupShares(
            run_id=st.run_id, node_id=st.node_id, commitment=commitment, secrets=secrets
        )

    # -- rounds

    def mask_input(
        self, request: RoundRequest, vectors: Mapping[str, ArrayLike], *, noised: bool = False
    ) -> MaskedInput:
        """Round step 1: encode `vectors` (tag -> float vector), mask them, and escrow
        every pair key under the pad the peer sent.

        `noised`: the vectors carry this node's DP noise share (checked by the caller
        against the node's policy); only then may a round run over fewer nodes than the
        run's cohort. Raises FixedPointOverflowError if a value could overflow a sum.
        """
        return self.mask_encoded(request, self.encode(vectors), noised=noised)

    def encode(self, vectors: Mapping[str, ArrayLike]) -> dict[str, NDArray[np.uint64]]:
        """Fixed-point encodings of float vectors at this run's frac_bits and roster size:
        what `mask_encoded` takes, and the grid a node's integer DP noise is drawn on."""
        st = self._state
        return {tag: fixed_point.encode(v, frac_bits=st.frac_bits,
                                        max_nodes=len(st.roster)) for tag, v in vectors.items()}

    def mask_encoded(
        self, request: RoundRequest, encoded: Mapping[str, NDArray[np.uint64]], *, noised: bool = False
    ) -> MaskedInput:
        """Round step 1 on already encoded vectors (tag -> uint64 ring elements, e.g. with
        integer DP noise added on the fixed-point grid); see `mask_input`."""
        st, trust = self._state, require_trust(self._trust)
        self._expect_phase("ready")
        self._expect_run(request.run_id)
        self._expect_round(request.round, "request")
        active = request.active
        if st.node_id not in active:
            raise SecAggError("this node is not in the round's active set")
        check_round_cohort(st, active, noised, trust)
        check_own_holders(st, active)
        if set(encoded) != set(request.vectors):
            raise SecAggError(
                f"vectors {sorted(encoded)} do not match the request {sorted(request.vectors)}"
            )
        peers = peers_of(st, active)
        self._expect_senders(request.secrets, peers, "round secrets")
        opened = self._open_round_secrets(request.secrets, peers)
        order, total, layout = tag_layout(request.vectors)
        flat = self._ordered_input(encoded, order)
        roots = st.mask_roots.values_for(peers)
        keys = pair_keys(roots, run_id=st.run_id, round=st.round, layout=layout)
        below = bisect.bisect_left(peers, st.node_id)  # u adds PRG(k_uv) for v > u
        flat += signed_stream_sum(keys[below:], keys[:below], total)
        [self_key] = self_mask_keys([st.seed], run_id=st.run_id, round=st.round, layout=layout)
        flat += prg(self_key, total)
        masked = {tag: v.astype("<u8").tobytes() for tag, v in split_tags(flat, order).items()}
        pads = opened[:, 2 * shamir.PACKED_SHARE_BYTES :].tobytes()
        escrows = dict(zip(peers, xor_keys(b"".join(keys), pads)))

        everyone, n = tuple(sorted([*peers, st.node_id])), shamir.PACKED_SHARE_BYTES
        st.key_shares = self._with_own_share(st.key_shares, opened[:, :n], below, everyone)
        st.seed_shares = self._with_own_share(st.seed_shares, opened[:, n : 2 * n], below, everyone)
        st.active, st.phase, st.noised, st.signed = tuple(active), "masked", noised, ()
        return MaskedInput(
            run_id=st.run_id, round=st.round, node_id=st.node_id, vectors=masked, escrows=escrows
        )

    def sign_survivors(self, request: UnmaskRequest) -> SurvivorsSignature:
        """Round step 2a, only when nodes dropped: sign the survivor list (one list per
        round: afterwards this node unmasks for exactly that list or not at all)."""
        st = self._state
        self._expect_phase("masked")
        self._check_unmask_request(request)
        statement = survivors_statement(
            run_id=st.run_id, round=st.round, survivors=request.survivors, dropped=request.dropped
        )
        st.signed, st.phase = tuple(request.survivors), "signed"
        return SurvivorsSignature(
            run_id=st.run_id, round=st.round, node_id=st.node_id,
            signature=require_trust(self._trust).sign(statement),
        )

    def unmask(self, request: UnmaskRequest) -> UnmaskShares:
        """Round step 2: reveal b-shares of survivors and s-shares of dropped nodes, and
        send the next round's commitment and encrypted secrets.

        Never reveals both kinds for one node: with dropouts only for the list this node
        signed and t survivors signed too; a node listed as dropped is excluded for the
        rest of the run, and a request listing this node as dropped is refused.
        """
        st = self._state
        if st.phase != "signed":
            self._expect_phase("masked")
        self._check_unmask_request(request)
        if request.dropped or st.phase == "signed":
            if st.phase != "signed" or tuple(request.survivors) != st.signed:
                raise SecAggRefused("inconsistent-survivors", "not the survivor list this node signed")
            check_signatures(st, request)
        check_neighbourhoods(st, request.survivors)
        survivors, dropped = set(request.survivors), set(request.dropped)
        kept, gone = revealable(st, survivors), revealable(st, dropped)
        reply_seed = dict(zip(kept, st.seed_shares.values_for(kept)))
        reply_key = dict(zip(gone, st.key_shares.values_for(gone)))
        next_active, next_round = tuple(sorted(survivors)), st.round + 1
        commitment, secrets = self._share_round_secrets(next_round, next_active)
        st.excluded = tuple(sorted(set(st.excluded) | dropped))
        st.active, st.round, st.phase = next_active, next_round, "ready"
        st.cohort = st.cohort or next_active  # fixed at the first release; only shrinks
        return UnmaskShares(
            run_id=st.run_id,
            round=request.round,
            node_id=st.node_id,
            seed_shares=reply_seed,
            key_shares=reply_key,
            next_commitment=commitment,
            next_secrets=secrets,
        )

    # -- helpers

    def _check_unmask_request(self, request: UnmaskRequest) -> None:
        """Run, round, this node not declared dropped, and `check_survivors`."""
        st = self._state
        self._expect_run(request.run_id)
        self._expect_round(request.round, "unmask request")
        if st.node_id in request.dropped:
            st.phase = "excluded"
            raise SecAggError("this node was declared dropped; it takes no further part")
        check_survivors(st, request, require_trust(self._trust))

    def _share_round_secrets(
        self, round: int, recipients: Sequence[int]
    ) -> tuple[bytes, dict[int, bytes]]:
        """Draw s_{u,round} and b_{u,round}, Shamir-share both; keep the own shares.

        Returns the commitment to s_{u,round} and, per other recipient v, one
        ciphertext Enc_uv(share_v(s) | share_v(b) | e_{u->v,round}).
        """
        st = self._state
        st.escrow_key, st.seed = self._rng(KEY_BYTES), self._rng(KEY_BYTES)
        shares = share_rows(st, [st.escrow_key, st.seed], self._rng)  # (n, 2 DIGITS): s | b
        rows = shares.astype(">u4").view(np.uint8)  # (n, 2 PACKED_SHARE_BYTES): s | b
        index = {v: i for i, v in enumerate(st.roster)}
        peers = peers_of(st, recipients)
        pads = escrow_pads(
            st.escrow_key, run_id=st.run_id, round=round, sender=st.node_id, recipients=peers
        )
        pad_rows = np.frombuffer(b"".join(pads), dtype=np.uint8).reshape(-1, KEY_BYTES)
        plain = np.concatenate([rows[[index[v] for v in peers]], pad_rows], axis=1).tobytes()
        nonces = self._rng(NONCE_BYTES * len(peers))
        secrets = seal_secrets(
            self._ciphers(peers),
            plain,
            nonces,
            run_id=st.run_id,
            round=round,
            sender=st.node_id,
            recipients=peers,
        )
        own, n = rows[index[st.node_id]].tobytes(), shamir.PACKED_SHARE_BYTES
        st.key_shares = PeerBytes(width=n, ids=(st.node_id,), data=own[:n])
        st.seed_shares = PeerBytes(width=n, ids=(st.node_id,), data=own[n:])
        commitment = escrow_commitment(st.escrow_key, run_id=st.run_id, round=round, node_id=st.node_id)
        return commitment, secrets

    def _open_round_secrets(
        self, secrets: Mapping[int, bytes], peers: Sequence[int]
    ) -> NDArray[np.uint8]:
        """Decrypt every peer's round secrets: a (len(peers), SECRETS_BYTES) matrix whose
        rows are share of s | share of b | pad, with every share checked well formed."""
        st = self._state
        opened = open_secrets(
            self._ciphers(peers),
            [secrets[v] for v in peers],
            run_id=st.run_id,
            round=st.round,
            senders=peers,
            recipient=st.node_id,
        )
        try:  # every share opened must be well formed
            shamir.packed_shares_from_blob(opened[:, : 2 * shamir.PACKED_SHARE_BYTES].tobytes())
        except ValueError as exc:
            raise SecAggError(f"a decrypted share is malformed: {exc}") from exc
        return opened

    def _ordered_input(
        self, encoded: Mapping[str, NDArray[np.uint64]], order: TagOrder
    ) -> NDArray[np.uint64]:
        """The round's encodings concatenated in the layout's (sorted) tag order."""
        parts = []
        for tag, length in order:
            x = np.array(encoded[tag], dtype=np.uint64)
            if x.shape != (length,):
                raise SecAggError(f"vector {tag!r} has shape {x.shape}, expected ({length},)")
            parts.append(x)
        return np.concatenate(parts)

    def _with_own_share(
        self, own: PeerBytes, opened: NDArray[np.uint8], position: int, everyone: tuple[int, ...]
    ) -> PeerBytes:
        """The peers' shares (rows of `opened`, peers in id order) with this node's own
        share inserted at `position`, packed for `everyone` (sorted, including this node)."""
        data, cut = opened.tobytes(), position * own.width
        data = data[:cut] + own[self._state.node_id] + data[cut:]
        return PeerBytes(width=own.width, ids=everyone, data=data)

    def _ciphers(self, peers: Sequence[int]) -> list[ChaCha20Poly1305]:
        """The ChaCha20-Poly1305 ciphers shared with `peers`, keyed by HKDF(X25519(c_u, C_v)).

        The keys are agreed once per run (`share_keys`) and kept in the client state, so
        no later message repeats an X25519 agreement."""
        keys = self._state.enc_keys
        table = aead_table(keys.data)
        try:
            return [table[i] for i in keys.positions(peers)]
        except KeyError as exc:
            raise SecAggError(f"no share-encryption key for node {exc.args[0]}") from exc

    def _expect_phase(self, phase: str) -> None:
        if self._state.phase != phase:
            raise SecAggError(f"unexpected message: client is in phase {self._state.phase!r}")

    def _expect_run(self, run_id: str) -> None:
        if run_id != self._state.run_id:
            raise SecAggError(
                f"message for run {run_id!r}, this client is in run {self._state.run_id!r}"
            )

    def _expect_round(self, round: int, what: str) -> None:
        if round != self._state.round:
            raise SecAggError(f"{what} for round {round}, this node is at round {self._state.round}")

    @staticmethod
    def _expect_senders(got: Mapping[int, bytes], expected: Sequence[int], what: str) -> None:
        if set(got) != set(expected):
            raise SecAggError(f"{what}: expected senders {sorted(expected)}, got {sorted(got)}")
