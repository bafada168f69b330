"""Development security material for a Flower deployment (`fedseg certs`, `fedseg node-keys`).

- A certificate authority (CA) and a SuperLink server certificate signed by it, whose
  subject alternative names cover the addresses nodes and the CLI dial (by default
  127.0.0.1 and localhost). Flower's SuperLink takes them as `--ssl-ca-certfile ca.crt
  --ssl-certfile server.crt --ssl-keyfile server.key`; SuperNodes and `flwr` trust
  `ca.crt` (`--root-certificates`, `root-certificates = ...`).
- SuperNode authentication key pairs in the format Flower expects: an elliptic-curve
  key on a NIST curve (P-384 here), the private key in OpenSSH format (for
  `flower-supernode --auth-supernode-private-key`) and the public key in OpenSSH format
  (for `flwr supernode register`).

Private keys are written with mode 0600, public material (certificates, public keys)
with 0644. Nothing is overwritten unless asked for: a silently replaced CA would lock
every node out.

This is a development CA: for production use your organisation's PKI.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("127.0.0.1", "localhost")
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


class SecurityError(ValueError):
    """A security file that cannot be written or read; the message says which and why."""


@dataclass(frozen=True)
class CertificateFiles:
    """Paths written by `make_certificates`."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


@dataclass(frozen=True)
class NodeKeyFiles:
    """Paths written by `make_node_keys`."""

    private_key: Path
    public_key: Path


def _write(path: Path, data: bytes, mode: int, overwrite: bool) -> None:
    """Write a file with the given mode from the start (no window with wider permissions)."""
    if path.exists() and not overwrite:
        raise SecurityError(f"{path} exists; refusing to overwrite it (use --force to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)  # umask may have narrowed it; make it exact
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _general_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        host = host.strip()
        if not host:
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    if not names:
        raise SecurityError("the server certificate needs at least one host name or IP address")
    return names


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedseg development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_certificates(
    out_dir: Path,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    days: int = 365,
    overwrite: bool = False,
    valid_from: dt.datetime | None = None,
) -> CertificateFiles:
    """Write `ca.crt`, `ca.key`, `server.crt`, `server.key` into out_dir.

    The server certificate is valid for every entry of `hosts` (IP addresses become IP
    SANs, anything else DNS SANs), for `days` from `valid_from` (default: now)."""
    if days < 1:
        raise SecurityError(f"--days must be at least 1, got {days}")
    out_dir = Path(out_dir)
    files = CertificateFiles(
        out_dir / "ca.crt", out_dir / "ca.key", out_dir / "server.crt", out_dir / "server.key"
    )
    if not overwrite:
        existing = [str(p) for p in vars(files).values() if p.exists()]
        if existing:
            raise SecurityError(f"{', '.join(existing)} exist(s); refusing to overwrite (use --force)")
    sans = _general_names(hosts)
    now = valid_from or dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = _name("fedseg development CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA384())
    )

    server_key = ec.generate_private_key(ec.SECP384R1())
    first = next(iter(h for h in hosts if h.strip()))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(first))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA384())
    )

    pem = serialization.Encoding.PEM
    _write(files.ca_key, _key_pem(ca_key), PRIVATE_MODE, overwrite)
    _write(files.ca_cert, ca_cert.public_bytes(pem), PUBLIC_MODE, overwrite)
    _write(files.server_key, _key_pem(server_key), PRIVATE_MODE, overwrite)
    _write(files.server_cert, server_cert.public_bytes(pem), PUBLIC_MODE, overwrite)
    return files


def _safe_name(name: str) -> str:
    name = name.strip()
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise SecurityError(
            f"node name {name!r}: use letters, digits, '-', '_' or '.' (it names the key files)"
        )
    return name


def make_node_keys(out_dir: Path, name: str, overwrite: bool = False) -> NodeKeyFiles:
    """Write `<name>` (OpenSSH private key, 0600) and `<name>.pub` (OpenSSH public key)."""
    name = _safe_name(name)
    out_dir = Path(out_dir)
    files = NodeKeyFiles(out_dir / name, out_dir / f"{name}.pub")
    if not overwrite:
        existing = [str(p) for p in (files.private_key, files.public_key) if p.exists()]
        if existing:
            raise SecurityError(f"{', '.join(existing)} exist(s); refusing to overwrite (use --force)")
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    _write(files.private_key, private, PRIVATE_MODE, overwrite)
    _write(files.public_key, public + f" fedseg-node-{name}\n".encode(), PUBLIC_MODE, overwrite)
    return files


def load_node_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """Read a node's OpenSSH public key, checking it is what SuperNode auth accepts."""
    path = Path(path)
    try:
        key = serialization.load_ssh_public_key(path.read_bytes())
    except FileNotFoundError:
        raise SecurityError(f"{path}: no such file") from None
    except (ValueError, TypeError) as exc:
        raise SecurityError(f"{path}: not an OpenSSH public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SecurityError(f"{path}: SuperNode authentication needs an EC (NIST curve) key")
    return key


def certificate_hosts(cert_path: Path) -> list[str]:
    """The subject alternative names of a certificate, as text."""
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(v) for v in san.get_values_for_type(x509.IPAddress)] + list(
        san.get_values_for_type(x509.DNSName)
    )
