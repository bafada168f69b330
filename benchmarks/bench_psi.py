"""The cost of deduplication: one PSI session (four exchanges) over U units of N customers.

    python -m benchmarks.bench_psi [--units 2 5 10] [--customers 100000] [--overlap 0.3]

Each unit holds N customers; a share `--overlap` of all customers is held by a second
unit too (ids drawn so every unit still holds exactly N). The nodes run in this process
through the wire encoding (`LocalTransport`), one after another; printed per U: the
node seconds of every exchange (all nodes added up, and the slowest node: what a
deployment whose nodes run in parallel waits), bytes up and down per node (JSON over the
wire as Flower carries it), and a check that the shared customers found equal the truth.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

import numpy as np

from fedseg.client.handlers import NodeData, handle
from fedseg.common.preprocessing import LocalTable
from fedseg.common.psi.protocol import RESULT
from fedseg.common.schema import FeatureSchema
from fedseg.common.wire import decode_reply, decode_request, encode
from fedseg.server import psi_phase
from fedseg.simulations.local_transport import LocalTransport

SCHEMA = FeatureSchema.numeric_only("id", ["x"])


def unit_ids(units: int, n: int, overlap: float, rng: np.random.Generator) -> list[np.ndarray]:
    """N ids per unit; `overlap` of the distinct customers sit in two units."""
    distinct = int(round(units * n / (1 + overlap)))
    twice = units * n - distinct
    pool = np.array([f"C{i:09d}" for i in rng.permutation(10 * distinct)[:distinct]])
    slots = np.concatenate([pool, pool[:twice]])  # the first `twice` customers appear twice
    home = np.full(len(slots), -1)
    home[:distinct] = np.repeat(np.arange(units), -(-distinct // units))[:distinct]
    home[distinct:] = (home[:twice] + rng.integers(1, units, twice)) % units
    return [slots[home == u] for u in range(units)]


class TimedTransport(LocalTransport):
    """LocalTransport that times each node's handler and counts bytes per node."""

    def __init__(self, nodes):
        super().__init__(nodes)
        self.steps: list[dict[int, float]] = []
        self.node_bytes = {n: [0, 0] for n in nodes}

    def send(self, requests):
        replies, times = {}, {}
        for nid, request in requests.items():
            payload = encode(request)
            t = time.perf_counter()
            answer = encode(handle(decode_request(payload), self.nodes[nid], self.states[nid], nid,
                                   self.policies.get(nid)))
            times[nid] = time.perf_counter() - t
            self.node_bytes[nid][0] += len(answer)
            self.node_bytes[nid][1] += len(payload)
            replies[nid] = decode_reply(answer)
        self.steps.append(times)
        return replies


def measure(units: int, n: int, overlap: float, seed: int) -> dict:
    ids = unit_ids(units, n, overlap, np.random.default_rng(seed))
    tables = {u + 1: LocalTable(ids=i, numeric=np.zeros((len(i), 1)), codes=np.zeros((len(i), 0), np.int64))
              for u, i in enumerate(ids)}
    tr = TimedTransport({u: NodeData(f"bench-{uuid.uuid4()}", lambda s, t=t: t) for u, t in tables.items()})
    send = lambda reqs, expect: {k: v for k, v in tr.send(reqs).items() if isinstance(v, expect)}  # noqa: E731
    start = time.perf_counter()
    psi_phase.run_psi(send, SCHEMA, lambda: sorted(tables))
    wall = time.perf_counter() - start
    removed = sum(json.loads(tr.states[u][RESULT])["removed"] for u in tables)
    truth = units * n - len(np.unique(np.concatenate(ids)))
    return {
        "units": units, "customers_per_unit": n, "rows_held_twice": truth, "removed_found": removed,
        "node_seconds_total": round(sum(sum(s.values()) for s in tr.steps), 1),
        "parallel_seconds": round(sum(max(s.values()) for s in tr.steps), 1),
        "process_wall_seconds": round(wall, 1),
        "mb_up_per_node": round(max(b[0] for b in tr.node_bytes.values()) / 1e6, 1),
        "mb_down_per_node": round(max(b[1] for b in tr.node_bytes.values()) / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[2, 5, 10])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--overlap", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for units in args.units:
        row = measure(units, args.customers, args.overlap, args.seed)
        assert row["removed_found"] == row["rows_held_twice"], row
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
