"""A node's own privacy policy: what it will answer, whatever the server asks.

The server is not trusted to decide a node's privacy (PRIVACY.md, "Threat model"), so
every limit here comes from the node's own configuration, never from a request:

- Deployment: Flower's node config (`flower-supernode --node-config 'require-secure=true
  max-epsilon-run=1.0 ...'`), keys as in `NodePolicy`'s aliases (DEPLOY.md lists them).
- Simulation: `<data-dir>/node-<partition-id>.policy.toml` when the driver wrote one
  (same keys), else the defaults.

The defaults are the safe floors that every node enforces anyway (at least three nodes
in a secure cohort, a majority threshold); the rest is opt-in per node.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fedseg.common.secagg.identity import MIN_COHORT


class PolicyError(ValueError):
    """The node's own policy configuration is unusable; the message names the key."""


class NodePolicy(BaseModel):
    """Limits a node enforces on every request (node-config keys in kebab-case)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    require_secure: bool = Field(False, alias="require-secure",
                                 description="answer phase requests only under secure aggregation")
    min_cohort: int = Field(MIN_COHORT, alias="min-cohort", ge=MIN_COHORT,
                            description="fewest nodes in a secure cohort this node takes part in")
    max_colluders: int = Field(0, alias="max-colluders", ge=0,
                               description="peers that may collude with the server (threshold and noise)")
    max_epsilon_run: float | None = Field(None, alias="max-epsilon-run", gt=0,
                                          description="DP required: most ε one run may spend on this node's data")
    max_epsilon_period: float | None = Field(None, alias="max-epsilon-period", gt=0,
                                             description="most ε all runs of one period may spend together")
    period_days: int = Field(30, alias="period-days", ge=1)
    dp_delta: float = Field(1e-6, alias="dp-delta", gt=0, lt=1)
    privacy_ledger: Path | None = Field(None, alias="privacy-ledger",
                                        description="file of this node's own privacy ledger (kept across runs)")
    schema_path: Path | None = Field(None, alias="schema-path",
                                     description="the feature schema this node answers for (pinned)")
    schema_sha256: str | None = Field(None, alias="schema-sha256",
                                      description="pinned fingerprint of the schema a request may carry")
    identity_key: Path | None = Field(None, alias="identity-key",
                                      description="this node's long-term signing key (secure aggregation)")
    roster: Path | None = Field(None, alias="roster", description="the federation's identity public keys")
    roster_sha256: str | None = Field(None, alias="roster-sha256",
                                      description="fingerprint of the roster, confirmed out of band")
    max_records: int = Field(10_000_000, alias="max-records", ge=1,
                             description="most customers this node holds: sets the fixed-point scales it accepts")

    @model_validator(mode="after")
    def _ledger_for_dp(self) -> NodePolicy:
        if self.requires_dp and self.privacy_ledger is None:
            raise ValueError("max-epsilon-run/max-epsilon-period need privacy-ledger (a file kept across runs)")
        return self

    @property
    def requires_dp(self) -> bool:
        return self.max_epsilon_run is not None or self.max_epsilon_period is not None


POLICY_KEYS = frozenset(f.alias for f in NodePolicy.model_fields.values() if f.alias)


def policy_from_mapping(values: Mapping[str, Any], where: str) -> NodePolicy:
    """A policy from kebab-case keys; unknown or invalid keys are named, never guessed."""
    try:
        return NodePolicy.model_validate({k: v for k, v in values.items() if v not in ("", None)})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PolicyError(f"{where}: invalid node policy: {problems}") from None


def node_policy(node_config: Mapping[str, Any], run_config: Mapping[str, Any]) -> NodePolicy:
    """This node's policy from its node config (deployment) or the simulation's policy file."""
    given = {k: v for k, v in node_config.items() if k in POLICY_KEYS}
    if given:
        return policy_from_mapping(given, "node config")
    if run_config.get("data-dir"):
        path = Path(str(run_config["data-dir"])) / f"node-{int(node_config.get('partition-id', 0))}.policy.toml"
        if path.exists():
            return policy_from_mapping(tomllib.loads(path.read_text()), str(path))
    return NodePolicy()
