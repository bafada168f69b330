"""A node's side of the PSI, step by step, its state kept between messages as bytes
(Flower's `context.state`). Pure: the caller passes ids, trust and randomness.

Steps (one per exchange, every node in each): `keys` (draw the channel key and the
blinding scalar a, sign the key), `blind` (check every peer's signed key against the
pinned roster, seal the shuffled, padded list H(x)^a to each peer), `cross` (open each
peer's H(y)^b, seal H(y)^{ab} back, keep its 16-byte prefixes), `match` (open H(x)^{ba}
from each peer, mark the rows that peer holds, keep the rows this node owns).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from pydantic import BaseModel, ConfigDict

from fedseg.common.psi import channel, group, owner
from fedseg.common.psi.messages import PsiBlindRequest, PsiCrossRequest, PsiKeyReply, PsiKeysRequest, PsiMatchRequest
from fedseg.common.secagg.identity import NodeTrust
from fedseg.common.secagg.messages import SecAggError

STATE, CROSS, RESULT = "psi", "psi-cross/", "dedup"


class PsiError(SecAggError):
    """A PSI message that breaks the protocol; the server gets `code`, never the text."""

    code = "protocol-error"


class SessionSecrets(BaseModel):
    """What a node keeps between PSI steps (its channel key, blinding scalar, the peers'
    verified keys); never sent. Protocols built on the PSI's channel (the vertical
    alignment) read it through `session_secrets`."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")
    session: str
    node_id: int
    name: str  # this node's roster identity
    node_ids: list[int]
    channel_key: bytes
    scalar: bytes
    shuffle_seed: int
    n_rows: int = 0
    peer_keys: dict[int, bytes] = {}
    peer_names: dict[int, str] = {}


class DedupResult(BaseModel):
    """The outcome on this node: which of its rows it keeps, and two counts."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")
    session: str
    ids_sha256: str
    keep: bytes  # np.packbits of the (n,) keep mask
    n_rows: int
    shared: int  # rows held by some peer too and owned here
    removed: int  # rows held by some peer too and owned there

    def mask(self) -> np.ndarray:
        return np.unpackbits(np.frombuffer(self.keep, dtype=np.uint8), count=self.n_rows).astype(bool)


def ids_digest(ids: np.ndarray) -> str:
    return hashlib.sha256("\x00".join(map(str, ids)).encode()).hexdigest()


def session_secrets(state: dict[str, bytes], session: str) -> SessionSecrets:
    """This node's secrets of PSI `session`, kept in its state; PsiError when it holds
    none or those of another session (a step replayed across sessions)."""
    if STATE not in state:
        raise PsiError("no PSI keys on this node for this session")
    secrets = SessionSecrets.model_validate_json(state[STATE])
    if secrets.session != session:
        raise PsiError("a PSI step of another session")
    return secrets


def keys(req: PsiKeysRequest, state: dict[str, bytes], *, node_id: int, trust: NodeTrust,
         rng=os.urandom) -> PsiKeyReply:
    """Step 1: a new session starts from nothing (an older one's state is dropped)."""
    if node_id not in req.node_ids:
        raise PsiError("this node is not in the announced PSI session")
    for key in [k for k in state if k == STATE or k.startswith(CROSS) or k == RESULT]:
        del state[key]
    secrets = SessionSecrets(session=req.session, node_id=node_id, name=trust.name, node_ids=sorted(req.node_ids),
                       channel_key=rng(32), scalar=group.new_scalar(rng),
                       shuffle_seed=int.from_bytes(rng(8), "little"))
    state[STATE] = secrets.model_dump_json().encode()
    public = channel.public_key_of(secrets.channel_key)
    said = channel.statement(session=req.session, node_id=node_id, identity=trust.name, public_key=public,
                             node_ids=secrets.node_ids)
    return PsiKeyReply(node_id=node_id, public_key=public, identity=trust.name, signature=trust.sign(said))


def pair_key(secrets: SessionSecrets, peer: int) -> bytes:
    """The symmetric key of this node's signed channel with `peer` (blob sealing, `channel.seal`)."""
    return channel.pair_key(secrets.channel_key, secrets.peer_keys[peer], session=secrets.session,
                            a=secrets.node_id, b=peer)


def _shuffle(secrets: SessionSecrets, n_padded: int) -> np.ndarray:
    return np.random.default_rng(secrets.shuffle_seed).permutation(n_padded)


def blind(req: PsiBlindRequest, state: dict[str, bytes], *, ids: np.ndarray, trust: NodeTrust,
          rng=os.urandom) -> dict[int, bytes]:
    """Step 2: verify the peers' keys, then seal the padded, shuffled H(x)^a to each."""
    secrets = session_secrets(state, req.session)
    own = (secrets.node_id, trust.name, channel.public_key_of(secrets.channel_key))
    secrets.peer_keys = channel.verified_peers(
        session=req.session, node_ids=secrets.node_ids, own=own, roster=trust.roster,
        public_keys=req.public_keys, identities=req.identities, signatures=req.signatures)
    secrets.peer_names = {n: req.identities[n] for n in secrets.peer_keys}
    secrets.n_rows = len(ids)
    state[STATE] = secrets.model_dump_json().encode()
    points = group.hash_ids(list(map(str, ids))) + group.dummies(group.padded_size(len(ids)) - len(ids), rng)
    order = _shuffle(secrets, len(points))
    payload = group.pack(group.blind(secrets.scalar, [points[i] for i in order]))
    return {peer: channel.seal(pair_key(secrets, peer), payload, session=req.session, step="blind",
                               sender=secrets.node_id, recipient=peer) for peer in secrets.peer_keys}


def open_from_peers(secrets: SessionSecrets, sealed: dict[int, bytes], step: str) -> dict[int, list[bytes]]:
    """Each peer's sealed blob of `step`, opened and authenticated, as its list of 32-byte
    points; refuses (PsiError) blobs from other or missing senders and any that fail to open."""
    if set(sealed) != set(secrets.peer_keys):
        raise PsiError("the relayed lists are not exactly one from each peer")
    try:
        return {peer: group.unpack(channel.open_sealed(pair_key(secrets, peer), blob, session=secrets.session,
                                                       step=step, sender=peer, recipient=secrets.node_id))
                for peer, blob in sealed.items()}
    except (channel.ChannelError, group.GroupError) as exc:
        raise PsiError(str(exc)) from exc


def cross(req: PsiCrossRequest, state: dict[str, bytes], *, max_rows: int) -> dict[int, bytes]:
    """Step 3: blind each peer's list again, seal it back; keep its token prefixes.

    A peer's list longer than `max_rows` (padded) is refused: blinding a list of guessed
    ids for a peer is exactly what lets it test them, so its size is capped."""
    secrets = session_secrets(state, req.session)
    out = {}
    for peer, points in open_from_peers(secrets, req.sealed, "blind").items():
        if len(points) > group.padded_size(max_rows):
            raise PsiError("a peer's list is longer than this node's record limit allows")
        try:
            twice = group.blind(secrets.scalar, points)
        except group.GroupError as exc:
            raise PsiError(str(exc)) from exc
        state[f"{CROSS}{peer}"] = group.tokens(twice).tobytes()
        out[peer] = channel.seal(pair_key(secrets, peer), group.pack(twice), session=req.session, step="cross",
                                 sender=secrets.node_id, recipient=peer)
    return out


def peer_masks(req: PsiMatchRequest, state: dict[str, bytes], *, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Step 4's core: per peer identity, a bool (n,) mask of this node's rows it holds."""
    secrets = session_secrets(state, req.session)
    if len(ids) != secrets.n_rows:
        raise PsiError("the table changed during the PSI")
    n_padded = group.padded_size(len(ids))
    rows = _shuffle(secrets, n_padded)  # position k of the sent list holds row rows[k]
    shared_with: dict[str, np.ndarray] = {}
    for peer, points in open_from_peers(secrets, req.sealed, "cross").items():
        if len(points) != n_padded:
            raise PsiError("a peer returned a list of another length")
        theirs = np.frombuffer(state.pop(f"{CROSS}{peer}", b""), dtype=f"S{group.TOKEN_BYTES}")
        hit = np.zeros(n_padded, dtype=bool)
        hit[rows] = np.isin(group.tokens(points), theirs)
        shared_with[secrets.peer_names[peer]] = hit[: len(ids)]
    return shared_with


def match(req: PsiMatchRequest, state: dict[str, bytes], *, ids: np.ndarray) -> DedupResult:
    """Step 4: the rows each peer holds, then the rows this node owns (`owner.owned`)."""
    shared_with = peer_masks(req, state, ids=ids)
    name = session_secrets(state, req.session).name
    keep = owner.owned(ids, shared_with, session=req.session, me=name)
    any_shared = np.logical_or.reduce(list(shared_with.values())) if shared_with else np.zeros(len(ids), bool)
    result = DedupResult(session=req.session, ids_sha256=ids_digest(ids), keep=np.packbits(keep).tobytes(),
                         n_rows=len(ids), shared=int((any_shared & keep).sum()), removed=int((~keep).sum()))
    state[RESULT] = result.model_dump_json().encode()
    return result
