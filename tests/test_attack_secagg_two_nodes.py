"""Attack (issue 10, item 6): a secure "sum" over two nodes.

With two nodes the sum minus one's own input is the other's input: each node (and the
server colluding with either) learns the other's aggregates. Driven against the real
node handler, the orchestrator and the CLI.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fedseg.cli.main import cli
from fedseg.client.handlers import handle
from fedseg.common.config import RunConfig
from fedseg.common.messages import NodeFailure
from fedseg.common.secagg.messages import SetupRequest
from fedseg.common.synthetic import generate_customers, synthetic_schema
from fedseg.common.wire import SecureKeysReply, SecureSetupRequest
from fedseg.server.orchestrator import Orchestrator, RunError
from fedseg.simulations.local_transport import LocalTransport
from tests.helpers import frame_nodes


def two_frames():
    df = generate_customers(600, 2, seed=3).drop(columns=["true_segment"])
    return [g.drop(columns=["department"]) for _, g in df.groupby("department")]


def test_node_refuses_a_two_node_secure_cohort():
    """Before: a node accepted `SetupRequest(node_ids=(1, 2), threshold=2)`, advertised its
    keys and went on to mask its replies for a sum its one peer could subtract from."""
    tr = LocalTransport(frame_nodes(two_frames()))
    request = SecureSetupRequest(setup=SetupRequest(run_id="run-2", node_ids=(1, 2), threshold=2))
    for nid in (1, 2):
        reply = handle(request, tr.nodes[nid], tr.states[nid], nid, tr.policies[nid])
        assert isinstance(reply, NodeFailure) and not isinstance(reply, SecureKeysReply)
        assert "cohort-too-small" in reply.model_dump_json()


def test_secure_run_over_two_nodes_stops_before_any_exchange():
    """Before: the run went ahead and released every phase's sum over the two nodes."""
    tr = LocalTransport(frame_nodes(two_frames()))
    with pytest.raises(RunError, match="at least 3 nodes"):
        Orchestrator(RunConfig(k=2, seed=1, secure=True, min_nodes=2), synthetic_schema(), tr, list(tr.nodes)).run()
    assert not any(isinstance(r, SecureSetupRequest) for r in tr.sent)


@pytest.mark.parametrize("mode", [["--secure"], ["--k", "3", "--epsilon", "1"]])
def test_cli_says_secure_runs_need_three_nodes_before_starting(tmp_path, mode):
    """Before: `fedseg simulate --secure --clients 2` started the Simulation Engine."""
    done = CliRunner().invoke(cli, ["simulate", *mode, "--clients", "2", "--customers", "600",
                                    "--out", str(tmp_path / "run")])
    assert done.exit_code == 2, done.output
    assert "at least 3 nodes" in " ".join(done.output.split())
    assert not (tmp_path / "run").exists()
