"""TLS material for the API server: a private CA and the serving certificate it signs.

The CA is made once and then kept for good: every kubeconfig written for this cluster pins
it (`certificate-authority-data`), so replacing it would break them all. The serving
certificate is cheap and disposable: when a start asks for a name it does not cover, or it
is close to expiry, a new one is signed by the same CA and existing kubeconfigs keep working.

Two servers may start at once on the same directory; a lock on the directory serialises
them so they cannot each mint a different CA. Every file lands by write-to-temp + rename, so
a crash leaves either the old file or the new one, never half of one; a key whose
certificate did not make it is noticed on the next start (public keys differ) and re-issued.

ECDSA P-256 keeps handshakes cheap: signing is far faster than RSA-2048, and the chain sent
on each handshake is the leaf alone (clients already hold the CA).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CA_FILE = "ca.crt"
CA_KEY_FILE = "ca.key"
SERVING_CERT_FILE = "apiserver.crt"
SERVING_KEY_FILE = "apiserver.key"
LOCK_FILE = ".lock"

CA_COMMON_NAME = "tuik8s-ca"
SERVING_COMMON_NAME = "tuik8s-apiserver"
CA_VALIDITY = dt.timedelta(days=3650)
SERVING_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
# Backdated so a node whose clock runs a little behind still accepts a fresh certificate.
CLOCK_SKEW = dt.timedelta(hours=1)

DEFAULT_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
DEFAULT_IPS = ("127.0.0.1", "::1")

# TLS 1.2 only matters for older clients; all of these are forward-secret AEAD suites
# usable with an ECDSA certificate. TLS 1.3 suites are not affected by this string.
TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384"
)


class CertificateError(Exception):
    """The PKI directory cannot be used (unwritable, or a CA that cannot be read)."""


@dataclass
class ServingMaterial:
    """What the API server needs to serve TLS and what clients need to trust it."""

    ca_cert_pem: bytes
    cert_file: Path  # serving certificate chain, PEM (the leaf; the CA is the trust anchor)
    key_file: Path
    ca_file: Path


def ensure_serving_material(
    pki_dir: Path, *, hostnames: Sequence[str] = (), ips: Sequence[str] = ()
) -> ServingMaterial:
    """Make or reuse the CA and serving certificate in `pki_dir`, covering the given names.

    A "hostname" that is an IP literal is treated as an IP.
    """
    dns_names, ip_addrs = _wanted_names(hostnames, ips)
    pki_dir = Path(pki_dir)
    try:
        pki_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _locked(pki_dir):
            ca_cert, ca_key = _ensure_ca(pki_dir)
            _ensure_serving(pki_dir, ca_cert, ca_key, dns_names, ip_addrs)
    except OSError as e:
        where = e.filename or pki_dir
        raise CertificateError(f"cannot write TLS material to {where}: {e.strerror}") from e
    return ServingMaterial(
        ca_cert_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_file=pki_dir / SERVING_CERT_FILE,
        key_file=pki_dir / SERVING_KEY_FILE,
        ca_file=pki_dir / CA_FILE,
    )


def ssl_context(material: ServingMaterial) -> ssl.SSLContext:
    """A server-side context for aiohttp: TLS 1.2+, ECDSA, session resumption on."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION
    # aiohttp speaks HTTP/1.1 only; saying so lets Go clients (kubectl) skip trying h2.
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.load_cert_chain(material.cert_file, material.key_file)
    return ctx


# --- names -----------------------------------------------------------------------------


def _wanted_names(
    hostnames: Sequence[str], ips: Sequence[str]
) -> tuple[set[str], set[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    dns_names = {n.lower() for n in DEFAULT_DNS_NAMES}
    machine = socket.gethostname().strip().lower()
    if machine:
        dns_names.add(machine)
    ip_addrs = {ipaddress.ip_address(a) for a in DEFAULT_IPS}
    for name in hostnames:
        name = name.strip().lower().rstrip(".")
        if not name:
            continue
        try:
            ip_addrs.add(ipaddress.ip_address(name))
        except ValueError:
            dns_names.add(name)
    for addr in ips:
        try:
            ip_addrs.add(ipaddress.ip_address(addr.strip()))
        except ValueError as e:
            raise CertificateError(f"{addr!r} is not an IP address") from e
    return dns_names, ip_addrs


# --- CA ----------------------------------------------------------------------------------


def _ensure_ca(pki_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = pki_dir / CA_FILE, pki_dir / CA_KEY_FILE
    if cert_path.exists() and key_path.exists():
        cert, key = _read_pair(cert_path, key_path)
        if cert is None or key is None:
            raise CertificateError(
                f"the cluster CA in {pki_dir} cannot be read; remove {cert_path} and "
                f"{key_path} to make a new one (existing kubeconfigs will stop working)"
            )
        if cert.not_valid_after_utc - _now() > RENEW_BEFORE:
            return cert, key
        log.warning(
            "cluster CA in %s expires %s; making a new one", pki_dir, cert.not_valid_after_utc
        )
    elif cert_path.exists() or key_path.exists():
        log.warning(
            "half a cluster CA in %s (certificate or key missing); making a new one", pki_dir
        )
    return _make_ca(pki_dir)


def _make_ca(pki_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(pki_dir / CA_KEY_FILE, key)
    _atomic_write(pki_dir / CA_FILE, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    log.info("made cluster CA in %s", pki_dir)
    return cert, key


# --- serving certificate -------------------------------------------------------------------


def _ensure_serving(
    pki_dir: Path,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    dns_names: set[str],
    ip_addrs: set[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> None:
    cert_path, key_path = pki_dir / SERVING_CERT_FILE, pki_dir / SERVING_KEY_FILE
    reason: str | None = "none yet"
    if cert_path.exists() and key_path.exists():
        cert, key = _read_pair(cert_path, key_path)
        reason = _why_reissue(cert, key, ca_cert, dns_names, ip_addrs)
        if reason is None:
            return
        # Keep the names an earlier start asked for: another caller may still rely on them.
        if cert is not None:
            old_dns, old_ips = _sans(cert)
            dns_names, ip_addrs = dns_names | old_dns, ip_addrs | old_ips
    log.info("issuing API server certificate in %s (%s)", pki_dir, reason)
    _issue_serving(pki_dir, ca_cert, ca_key, dns_names, ip_addrs)


def _why_reissue(
    cert: x509.Certificate | None,
    key: ec.EllipticCurvePrivateKey | None,
    ca_cert: x509.Certificate,
    dns_names: set[str],
    ip_addrs: set[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> str | None:
    if cert is None or key is None:
        return "unreadable"
    if cert.public_key() != key.public_key():
        return "key does not match"
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "not signed by the cluster CA"
    if cert.not_valid_after_utc - _now() <= RENEW_BEFORE:
        return f"expires {cert.not_valid_after_utc:%Y-%m-%d}"
    have_dns, have_ips = _sans(cert)
    missing = sorted(dns_names - have_dns) + sorted(str(a) for a in ip_addrs - have_ips)
    if missing:
        return "new names: " + ", ".join(missing)
    return None


def _issue_serving(
    pki_dir: Path,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    dns_names: set[str],
    ip_addrs: set[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    not_after = min(now + SERVING_VALIDITY, ca_cert.not_valid_after_utc)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in sorted(dns_names)]
    sans += [x509.IPAddress(a) for a in sorted(ip_addrs, key=lambda a: (a.version, int(a)))]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVING_COMMON_NAME)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(pki_dir / SERVING_KEY_FILE, key)
    _atomic_write(pki_dir / SERVING_CERT_FILE, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _sans(
    cert: x509.Certificate,
) -> tuple[set[str], set[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    dns = {n.lower() for n in ext.get_values_for_type(x509.DNSName)}
    ips = {
        a
        for a in ext.get_values_for_type(x509.IPAddress)
        if isinstance(a, ipaddress.IPv4Address | ipaddress.IPv6Address)
    }
    return dns, ips


# --- files -------------------------------------------------------------------------------


def _read_pair(
    cert_path: Path, key_path: Path
) -> tuple[x509.Certificate | None, ec.EllipticCurvePrivateKey | None]:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        cert = None
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        key = None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        key = None
    return cert, key


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _atomic_write(path, pem, 0o600)


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _locked(pki_dir: Path) -> Iterator[None]:
    fd = os.open(pki_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
