"""`fedseg simulate` never ignores an option: it applies (`--clients N` on the built-in
synthetic data gives N departments) or the command fails with a clear error before any
simulation starts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fedseg.cli.main import cli
from fedseg.simulations.inputs import simulation_inputs


@pytest.mark.parametrize("args, message", [
    (["--stores", "3"], "--stores only applies to --cdnow"),
    (["--cdnow", "--clients", "3"], "drop --clients"),
    (["--cdnow", "--customers", "3000", "--partition", "iid"], "drop --partition, --customers"),
    (["--data", "x.csv", "--features", "a", "--customers", "3000"], "--customers sizes the built-in synthetic data"),
    (["--id", "cid"], "--id only applies with --features"),
    (["--partition", "column:region", "--clients", "4"], "--clients does not apply to --partition column:region"),
    (["--k", "4", "--k-range", "2:6"], "either --k or --k-range"),
    (["--warm-start", "old.json", "--k-range", "2:6"], "--k-range does not apply"),
    (["--delta", "1e-5"], "--delta only applies with --epsilon"),
    (["--k", "4", "--epsilon", "1", "--restarts", "5"], "--restarts does not apply under --epsilon"),
])
def test_an_option_that_would_be_ignored_is_an_error(tmp_path, args, message):
    done = CliRunner().invoke(cli, ["simulate", *args, "--out", str(tmp_path / "run")])
    assert done.exit_code == 2, done.output
    assert message in " ".join(done.output.split())
    assert not (tmp_path / "run").exists()  # failed before the simulation


@pytest.mark.parametrize("clients", [3, 7])
def test_clients_sets_the_number_of_synthetic_departments(clients):
    frames, _, label = simulation_inputs(None, None, None, "customer_id", None, clients, 700, 1)
    assert len(frames) == clients and "partition column:department" in label
    assert sorted(f["department"].iloc[0] for f in frames) == sorted(f"dept-{i + 1}" for i in range(clients))


def test_clients_splits_synthetic_data_with_an_explicit_department_partition():
    frames, _, _ = simulation_inputs(None, None, None, "customer_id", "column:department", 4, 700, 1)
    assert len(frames) == 4
