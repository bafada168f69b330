"""An in-process transport: every request and reply goes through the wire encoding and
the node handlers, without Flower. Used by tests and quick benchmarks; the Flower
Simulation Engine and the Deployment Engine carry the same bytes."""

from __future__ import annotations

from collections.abc import Mapping

from client.handlers import NodeData, handle
from common.wire import Reply, Request, decode_reply, decode_request, encode


class LocalTransport:
    """Nodes by id, each with its own data; counts the bytes that cross the wire."""

    def __init__(self, nodes: Mapping[int, NodeData]) -> None:
        self.nodes = dict(nodes)
        self.bytes_down = 0
        self.bytes_up = 0
        self.dead: set[int] = set()

    def send(self, requests: Mapping[int, Request]) -> dict[int, Reply]:
        replies: dict[int, Reply] = {}
        for nid, request in requests.items():
            if nid in self.dead:
                continue
            payload = encode(request)
            self.bytes_down += len(payload)
            answer = encode(handle(decode_request(payload), self.nodes[nid]))
            self.bytes_up += len(answer)
            replies[nid] = decode_reply(answer)
        return replies
