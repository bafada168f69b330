"""The run's budget plan and the history of its releases: thin state over `accounting`.

After opacus' ``RDPAccountant``: `BudgetPlan` splits a target (ε, δ) over the phases of
a run; `PrivacyLedger` keeps the releases and asks `accounting` for every total.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    computed_field,
    field_validator,
    model_validator,
)

from fedseg.common.dp.accounting import (
    Conversion,
    compose_rho,
    epsilon_from_rho,
    gaussian_rho,
    rho_from_epsilon,
)
from fedseg.common.dp.checks import check_delta, check_epsilon, check_positive, check_sigma

NEIGHBOURING = "add/remove one customer"

PHASES: tuple[str, ...] = ("quantiles", "preprocessing", "initialization", "lloyd", "profiling", "transitions")
"""Phases of a run that spend budget; ``"lloyd"`` is spent once per round. ``"quantiles"``
(federated histograms) and ``"transitions"`` (warm-start segment changes) only when the
run makes those releases (their weights default to 0)."""

GAUSSIAN_MECHANISMS = frozenset({"gaussian", "distributed-gaussian"})
"""Mechanism names whose ρ the ledger checks against Δ²/(2σ²)."""

_BUDGET_RTOL = 1e-9  # float slack when the planned releases add up to exactly the budget


class PrivacyBudgetExceeded(RuntimeError):
    """A release would spend more ρ than the run's privacy budget allows."""


class BudgetPlan(BaseModel):
    """How a run's (ε, δ) budget is split over its phases, as ρ per release.

    The total ρ is `rho_from_epsilon` of the target; each phase gets a share
    proportional to its weight, the Lloyd phase ``round_weight × max_rounds`` split
    evenly over its rounds. A run that stops early simply spends less.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    epsilon: float
    delta: float
    preprocessing_weight: float = Field(default=1.0, ge=0)
    initialization_weight: float = Field(default=1.0, ge=0)
    round_weight: float = Field(default=1.0, ge=0)
    max_rounds: int = Field(default=10, ge=0)
    profiling_weight: float = Field(default=1.0, ge=0)
    quantiles_weight: float = Field(default=0.0, ge=0)
    transitions_weight: float = Field(default=0.0, ge=0)
    conversion: Conversion = "bun-steinke"

    @field_validator("epsilon")
    @classmethod
    def _epsilon_positive(cls, v: float) -> float:
        return check_epsilon(v)

    @field_validator("delta")
    @classmethod
    def _delta_in_unit_interval(cls, v: float) -> float:
        return check_delta(v)

    _total_rho: float = PrivateAttr(default=0.0)

    @model_validator(mode="after")
    def _budget(self) -> BudgetPlan:
        if self.total_weight <= 0.0:
            raise ValueError("budget plan: at least one phase needs a weight > 0")
        self._total_rho = rho_from_epsilon(
            epsilon=self.epsilon, delta=self.delta, conversion=self.conversion
        )
        return self

    @property
    def phase_weights(self) -> dict[str, float]:
        """Weight of each whole phase (the Lloyd phase counts all its rounds)."""
        return {
            "quantiles": self.quantiles_weight,
            "preprocessing": self.preprocessing_weight,
            "initialization": self.initialization_weight,
            "lloyd": self.round_weight * self.max_rounds,
            "profiling": self.profiling_weight,
            "transitions": self.transitions_weight,
        }

    @property
    def total_weight(self) -> float:
        return math.fsum(self.phase_weights.values())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_rho(self) -> float:
        """ρ budget of the whole run."""
        return self._total_rho

    def phase_rho(self, phase: str) -> float:
        """ρ of a whole phase (all rounds for ``"lloyd"``)."""
        weights = self.phase_weights
        if phase not in weights:
            raise ValueError(f"unknown phase {phase!r}; expected one of {list(PHASES)}")
        return self.total_rho * weights[phase] / self.total_weight

    def rho_for(self, phase: str) -> float:
        """ρ of one release of ``phase`` (one round for ``"lloyd"``); > 0 or ValueError."""
        rho = self.phase_rho(phase)
        if phase == "lloyd" and self.max_rounds > 0:
            rho /= self.max_rounds
        if rho <= 0.0:
            raise ValueError(f"budget plan gives phase {phase!r} no privacy budget (weight 0)")
        return rho



class Release(BaseModel):
    """One noisy release recorded in the ledger (public: goes into the artifact)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    index: int = Field(ge=0)
    phase: str = Field(min_length=1)
    mechanism: str = Field(min_length=1)
    rho: float = Field(gt=0)
    sigma: float = Field(gt=0)
    sensitivity: float = Field(gt=0)
    what: str = ""


class PrivacyLedger:
    """History of the DP releases of one run, checked against a `BudgetPlan`.

    Holds state only; totals come from `accounting` (as opacus'
    ``RDPAccountant`` keeps a history and calls ``analysis.rdp``).
    """

    def __init__(self, plan: BudgetPlan, *, mode: str = "dp") -> None:
        if not isinstance(plan, BudgetPlan):
            raise TypeError("plan must be a BudgetPlan")
        if not mode:
            raise ValueError("mode must be a non-empty string")
        self.plan = plan
        self.mode = mode
        self.history: list[Release] = []

    @property
    def budget_rho(self) -> float:
        return self.plan.total_rho

    @property
    def total_rho(self) -> float:
        """ρ spent so far (Bun & Steinke 2016, Lemma 1.7)."""
        return compose_rho(rhos=(r.rho for r in self.history))

    @property
    def remaining_rho(self) -> float:
        return max(0.0, self.budget_rho - self.total_rho)

    def can_afford(self, rho: float) -> bool:
        return self.total_rho + rho <= self.budget_rho * (1.0 + _BUDGET_RTOL)

    def record(
        self,
        phase: str,
        mechanism: str,
        rho: float,
        sigma: float,
        sensitivity: float,
        what: str,
    ) -> Release:
        """Record a release before it is made; raise if it would break the budget.

        For ``gaussian``/``distributed-gaussian`` mechanisms (σ = std of the total noise
        on the released sum), ``rho`` must be at least Δ²/(2σ²).

        Raises:
            PrivacyBudgetExceeded: the release would take the total ρ over the budget;
                nothing is recorded.
            ValueError: invalid numbers, or ρ understated for a Gaussian mechanism.
        """
        rho = check_positive("rho", rho)
        sigma = check_sigma(sigma)
        sensitivity = check_positive("sensitivity", sensitivity)
        if mechanism in GAUSSIAN_MECHANISMS:
            needed = gaussian_rho(sensitivity=sensitivity, sigma=sigma)
            if rho < needed * (1.0 - _BUDGET_RTOL):
                raise ValueError(
                    f"rho {rho!r} understates the cost of a {mechanism} release with "
                    f"sensitivity {sensitivity!r} and sigma {sigma!r} (needs {needed!r})"
                )
        if not self.can_afford(rho):
            raise PrivacyBudgetExceeded(
                f"release {what!r} ({phase}) needs rho={rho:.6g} but only "
                f"{self.remaining_rho:.6g} of the budget rho={self.budget_rho:.6g} "
                f"(epsilon={self.plan.epsilon}, delta={self.plan.delta}) remains"
            )
        release = Release(
            index=len(self.history),
            phase=phase,
            mechanism=mechanism,
            rho=rho,
            sigma=sigma,
            sensitivity=sensitivity,
            what=what,
        )
        self.history.append(release)
        return release

    def epsilon(self, delta: float | None = None) -> float:
        """ε of the releases so far at ``delta`` (default: the plan's δ)."""
        return epsilon_from_rho(
            rho=self.total_rho,
            delta=self.plan.delta if delta is None else delta,
            conversion=self.plan.conversion,
        )

    def to_dict(self) -> dict[str, Any]:
        """The artifact's ``privacy`` section (JSON-ready)."""
        return {
            "mode": self.mode,
            "accounting": "zCDP",
            "neighbouring": NEIGHBOURING,
            "conversion": self.plan.conversion,
            "epsilon": self.epsilon(),
            "delta": self.plan.delta,
            "rho": self.total_rho,
            "budget": {
                "epsilon": self.plan.epsilon,
                "delta": self.plan.delta,
                "rho": self.budget_rho,
            },
            "releases": [r.model_dump() for r in self.history],
        }
