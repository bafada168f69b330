"""One owner per shared customer, by a rule every holder computes alone.

The owner is the holder whose keyed hash H(session, id, identity) is smallest. Each
holder knows the id and (from the PSI) which peers hold it, so all holders pick the
same owner without a message. Why a hash rather than "the lowest rank": the lowest
rank would hand every shared customer to the same node, so that node's table (and its
failure mid-run) would carry all of them; the hash spreads shared customers evenly
over their holders, and the server, which lacks the ids, can neither predict nor steer
it. Identities are the signed roster names, so a server that renumbers nodes cannot
make two holders disagree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

from fedseg.common.psi.channel import PSI_PROTOCOL


def _scores(ids: np.ndarray, session: str, identity: str) -> np.ndarray:
    """The 64-bit owner score of each id for one holder."""
    prefix = PSI_PROTOCOL + b"/owner\x00" + session.encode() + b"\x00" + identity.encode() + b"\x00"
    digests = b"".join(hashlib.sha256(prefix + str(x).encode()).digest()[:8] for x in ids)
    return np.frombuffer(digests, dtype=">u8").astype(np.uint64)


def owned(ids: np.ndarray, shared_with: Mapping[str, np.ndarray], *, session: str, me: str) -> np.ndarray:
    """bool (n,): rows this node keeps. `shared_with` maps each peer's identity to a
    bool (n,) mask of this node's rows that peer also holds; an unshared row is kept."""
    keep = np.ones(len(ids), dtype=bool)
    any_shared = np.zeros(len(ids), dtype=bool)
    for mask in shared_with.values():
        any_shared |= mask
    rows = np.flatnonzero(any_shared)
    if not len(rows):
        return keep
    mine = _scores(ids[rows], session, me)
    for peer, mask in shared_with.items():
        theirs = _scores(ids[rows], session, peer)
        keep[rows] &= ~mask[rows] | (mine < theirs)
    return keep
