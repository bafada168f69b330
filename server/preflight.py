"""Pre-flight checks a node runs before `flower-supernode`: its private key, the CA file,
and a real TLS handshake with the SuperLink's HTTPS port.

Flower reports these faults late and tersely (a retry loop, `Exit Code: 305`); each check
here fails with one sentence that names the file or address and says what to fix.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


class PreflightError(ValueError):
    """A deployment fault with the fix in its message."""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PreflightError(f"{what} {path}: no such file") from None
    except PermissionError:
        raise PreflightError(
            f"{what} {path}: permission denied; run the node as the user that owns the file "
            f"(chown that user {path}; chmod 600 {path})"
        ) from None
    except IsADirectoryError:
        raise PreflightError(f"{what} {path}: is a folder, not a file") from None


def check_private_key(path: Path) -> str:
    """The node's authentication key: readable, private to its owner, an EC key."""
    path = Path(path)
    data = _read(path, "private key")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PreflightError(f"private key {path}: readable by others (mode {mode:04o}); chmod 600 {path}")
    try:
        key = serialization.load_ssh_private_key(data, password=None)
    except (ValueError, TypeError, NotImplementedError):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise PreflightError(f"private key {path}: not an unencrypted OpenSSH/PEM private key ({exc}); "
                                 "make one with `fedseg node-keys`") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PreflightError(f"private key {path}: SuperNode authentication needs an EC key; "
                             "make one with `fedseg node-keys`")
    return f"private key {path}: EC {key.curve.name}, mode {mode:04o}"


def _validity(cert: x509.Certificate, what: str, now: dt.datetime) -> str:
    if cert.not_valid_after_utc < now:
        raise PreflightError(f"{what} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; "
                             "issue a new one (`fedseg certs`)")
    if cert.not_valid_before_utc > now:
        raise PreflightError(f"{what} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC; "
                             "check this machine's clock")
    return f"valid until {cert.not_valid_after_utc:%Y-%m-%d}"


def check_ca(path: Path, now: dt.datetime | None = None) -> str:
    """The CA certificate the node trusts: a PEM X.509 certificate, in date."""
    path = Path(path)
    data = _read(path, "CA certificate")
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise PreflightError(f"CA certificate {path}: not a PEM certificate ({exc}); "
                             "use the central team's ca.crt") from None
    return f"CA certificate {path}: " + _validity(cert, f"CA certificate {path}", now or dt.datetime.now(dt.timezone.utc))


def _split(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise PreflightError(f"SuperLink address {address!r}: expected HOST:PORT, e.g. 127.0.0.1:9092")
    return host.strip("[]"), int(port)


def _verify_failure(exc: ssl.SSLCertVerificationError, address: str, ca: Path) -> PreflightError:
    """Turn OpenSSL's verify codes into the fix."""
    code = getattr(exc, "verify_code", None)
    if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
        return PreflightError(f"{address}: the SuperLink's certificate has expired; the central team must "
                              "issue a new one (`fedseg certs`) and restart the SuperLink")
    if code == 62 or "mismatch" in str(exc).lower():  # X509_V_ERR_HOSTNAME_MISMATCH
        return PreflightError(f"{address}: the SuperLink's certificate is not valid for this address "
                              f"({exc.verify_message}); dial a host it names, or re-issue it with "
                              "`fedseg certs --host HOST`")
    if code in (2, 19, 20, 21):  # unknown issuer / self-signed in chain
        return PreflightError(f"{address}: the SuperLink's certificate is not signed by {ca} "
                              f"({exc.verify_message}); use the CA certificate of the central team")
    return PreflightError(f"{address}: TLS certificate check failed ({exc.verify_message})")


def check_superlink(address: str, ca: Path, timeout: float = 10.0,
                    now: dt.datetime | None = None) -> str:
    """A TCP connection and a TLS handshake verified against `ca`, as the SuperNode does."""
    host, port = _split(address)
    check_ca(ca, now)
    context = ssl.create_default_context(cafile=str(ca))
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise PreflightError(f"{address}: connection refused; is the SuperLink running with "
                             "--port on this port, and is the port open?") from None
    except socket.gaierror as exc:
        raise PreflightError(f"{address}: cannot resolve {host!r} ({exc.strerror})") from None
    except OSError as exc:  # timeouts, unreachable networks
        raise PreflightError(f"{address}: cannot connect ({exc.strerror or exc}); check the network/firewall") from None
    try:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            cert = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
            version = tls.version()
    except ssl.SSLCertVerificationError as exc:
        raise _verify_failure(exc, address, Path(ca)) from None
    except (ssl.SSLError, OSError) as exc:
        raise PreflightError(f"{address}: TLS handshake failed ({exc}); is this the SuperLink's TLS port?") from None
    finally:
        raw.close()
    until = cert.not_valid_after_utc
    return f"SuperLink {address}: {version}, certificate verified by {ca}, valid until {until:%Y-%m-%d}"
