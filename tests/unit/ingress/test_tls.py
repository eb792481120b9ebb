"""TLS termination: the server name picks the Ingress secret's certificate."""

from __future__ import annotations

from types import SimpleNamespace

from cryptography import x509
from mitmproxy import tls as mtls

from tuik8s.ingress.table import RoutingTable
from tuik8s.ingress.tls import TlsTerminator, self_signed


def _served_cn(terminator: TlsTerminator, sni: str | None) -> str:
    """The digest of the certificate the handshake for `sni` is set up with."""
    context = SimpleNamespace(client=SimpleNamespace(sni=sni))
    data = mtls.TlsData(conn=None, context=context)  # type: ignore[arg-type]
    terminator.tls_start_client(data)
    used = data.ssl_conn.get_context()
    return next(d for d, ctx in terminator._contexts.items() if ctx is used)  # noqa: SLF001


def test_sni_picks_exact_then_wildcard_then_default() -> None:
    blog, wild = self_signed("blog.local"), self_signed("wild")
    blog = type(blog)(blog.cert_pem, blog.key_pem, "default/blog-tls", "blog")
    wild = type(wild)(wild.cert_pem, wild.key_pem, "default/wild-tls", "wild")
    table = RoutingTable(certs={"blog.local": blog}, wildcard_certs={"apps.local": wild})
    t = TlsTerminator(lambda: table)
    assert _served_cn(t, "blog.local") == "blog"
    assert _served_cn(t, "BLOG.LOCAL") == "blog"
    assert _served_cn(t, "x.apps.local") == "wild"
    assert _served_cn(t, "other.local") == "default"
    assert _served_cn(t, None) == "default"


def test_an_unusable_secret_falls_back_to_the_default_certificate() -> None:
    good = self_signed("x")
    broken = type(good)(good.cert_pem, b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n", "default/bad", "bad")
    t = TlsTerminator(lambda: RoutingTable(certs={"bad.local": broken}))
    assert _served_cn(t, "bad.local") == "default"


def test_default_certificate_is_self_signed_for_the_ingress() -> None:
    cert = x509.load_pem_x509_certificate(self_signed().cert_pem)
    assert cert.subject == cert.issuer
    assert "tuik8s ingress default certificate" in cert.subject.rfc4514_string()
