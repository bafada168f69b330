"""What a node does with each request: Flower-free, so it is tested without Flower.

Each handler takes a decoded request and the node's data, calls `common/`, and returns
a reply holding aggregates only. A node whose table fails validation answers with a
`NodeFailure` naming file, column and rows; the server leaves it out.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from client.data import DataError
from common import coreset, kmeans
from common.preprocessing import LocalTable, encode_table, local_prepare_stats
from common.profiles import local_profile_stats
from common.schema import FeatureSchema
from common.wire import (
    BucketCountsReply,
    BucketCountsRequest,
    BucketSumsReply,
    BucketSumsRequest,
    LloydReply,
    LloydRequest,
    NodeFailure,
    PrepareReply,
    PrepareRequest,
    ProfileReply,
    ProfileRequest,
    Reply,
    Request,
    Scaler,
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


def handle(request: Request, data: NodeData) -> Reply:
    """Answer one request; data problems become a `NodeFailure` reply."""
    try:
        return _HANDLERS[type(request)](request, data)
    except DataError as exc:
        return NodeFailure(error=str(exc))


def _prepare(req: PrepareRequest, data: NodeData) -> PrepareReply:
    stats = local_prepare_stats(data.table(req.schema_), req.schema_)
    return PrepareReply(
        count=stats.count, sums=stats.sums, sumsq=stats.sumsq, category_counts=stats.category_counts
    )


def _planes(req: BucketCountsRequest) -> coreset.Hyperplanes:
    return coreset.Hyperplanes(normals=req.normals, offsets=req.offsets)


def _bucket_counts(req: BucketCountsRequest, data: NodeData) -> BucketCountsReply:
    X = data.matrix(req.schema_, req.scaler)
    return BucketCountsReply(counts=coreset.local_bucket_counts(X, _planes(req)))


def _bucket_sums(req: BucketSumsRequest, data: NodeData) -> BucketSumsReply:
    X = data.matrix(req.schema_, req.scaler)
    sums, counts = coreset.local_bucket_sums(X, _planes(req), req.dense)
    return BucketSumsReply(sums=sums, counts=counts)


def _lloyd(req: LloydRequest, data: NodeData) -> LloydReply:
    stats = kmeans.local_stats(data.matrix(req.schema_, req.scaler), req.centroids, req.sizes)
    return LloydReply(
        sums=stats.sums,
        counts=stats.counts,
        inertia=stats.inertia,
        dist=stats.dist,
        silhouette=stats.silhouette,
    )


def _profile(req: ProfileRequest, data: NodeData) -> ProfileReply:
    X = data.matrix(req.schema_, req.scaler)
    stats = local_profile_stats(data.table(req.schema_), req.schema_, X, req.centroids)
    return ProfileReply(
        counts=stats.counts, sums=stats.sums, sumsq=stats.sumsq, category_counts=stats.category_counts
    )


_HANDLERS = {
    PrepareRequest: _prepare,
    BucketCountsRequest: _bucket_counts,
    BucketSumsRequest: _bucket_sums,
    LloydRequest: _lloyd,
    ProfileRequest: _profile,
}
