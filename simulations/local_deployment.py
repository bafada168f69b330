"""Real Flower deployment processes on 127.0.0.1, started and stopped by PID.

Shared by the end-to-end deployment test and `benchmarks.bench_deploy`: a process
registry that stops every process it started (and their children, found through /proc)
by PID, the `flwr`/`fedseg` commands next to this Python, a copy of the app for
`flwr run` (so the working tree is never touched), and the detached local SuperLink
that `flwr run ... local` leaves running, found by its FLWR_HOME.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fedseg.server.identities import make_federation

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def descendants(pid: int) -> list[int]:
    """Every process below pid (SuperExec, ServerApp, ClientApp processes)."""
    tree, out, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _reap(pids: list[int], grace: float = 5.0) -> None:
    """Wait for pids to end (SuperExec watches its parent), then SIGKILL what is left."""
    deadline = time.monotonic() + grace
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop_pid(pid: int) -> None:
    """Stop a process this test did not start as a child (the detached local SuperLink
    of `flwr run`) and everything below it, by PID."""
    below = descendants(pid)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    _reap([pid], grace=10.0)
    _reap(below)


def local_superlink_pids(flwr_home: Path) -> list[int]:
    """The SuperLink `flwr run ... local` started for this FLWR_HOME: it runs detached,
    with its state under FLWR_HOME/local-superlink/ named on its command line."""
    marker = f"{flwr_home.resolve()}/local-superlink/".encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
        except OSError:
            continue
        if b"flower-superlink" in text and marker in text:
            found.append(int(cmdline.parent.name))
    return found


class Processes:
    """Processes started by the test, stopped by PID with their descendants."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed by the process' end
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=self.env, cwd=self.logs)
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        below = descendants(proc.pid)
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        _reap(below)

    def pause(self, name: str, seconds: float) -> None:
        """Freeze a process and everything below it (SIGSTOP) for `seconds`, then resume
        it (SIGCONT): a node whose machine stalls, as a paused VM does."""
        pids = [self.procs[name].pid, *descendants(self.procs[name].pid)]
        _signal_all(pids, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            _signal_all(pids, signal.SIGCONT)

    def stop_all(self) -> None:
        for name in list(self.procs)[::-1]:
            self.stop(name)


def flwr(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "flwr"), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def fedseg(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fedseg.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, stdin=subprocess.DEVNULL, cwd=REPO)


def json_of(proc: subprocess.CompletedProcess) -> dict:
    text = proc.stdout
    start = text.find("{")
    return json.loads(text[start:]) if start >= 0 else {}


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def copy_app(root: Path, version: str | None = None) -> Path:
    """The Flower app (pyproject + packages) in a temp folder: the checkout is never touched.
    With `version`, the copy's `fedseg.__version__` becomes that marker, so a run's
    `model.json` shows whether the copy's code ran or an installed one."""
    app = root / "app"
    app.mkdir()
    shutil.copy2(REPO / "pyproject.toml", app / "pyproject.toml")
    for package in ("fedseg", "common", "client", "server"):
        shutil.copytree(REPO / package, app / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if version is not None:
        init = app / "fedseg" / "__init__.py"
        text, count = re.subn(r'(?m)^__version__ = ".*"$', f'__version__ = "{version}"', init.read_text())
        if count != 1:
            raise ValueError(f"no __version__ line in {init}")
        init.write_text(text)
    return app


def superlink_command(ca_cert: Path, server_cert: Path, server_key: Path, port: int) -> list[str]:
    """`flower-superlink` on 127.0.0.1:port with TLS and SuperNode authentication."""
    return [str(BIN / "flower-superlink"), "--enable-supernode-auth", "--ssl-ca-certfile", str(ca_cert),
            "--ssl-certfile", str(server_cert), "--ssl-keyfile", str(server_key),
            "--host", "127.0.0.1", "--port", str(port), "--disable-runtime-dependency-installation"]


def identity_node_configs(folder: Path, names: list[str]) -> dict[str, str]:
    """Per node name, the `--node-config` fragment with its secure-aggregation identity
    key and the pinned roster of all `names` (DEPLOY.md, B3b)."""
    made = make_federation(folder, names)
    return {name: " ".join(f'{key}="{value}"' for key, value in made[name].items()) for name in names}


def supernode_command(port: int, ca_cert: Path, private_key: Path, node_config: str, *extra: str) -> list[str]:
    """`flower-supernode` dialling the SuperLink on 127.0.0.1:port, on a free local port."""
    return [str(BIN / "flower-supernode"), "--superlink", f"127.0.0.1:{port}", "--root-certificates", str(ca_cert),
            "--auth-supernode-private-key", str(private_key), "--port", str(free_port()),
            "--node-config", node_config, *extra]
