"""Scale benchmark: many records per node through Flower's Simulation Engine (Ray).

    python -m benchmarks.bench_scale [--clients 10] [--records-per-client 100000] [--k 6]

Generates `clients × records-per-client` synthetic customers (d = 26 encoded features),
splits them (`iid` by default, or any partition spec), runs the whole federation with
`simulations.driver.simulate` and prints the wall time split into engine start-up plus
the first exchange vs the rest, the time per Lloyd round, and scikit-learn's
`KMeans(n_init=10)` and `KMeans(n_init=1)` times on the pooled encoded data, with the
cost ratio. Memory: peak RSS of this process (`getrusage`) and the peak of the summed
RSS over this process and all its descendants (Ray's processes), sampled from /proc.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from fedseg.client.data import validate_frame
from fedseg.common.config import RunConfig
from fedseg.common.preprocessing import encode_table
from fedseg.server.orchestrator import Event
from benchmarks.bench_quality import nearest
from fedseg.simulations.driver import simulate
from fedseg.simulations.partition import partition
from fedseg.common.synthetic import generate_customers, synthetic_schema

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss(root: int) -> int:
    """Summed resident set size (bytes) of `root` and all its descendants."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
            with open(f"/proc/{entry}/statm") as fh:
                pages = int(fh.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        parent[int(entry)] = int(fields[1])
        rss[int(entry)] = pages * _PAGE
    total, todo = 0, [root]
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


class MemorySampler:
    """Peak of the process tree's summed RSS, sampled every `every` seconds."""

    def __init__(self, every: float = 0.5) -> None:
        self.every, self.peak = every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(os.getpid()))
            self._stop.wait(self.every)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _self_peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--records-per-client", type=int, default=100_000)
    p.add_argument("--partition", default="iid", help="iid, dirichlet:ALPHA:COLUMN or column:NAME")
    p.add_argument("--k", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--restarts", type=int, default=RunConfig().restarts)
    p.add_argument("--tol", type=float, default=RunConfig().tol)
    p.add_argument("--max-rounds", type=int, default=RunConfig().max_rounds)
    p.add_argument("--init-bits", type=int, default=RunConfig().init_bits)
    p.add_argument("--init-tables", type=int, default=RunConfig().init_tables)
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs for Ray (default: all)")
    p.add_argument("--skip-sklearn-n-init-10", action="store_true")
    args = p.parse_args(argv)

    n = args.clients * args.records_per_client
    schema = synthetic_schema()
    config = RunConfig(k=args.k, seed=args.seed, restarts=args.restarts, tol=args.tol, max_rounds=args.max_rounds,
                       init_bits=args.init_bits, init_tables=args.init_tables)
    print(f"{args.clients} clients × {args.records_per_client} records = {n} customers, "
          f"partition {args.partition}, k={args.k}, {os.cpu_count()} CPUs", flush=True)
    print(f"config: restarts={config.restarts} tol={config.tol} max_rounds={config.max_rounds} "
          f"init_bits={config.init_bits} init_tables={config.init_tables}", flush=True)

    t = time.perf_counter()
    pooled = generate_customers(n, args.clients, args.seed)
    frames = partition(pooled, args.partition, args.clients, args.seed)
    print(f"data generated and split in {time.perf_counter() - t:.1f} s; node sizes "
          f"{min(map(len, frames))}..{max(map(len, frames))}", flush=True)

    def show(event: Event) -> None:
        if event.phase in {"prepare", "init", "select", "node-failed"} or (
            event.phase == "lloyd" and event.detail.get("converged") == event.detail.get("candidates")
        ):
            print(f"  [{time.strftime('%H:%M:%S')}] {event.phase}: {event.message}", flush=True)

    with MemorySampler() as mem, tempfile.TemporaryDirectory(prefix="fedseg-bench-") as out:
        artifact, wall = simulate(frames, schema, config, Path(out), on_event=show, num_cpus=args.num_cpus)
    del frames
    gc.collect()
    run = artifact.run
    lloyd = run.timings["lloyd"]

    table = validate_frame(pooled[list(schema.columns)], schema, "pooled")
    mean, scale = artifact.scaler_arrays()
    X = encode_table(table, schema, mean, scale)
    del table
    truth = pooled["true_segment"].to_numpy()
    del pooled
    gc.collect()
    labels, cost = nearest(X, artifact.centroid_array())

    sk = {}
    for n_init in ([1] if args.skip_sklearn_n_init_10 else [10, 1]):
        t = time.perf_counter()
        model = KMeans(args.k, n_init=n_init, random_state=args.seed).fit(X)
        sk[n_init] = (time.perf_counter() - t, float(model.inertia_), model.labels_, model.n_iter_)
    ref_cost = sk[min(sk, key=lambda i: sk[i][1])][1]  # the better scikit-learn inertia
    ref_init = 10 if 10 in sk else 1

    print()
    print(f"fedseg on Flower Simulation Engine ({run.clients} nodes, {X.shape[0]} × {X.shape[1]} encoded)")
    print(f"  wall total                          {wall['total']:8.1f} s")
    print(f"  engine start-up + first exchange    {wall['startup_and_first_exchange']:8.1f} s")
    print(f"  the rest (after first exchange)     {wall['after_first']:8.1f} s")
    for phase in ("preprocessing", "initialization", "lloyd", "profiling", "total"):
        print(f"  orchestrator {phase:<22} {run.timings[phase]:8.2f} s")
    print(f"  communication rounds {run.rounds}, Lloyd rounds {run.lloyd_rounds}, converged {run.converged}")
    print(f"  time per Lloyd round                {lloyd / max(run.lloyd_rounds, 1):8.2f} s")
    print("scikit-learn KMeans on the pooled encoded data (this process)")
    for n_init, (secs, inertia, _, n_iter) in sk.items():
        print(f"  n_init={n_init:<3} {secs:8.1f} s   inertia {inertia:.6g}   n_iter (best init) {n_iter}")
    print("quality")
    print(f"  cost ratio fedseg / best scikit-learn   {cost / ref_cost:.5f}")
    for n_init, (_, inertia, _, _) in sk.items():
        print(f"  cost ratio fedseg / n_init={n_init:<2}          {cost / inertia:.5f}")
    print(f"  ARI fedseg vs scikit-learn n_init={ref_init}   {adjusted_rand_score(sk[ref_init][2], labels):.4f}")
    print(f"  ARI fedseg vs ground truth              {adjusted_rand_score(truth, labels):.4f}")
    print("memory")
    print(f"  peak RSS of this process (getrusage)    {_self_peak_rss() / 2**30:6.2f} GiB")
    print(f"  peak summed RSS, process + Ray children {mem.peak / 2**30:6.2f} GiB "
          "(shared pages counted in every process that maps them: an upper bound)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
