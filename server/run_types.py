"""What a run is made of, shared by the orchestrator, its exchanges and the ServerApp:
the transport it talks through, its progress events, candidates and result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from fedseg.common import kmeans
from fedseg.common.messages import Scaler
from fedseg.common.metrics import Criteria
from fedseg.common.profiles import ProfileStats
from fedseg.common.quantiles import FeatureQuantiles
from fedseg.common.schema import FeatureSchema
from fedseg.common.wire import Reply, Request


class RunError(RuntimeError):
    """The run cannot go on (too few nodes, too few customers for k, ...)."""


class Transport(Protocol):
    def send(self, requests: Mapping[int, Request]) -> dict[int, Reply]:
        """Deliver one request per node; return the replies that arrived (by node id)."""


@dataclass(frozen=True)
class Event:
    """Progress of a run, for a progress bar or a log line."""

    phase: str
    message: str
    round: int = 0
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """One candidate model: its k, centroids and convergence state."""

    k: int
    centroids: np.ndarray
    converged: bool = False
    stats: kmeans.ClusterStats | None = None
    evaluated: np.ndarray | None = None  # centroids the stats were computed against


@dataclass
class RunResult:
    """Everything the run learned; the artifact is built from it."""

    scaler: Scaler
    n_customers: int
    chosen: Candidate
    table: list[Criteria]
    profile: ProfileStats
    active: list[int]
    failures: dict[int, str]  # node id -> failure code (`common.messages.FailureCode`)
    rounds: int
    lloyd_rounds: int
    timings: dict[str, float]
    privacy: dict | None = None  # the DP ledger, when DP is on
    schema: FeatureSchema | None = None  # as the nodes used it (as-of date, winsor limits)
    quantiles: list[FeatureQuantiles] = field(default_factory=list)
    changes: dict | None = None  # warm start: customers that changed segment (aggregate)
    merged: int = 0  # segments below min-segment-size merged into their nearest (disclosure control)
    profile_noise: dict | None = None  # DP: noise std of the profile's released fields
    phase_nodes: dict[str, list[int]] = field(default_factory=dict)  # phase -> nodes summed, per exchange
    coverage: dict | None = None  # gaps, imputed, clipped, dropped per feature (disclosure applied)
    dedup: dict | None = None  # customers shared between units (aggregates, `psi_phase.overlap_section`)
