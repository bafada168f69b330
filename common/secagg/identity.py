"""Who a node is: the federation roster, a node's long-term Ed25519 identity, and the
signed statements that bind a run's keys and survivor lists to identities.

Bonawitz et al. (CCS 2017, section 4, "active adversary") need every key a node uses to
be signed under an identity the peers can check; otherwise a server that swaps in its
own keys reads every share. The roster is the node operator's own file of identity
public keys, pinned by its SHA-256 fingerprint (PRIVACY.md, "Threat model: a deviating
server"; DEPLOY.md, "B3b").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import tomllib
from functools import lru_cache
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

from fedseg.common.secagg.derivation import PROTOCOL, encode_field, int_fields
from fedseg.common.secagg.messages import KEY_BYTES, IdentityName, SecAggRefused

ROSTER_TABLE = "identities"
MIN_COHORT = 3  # with two nodes, each learns the other's input from the sum


def too_small(n_nodes: int) -> str | None:
    """Why `n_nodes` cannot run secure aggregation, if it cannot (CLI and server say so early)."""
    if n_nodes >= MIN_COHORT:
        return None
    return (f"secure aggregation needs at least {MIN_COHORT} nodes, got {n_nodes}: with two, each "
            "node learns the other's aggregates from the sum")


def fingerprint(data: bytes) -> str:
    """SHA-256 of a roster file's bytes, hex: what the node operator confirms out of band."""
    return hashlib.sha256(data).hexdigest()


class Roster(BaseModel):
    """The federation's identities: roster name -> Ed25519 public key (32 raw bytes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    keys: dict[IdentityName, bytes] = Field(min_length=1)

    def name_of(self, public_key: bytes) -> str | None:
        """The roster name of a public key, if it is on the roster."""
        return next((n for n, k in self.keys.items() if hmac.compare_digest(k, public_key)), None)

    def to_toml(self) -> str:
        """The roster file: one `name = "base64 key"` line per identity, sorted by name."""
        lines = [f'{n} = "{base64.b64encode(k).decode()}"' for n, k in sorted(self.keys.items())]
        return f"[{ROSTER_TABLE}]\n" + "\n".join(lines) + "\n"


def load_roster(path: Path, sha256: str | None) -> Roster:
    """Read a roster file, refusing (`no-identity`) unless its fingerprint is the pinned one."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SecAggRefused("no-identity", f"roster {path}: {exc}") from None
    if not sha256 or not hmac.compare_digest(fingerprint(data), sha256.strip().lower()):
        raise SecAggRefused("no-identity", f"roster {path}: fingerprint is not the pinned roster-sha256")
    try:
        roster = _parse_roster(data)
    except (KeyError, ValueError, TypeError, binascii.Error) as exc:
        raise SecAggRefused("no-identity", f"roster {path}: unreadable ({exc})") from None
    if any(len(k) != KEY_BYTES for k in roster.keys.values()):
        raise SecAggRefused("no-identity", f"roster {path}: every key must be 32 bytes")
    return roster


@lru_cache(maxsize=8)
def _parse_roster(data: bytes) -> Roster:
    """The roster in a file's bytes; kept by content, since a simulation worker serves
    every message of many nodes and the pinned bytes do not change within a run."""
    table = tomllib.loads(data.decode())[ROSTER_TABLE]
    return Roster(keys={str(n): base64.b64decode(v, validate=True) for n, v in table.items()})


class NodeTrust(BaseModel):
    """What a node brings to secure aggregation from its own configuration, never from the
    server: its identity key, the roster, and the floors it enforces."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    signing_key: Ed25519PrivateKey
    roster: Roster
    min_cohort: int = Field(MIN_COHORT, ge=MIN_COHORT)
    max_colluders: int = Field(0, ge=0)

    @property
    def name(self) -> str:
        """This node's roster name (checked on construction through `node_trust`)."""
        name = self.roster.name_of(self.signing_key.public_key().public_bytes_raw())
        if name is None:
            raise SecAggRefused("no-identity", "this node's identity key is not on its roster")
        return name

    def sign(self, statement: bytes) -> bytes:
        return self.signing_key.sign(statement)


def check_threshold(threshold: int, n: int, trust: NodeTrust) -> None:
    """Refuse a cohort or threshold weaker than the node's own floors.

    n >= min_cohort (>= 3: with two nodes each learns the other's input from the sum), and
    2t > n + c: two different survivor lists then cannot both gather t signatures even
    when c colluding nodes sign both, so no peer's self-mask and pair secrets are both
    revealed (Bonawitz et al. 2017, the consistency check's threshold; c = 0 is t > n/2)."""
    if n < trust.min_cohort:
        raise SecAggRefused("cohort-too-small", f"{n} nodes, this node requires {trust.min_cohort}")
    if n < threshold:
        raise SecAggRefused("threshold-refused", f"{n} nodes, below threshold {threshold}")
    if 2 * threshold <= n + trust.max_colluders:
        raise SecAggRefused(
            "threshold-refused",
            f"threshold {threshold} of {n} with up to {trust.max_colluders} colluders: need 2t > n + c",
        )


def key_statement(
    *, run_id: str, node_id: int, identity: str, public_key: bytes, node_ids: Sequence[int],
    threshold: int, frac_bits: int,
) -> bytes:
    """What a node signs with its set-up key: the key, who it is, and the set-up it saw
    (run, node ids announced, threshold), so peers notice a server that told them another."""
    head = PROTOCOL + b"/key" + b"".join(
        encode_field(p) for p in (run_id, node_id, identity, public_key, threshold, frac_bits)
    )
    return head + b"".join(int_fields(node_ids))


def survivors_statement(*, run_id: str, round: int, survivors: Sequence[int], dropped: Sequence[int]) -> bytes:
    """What a survivor signs before any share is revealed for a round with dropouts."""
    head = PROTOCOL + b"/survivors" + encode_field(run_id) + encode_field(round)
    return head + encode_field(len(survivors)) + b"".join(int_fields(survivors)) + b"".join(int_fields(dropped))


def verify(public_key: bytes, signature: bytes, statement: bytes) -> bool:
    """True if `signature` is the Ed25519 signature of `statement` under `public_key`."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, statement)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_broadcast_identities(
    identities: Mapping[int, str], roster: Roster, own: tuple[int, str]
) -> dict[int, bytes]:
    """node id -> identity public key for every node of a broadcast; refuses unknown
    identities, one identity under two node ids, and a broadcast that moves this node."""
    names = list(identities.values())
    if len(set(names)) != len(names):
        raise SecAggRefused("unknown-key", "one identity appears under two node ids")
    unknown = sorted(n for n in names if n not in roster.keys)
    if unknown:
        raise SecAggRefused("unknown-key", f"identities not on the roster: {unknown}")
    if identities.get(own[0]) != own[1]:
        raise SecAggRefused("unknown-key", "the broadcast lists another identity under this node's id")
    return {v: roster.keys[name] for v, name in identities.items()}
