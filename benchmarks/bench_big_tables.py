"""Units with millions of customers (issue 14): a deployed run per table size, side by side.

    python -m benchmarks.bench_big_tables [--sizes 10000 1000000] [--data-root /tmp/fedseg-big]

For each size: three SuperNodes (SQLite, CSV, Parquet; TLS and node authentication on
127.0.0.1, as `bench_deploy`) of about `size` customers each, one `flwr run` with the
node-private table store on. Printed: seconds per communication round (server timings),
time to the model, the peak RSS of each SuperNode with its ClientApp processes (sampled
from /proc every 0.2 s), and the node time of one Lloyd message in process, before (the
table read, validated and encoded as every message did on main: `table-cache="off"`) and
after (the second message of the run, from the store). Tables are written once under
`--data-root/<size>` and reused by later invocations.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")

from benchmarks.bench_deploy import NODES, deployed_run, write_tables
from benchmarks.bench_scale import _tree_rss
from fedseg.client.handlers import handle
from fedseg.client.node_data import NodeData
from fedseg.client.source import node_data
from fedseg.common.artifact import ModelArtifact
from fedseg.common.messages import NodeFailure, Scaler
from fedseg.common.phases.lloyd import LloydRequest
from fedseg.common.schema import load_schema


class TreeRss:
    """Peak summed RSS of each named process and its descendants."""

    def __init__(self, every: float = 0.2) -> None:
        self.pids: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.every = every

    def watch(self, procs) -> None:
        self.pids = {n: procs.procs[f"node-{n}"].pid for n in NODES}
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak.get(name, 0), _tree_rss(pid))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def tables(root: Path, size: int) -> tuple[dict[str, str], Path]:
    """The three units at `root` (written on first use): node configs and the schema."""
    marker = root / "written"
    if not marker.exists():
        configs, _, schema_path = write_tables(root, 3 * size, 11)
        marker.write_text(json.dumps({"configs": configs, "schema": str(schema_path)}))
    written = json.loads(marker.read_text())
    return written["configs"], Path(written["schema"])


def _config_dict(config: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in (part.split("=", 1) for part in config.split())}


def message_seconds(config: dict[str, str], request: LloydRequest, cache: Path) -> tuple[float, float]:
    """One Lloyd message's node time: every message reading the table (before) vs the
    run's second message answered from the store (after). A fresh process each time."""
    def one(extra: dict, run: str) -> float:
        NodeData._MEMORY.entries.clear()
        NodeData._MEMORY.sizes.clear()
        NodeData._FIRST.clear()
        t0 = time.perf_counter()
        reply = handle(request, node_data({**config, **extra}, {}, run=run))
        assert not isinstance(reply, NodeFailure), reply
        return time.perf_counter() - t0

    before = one({"table-cache": "off"}, "")  # as on main: no store, no fingerprint
    one({"table-cache-dir": str(cache)}, "bench-on")  # first message of the run fills the store
    return before, one({"table-cache-dir": str(cache)}, "bench-on")


def lloyd_request(model: ModelArtifact, schema_path: Path) -> LloydRequest:
    mean, scale = model.scaler_arrays()
    centroids = model.centroid_array()
    return LloydRequest(schema=load_schema(schema_path), scaler=Scaler(mean=mean, scale=scale),
                        centroids=centroids, sizes=[len(centroids)])


def measure(size: int, data_root: Path, k: int, seed: int) -> dict:
    configs, schema_path = tables(data_root / str(size), size)
    with tempfile.TemporaryDirectory(prefix="fedseg-big-") as tmp:
        root = Path(tmp)
        cached = {n: f'{c} table-cache-dir="{root / ("cache-" + n)}"' for n, c in configs.items()}
        rss = TreeRss()
        try:
            run = deployed_run(root, cached, schema_path, k, seed, on_nodes=rss.watch)
        finally:
            rss.stop()
        request = lloyd_request(run["model"], schema_path)
        per_message = {n: message_seconds(_config_dict(c), request, root / "cache-bench") for n, c in configs.items()}
    model = run["model"]
    return {"size": size, "model": model, "to model": run["to model"], "rss": rss.peak, "message": per_message,
            "per round": model.run.timings["total"] / model.run.rounds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--data-root", type=Path, default=Path(tempfile.gettempdir()) / "fedseg-big-tables")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    results = [measure(s, args.data_root, args.k, args.seed) for s in args.sizes]
    print("| customers / node | comm. rounds | s / round | start → model s | "
          + " | ".join(f"{n}: s / message before → after" for n in NODES) + " | "
          + " | ".join(f"{n}: peak RSS MiB" for n in NODES) + " |")
    print("|---:|---:|---:|---:|" + "---:|" * (2 * len(NODES)))
    for r in results:
        m = r["model"]
        print(f"| {r['size']:,} | {m.run.rounds} ({m.run.lloyd_rounds} Lloyd) | {r['per round']:.2f} | "
              f"{r['to model']:.1f} | "
              + " | ".join(f"{r['message'][n][0]:.2f} → {r['message'][n][1]:.3f}" for n in NODES) + " | "
              + " | ".join(f"{r['rss'].get(n, 0) / 2**20:.0f}" for n in NODES) + " |")
    if len(results) > 1:
        print(f"s / round, largest vs smallest: {results[-1]['per round'] / results[0]['per round']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
