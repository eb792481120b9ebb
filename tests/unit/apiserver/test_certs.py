"""The API server's TLS material, judged by what a TLS client sees when it connects."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tuik8s.apiserver.certs import (
    CertificateError,
    ServingMaterial,
    ensure_serving_material,
    ssl_context,
)


@contextmanager
def tls_server(material: ServingMaterial, family: int = socket.AF_INET) -> Iterator[int]:
    """A loopback TLS server that answers every connection with b"ok"; yields its port."""
    ctx = ssl_context(material)
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
                    tls.recv(1)  # wait for the client to close
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


def client_context(material: ServingMaterial) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=material.ca_cert_pem.decode())


def connect(
    port: int,
    server_hostname: str,
    ctx: ssl.SSLContext,
    *,
    host: str = "127.0.0.1",
    session: ssl.SSLSession | None = None,
) -> tuple[bytes, ssl.SSLSession | None, bool, str | None]:
    with socket.create_connection((host, port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname=server_hostname, session=session) as tls:
            data = tls.recv(2)
            return data, tls.session, tls.session_reused, tls.version()


def ca_subject_key(material: ServingMaterial) -> bytes:
    ca = x509.load_pem_x509_certificate(material.ca_cert_pem)
    return ca.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def serving_sans(material: ServingMaterial) -> list[str]:
    cert = x509.load_pem_x509_certificate(material.cert_file.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ext.get_values_for_type(x509.DNSName) + [
        str(a) for a in ext.get_values_for_type(x509.IPAddress)
    ]


@pytest.mark.parametrize(
    "name",
    ["localhost", "127.0.0.1", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
)
def test_serving_cert_verifies_against_the_ca(tmp_path: Path, name: str) -> None:
    material = ensure_serving_material(tmp_path / "pki")
    with tls_server(material) as port:
        data, _, _, version = connect(port, name, client_context(material))
    assert data == b"ok"
    assert version in ("TLSv1.2", "TLSv1.3")


def test_serving_cert_covers_the_machine_hostname(tmp_path: Path) -> None:
    material = ensure_serving_material(tmp_path / "pki")
    assert socket.gethostname().lower() in serving_sans(material)


def test_a_name_not_in_the_cert_is_refused(tmp_path: Path) -> None:
    material = ensure_serving_material(tmp_path / "pki")
    with tls_server(material) as port:
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            connect(port, "not-this-cluster.example", client_context(material))


def test_a_client_without_the_ca_is_refused(tmp_path: Path) -> None:
    material = ensure_serving_material(tmp_path / "pki")
    with tls_server(material) as port:
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(port, "localhost", ssl.create_default_context())


def test_ipv6_loopback_is_covered(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    material = ensure_serving_material(tmp_path / "pki")
    with tls_server(material, socket.AF_INET6) as port:
        data, *_ = connect(port, "::1", client_context(material), host="::1")
    assert data == b"ok"


def test_files_and_modes(tmp_path: Path) -> None:
    material = ensure_serving_material(tmp_path / "pki")
    assert stat.S_IMODE(material.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "pki" / "ca.key").stat().st_mode) == 0o600
    assert material.ca_file.read_bytes() == material.ca_cert_pem
    ca = x509.load_pem_x509_certificate(material.ca_cert_pem)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "tuik8s-ca"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.not_valid_after_utc - ca.not_valid_before_utc > dt.timedelta(days=3600)
    leaf = x509.load_pem_x509_certificate(material.cert_file.read_bytes())
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert dt.timedelta(days=360) < leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc < dt.timedelta(days=370)
    assert not list((tmp_path / "pki").glob("*.tmp"))


def test_restart_reuses_ca_and_serving_cert(tmp_path: Path) -> None:
    first = ensure_serving_material(tmp_path / "pki")
    cert_before = first.cert_file.read_bytes()
    second = ensure_serving_material(tmp_path / "pki")
    assert second.ca_cert_pem == first.ca_cert_pem
    assert second.cert_file.read_bytes() == cert_before


def test_new_san_reissues_with_the_same_ca(tmp_path: Path) -> None:
    first = ensure_serving_material(tmp_path / "pki")
    old_client = client_context(first)  # what an existing kubeconfig holds
    second = ensure_serving_material(
        tmp_path / "pki", hostnames=["node-a.lab.internal", "10.9.8.7"], ips=["192.168.50.10"]
    )
    assert second.ca_cert_pem == first.ca_cert_pem
    sans = serving_sans(second)
    assert {"node-a.lab.internal", "10.9.8.7", "192.168.50.10", "localhost"} <= set(sans)
    with tls_server(second) as port:
        for name in ("node-a.lab.internal", "192.168.50.10", "10.9.8.7", "localhost"):
            assert connect(port, name, old_client)[0] == b"ok"
    # Asking again without the extra names keeps the certificate as it is.
    third = ensure_serving_material(tmp_path / "pki")
    assert third.cert_file.read_bytes() == second.cert_file.read_bytes()


def test_expiring_serving_cert_is_reissued_with_the_same_ca(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    first = ensure_serving_material(pki)
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate(first.ca_cert_pem)
    key = serialization.load_pem_private_key(first.key_file.read_bytes(), None)
    now = dt.datetime.now(dt.UTC)
    almost_expired = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=350))
        .not_valid_after(now + dt.timedelta(days=10))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in serving_sans(first)[:1]]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    first.cert_file.write_bytes(almost_expired.public_bytes(serialization.Encoding.PEM))

    second = ensure_serving_material(pki)
    assert second.ca_cert_pem == first.ca_cert_pem
    leaf = x509.load_pem_x509_certificate(second.cert_file.read_bytes())
    assert leaf.not_valid_after_utc > now + dt.timedelta(days=300)
    with tls_server(second) as port:
        assert connect(port, "localhost", client_context(first))[0] == b"ok"


def test_damaged_serving_files_are_replaced_keeping_the_ca(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    first = ensure_serving_material(pki)
    first.key_file.write_bytes(b"garbage")
    second = ensure_serving_material(pki)
    assert second.ca_cert_pem == first.ca_cert_pem
    with tls_server(second) as port:
        assert connect(port, "localhost", client_context(first))[0] == b"ok"


def test_serving_cert_from_another_ca_is_replaced(tmp_path: Path) -> None:
    ours = ensure_serving_material(tmp_path / "ours")
    theirs = ensure_serving_material(tmp_path / "theirs")
    ours.cert_file.write_bytes(theirs.cert_file.read_bytes())
    ours.key_file.write_bytes(theirs.key_file.read_bytes())
    again = ensure_serving_material(tmp_path / "ours")
    assert again.ca_cert_pem == ours.ca_cert_pem
    with tls_server(again) as port:
        assert connect(port, "localhost", client_context(ours))[0] == b"ok"


def test_unreadable_ca_is_a_one_line_error_not_a_new_ca(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    first = ensure_serving_material(pki)
    (pki / "ca.key").write_bytes(b"garbage")
    with pytest.raises(CertificateError) as err:
        ensure_serving_material(pki)
    assert "\n" not in str(err.value)
    assert first.ca_file.read_bytes() == first.ca_cert_pem


def test_concurrent_first_starts_agree_on_one_ca(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    results: list[ServingMaterial] = []

    def start() -> None:
        results.append(ensure_serving_material(pki))

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({m.ca_cert_pem for m in results}) == 1


def test_sessions_resume(tmp_path: Path) -> None:
    material = ensure_serving_material(tmp_path / "pki")
    ctx = client_context(material)
    with tls_server(material) as port:
        _, session, reused, _ = connect(port, "localhost", ctx)
        assert not reused
        _, _, reused, _ = connect(port, "localhost", ctx, session=session)
    assert reused


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls12_client_connects_and_older_is_refused(tmp_path: Path) -> None:
    material = ensure_serving_material(tmp_path / "pki")
    tls12 = client_context(material)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with tls_server(material) as port:
        assert connect(port, "localhost", tls12)[3] == "TLSv1.2"
        tls11 = client_context(material)
        try:
            tls11.minimum_version = ssl.TLSVersion.TLSv1
            tls11.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError):
            return
        with pytest.raises(ssl.SSLError):
            connect(port, "localhost", tls11)


async def test_aiohttp_serves_https_with_the_context(tmp_path: Path) -> None:
    material = ensure_serving_material(tmp_path / "pki")

    async def version(_: web.Request) -> web.Response:
        return web.json_response({"gitVersion": "v1.32.0"})

    app = web.Application()
    app.router.add_get("/version", version)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context(material))
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            url = f"https://localhost:{port}/version"
            async with session.get(url, ssl=client_context(material)) as resp:
                assert resp.status == 200
                assert (await resp.json())["gitVersion"] == "v1.32.0"
    finally:
        await runner.cleanup()
