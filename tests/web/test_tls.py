"""`threatmesh serve --tls-cert/--tls-key` as a real process on 127.0.0.1: HTTPS, TLS 1.2+ only.

A self-signed certificate for 127.0.0.1 is made with `cryptography`; clients
trust exactly that certificate (no verification is switched off anywhere).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

x509 = pytest.importorskip("cryptography.x509", reason="cryptography makes the test certificate")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

ACCEPT = {"Accept": "application/taxii+json;version=2.1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def https_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, str, Path]]:
    """A node served over HTTPS: (base URL, port, admin key, certificate)."""
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = _self_signed(tmp)
    cli = [sys.executable, "-m", "threatmesh.cli", "--home", str(tmp / "node")]
    created = subprocess.run([*cli, "init", "--name", "TLS node", "--json"], capture_output=True, text=True)
    assert created.returncode == 0, created.stderr
    admin_key = json.loads(created.stdout)["admin_key"]
    port = _free_port()
    server = subprocess.Popen([*cli, "serve", "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/health", verify=trust, timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        yield base, port, admin_key, cert
    finally:
        server.terminate()
        server.wait(10)
        assert server.stderr is not None
        banner = server.stderr.read().decode()
        assert f"https://127.0.0.1:{port}/taxii2/" in banner


def _handshake(port: int, context: ssl.SSLContext) -> str:
    """The TLS version negotiated with the server; ssl.SSLError when it refuses."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return str(tls.version())


def _client(cert: Path, *, version: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(cert))
    # The client is made willing to speak old protocols and weak suites, so a refusal is the server's.
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = version
    context.set_ciphers((ciphers or "ALL") + ":@SECLEVEL=0")
    return context


def test_httpx_and_taxii2_client_talk_https(https_node: tuple[str, int, str, Path],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    base, _, admin_key, cert = https_node
    # requests lets these variables override a session's `verify` (psf/requests#3829).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    trust = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(verify=trust, timeout=10) as client:
        answer = client.get(f"{base}/taxii2/", headers={**ACCEPT, "Authorization": f"Bearer {admin_key}"})
        assert answer.status_code == 200
        assert answer.json()["title"] == "TLS node"
        assert answer.headers["content-type"] == "application/taxii+json;version=2.1"
        tls_version = answer.extensions["network_stream"].get_extra_info("ssl_object").version()
        assert tls_version in ("TLSv1.2", "TLSv1.3")

    from taxii2client.v21 import Server

    server = Server(f"{base}/taxii2/", user="admin", password=admin_key, verify=str(cert))
    assert server.title == "TLS node"
    assert server.default is not None
    collection = server.default.collections[0]
    indicator = {
        "type": "indicator", "spec_version": "2.1", "id": "indicator--7c3b1c1c-2a0b-4b8e-9b8e-1f0a3c5d7e91",
        "created": "2024-05-01T00:00:00.000Z", "modified": "2024-05-01T00:00:00.000Z",
        "pattern": "[domain-name:value = 'tls.example']", "pattern_type": "stix",
        "valid_from": "2024-05-01T00:00:00Z",
    }
    status = collection.add_objects({"objects": [indicator]})
    assert status.success_count == 1
    assert collection.get_object(indicator["id"])["objects"] == [indicator]


def test_the_threatmesh_client_verifies_the_certificate(https_node: tuple[str, int, str, Path],
                                                        tmp_path: Path) -> None:
    base, _, admin_key, cert = https_node
    cli = [sys.executable, "-m", "threatmesh.cli", "taxii", "discover", f"{base}/taxii2/", "--key", admin_key, "--json"]
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    trusted = subprocess.run(cli, capture_output=True, text=True, timeout=60,
                             env={**env, "REQUESTS_CA_BUNDLE": str(cert)})
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout)["title"] == "TLS node"
    # Without trusting the certificate, the client refuses the server.
    untrusted = subprocess.run(cli, capture_output=True, text=True, timeout=60, env=env)
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr.lower() or "ssl" in untrusted.stderr.lower()


def test_tls_1_2_and_1_3_accepted_older_refused(https_node: tuple[str, int, str, Path]) -> None:
    _, port, _, cert = https_node
    assert _handshake(port, _client(cert, version=ssl.TLSVersion.TLSv1_3)) == "TLSv1.3"
    assert _handshake(port, _client(cert, version=ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"
    for old in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
        with pytest.raises(ssl.SSLError):
            _handshake(port, _client(cert, version=old))


def test_rfc7540_blacklisted_tls12_suites_refused(https_node: tuple[str, int, str, Path]) -> None:
    _, port, _, cert = https_node
    # CBC with SHA-1 or SHA-384 MACs: blacklisted by RFC 7540 Appendix A (uvicorn's default list allows them).
    for weak in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA256"):
        with pytest.raises(ssl.SSLError):
            _handshake(port, _client(cert, version=ssl.TLSVersion.TLSv1_2, ciphers=weak))
    for strong in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"):
        assert _handshake(port, _client(cert, version=ssl.TLSVersion.TLSv1_2, ciphers=strong)) == "TLSv1.2"


def test_plain_http_to_the_https_port_gets_no_answer(https_node: tuple[str, int, str, Path]) -> None:
    _, port, _, _ = https_node
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/taxii2/", headers=ACCEPT, timeout=5)
