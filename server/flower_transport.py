"""Flower's grid behind the orchestrator's `send` interface."""

from __future__ import annotations

import time
from collections.abc import Mapping

from flwr.app import Message
from flwr.serverapp import Grid

from client.records import MESSAGE_TYPE, from_content, to_content
from common.wire import NodeFailure, Reply, Request, WireError, decode_reply, encode


class GridTransport:
    """Sends one message per node through the grid and decodes the replies."""

    def __init__(self, grid: Grid, timeout: float | None = None) -> None:
        self.grid = grid
        self.timeout = timeout
        self.bytes_down = 0
        self.bytes_up = 0

    def send(self, requests: Mapping[int, Request]) -> dict[int, Reply]:
        messages = []
        for nid, request in requests.items():
            payload = encode(request)
            self.bytes_down += len(payload)
            messages.append(Message(to_content(payload), dst_node_id=nid, message_type=MESSAGE_TYPE))
        replies: dict[int, Reply] = {}
        for reply in self.grid.send_and_receive(messages, timeout=self.timeout):
            nid = reply.metadata.src_node_id
            if reply.has_error():
                replies[nid] = NodeFailure(error=f"node error: {reply.error.reason}")
                continue
            try:
                payload = from_content(reply.content)
                self.bytes_up += len(payload)
                replies[nid] = decode_reply(payload)
            except WireError as exc:
                replies[nid] = NodeFailure(error=str(exc))
        return replies


def wait_for_nodes(grid: Grid, min_nodes: int, timeout: float = 120.0) -> list[int]:
    """Node ids once at least `min_nodes` are connected (deployment nodes join over time)."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= min_nodes or time.monotonic() > deadline:
            return nodes
        time.sleep(1.0)
