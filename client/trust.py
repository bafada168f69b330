"""The node's secure-aggregation trust from its own policy: its identity key, the
roster pinned by `roster-sha256`, and its cohort and colluder floors (DEPLOY.md, B3b).

Nothing here comes from the server; a node without identity or a roster whose
fingerprint is not the pinned one refuses secure aggregation (`no-identity`).
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedseg.client.policy import NodePolicy
from fedseg.common.secagg.identity import NodeTrust, load_roster
from fedseg.common.secagg.messages import SecAggRefused


def load_identity_key(path: Path) -> Ed25519PrivateKey:
    """This node's Ed25519 identity key (PEM, PKCS8, as `fedseg identity` writes it)."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SecAggRefused("no-identity", f"identity key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SecAggRefused("no-identity", f"identity key {path}: not an Ed25519 key")
    return key


def node_trust(policy: NodePolicy) -> NodeTrust:
    """The trust a node's policy configures; refuses when identity or roster is missing."""
    if policy.identity_key is None or policy.roster is None:
        raise SecAggRefused("no-identity", "identity-key and roster are not configured on this node")
    trust = NodeTrust(
        signing_key=load_identity_key(policy.identity_key),
        roster=load_roster(policy.roster, policy.roster_sha256),
        min_cohort=policy.min_cohort,
        max_colluders=policy.max_colluders,
    )
    trust.name  # noqa: B018 - refuses now if the identity is not on the roster
    return trust
