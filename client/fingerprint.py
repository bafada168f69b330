"""A node's table fingerprint: taken at the run's first exchange, checked at every later one.

Why: a table that grows or changes during a run would mix two tables into one model
(issue 13: a scaler from 7,500 rows, a model of 8,700). The node keeps the fingerprint
to itself; a later message that finds another table is refused with the code
`table-changed` and the run goes on without this node.

- a file: size and modification time, and a SHA-256 of the whole content. Every message
  compares size and time (one `stat`); only when they differ is the content hashed again,
  so touching a file without changing it is not a change.
- a database table or query: the row count and the sum of every numeric schema column,
  computed by the database (`SELECT COUNT(*), SUM(...)`), so no row leaves the database
  for the check. An appended, deleted or edited numeric row changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from fedseg.client.data import DataError

_CHUNK = 1 << 22


class TableChanged(DataError):
    """The table is not the one this node read at the start of the run."""

    code = "table-changed"


class Fingerprint(BaseModel):
    """What identifies a table cheaply; `digest` is the slow part, taken when needed."""

    model_config = ConfigDict(frozen=True)
    quick: str  # file: size and mtime; database: row count and column sums
    digest: str = ""  # file: SHA-256 of the content ("" for a database)

    def same_table(self, now: Fingerprint, digest_now: Callable[[], str]) -> bool:
        """Same quick part, or (for a file) the same content under a new time stamp."""
        return self.quick == now.quick or bool(self.digest) and self.digest == digest_now()


def file_fingerprint(path: Path, with_digest: bool) -> Fingerprint:
    """Size and mtime of `path`; its content hash too when `with_digest`."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file: {exc.strerror}") from None
    quick = f"{stat.st_size}:{stat.st_mtime_ns}"
    return Fingerprint(quick=quick, digest=file_digest(path) if with_digest else "")


def file_digest(path: Path) -> str:
    """SHA-256 of the file, read in 4 MiB chunks (memory stays bounded)."""
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def check_unchanged(first: Fingerprint, now: Fingerprint, digest_now: Callable[[], str], source: str) -> None:
    """Raise TableChanged (the node's log gets `source`) when `now` is another table."""
    if not first.same_table(now, digest_now):
        raise TableChanged(f"{source}: the table changed since this run's first exchange "
                           f"(fingerprint {first.quick} then, {now.quick} now); this node leaves the run")
