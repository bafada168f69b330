"""Vertical federation (issue 15): cost of the vertical model on the joined
shared-customer table over scikit-learn KMeans(n_init=10)'s, on the synthetic customers
and CDNOW-derived features split into 2 and 3 parties, overlap 1.0 and 0.7, plain and
secure (3 parties); exchanges per Lloyd round and bytes per party per round.

    python -m benchmarks.bench_vertical [--customers 4000] [--seeds 3] [--cdnow-sample 6000]
    python -m benchmarks.bench_vertical --scale 200000   # one 2-party run: bytes and time per stage
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from fedseg.common.schema import FeatureSchema, NumericFeature
from fedseg.simulations.vertical_split import vertical_split
from tests.vertical_helpers import cost_ratio, run_vertical

SYNTH_SPLITS = {
    2: {"crm": ["age", "income", "gender", "education", "region", "city_tier"],
        "shop": ["recency_days", "tenure_days", "frequency", "monetary", "channel",
                 "tag_outdoor", "tag_tech", "tag_family", "tag_deals"]},
    3: {"crm": ["age", "income", "gender", "education", "region", "city_tier"],
        "shop": ["recency_days", "tenure_days", "frequency", "monetary", "channel"],
        "marketing": ["tag_outdoor", "tag_tech", "tag_family", "tag_deals"]},
}
CDNOW_SPLITS = {
    2: {"crm": ["recency_days", "tenure_days"], "shop": ["frequency", "monetary", "avg_order_value"]},
    3: {"crm": ["recency_days", "tenure_days"], "shop": ["frequency", "monetary"], "service": ["avg_order_value"]},
}


def synthetic(customers: int, seed: int):
    from fedseg.common.synthetic import generate_customers, synthetic_schema

    return generate_customers(customers, 1, seed), synthetic_schema(), SYNTH_SPLITS, 6


def cdnow(sample: int, seed: int):
    from fedseg.simulations.cdnow import cdnow_customers, cdnow_rfm_schema

    frame = cdnow_customers()
    frame = frame.sample(min(sample, len(frame)), random_state=seed) if sample else frame
    base = cdnow_rfm_schema()
    schema = base.model_copy(update={"numeric": (
        *base.numeric, NumericFeature(name="avg_order_value", transform="log1p", lower=0.0, upper=50_000.0),
        NumericFeature(name="tenure_days", lower=0.0, upper=730.0))})
    return frame, FeatureSchema.model_validate(schema.model_dump()), CDNOW_SPLITS, 4


def one(frame, schema, parties, k, overlap, secure, seed) -> dict:
    frames = vertical_split(frame, schema.id, parties, overlap, seed)
    t0 = time.perf_counter()
    result, run, tr = run_vertical(frames, schema, parties, k=k, seed=seed, secure=secure)
    wall = time.perf_counter() - t0
    lloyd = sum(1 for r in tr.sent if getattr(getattr(r, "inner", r), "phase", "") == "vertical_lloyd")
    per_round = [len(p) for n, p in tr.received if b'"vertical_lloyd"' in p or b'"secure_masked"' in p]
    return {"ratio": cost_ratio(result, frame, frames, schema, parties, k), "n": result.n_shared,
            "exchanges": run.exchanges, "lloyd": lloyd, "wall": wall,
            "round_exchanges": 2 if secure else 1, "bytes_up": max(per_round) if per_round else 0}


def scale(n: int) -> None:
    """One plain 2-party run of n shared customers (5 numeric columns, k = 5): wall time,
    and per stage the rounds and the largest reply of one party in one round."""
    from sklearn.datasets import make_blobs

    import pandas as pd

    X, _ = make_blobs(n, 5, centers=5, cluster_std=2.0, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)])
    frame.insert(0, "id", [f"c{i}" for i in range(n)])
    schema = FeatureSchema(id="id", numeric=tuple(NumericFeature(name=f"x{j}", lower=-40.0, upper=40.0)
                                                  for j in range(5)))
    parties = {"crm": ["x0", "x1", "x2"], "shop": ["x3", "x4"]}
    frames = vertical_split(frame, "id", parties, 1.0, 0)
    t0 = time.perf_counter()
    result, run, tr = run_vertical(frames, schema, parties, k=5, seed=0)
    wall = time.perf_counter() - t0
    stages: dict[str, list[int]] = {}
    for (nid, payload), request in zip(tr.received, [r for r in tr.sent for _ in range(2)]):
        stage = getattr(request, "stage", request.phase) if request.phase == "vertical_lloyd" else request.phase
        stages.setdefault(stage, []).append(len(payload))
    print(f"{n:,} shared customers, 2 parties, plain: wall {wall:.0f} s, {run.exchanges} exchanges, "
          f"bytes up {tr.bytes_up:,}, down {tr.bytes_down:,}; ratio {cost_ratio(result, frame, frames, schema, parties, 5):.4f}")
    for stage, sizes in stages.items():
        print(f"  {stage:18} replies {len(sizes) // 2:3} rounds, largest reply of one party {max(sizes):,} bytes")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=4000)
    p.add_argument("--cdnow-sample", type=int, default=6000, help="CDNOW customers drawn (0: all 23,570)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--datasets", nargs="+", default=["synthetic", "cdnow"], choices=["synthetic", "cdnow"])
    p.add_argument("--scale", type=int, default=0, help="only one 2-party run of this many shared customers")
    args = p.parse_args()
    if args.scale:
        return scale(args.scale)
    print("dataset    parties overlap secure  shared  median   worst  Lloyd rounds  exch/round  bytes/party/round")
    for name in args.datasets:
        rows: dict[tuple, list[dict]] = {}
        for seed in range(args.seeds):
            frame, schema, splits, k = (synthetic(args.customers, seed) if name == "synthetic"
                                        else cdnow(args.cdnow_sample, seed))
            for n_parties, overlap, secure in [(2, 1.0, False), (2, 0.7, False), (3, 1.0, False), (3, 0.7, False),
                                               (3, 1.0, True), (3, 0.7, True)]:
                rows.setdefault((n_parties, overlap, secure), []).append(
                    one(frame, schema, splits[n_parties], k, overlap, secure, seed))
        for (n_parties, overlap, secure), got in rows.items():
            ratios = [g["ratio"] for g in got]
            print(f"{name:10} {n_parties:7} {overlap:7.1f} {str(secure):6} {int(np.median([g['n'] for g in got])):7} "
                  f"{statistics.median(ratios):7.4f} {max(ratios):7.4f} {statistics.median([g['lloyd'] for g in got]):13.0f} "
                  f"{got[0]['round_exchanges']:11} {int(np.median([g['bytes_up'] for g in got])):18,}")


if __name__ == "__main__":
    main()
