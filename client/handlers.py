"""What a node does with each request: Flower-free, so it is tested without Flower.

Each handler takes a decoded request and the node's data, calls `common/`, and returns
a reply holding aggregates only. A node whose table fails validation answers with a
`NodeFailure` naming file, column and rows; the server leaves it out.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from fedseg.client.data import DataError
from fedseg.common import coreset, kmeans, quantiles
from fedseg.common.preprocessing import LocalTable, encode_table, local_prepare_stats
from fedseg.common.profiles import local_profile_stats
from fedseg.common.fixed_point import FixedPointOverflowError
from fedseg.common.dp.noise import add_noise_shares, clip_rows
from fedseg.common.schema import FeatureSchema
from fedseg.common.secure_aggregation import SecAggClient, SecAggError
from fedseg.common.secure_layout import flatten, reply_layout
from fedseg.common.wire import (
    BucketCountsReply,
    BucketCountsRequest,
    BucketSumsReply,
    BucketSumsRequest,
    HistogramReply,
    HistogramRequest,
    LloydReply,
    LloydRequest,
    NodeFailure,
    PrepareReply,
    PrepareRequest,
    ProfileReply,
    ProfileRequest,
    ReadyReply,
    Reply,
    Request,
    Scaler,
    SecureBroadcastRequest,
    SecureKeysReply,
    SecureMaskedReply,
    SecureRoundRequest,
    SecureSetupRequest,
    SecureSharesReply,
    SecureUnmaskReply,
    SecureUnmaskRequest,
    TransitionReply,
    TransitionRequest,
    ValidateRequest,
)

TableLoader = Callable[[FeatureSchema], LocalTable]


class NodeData:
    """A node's table, loaded and encoded once and kept for later requests.

    In simulation a Ray actor serves many messages, so the cache saves re-reading; in
    deployment each message is a fresh process and the table is read again.
    """

    _CACHE: OrderedDict[tuple[str, str], LocalTable] = OrderedDict()
    _ENCODED: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()
    _MAX = 64

    def __init__(self, key: str, loader: TableLoader) -> None:
        self.key = key
        self._loader = loader

    def table(self, schema: FeatureSchema) -> LocalTable:
        ck = (self.key, schema.model_dump_json())
        if ck not in self._CACHE:
            self._remember(self._CACHE, ck, self._loader(schema))
        return self._CACHE[ck]

    def matrix(self, schema: FeatureSchema, scaler: Scaler) -> np.ndarray:
        digest = hashlib.sha256(scaler.mean.tobytes() + scaler.scale.tobytes()).hexdigest()
        ck = (self.key, schema.model_dump_json(), digest)
        if ck not in self._ENCODED:
            X = encode_table(self.table(schema), schema, scaler.mean, scaler.scale)
            self._remember(self._ENCODED, ck, X)
        return self._ENCODED[ck]

    @classmethod
    def _remember(cls, cache: OrderedDict, key: tuple, value: object) -> None:
        cache[key] = value
        while len(cache) > cls._MAX:
            cache.popitem(last=False)


def handle(request: Request, data: NodeData, state: dict[str, bytes] | None = None, node_id: int = 0) -> Reply:
    """Answer one request; data and protocol problems become a `NodeFailure` reply.

    `state` keeps the node's secure-aggregation keys between messages (Flower's
    `context.state`); `node_id` is this node's id as the server knows it.
    """
    try:
        if type(request) in _SECURE:
            return _SECURE[type(request)](request, data, state if state is not None else {}, node_id)
        return _HANDLERS[type(request)](request, data)
    except (DataError, SecAggError, FixedPointOverflowError) as exc:
        return NodeFailure(error=f"{type(exc).__name__}: {exc}" if not isinstance(exc, DataError) else str(exc))


def _prepare(req: PrepareRequest, data: NodeData) -> PrepareReply:
    stats = local_prepare_stats(data.table(req.schema_), req.schema_, req.center)
    return PrepareReply(
        count=stats.count, sums=stats.sums, sumsq=stats.sumsq, category_counts=stats.category_counts
    )


def _planes(req: BucketCountsRequest) -> coreset.Hyperplanes:
    return coreset.Hyperplanes(normals=req.normals, offsets=req.offsets)


def _bucket_counts(req: BucketCountsRequest, data: NodeData) -> BucketCountsReply:
    X = data.matrix(req.schema_, req.scaler)
    return BucketCountsReply(counts=coreset.local_bucket_counts(X, _planes(req)))


def _clipped(X: np.ndarray, clip_norm: float) -> np.ndarray:
    """DP: every scaled record shrunk onto the ball of radius `clip_norm` (0 = as is)."""
    return X if clip_norm <= 0 else clip_rows(X, clip_norm)


def _bucket_sums(req: BucketSumsRequest, data: NodeData) -> BucketSumsReply:
    X = data.matrix(req.schema_, req.scaler)
    sums, counts = coreset.local_bucket_sums(X, _planes(req), req.dense, _clipped(X, req.clip_norm))
    return BucketSumsReply(sums=sums, counts=counts)


def _lloyd(req: LloydRequest, data: NodeData) -> LloydReply:
    X = _clipped(data.matrix(req.schema_, req.scaler), req.clip_norm)
    stats = kmeans.local_stats(X, req.centroids, req.sizes)
    return LloydReply(
        sums=stats.sums,
        counts=stats.counts,
        inertia=stats.inertia,
        dist=stats.dist,
        silhouette=stats.silhouette,
    )


def _profile(req: ProfileRequest, data: NodeData) -> ProfileReply:
    X = data.matrix(req.schema_, req.scaler)
    table = data.table(req.schema_)
    stats = local_profile_stats(table, req.schema_, X, req.centroids)
    scores = np.zeros((len(req.centroids), 0))
    if req.score_bins is not None and len(req.score_bins):  # sums of 1-5 scores per segment
        labels = kmeans.assign(X, req.centroids)
        per_customer = quantiles.local_scores(table, req.schema_, req.score_bins)
        scores = np.zeros((len(req.centroids), per_customer.shape[1]))
        np.add.at(scores, labels, per_customer)
    return ProfileReply(
        counts=stats.counts, sums=stats.sums, sumsq=stats.sumsq, category_counts=stats.category_counts,
        scores=scores, histograms=stats.histograms,
    )


def _histogram(req: HistogramRequest, data: NodeData) -> HistogramReply:
    return HistogramReply(counts=quantiles.local_histograms(data.table(req.schema_), req.schema_))


def _transitions(req: TransitionRequest, data: NodeData) -> TransitionReply:
    """Old model's segment vs new segment per customer, counted: (k_old, k_new)."""
    new = kmeans.assign(data.matrix(req.schema_, req.scaler), req.centroids)
    old = kmeans.assign(data.matrix(req.old_schema, req.old_scaler), req.old_centroids)
    k_old, k_new = len(req.old_centroids), len(req.centroids)
    counts = np.bincount(old * k_new + new, minlength=k_old * k_new).reshape(k_old, k_new)
    return TransitionReply(counts=counts.astype(np.int64))


_HANDLERS = {
    PrepareRequest: _prepare,
    BucketCountsRequest: _bucket_counts,
    BucketSumsRequest: _bucket_sums,
    LloydRequest: _lloyd,
    ProfileRequest: _profile,
    HistogramRequest: _histogram,
    TransitionRequest: _transitions,
}


# ---- secure mode ----------------------------------------------------------------------

_STATE_KEY = "secagg"


def _client(state: dict[str, bytes]) -> SecAggClient:
    if _STATE_KEY not in state:
        raise SecAggError("no secure-aggregation state on this node: set-up did not happen here")
    return SecAggClient.from_bytes(state[_STATE_KEY])


def _validate(req: ValidateRequest, data: NodeData, state: dict, node_id: int) -> ReadyReply:
    data.table(req.schema_)
    return ReadyReply()


def _step(state: dict, client: SecAggClient, step: Callable[[SecAggClient], Any]) -> Any:
    """Run one protocol step and keep the client's new state on the node."""
    out = step(client)
    state[_STATE_KEY] = client.to_bytes()
    return out


def _setup(req: SecureSetupRequest, data: NodeData, state: dict, node_id: int) -> SecureKeysReply:
    return SecureKeysReply(keys=_step(state, SecAggClient(node_id), lambda c: c.advertise_keys(req.setup)))


def _broadcast(req: SecureBroadcastRequest, data: NodeData, state: dict, node_id: int) -> SecureSharesReply:
    return SecureSharesReply(shares=_step(state, _client(state), lambda c: c.share_keys(req.broadcast)))


def _secure_round(req: SecureRoundRequest, data: NodeData, state: dict, node_id: int) -> Reply:
    reply = _HANDLERS[type(req.inner)](req.inner, data)
    flat = flatten(reply, reply_layout(req.inner), req.scales)
    vectors = {t: v for t, v in flat.items() if t in req.round.vectors}
    vectors = add_noise_shares(vectors, req.noise, req.scales)  # this node's share of the DP noise
    return SecureMaskedReply(masked=_step(state, _client(state), lambda c: c.mask_input(req.round, vectors)))


def _secure_unmask(req: SecureUnmaskRequest, data: NodeData, state: dict, node_id: int) -> SecureUnmaskReply:
    return SecureUnmaskReply(shares=_step(state, _client(state), lambda c: c.unmask(req.unmask)))


_SECURE = {
    ValidateRequest: _validate,
    SecureSetupRequest: _setup,
    SecureBroadcastRequest: _broadcast,
    SecureRoundRequest: _secure_round,
    SecureUnmaskRequest: _secure_unmask,
}
