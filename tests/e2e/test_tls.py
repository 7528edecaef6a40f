"""`gitward serve --ssl-certfile/--ssl-keyfile`: HTTPS served by Gitward itself (one host
without a proxy), and clear errors for certificates it cannot use."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.conftest import free_port, start_server
from tests.e2e.test_cli import _one_line_error, gitward


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    return cert_path, key_path


def test_https_with_a_certificate_of_its_own(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = start_server(tmp_path / "server", env={
        "GITWARD_SSL_CERTFILE": str(cert), "GITWARD_SSL_KEYFILE": str(key),
        "GITWARD_WORKERS": "1",
    }, scheme="https")
    try:
        port = server.base_url.rsplit(":", 1)[1]
        context = ssl.create_default_context(cafile=str(cert))
        r = httpx.get(f"https://localhost:{port}/status", verify=context)
        assert r.status_code == 200 and r.json() == {"state": "RUNNING"}
        r = httpx.get(f"https://localhost:{port}/2.0/user", verify=context,
                      auth=server.admin.auth)
        assert r.status_code == 200, r.text
        # Plain HTTP on the TLS port is no answer at all.
        try:
            plain = httpx.get(f"http://127.0.0.1:{port}/status", timeout=5)
        except httpx.HTTPError:
            pass
        else:
            assert plain.status_code >= 400
    finally:
        server.stop()


def test_an_unusable_certificate_is_an_error_before_anything_is_created(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    other_cert, _ = _self_signed(tmp_path / "other")
    port = str(free_port())
    for args, words in (
        (["--ssl-certfile", str(cert)], ("give both or neither",)),
        (["--ssl-certfile", str(tmp_path / "missing.pem"), "--ssl-keyfile", str(key)],
         ("missing.pem", "No such file")),
        (["--ssl-certfile", str(other_cert), "--ssl-keyfile", str(key)], ("cannot use",)),
    ):
        result = gitward("serve", "--data", str(tmp_path / "data"), "--port", port, *args,
                         cwd=tmp_path)
        _one_line_error(result, *words)
        assert not (tmp_path / "data").exists()
