"""The node's checks on a request, against its own policy, before it touches its data.

A deviating server may send any schema, any fixed-point scales, plaintext requests to a
node that wants secure aggregation, or a retry of a round that failed. Each check here
raises `Refused` with one code of the fixed set (`common.messages.FailureCode`) and a
detail for the node's own log; the server only ever sees the code.
"""

from __future__ import annotations

import functools
from pathlib import Path

from fedseg.client.policy import NodePolicy
from fedseg.common.messages import FailureCode, SchemaRequest
from fedseg.common.schema import load_schema
from fedseg.common.schema_pin import schema_fingerprint
from fedseg.common.secure_layout import reply_bounds, tag_scales
from fedseg.common.wire import SecureRoundRequest

_SCALE_RTOL = 1e-12  # scales are powers of two; this only absorbs float noise
FAILED_RUN = "failed-run"  # node-state key: the secure run in which this node already failed


class Refused(Exception):
    """The node will not answer: `code` goes to the server, `detail` only to the node's log."""

    def __init__(self, code: FailureCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@functools.lru_cache(maxsize=8)
def _pinned_file(path: Path, mtime: float) -> str:
    return schema_fingerprint(load_schema(path))


def pinned_fingerprints(policy: NodePolicy) -> set[str]:
    """The fingerprints the node's policy pins (a schema file, a hash, or both)."""
    pins = set()
    if policy.schema_path is not None:
        path = Path(policy.schema_path)
        try:
            pins.add(_pinned_file(path, path.stat().st_mtime))
        except (OSError, ValueError) as exc:  # a missing or broken pin refuses, never unpins
            raise Refused("policy-refused", f"schema-path {path}: {exc}") from None
    if policy.schema_sha256 is not None:
        pins.add(policy.schema_sha256.strip().lower())
    if len(pins) > 1:
        raise Refused("policy-refused", f"schema-path {policy.schema_path} does not have schema-sha256")
    return pins


def check_schema(request: SchemaRequest, policy: NodePolicy) -> None:
    """The request's schema is the pinned one (run-derived fields aside)."""
    pins = pinned_fingerprints(policy)
    if pins and schema_fingerprint(request.schema_) not in pins:
        raise Refused("schema-mismatch", f"request schema {schema_fingerprint(request.schema_)} is not pinned {pins}")


def check_plaintext(request: SchemaRequest, policy: NodePolicy) -> None:
    """A plaintext phase request: only if the policy allows answers without secure aggregation."""
    if policy.require_secure or policy.requires_dp:
        raise Refused("policy-refused", f"plaintext {request.phase} request; policy requires secure aggregation")
    check_schema(request, policy)


def check_scales(req: SecureRoundRequest, policy: NodePolicy, *, frac_bits: int, n_nodes: int) -> None:
    """Fixed-point scales no smaller than the node's own, from the public bounds and its
    own record limit: an honest sum then never overflows, so an overflow is no oracle."""
    own = tag_scales(reply_bounds(req.inner), max_records=policy.max_records, frac_bits=frac_bits,
                     max_nodes=n_nodes)
    for tag in req.round.vectors:
        given = req.scales.get(tag)
        if tag not in own or given is None or not given >= own[tag] * (1 - _SCALE_RTOL):
            raise Refused("bad-request", f"scale of {tag!r}: {given} below the node's {own.get(tag)}")


def check_rows(n_rows: int, policy: NodePolicy) -> None:
    """More customers than the policy's record limit would break the scales it accepts."""
    if n_rows > policy.max_records:
        raise Refused("bad-table", f"table has {n_rows} rows, above max-records {policy.max_records}")


def check_not_failed(state: dict[str, bytes], run_id: str) -> None:
    """After a failure in a secure run the node answers nothing more in that run: a round
    cannot be retried with other parameters as an oracle."""
    if run_id and state.get(FAILED_RUN) == run_id.encode():
        raise Refused("policy-refused", f"run {run_id}: this node already failed in it")


def mark_failed(state: dict[str, bytes], run_id: str) -> None:
    if run_id:
        state[FAILED_RUN] = run_id.encode()
