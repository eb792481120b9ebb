"""The kubelet's log endpoint: `GET /containerLogs/{namespace}/{pod}/{container}`.

The API server answers `kubectl logs` (`pods/NAME/log`) by proxying to this endpoint on
the pod's node (the Node's InternalIP and `status.daemonEndpoints.kubeletEndpoint.Port`),
as upstream's does. Query parameters are upstream's: `follow`, `tailLines`, `previous`,
`timestamps`, `sinceSeconds`, `sinceTime`, `limitBytes`. The body is the container's
output as `text/plain`, streamed (chunked) while following; it ends with the container.

**Authentication.** Every request but `/healthz` must carry `Authorization: Bearer <T>`
where T is one of the lines of the token file (`--log-token-file`), compared in
constant time; the file is re-read when it changes. Without a token file every request
is refused (401): logs are not for anyone who can reach the node.

**Transport.** HTTPS by default, with the given certificate or, as upstream's kubelet
does without one, a self-signed certificate for the node's name and IP kept in
`ROOT/pki/kubelet.{crt,key}` (reissued when it no longer covers them or expires).
Plain HTTP only when asked (`tls=False`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import ipaddress
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tuik8s.kubelet import stats
from tuik8s.kubelet.runtime import ContainerRuntime, ContainerRuntimeError

log = logging.getLogger(__name__)

LogFinder = Callable[[str, str, str, bool], Awaitable[str]]
"""`(namespace, pod, container, previous)` -> the runtime's container id, or `LogLookupError`."""

CERT_DAYS = 365


class LogLookupError(Exception):
    """No container to read: an HTTP status and upstream's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- query parsing (pure) -------------------------------------------------------------------


class BadQuery(ValueError):
    pass


def _bool(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _int(query: dict[str, str], key: str, least: int) -> int | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{key}: invalid value {raw!r}: must be an integer") from None
    if value < least:
        raise BadQuery(f"{key}: invalid value {value}: must be at least {least}")
    return value


def parse_log_query(query: dict[str, str], now: float | None = None) -> dict[str, object]:
    """{follow, previous, timestamps, tail_lines, since, limit_bytes} from the query."""
    since: float | None = None
    seconds = _int(query, "sinceSeconds", 1)
    if seconds is not None:
        since = (now if now is not None else dt.datetime.now(dt.UTC).timestamp()) - seconds
    elif query.get("sinceTime"):
        try:
            since = dt.datetime.fromisoformat(query["sinceTime"].replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise BadQuery(f"sinceTime: invalid value {query['sinceTime']!r}: must be RFC 3339") from None
    return {
        "follow": _bool(query.get("follow")),
        "previous": _bool(query.get("previous")),
        "timestamps": _bool(query.get("timestamps")),
        "tail_lines": _int(query, "tailLines", 0),
        "since": since,
        "limit_bytes": _int(query, "limitBytes", 1),
    }


# --- tokens --------------------------------------------------------------------------------------


class TokenFile:
    """The bearer tokens accepted, one per line of a file, re-read when it changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._tokens: list[bytes] = []

    def tokens(self) -> list[bytes]:
        if self.path is None:
            return []
        try:
            st = self.path.stat()
        except OSError:
            return []
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            with contextlib.suppress(OSError):
                lines = self.path.read_text().splitlines()
                self._tokens = [line.strip().encode() for line in lines if line.strip() and not line.startswith("#")]
                self._stamp = stamp
        return self._tokens

    def accepts(self, header: str | None) -> bool:
        scheme, _, presented = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return False
        given = presented.strip().encode()
        ok = False
        for token in self.tokens():
            ok |= hmac.compare_digest(given, token)
        return ok


# --- the serving certificate ---------------------------------------------------------------------


def ensure_self_signed(cert_dir: Path, node_name: str, node_ip: str) -> tuple[Path, Path]:
    """A self-signed serving certificate for the node (kept, reissued when stale)."""
    cert_path, key_path = cert_dir / "kubelet.crt", cert_dir / "kubelet.key"
    names = {node_name, "localhost"}
    ips = {node_ip, "127.0.0.1"}
    with contextlib.suppress(OSError, ValueError):
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        have_names = set(san.get_values_for_type(x509.DNSName))
        have_ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
        fresh = cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        if names <= have_names and ips <= have_ips and fresh and key_path.exists():
            return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@{int(now.timestamp())}")])
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in sorted(names)]
    for ip in sorted(ips):
        with contextlib.suppress(ValueError):
            alt.append(x509.IPAddress(ipaddress.ip_address(ip)))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


# --- the server ----------------------------------------------------------------------------------


class LogServer:
    """Serves container logs from the runtime on `host:port` (see the module docstring)."""

    def __init__(
        self,
        find: LogFinder,
        runtime: ContainerRuntime,
        *,
        host: str = "0.0.0.0",
        port: int = 10250,
        token_file: Path | None = None,
        tls: bool = True,
        cert_dir: Path | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        node_name: str = "localhost",
        node_ip: str = "127.0.0.1",
        routes: Callable[[web.Application], None] | None = None,
    ) -> None:
        self.routes = routes  # more endpoints on this server (streaming: exec, port-forward)
        self.find = find
        self.runtime = runtime
        self.host = host
        self.port = port
        self.tokens = TokenFile(token_file)
        self.tls = tls
        self.cert_dir = cert_dir
        self.cert_file = cert_file
        self.key_file = key_file
        self.node_name = node_name
        self.node_ip = node_ip
        self._runner: web.AppRunner | None = None
        self.bound_port: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        stats.add_routes(app, self.runtime, self.tokens.accepts)  # /metrics/resource
        if self.routes is not None:
            self.routes(app)
        return app

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        cert, key = self.cert_file, self.key_file
        if cert is None or key is None:
            cert, key = ensure_self_signed(self.cert_dir or Path("."), self.node_name, self.node_ip)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert), str(key))
        return ctx

    async def start(self) -> None:
        if self.tokens.path is None:
            log.warning("kubelet log server: no --log-token-file, so every log request will be refused")
        ctx = await asyncio.to_thread(self._ssl)
        self._runner = web.AppRunner(self.app(), handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ctx, reuse_address=True)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        if not self.tokens.accepts(request.headers.get("Authorization")):
            return web.Response(status=401, text="Unauthorized\n")
        ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        try:
            opts = parse_log_query(dict(request.query))
        except BadQuery as e:
            return web.Response(status=400, text=f"{e}\n")
        try:
            cid = await self.find(ns, pod, container, bool(opts["previous"]))
        except LogLookupError as e:
            return web.Response(status=e.status, text=f"{e.message}\n")
        except ContainerRuntimeError as e:
            return web.Response(status=500, text=f"{e}\n")
        follow = bool(opts["follow"])
        limit = opts["limit_bytes"]
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain; charset=utf-8"})
        if follow:
            response.enable_chunked_encoding()
        await response.prepare(request)
        left = int(limit) if isinstance(limit, int) else None
        chunks = self.runtime.logs(
            cid,
            follow=follow,
            tail_lines=opts["tail_lines"] if isinstance(opts["tail_lines"], int) else None,
            timestamps=bool(opts["timestamps"]),
            since=opts["since"] if isinstance(opts["since"], float) else None,
        )
        try:
            async for chunk in chunks:
                if left is not None:
                    chunk = chunk[:left]
                    left -= len(chunk)
                await response.write(chunk)
                if left is not None and left <= 0:
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response


def log_url(node_ip: str, port: int, namespace: str, pod: str, container: str, *, tls: bool = True) -> str:
    """Where the API server finds a container's log (without the query)."""
    host = f"[{node_ip}]" if ":" in node_ip else node_ip
    return f"{'https' if tls else 'http'}://{host}:{port}/containerLogs/{namespace}/{pod}/{container}"


__all__ = [
    "LogLookupError",
    "LogServer",
    "TokenFile",
    "ensure_self_signed",
    "log_url",
    "parse_log_query",
]
