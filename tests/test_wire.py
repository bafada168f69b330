"""Message encoding: exact round trips, clear errors on malformed bytes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedseg.common.schema import FeatureSchema
from fedseg.common.messages import Scaler
from fedseg.common.phases.lloyd import LloydReply, LloydRequest
from fedseg.common.phases.prepare import PrepareRequest
from fedseg.common.wire import WireError, decode_reply, decode_request, encode

SCHEMA = FeatureSchema.numeric_only("id", ["a", "b"])


def lloyd_request() -> LloydRequest:
    return LloydRequest(
        schema=SCHEMA, scaler=Scaler(mean=np.array([1.5, -2.0]), scale=np.array([0.1, 3.0])),
        centroids=np.array([[0.1, 1e-300], [np.pi, -7.0], [2.0, 2.0]]), sizes=[3],
    )


def test_request_round_trip_is_bit_exact():
    req = lloyd_request()
    back = decode_request(encode(req))
    assert isinstance(back, LloydRequest)
    assert back.centroids.tobytes() == req.centroids.tobytes()
    assert back.sizes == [3] and back.schema_ == SCHEMA


def test_reply_round_trip_keeps_integer_counts():
    rep = LloydReply(sums=np.ones((2, 2)), counts=np.array([3, 2**40]), inertia=np.zeros(2),
                     dist=np.zeros(2), silhouette=np.zeros(2))
    back = decode_reply(encode(rep))
    assert back.counts.dtype == np.int64 and back.counts.tolist() == [3, 2**40]


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda m: m.update(phase="nonsense"), "phase"),
        (lambda m: m.pop("centroids"), "centroids"),
        (lambda m: m["centroids"].update(shape=[5, 2]), "does not match shape"),
        (lambda m: m["centroids"].update(dtype="complex128"), "unsupported array dtype"),
        (lambda m: m["centroids"].update(data="@@@"), "centroids"),
        (lambda m: m.update(protocol="fedseg-wire/0"), "protocol"),
        (lambda m: m.update(extra=1), "extra"),
    ],
)
def test_malformed_requests_fail_clearly(mutate, match):
    raw = json.loads(encode(lloyd_request()))
    mutate(raw)
    with pytest.raises(WireError, match=match):
        decode_request(json.dumps(raw).encode())


def test_garbage_bytes_fail_clearly():
    with pytest.raises(WireError, match="malformed request"):
        decode_request(b"\x00\x01not json")


def test_prepare_request_carries_schema():
    assert decode_request(encode(PrepareRequest(schema=SCHEMA))).schema_ == SCHEMA
