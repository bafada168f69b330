"""Cost of differential privacy, side by side in one run: fedseg with DP at several ε
(and without) vs scikit-learn KMeans(n_init=10) on the same pooled, scaled data.

    python -m benchmarks.bench_dp [--customers 100000] [--clients 10] [--epsilons 0.5 1 2 4] [--seeds 5]

Runs in-process (the same node handlers and wire bytes as the Flower apps, secure
aggregation included; DP noise is added by the nodes in shares). The cost ratio is the
inertia of fedseg's centroids on the pooled data scaled with fedseg's (noisy) scaler,
over scikit-learn's inertia with the same k on that same scaled data. One noise draw
varies a lot, so every ε runs with `--seeds` run seeds (fresh noise each time: nodes
draw it from the OS); the table gives the median and the worst ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.cluster import KMeans

from fedseg.client.data import validate_frame
from fedseg.client.handlers import NodeData
from fedseg.common.config import RunConfig
from fedseg.common.kmeans import local_stats
from fedseg.common.preprocessing import encode_table
from fedseg.server.orchestrator import Orchestrator
from fedseg.simulations.local_transport import LocalTransport
from fedseg.simulations.partition import partition
from fedseg.common.synthetic import generate_customers, synthetic_schema


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--epsilons", type=float, nargs="+", default=[0.5, 1, 2, 4])
    ap.add_argument("--delta", type=float, default=1e-6)
    ap.add_argument("--max-rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1, help="data seed and first run seed")
    ap.add_argument("--seeds", type=int, default=5, help="run seeds (noise draws) per epsilon")
    args = ap.parse_args()
    schema = synthetic_schema()
    df = generate_customers(args.customers, 5, args.seed).drop(columns=["department", "true_segment"])
    frames = partition(df, "iid", args.clients, args.seed)
    pooled = validate_frame(df, schema, "pooled")
    print(f"{args.customers} customers, {args.clients} clients, k={args.k}, delta={args.delta}, "
          f"DP max-rounds={args.max_rounds}, run seeds {args.seed}..{args.seed + args.seeds - 1}")
    print(f"{'epsilon':>8} {'eps spent':>9} {'median ratio':>12} {'worst ratio':>11} {'ratios':>40} "
          f"{'lloyd rounds':>12} {'s/run':>6}")
    for eps in [0.0, *args.epsilons]:
        ratios, spent, rounds, seconds = [], [], [], 0.0
        for run_seed in range(args.seed, args.seed + (args.seeds if eps else 1)):
            nodes = {i + 1: NodeData(f"dp{i}-{eps}", lambda s, f=f, i=i: validate_frame(f, s, f"node{i}"))
                     for i, f in enumerate(frames)}
            tr = LocalTransport(nodes)
            config = RunConfig(k=args.k, seed=run_seed, epsilon=eps, delta=args.delta,
                               max_rounds=args.max_rounds if eps else 20)
            start = time.perf_counter()
            result = Orchestrator(config, schema, tr, list(nodes)).run()
            seconds += time.perf_counter() - start
            X = encode_table(pooled, schema, result.scaler.mean, result.scaler.scale)
            ours = local_stats(X, result.chosen.centroids, [args.k]).inertia.sum()
            ref = KMeans(args.k, n_init=10, random_state=0).fit(X).inertia_
            ratios.append(ours / ref)
            spent.append(result.privacy["epsilon"] if result.privacy else float("nan"))
            rounds.append(result.lloyd_rounds)
        listed = " ".join(f"{r:.3f}" for r in ratios)
        print(f"{eps if eps else 'off':>8} {max(spent) if eps else '-':>9.5} {np.median(ratios):>12.4f} "
              f"{max(ratios):>11.4f} {listed:>40} {max(rounds):>12} {seconds / len(ratios):>6.1f}", flush=True)


if __name__ == "__main__":
    main()
