"""A deviating server probes nodes for values through errors: every probe now ends with a
fixed, value-free code (item 4 of issue 10), and a failed secure round cannot be retried.

Each test forges requests against real node code (`client.handlers.handle` through the
wire, real `NodeData` and `SecAggClient` state) and says what the attacker got before."""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pandas as pd

from fedseg.client.policy import NodePolicy
from fedseg.common.config import RunConfig
from fedseg.common.messages import NodeFailure
from fedseg.common.phases.bounds import transformed_bound
from fedseg.common.phases.prepare import PrepareRequest
from fedseg.common.schema import CategoricalFeature, FeatureSchema, NumericFeature
from fedseg.common.schema_pin import schema_fingerprint
from fedseg.common.secagg.fixed_point import max_abs_value
from fedseg.common.wire import encode
from fedseg.simulations.local_transport import LocalTransport
from tests.helpers import frame_nodes
from tests.policy_cohort import ROWS, SCHEMA, cohort, forged_round, prepare, rewrapped



def honest_scales(n_nodes: int) -> dict[str, float]:
    """By hand: the smallest power of two with 10^7 records at the bound inside the range."""
    limit = max_abs_value(frac_bits=24, max_nodes=n_nodes)
    t = transformed_bound(SCHEMA)  # 10 (no transform)
    pow2 = lambda bound: float(2.0 ** max(0, int(np.ceil(np.log2(1e7 * bound / limit)))))  # noqa: E731
    return {"count": 1.0, "sums": pow2(t), "sumsq": pow2(t * t), "category_counts": 1.0}


def test_tiny_scales_are_refused_without_a_value_and_the_round_cannot_be_retried():
    """Attack 4a. Before: the node answered `FixedPointOverflowError: value 7.18e+16 ...`,
    its row count times a known factor, and the server retried the round with honest
    scales to get a normal masked reply."""
    orch, tr, _ = cohort()
    honest = honest_scales(3)
    tiny = {tag: s * 2.0**-40 for tag, s in honest.items()}
    requests = forged_round(orch, prepare(), tiny, tags=["count", "sums", "sumsq"])
    tr.received.clear()
    replies = tr.send(requests)
    assert replies == {nid: NodeFailure(code="bad-request") for nid in requests}
    assert {payload for _, payload in tr.received} == {encode(NodeFailure(code="bad-request"))}
    # the retry: same round, honest scales; the node refuses the rest of this run
    replies = tr.send(rewrapped(requests, scales=honest))
    assert replies == {nid: NodeFailure(code="policy-refused") for nid in requests}


def test_honest_scales_are_accepted():
    orch, tr, _ = cohort()
    requests = forged_round(orch, prepare(), honest_scales(3), tags=["count", "sums", "sumsq"])
    replies = tr.send(requests)
    assert all(r.phase == "secure_masked" for r in replies.values())


def _frames(value: float = 167500.0) -> list[pd.DataFrame]:
    x = np.full(ROWS, value)
    return [pd.DataFrame({"id": [f"{i}-{r}" for r in range(ROWS)], "x0": x, "x1": np.ones(ROWS)})
            for i in range(3)]


EVIL = FeatureSchema(id="id", numeric=(NumericFeature(name="x1", lower=0.0, upper=10.0),),
                     categorical=(CategoricalFeature(name="x0", values=("a", "b")),))
BIG = FeatureSchema(id="id", numeric=(NumericFeature(name="x0", lower=0.0, upper=1e6),
                                      NumericFeature(name="x1", lower=0.0, upper=10.0)))


def test_schema_that_turns_a_numeric_column_categorical_is_refused_by_a_pinned_node():
    """Attack 4b. Before: the reply read `'167500.0' is not in the vocabulary ['a', 'b']
    at rows 1, 2, 3, 4, 5 (+416 more)`: a raw cell value and the node's row count."""
    nodes = frame_nodes(_frames())
    pin = NodePolicy(schema_sha256=schema_fingerprint(BIG))
    tr = LocalTransport(nodes, {1: pin})
    replies = tr.send({nid: PrepareRequest(schema=EVIL) for nid in nodes})
    assert replies[1] == NodeFailure(code="schema-mismatch")
    assert replies[2] == replies[3] == NodeFailure(code="bad-table")  # no pin: still no value
    for _, payload in tr.received:
        assert b"167500" not in payload and b"416" not in payload and b"421" not in payload
    ok = tr.send({1: PrepareRequest(schema=BIG)})
    assert ok[1].count == ROWS


def test_pinned_schema_file_and_fingerprint(tmp_path):
    """The fingerprint is sha256 of the schema's canonical JSON (sorted keys, no spaces)
    without the run-derived winsor limits and as-of date; a schema file pins the same."""
    canonical = json.dumps(BIG.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    assert schema_fingerprint(BIG) == hashlib.sha256(canonical.encode()).hexdigest()
    path = tmp_path / "schema.toml"
    path.write_text(BIG.to_toml())
    tr = LocalTransport(frame_nodes(_frames()), {1: NodePolicy(schema_path=path)})
    assert tr.send({1: PrepareRequest(schema=EVIL)})[1] == NodeFailure(code="schema-mismatch")
    assert tr.send({1: PrepareRequest(schema=BIG)})[1].count == ROWS


def test_dirty_cell_reaches_neither_the_model_nor_the_server_log(caplog):
    """Attack 4c. Before: `run.clients_failed` in model.json and the server's node-failed
    event read `node-2: column 'x0': 'secret-4711' is not a number at row 8`."""
    from fedseg.server.model import build_artifact
    from fedseg.server.orchestrator import Orchestrator

    frames = _frames(5.0)
    for f in frames:
        f["x0"] = np.random.default_rng(1).uniform(0, 10, ROWS)
    bad = frames[2].astype({"x0": object})
    bad.loc[7, "x0"] = "secret-4711"
    frames[2] = bad
    nodes = frame_nodes(frames)
    events = []
    config = RunConfig(k=2, restarts=1)
    schema = FeatureSchema(id="id", numeric=BIG.numeric)
    with caplog.at_level(logging.INFO):
        result = Orchestrator(config, schema, LocalTransport(nodes), list(nodes), events.append).run()
    assert result.failures == {3: "bad-table"}
    model = build_artifact(result, config, schema)
    assert model.run.clients_failed == {3: "bad-table"}
    assert "secret-4711" not in model.model_dump_json() and "row 8" not in model.model_dump_json()
    assert not any("secret-4711" in e.message for e in events)
    node_log = [r.getMessage() for r in caplog.records if r.name == "fedseg.client"]
    assert any("secret-4711" in m and "row 8" in m for m in node_log)  # the detail stays on the node
    server_log = [r.getMessage() for r in caplog.records if r.name != "fedseg.client"]
    assert not any("secret-4711" in m for m in server_log)


def test_fedseg_check_prints_the_fingerprint_a_node_pins(tmp_path):
    """The central team hands out the schema; each operator pins what `fedseg check` prints."""
    from typer.testing import CliRunner

    from fedseg.cli.main import cli

    (tmp_path / "schema.toml").write_text(BIG.to_toml())
    _frames(5.0)[0].to_csv(tmp_path / "t.csv", index=False)
    done = CliRunner().invoke(cli, ["check", "--schema", str(tmp_path / "schema.toml"), "--data", str(tmp_path / "t.csv")])
    assert done.exit_code == 0, done.output
    assert f"schema-sha256 = {schema_fingerprint(BIG)}" in done.output


def test_a_missing_pinned_schema_file_refuses_rather_than_unpins(tmp_path):
    tr = LocalTransport(frame_nodes(_frames()), {1: NodePolicy(schema_path=tmp_path / "gone.toml")})
    assert tr.send({1: PrepareRequest(schema=BIG)})[1] == NodeFailure(code="policy-refused")


def test_an_overflow_answers_a_code_only_and_ends_the_nodes_run(monkeypatch):
    """Should a value still pass the fixed-point range (data outside the public bounds),
    the node answers `overflow` without the value, and nothing more in that run."""
    import fedseg.client.handlers as handlers

    orch, tr, _ = cohort()
    requests = forged_round(orch, prepare(), honest_scales(3), tags=["count", "sums", "sumsq"])
    real = handlers.flatten
    monkeypatch.setattr(handlers, "flatten", lambda *a: {t: v * 7.18e16 for t, v in real(*a).items()})
    tr.received.clear()
    assert tr.send(requests) == {nid: NodeFailure(code="overflow") for nid in requests}
    assert all(b"7.18" not in payload and b"e+16" not in payload for _, payload in tr.received)
    monkeypatch.setattr(handlers, "flatten", real)
    assert tr.send(requests) == {nid: NodeFailure(code="policy-refused") for nid in requests}
