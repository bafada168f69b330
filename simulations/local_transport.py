"""An in-process transport: every request and reply goes through the wire encoding and
the node handlers, without Flower. Used by tests and quick benchmarks; the Flower
Simulation Engine and the Deployment Engine carry the same bytes."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping

from fedseg.client.handlers import NodeData, handle
from fedseg.client.policy import NodePolicy
from fedseg.common.wire import Reply, Request, decode_reply, decode_request, encode
from fedseg.server.identities import make_federation


def with_identities(policies: Mapping[int, NodePolicy], nodes: list[int], folder: str) -> dict[int, NodePolicy]:
    """Each node's policy, given a federation identity (in `folder`) where it has none."""
    missing = [n for n in nodes if policies.get(n, NodePolicy()).identity_key is None]
    made = make_federation(folder, [f"node-{n}" for n in missing]) if missing else {}
    out = dict(policies)
    for n in missing:
        given = policies.get(n, NodePolicy()).model_dump(by_alias=True, exclude_none=True)
        out[n] = NodePolicy.model_validate({**given, **made[f"node-{n}"]})
    return out


class LocalTransport:
    """Nodes by id, each with its own data; counts the bytes that cross the wire.

    Nodes whose policy has no identity get one of a federation made for this transport
    (`identities=False` leaves them without, so they refuse secure aggregation)."""

    def __init__(self, nodes: Mapping[int, NodeData], policies: Mapping[int, NodePolicy] | None = None,
                 identities: bool = True) -> None:
        self.nodes = dict(nodes)
        self.policies = dict(policies or {})  # each node's own policy (default: the safe floors)
        if identities:
            self._keys = tempfile.TemporaryDirectory(prefix="fedseg-identities-")
            self.policies = with_identities(self.policies, list(self.nodes), self._keys.name)
        self.bytes_down = 0
        self.bytes_up = 0
        self.dead: set[int] = set()
        self.states: dict[int, dict[str, bytes]] = {nid: {} for nid in self.nodes}
        self.received: list[tuple[int, bytes]] = []  # every reply as the server got it
        self.sent: list[Request] = []  # every request, once per exchange

    def send(self, requests: Mapping[int, Request]) -> dict[int, Reply]:
        replies: dict[int, Reply] = {}
        self.sent.extend(list(requests.values())[:1])
        for nid, request in requests.items():
            if nid in self.dead:
                continue
            payload = encode(request)
            self.bytes_down += len(payload)
            answer = encode(handle(decode_request(payload), self.nodes[nid], self.states[nid], nid,
                                 self.policies.get(nid)))
            self.bytes_up += len(answer)
            self.received.append((nid, answer))
            replies[nid] = decode_reply(answer)
        return replies
