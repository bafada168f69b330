"""The server's side of a vertical run (issue 15): align the parties' customers, then
vertical Lloyd on summed partial distances, then the profiles, then one artifact.

Every party must answer every exchange: a party that leaves takes its features with it,
so the run stops with a clear message and writes nothing. In secure mode every phase
reply reaches the server only as the sum over parties (`SecureChannel`, each party with
its own block schema); alignment replies are sealed bytes and one count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from fedseg.common.config import RunConfig
from fedseg.common.messages import Message, NodeFailure, Scaler
from fedseg.common.phases import bounds as public_bounds
from fedseg.common.phases.base import add_replies
from fedseg.common.phases.registry import phase_for
from fedseg.common.schema import FeatureSchema
from fedseg.common.secure_layout import BoundsMissing, require_bounds
from fedseg.common.vertical import blocks, seeding
from fedseg.common.vertical.model import HeldFeature, VerticalModel, VerticalSegment, save_model
from fedseg.common.vertical.messages import VerticalAlignReply, VerticalAlignRequest, VerticalMatchReply
from fedseg.common.vertical.messages import VerticalMatchRequest, VerticalPartyReply, VerticalWhoRequest
from fedseg.common.vertical.phases import VLloydRequest, VPrepareRequest, VProfileRequest
from fedseg.server.orchestrator import Event, RunError, Transport
from fedseg.server.psi_phase import _relay, psi_session
from fedseg.server.secure_channel import SecureAggregationFailed, SecureChannel
from fedseg.server.report.vertical import vertical_reports
from fedseg.server.vertical_coverage import vertical_coverage

FINE_ROUNDS = 8  # Lloyd rounds of the fine stage (many small cells) before seeding
CELL_FACTOR = 30  # fine-stage cells per segment (capped at one per 6 customers)
MIN_STARTS = 16  # candidate starts side by side (scikit-learn's n_init=10 starts from records)
PRUNE_AFTER, PRUNE_TO = 12, 4  # after this many main rounds only the best few candidates go on
MIN_MAIN_ROUNDS = 60  # Lloyd rounds at most in the main stage, whatever max_rounds says
SAMPLE = 20_000  # positions the fine and main stages run on at most (public sample)
SETTLED = 1e-4  # a stage ends when no candidate changes more than this share of labels


@dataclasses.dataclass(frozen=True)
class Party:
    name: str
    schema: FeatureSchema  # its block: the id and its columns


@dataclasses.dataclass
class VerticalResult:
    """What the run learned: the chosen labels' segment sums, and how it went."""

    scaler: Scaler
    n_shared: int
    labels_k: int
    sizes: np.ndarray
    sums: np.ndarray  # (k, raw width) per segment, original units / one-hot counts
    centroids: np.ndarray  # (k, encoded width) scaled space
    merged: int
    lloyd_rounds: int
    exchanges: int
    bytes_per_round: dict[int, float] = dataclasses.field(default_factory=dict)
    coverage: dict | None = None  # gaps, clipped, dropped per feature (disclosure applied)


class VerticalRun:
    """One vertical run over `nodes`; `blocks` maps each party (its roster identity) to
    its block schema. The first exchange asks every node which party it is."""

    def __init__(self, config: RunConfig, blocks: Mapping[str, FeatureSchema], transport: Transport,
                 nodes: list[int], on_event: Callable[[Event], None] = lambda e: None) -> None:
        if config.k < 2:
            raise RunError("a vertical run needs a fixed k (--k)")
        if config.epsilon > 0:
            raise RunError("differential privacy is not available in vertical runs")
        self.config, self.blocks, self.transport, self.emit = config, dict(blocks), transport, on_event
        self.nodes = sorted(nodes)
        self.parties: dict[int, Party] = {}  # known after `identify`
        self.exchanges = 0
        self.secure: SecureChannel | None = None
        self.rng = np.random.default_rng(config.seed)

    def identify(self) -> None:
        """Node id -> party, from each node's roster identity; every party exactly once."""
        said = self.send_each({n: VerticalWhoRequest() for n in self.nodes}, VerticalPartyReply)
        names = {n: r.party for n, r in said.items()}
        if sorted(names.values()) != sorted(self.blocks):
            raise RunError(f"the connected nodes are parties {sorted(names.values())}, the run config names "
                           f"{sorted(self.blocks)}: every party must take part exactly once")
        self.nodes = sorted(names, key=lambda n: list(self.blocks).index(names[n]))
        self.parties = {n: Party(names[n], self.blocks[names[n]]) for n in self.nodes}
        enc = [self.parties[n].schema.n_encoded for n in self.nodes]
        raw = [len(p.schema.numeric) + sum(len(c.values) for c in p.schema.categorical)
               for p in (self.parties[n] for n in self.nodes)]
        self.enc_start = dict(zip(self.nodes, np.cumsum([0] + enc[:-1]).tolist()))
        self.raw_start = dict(zip(self.nodes, np.cumsum([0] + raw[:-1]).tolist()))
        self.width, self.raw_width = sum(enc), sum(raw)

    # ---- exchanges ----------------------------------------------------------------

    def _gone(self, nid: int, code: str) -> RunError:
        if nid not in self.parties:
            return RunError(f"node {nid} did not say which party it is ({code}); the run stopped and wrote nothing")
        p = self.parties[nid]
        cols = ", ".join([*p.schema.numeric_names, *p.schema.categorical_names])
        return RunError(f"party {p.name} (node {nid}) left the run ({code}): its features ({cols}) are gone; "
                        "the run stopped and wrote nothing")

    def send_each(self, requests: Mapping[int, Message], expect: type) -> dict[int, Message]:
        """One exchange; every party must answer with `expect`."""
        self.exchanges += 1
        replies = self.transport.send(requests)
        for nid in requests:
            reply = replies.get(nid)
            if not isinstance(reply, expect):
                raise self._gone(nid, reply.code if isinstance(reply, NodeFailure) else "no-reply")
        return {n: replies[n] for n in requests}

    def exchange(self, requests: Mapping[int, Message]) -> Message:
        """Each party's request; the replies summed (securely in secure mode)."""
        first = requests[self.nodes[0]]
        expect = phase_for(first).reply
        if self.secure is None:
            return add_replies(list(self.send_each(requests, expect).values()))
        try:
            summed, active = self.secure.aggregate(first, expect, per_node=requests)
        except SecureAggregationFailed as exc:
            missing = [n for n in self.nodes if n not in self.secure.server.active]
            raise (self._gone(missing[0], "left-secure-round") if missing else RunError(str(exc))) from exc
        if set(active) != set(self.nodes):
            raise self._gone(min(set(self.nodes) - set(active)), "left-secure-round")
        return summed

    # ---- steps --------------------------------------------------------------------

    def start_secure(self) -> None:
        for p in self.parties.values():
            try:
                require_bounds(p.schema)
            except BoundsMissing as exc:
                raise RunError(str(exc)) from exc
        channel = SecureChannel(self.config, self.send_each, self.nodes)
        try:
            joined = channel.setup()
        except SecureAggregationFailed as exc:
            raise RunError(f"secure aggregation set-up failed: {exc}") from exc
        if set(joined) != set(self.nodes):
            raise self._gone(min(set(self.nodes) - set(joined)), "no-secure-setup")
        self.secure = channel
        self.emit(Event("secure", f"keys agreed with {len(joined)} parties", self.exchanges))

    def align(self) -> int:
        """PSI of the ids, then the common order; returns the number of shared customers."""
        schemas = {n: self.parties[n].schema for n in self.nodes}
        done = psi_session(self.send_each, schemas, self.nodes, match=(VerticalMatchRequest, VerticalMatchReply))
        assert done is not None  # send_each raises when a party is missing
        session, matched = done
        formats = {self.parties[n].name: r.id_format for n, r in matched.items()}
        if len(set(formats.values())) > 1:
            raise RunError(f"the parties' id columns are written differently ({formats}); "
                           "bring them to one type and format before a vertical run")
        aligned = self.send_each({n: VerticalAlignRequest(schema=schemas[n], session=session,
                                                          sealed=_relay(matched, self.nodes, n))
                                  for n in self.nodes}, VerticalAlignReply)
        counts = {r.shared for r in aligned.values()}
        if len(counts) != 1:
            raise RunError("the parties disagree on the shared customers; the run stopped")
        n = counts.pop()
        floor = max(self.config.min_segment_size, 2 * self.config.k)
        if n < floor:
            raise RunError(f"the parties share fewer customers than min-segment-size allows "
                           f"({floor} needed); nothing is released")
        return n

    def cover(self, n: int) -> dict:
        """The coverage exchange: from now on each party's block schema carries the
        medians its gaps take; returns the artifact's coverage section."""
        filled, section = vertical_coverage(self.exchange, {nid: self.parties[nid].schema for nid in self.nodes},
                                            {nid: p.name for nid, p in self.parties.items()}, n,
                                            self.config.min_segment_size)
        self.parties = {nid: dataclasses.replace(p, schema=filled[nid]) for nid, p in self.parties.items()}
        return section

    def prepare(self, n: int) -> Scaler:
        reply = self.exchange({nid: VPrepareRequest(schema=p.schema, start=self.enc_start[nid], width=self.width,
                                                    n_shared=n) for nid, p in self.parties.items()})
        return Scaler(mean=reply.mean, scale=reply.scale)

    def distance_bound(self, scaler: Scaler) -> float:
        """Public bound of one party's partial squared distance (secure mode's scales)."""
        if self.secure is None:
            return 0.0
        far = 0.0
        for nid, p in self.parties.items():
            s = slice(self.enc_start[nid], self.enc_start[nid] + p.schema.n_encoded)
            b = public_bounds.scaled_bound(p.schema, Scaler(mean=scaler.mean[s], scale=scaler.scale[s]))
            far = max(far, 4.0 * p.schema.n_encoded * b * b)
        return far

    def lloyd(self, stage: str, k: int, n_cand: int, first: dict, rounds: int, where: dict) -> tuple[np.ndarray, np.ndarray, int]:
        """Rounds of one stage until no candidate's labels change (beyond SETTLED); after
        PRUNE_AFTER rounds only the PRUNE_TO cheapest candidates go on (bytes per round
        shrink with them). Returns (labels, offset costs, rounds) of the candidates left."""
        common = dict(stage=stage, k=k, **where)
        labels, costs, done = None, None, 0
        for rnd in range(rounds):
            step: dict = first if rnd == 0 else {"labels": labels}
            if rnd == PRUNE_AFTER and n_cand > PRUNE_TO:
                keep = np.sort(np.argsort(costs)[:PRUNE_TO])
                step, n_cand = {"labels": labels[:, keep], "keep": keep}, PRUNE_TO
                labels = labels[:, keep]
            reply = self.exchange({nid: VLloydRequest(schema=p.schema, n_cand=n_cand, **common, **step)
                                   for nid, p in self.parties.items()})
            new, costs = blocks.assign(reply.dist, k)
            done = rnd + 1
            settled = labels is not None and (new != labels).sum(axis=0).max() <= SETTLED * len(new)
            labels = new
            self.emit(Event("lloyd", f"{stage} round {done}", self.exchanges))
            if settled:
                break
        return labels, costs, done

    def gaps(self, stage: str, k: int, labels: np.ndarray, where: dict) -> np.ndarray:
        """Summed squared distances between each candidate's centroids, after the update."""
        reply = self.exchange({nid: VLloydRequest(schema=p.schema, stage=stage, k=k, n_cand=labels.shape[1],
                                                  labels=labels, distances=False, gaps=True, **where)
                               for nid, p in self.parties.items()})
        return reply.gaps

    def segments(self, n: int, bound: float) -> tuple[np.ndarray, np.ndarray, int]:
        """Labels (n,) of the chosen model, its centroid gaps (k, k), and Lloyd rounds.

        Fine cells and the k-means++ starts run on a public sample of at most SAMPLE
        positions (all of them below that); the best start is then refined on every
        position, so bytes per round at scale are n x k, not n x starts x k."""
        k, cfg = self.config.k, self.config
        offset = float(max(bound, 10.0 * self.width))
        m = min(n, SAMPLE)
        part = dict(n_shared=n, offset_scale=offset, bound=bound + offset, sample=m if m < n else 0,
                    sample_seed=cfg.seed + 2)
        cells = int(min(max(CELL_FACTOR * k, 64), m // 6))
        fine, _, r1 = self.lloyd("fine", cells, 1, {"from_groups": cfg.seed + 1}, FINE_ROUNDS, part)
        starts = seeding.kmeanspp_starts(self.gaps("fine", cells, fine, part), np.bincount(fine[:, 0], minlength=cells),
                                         k, max(MIN_STARTS, cfg.restarts), self.rng)
        rounds = max(cfg.max_rounds, MIN_MAIN_ROUNDS)
        labels, costs, r2 = self.lloyd("main", k, len(starts), {"init": starts.reshape(-1)}, rounds, part)
        best = int(np.argmin(costs))
        if m == n:
            return labels[:, best], self.gaps("main", k, labels, part)[best * k:(best + 1) * k], r1 + r2
        full = dict(part, sample=0)
        init = {"init": np.arange(best * k, (best + 1) * k), "init_stage": "main"}
        final, _, r3 = self.lloyd("full", k, 1, init, rounds, full)
        return final[:, 0], self.gaps("full", k, final, full), r1 + r2 + r3

    def run(self) -> VerticalResult:
        cfg = self.config
        self.identify()
        if cfg.secure:
            self.start_secure()
        n = self.align()
        self.emit(Event("align", f"{len(self.nodes)} parties aligned their shared customers", self.exchanges))
        coverage = self.cover(n)
        scaler = self.prepare(n)
        bound = self.distance_bound(scaler)
        chosen, gaps, rounds = self.segments(n, bound)
        final, merged = seeding.merge_small(chosen, gaps, cfg.k, cfg.min_segment_size)
        k_out = int(final.max()) + 1
        reply = self.exchange({nid: VProfileRequest(schema=p.schema, start=self.enc_start[nid], width=self.width,
                                                    n_shared=n, k=k_out, labels=final,
                                                    raw_start=self.raw_start[nid], raw_width=self.raw_width,
                                                    bound=max(bound, self._raw_bound()))
                               for nid, p in self.parties.items()})
        sizes = np.bincount(final, minlength=k_out)
        return VerticalResult(scaler=scaler, n_shared=n, labels_k=k_out, sizes=sizes, sums=reply.sums,
                              centroids=reply.encoded / sizes[:, None], merged=merged,
                              lloyd_rounds=rounds, exchanges=self.exchanges, coverage=coverage)

    def _raw_bound(self) -> float:
        if self.secure is None:
            return 0.0
        return max(max(public_bounds.raw_bound(p.schema), 1.0) for p in self.parties.values())


def build_model(run: VerticalRun, result: VerticalResult, version: str) -> VerticalModel:
    """The artifact: per feature its party and scaler, per segment its size and blocks."""
    features, profile_cols = [], []
    for nid in run.nodes:
        p = run.parties[nid]
        for j, name in enumerate(p.schema.encoded_names):
            e = run.enc_start[nid] + j
            features.append(HeldFeature(name=name, party=p.name, mean=float(result.scaler.mean[e]),
                                        scale=float(result.scaler.scale[e])))
            profile_cols.append((p.name, name, run.raw_start[nid] + j))
    means = result.sums / np.maximum(result.sizes, 1)[:, None]
    segments = []
    for s in range(result.labels_k):
        profile: dict[str, dict[str, float]] = {}
        for party, name, col in profile_cols:
            profile.setdefault(party, {})[name] = float(means[s, col])
        segments.append(VerticalSegment(segment=s, size=int(result.sizes[s]), profile=profile,
                                        centroid=[float(v) for v in result.centroids[s]]))
    return VerticalModel(fedseg_version=version, k=result.labels_k, shared_customers=result.n_shared,
                         min_segment_size=run.config.min_segment_size, merged_segments=result.merged,
                         secure=run.secure is not None, lloyd_rounds=result.lloyd_rounds,
                         exchanges=result.exchanges, features=features, segments=segments,
                         coverage=result.coverage)


def run_and_save(run: VerticalRun, out_dir: Path, version: str) -> VerticalModel:
    """The whole run, then model.json and report.md; a stopped run writes nothing."""
    model = build_model(run, run.run(), version)
    save_model(model, out_dir, vertical_reports(model))
    return model
