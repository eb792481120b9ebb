"""The mitmproxy addon that routes each request by the current `RoutingTable`.

mitmproxy runs in regular mode with the lazy connection strategy: it parses the
request, fills in host and port from the Host header, and only connects upstream when
the request is forwarded. `requestheaders` is the one place we need: it picks the
Backend from the table and points the request at one of its endpoints (a pod IP and
port), leaving the Host header as the client sent it, as ingress-nginx does.

Round robin runs per request, per worker process. A failed connect is retried on
another endpoint: mitmproxy opens upstream connections only after the `server_connect`
hook, which cannot hand over a socket, so the hook first checks that the endpoint
accepts a TCP connection (bounded by `connect_timeout`) and, if not, moves the
connection to the next endpoint and keeps the failed one out of rotation for
`DOWN_FOR` seconds. Only new upstream connections pay for the check: keep-alive
connections are reused across requests.

X-Forwarded-* headers are set, not appended: like ingress-nginx without
`use-forwarded-headers`, a client's own X-Forwarded-For is not trusted.

Bodies are streamed both ways, as a reverse proxy must for large downloads, uploads and
server-sent events; mitmproxy's default would hold each body whole in memory first. The
exception is a small body (up to 1 MiB, ingress-nginx's default proxy-body-size) of a
method that may be passed to another endpoint (retry.py): it is held until complete,
as nginx buffers request bodies, so it can be sent again if its pod dies before
answering. `failed` and `next_endpoint` are what the retry asks for: the failed
endpoint goes out of rotation for `DOWN_FOR` seconds, and the next one in turn that is
neither down nor already tried takes the request.

Regular mode would also accept CONNECT and tunnel to any address a client names; an
ingress is not a forward proxy, so `http_connect` answers 405 and no tunnel opens.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Collection, Iterable

from mitmproxy import http
from mitmproxy.proxy.server_hooks import ServerConnectionHookData

from tuik8s.ingress import retry
from tuik8s.ingress.table import Backend, RoutingTable

log = logging.getLogger(__name__)

DOWN_FOR = 5.0
# Long enough to outlast two dropped SYNs (the kernel retries after 1 s, then 2 s more): a
# busy pod whose listen queue overflowed answers the third.
CONNECT_TIMEOUT = 3.5
# A probe still waiting after this long marks its endpoint down at once, so the requests
# that come meanwhile go elsewhere instead of queueing behind a dead pod's timeout.
SUSPECT_AFTER = 0.25
# A request body up to this size, of a method that may be retried, is held whole so that
# it can be sent to another endpoint; bigger or chunked bodies stream and are not retried.
BUFFERED_BODY = 1024 * 1024
_TEXT = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}
_NON_IDEMPOTENT = frozenset(m.encode() for m in retry.NON_IDEMPOTENT)

Address = tuple[str, int]
_FORWARDED = frozenset(
    (b"x-forwarded-for", b"x-real-ip", b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port")
)


def not_found_page(host: str, path: str) -> http.Response:
    body = f'404 Not Found: no Ingress rule matches host "{host}" and path "{path}" (tuik8s ingress)\n'
    return http.Response.make(404, body.encode(), _TEXT)


def connect_refused_page() -> http.Response:
    body = "405 Method Not Allowed: this is an ingress, not a forward proxy (tuik8s ingress)\n"
    return http.Response.make(405, body.encode(), {**_TEXT, "Allow": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"})


def unavailable_page(backend: Backend) -> http.Response:
    body = f"503 Service Unavailable: {backend.problem} (tuik8s ingress)\n"
    return http.Response.make(503, body.encode(), _TEXT)


class Router:
    """Points each request at a ready endpoint of the Service its Ingress rule names."""

    def __init__(self, table: RoutingTable | None = None, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.connect_timeout = connect_timeout
        self.hold_small_bodies = retry.enabled()  # only a retry needs the body again
        self._next: dict[str, int] = {}
        self._down: dict[Address, float] = {}
        self._owners: dict[Address, Backend] = {}
        self.table = RoutingTable()
        self.set_table(table or RoutingTable())

    def set_table(self, table: RoutingTable) -> None:
        """Swap in a new table; round robin positions and down marks carry over."""
        owners: dict[Address, Backend] = {}
        for backend in _backends(table):
            for ep in backend.endpoints:
                owners.setdefault(ep, backend)
        self._owners = owners
        self.table = table

    # ---- choosing -------------------------------------------------------------------

    def pick(self, backend: Backend, exclude: Iterable[Address] = ()) -> Address | None:
        """The next endpoint in turn, skipping ones marked down (unless all are)."""
        eps = backend.endpoints
        n = len(eps)
        if not n:
            return None
        key = backend.name
        start = self._next.get(key, 0)
        if not self._down and not exclude:
            self._next[key] = start + 1
            return eps[start % n]
        skip = set(exclude)
        now = time.monotonic()
        fallback = None
        for k in range(n):
            ep = eps[(start + k) % n]
            if ep in skip:
                continue
            until = self._down.get(ep)
            if until is not None:
                if until > now:
                    fallback = fallback or ep
                    continue
                del self._down[ep]
            self._next[key] = start + k + 1
            return ep
        if fallback is not None:
            self._next[key] = start + 1
        return fallback

    def failed(self, address: Address) -> None:
        """`address` broke a request it had accepted: out of rotation for `DOWN_FOR`."""
        self._down[address] = time.monotonic() + DOWN_FOR

    def next_endpoint(self, failed: Address, tried: Collection[Address]) -> Address | None:
        """After `failed` broke a request: another endpoint of its Service, or None.

        Unlike `pick` there is no fallback to an endpoint marked down: the request has
        already failed once, and nginx answers 502 when no live upstream is left.
        """
        now = time.monotonic()
        backend = self._owners.get(failed)
        if backend is None:
            return None
        eps = backend.endpoints
        n = len(eps)
        start = self._next.get(backend.name, 0)
        for k in range(n):
            ep = eps[(start + k) % n]
            if ep in tried:
                continue
            until = self._down.get(ep)
            if until is not None and until > now:
                continue
            self._next[backend.name] = start + k + 1
            return ep
        return None

    def service_of(self, address: Address) -> str | None:
        backend = self._owners.get(address)
        return f"{backend.namespace}/{backend.service}" if backend is not None else None

    # ---- hooks ----------------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        host = req.host.lower().rstrip(".")
        path = req.path.partition("?")[0] or "/"
        backend = self.table.route(host, path)
        if backend is None:
            flow.response = not_found_page(host, path)
            return
        ep = self.pick(backend)
        if ep is None:
            flow.response = unavailable_page(backend)
            return
        client = flow.client_conn
        client_ip = (client.peername[0] if client.peername else "").encode()
        headers = req.headers
        # one pass over the fields instead of a scan per header set
        headers.fields = (
            *(f for f in headers.fields if f[0].lower() not in _FORWARDED),
            (b"X-Forwarded-For", client_ip),
            (b"X-Real-IP", client_ip),
            (b"X-Forwarded-Host", (req.host_header or host).encode("utf-8", "surrogateescape")),
            (b"X-Forwarded-Proto", b"https" if client.tls else b"http"),
            (b"X-Forwarded-Port", str(client.sockname[1] if client.sockname else "").encode()),
        )
        data = req.data
        data.host, data.port = ep
        data.scheme = b"http"
        if not self.hold_small_bodies or data.method.upper() in _NON_IDEMPOTENT or not _small_body(headers.fields):
            req.stream = True  # an upload goes on as it arrives

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        # bodies pass through as they arrive (downloads, server-sent events) instead of
        # being held whole; our own pages already have their body and are left alone
        response = flow.response
        if response is not None and response.data.content is None:
            response.stream = True

    def http_connect(self, flow: http.HTTPFlow) -> None:
        flow.response = connect_refused_page()

    async def server_connect(self, data: ServerConnectionHookData) -> None:
        address = data.server.address
        backend = self._owners.get(address) if address else None
        if backend is None:
            return
        tried: list[Address] = []
        candidate: Address | None = (address[0], address[1])
        while candidate is not None:
            if await self._accepts(candidate):
                if tried:
                    log.info("%s: %s refused, using %s", backend.name, ", ".join(map(_fmt, tried)), _fmt(candidate))
                data.server.address = candidate
                return
            tried.append(candidate)
            self._down[candidate] = time.monotonic() + DOWN_FOR
            candidate = self.pick(backend, exclude=tried)
        data.server.error = (
            f"no endpoint of service {backend.namespace}/{backend.service} accepts connections "
            f"(tried {', '.join(map(_fmt, tried))})"
        )

    async def _accepts(self, address: Address) -> bool:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        connect = asyncio.ensure_future(loop.sock_connect(sock, address))
        suspected = False
        try:
            done, _ = await asyncio.wait((connect,), timeout=min(SUSPECT_AFTER, self.connect_timeout))
            if not done:
                suspected = address not in self._down
                self._down[address] = time.monotonic() + DOWN_FOR
                done, _ = await asyncio.wait((connect,), timeout=max(0.0, self.connect_timeout - SUSPECT_AFTER))
            if not done or connect.exception() is not None:
                return False
            if suspected:
                self._down.pop(address, None)  # slow, not dead: back in rotation
            return True
        finally:
            if not connect.done():
                connect.cancel()
            sock.close()


def _backends(table: RoutingTable) -> Iterable[Backend]:
    for rules in (*table.hosts.values(), *table.wildcards.values(), table.any_host):
        for rule in rules:
            yield rule.backend
    if table.default is not None:
        yield table.default


def _small_body(fields: Iterable[tuple[bytes, bytes]]) -> bool:
    """No body, or a Content-Length body small enough to hold for a retry.

    One pass over the raw fields: `Headers.get` and `in` decode and scan them each time,
    and this runs for every request.
    """
    for name, value in fields:
        key = name.lower()
        if key == b"content-length":
            length = value.strip()
            return length.isdigit() and int(length) <= BUFFERED_BODY
        if key == b"transfer-encoding":
            return False
    return True


def _fmt(address: Address) -> str:
    return f"{address[0]}:{address[1]}"
