"""What a node does with each request: Flower-free, so it is tested without Flower.

A phase request is answered by its phase's handler (`fedseg.common.phases`, found
through the registry) on the node's data; the secure-mode wrappers mask that reply.
Replies hold aggregates only. A node whose table fails validation answers with a
`NodeFailure` naming file, column and rows; the server leaves it out.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from fedseg.client.data import DataError
from fedseg.client.policy import NodePolicy
from fedseg.client.trust import node_trust
from fedseg.common.messages import NodeFailure, ReadyReply, Scaler
from fedseg.common.phases.registry import phase_for
from fedseg.common.preprocessing import LocalTable, encode_table
from fedseg.common.dp.noise import add_noise_shares
from fedseg.common.schema import FeatureSchema
from fedseg.common.secagg.fixed_point import FixedPointOverflowError
from fedseg.common.secagg.messages import SecAggError
from fedseg.common.secagg.node import SecAggClient
from fedseg.common.secure_layout import flatten, reply_layout
from fedseg.common.wire import (
    Reply,
    Request,
    SecureBroadcastRequest,
    SecureCheckReply,
    SecureCheckRequest,
    SecureKeysReply,
    SecureMaskedReply,
    SecureRoundRequest,
    SecureSetupRequest,
    SecureSharesReply,
    SecureUnmaskReply,
    SecureUnmaskRequest,
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


def handle(request: Request, data: NodeData, state: dict[str, bytes] | None = None, node_id: int = 0,
           policy: NodePolicy | None = None) -> Reply:
    """Answer one request; data and protocol problems become a `NodeFailure` reply.

    `state` keeps the node's secure-aggregation keys between messages (Flower's
    `context.state`); `node_id` is this node's id as the server knows it; `policy` is
    the node's own privacy policy (`client/policy.py`), never the server's word.
    """
    policy = policy or NodePolicy()
    try:
        if type(request) in _SECURE:
            return _SECURE[type(request)](request, data, state if state is not None else {}, node_id, policy)
        return phase_for(request).answer(request, data)
    except (DataError, SecAggError, FixedPointOverflowError) as exc:
        return NodeFailure(error=f"{type(exc).__name__}: {exc}" if not isinstance(exc, DataError) else str(exc))


# ---- secure mode ----------------------------------------------------------------------

_STATE_KEY = "secagg"


def _client(state: dict[str, bytes], policy: NodePolicy) -> SecAggClient:
    if _STATE_KEY not in state:
        raise SecAggError("no secure-aggregation state on this node: set-up did not happen here")
    return SecAggClient.from_bytes(state[_STATE_KEY], trust=node_trust(policy))


def _validate(req: ValidateRequest, data: NodeData, state: dict, node_id: int, policy: NodePolicy) -> ReadyReply:
    data.table(req.schema_)
    return ReadyReply()


def _step(state: dict, client: SecAggClient, step: Callable[[SecAggClient], Any]) -> Any:
    """Run one protocol step and keep the client's new state on the node."""
    out = step(client)
    state[_STATE_KEY] = client.to_bytes()
    return out


def _setup(req: SecureSetupRequest, data: NodeData, state: dict, node_id: int, policy: NodePolicy) -> SecureKeysReply:
    client = SecAggClient(node_id, trust=node_trust(policy))
    return SecureKeysReply(keys=_step(state, client, lambda c: c.advertise_keys(req.setup)))


def _broadcast(req: SecureBroadcastRequest, data: NodeData, state: dict, node_id: int,
               policy: NodePolicy) -> SecureSharesReply:
    return SecureSharesReply(shares=_step(state, _client(state, policy), lambda c: c.share_keys(req.broadcast)))


def _secure_round(req: SecureRoundRequest, data: NodeData, state: dict, node_id: int, policy: NodePolicy) -> Reply:
    reply = phase_for(req.inner).answer(req.inner, data)
    flat = flatten(reply, reply_layout(req.inner), req.scales)
    vectors = {t: v for t, v in flat.items() if t in req.round.vectors}
    vectors = add_noise_shares(vectors, req.noise, req.scales)  # this node's share of the DP noise
    client = _client(state, policy)
    return SecureMaskedReply(masked=_step(state, client, lambda c: c.mask_input(req.round, vectors, noised=bool(req.noise))))


def _secure_check(req: SecureCheckRequest, data: NodeData, state: dict, node_id: int,
                  policy: NodePolicy) -> SecureCheckReply:
    return SecureCheckReply(signature=_step(state, _client(state, policy), lambda c: c.sign_survivors(req.unmask)))


def _secure_unmask(req: SecureUnmaskRequest, data: NodeData, state: dict, node_id: int,
                   policy: NodePolicy) -> SecureUnmaskReply:
    return SecureUnmaskReply(shares=_step(state, _client(state, policy), lambda c: c.unmask(req.unmask)))


_SECURE = {
    ValidateRequest: _validate,
    SecureSetupRequest: _setup,
    SecureBroadcastRequest: _broadcast,
    SecureRoundRequest: _secure_round,
    SecureCheckRequest: _secure_check,
    SecureUnmaskRequest: _secure_unmask,
}
