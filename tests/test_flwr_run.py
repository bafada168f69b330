"""The README's `flwr run .` on a copy of the app: the Flower app bundle's own code runs
(its `fedseg.__version__` is a marker no installed copy has), `pyproject.toml` is left
byte-identical, the model lands in `runs/flwr/`, `flwr log` shows the run, and the
README's way to find the local SuperLink finds exactly the one this test started, which
is stopped by PID whatever happens."""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest

import fedseg
from fedseg.common.artifact import load_artifact
from fedseg.simulations.local_deployment import BIN, copy_app, free_port, local_superlink_pids, stop_pid

README_FLWR_RUN = 'flwr run . local --federation-config "num-supernodes=5" --stream'
README_SUPERLINK_PIDS = 'pgrep -f "flower-superlink .*${FLWR_HOME:-$HOME/.flwr}/local-superlink/"'
README_STOP_SUPERLINK = f"kill $({README_SUPERLINK_PIDS})"
MARKER = "0.2.0+fab-test"


def flwr_env(home) -> dict[str, str]:
    """A private FLWR_HOME and local SuperLink ports, so ~/.flwr and other runs are untouched."""
    return {
        **os.environ,
        "FLWR_HOME": str(home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",  # the test venv has them; no index needed
        "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(free_port()),
        "FLWR_LOCAL_CONTROL_API_PORT": str(free_port()),
        "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # `flwr` starts `flower-superlink` by name
    }


@pytest.mark.integration
def test_readme_flwr_run_executes_the_fab_and_leaves_pyproject_alone(tmp_path):
    assert MARKER != fedseg.__version__
    app = copy_app(tmp_path, version=MARKER)
    pyproject = (app / "pyproject.toml").read_bytes()
    home = tmp_path / "flwr-home"
    env = flwr_env(home)
    try:
        done = subprocess.run(shlex.split(README_FLWR_RUN), cwd=app, env=env, capture_output=True, text=True,
                              timeout=600, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        run_id = re.search(r"Successfully started run (\d+)", done.stdout).group(1)
        logs = subprocess.run([str(BIN / "flwr"), "log", run_id, "local", "--show"], cwd=app, env=env,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        pids = local_superlink_pids(home)
        pattern = shlex.split(README_SUPERLINK_PIDS.replace("${FLWR_HOME:-$HOME/.flwr}", str(home.resolve())))
        readme_pids = subprocess.run(pattern, capture_output=True, text=True, timeout=10).stdout.split()
    finally:
        for pid in local_superlink_pids(home):
            stop_pid(pid)
    assert len(pids) == 1 and readme_pids == [str(pids[0])]  # the README's command finds exactly it
    assert local_superlink_pids(home) == []
    assert "[fedseg] done: model written to" in logs.stdout, logs.stdout[-2000:]
    model = load_artifact(app / "runs" / "flwr" / "model.json")
    assert model.run.fedseg_version == MARKER  # the bundle's code ran, not the installed copy
    assert model.run.clients == 5
    assert (app / "pyproject.toml").read_bytes() == pyproject
