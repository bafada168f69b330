"""What a run releases, and how exactly: one policy object instead of DP branches.

The orchestrator asks its policy every question whose answer depends on whether the
released sums are exact or noisy: the noise the nodes add to a phase, the centre the
preprocessing sums are taken around, how the scaler is read from them, the coreset's
shape, the clip radius, the count below which a bucket or cluster is noise, how many
restarts a k gets, how the final candidate is picked, and the privacy section of the
artifact. `ExactRelease` answers for plaintext and secure runs; `NoisyRelease` wraps the
DP planner (`server/dp_planner.py`) for runs with a privacy budget.
"""

from __future__ import annotations

import dataclasses

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fedseg.common.config import RunConfig
from fedseg.common.messages import SchemaRequest
from fedseg.common.metrics import Criteria, choose_k, criteria
from fedseg.common.preprocessing import PrepareStats, scaler_from_stats
from fedseg.common.schema import FeatureSchema
from fedseg.server.dp_planner import DPPlanner

NoisePlan = dict[str, float | list[float]]  # total noise std per released field (nodes draw shares)


@dataclass(frozen=True)
class Selection:
    """The picked candidate, the per-k criteria behind it (none under DP) and why."""

    candidate: object
    table: list[Criteria]
    reason: str


class ReleasePolicy(Protocol):
    noisy: bool
    clip_norm: float

    def noise(self, request: SchemaRequest) -> NoisePlan | None: ...
    def prepare_center(self) -> np.ndarray | None: ...
    def scaler(self, total: PrepareStats, center: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]: ...
    def coreset_shape(self, n: int, tables: int, bits: int) -> tuple[int, int]: ...
    def restarts(self) -> int: ...
    def averaged(self, cands: list, history: dict[int, list[np.ndarray]]) -> list: ...
    def min_count(self, phase: str, floor: float) -> float: ...
    def select(self, cands: Sequence) -> Selection: ...
    def privacy_section(self) -> dict | None: ...
    def profile_noise(self) -> dict | None: ...


class ExactRelease:
    """Plaintext or secure aggregation without DP: every released sum is exact."""

    noisy = False
    clip_norm = 0.0  # records are never clipped

    def __init__(self, config: RunConfig) -> None:
        self.config = config

    def noise(self, request: SchemaRequest) -> NoisePlan | None:
        return None

    def prepare_center(self) -> np.ndarray | None:
        return None

    def scaler(self, total: PrepareStats, center: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        return scaler_from_stats(total)

    def coreset_shape(self, n: int, tables: int, bits: int) -> tuple[int, int]:
        return tables, bits

    def restarts(self) -> int:
        return self.config.restarts

    def averaged(self, cands: list, history: dict[int, list[np.ndarray]]) -> list:
        return cands  # exact rounds: the last centroids are the answer

    def min_count(self, phase: str, floor: float) -> float:
        return floor

    def select(self, cands: Sequence) -> Selection:
        """Best restart per k by inertia, then k by the configured criterion."""
        per_k: dict[int, tuple[object, Criteria]] = {}
        for c in cands:
            crit = criteria(c.stats, c.evaluated)
            # a tie within summation noise keeps the earlier restart, so the model does not
            # depend on how the customers are split across nodes
            if c.k not in per_k or crit.inertia < per_k[c.k][1].inertia * (1 - 1e-9):
                per_k[c.k] = (c, crit)
        table = [per_k[k][1] for k in sorted(per_k)]
        best = choose_k(table, self.config.selection)
        how = f"chosen by {self.config.selection}" if len(table) > 1 else "fixed (the only k run)"
        return Selection(per_k[best.k][0], table, f"k={best.k} {how}")

    def privacy_section(self) -> dict | None:
        return None

    def profile_noise(self) -> dict | None:
        return None


class NoisyRelease:
    """Differential privacy: nodes add Gaussian noise shares the planner sizes and the
    ledger books; everything the server derives afterwards is post-processing."""

    noisy = True

    def __init__(self, config: RunConfig, schema: FeatureSchema, warm_start: bool) -> None:
        self.planner = DPPlanner(config, schema, warm_start=warm_start)
        self.clip_norm = self.planner.clip_norm

    def noise(self, request: SchemaRequest) -> NoisePlan | None:
        return self.planner.plan(request)

    def prepare_center(self) -> np.ndarray | None:
        return self.planner.prepare_center()

    def scaler(self, total: PrepareStats, center: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        return self.planner.scaler(total, center)

    def coreset_shape(self, n: int, tables: int, bits: int) -> tuple[int, int]:
        """Few, large buckets: their noisy means stay close to the truth."""
        return self.planner.coreset_shape(n, bits)

    def restarts(self) -> int:
        return self.planner.candidates  # each candidate costs budget

    def averaged(self, cands: list, history: dict[int, list[np.ndarray]]) -> list:
        """Each candidate's centroids averaged over its last rounds (`DPPlanner.averaged`)."""
        return [dataclasses.replace(c, centroids=self.planner.averaged(history.get(i, []), c.centroids))
                for i, c in enumerate(cands)]

    def min_count(self, phase: str, floor: float) -> float:
        """Counts within 3σ of the count noise are noise."""
        return max(floor, 3.0 * self.planner.count_sigma.get(phase, 0.0))

    def select(self, cands: Sequence) -> Selection:
        """Only sums and counts are released: no criteria; the candidate comes from its
        last round's noisy sums and counts alone (post-processing, `DPPlanner.best`)."""
        best = self.planner.best(list(cands))
        return Selection(best, [], f"k={best.k} from the released sums")

    def privacy_section(self) -> dict | None:
        """The ledger, with the budgeted (ε, δ) stated as the guarantee: a run may stop
        early and spend less, but the budget is what it was allowed to spend, so only
        the budget is promised; the spent figures are informational."""
        section = self.planner.privacy_section()
        budget = section.get("budget", {})
        spent = {"epsilon": section.get("epsilon"), "rho": section.get("rho"),
                 "note": "informational: what the releases actually cost (less than the budget when the run "
                         "stopped early); the guarantee is the budgeted (epsilon, delta)"}
        return {**section, "epsilon": budget.get("epsilon"), "delta": budget.get("delta"),
                "guarantee": {"epsilon": budget.get("epsilon"), "delta": budget.get("delta"),
                              "statement": "(epsilon, delta)-differential privacy for every customer "
                                           "(add/remove one customer), over everything the run released"},
                "spent": spent}

    def profile_noise(self) -> dict | None:
        """Std of the total noise on each released profile field, from the planner's
        ledger: "counts" (per segment), "sums" and "sumsq" (per segment and numeric
        feature, original units: lists of k lists of p), "category_counts", "scores",
        "histograms" (per entry). The reports turn
        them into 95 % intervals; reading them costs no budget."""
        sigma = {r.what.split(".", 1)[1]: r.sigma for r in self.planner.ledger.history
                 if r.what.startswith("profile.")}
        if not sigma:
            return None
        p = len(self.planner.schema.numeric)
        out: dict = dict(sigma)
        for tag in ("sums", "sumsq"):
            per_entry = self.planner.entry_sigma.get(f"profile.{tag}")
            if per_entry is not None:
                out[tag] = np.asarray(per_entry, dtype=float).reshape(-1, p).tolist()
        return out
