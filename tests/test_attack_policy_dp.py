"""A deviating server against a node's own DP policy (item 5 of issue 10): the node, not
the server, decides that its data leaves only noised, clipped and within its budget.

Requests are forged against real nodes (`client.handlers.handle` through the wire, real
`SecAggClient` state from the real set-up); each test says what the attacker got before."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fedseg.client.policy import NodePolicy
from fedseg.common.config import RunConfig
from fedseg.common.dp import noise as noise_module
from fedseg.common.messages import NodeFailure, Scaler
from fedseg.common.phases.lloyd import LloydRequest
from fedseg.common.secure_layout import reply_bounds, tag_scales
from fedseg.common.wire import SecureMaskedReply
from fedseg.server.orchestrator import Orchestrator, RunError
from fedseg.simulations.local_transport import LocalTransport
from tests.helpers import numeric_nodes
from tests.policy_cohort import ROWS, SCHEMA, cohort, forged_round, prepare
from tests.test_attack_policy_oracles import honest_scales

L = math.log(1e6)


def rho_of(epsilon: float) -> float:
    """Bun–Steinke by hand: the ρ whose (ε, δ=1e-6) conversion is ε."""
    return (math.sqrt(epsilon + L) - math.sqrt(L)) ** 2


def dp_policy(tmp_path, nid: int, **extra) -> NodePolicy:
    return NodePolicy(max_epsilon_run=1.0, privacy_ledger=tmp_path / f"ledger-{nid}.json", **extra)


def test_plaintext_request_is_refused_under_require_secure(tmp_path):
    """Before: a node with `require-secure=true` answered a plaintext prepare request with
    its exact count and sums."""
    orch, tr, _ = cohort()  # any nodes: the policy below is what matters
    tr.policies = {1: NodePolicy(require_secure=True), 2: dp_policy(tmp_path, 2)}
    replies = tr.send({1: prepare(), 2: prepare(), 3: prepare()})
    assert replies[1] == replies[2] == NodeFailure(code="policy-refused")
    assert replies[3].count == ROWS  # no policy: plaintext is the central team's choice


def test_request_without_noise_is_refused_under_a_dp_policy(tmp_path):
    """Attack 5a. Before: under `--epsilon 1` a server that sent `noise = {}` got the
    nodes' exact masked sums, unmasked to exact answers."""
    policies = {n: dp_policy(tmp_path, n) for n in (1, 2, 3)}
    orch, tr, _ = cohort(policies=policies, config=RunConfig(k=2, epsilon=1.0))
    tags = ["count", "sums", "sumsq"]
    replies = tr.send(forged_round(orch, prepare(), honest_scales(3), noise={}, tags=tags))
    assert replies == {n: NodeFailure(code="policy-refused") for n in (1, 2, 3)}


def test_a_released_field_without_noise_is_refused(tmp_path):
    """Before: noise on the count only left the sums exact."""
    policies = {n: dp_policy(tmp_path, n) for n in (1, 2, 3)}
    orch, tr, _ = cohort(policies=policies, config=RunConfig(k=2, epsilon=1.0))
    requests = forged_round(orch, prepare(), honest_scales(3), noise={"count": 5.0}, tags=["count", "sums"])
    assert tr.send(requests) == {n: NodeFailure(code="policy-refused") for n in (1, 2, 3)}


def test_lloyd_without_clipping_is_refused(tmp_path):
    """Before: `clip_norm = 0` let one far-out customer move a noisy sum by the box's norm."""
    policies = {n: dp_policy(tmp_path, n) for n in (1, 2, 3)}
    orch, tr, _ = cohort(policies=policies, config=RunConfig(k=2, epsilon=1.0))
    lloyd = LloydRequest(schema=SCHEMA, scaler=Scaler(mean=np.full(2, 5.0), scale=np.full(2, 3.0)),
                         centroids=np.array([[-1.0, -1.0], [1.0, 1.0]]), sizes=[2], clip_norm=0.0)
    scales = tag_scales(reply_bounds(lloyd), max_records=10**7, frac_bits=24, max_nodes=3)  # honest
    requests = forged_round(orch, lloyd, scales, noise={"sums": 50.0, "counts": 50.0}, tags=["sums", "counts"])
    assert tr.send(requests) == {n: NodeFailure(code="policy-refused") for n in (1, 2, 3)}


def _dp_run(policies, seed=3):
    X = np.random.default_rng(seed).uniform(0, 10, size=(3 * ROWS, 2))
    nodes = numeric_nodes(X, np.array_split(np.arange(len(X)), 3))
    tr = LocalTransport(nodes, policies)
    return Orchestrator(RunConfig(k=2, epsilon=1.0, max_rounds=3, seed=seed), SCHEMA, tr, list(nodes)).run()


def _spent(path) -> dict[str, float]:
    runs: dict[str, float] = {}
    for entry in json.loads(path.read_text())["entries"]:
        runs[entry["run"]] = runs.get(entry["run"], 0.0) + entry["rho"]
    return runs


def test_node_ledger_adds_up_across_runs_and_refuses_past_its_period_budget(tmp_path):
    """Before: a node answered every run the server started, whatever it had already
    released; now its own ledger file (kept across runs) books every release and the
    node refuses once its period budget would be exceeded."""
    policies = {n: dp_policy(tmp_path, n, max_epsilon_period=1.0) for n in (1, 2, 3)}
    first = _dp_run(policies)
    for n in (1, 2, 3):
        spent = _spent(tmp_path / f"ledger-{n}.json")
        assert len(spent) == 1
        assert list(spent.values())[0] == pytest.approx(first.privacy["rho"], rel=1e-9)  # what the server booked
        assert list(spent.values())[0] <= rho_of(1.0) * (1 + 1e-9)
    with pytest.raises(RunError, match="budget-exhausted"):
        _dp_run(policies, seed=4)
    for n in (1, 2, 3):
        spent = _spent(tmp_path / f"ledger-{n}.json")
        assert sum(spent.values()) <= rho_of(1.0) * (1 + 1e-9)  # the period's ρ, never more


def test_run_budget_of_the_node_caps_a_larger_server_budget(tmp_path):
    """Before: the server's ε was the only limit; a node allowing ε = 0.6 per run now
    leaves the run once the next release would pass ρ(0.6)."""
    policies = {n: NodePolicy(max_epsilon_run=0.6, privacy_ledger=tmp_path / f"l{n}.json") for n in (1, 2, 3)}
    with pytest.raises(RunError, match="budget-exhausted"):
        _dp_run(policies)
    for n in (1, 2, 3):
        spent = sum(_spent(tmp_path / f"l{n}.json").values())
        assert 0 < spent <= rho_of(0.6) * (1 + 1e-9)


def test_colluders_subtracting_their_shares_leave_the_full_sigma(tmp_path, monkeypatch):
    """Attack 5b. Before: shares of std σ/sqrt(t); with t = 7 survivors of 10 and c = 3
    colluders subtracting their own shares, the sum kept only (t − c)/t = 4/7 of σ²
    (at ε = 1 that is an effective ε of about 1.33). Now each share has std σ/sqrt(t − c)."""
    n, c = 10, 3
    t = max(2, n // 2 + 1, n - math.floor(0.34 * n))  # the Shamir threshold, by hand: 7
    policies = {i: dp_policy(tmp_path, i, max_colluders=c) for i in range(1, n + 1)}
    X = np.random.default_rng(5).uniform(0, 10, size=(n * 50, 2))
    nodes = numeric_nodes(X, np.array_split(np.arange(len(X)), n))
    tr = LocalTransport(nodes, policies)
    orch = Orchestrator(RunConfig(k=2, epsilon=1.0), SCHEMA, tr, list(nodes))
    orch.start_secure()
    assert orch.secure.server.threshold == t
    request = prepare()
    plan = orch.release.noise(request)
    sigma = {r["what"].split(".")[1]: r["sigma"] for r in orch.release.planner.ledger.to_dict()["releases"]}
    drawn: list[float] = []  # each share's std on the fixed-point grid (integer units)
    real = noise_module.sample_discrete_gaussian

    def spy(sigma, *, randbytes):
        drawn.append(float(np.min(sigma)))
        return real(sigma, randbytes=randbytes)

    monkeypatch.setattr(noise_module, "sample_discrete_gaussian", spy)
    scales = honest_scales(n)
    replies = tr.send(forged_round(orch, request, scales, noise=plan, tags=list(plan)))
    assert all(isinstance(r, SecureMaskedReply) for r in replies.values())
    count_shares = drawn[0::len(plan)]  # one draw per tag per node, count first
    assert len(count_shares) == n
    for share in count_shares:
        frac_bits = orch.secure.frac_bits
        remaining = (t - c) * (share * 2.0**-frac_bits * scales["count"]) ** 2  # t survivors, c remove their own
        assert remaining == pytest.approx(sigma["count"] ** 2, rel=1e-12)


def test_ledger_period_is_a_window_of_period_days(tmp_path):
    """Releases older than `period-days` leave the period budget; the run budget is per run id."""
    import datetime as dt

    from fedseg.client.guard import Refused
    from fedseg.client.node_ledger import charge

    policy = NodePolicy(max_epsilon_run=1.0, max_epsilon_period=1.0, period_days=30,
                        privacy_ledger=tmp_path / "ledger.json")
    day0 = dt.date(2026, 1, 1)
    charge(policy, "run-a", 0.9 * rho_of(1.0), "prepare", today=day0)
    with pytest.raises(Refused) as refused:
        charge(policy, "run-b", 0.2 * rho_of(1.0), "prepare", today=day0 + dt.timedelta(days=29))
    assert refused.value.code == "budget-exhausted"
    charge(policy, "run-b", 0.2 * rho_of(1.0), "prepare", today=day0 + dt.timedelta(days=30))
    assert _spent(tmp_path / "ledger.json") == pytest.approx({"run-a": 0.9 * rho_of(1.0), "run-b": 0.2 * rho_of(1.0)})
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.json"]  # no temporary file left behind


def test_a_dp_limit_needs_a_ledger_file():
    from fedseg.client.policy import PolicyError, policy_from_mapping

    with pytest.raises(PolicyError, match="privacy-ledger"):
        policy_from_mapping({"max-epsilon-run": 1.0}, "node config")
    policy = policy_from_mapping({"max-epsilon-run": 1.0, "privacy-ledger": "/var/lib/fedseg/l.json",
                                  "require-secure": True, "max-records": 5000}, "node config")
    assert policy.requires_dp and policy.max_records == 5000
