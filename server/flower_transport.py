"""Flower's grid behind the orchestrator's `send` interface."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from flwr.app import Message
from flwr.serverapp import Grid

from fedseg.client.records import MESSAGE_TYPE, from_content, to_content
from fedseg.common.messages import NodeFailure
from fedseg.common.wire import Reply, Request, WireError, decode_reply, encode


POLL_INTERVAL_S = 0.2  # longest wait between pulls; Flower's own send_and_receive sleeps 3 s
FIRST_POLL_S = 0.005  # shortest wait: an in-process exchange takes milliseconds
POLL_FRACTION = 0.05  # wait at most this share of the time already waited: ≤ 5 % late


def send_and_receive(grid: Grid, messages: Iterable[Message], timeout: float | None,
                     poll_interval: float = POLL_INTERVAL_S) -> list[Message]:
    """`Grid.send_and_receive`, but pulling replies after a wait of 5 % of the time
    waited so far (5 ms at least, `poll_interval` at most): an exchange is noticed at most
    5 % (or 5 ms) after its last reply. With Flower's fixed 3 s a deployed round waits up
    to 3 s after the last reply arrived; with waits that double, a simulated exchange
    that just misses a pull also misses the simulation engine's next 0.1 s dispatch."""
    pending = set(grid.push_messages(messages))
    deadline = None if timeout is None else time.monotonic() + timeout
    replies: list[Message] = []
    started = time.monotonic()
    while pending:
        pulled = list(grid.pull_messages(pending))
        replies.extend(pulled)
        pending -= {m.metadata.reply_to_message_id for m in pulled}
        if not pending or (deadline is not None and time.monotonic() >= deadline):
            break
        waited = time.monotonic() - started
        time.sleep(min(poll_interval, max(FIRST_POLL_S, POLL_FRACTION * waited)))
    return replies


class GridTransport:
    """Sends one message per node through the grid and decodes the replies."""

    def __init__(self, grid: Grid, timeout: float | None = None, poll_interval: float = POLL_INTERVAL_S) -> None:
        self.grid = grid
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.bytes_down = 0
        self.bytes_up = 0

    def send(self, requests: Mapping[int, Request]) -> dict[int, Reply]:
        messages = []
        for nid, request in requests.items():
            payload = encode(request)
            self.bytes_down += len(payload)
            messages.append(Message(to_content(payload), dst_node_id=nid, message_type=MESSAGE_TYPE))
        replies: dict[int, Reply] = {nid: NodeFailure(code="timeout") for nid in requests}  # until it answers
        for reply in send_and_receive(self.grid, messages, self.timeout, self.poll_interval):
            nid = reply.metadata.src_node_id
            if reply.has_error():
                replies[nid] = NodeFailure(code="node-error")  # its reason may carry node text: not kept
                continue
            try:
                payload = from_content(reply.content)
                self.bytes_up += len(payload)
                replies[nid] = decode_reply(payload)
            except WireError:
                replies[nid] = NodeFailure(code="bad-reply")
        return replies


def wait_for_nodes(grid: Grid, min_nodes: int, timeout: float = 120.0) -> list[int]:
    """Node ids once at least `min_nodes` are connected (deployment nodes join over time)."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= min_nodes or time.monotonic() > deadline:
            return nodes
        time.sleep(1.0)
