"""Secure-aggregation identities for the federation (`fedseg identity`, `fedseg roster`).

Each node has a long-term Ed25519 identity key that signs its per-run keys; the roster
collects every node's identity public key, and each node operator pins the roster's
SHA-256 fingerprint after confirming it out of band (DEPLOY.md, B3b). Private keys are
written 0600, public keys and the roster 0644, through `security._write`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedseg.common.secagg.identity import Roster, fingerprint
from fedseg.server.security import PRIVATE_MODE, PUBLIC_MODE, SecurityError, _safe_name, _write

KEY_SUFFIX, PUBLIC_SUFFIX = ".id.key", ".id.pub"


@dataclass(frozen=True)
class IdentityFiles:
    """Paths written by `make_identity`."""

    private_key: Path
    public_key: Path


def make_identity(out_dir: Path, name: str, overwrite: bool = False) -> IdentityFiles:
    """Write `<name>.id.key` (Ed25519, PEM PKCS8, 0600) and `<name>.id.pub` (base64, 0644)."""
    name = _safe_name(name)
    files = IdentityFiles(Path(out_dir) / f"{name}{KEY_SUFFIX}", Path(out_dir) / f"{name}{PUBLIC_SUFFIX}")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = base64.b64encode(key.public_key().public_bytes_raw()) + b"\n"
    if not overwrite and any(p.exists() for p in (files.private_key, files.public_key)):
        raise SecurityError(f"{files.private_key} or its .pub exists; refusing to overwrite (use --force)")
    _write(files.private_key, private, PRIVATE_MODE, overwrite)
    _write(files.public_key, public, PUBLIC_MODE, overwrite)
    return files


def read_identity_public(path: Path) -> tuple[str, bytes]:
    """(roster name, 32-byte key) of a `<name>.id.pub` file."""
    path = Path(path)
    if not path.name.endswith(PUBLIC_SUFFIX):
        raise SecurityError(f"{path}: expected a <name>{PUBLIC_SUFFIX} file from `fedseg identity`")
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except (OSError, binascii.Error, ValueError) as exc:
        raise SecurityError(f"{path}: not an identity public key ({exc})") from None
    if len(key) != 32:
        raise SecurityError(f"{path}: an Ed25519 public key has 32 bytes, not {len(key)}")
    return _safe_name(path.name[: -len(PUBLIC_SUFFIX)]), key


def write_roster(public_keys: Iterable[Path], out: Path, overwrite: bool = False) -> str:
    """Write the roster of the given identity public keys; returns its SHA-256 fingerprint."""
    keys: dict[str, bytes] = {}
    for path in public_keys:
        name, key = read_identity_public(path)
        if name in keys or key in keys.values():
            raise SecurityError(f"{path}: identity {name!r} or its key is already on the roster")
        keys[name] = key
    if not keys:
        raise SecurityError("a roster needs at least one identity public key")
    data = Roster(keys=keys).to_toml().encode()
    _write(Path(out), data, PUBLIC_MODE, overwrite)
    return fingerprint(data)


def make_federation(folder: Path, names: Sequence[str]) -> dict[str, dict[str, str]]:
    """Identities for every name and their roster, in `folder`: per name the node-policy
    keys (`identity-key`, `roster`, `roster-sha256`) that node needs. The one helper
    every secure path uses (tests, simulation, local deployment)."""
    folder = Path(folder)
    files = {name: make_identity(folder, name) for name in names}
    roster = folder / "roster.toml"
    sha = write_roster([f.public_key for f in files.values()], roster)
    return {
        name: {"identity-key": str(f.private_key), "roster": str(roster), "roster-sha256": sha}
        for name, f in files.items()
    }
