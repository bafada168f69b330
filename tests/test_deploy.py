"""End to end on Flower's Deployment Engine, on 127.0.0.1 only.

A SuperLink with TLS (a CA and server certificate from `server.security`) and SuperNode
authentication; four registered SuperNodes reading their own tables (SQLite, CSV,
Parquet, and one CSV with a bad value); `flwr run` of a copy of the app. The artifact must
match scikit-learn on the pooled data of the three good nodes, and the bad node must
drop out with a message naming its problem. Then: an unregistered node is refused, a
node with the wrong CA cannot connect, and `flwr` against a closed port says so.

Every process started here is stopped by PID (and its children found through /proc) in
the fixture's teardown, even when a test fails. The timings of the run are printed.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedseg.client.data import load_table
from fedseg.common.artifact import load_artifact
from fedseg.common.preprocessing import LocalTable, encode_table
from fedseg.server.security import make_certificates, make_node_keys
from tests.helpers import pooled_scaler_reference
from fedseg.simulations.local_deployment import (
    BIN, REPO, Processes, copy_app, fedseg, flwr, free_port, identity_node_configs, json_of, superlink_command, supernode_command, wait_for_port,
)
from fedseg.common.synthetic import generate_customers, synthetic_schema, write_departments

CUSTOMERS = 3000
K = 3
FAB_VERSION = "0.2.0+fab-deploy-test"  # the app copy's fedseg.__version__: no installed copy has it
RUN_TIMEOUT_S = 900  # generous: a loaded 2-core machine has needed over 300 s



def write_sources(root: Path) -> tuple[dict[str, str], LocalTable, Path]:
    """Three good node tables (SQLite, CSV, Parquet), one bad CSV; the pooled good rows."""
    schema = synthetic_schema()
    frame = generate_customers(CUSTOMERS, 3, 11)
    paths = write_departments(frame, root / "data", schema)
    csvs = sorted(p for p in paths if p.suffix == ".csv")
    schema_path = next(p for p in paths if p.suffix == ".toml")
    tables = [pd.read_csv(p) for p in csvs]
    sqlite_path = root / "data" / "crm.db"
    with sqlite3.connect(sqlite_path) as con:
        tables[0].assign(email="someone@example.com").to_sql("customers", con, index=False)
    parquet_path = root / "data" / "unit-3.parquet"
    tables[2].to_parquet(parquet_path, index=False)
    bad = tables[1].head(200).copy()
    bad["customer_id"] = "B" + bad["customer_id"].astype(str)
    bad["age"] = bad["age"].astype(object)
    bad.loc[bad.index[7], "age"] = "forty"
    bad_path = root / "data" / "bad.csv"
    bad.to_csv(bad_path, index=False)
    configs = {
        "sqlite": f'db-url="sqlite:///{sqlite_path}" db-table="customers"',
        "csv": f'data-path="{csvs[1]}" labels-path="{root / "data" / "unit-2-segments.csv"}"',
        "parquet": f'data-path="{parquet_path}"',
        "bad": f'data-path="{bad_path}"',
    }
    pooled = [load_table(csvs[0], schema), load_table(csvs[1], schema), load_table(parquet_path, schema)]
    table = LocalTable(
        ids=np.concatenate([t.ids for t in pooled]),
        numeric=np.vstack([t.numeric for t in pooled]),
        codes=np.vstack([t.codes for t in pooled]),
    )
    return configs, table, schema_path


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    t0 = time.monotonic()
    root = tmp_path_factory.mktemp("deploy")
    home = root / "flwr-home"
    home.mkdir()
    env = {
        **os.environ,
        "FLWR_HOME": str(home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.1",  # the node starts its ClientApp sooner (default 1 s)
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
    }
    procs = Processes(env, root)
    try:
        certs = make_certificates(root / "certs")
        keys = {name: make_node_keys(root / "keys", name) for name in ("sqlite", "csv", "parquet", "bad")}
        make_node_keys(root / "rogue-keys", "rogue")
        configs, pooled, schema_path = write_sources(root)
        identities = identity_node_configs(root / "identities", list(configs))  # every node has one
        configs = {name: f'{config} {identities[name]} table-cache-dir="{root / "table-cache" / name}"'
                   for name, config in configs.items()}
        app = copy_app(root, version=FAB_VERSION)

        port = free_port()
        link = [*superlink_command(certs.ca_cert, certs.server_cert, certs.server_key, port),
                "--database", str(root / "superlink.db")]  # DEPLOY.md section 3: state survives a restart
        superlink = procs.start("superlink", link)
        wait_for_port(port, superlink)
        done = fedseg(env, "connection", "--address", f"127.0.0.1:{port}", "--ca", str(certs.ca_cert))
        assert done.returncode == 0, done.stdout + done.stderr
        done = fedseg(env, "register", "--keys", str(root / "keys"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.count("node id") == 4, done.stdout
        t_registered = time.monotonic()

        for name, config in configs.items():
            procs.start(f"node-{name}", supernode_command(port, certs.ca_cert, keys[name].private_key, config))
        deadline = time.monotonic() + 120
        while not all("SuperNode ID:" in procs.log(f"node-{name}") for name in configs):
            dead = [n for n, p in procs.procs.items() if p.poll() is not None]
            assert not dead and time.monotonic() < deadline, f"nodes not connected; exited: {dead}"
            time.sleep(0.5)  # read logs, not `flwr` (each call costs a second of CPU)
        nodes = json_of(flwr(env, "supernode", "ls", "fedseg", "--format", "json")).get("nodes", [])
        assert sum(n.get("status") == "online" for n in nodes) == 4, nodes
        t_online = time.monotonic()

        out_dir = root / "out"
        run_config = (f'k={K} min-nodes=3 seed=7 schema="{schema_path}" out-dir="{out_dir}"')
        t_submit = time.monotonic()
        submitted = flwr(env, "run", str(app), "fedseg", "--run-config", run_config, "--format", "json")
        run = json_of(submitted)
        assert submitted.returncode == 0 and run.get("success"), submitted.stdout + submitted.stderr
        run_id = run["run-id"]
        status, checked = "", time.monotonic()
        deadline = checked + RUN_TIMEOUT_S
        while not (out_dir / "model.json").exists() or not (out_dir / "report.md").exists():
            if time.monotonic() - checked > 20:  # a failed run writes nothing: ask now and then
                checked = time.monotonic()
                listed = json_of(flwr(env, "ls", "fedseg", "--run-id", str(run_id), "--format", "json"))
                status = str((listed.get("runs") or [{}])[0].get("status", ""))
                if status.startswith("finished") and not (out_dir / "model.json").exists():
                    logs = flwr(env, "log", str(run_id), "fedseg", "--show").stdout
                    pytest.fail(f"run {run_id} ended as {status} without a model:\n{logs[-4000:]}")
            assert time.monotonic() < deadline, f"run {run_id} not done after {RUN_TIMEOUT_S}s ({status})"
            time.sleep(0.5)
        t_done = time.monotonic()
        timings = {
            "setup (certs, keys, data, SuperLink, register 4 keys)": t_registered - t0,
            "nodes online": t_online - t_registered,
            "flwr run → model.json": t_done - t_submit,
            "total": t_done - t0,
        }
        yield dict(root=root, env=env, procs=procs, port=port, certs=certs, out=out_dir, configs=configs,
                   pooled=pooled, schema_path=schema_path, run_id=run_id, timings=timings, link=link)
    finally:
        procs.stop_all()


@pytest.mark.integration
def test_deployed_run_matches_pooled_sklearn(deployment):
    from sklearn.cluster import KMeans

    model = load_artifact(deployment["out"] / "model.json")
    schema = model.run.feature_schema
    pooled = deployment["pooled"]
    assert model.k == K and model.run.clients == 3
    assert sum(s.size for s in model.segments) == pooled.n_rows
    assert model.run.fedseg_version == FAB_VERSION  # the ServerApp ran the FAB's code

    raw = encode_table(pooled, schema, np.zeros(len(model.features)), np.ones(len(model.features)))
    ref_mean, ref_scale, tol = pooled_scaler_reference(raw, schema)  # income, monetary: median/IQR
    mean, scale = model.scaler_arrays()
    assert np.all(np.abs(mean - ref_mean) <= tol + 1e-9 * np.abs(ref_mean)), (mean, ref_mean)
    assert np.all(np.abs(scale - ref_scale) <= tol + 1e-9 * np.abs(ref_scale)), (scale, ref_scale)

    X = encode_table(pooled, schema, mean, scale)
    centroids = model.centroid_array()
    cost = float(((X[:, None, :] - centroids[None]) ** 2).sum(axis=2).min(axis=1).sum())
    reference = KMeans(n_clusters=K, n_init=10, random_state=0).fit(X).inertia_
    ratio = cost / reference
    timings = {**deployment["timings"], **{f"artifact {k}": v for k, v in model.run.timings.items()}}
    print(f"\ndeployment: cost ratio {ratio:.5f}; {model.run.rounds} rounds "
          f"({model.run.lloyd_rounds} Lloyd); " + "; ".join(f"{k} {v:.1f}s" for k, v in timings.items())
          + f"; per round {model.run.timings['total'] / model.run.rounds:.1f}s")
    assert ratio <= 1.01, ratio
    report = (deployment["out"] / "report.md").read_text()
    assert "segment" in report.lower()


@pytest.mark.integration
def test_nodes_used_their_table_store_and_dropped_it_at_run_end(deployment):
    """Each good node kept its table for the run (a fingerprint and arrays were written,
    0700) and the run-end message removed the arrays; the bad node kept none."""
    caches = {n: deployment["root"] / "table-cache" / n for n in ("sqlite", "csv", "parquet")}
    deadline = time.monotonic() + 30  # run-end goes out after model.json is written
    while any(any(c.rglob("*.npy")) for c in caches.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    for name, cache in caches.items():
        assert oct(cache.stat().st_mode & 0o777) == oct(0o700), name
        assert list(cache.rglob("fingerprint.json")), name  # the store was used in the run
        assert not list(cache.rglob("*.npy")), name  # and emptied at its end
    assert not list((deployment["root"] / "table-cache" / "bad").rglob("*.npy"))


@pytest.mark.integration
def test_node_writes_its_labels_after_the_run(deployment):
    """The CSV node was configured with labels-path: nearest centroid of the final model."""
    model = load_artifact(deployment["out"] / "model.json")
    schema = model.run.feature_schema
    csv_path = Path(str(deployment["configs"]["csv"]).split('"')[1])
    labels_path = deployment["root"] / "data" / f"unit-2-segments.run-{deployment['run_id']}.csv"  # run id: issue 13
    deadline = time.monotonic() + 30  # written by the node right after its profile reply
    while not labels_path.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    table = load_table(csv_path, schema)
    mean, scale = model.scaler_arrays()
    X = encode_table(table, schema, mean, scale)
    expected = ((X[:, None, :] - model.centroid_array()[None]) ** 2).sum(axis=2).argmin(axis=1)
    written = pd.read_csv(labels_path, dtype={schema.id: str})
    assert written[schema.id].tolist() == [str(i) for i in table.ids]
    assert written["segment"].tolist() == expected.tolist()


@pytest.mark.integration
def test_bad_data_node_drops_out_with_clear_error(deployment):
    """The central team sees the node's code only (issue 10); the reason, with file,
    column and row, is in the node's own log, for its operator."""
    model = load_artifact(deployment["out"] / "model.json")
    assert list(model.run.clients_failed.values()) == ["bad-table"], model.run.clients_failed
    for artifact in ("model.json", "report.md"):
        assert "forty" not in (deployment["out"] / artifact).read_text()
    node_log = deployment["procs"].log("node-bad")
    assert "bad.csv" in node_log and "'age'" in node_log and "'forty' is not a number" in node_log
    assert "row 8" in node_log


@pytest.mark.integration
def test_unregistered_node_is_refused(deployment):
    root, procs, port = deployment["root"], deployment["procs"], deployment["port"]
    proc = procs.start("rogue", supernode_command(port, deployment["certs"].ca_cert, root / "rogue-keys" / "rogue",
                                            'data-path="/nonexistent.csv"', "--max-retries", "1"))
    try:
        proc.wait(timeout=60)
        assert proc.returncode != 0
        log = procs.log("rogue")
        print("\nunregistered node:", " ".join(line.strip() for line in log.splitlines() if "ERROR" in line or "code" in line))
        assert "Failed to activate SuperNode" in log
    finally:
        procs.stop("rogue")
    nodes = json_of(flwr(deployment["env"], "supernode", "ls", "fedseg", "--format", "json"))["nodes"]
    assert len(nodes) == 4  # the rogue key is not among them


@pytest.mark.integration
def test_wrong_ca_and_closed_port_are_refused(deployment):
    root, procs, port, env = deployment["root"], deployment["procs"], deployment["port"], deployment["env"]
    other = make_certificates(root / "other-ca")
    link = ["check-link", "--superlink", f"127.0.0.1:{port}", "--key", str(root / "keys" / "csv"), "--ca"]
    done = fedseg(env, *link, str(deployment["certs"].ca_cert))
    assert done.returncode == 0 and "certificate verified" in done.stdout, done.stdout + done.stderr
    done = fedseg(env, *link, str(other.ca_cert))
    print("\nfedseg check-link with the wrong CA:", " ".join(done.stdout.split()))
    assert done.returncode == 2 and "not signed by" in done.stdout, done.stdout
    proc = procs.start("wrong-ca", supernode_command(port, other.ca_cert, root / "keys" / "csv", 'data-path="/nonexistent.csv"',
                                               "--max-retries", "1", "--max-wait-time", "20"))
    try:
        proc.wait(timeout=90)
        assert proc.returncode != 0
        log = procs.log("wrong-ca")
        print("\nnode with the wrong CA:", " ".join(l.strip() for l in log.splitlines() if "ERROR" in l or "CERT" in l.upper())[:600])
        assert "CERTIFICATE_VERIFY_FAILED" in log or "certificate verify failed" in log.lower(), log[-2000:]
    finally:
        procs.stop("wrong-ca")

    assert fedseg(env, "connection", "--name", "wrong-ca", "--address", f"127.0.0.1:{port}",
                  "--ca", str(other.ca_cert)).returncode == 0
    listed = flwr(env, "supernode", "ls", "wrong-ca")
    assert listed.returncode != 0
    print("\nflwr with the wrong CA:", " ".join((listed.stdout + listed.stderr).split()))
    assert "connection to the superlink" in " ".join((listed.stdout + listed.stderr).lower().split())

    closed = free_port()
    assert fedseg(env, "connection", "--name", "closed", "--address", f"127.0.0.1:{closed}",
                  "--ca", str(deployment["certs"].ca_cert)).returncode == 0
    listed = flwr(env, "supernode", "ls", "closed")
    assert listed.returncode != 0
    text = " ".join((listed.stdout + listed.stderr).split())
    print("flwr with nothing listening:", text)
    assert "connection to the superlink" in text.lower(), text[-2000:]
    done = fedseg(env, "register", "--keys", str(root / "rogue-keys" / "rogue.pub"), "--superlink", "closed")
    print("fedseg register with nothing listening:", " ".join(done.stdout.split()))
    assert done.returncode == 2 and "registration failed" in done.stdout


@pytest.mark.integration
def test_secure_deployed_run_equals_the_plaintext_run(deployment):
    """Secure aggregation over real SuperNodes, each message a fresh ClientApp process:
    every node signs its keys with the identity from its node config and checks its
    peers' against its pinned roster (issue 10); the bad-data node drops out before
    anything is released; the model equals the plaintext run's to fixed-point precision."""
    root, env = deployment["root"], deployment["env"]
    out_dir = root / "out-secure"
    run_config = (f'k={K} min-nodes=3 seed=7 secure=true schema="{deployment["schema_path"]}" '
                  f'out-dir="{out_dir}"')
    submitted = flwr(env, "run", str(root / "app"), "fedseg", "--run-config", run_config, "--format", "json")
    assert submitted.returncode == 0 and json_of(submitted).get("success"), submitted.stdout + submitted.stderr
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not (out_dir / "report.md").exists():
        assert time.monotonic() < deadline, "secure run did not finish"
        time.sleep(0.5)
    secure, plain = load_artifact(out_dir / "model.json"), load_artifact(deployment["out"] / "model.json")
    assert secure.privacy["mode"] != plain.privacy["mode"]
    assert list(secure.run.clients_failed.values()) == ["bad-table"] and secure.run.clients == 3
    assert [s.size for s in secure.segments] == [s.size for s in plain.segments]
    np.testing.assert_allclose(secure.centroid_array(), plain.centroid_array(), atol=1e-5)
    print(f"\nsecure deployment: {secure.run.rounds} exchanges, {secure.run.timings['total']:.1f}s "
          f"(plaintext {plain.run.rounds}, {plain.run.timings['total']:.1f}s)")


@pytest.mark.integration
def test_node_killed_mid_run_does_not_stop_the_run(deployment):
    """A second run with a fifth node, SIGKILLed by PID after it answered twice."""
    import re

    from fedseg.cli.deploy import register_key

    root, procs, port, env = deployment["root"], deployment["procs"], deployment["port"], deployment["env"]
    keys = make_node_keys(root / "victim-keys", "victim")
    register_key(keys.public_key, "victim", env=env)
    victim = procs.start("node-victim", supernode_command(port, deployment["certs"].ca_cert, keys.private_key,
                                                  f'data-path="{root / "data" / "dept-1.csv"}"'))
    deadline = time.monotonic() + 120
    while "SuperNode ID:" not in procs.log("node-victim"):
        assert victim.poll() is None and time.monotonic() < deadline, procs.log("node-victim")[-2000:]
        time.sleep(0.5)
    victim_id = re.search(r"SuperNode ID: (\d+)", procs.log("node-victim")).group(1)
    out_dir = root / "out-kill"
    run_config = f'k={K} min-nodes=3 seed=7 schema="{deployment["schema_path"]}" out-dir="{out_dir}"'
    submitted = flwr(env, "run", str(root / "app"), "fedseg", "--run-config", run_config, "--format", "json")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while procs.log("node-victim").count("Start `flwr-clientapp") < 2:  # prepare and one init exchange
        assert time.monotonic() < deadline
        time.sleep(0.5)
    t_kill = time.monotonic()
    procs.stop("node-victim", sig=signal.SIGKILL)
    while not (out_dir / "report.md").exists():
        assert time.monotonic() < deadline, "run did not finish after a node was killed"
        time.sleep(0.5)
    model = load_artifact(out_dir / "model.json")
    print(f"\nnode killed mid-run: run finished {time.monotonic() - t_kill:.1f}s after the kill; "
          f"{model.run.rounds} rounds; left out: {model.run.clients_failed}")
    assert model.run.clients == 3
    assert int(victim_id) in model.run.clients_failed


@pytest.mark.integration
def test_superlink_killed_and_restarted_with_its_database(deployment):
    """DEPLOY.md's restart claim (issue 13): the SuperLink SIGKILLed and started again on
    the same `--database`; the SuperNodes keep running (no 401 crash: their registrations
    survived) and reconnect, and the same run config gives the model of the first run
    (its stated reference), with the same node left out for its data."""
    root, procs, env, port = deployment["root"], deployment["procs"], deployment["env"], deployment["port"]
    nodes = [f"node-{name}" for name in deployment["configs"]]
    procs.stop("superlink", sig=signal.SIGKILL)
    t_restart = time.monotonic()
    superlink = procs.start("superlink", deployment["link"])
    wait_for_port(port, superlink)
    out_dir = root / "out-restart"
    run_config = f'k={K} min-nodes=3 seed=7 schema="{deployment["schema_path"]}" out-dir="{out_dir}"'
    deadline = time.monotonic() + RUN_TIMEOUT_S
    ours = {int(re.search(r"SuperNode ID: (\d+)", procs.log(n)).group(1)) for n in nodes}
    while True:  # our nodes back online (read through the restarted SuperLink's own state)
        listed = json_of(flwr(env, "supernode", "ls", "fedseg", "--format", "json")).get("nodes", [])
        if ours <= {int(n.get("node-id", n.get("node_id", -1))) for n in listed if n.get("status") == "online"}:
            break
        assert time.monotonic() < deadline, listed
        time.sleep(2)
    t_online = time.monotonic()
    submitted = flwr(env, "run", str(root / "app"), "fedseg", "--run-config", run_config, "--format", "json")
    assert submitted.returncode == 0 and json_of(submitted).get("success"), submitted.stdout + submitted.stderr
    while not (out_dir / "report.md").exists():
        assert time.monotonic() < deadline, "run after the restart did not finish"
        time.sleep(0.5)
    assert all(procs.procs[n].poll() is None for n in nodes), {n: procs.log(n)[-1500:] for n in nodes}
    again, first = load_artifact(out_dir / "model.json"), load_artifact(deployment["out"] / "model.json")
    failed = {int(n): code for n, code in again.run.clients_failed.items()}
    assert sorted(code for n, code in failed.items() if n in ours) == ["bad-table"] and again.run.clients == 3
    assert not set(failed) - ours - {int(n) for n in first.run.clients_failed} - _killed(procs)  # only the victim
    assert [s.size for s in again.segments] == [s.size for s in first.segments]
    np.testing.assert_allclose(again.centroid_array(), first.centroid_array(), atol=1e-9)
    print(f"\nSuperLink restarted: nodes online after {t_online - t_restart:.1f}s, "
          f"model after {time.monotonic() - t_online:.1f}s more, equal to the first run's")


def _killed(procs) -> set[int]:
    """The SuperNode id of the node the node-killed test SIGKILLed (if it ran)."""
    try:
        found = re.search(r"SuperNode ID: (\d+)", procs.log("node-victim"))
    except OSError:
        return set()
    return {int(found.group(1))} if found else set()


# ---- security material and deployment commands, without Flower processes ---------------


def test_certificates_chain_sans_and_permissions(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    files = make_certificates(tmp_path / "certs", hosts=["127.0.0.1", "localhost", "link.example"])
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "link.example"]
    for key in (files.ca_key, files.server_key):
        assert key.stat().st_mode & 0o777 == 0o600
    for public in (files.ca_cert, files.server_cert):
        assert public.stat().st_mode & 0o777 == 0o644
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    with pytest.raises(ValueError, match="refusing to overwrite"):
        make_certificates(tmp_path / "certs")
    make_certificates(tmp_path / "certs", overwrite=True)


def test_node_keys_load_as_flower_expects(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key
    from flwr.cli.supernode.register import try_load_public_key
    from flwr.supercore.primitives.asymmetric import public_key_to_bytes

    files = make_node_keys(tmp_path, "retail-north")
    assert files.private_key.stat().st_mode & 0o777 == 0o600
    private = load_ssh_private_key(files.private_key.read_bytes(), None)  # as flower-supernode does
    assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
    assert try_load_public_key(files.public_key) == public_key_to_bytes(private.public_key())  # as flwr does
    with pytest.raises(ValueError, match="refusing to overwrite"):
        make_node_keys(tmp_path, "retail-north")
    with pytest.raises(ValueError, match="node name"):
        make_node_keys(tmp_path, "../escape")


def test_cli_connection_check_and_label_node(tmp_path, monkeypatch):
    import tomllib

    from typer.testing import CliRunner

    from fedseg.cli.main import cli

    monkeypatch.setenv("FLWR_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    certs = make_certificates(tmp_path / "certs")
    done = runner.invoke(cli, ["connection", "--address", "127.0.0.1:9093", "--ca", str(certs.ca_cert)])
    assert done.exit_code == 0, done.output
    config = tomllib.loads((tmp_path / "home" / "config.toml").read_text())
    assert config["superlink"]["fedseg"] == {"address": "127.0.0.1:9093", "root-certificates": str(certs.ca_cert)}
    assert config["superlink"]["default"] == "fedseg"
    assert runner.invoke(cli, ["connection", "--address", "127.0.0.1:9093"]).exit_code == 2

    schema = synthetic_schema()
    frame = generate_customers(300, 1, 3)
    paths = write_departments(frame, tmp_path / "data", schema)
    csv = next(p for p in paths if p.suffix == ".csv")
    schema_path = next(p for p in paths if p.suffix == ".toml")
    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as con:
        pd.read_csv(csv).to_sql("customers", con, index=False)
    node_config = f'db-url="{db}" db-table="customers"'
    done = runner.invoke(cli, ["check-node", "--schema", str(schema_path), "--node-config", node_config])
    assert done.exit_code == 0 and "300 rows match" in done.output, done.output
    done = runner.invoke(cli, ["check-node", "--schema", str(schema_path), "--node-config", f'db-url="{db}" db-table="nope"'])
    assert done.exit_code == 2 and "no such table" in done.output, done.output

    from fedseg.common.artifact import save_artifact
    from fedseg.common.config import RunConfig
    from fedseg.server.model import build_artifact
    from fedseg.server.orchestrator import Orchestrator
    from tests.helpers import frame_nodes, transport

    config = RunConfig(k=3, min_nodes=1)
    nodes = frame_nodes([pd.read_csv(csv, dtype=str)])
    result = Orchestrator(config, schema, transport(nodes), list(nodes)).run()
    save_artifact(build_artifact(result, config, schema), tmp_path / "run" / "model.json")
    done = runner.invoke(cli, ["label-node", "--model", str(tmp_path / "run" / "model.json"),
                               "--node-config", node_config + ' labels-table="segments"'])
    assert done.exit_code == 0 and "300 customers labelled" in done.output, done.output
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT COUNT(*), MIN(segment), MAX(segment) FROM segments").fetchone()
    assert rows[0] == 300 and 0 <= rows[1] <= rows[2] < 3
