"""Identity and roster tooling: files, modes, fingerprint, and the node loading them."""

from __future__ import annotations

import hashlib
import stat

from typer.testing import CliRunner

from fedseg.cli.main import cli
from fedseg.client.policy import NodePolicy
from fedseg.client.trust import node_trust
from fedseg.simulations.driver import write_node_identities


def test_identity_and_roster_commands_write_what_a_node_pins(tmp_path):
    runner = CliRunner()
    for name in ("north", "south", "east"):
        done = runner.invoke(cli, ["identity", "--out", str(tmp_path), "--name", name])
        assert done.exit_code == 0, done.output
    assert stat.S_IMODE((tmp_path / "north.id.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "north.id.pub").stat().st_mode) == 0o644
    pubs = sorted(str(p) for p in tmp_path.glob("*.id.pub"))
    done = runner.invoke(cli, ["roster", *pubs, "--out", str(tmp_path / "roster.toml")])
    assert done.exit_code == 0, done.output
    sha = hashlib.sha256((tmp_path / "roster.toml").read_bytes()).hexdigest()  # what `sha256sum` prints
    assert f"roster-sha256 {sha}" in done.output

    trust = node_trust(NodePolicy.model_validate(
        {"identity-key": str(tmp_path / "south.id.key"), "roster": str(tmp_path / "roster.toml"), "roster-sha256": sha}
    ))
    assert trust.name == "south" and set(trust.roster.keys) == {"north", "south", "east"}
    again = runner.invoke(cli, ["identity", "--out", str(tmp_path), "--name", "north"])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output


def test_simulation_gives_every_node_its_own_identity(tmp_path):
    from fedseg.client.policy import node_policy

    write_node_identities(tmp_path, 3)
    names = [node_trust(node_policy({"partition-id": i}, {"data-dir": str(tmp_path)})).name for i in range(3)]
    assert names == ["node-0", "node-1", "node-2"]
