"""Vertical federation (issue 15): parties holding different columns of the same
customers; in-process runs against scikit-learn on the joined shared-customer table,
what the server and the parties see, and bad input."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import make_blobs

from fedseg.common.schema import FeatureSchema, NumericFeature
from fedseg.server.orchestrator import RunError
from fedseg.simulations.vertical_split import shared_ids, vertical_split
from tests.vertical_helpers import cost_ratio, joined_table, run_vertical

X, _ = make_blobs(2000, 5, centers=5, cluster_std=2.2, random_state=7)
POOLED = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)])
POOLED.insert(0, "id", [f"cust-{i:05d}" for i in range(len(X))])
SCHEMA = FeatureSchema(id="id", numeric=tuple(NumericFeature(name=f"x{j}", lower=-40.0, upper=40.0) for j in range(5)))
TWO = {"crm": ["x0", "x1", "x2"], "shop": ["x3", "x4"]}
THREE = {"crm": ["x0", "x1"], "shop": ["x2", "x3"], "service": ["x4"]}


@pytest.mark.parametrize("parties,overlap,secure", [(TWO, 0.7, False), (THREE, 1.0, True)])
def test_cost_within_one_percent_of_sklearn_on_the_joined_table(parties, overlap, secure):
    frames = vertical_split(POOLED, "id", parties, overlap, seed=3)
    result, run, _ = run_vertical(frames, SCHEMA, parties, secure=secure)
    ids = shared_ids(frames, "id")
    assert result.n_shared == len(ids)
    if overlap < 1:
        assert len(ids) < min(len(f) for f in frames.values())  # every party holds others too
    J = POOLED.set_index("id").loc[ids].to_numpy()
    blocks = np.hstack([J[:, [int(c[1]) for c in cols]] for cols in parties.values()])
    rtol = 1e-6 if secure else 1e-9  # secure: sums on a fixed-point grid of 2^-24
    assert_allclose(result.scaler.mean, blocks.mean(0), rtol=rtol)  # each block standardised over shared rows
    assert_allclose(result.scaler.scale, blocks.std(0), rtol=rtol)
    assert cost_ratio(result, POOLED, frames, SCHEMA, parties, 5) <= 1.01
    assert int(result.sizes.sum()) == len(ids)
    assert (run.secure is not None) == secure


def _strings_and_numbers(value, out):
    """Every string, number and decoded array value of a JSON message."""
    if isinstance(value, dict):
        if set(value) == {"dtype", "shape", "data"}:
            out["numbers"].update(np.frombuffer(base64.b64decode(value["data"]),
                                                dtype=value["dtype"]).astype(float).tolist())
            return
        for v in value.values():
            _strings_and_numbers(v, out)
    elif isinstance(value, list):
        for v in value:
            _strings_and_numbers(v, out)
    elif isinstance(value, str):
        out["strings"].add(value)
    elif isinstance(value, (int, float)):
        out["numbers"].add(float(value))


def test_no_message_carries_raw_values_or_unshared_ids():
    frames = vertical_split(POOLED, "id", THREE, 0.7, seed=5)
    result, run, tr = run_vertical(frames, SCHEMA, THREE)
    shared = set(shared_ids(frames, "id"))
    raw = {name: set(f[cols].to_numpy().ravel().tolist()) for (name, f), cols in zip(frames.items(), THREE.values())}
    seen = {"server": [p for _, p in tr.received]}
    for nid, name in enumerate(THREE, start=1):
        seen[name] = [p for n, p in tr.requests if n == nid]
    assert all(seen.values())
    for who, payloads in seen.items():
        found = {"strings": set(), "numbers": set()}
        for p in payloads:
            _strings_and_numbers(json.loads(p), found)
        text = b"".join(payloads)
        assert not re.search(rb"cust-[0-9]{5}", text), who  # no id in the clear, shared or not
        for party, values in raw.items():
            if party != who:
                assert not found["numbers"] & values, (who, party)
        blobs = b"".join(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)) for s in found["strings"]
                         if len(s) >= 44 and set(s) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="))
        assert not re.search(rb"cust-[0-9]{5}", blobs), who  # nor inside a relayed blob
    assert len(shared) == result.n_shared


def test_the_server_sees_distances_shifted_by_a_secret_offset_per_customer():
    frames = vertical_split(POOLED, "id", TWO, 1.0, seed=1)
    result, run, tr = run_vertical(frames, SCHEMA, TWO)
    J = joined_table(POOLED, SCHEMA, TWO, shared_ids(frames, "id"))
    replies = [json.loads(p) for _, p in tr.received]
    lloyd = [r for r in replies if r["phase"] == "vertical_lloyd" and r["dist"]["shape"][0] > 0][-2:]  # last round
    summed = sum(np.frombuffer(base64.b64decode(r["dist"]["data"])).reshape(r["dist"]["shape"]) for r in lloyd)
    # the server's rows are in the parties' keyed order: match them to customers by the true distances
    true = ((J[:, None, :] - result.centroids[None]) ** 2).sum(axis=2)
    k = len(result.centroids)
    for c in range(summed.shape[1] // k):
        shift = summed[:, c * k:(c + 1) * k]
        # the released centroids' candidate: the gap from each row's nearest to its second
        # nearest centroid (offsets cancel in it) is the true one, customer by customer
        gaps = np.sort(shift - shift.min(axis=1, keepdims=True), axis=1)[:, 1]
        ref = np.sort(true - true.min(axis=1, keepdims=True), axis=1)[:, 1]
        if np.allclose(np.sort(gaps), np.sort(ref), atol=1e-6):
            break
    else:
        raise AssertionError("no candidate of the last round matches the released centroids")
    hidden = (shift.min(axis=1).sum() - true.min(axis=1).sum()) / len(J)
    assert 45.0 < hidden < 55.0  # each of 2 parties added r_i ~ U[0, 50) to the row: the server sees no distance


def test_id_columns_written_differently_stop_the_run():
    frames = vertical_split(POOLED, "id", TWO, 1.0, seed=2)
    padded = POOLED.assign(id=[f"{i:07d}" for i in range(len(POOLED))])
    plain = POOLED.assign(id=[str(i) for i in range(len(POOLED))])
    frames = {"crm": padded[["id", *TWO["crm"]]], "shop": plain[["id", *TWO["shop"]]]}
    with pytest.raises(RunError, match="written differently"):
        run_vertical(frames, SCHEMA, TWO)


def test_an_intersection_below_min_segment_size_stops_the_run(tmp_path):
    frames = {"crm": POOLED.iloc[:1010][["id", *TWO["crm"]]], "shop": POOLED.iloc[1000:][["id", *TWO["shop"]]]}
    with pytest.raises(RunError, match="fewer customers than min-segment-size"):
        run_vertical(frames, SCHEMA, TWO, min_segment_size=20)


def test_duplicated_ids_in_one_party_stop_the_run_with_its_name():
    frames = vertical_split(POOLED, "id", TWO, 1.0, seed=2)
    crm = frames["crm"]
    frames["crm"] = pd.concat([crm, crm.iloc[:3]], ignore_index=True)
    with pytest.raises(RunError, match=r"party crm .*bad-table.*\(x0, x1, x2\) are gone"):
        run_vertical(frames, SCHEMA, TWO)


class _LeavesMidRun:
    """A transport whose node 2 stops answering after the first Lloyd round."""

    def __init__(self, inner) -> None:
        self.inner, self.lloyd = inner, 0

    def send(self, requests):
        if any(getattr(r, "inner", r).phase == "vertical_lloyd" for r in requests.values()):
            self.lloyd += 1
            if self.lloyd == 3:
                self.inner.dead.add(2)
        return self.inner.send(requests)


@pytest.mark.parametrize("secure", [False, True])
def test_a_party_missing_mid_run_stops_it_and_nothing_is_written(tmp_path, secure):
    from fedseg.common.config import RunConfig
    from fedseg.common.vertical.spec import block_schemas
    from fedseg.server.vertical_run import VerticalRun, run_and_save
    from tests.vertical_helpers import party_transport

    frames = vertical_split(POOLED, "id", THREE, 1.0, seed=2)
    tr, _ = party_transport(frames)
    run = VerticalRun(RunConfig(k=5, seed=1, secure=secure), block_schemas(SCHEMA, THREE), _LeavesMidRun(tr),
                      list(tr.nodes))
    with pytest.raises(RunError, match=r"party shop \(node 2\) left the run.*\(x2, x3\) are gone"):
        run_and_save(run, tmp_path / "out", "test")
    assert not list(tmp_path.iterdir())
    assert run.transport.lloyd == 3  # it stopped at the round the party missed


def test_each_party_writes_back_the_labels_of_its_shared_customers(tmp_path):
    from fedseg.client.vertical_labels import write_vertical_labels
    from fedseg.common.vertical.phases import VProfileRequest

    frames = vertical_split(POOLED, "id", TWO, 0.7, seed=6)
    result, run, tr = run_vertical(frames, SCHEMA, TWO)
    from fedseg.common.wire import decode_request

    received = [(n, decode_request(p)) for n, p in tr.requests]
    ids = shared_ids(frames, "id")
    J = joined_table(POOLED, SCHEMA, TWO, ids)
    nearest = ((J[:, None, :] - result.centroids[None]) ** 2).sum(axis=2).argmin(axis=1)  # by hand, pooled
    for nid, name in enumerate(TWO, start=1):
        path = tmp_path / f"{name}.csv"
        profile = next(r for n, r in received if n == nid and isinstance(r, VProfileRequest))
        where = write_vertical_labels({"labels-path": str(path)}, profile, None, tr.nodes[nid], tr.states[nid])
        assert where and path.exists()
        got = pd.read_csv(path, dtype={"id": str}).set_index("id").loc[ids, "segment"].to_numpy()
        assert len(got) == len(ids) == len(pd.read_csv(path))  # only the shared customers, every one of them
        assert (got == nearest).mean() > 0.999  # each customer's segment: its nearest released centroid


def test_a_party_refuses_a_profile_that_isolates_a_customer():
    """A deviating server labels one customer alone: the party's block of that segment
    would be the customer's raw values, so the party answers with a code only."""
    from fedseg.client.handlers import handle
    from fedseg.common.messages import NodeFailure
    from fedseg.common.vertical.phases import VProfileRequest
    from fedseg.common.vertical.spec import block_schemas

    frames = vertical_split(POOLED, "id", TWO, 1.0, seed=8)
    result, run, tr = run_vertical(frames, SCHEMA, TWO)
    n = result.n_shared
    labels = np.zeros(n, dtype=np.int64)
    labels[17] = 1
    crm = block_schemas(SCHEMA, TWO)["crm"]
    req = VProfileRequest(schema=crm, start=0, width=5, n_shared=n, k=2, labels=labels, raw_start=0, raw_width=5)
    reply = handle(req, tr.nodes[1], tr.states[1], 1, tr.policies[1])
    assert isinstance(reply, NodeFailure) and reply.code == "bad-request"
    labels[17:20] = 1  # three customers: an aggregate the party answers for
    ok = handle(req.model_copy(update={"labels": labels}), tr.nodes[1], tr.states[1], 1, tr.policies[1])
    assert not isinstance(ok, NodeFailure)


def test_above_the_sample_size_starts_are_chosen_on_a_sample_then_refined_on_everyone(monkeypatch):
    """At scale the fine cells and the 16 starts run on a public sample of positions; the
    best start is refined on every shared customer: replies then hold n x k distances."""
    from fedseg.server import vertical_run

    monkeypatch.setattr(vertical_run, "SAMPLE", 600)
    frames = vertical_split(POOLED, "id", TWO, 1.0, seed=9)
    result, run, tr = run_vertical(frames, SCHEMA, TWO)
    shapes = [json.loads(p)["dist"]["shape"] for _, p in tr.received if b'"vertical_lloyd"' in p]
    assert max(s[0] for s in shapes) == 2000 and {s[1] for s in shapes if s[0] == 2000} == {5}  # full: n x k
    assert {s[0] for s in shapes} == {0, 600, 2000}  # sample rounds, full rounds, gap rounds
    assert cost_ratio(result, POOLED, frames, SCHEMA, TWO, 5) <= 1.01
