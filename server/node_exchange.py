"""How the server talks to the nodes of a run: one request per node, replies checked
(`common/reply_checks`) and summed, in secure mode through the secure channel; nodes
that fail, go silent or send an impossible reply leave the run with a code. The
orchestrator's phases build on it (`server/orchestrator.py`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fedseg.common.config import RunConfig
from fedseg.common.messages import Message, NodeFailure, ReadyReply, SchemaRequest
from fedseg.common.phases import prepare as prepare_phase
from fedseg.common.phases.base import add_replies
from fedseg.common.phases.registry import phase_for
from fedseg.common.reply_checks import ReplyRejected, check_reply
from fedseg.common.schema import FeatureSchema
from fedseg.common.secagg.messages import SecAggError
from fedseg.common.secure_layout import BoundsMissing, require_bounds
from fedseg.common.wire import Reply, Request, ValidateRequest
from fedseg.server.release_policy import ExactRelease, NoisyRelease, ReleasePolicy
from fedseg.server.run_types import Event, RunError, Transport
from fedseg.server.secure_channel import SecureAggregationFailed, SecureChannel


class NodeExchange:
    """The active nodes of a run and the exchanges with them."""

    def __init__(self, config: RunConfig, schema: FeatureSchema, transport: Transport, nodes: list[int],
                 on_event: Callable[[Event], None]) -> None:
        self.config, self.schema, self.transport = config, schema, transport
        self.active = list(nodes)
        self.failures: dict[int, str] = {}
        self.rounds = 0
        self.emit = on_event
        self.secure: SecureChannel | None = None
        self.release: ReleasePolicy = ExactRelease(config)
        self.warm = None
        self.prepared: dict[int, int] = {}  # plaintext: each node's customer count from prepare
        self.n_total: int | None = None  # customers over all nodes, once prepare summed them
        self.phase_nodes: dict[str, list[int]] = {}  # dropout semantics: who each exchange's sum includes

    def exchange(self, request: SchemaRequest) -> Message:
        """One phase request to every active node; the reply summed over the nodes that
        answered (in secure mode the only reply the server sees is that sum). Nodes that
        fail or go silent are dropped."""
        expect = phase_for(request).reply
        if self.secure is None:
            replies = self._checked(request, self._send_each({nid: request for nid in self.active}, expect))
            self.phase_nodes.setdefault(request.phase, []).append(len(replies))
            return add_replies(list(replies.values()))
        noise = self.release.noise(request)
        try:
            summed, active = self.secure.aggregate(request, expect, noise)
        except SecureAggregationFailed as exc:
            raise RunError(f"secure aggregation failed: {exc}") from exc
        for nid in [n for n in self.active if n not in active]:
            self._drop(nid, "left-secure-round")
        self._check_enough()
        try:
            check_reply(request, summed, self._customers(len(self.active), self.n_total), exact=not noise)
        except ReplyRejected as exc:
            raise RunError(f"the secure sum of {exc}; nothing is published (a node sent an impossible "
                           "reply, and a secure sum cannot say which)") from exc
        self.phase_nodes.setdefault(request.phase, []).append(len(active))
        return summed

    def _checked(self, request: SchemaRequest, replies: dict[int, Message]) -> dict[int, Message]:
        """The replies that pass `check_reply`; a node whose reply fails is dropped with
        the check's code, the event naming node, phase and check (never a value)."""
        good: dict[int, Message] = {}
        for nid, reply in replies.items():
            try:
                check_reply(request, reply, self._customers(1, self.prepared.get(nid)))
            except ReplyRejected as exc:
                self._drop(nid, exc.code, f"{exc}")
                continue
            good[nid] = reply
            if isinstance(request, prepare_phase.PrepareRequest):
                self.prepared[nid] = int(reply.count)
        self._check_enough()
        return good

    def _customers(self, nodes: int, prepared: int | None) -> int:
        """Most customers a reply can describe: the prepared count once known, else the
        configured limit per node."""
        return prepared if prepared is not None else nodes * self.config.max_records_per_node

    def _send_each(self, requests: Mapping[int, Request], expect: type) -> dict[int, Reply]:
        """One exchange with per-node requests; returns the replies of type `expect`."""
        self.rounds += 1
        replies = self.transport.send(requests)
        good: dict[int, Reply] = {}
        for nid in requests:
            reply = replies.get(nid)
            if isinstance(reply, expect):
                good[nid] = reply
            elif nid in self.active:
                self._drop(nid, reply.code if isinstance(reply, NodeFailure) else "no-reply")
        self._check_enough()
        return good

    def _check_enough(self) -> None:
        if len(self.active) < self.config.min_nodes:
            raise RunError(
                f"only {len(self.active)} node(s) left, min-nodes is {self.config.min_nodes}; "
                f"failures: {self._failure_text()}"
            )

    def start_secure(self) -> None:
        """Validate tables (reply: ready or a reason), then agree keys once for the run."""
        try:
            require_bounds(self.schema)
        except BoundsMissing as exc:
            raise RunError(str(exc)) from exc
        self.emit(Event("validate", f"validating tables on {len(self.active)} nodes"))
        self._send_each({nid: ValidateRequest(schema=self.schema) for nid in self.active}, ReadyReply)
        channel = SecureChannel(self.config, self._send_each, list(self.active))
        try:
            joined = channel.setup()
        except (SecAggError, SecureAggregationFailed) as exc:
            raise RunError(f"secure aggregation set-up failed: {exc}") from exc
        for nid in [n for n in self.active if n not in joined]:
            self._drop(nid, "no-secure-setup")
        self._check_enough()
        self.secure = channel
        if self.config.dp:
            self.release = NoisyRelease(self.config, self.schema, warm_start=self.warm is not None)
        self.emit(Event("secure", f"keys agreed with {len(joined)} nodes (threshold {channel.server.threshold})", self.rounds))

    def _drop(self, nid: int, code: str, why: str = "") -> None:
        """A node leaves the run; the central team sees its id and code (and which server
        check failed), never node text."""
        self.active.remove(nid)
        self.failures[nid] = code
        text = f"node {nid} left the run: {code}" + (f" ({why})" if why else "")
        self.emit(Event("node-failed", text, self.rounds, {"node": nid, "code": code}))

    def _failure_text(self) -> str:
        return "; ".join(f"node {n}: {r}" for n, r in self.failures.items()) or "none"
