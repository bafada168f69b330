"""Bounded waits (issue 13, item 2): an exchange never waits past `exchange-timeout`;
a node that has not answered by then is recorded as `timeout` and dropped."""

from __future__ import annotations

import time
from unittest.mock import Mock

import pytest
from flwr.serverapp import Grid

from fedseg.common.config import ConfigError, RunConfig
from fedseg.common.messages import NodeFailure
from fedseg.common.phases.prepare import PrepareRequest
from fedseg.server.flower_transport import GridTransport
from tests.helpers import numeric_schema


def test_a_node_that_never_answers_is_a_timeout_after_the_deadline(monkeypatch):
    monkeypatch.setattr("fedseg.server.flower_transport.Message", Mock())  # outside a run: no run id
    grid = Mock(spec=Grid)
    grid.push_messages.side_effect = lambda messages: [f"m{i}" for i, _ in enumerate(messages)]
    grid.pull_messages.return_value = []  # nobody ever answers
    transport = GridTransport(grid, timeout=0.3, poll_interval=0.05)
    started = time.monotonic()
    replies = transport.send({4: PrepareRequest(schema=numeric_schema(2)), 7: PrepareRequest(schema=numeric_schema(2))})
    waited = time.monotonic() - started
    assert replies == {4: NodeFailure(code="timeout"), 7: NodeFailure(code="timeout")}
    assert 0.3 <= waited < 1.5


def test_the_deadline_is_a_run_config_key_with_a_default():
    assert RunConfig().exchange_timeout == 300.0
    assert RunConfig.from_flower({"exchange-timeout": 12.5}).exchange_timeout == 12.5
    with pytest.raises(ConfigError, match="exchange-timeout"):
        RunConfig.from_flower({"exchange-timeout": 0})
