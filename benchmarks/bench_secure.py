"""Secure vs plaintext, side by side in one run: wall time per Lloyd round on Flower's
Simulation Engine, message exchanges per round, and bytes per client per round.

    python -m benchmarks.bench_secure [--clients 10 50] [--customers 20000 | --per-client 2000] [--rounds 5]

Both modes run the same fixed number of Lloyd rounds (tol = 0) on the same data and seed.
Bytes come from the in-process transport, which carries exactly the bytes the Flower
apps exchange.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

import logging

from fedseg.client.data import validate_frame
from fedseg.client.handlers import NodeData
from fedseg.common.config import RunConfig
from fedseg.server.orchestrator import Event, Orchestrator
from fedseg.simulations.driver import simulate
from fedseg.simulations.local_transport import LocalTransport
from fedseg.simulations.partition import partition
from fedseg.common.synthetic import generate_customers, synthetic_schema


class LloydTimer:
    """Mean wall time between consecutive Lloyd round events."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def __call__(self, event: Event) -> None:
        import time

        if event.phase == "lloyd":  # rounds 2..n: seeding time excluded
            self.marks.append(time.perf_counter())

    def per_round(self) -> float:
        return (self.marks[-1] - self.marks[0]) / (len(self.marks) - 1)


def bytes_per_round(frames, schema, config: RunConfig) -> tuple[float, float, float]:
    """(exchanges, bytes up, bytes down) per client per Lloyd round, in-process."""
    nodes = {i + 1: NodeData(f"b{i}-{config.secure}-{len(frames)}", lambda s, f=f, i=i: validate_frame(f, s, f"n{i}"))
             for i, f in enumerate(frames)}
    counts: dict[str, list] = {}

    class Probe(LocalTransport):
        def send(self, requests):
            before = (self.bytes_up, self.bytes_down)
            replies = super().send(requests)
            first = next(iter(requests.values()))
            inner = getattr(first, "inner", None)
            phase = getattr(inner, "phase", None) or first.phase
            if phase == "lloyd" or (phase == "secure_unmask" and counts.get("_last") == "lloyd"):
                counts.setdefault("lloyd", []).append((self.bytes_up - before[0], self.bytes_down - before[1]))
            counts["_last"] = phase if phase != "secure_unmask" else counts.get("_last")
            return replies

    tr = Probe(nodes)
    result = Orchestrator(config, schema, tr, list(nodes)).run()
    ex = counts["lloyd"]
    n, rounds = len(frames), result.lloyd_rounds
    return len(ex) / rounds, sum(e[0] for e in ex) / rounds / n, sum(e[1] for e in ex) / rounds / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--per-client", type=int, default=0, help="customers per client (overrides --customers)")
    args = ap.parse_args()
    logging.getLogger("flwr").setLevel(logging.ERROR)
    schema = synthetic_schema()
    total = args.per_client * max(args.clients) if args.per_client else args.customers
    pooled = generate_customers(total, 5, seed=1).drop(columns=["department", "true_segment"])
    print(f"{'clients':>7} {'mode':>9} {'s/round':>8} {'ratio':>6} {'exch/round':>10} {'KB up/client/round':>19} {'KB down/client/round':>21}")
    for n in args.clients:
        df = pooled.head(args.per_client * n) if args.per_client else pooled
        frames = partition(df, "iid", n, seed=1)
        per_round = {}
        for secure in (False, True):
            config = RunConfig(k=args.k, seed=1, tol=0.0, max_rounds=args.rounds, restarts=1, secure=secure,
                               min_nodes=2)
            timer = LloydTimer()
            with tempfile.TemporaryDirectory() as out:
                simulate(frames, schema, config, Path(out), timer)
            per_round[secure] = timer.per_round()
            exch, up, down = bytes_per_round(frames, schema, config)
            ratio = per_round[secure] / per_round[False]
            print(f"{n:>7} {'secure' if secure else 'plaintext':>9} {per_round[secure]:>8.3f} {ratio:>6.2f} "
                  f"{exch:>10.0f} {up / 1024:>19.1f} {down / 1024:>21.1f}", flush=True)


if __name__ == "__main__":
    main()
