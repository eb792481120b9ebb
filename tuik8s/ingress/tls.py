"""The mitmproxy addon that terminates TLS with the Ingresses' own certificates.

mitmproxy's tlsconfig addon forges certificates from its own CA, which is what an
intercepting proxy wants and an ingress must not do. This addon replaces it: the
server name a client asks for (SNI) picks the certificate of the Ingress `tls` entry
listing that host (exact, then wildcard), else the certificate of an entry without
hosts, else a self-signed default made at start, as ingress-nginx's "fake" certificate.
Contexts are built once per certificate and reused for every handshake.

Clients are offered HTTP/1.1 only: the backends are HTTP/1.1 and WebSockets over
HTTP/2 are not something mitmproxy passes through.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mitmproxy import tls
from OpenSSL import SSL, crypto

from tuik8s.ingress.table import RoutingTable, TlsCert

log = logging.getLogger(__name__)

DEFAULT_CN = "tuik8s ingress default certificate"


def self_signed(common_name: str = DEFAULT_CN) -> TlsCert:
    """A throwaway certificate for clients whose server name no Ingress covers."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return TlsCert(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        "(default)",
        "default",
    )


def _select_http11(conn: SSL.Connection, offers: list[bytes]) -> bytes:
    return b"http/1.1" if b"http/1.1" in offers else SSL.NO_OVERLAPPING_PROTOCOLS


def server_context(cert: TlsCert) -> SSL.Context:
    """A server-side TLS context serving `cert` (its PEM may hold a whole chain)."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE)
    chain = x509.load_pem_x509_certificates(cert.cert_pem)
    ctx.use_certificate(chain[0])
    for extra in chain[1:]:
        ctx.add_extra_chain_cert(crypto.X509.from_cryptography(extra))
    key = serialization.load_pem_private_key(cert.key_pem, password=None)
    ctx.use_privatekey(key)  # type: ignore[arg-type]
    ctx.check_privatekey()
    ctx.set_alpn_select_callback(_select_http11)
    return ctx


class TlsTerminator:
    """Answers `tls_start_client` with the context of the certificate SNI picks."""

    def __init__(self, table: Callable[[], RoutingTable], default: TlsCert | None = None) -> None:
        self._table = table
        self._default = default or self_signed()
        self._contexts: dict[str, SSL.Context] = {}
        self._broken: set[str] = set()

    def _context(self, cert: TlsCert | None) -> SSL.Context:
        if cert is not None and cert.digest not in self._broken:
            ctx = self._contexts.get(cert.digest)
            if ctx is not None:
                return ctx
            try:
                ctx = server_context(cert)
            except Exception as e:  # noqa: BLE001 - any bad secret: serve the default, say why
                log.warning("the certificate in secret %s is not usable: %s", cert.source, e)
                self._broken.add(cert.digest)
            else:
                if len(self._contexts) > 1024:
                    self._contexts.clear()
                self._contexts[cert.digest] = ctx
                return ctx
        ctx = self._contexts.get(self._default.digest)
        if ctx is None:
            ctx = self._contexts[self._default.digest] = server_context(self._default)
        return ctx

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        data.establish_server_tls_first = False

    def tls_start_client(self, data: tls.TlsData) -> None:
        if data.ssl_conn is not None:
            return
        cert = self._table().cert_for(data.context.client.sni)
        conn = SSL.Connection(self._context(cert))
        conn.set_accept_state()
        data.ssl_conn = conn
