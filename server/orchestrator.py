"""The phases of a federated segmentation run, driven through a small `send` interface.

The orchestrator knows nothing of Flower: `Transport.send` takes one request per node
and returns the replies that came back. The ServerApp wraps Flower's grid in it; tests
wrap the node handlers directly, so a whole run is testable in-process.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from fedseg.common import coreset, disclosure, kmeans
from fedseg.common.artifact import ModelArtifact
from fedseg.common.config import RunConfig
from fedseg.common.messages import Scaler
from fedseg.common.metrics import Criteria
from fedseg.common.phases import lloyd as lloyd_phase
from fedseg.common.phases import prepare as prepare_phase
from fedseg.common.phases import profile as profile_phase
from fedseg.common.phases.bucket_counts import BucketCountsRequest
from fedseg.common.phases.bucket_sums import BucketSumsRequest
from fedseg.common.profiles import ProfileStats
from fedseg.common.quantiles import FeatureQuantiles, robust_scaler, score_edge_bins
from fedseg.common.schema import FeatureSchema
from fedseg.server import coverage_phase, psi_phase, quantile_phase, warm_start
from fedseg.server.disclosure import release_segments
from fedseg.server.node_exchange import NodeExchange
from fedseg.server.run_types import Candidate, Event, RunError, RunResult, Transport  # noqa: F401 (re-exported)


class Orchestrator(NodeExchange):
    """Run the phases of a run (ARCHITECTURE.md, "A run, phase by phase") against whichever nodes answer."""

    def __init__(
        self,
        config: RunConfig,
        schema: FeatureSchema,
        transport: Transport,
        nodes: list[int],
        on_event: Callable[[Event], None] = lambda e: None,
        warm: ModelArtifact | None = None,
    ) -> None:
        super().__init__(config, quantile_phase.with_as_of(schema, config.as_of), transport, nodes, on_event)
        self.warm = warm
        self.quantiles: list[FeatureQuantiles] = []
        self.rng = np.random.default_rng(config.seed)
        self.lloyd_rounds = 0
        self.coverage: dict | None = None
        self._coverage_total = None  # summed coverage counts, published once the schema is final
        self.dedup: dict | None = None

    # ---- phases -------------------------------------------------------------------

    def run(self) -> RunResult:
        self._check_extensions()
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if self.config.secure_mode:
            self.start_secure()
            timings["secure_setup"] = time.perf_counter() - t0
        if self.config.dedup:
            self.deduplicate()
        self.count_coverage()
        if self.schema.quantile_indices:
            self.federated_quantiles()
        scaler, n = self.prepare()
        timings["preprocessing"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        core = self.initialise(scaler, n)
        candidates = self.seed(core)
        timings["initialization"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        candidates = self.lloyd(scaler, candidates, core)
        lloyd_rounds = self.lloyd_rounds
        timings["lloyd"] = time.perf_counter() - t2
        chosen, table = self.select(candidates)
        t3 = time.perf_counter()
        chosen, profile, merged = self.release_segments(scaler, chosen)
        changes = self.segment_changes(scaler, chosen) if self.warm is not None else None
        timings["profiling"] = time.perf_counter() - t3
        timings["total"] = time.perf_counter() - t0
        return RunResult(
            scaler, n, chosen, table, profile, list(self.active), dict(self.failures),
            self.rounds, lloyd_rounds, timings, self.release.privacy_section(),
            self.schema, self.quantiles, changes, merged, self.release.profile_noise(), dict(self.phase_nodes),
            self.coverage, self.dedup,
        )

    def _check_extensions(self) -> None:
        """Warm-start model fits the schema (under DP every release is budgeted)."""
        try:
            if self.warm is not None:
                warm_start.check_compatible(self.warm, self.schema, self.config.warm_start or "warm-start model")
        except ValueError as exc:
            raise RunError(str(exc)) from exc

    def count_coverage(self) -> None:
        """Gaps, clipped and dropped values per feature (not under DP: no budget for them);
        features with gaps get the federated median from the histogram phase next."""
        if self.config.dp:
            self.coverage = coverage_phase.not_released()
            return
        self.emit(Event("coverage", f"gaps and out-of-range values counted on {len(self.active)} nodes"))
        total, self.schema = coverage_phase.run_coverage(self.exchange, self.schema)
        self._coverage_total = total
    def deduplicate(self) -> None:
        """Private set intersection of ids: later phases count each shared customer once."""
        self.emit(Event("dedup", f"private set intersection of customer ids on {len(self.active)} nodes"))
        try:
            self.dedup = psi_phase.deduplicate(self._send_each, self.exchange, self.schema, self.config,
                                               lambda: list(self.active))
        except psi_phase.PsiFailed as exc:
            raise RunError(str(exc)) from exc
        self._check_enough()
        self.emit(Event("dedup", f"shared customers counted once ({self.dedup['units']} units)", self.rounds))

    def federated_quantiles(self) -> None:
        """Global quantiles from summed histograms; later requests carry the winsor limits."""
        self.emit(Event("quantiles", f"histograms over public bins from {len(self.active)} nodes"))
        self.quantiles, self.schema = quantile_phase.run_quantiles(self.exchange, self.schema,
                                                                       gaps_counted=not self.config.dp)
        self.emit(Event("quantiles", f"quantiles of {len(self.quantiles)} features", self.rounds))

    def segment_changes(self, scaler: Scaler, chosen: Candidate) -> dict:
        """Customers whose segment changed since the warm-start model (sum over nodes)."""
        req = warm_start.transition_request(self.warm, self.schema, scaler, chosen.centroids)
        counts = self.exchange(req).counts
        same_ids = chosen.k == self.warm.k and self.config.k in (0, self.warm.k)
        match = warm_start.segment_matching(warm_start.mapped_centroids(self.warm, scaler), chosen.centroids, same_ids)
        self.emit(Event("drift", "segment changes counted on the nodes", self.rounds))
        return warm_start.changes_section(counts, match, self.warm, self.config.warm_start or "warm-start model",
                                          self.config.min_segment_size, noisy=self.release.noisy)

    def prepare(self) -> tuple[Scaler, int]:
        """Validate every table and build the global scaler from summed statistics."""
        self.emit(Event("prepare", f"preprocessing sums from {len(self.active)} nodes"))
        center = self.release.prepare_center()
        total = prepare_phase.stats(self.exchange(prepare_phase.PrepareRequest(schema=self.schema, center=center)))
        self.n_total = int(total.count)
        need = max(self.config.k_values) * self.config.min_segment_size
        if total.count < need:
            raise RunError(
                f"{total.count} customers over all nodes are too few for k={max(self.config.k_values)} "
                f"with min-segment-size {self.config.min_segment_size} (need {need})"
            )
        try:
            disclosure.check_quantile_levels(self.schema, total.count, self.config.min_segment_size)
        except ValueError as exc:
            raise RunError(str(exc)) from exc
        # robust features take median/IQR of the (under DP noisy) histograms
        stats = self.release.scaler(total, center)
        mean, scale = robust_scaler(self.schema, self.quantiles, *stats)
        self.emit(Event("prepare", f"{total.count} customers on {len(self.active)} nodes", self.rounds))
        if self.coverage is None and self._coverage_total is not None:  # final schema
            self.coverage = coverage_phase.coverage_section(self._coverage_total, self.schema,
                                                            self.config.min_segment_size)
        self.scaler = Scaler(mean=mean, scale=scale)
        return self.scaler, total.count

    def initialise(self, scaler: Scaler, n: int) -> coreset.Coreset:
        """Counts per hash bucket, then sums of the dense buckets only → coreset."""
        tables, bits = self.release.coreset_shape(n, self.config.init_tables, self.config.init_bits)
        planes = coreset.draw_hyperplanes(len(scaler.mean), tables, bits, self.rng)
        req = BucketCountsRequest(
            schema=self.schema, scaler=scaler, normals=planes.normals, offsets=planes.offsets
        )
        counts = self.exchange(req).counts
        floor = self._min_count("bucket_counts", self.config.min_segment_size)
        k_max = max(self.config.k_values)
        planes, counts = self._fewer_planes(planes, counts, floor, k_max)
        dense = coreset.dense_buckets(counts, floor)
        sums_req = BucketSumsRequest(schema=self.schema, scaler=scaler, normals=planes.normals, offsets=planes.offsets,
                                     dense=dense, clip_norm=self.release.clip_norm)
        summed = self.exchange(sums_req)  # counts again, so a node lost in between leaves no bias
        keep = coreset.reliable_buckets(summed.counts, self._min_count("bucket_sums", 1), k_max)
        core = coreset.build_coreset(summed.sums[keep], summed.counts[keep])
        self.emit(Event("init", f"coreset of {len(dense)} dense buckets", self.rounds))
        if len(core.points) < k_max:
            self.emit(Event("init", f"only {len(core.points)} coreset points for k={k_max}: the other seeds are "
                                    "drawn around them (a larger budget or more customers give a better start)"))
            core = coreset.padded(core, k_max, self.rng)
        return core

    def _fewer_planes(self, planes: coreset.Hyperplanes, counts: np.ndarray, floor: float,
                      k_max: int) -> tuple[coreset.Hyperplanes, np.ndarray]:
        """Few customers per bucket: drop hyperplanes (merging bucket counts exactly, no
        new exchange) until `DENSE_PER_SEGMENT` dense buckets per segment remain."""
        tables, bits, _ = planes.normals.shape
        used = coreset.finest_bits(counts, tables, bits, floor, coreset.DENSE_PER_SEGMENT * k_max)
        if used == bits:
            return planes, counts
        self.emit(Event("init", f"{used} hyperplanes per table instead of {bits}: few customers per bucket"))
        return coreset.truncated(planes, used), coreset.coarsened_counts(counts, tables, bits, used)

    def seed(self, core: coreset.Coreset) -> list[Candidate]:
        """Candidates per k from weighted k-means on the coreset (server-side, aggregates);
        a warm start uses the old model's centroids instead (k fixed unless another is given)."""
        if self.warm is not None and self.config.k in (0, self.warm.k):
            return [Candidate(self.warm.k, warm_start.mapped_centroids(self.warm, self.scaler))]
        out: list[Candidate] = []
        for k in self.config.k_values:
            restarts = self.release.restarts()
            try:
                found = coreset.seed_candidates(core, k, restarts, self.config.seed)
            except ValueError as exc:
                raise RunError(str(exc)) from exc
            out += [Candidate(k, c) for c in found]
        return out

    def lloyd(
        self, scaler: Scaler, cands: list[Candidate], core: coreset.Coreset
    ) -> list[Candidate]:
        """Lloyd rounds over the stack of unconverged candidates."""
        tol = self.config.tol * float(np.mean(np.where(scaler.scale == 1.0, 0.0, 1.0)))
        history: dict[int, list[np.ndarray]] = {}  # centroids after each round, per candidate
        for rnd in range(1, self.config.max_rounds + 1):
            todo = [i for i, c in enumerate(cands) if not c.converged]
            if not todo:
                break
            self.lloyd_rounds = rnd
            sizes = [cands[i].k for i in todo]
            stack = np.vstack([cands[i].centroids for i in todo])
            req = lloyd_phase.LloydRequest(schema=self.schema, scaler=scaler, centroids=stack, sizes=sizes,
                               clip_norm=self.release.clip_norm)
            stats = lloyd_phase.stats(self.exchange(req))
            offs = kmeans.offsets_of(sizes)
            for j, i in enumerate(todo):
                part = _slice(stats, offs[j], offs[j + 1])
                cands[i] = self._step(cands[i], part, core, tol)
                history.setdefault(i, []).append(cands[i].centroids)
            self._report_round(rnd, cands)
        return self.release.averaged(cands, history)

    def _min_count(self, phase: str, floor: float) -> float:
        """Counts below this are noise (DP: 3σ of the count noise) or below the floor."""
        return self.release.min_count(phase, floor)

    def _step(self, cand: Candidate, part: kmeans.ClusterStats, core: coreset.Coreset, tol: float) -> Candidate:
        empty = part.counts < self._min_count("lloyd", 1)
        if empty.any():
            part = dataclasses.replace(part, counts=np.where(empty, 0, part.counts))
        reseed = None
        if empty.any():
            reseed = cand.centroids.copy()
            reseed[empty] = coreset.farthest_coreset_points(core, cand.centroids, int(empty.sum()))
        new = kmeans.update_centroids(part, cand.centroids, reseed)
        shift = float(kmeans.centroid_shift(cand.centroids, new, [cand.k])[0])
        return Candidate(cand.k, new, converged=shift <= tol and not empty.any(), stats=part, evaluated=cand.centroids)

    def _report_round(self, rnd: int, cands: list[Candidate]) -> None:
        """Progress of one round. Exact runs: converged candidates and the best inertia
        per k. Under DP no inertia is released and a noisy shift never meets the
        tolerance, so the line says how far the centroids moved (from released sums)."""
        if self.release.noisy:
            moved = max(float(np.sqrt(np.square(c.centroids - c.evaluated).sum(axis=1)).mean()) for c in cands)
            self.emit(Event("lloyd", f"round {rnd}/{self.config.max_rounds} (DP: a fixed number of noisy rounds); "
                                     f"centroids moved {moved:.3f} on average", rnd,
                            {"noisy": True, "moved": moved, "candidates": len(cands)}))
            return
        best: dict[int, float] = {}
        for c in cands:
            best[c.k] = min(best.get(c.k, np.inf), float(c.stats.inertia.sum()))
        done = sum(c.converged for c in cands)
        self.emit(Event("lloyd", f"round {rnd}: {done}/{len(cands)} candidates converged", rnd,
                        {"inertia": best, "converged": done, "candidates": len(cands)}))

    def select(self, cands: list[Candidate]) -> tuple[Candidate, list[Criteria]]:
        """The final candidate and the per-k criteria behind it, as the release policy
        allows (under DP no criteria are released)."""
        picked = self.release.select(cands)
        self.emit(Event("select", picked.reason, self.rounds))
        return picked.candidate, picked.table

    def release_segments(self, scaler: Scaler, chosen: Candidate) -> tuple[Candidate, ProfileStats, int]:
        """Profiles of the segments that reach min-segment-size; smaller ones are merged
        into their nearest segment first (`server/disclosure.py`)."""
        size, k0 = self.config.min_segment_size, chosen.k
        profile = lambda c: self.profile(scaler, Candidate(len(c), c))  # noqa: E731
        try:
            kept, stats = release_segments(chosen.centroids, profile, size, self.release.noisy)
        except ValueError as exc:
            raise RunError(str(exc)) from exc
        if len(kept) < k0:
            self.emit(Event("disclosure", f"{k0 - len(kept)} segment(s) below min-segment-size {size} merged into "
                                          f"their nearest segment: {len(kept)} segments released", self.rounds))
        return Candidate(len(kept), kept, chosen.converged), stats, k0 - len(kept)

    def profile(self, scaler: Scaler, chosen: Candidate) -> ProfileStats:
        edges = score_edge_bins(self.schema, self.quantiles) if self.schema.score_indices else None
        limits = self.spread_limits(scaler, chosen.centroids) if self.release.noisy else None
        req = profile_phase.ProfileRequest(schema=self.schema, scaler=scaler, centroids=chosen.centroids,
                                           score_bins=edges, limits=limits)
        stats = profile_phase.stats(self.exchange(req), req)
        self.emit(Event("profile", f"profiles of {chosen.k} segments", self.rounds))
        return stats


    def spread_limits(self, scaler: Scaler, centroids: np.ndarray) -> np.ndarray:
        """DP: the segments' spread first, then clip limits that fit it (PRIVACY.md)."""
        planner = self.release.planner
        req = planner.spread_request(self.schema, self.quantiles, scaler, centroids)
        return planner.spread_limits(req, self.exchange(req))


def _slice(stats: kmeans.ClusterStats, start: int, stop: int) -> kmeans.ClusterStats:
    return kmeans.ClusterStats(
        stats.sums[start:stop], stats.counts[start:stop], stats.inertia[start:stop],
        stats.dist[start:stop], stats.silhouette[start:stop],
    )
