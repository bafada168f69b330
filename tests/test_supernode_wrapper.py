"""deploy/fedseg-supernode (issue 13, item 6): the SuperNode's crash with exit status 0
(a 401 after a SuperLink restart without --database) becomes a failure a supervisor
restarts; a stop the supervisor asked for stays a clean exit."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

WRAPPER = Path(__file__).resolve().parents[1] / "deploy" / "fedseg-supernode"
CRASH_401 = """#!/bin/sh
echo "grpc._channel._InactiveRpcError: status = StatusCode.UNAUTHENTICATED (401)" >&2
exit 0
"""
RUNS = """#!/bin/sh
trap 'exit 0' TERM
while :; do sleep 0.1; done
"""


def fake(tmp_path: Path, body: str) -> dict[str, str]:
    path = tmp_path / "flower-supernode"
    path.write_text(body)
    path.chmod(0o755)
    return {**os.environ, "FLOWER_SUPERNODE": str(path)}


@pytest.mark.parametrize("exit_line, expected", [("exit 0", 1), ("exit 3", 3)])
def test_an_end_nobody_asked_for_is_a_failure(tmp_path, exit_line, expected):
    env = fake(tmp_path, CRASH_401.replace("exit 0", exit_line))
    done = subprocess.run([str(WRAPPER), "--superlink", "127.0.0.1:1"], env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == expected
    assert "without being asked to stop" in done.stderr and "UNAUTHENTICATED" in done.stderr


def test_a_stop_from_the_supervisor_is_a_clean_exit(tmp_path):
    proc = subprocess.Popen([str(WRAPPER)], env=fake(tmp_path, RUNS), stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "without being asked" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
