"""The run's output folder: checked before the first exchange, written all or nothing.

A run that cannot write its model must say so before the nodes spend an hour on it,
and a run that fails must never leave a model that looks like its own (issue 13, item
5). So: a probe file before anything else; every file of the run rendered first, then
written to temp files beside their targets and renamed into place only once all of them
are on disk; on failure the temps are removed and `RUN-FAILED.txt` says which files
in the folder are stale (when even that marker cannot be written, the stale model is
removed instead, so nobody takes it for this run's).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

from fedseg.common.artifact import synced_temp

FAILED_MARKER = "RUN-FAILED.txt"
PROBE_BYTES = 64 * 1024  # a model and its reports need more than a few bytes of room


class OutputError(RuntimeError):
    """The output folder cannot take the run's files."""


def probe(out_dir: Path) -> None:
    """Create `out_dir` and write, sync and remove a probe file: fails early, naming the
    folder, when it is read-only, missing its parent's permission or full."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fedseg-probe.", dir=out_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(b"\0" * PROBE_BYTES)
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise OutputError(f"output folder {out_dir} is not writable: {exc.strerror or exc}") from exc


def publish(out_dir: Path, files: Mapping[str, str]) -> None:
    """Write every file (name -> text) or none: temps first, then renames (which need no
    room), then the failure marker of an earlier run goes."""
    temps: dict[str, str] = {}
    try:
        for name, text in files.items():
            temps[name] = _written_temp(out_dir, name, text)
        for name, tmp in list(temps.items()):
            os.replace(tmp, out_dir / name)
            del temps[name]
    except OSError as exc:
        raise OutputError(f"could not write {', '.join(files)} to {out_dir}: {exc.strerror or exc}") from exc
    finally:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
    (out_dir / FAILED_MARKER).unlink(missing_ok=True)


def mark_failed(out_dir: Path, reason: str, outputs: tuple[str, ...]) -> None:
    """Say in the folder that this run failed and that `outputs` found there are older;
    if the marker cannot be written either, remove those outputs."""
    stale = [name for name in outputs if (out_dir / name).exists()]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    text = (f"fedseg run failed at {when}: {reason}\n"
            + (f"stale (from an earlier run): {', '.join(stale)}\n" if stale else "no model was written\n"))
    try:
        publish_marker = _written_temp(out_dir, FAILED_MARKER, text)
        os.replace(publish_marker, out_dir / FAILED_MARKER)
    except OSError:
        for name in stale:
            try:
                (out_dir / name).unlink(missing_ok=True)
            except OSError:
                pass  # a read-only folder: nothing of this run is in it either


def _written_temp(out_dir: Path, name: str, text: str) -> str:
    return synced_temp(out_dir / name, text)
