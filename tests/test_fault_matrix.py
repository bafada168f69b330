"""Faults injected into a real deployment on 127.0.0.1 (issue 13, "Must show").

One SuperLink (TLS, SuperNode authentication) and three SuperNodes, shared by every
case: two honest nodes and one whose ClientApp is a test-only wrapper (written into this
test's app copy, never shipped) that, when the run config's `test-fault` says so,
returns NaN / 1e300 / negative counts / wrong lengths in one phase, or hangs. Each case
ends in a model equal to its stated reference (an in-process run over the honest nodes'
tables) or in a clear failure naming its cause, with nothing half-written. Every
process is stopped by PID in the fixture's teardown.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from fedseg.common.artifact import load_artifact
from fedseg.common.config import RunConfig
from fedseg.common.schema import load_schema
from fedseg.common.synthetic import generate_customers, synthetic_schema, write_departments
from fedseg.server.orchestrator import Orchestrator
from fedseg.server.output import FAILED_MARKER
from fedseg.server.security import make_certificates, make_node_keys
from fedseg.simulations.local_deployment import (
    BIN, REPO, Processes, copy_app, fedseg, flwr, free_port, identity_node_configs, json_of, superlink_command,
    supernode_command, wait_for_port,
)
from fedseg.simulations.local_transport import LocalTransport
from fedseg.client.data import load_table
from fedseg.client.handlers import NodeData

NODES = ("good-a", "good-b", "evil-1", "evil-2", "evil-3")
BASE = "k=2 min-nodes=2 seed=5 max-rounds=3 min-segment-size=5"
RUN_TIMEOUT_S = 600  # a loaded 2-core machine: every message starts a ClientApp process
EXCHANGE_TIMEOUT_S = 120.0  # honest nodes answer well within it even with three runs on 2 loaded cores
# the plaintext runs: evil-1 fails the first exchange, evil-2 and evil-3 the first Lloyd round
# (the second leaves evil-3 honest, but evil-3's SuperNode is held up by the first run's
# hung ClientApp, so the second run times it out too whenever it asks while that hangs)
PLAIN_FAULTS = ["evil-1:nan@histogram;evil-2:1e300@lloyd;evil-3:hang@lloyd",
                "evil-1:wrong-length@histogram;evil-2:negative-counts@lloyd"]
CODES = [{"evil-1": "bad-reply-not-finite", "evil-2": "bad-reply-out-of-bounds", "evil-3": "timeout"},
         {"evil-1": "bad-reply-shape", "evil-2": "bad-reply-count"}]

FAULT_APP = '''"""Test-only ClientApp of the fault matrix (tests/test_fault_matrix.py): a node whose
node config names it in the run config's `test-fault` ("<name>:<fault>@<phase>;...")
tampers with its reply to that phase, or hangs. Never part of fedseg."""

import dataclasses
import time

import numpy as np

from fedseg.client import app as real
from fedseg.common.phases import registry
from flwr.clientapp import ClientApp

ORIGINAL = dict(registry._PHASES)


def first(r):
    return next(n for n in ("sums", "counts", "count") if hasattr(r, n))


TAMPER = {
    "nan": lambda r: {first(r): np.full(np.shape(getattr(r, first(r))), np.nan)},
    "wrong-length": lambda r: {first(r): np.asarray(getattr(r, first(r)))[:-1]},
    "1e300": lambda r: {"sums": np.asarray(r.sums) + 1e300},
    "negative-counts": lambda r: {"counts": -np.asarray(r.counts)} if hasattr(r, "counts") else {"count": -r.count},
    "too-many-counts": lambda r: {"counts": np.asarray(r.counts) + 10**6},
}


def tampered(phase, fault):
    def answer(request, data):
        if fault == "hang":
            time.sleep(600)  # past any exchange deadline; the teardown stops it
            return phase.answer(request, data)
        reply = phase.answer(request, data)
        return reply.model_copy(update=TAMPER[fault](reply))
    return dataclasses.replace(phase, answer=answer)


app = ClientApp()


@app.query("fedseg")
def _query(msg, context):
    registry._PHASES.update(ORIGINAL)
    for entry in filter(None, str(context.run_config.get("test-fault", "")).split(";")):
        name, spec = entry.split(":")
        if context.node_config.get("test-name") == name:
            fault, phase = spec.split("@")
            registry._PHASES[phase] = tampered(ORIGINAL[phase], fault)
    return real.app._registered_funcs["query.fedseg"](msg, context)
'''


def faulty_app(root: Path) -> Path:
    """The app copy with the test-only ClientApp and a `test-fault` run-config key."""
    app = copy_app(root)
    (app / "client" / "fault_injection.py").write_text(FAULT_APP)
    text = (app / "pyproject.toml").read_text()
    text = text.replace('clientapp = "fedseg.client.app:app"', 'clientapp = "fedseg.client.fault_injection:app"')
    text = text.replace("[tool.flwr.app.config]\n", '[tool.flwr.app.config]\ntest-fault = ""\n')
    (app / "pyproject.toml").write_text(text)
    return app


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    home = root / "flwr-home"
    home.mkdir()
    env = {**os.environ, "FLWR_HOME": str(home), "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1",
           "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(REPO)}
    procs = Processes(env, root)
    try:
        certs = make_certificates(root / "certs")
        keys = {name: make_node_keys(root / "keys", name) for name in NODES}
        paths = write_departments(generate_customers(1500, 5, 4), root / "data", synthetic_schema())
        csvs = sorted(p for p in paths if p.suffix == ".csv")
        schema_path = next(p for p in paths if p.suffix == ".toml")
        identities = identity_node_configs(root / "identities", list(NODES))
        port = free_port()
        superlink = procs.start("superlink", superlink_command(certs.ca_cert, certs.server_cert, certs.server_key, port))
        wait_for_port(port, superlink)
        assert fedseg(env, "connection", "--address", f"127.0.0.1:{port}", "--ca", str(certs.ca_cert)).returncode == 0
        assert fedseg(env, "register", "--keys", str(root / "keys")).returncode == 0
        labels = root / "labels" / "segments.csv"
        for name, csv in zip(NODES, csvs):
            extra = f' labels-path="{labels}"' if name == "good-a" else ""
            config = f'data-path="{csv}" test-name="{name}"{extra} {identities[name]}'
            procs.start(f"node-{name}", supernode_command(port, certs.ca_cert, keys[name].private_key, config))
        deadline = time.monotonic() + 120
        while not all("SuperNode ID:" in procs.log(f"node-{n}") for n in NODES):
            assert time.monotonic() < deadline, "nodes not connected"
            time.sleep(0.5)
        ids = {}  # SuperNode id -> name, from each node's log
        for name in NODES:
            ids[name] = int(re.search(r"SuperNode ID: (\d+)", procs.log(f"node-{name}")).group(1))
        yield dict(root=root, env=env, procs=procs, app=faulty_app(root), schema=schema_path,
                   tables=[pd.read_csv(p) for p in csvs], csvs=csvs, labels=labels, names={v: k for k, v in ids.items()})
    finally:
        procs.stop_all()


def submit(fed, name: str, extra: str = "") -> tuple[str, Path]:
    out = fed["root"] / "out" / name
    config = f'{BASE} schema="{fed["schema"]}" out-dir="{out}" {extra}'
    done = flwr(fed["env"], "run", str(fed["app"]), "fedseg", "--run-config", config, "--format", "json")
    run = json_of(done)
    assert done.returncode == 0 and run.get("success"), done.stdout + done.stderr
    return str(run["run-id"]), out


def finished(fed, run_id: str, out: Path) -> str:
    """Wait for the run's model or failure marker; returns the ServerApp's log."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not ((out / "model.json").exists() or (out / FAILED_MARKER).exists()):
        if time.monotonic() > deadline:
            log = flwr(fed["env"], "log", run_id, "fedseg", "--show").stdout
            listed = flwr(fed["env"], "ls", "fedseg", "--format", "json").stdout
            nodes = {n: fed["procs"].log(f"node-{n}")[-1500:] for n in NODES}
            pytest.fail(f"run {run_id}: nothing after {RUN_TIMEOUT_S}s\n{log[-3000:]}\n{listed[-3000:]}\n{nodes}")
        time.sleep(0.5)
    return flwr(fed["env"], "log", run_id, "fedseg", "--show").stdout


class ScheduledDrops(LocalTransport):
    """In process, a plaintext run's schedule: evil-1 silent from the first exchange,
    the nodes `at_lloyd` from the first Lloyd round."""

    def __init__(self, nodes, at_lloyd: set[int]):
        super().__init__(nodes)
        self.at_lloyd = at_lloyd

    def send(self, requests):
        phase = getattr(next(iter(requests.values())), "phase", "")
        if phase == "histogram":
            self.dead.add(3)
        if phase == "lloyd":
            self.dead |= self.at_lloyd
        return super().send(requests)


def reference(fed, at_lloyd: set[int]):
    """The stated reference of the plaintext fault runs: the same run in process with the
    evil nodes leaving on the same schedule."""
    config = RunConfig.parse({"k": 2, "min_nodes": 2, "seed": 5, "max_rounds": 3, "min_segment_size": 5})
    nodes = {i: NodeData(f"fault-matrix-{i}", lambda schema, p=p: load_table(p, schema))
             for i, p in enumerate(fed["csvs"], start=1)}  # read as the nodes read them
    tr = ScheduledDrops(nodes, at_lloyd)
    return Orchestrator(config, load_schema(fed["schema"]), tr, list(tr.nodes)).run()


def nothing_half_written(out: Path) -> None:
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], list(out.iterdir())


@pytest.mark.integration
@pytest.mark.timeout(1800)  # measured 15-16 min on a loaded 2-core machine (every message starts a ClientApp)
def test_fault_matrix(federation):
    fed = federation
    started = time.monotonic()
    (fed["root"] / "a-file").write_text("x")  # an output folder that cannot exist, even for root
    done = flwr(fed["env"], "run", str(fed["app"]), "fedseg", "--run-config",
                f'{BASE} out-dir="{fed["root"] / "a-file" / "out"}"', "--format", "json")
    unwritable_id = str(json_of(done)["run-id"])
    # secure first and alone: in a concurrent run a hung ClientApp dropped a node after the first release
    run_id, out = submit(fed, "secure", 'secure=true test-fault="evil-2:too-many-counts@lloyd"')
    log = finished(fed, run_id, out)
    assert not (out / "model.json").exists()
    assert "secure sum of phase lloyd: field 'counts' failed the count check" in (out / FAILED_MARKER).read_text()
    assert "[fedseg] failed:" in log and "phase lloyd" in log, log[-3000:]
    nothing_half_written(out)

    plain = [submit(fed, f"plain-{i}", f'test-fault="{spec}" exchange-timeout={EXCHANGE_TIMEOUT_S}')
             for i, spec in enumerate(PLAIN_FAULTS)]  # two runs at once, on the same nodes
    for (run_id, out), codes in zip(plain, CODES):
        log = finished(fed, run_id, out)
        model = load_artifact(out / "model.json")
        failed = {fed["names"][int(n)]: c for n, c in model.run.clients_failed.items()}
        assert {n: c for n, c in failed.items() if n != "evil-3"} == {n: c for n, c in codes.items() if n != "evil-3"}
        assert failed.get("evil-3") == codes.get("evil-3") or failed.get("evil-3") == "timeout", log[-3000:]
        ref = reference(fed, {NODES.index(n) + 1 for n in failed if n != "evil-1"})
        honest_rows = sum(len(t) for t in fed["tables"][:2]) + (0 if "evil-3" in failed else len(fed["tables"][4]))
        assert sum(s.size for s in model.segments) == honest_rows
        assert_allclose(model.centroid_array(), ref.chosen.centroids, atol=1e-8)
        nodes = model.run.phase_nodes  # the stated schedule: 4 nodes until Lloyd, then fewer
        assert nodes == ref.phase_nodes and nodes["histogram"] == [4], nodes
        nothing_half_written(out)
        labels = pd.read_csv(fed["labels"].with_name(f"segments.run-{run_id}.csv"))  # one file per run
        assert len(labels) == len(fed["tables"][0])

    log = flwr(fed["env"], "log", unwritable_id, "fedseg", "--show").stdout
    assert "is not writable" in log, log[-3000:]
    print(f"\nfault matrix: {time.monotonic() - started:.0f} s for 3 runs and one refused output folder")
