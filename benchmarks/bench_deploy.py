"""A deployed run next to the same run in simulation, timed phase by phase.

    python -m benchmarks.bench_deploy [--customers 3000] [--k 3] [--seed 7]

Deployment: on 127.0.0.1 only, a SuperLink with TLS and SuperNode authentication, three
registered SuperNodes reading SQLite, CSV and Parquet, one `flwr run`. Simulation: the
same three tables on Flower's Simulation Engine. Printed side by side: set-up, time to the
model, communication rounds, seconds per round, the cost ratio against scikit-learn on the
pooled data. Every process started is stopped by PID at the end, also on failure.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fedseg.client.data import load_table
from fedseg.common.artifact import ModelArtifact, load_artifact
from fedseg.common.config import RunConfig
from fedseg.common.preprocessing import LocalTable, encode_table
from fedseg.common.schema import load_schema
from fedseg.cli.deploy import register_key
from fedseg.server.security import make_certificates, make_node_keys
from fedseg.simulations.driver import simulate
from fedseg.simulations.local_deployment import (
    BIN, REPO, Processes, copy_app, fedseg, flwr, free_port, superlink_command, supernode_command, wait_for_port,
)
from fedseg.common.synthetic import generate_customers, synthetic_schema, write_departments

NODES = ("sqlite", "csv", "parquet")


def write_tables(root: Path, customers: int, seed: int) -> tuple[dict[str, str], list[Path], Path]:
    """Three departments as a SQLite table, a CSV and a Parquet file; their node configs."""
    paths = write_departments(generate_customers(customers, 3, seed), root / "data", synthetic_schema())
    csvs = sorted(p for p in paths if p.suffix == ".csv")
    schema_path = next(p for p in paths if p.suffix == ".toml")
    with sqlite3.connect(root / "data" / "crm.db") as con:
        pd.read_csv(csvs[0]).to_sql("customers", con, index=False)
    parquet = root / "data" / "unit-3.parquet"
    pd.read_csv(csvs[2]).to_parquet(parquet, index=False)
    configs = {"sqlite": f'db-url="sqlite:///{root / "data" / "crm.db"}" db-table="customers"',
               "csv": f'data-path="{csvs[1]}"', "parquet": f'data-path="{parquet}"'}
    return configs, [csvs[0], csvs[1], parquet], schema_path


def deployed_run(root: Path, configs: dict[str, str], schema_path: Path, k: int, seed: int,
                 on_nodes=lambda procs: None) -> dict:
    """Start the federation, run once with `flwr run`, stop everything; wall times.
    `on_nodes(procs)` is called once the SuperNodes are started (to watch them)."""
    t0 = time.monotonic()
    env = {**os.environ, "FLWR_HOME": str(root / "flwr-home"), "PYTHONPATH": str(REPO),
           "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.1",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    procs = Processes(env, root)
    try:
        certs = make_certificates(root / "certs")
        port = free_port()
        superlink = procs.start("superlink", superlink_command(certs.ca_cert, certs.server_cert, certs.server_key, port))
        wait_for_port(port, superlink)
        fedseg(env, "connection", "--address", f"127.0.0.1:{port}", "--ca", str(certs.ca_cert)).check_returncode()
        for name, config in configs.items():
            keys = make_node_keys(root / "keys", name)
            register_key(keys.public_key, name, env=env)
            procs.start(f"node-{name}", supernode_command(port, certs.ca_cert, keys.private_key, config))
        on_nodes(procs)
        t_setup = time.monotonic()
        while not all("SuperNode ID:" in procs.log(f"node-{n}") for n in configs):
            if time.monotonic() - t_setup > 120:
                raise TimeoutError("nodes did not connect within 120 s")
            time.sleep(0.2)
        t_online = time.monotonic()
        out = root / "out"
        run_config = f'k={k} min-nodes=3 seed={seed} schema="{schema_path}" out-dir="{out}"'
        flwr(env, "run", str(copy_app(root)), "fedseg", "--run-config", run_config).check_returncode()
        while not (out / "report.md").exists():
            if time.monotonic() - t_online > 600:
                raise TimeoutError("the deployed run did not finish within 600 s")
            time.sleep(0.2)
        t_done = time.monotonic()
    finally:
        procs.stop_all()
    return {"model": load_artifact(out / "model.json"), "setup": t_setup - t0,
            "nodes online": t_online - t_setup, "to model": t_done - t_online}


def cost_ratio(model: ModelArtifact, files: list[Path]) -> float:
    """fedseg's inertia on the pooled tables / scikit-learn KMeans(n_init=10) on them."""
    from sklearn.cluster import KMeans

    schema = model.run.feature_schema
    tables = [load_table(p, schema) for p in files]
    pooled = LocalTable(ids=np.concatenate([t.ids for t in tables]), numeric=np.vstack([t.numeric for t in tables]),
                        codes=np.vstack([t.codes for t in tables]))
    X = encode_table(pooled, schema, *model.scaler_arrays())
    cost = float(((X[:, None, :] - model.centroid_array()[None]) ** 2).sum(axis=2).min(axis=1).sum())
    return cost / KMeans(n_clusters=model.k, n_init=10, random_state=0).fit(X).inertia_


def row(name: str, model: ModelArtifact, setup: float, to_model: float, files: list[Path]) -> str:
    t = model.run.timings
    return (f"| {name} | {setup:.1f} | {to_model:.1f} | {model.run.rounds} ({model.run.lloyd_rounds} Lloyd) | "
            f"{t['total'] / model.run.rounds:.2f} | {t.get('preprocessing', 0):.1f} | "
            f"{t.get('initialization', 0):.1f} | {t.get('lloyd', 0):.1f} | {t.get('profiling', 0):.1f} | "
            f"{cost_ratio(model, files):.5f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fedseg-bench-deploy-") as tmp:
        root = Path(tmp)
        configs, files, schema_path = write_tables(root, args.customers, 11)
        deployed = deployed_run(root, configs, schema_path, args.k, args.seed)
        schema = load_schema(schema_path)
        frames = [pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p) for p in files]
        config = RunConfig.parse({"k": args.k, "min_nodes": 3, "seed": args.seed})
        t0 = time.monotonic()
        sim_model, sim_times = simulate(frames, schema, config, root / "sim-out", on_event=lambda e: None)
        sim_total = time.monotonic() - t0
        print("| run | set-up s | start → model s | comm. rounds | s / round (server) | preprocessing s "
              "| initialization s | Lloyd s | profiles s | cost ratio |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        print(row("deployed (TLS + node auth, 3 SuperNodes)", deployed["model"],
                  deployed["setup"] + deployed["nodes online"], deployed["to model"], files))
        print(row("simulation (Ray, 3 nodes)", sim_model, sim_times["startup_and_first_exchange"], sim_total, files))
        print(f"deployed: set-up {deployed['setup']:.1f} s (certificates, SuperLink, 3 keys registered), "
              f"nodes online {deployed['nodes online']:.1f} s; simulation: engine start-up and first exchange "
              f"{sim_times['startup_and_first_exchange']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
