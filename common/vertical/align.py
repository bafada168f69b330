"""A party's alignment after the PSI: which of its rows every peer holds, a key the
parties share and the server never sees, and the shared rows in the order that key
gives (the same order on every party, random to the server).

The key is the hash of one fresh contribution per party, each sealed to every peer
under the PSI's signed pairwise channel (`common.psi.channel`), so a relaying server
can neither read nor replace one. The order is the sort of BLAKE2b(key, id): equal ids
sort equally everywhere; without the key the server cannot link a position to an id.
The key also seeds the per-position distance offsets (`blocks.offsets`).
"""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np
from pydantic import BaseModel, ConfigDict

from fedseg.common.psi import channel, protocol
from fedseg.common.psi.protocol import PsiError, ids_digest
from fedseg.common.vertical.messages import VerticalAlignRequest, VerticalMatchRequest

PENDING, ALIGNED = "vertical-pending", "vertical"
_BYTES = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")


class DuplicateIds(PsiError):
    """The same id twice in one party's table: rows could not be matched one to one."""

    code = "bad-table"


class _Pending(BaseModel):
    model_config = _BYTES
    session: str
    contribution: bytes
    shared: bytes  # packed bool mask over this party's rows


class Aligned(BaseModel):
    """The outcome kept on the party: its shared rows in the common order, and the key."""

    model_config = _BYTES
    session: str
    key: bytes
    rows: bytes  # int64 row indices, position i of every exchange -> row rows[i]
    ids_sha256: str
    n_rows: int

    def positions(self) -> np.ndarray:
        return np.frombuffer(self.rows, dtype=np.int64)

    @property
    def n_rows_shared(self) -> int:
        return len(self.rows) // 8


def id_format(ids: np.ndarray) -> str:
    """The coarse shape of the ids: 'integer', 'digits-W' (zero-padded to W) or 'text'."""
    text = np.asarray(ids, dtype=str)
    if len(text) and all(re.fullmatch(r"[0-9]+", x) for x in text[: min(len(text), 1000)]):
        padded = [x for x in text if len(x) > 1 and x.startswith("0")]
        return f"digits-{len(padded[0])}" if padded else "integer"
    return "text"


def match(req: VerticalMatchRequest, state: dict[str, bytes], *, ids: np.ndarray,
          rng=os.urandom) -> tuple[dict[int, bytes], str]:
    """PSI step 4: the rows every peer holds; one contribution sealed to each peer."""
    if len(np.unique(ids)) != len(ids):
        raise DuplicateIds("an id appears more than once in this party's table")
    masks = protocol.peer_masks(req, state, ids=ids)
    shared = np.logical_and.reduce(list(masks.values()))
    secrets = protocol.session_secrets(state, req.session)
    mine = rng(32)
    state[PENDING] = _Pending(session=req.session, contribution=mine,
                              shared=np.packbits(shared).tobytes()).model_dump_json().encode()
    sealed = {peer: channel.seal(protocol.pair_key(secrets, peer), mine, session=req.session, step="vertical-key",
                                 sender=secrets.node_id, recipient=peer) for peer in secrets.peer_keys}
    return sealed, id_format(ids)


def order_key(session: str, contributions: dict[int, bytes]) -> bytes:
    """The parties' shared key: every contribution, in node-id order, hashed."""
    parts = b"".join(contributions[n] for n in sorted(contributions))
    return hashlib.sha256(channel.PSI_PROTOCOL + b"/vertical-key\x00" + session.encode() + b"\x00" + parts).digest()


def keyed_order(ids: np.ndarray, key: bytes) -> np.ndarray:
    """Indices that sort `ids` by BLAKE2b(key, id)."""
    digests = b"".join(hashlib.blake2b(str(x).encode(), key=key, digest_size=16).digest() for x in ids)
    return np.argsort(np.frombuffer(digests, dtype="S16"), kind="stable")


def align(req: VerticalAlignRequest, state: dict[str, bytes], *, ids: np.ndarray) -> Aligned:
    """Open the peers' contributions, derive the key, order the shared rows."""
    if PENDING not in state:
        raise PsiError("no vertical match on this node")
    pending = _Pending.model_validate_json(state.pop(PENDING))
    if pending.session != req.session:
        raise PsiError("a vertical alignment of another session")
    secrets = protocol.session_secrets(state, req.session)
    opened = protocol.open_from_peers(secrets, req.sealed, "vertical-key")  # 32 bytes = one "point" each
    contributions = {peer: b"".join(points) for peer, points in opened.items()}
    if any(len(c) != 32 for c in contributions.values()):
        raise PsiError("a key contribution of the wrong size")
    key = order_key(req.session, {**contributions, secrets.node_id: pending.contribution})
    shared = np.unpackbits(np.frombuffer(pending.shared, dtype=np.uint8), count=len(ids)).astype(bool)
    rows = np.flatnonzero(shared)
    rows = rows[keyed_order(ids[rows], key)].astype(np.int64)
    aligned = Aligned(session=req.session, key=key, rows=rows.tobytes(), ids_sha256=ids_digest(ids), n_rows=len(ids))
    state[ALIGNED] = aligned.model_dump_json().encode()
    return aligned
