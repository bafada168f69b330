"""`fedseg check-link`: key file, CA file and a real TLS handshake against a TLS server on
127.0.0.1 presenting good, foreign, expired and wrongly named certificates."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from fedseg.cli.main import cli
from fedseg.server.preflight import PreflightError, check_ca, check_private_key, check_superlink
from fedseg.server.security import make_certificates, make_node_keys


@contextmanager
def tls_server(cert: Path, key: Path):
    """A TLS listener on 127.0.0.1 that completes handshakes with `cert`; yields its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def expired_server_cert(certs, out: Path) -> tuple[Path, Path]:
    """A server certificate signed by the (valid) CA of `certs` that expired yesterday."""
    ca_key = serialization.load_pem_private_key(certs.ca_key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP384R1())
    now = dt.datetime.now(dt.timezone.utc)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now - dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    out.mkdir()
    (out / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return out / "server.crt", out / "server.key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def certs(tmp_path):
    return make_certificates(tmp_path / "certs")


def test_good_superlink_is_verified(certs):
    with tls_server(certs.server_cert, certs.server_key) as port:
        line = check_superlink(f"127.0.0.1:{port}", certs.ca_cert)
        assert f"127.0.0.1:{port}" in line and "certificate verified" in line and "TLS" in line
        assert check_superlink(f"localhost:{port}", certs.ca_cert)  # the other SAN


def test_foreign_ca_expired_and_misnamed_certificates(certs, tmp_path):
    other = make_certificates(tmp_path / "other")
    with tls_server(certs.server_cert, certs.server_key) as port:
        with pytest.raises(PreflightError, match=r"not signed by .*other/ca\.crt.*central team"):
            check_superlink(f"127.0.0.1:{port}", other.ca_cert)
    cert, key = expired_server_cert(certs, tmp_path / "expired")
    with tls_server(cert, key) as port:
        with pytest.raises(PreflightError, match="certificate has expired; the central team must issue a new one"):
            check_superlink(f"127.0.0.1:{port}", certs.ca_cert)
    named = make_certificates(tmp_path / "named", hosts=["superlink.example"])
    with tls_server(named.server_cert, named.server_key) as port:
        with pytest.raises(PreflightError, match=r"not valid for this address.*fedseg certs --host"):
            check_superlink(f"127.0.0.1:{port}", named.ca_cert)


def test_closed_port_bad_address_and_expired_ca(certs, tmp_path):
    with pytest.raises(PreflightError, match="connection refused; is the SuperLink running"):
        check_superlink(f"127.0.0.1:{free_port()}", certs.ca_cert)
    with pytest.raises(PreflightError, match="expected HOST:PORT"):
        check_superlink("127.0.0.1", certs.ca_cert)
    old = make_certificates(tmp_path / "old", days=1,
                            valid_from=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3))
    with pytest.raises(PreflightError, match=r"CA certificate .*old/ca\.crt expired on"):
        check_ca(old.ca_cert)
    (tmp_path / "junk.crt").write_text("hello")
    with pytest.raises(PreflightError, match="not a PEM certificate"):
        check_ca(tmp_path / "junk.crt")


def test_private_key_checks(tmp_path, monkeypatch):
    keys = make_node_keys(tmp_path / "keys", "unit-1")
    assert check_private_key(keys.private_key) == f"private key {keys.private_key}: EC secp384r1, mode 0600"
    keys.private_key.chmod(0o644)
    with pytest.raises(PreflightError, match=r"readable by others \(mode 0644\); chmod 600"):
        check_private_key(keys.private_key)
    keys.private_key.chmod(0o600)
    with pytest.raises(PreflightError, match="no such file"):
        check_private_key(tmp_path / "keys" / "nobody")
    junk = tmp_path / "junk.key"
    junk.write_text("not a key")
    junk.chmod(0o600)
    with pytest.raises(PreflightError, match="not an unencrypted OpenSSH/PEM private key"):
        check_private_key(junk)

    def denied(self):  # root reads every file: simulate the node's unprivileged user
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(PreflightError, match=r"permission denied; run the node as the user .*chmod 600"):
        check_private_key(keys.private_key)


def test_check_link_cli(certs, tmp_path):
    keys = make_node_keys(tmp_path / "keys", "unit-1")
    runner = CliRunner()
    with tls_server(certs.server_cert, certs.server_key) as port:
        done = runner.invoke(cli, ["check-link", "--superlink", f"127.0.0.1:{port}", "--ca", str(certs.ca_cert),
                                   "--key", str(keys.private_key)])
        assert done.exit_code == 0, done.output
        assert "ok: private key" in done.output and "certificate verified" in done.output
    done = runner.invoke(cli, ["check-link", "--superlink", f"127.0.0.1:{free_port()}", "--ca", str(certs.ca_cert)])
    assert done.exit_code == 2 and "connection refused" in done.output
