"""Tests of common.dp.ledger: budget shares and the ledger against zCDP by hand."""

from __future__ import annotations

import json
import math

import pytest

from fedseg.common.dp.accounting import epsilon_cks, sigma_for
from fedseg.common.dp.ledger import BudgetPlan, PrivacyBudgetExceeded, PrivacyLedger

# ----------------------------------------------------------------------------- budget plan


def test_budget_plan_shares_by_hand():
    plan = BudgetPlan(
        epsilon=1.0,
        delta=1e-6,
        preprocessing_weight=1.0,
        initialization_weight=2.0,
        round_weight=0.5,
        max_rounds=8,
        profiling_weight=1.0,
    )
    total = (math.sqrt(1 + math.log(1e6)) - math.sqrt(math.log(1e6))) ** 2
    # weights: 1 + 2 + 0.5*8 + 1 = 8
    assert plan.total_rho == pytest.approx(total, rel=1e-12)
    assert plan.rho_for("preprocessing") == pytest.approx(total / 8, rel=1e-12)
    assert plan.rho_for("initialization") == pytest.approx(total * 2 / 8, rel=1e-12)
    assert plan.rho_for("lloyd") == pytest.approx(total * 0.5 / 8, rel=1e-12)
    assert plan.phase_rho("lloyd") == pytest.approx(total * 4 / 8, rel=1e-12)
    assert plan.rho_for("profiling") == pytest.approx(total / 8, rel=1e-12)
    assert plan.model_dump()["total_rho"] == pytest.approx(total, rel=1e-12)


def test_budget_plan_quantile_and_transition_shares_by_hand():
    plan = BudgetPlan(epsilon=2.0, delta=1e-6, preprocessing_weight=1.0, initialization_weight=2.0,
                      round_weight=0.5, max_rounds=10, profiling_weight=1.0,
                      quantiles_weight=1.0, transitions_weight=1.0)
    total = (math.sqrt(2 + math.log(1e6)) - math.sqrt(math.log(1e6))) ** 2
    # weights: 1 + 1 + 2 + 0.5*10 + 1 + 1 = 11
    assert plan.rho_for("quantiles") == pytest.approx(total / 11, rel=1e-12)
    assert plan.rho_for("transitions") == pytest.approx(total / 11, rel=1e-12)
    assert plan.rho_for("preprocessing") == pytest.approx(total / 11, rel=1e-12)
    assert sum(plan.phase_rho(p) for p in plan.phase_weights) == pytest.approx(total, rel=1e-12)
    # unused by default: no share taken from the other phases
    with pytest.raises(ValueError, match="no privacy budget"):
        BudgetPlan(epsilon=2.0, delta=1e-6).rho_for("quantiles")


def test_budget_plan_with_cks_gives_more_rho():
    bs = BudgetPlan(epsilon=2.0, delta=1e-7)
    cks = BudgetPlan(epsilon=2.0, delta=1e-7, conversion="cks")
    assert cks.total_rho > bs.total_rho
    assert epsilon_cks(rho=cks.total_rho, delta=1e-7) == pytest.approx(2.0, rel=1e-8)


def test_budget_plan_rejects_unknown_or_empty_phase():
    plan = BudgetPlan(epsilon=1.0, delta=1e-6, profiling_weight=0.0)
    with pytest.raises(ValueError, match="no privacy budget"):
        plan.rho_for("profiling")
    with pytest.raises(ValueError, match="unknown phase"):
        plan.rho_for("handshake")
    with pytest.raises(ValueError, match="weight > 0"):
        BudgetPlan(
            epsilon=1.0,
            delta=1e-6,
            preprocessing_weight=0,
            initialization_weight=0,
            round_weight=0,
            profiling_weight=0,
        )


# ----------------------------------------------------------------------------- ledger


def _spend_plan(ledger: PrivacyLedger, plan: BudgetPlan, sensitivity: float = 1.0) -> None:
    phases = ["preprocessing", "initialization", *["lloyd"] * plan.max_rounds, "profiling"]
    for i, phase in enumerate(phases):
        rho = plan.rho_for(phase)
        sigma = sigma_for(rho=rho, sensitivity=sensitivity)
        ledger.record(phase, "distributed-gaussian", rho, sigma, sensitivity, f"release {i}")


def test_ledger_accepts_the_whole_plan_then_refuses_more():
    plan = BudgetPlan(epsilon=1.0, delta=1e-6, max_rounds=7, initialization_weight=3.0)
    ledger = PrivacyLedger(plan)
    _spend_plan(ledger, plan)
    assert len(ledger.history) == 10
    assert ledger.total_rho == pytest.approx(plan.total_rho, rel=1e-12)
    assert ledger.epsilon() == pytest.approx(1.0, rel=1e-9)

    with pytest.raises(PrivacyBudgetExceeded, match="budget"):
        ledger.record("lloyd", "gaussian", 1e-6, 1000.0, 1.0, "one round too many")
    assert len(ledger.history) == 10  # nothing recorded


def test_ledger_refuses_single_over_budget_release():
    plan = BudgetPlan(epsilon=0.5, delta=1e-5)
    ledger = PrivacyLedger(plan)
    too_much = plan.total_rho * 1.01
    with pytest.raises(PrivacyBudgetExceeded):
        sigma = sigma_for(rho=too_much, sensitivity=1.0)
        ledger.record("preprocessing", "gaussian", too_much, sigma, 1.0, "sums")
    assert ledger.history == []
    assert ledger.total_rho == 0.0


def test_ledger_rejects_understated_gaussian_rho():
    ledger = PrivacyLedger(BudgetPlan(epsilon=5.0, delta=1e-6))
    # Delta=1, sigma=2 costs 0.125; claiming 0.1 must fail
    with pytest.raises(ValueError, match="understates"):
        ledger.record("lloyd", "gaussian", 0.1, 2.0, 1.0, "sums")
    with pytest.raises(ValueError, match="sigma"):
        ledger.record("lloyd", "gaussian", 0.125, 0.0, 1.0, "sums")
    assert ledger.history == []


def test_ledger_to_dict_is_the_artifact_privacy_section():
    plan = BudgetPlan(epsilon=2.0, delta=1e-6, max_rounds=3)
    ledger = PrivacyLedger(plan, mode="secure+dp")
    ledger.record("preprocessing", "distributed-gaussian", 0.02, 5.0, 1.0, "feature sums")
    sigma = math.sqrt(29 / 0.06)  # Delta = sqrt(29), rho = 0.03
    ledger.record("lloyd", "distributed-gaussian", 0.03, sigma, math.sqrt(29), "round 0")
    out = json.loads(json.dumps(ledger.to_dict()))
    assert out["mode"] == "secure+dp"
    assert out["delta"] == 1e-6
    assert out["rho"] == pytest.approx(0.05, rel=1e-12)
    assert out["epsilon"] == pytest.approx(0.05 + 2 * math.sqrt(0.05 * math.log(1e6)), rel=1e-12)
    assert out["budget"]["epsilon"] == 2.0
    assert out["neighbouring"] == "add/remove one customer"
    assert [r["what"] for r in out["releases"]] == ["feature sums", "round 0"]
    assert out["releases"][1]["sensitivity"] == pytest.approx(math.sqrt(29))
    assert set(out["releases"][0]) >= {"phase", "mechanism", "rho", "sigma", "sensitivity", "what"}
