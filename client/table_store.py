"""A deployed node's validated table kept on its own disk for the rest of the run.

Why: in deployment every message starts a fresh ClientApp process; without this each
one re-read, re-validated and re-encoded the whole table (17-19 s per message for 1M
customers from SQLite). Here the first message of a run saves the validated arrays (and
the encoded matrix once the scaler is known) as `.npy` files; later messages load them.

Safety: the folder is created 0700 and files 0600, and it is used only when it belongs
to this user and nobody else can read it (else the node reads the table every message,
as before). One sub-folder per run and table (named by a hash of both). A run's arrays
are removed when the node fails in the run or the run ends (`RunEndRequest`), and by a
sweep at every message: run folders idle for `IDLE_SECONDS` go, and the oldest runs go
first when the folder would outgrow its size bound. A run folder keeps its table
fingerprint (sizes, times and hashes only, no values) until the sweep, so a server that
asks again after a refusal meets the same refusal.

Node config: `table-cache-dir` (default `~/.cache/fedseg/tables`), `table-cache-max-gb`
(default 8), `table-cache="off"` to read the table at every message.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fedseg.client.fingerprint import Fingerprint
from fedseg.common.preprocessing import LocalTable
from fedseg.common.table_policy import Coverage, RowDefects

IDLE_SECONDS = 6 * 3600
DEFAULT_MAX_GB = 8.0
_FINGERPRINT = "fingerprint.json"
COVERAGE_ARRAYS = ("missing", "imputed", "dropped", "clipped")
log = logging.getLogger("fedseg.client")


class TableStore:
    """Run folders under one private root; every method is best effort except the
    fingerprint, which the node needs to refuse a changed table."""

    def __init__(self, root: Path, max_bytes: int, idle_seconds: float = IDLE_SECONDS) -> None:
        self.root, self.max_bytes, self.idle_seconds = root, max_bytes, idle_seconds

    @classmethod
    def for_node(cls, node_config: Mapping[str, Any]) -> TableStore | None:
        """The node's store, or None when switched off or the folder is not private."""
        if str(node_config.get("table-cache", "on")).lower() in ("off", "false", "0"):
            return None
        default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fedseg" / "tables"
        root = Path(str(node_config.get("table-cache-dir") or default)).expanduser()
        max_bytes = int(float(node_config.get("table-cache-max-gb", DEFAULT_MAX_GB)) * 2**30)
        if not _private_folder(root):
            return None
        store = cls(root, max_bytes)
        store.sweep()
        return store

    def folder(self, run: str, key: str) -> Path:
        return self.root / hashlib.sha256(f"{run}\n{key}".encode()).hexdigest()[:32]

    # ---- fingerprint -------------------------------------------------------------

    def fingerprint(self, run: str, key: str) -> Fingerprint | None:
        path = self.folder(run, key) / _FINGERPRINT
        return Fingerprint.model_validate_json(path.read_bytes()) if path.is_file() else None

    def save_fingerprint(self, run: str, key: str, fingerprint: Fingerprint) -> None:
        folder = self.folder(run, key)
        folder.mkdir(mode=0o700, exist_ok=True)
        _write(folder / _FINGERPRINT, lambda fh: fh.write(fingerprint.model_dump_json().encode()))

    # ---- arrays ------------------------------------------------------------------

    def load_table(self, run: str, key: str, schema_digest: str) -> LocalTable | None:
        arrays = {name: self._load(run, key, f"{schema_digest}-{name}") for name in ("ids", "numeric", "codes")}
        if any(a is None for a in arrays.values()):
            return None
        gaps, clipped = (self._load(run, key, f"{schema_digest}-defects-{n}") for n in ("gaps", "clipped"))
        defects = RowDefects(gaps, clipped) if gaps is not None and clipped is not None else None
        return LocalTable(**arrays, coverage=self._load_coverage(run, key, schema_digest), defects=defects)

    def save_table(self, run: str, key: str, schema_digest: str, table: LocalTable) -> None:
        for name in ("ids", "numeric", "codes"):
            self._save(run, key, f"{schema_digest}-{name}", getattr(table, name))
        if table.coverage is not None:  # the gap and clip counts travel with the table
            c = table.coverage
            for name in COVERAGE_ARRAYS:
                self._save(run, key, f"{schema_digest}-coverage-{name}", np.asarray(getattr(c, name)))
            self._save(run, key, f"{schema_digest}-coverage-rows", np.array([c.rows, c.kept], dtype=np.int64))
        if table.defects is not None:
            self._save(run, key, f"{schema_digest}-defects-gaps", table.defects.gaps)
            self._save(run, key, f"{schema_digest}-defects-clipped", table.defects.clipped)

    def _load_coverage(self, run: str, key: str, schema_digest: str) -> Coverage | None:
        rows = self._load(run, key, f"{schema_digest}-coverage-rows")
        if rows is None:
            return None
        arrays = {name: self._load(run, key, f"{schema_digest}-coverage-{name}") for name in COVERAGE_ARRAYS}
        return None if any(a is None for a in arrays.values()) else Coverage(int(rows[0]), int(rows[1]), **arrays)

    def load_matrix(self, run: str, key: str, digest: str) -> np.ndarray | None:
        return self._load(run, key, f"matrix-{digest}")

    def save_matrix(self, run: str, key: str, digest: str, matrix: np.ndarray) -> None:
        """Only the latest scaler's matrix is kept (a run has one scaler)."""
        for old in self.folder(run, key).glob("matrix-*.npy"):
            old.unlink(missing_ok=True)
        self._save(run, key, f"matrix-{digest}", matrix)

    def _load(self, run: str, key: str, name: str) -> np.ndarray | None:
        path = self.folder(run, key) / f"{name}.npy"
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        os.utime(path.parent)  # in use: the idle sweep leaves it
        return value

    def _save(self, run: str, key: str, name: str, array: np.ndarray) -> None:
        folder = self.folder(run, key)
        if not self._make_room(array.nbytes, keep=folder):
            log.warning("fedseg: table cache %s is full (bound %.1f GiB): the table is read again next message",
                        self.root, self.max_bytes / 2**30)
            return
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            _write(folder / f"{name}.npy", lambda fh: np.save(fh, array, allow_pickle=False))
        except OSError as exc:  # a full disk costs speed, never the answer
            log.warning("fedseg: could not cache the table in %s (%s): it is read again next message",
                        self.root, exc.strerror)

    # ---- clean-up ----------------------------------------------------------------

    def drop_arrays(self, run: str, key: str) -> None:
        """The run's arrays go; its fingerprint stays until the sweep."""
        self.drop_arrays_in(self.folder(run, key))

    def sweep(self, now: float | None = None) -> None:
        """Remove run folders idle for longer than `idle_seconds`."""
        now = time.time() if now is None else now
        for folder in self._runs():
            if now - folder.stat().st_mtime > self.idle_seconds:
                shutil.rmtree(folder, ignore_errors=True)

    def _runs(self) -> list[Path]:
        return [p for p in self.root.iterdir() if p.is_dir() and not p.is_symlink()]

    def _make_room(self, nbytes: int, keep: Path) -> bool:
        """Evict other runs' arrays, oldest first, until `nbytes` more fit."""
        if nbytes > self.max_bytes:
            return False
        sizes = {f: sum(p.stat().st_size for p in f.glob("*.npy")) for f in self._runs()}
        total = sum(sizes.values())
        for folder in sorted((f for f in sizes if f != keep), key=lambda f: f.stat().st_mtime):
            if total + nbytes <= self.max_bytes:
                break
            self.drop_arrays_in(folder)
            total -= sizes[folder]
        return total + nbytes <= self.max_bytes

    @staticmethod
    def drop_arrays_in(folder: Path) -> None:
        for path in folder.glob("*.npy"):
            path.unlink(missing_ok=True)


def _private_folder(root: Path) -> bool:
    """Create `root` 0700; usable only if this user owns it and nobody else can enter."""
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        stat = root.stat()
        if stat.st_uid != os.getuid() or root.is_symlink():
            log.warning("fedseg: table cache %s is not this user's: the table is read at every message", root)
            return False
        if stat.st_mode & 0o077:
            os.chmod(root, 0o700)
        return True
    except OSError as exc:
        log.warning("fedseg: table cache %s unusable (%s): the table is read at every message", root, exc.strerror)
        return False


def _write(path: Path, write) -> None:
    """Owner-only file, written under a temporary name and renamed (never half-read)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
