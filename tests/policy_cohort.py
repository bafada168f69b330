"""A secure cohort of real nodes for the policy attack tests: keys agreed through the real
orchestrator, then requests forged by the test as a deviating server would."""

from __future__ import annotations

import numpy as np

from fedseg.client.policy import NodePolicy
from fedseg.common.config import RunConfig
from fedseg.common.phases.prepare import PrepareRequest
from fedseg.common.schema import FeatureSchema, NumericFeature
from fedseg.common.secure_layout import reply_layout, vector_lengths
from fedseg.common.wire import SecureRoundRequest
from fedseg.server.orchestrator import Orchestrator
from fedseg.simulations.local_transport import LocalTransport
from tests.helpers import numeric_nodes

SCHEMA = FeatureSchema(id="id", numeric=(NumericFeature(name="x0", lower=0.0, upper=10.0),
                                         NumericFeature(name="x1", lower=0.0, upper=10.0)))
ROWS = 421  # rows per node


def cohort(n: int = 3, policies: dict[int, NodePolicy] | None = None, config: RunConfig | None = None,
           seed: int = 0) -> tuple[Orchestrator, LocalTransport, np.ndarray]:
    """`n` nodes of ROWS rows each in [0, 10]², secure set-up done; (orchestrator, transport, X)."""
    X = np.random.default_rng(seed).uniform(0, 10, size=(n * ROWS, 2))
    nodes = numeric_nodes(X, np.array_split(np.arange(len(X)), n))
    tr = LocalTransport(nodes, policies)
    orch = Orchestrator(config or RunConfig(k=2, secure=True), SCHEMA, tr, list(nodes))
    orch.start_secure()
    return orch, tr, X


def forged_round(orch: Orchestrator, inner, scales: dict[str, float], noise: dict | None = None,
                 tags: list[str] | None = None) -> dict[int, SecureRoundRequest]:
    """One secure round request per active node with the scales and noise the attacker picks."""
    lengths = vector_lengths(reply_layout(inner))
    if tags is not None:
        lengths = {t: n for t, n in lengths.items() if t in tags}
    rounds = orch.secure.server.round_requests(lengths)
    return {nid: SecureRoundRequest(inner=inner, round=r, scales=scales, noise=noise or {})
            for nid, r in rounds.items()}


def prepare() -> PrepareRequest:
    return PrepareRequest(schema=SCHEMA)


def rewrapped(requests: dict[int, SecureRoundRequest], **update) -> dict[int, SecureRoundRequest]:
    """The same round sent again with other fields (a retry)."""
    return {nid: r.model_copy(update=update) for nid, r in requests.items()}
