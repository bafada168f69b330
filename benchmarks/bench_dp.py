"""Cost of differential privacy, side by side in one run: fedseg with DP at several ε
(and without) vs scikit-learn KMeans(n_init=10) on the same pooled, scaled data.

    python -m benchmarks.bench_dp [--customers 100000] [--clients 10] [--epsilons 0.5 1 2 4] [--seeds 1 2 3]

Runs in-process (the same node handlers and wire bytes as the Flower apps, secure
aggregation included; DP noise is added by the nodes in shares). The cost ratio is the
inertia of fedseg's centroids on the pooled data scaled with fedseg's (noisy) scaler,
over scikit-learn's inertia with the same k on that same scaled data. One noise draw
varies a lot, so every ε runs with `--seeds` run seeds (fresh noise each time: nodes
draw it from the OS); the table gives the median and the worst ratio.

Then what a marketer reads (issue 11): for each seed, the README's DP run
(`fedseg simulate --k 6 --epsilon 1 --delta 1e-6 --seed S`: 20,000 synthetic customers,
5 departments) next to the plaintext run of the same seed; segments matched by their
centroids in original units (Hungarian); for every plaintext segment of >= 5 % of
customers, the share difference (goal <= 0.03) and the worst mean difference in
plaintext-segment standard deviations (goal <= 0.25), and the figures outside their
public bounds (goal 0).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans

from fedseg.client.data import validate_frame
from fedseg.client.handlers import NodeData
from fedseg.common.artifact import ModelArtifact
from fedseg.common.config import RunConfig
from fedseg.common.kmeans import assign, local_stats
from fedseg.common.preprocessing import clip_numeric, encode_table
from fedseg.server.model import build_artifact
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
    ap.add_argument("--seed", type=int, default=1, help="data seed")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5],
                    help="run seeds (noise draws) per epsilon; also the seeds of the side-by-side check")
    ap.add_argument("--skip-cost", action="store_true", help="only the side-by-side check")
    args = ap.parse_args()
    if not args.skip_cost:
        cost_table(args)
    side_by_side(args.seeds)


def cost_table(args: argparse.Namespace) -> None:
    """Cost ratio vs scikit-learn per epsilon (median and worst over the run seeds)."""
    schema = synthetic_schema()
    df = generate_customers(args.customers, 5, args.seed).drop(columns=["department", "true_segment"])
    frames = partition(df, "iid", args.clients, args.seed)
    pooled = validate_frame(df, schema, "pooled")
    print(f"{args.customers} customers, {args.clients} clients, k={args.k}, delta={args.delta}, "
          f"DP max-rounds={args.max_rounds}, run seeds {args.seeds}")
    print(f"{'epsilon':>8} {'eps spent':>9} {'median ratio':>12} {'worst ratio':>11} {'ratios':>40} "
          f"{'lloyd rounds':>12} {'s/run':>6}")
    for eps in [0.0, *args.epsilons]:
        ratios, spent, rounds, seconds = [], [], [], 0.0
        for run_seed in (args.seeds if eps else args.seeds[:1]):
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
            spent.append(result.privacy["spent"]["epsilon"] if result.privacy else float("nan"))
            rounds.append(result.lloyd_rounds)
        listed = " ".join(f"{r:.3f}" for r in ratios)
        print(f"{eps if eps else 'off':>8} {max(spent) if eps else '-':>9.5} {np.median(ratios):>12.4f} "
              f"{max(ratios):>11.4f} {listed:>40} {max(rounds):>12} {seconds / len(ratios):>6.1f}", flush=True)


def readme_frame(seed: int):
    return generate_customers(20_000, 5, seed=seed)


def exact_means(model: ModelArtifact, seed: int) -> np.ndarray:
    """Exact means (k, p) of the clipped raw values of the model's own segments, on the
    pooled data: what a noise-free profile of those segments would say."""
    schema = synthetic_schema()
    table = validate_frame(readme_frame(seed)[list(schema.columns)], schema, "pooled")
    mean, scale = model.scaler_arrays()
    labels = assign(encode_table(table, schema, mean, scale), model.centroid_array())
    values = clip_numeric(table.numeric, schema)
    return np.array([values[labels == j].mean(axis=0) for j in range(len(model.segments))])


def readme_model(seed: int, epsilon: float) -> ModelArtifact:
    """The model `fedseg simulate --k 6 [--epsilon E --delta 1e-6] --seed S` writes, in process."""
    schema = synthetic_schema()
    df = readme_frame(seed)
    frames = [g[list(schema.columns)] for _, g in df.groupby("department")]
    nodes = {i + 1: NodeData(f"side{i}-{epsilon}-{seed}", lambda s, f=f, i=i: validate_frame(f, s, f"node{i}"))
             for i, f in enumerate(frames)}
    extra = {"epsilon": epsilon, "delta": 1e-6} if epsilon else {}
    config = RunConfig.parse({"k": 6, "seed": seed, **extra})
    return build_artifact(Orchestrator(config, schema, LocalTransport(nodes), list(nodes)).run(), config, schema)


def _original_centroids(model: ModelArtifact) -> np.ndarray:
    mean, scale = model.scaler_arrays()
    return model.centroid_array() * scale + mean


def side_by_side(seeds: list[int], epsilon: float = 1.0) -> None:
    """DP vs plaintext of the same seed, segment by segment (segments >= 5 % of customers)."""
    schema = synthetic_schema()
    print(f"\nDP (epsilon {epsilon}, delta 1e-6) vs plaintext, k=6, 20,000 customers; segments >= 5 %")
    print(f"{'seed':>4} {'segment':<34} {'share plain':>11} {'share DP':>9} {'|diff|':>7} "
          f"{'worst mean diff (plain std)':>28} {'out of bounds':>13} {'noise part':>16} {'segm. part':>16}")
    for seed in seeds:
        plain, dp = readme_model(seed, 0.0), readme_model(seed, epsilon)
        a, b = _original_centroids(plain), _original_centroids(dp)
        scale = plain.scaler_arrays()[1]
        cost = np.sqrt(np.square((a[:, None, :] - b[None, :, :]) / scale).sum(axis=2))
        rows, cols = linear_sum_assignment(cost)
        exact_dp = exact_means(dp, seed)  # (a) noise = released vs exact of DP segments; (b) segm. = exact vs plain
        oob = sum(not (f.lower <= s.profile.numeric[f.name].mean <= f.upper) for s in dp.segments
                  if s.profile is not None for f in schema.numeric)
        for i, j in zip(rows, cols):
            p, q = plain.segments[i], dp.segments[j]
            if p.share < 0.05 or p.profile is None or q.profile is None:
                continue
            diffs = {f: abs(q.profile.numeric[f].mean - v.mean) / v.std for f, v in p.profile.numeric.items()
                     if v.std > 0}
            worst = max(diffs, key=diffs.get)
            names = [f.name for f in schema.numeric]
            noise = {f: abs(q.profile.numeric[f].mean - exact_dp[j, names.index(f)]) / p.profile.numeric[f].std
                     for f in diffs}
            segm = {f: abs(exact_dp[j, names.index(f)] - p.profile.numeric[f].mean) / p.profile.numeric[f].std
                    for f in diffs}
            wn, ws = max(noise, key=noise.get), max(segm, key=segm.get)
            print(f"{seed:>4} {p.name[:34]:<34} {p.share:>11.3f} {q.share:>9.3f} {abs(p.share - q.share):>7.3f} "
                  f"{diffs[worst]:>20.2f} {worst[:7]:>7} {oob:>13} {noise[wn]:>8.2f} {wn[:7]:>7} "
                  f"{segm[ws]:>8.2f} {ws[:7]:>7}", flush=True)


if __name__ == "__main__":
    main()
