"""How requests reach an API server: over HTTPS, or by a call inside the same process.

`ApiClient` speaks only to the `Transport` protocol, so the scheduler and controllers that
live in the control-plane process use exactly the code the kubelets use over the network
(DESIGN rule 1): the in-process transport skips the socket, not the API server's
validation, admission or watch code.

A stream (a watch, `logs -f`) comes back as lines. kube-apiserver writes one JSON event
per line but chunks are cut wherever the socket cuts them, so lines are reassembled here;
aiohttp's own `readline` refuses lines over 128 KiB, and one watch event can carry an
object ten times that size.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import aiohttp
import orjson

from tuik8s.api.errors import StatusError
from tuik8s.client.errors import ApiError, TransportError
from tuik8s.client.kubeconfig import ClusterAccess

log = logging.getLogger(__name__)

USER_AGENT = "tuik8s/0.1"
DEFAULT_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class RawResponse:
    """One complete answer: any status, 2xx or not; the client decides what it means."""

    status: int
    content_type: str
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@runtime_checkable
class Transport(Protocol):
    """Carries requests to one API server. Paths are Kubernetes REST paths."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> RawResponse: ...

    def stream(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[bytes]:
        """The body's lines, without their newlines; `ApiError` first on a non-2xx answer."""
        ...

    async def close(self) -> None: ...


async def iter_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Reassemble lines from chunks cut anywhere; a last line without `\\n` still counts."""
    buf = bytearray()
    scanned = 0
    async for chunk in chunks:
        if not chunk:
            continue
        if not buf and chunk[-1:] == b"\n":
            # the usual case, and always the in-process one: whole lines, no copy
            for line in chunk[:-1].split(b"\n"):
                yield line
            continue
        buf += chunk
        start = 0
        while (end := buf.find(b"\n", max(start, scanned))) != -1:
            yield bytes(buf[start:end])
            start = end + 1
        del buf[:start]
        scanned = len(buf)
    if buf:
        yield bytes(buf)


# --- over HTTPS ------------------------------------------------------------------------------


class HttpTransport:
    """One keep-alive `aiohttp` session to the server of a kubeconfig context.

    Plain requests time out after `timeout` seconds; streams have no total timeout (a
    watch lasts as long as the server keeps it, a `logs -f` as long as the container),
    only a connect timeout.
    """

    def __init__(self, access: ClusterAccess, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.access = access
        self.server = access.server.rstrip("/")
        self.timeout = timeout
        self._ssl = _ssl_context(access) if self.server.startswith("https:") else None
        self._headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if access.token:
            self._headers["Authorization"] = f"Bearer {access.token}"
        self._session: aiohttp.ClientSession | None = None
        self._request_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=CONNECT_TIMEOUT)
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT, sock_read=None
        )

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # no connection limit: every informer holds one connection open for its watch
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False, limit=0)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers, timeout=self._request_timeout
            )
        return self._session

    def _url(self, path: str) -> str:
        return self.server + path

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> RawResponse:
        session = self._open()
        try:
            async with session.request(
                method,
                self._url(path),
                params=dict(query) if query else None,
                headers=dict(headers) if headers else None,
                data=body,
                allow_redirects=False,
            ) as resp:
                data = await resp.read()
                return RawResponse(resp.status, resp.headers.get("Content-Type", ""), data)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise self._unreachable(e) from e

    async def stream(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[bytes]:
        session = self._open()
        try:
            async with session.request(
                method,
                self._url(path),
                params=dict(query) if query else None,
                headers=dict(headers) if headers else None,
                timeout=self._stream_timeout,
                allow_redirects=False,
            ) as resp:
                if not 200 <= resp.status < 300:
                    data = await resp.read()
                    raise ApiError.from_response(resp.status, resp.headers.get("Content-Type", ""), data)
                async for line in iter_lines(resp.content.iter_any()):
                    yield line
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise self._unreachable(e) from e

    def _unreachable(self, e: BaseException) -> TransportError:
        return TransportError(f"cannot reach the API server at {self.server}: {_why(e, self.timeout)}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _why(e: BaseException, timeout: float) -> str:
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        return f"its certificate is not trusted: {e.certificate_error}"
    if isinstance(e, aiohttp.ClientConnectorError):
        return _os_reason(e.os_error)
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(e, aiohttp.ClientPayloadError):
        return "the connection broke off in the middle of an answer"
    if isinstance(e, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(e, OSError):
        return _os_reason(e)
    return str(e) or type(e).__name__


def _os_reason(e: OSError) -> str:
    if isinstance(e, ssl.SSLError):
        return f"TLS failed: {e.reason or e}"
    if e.errno:
        return os.strerror(e.errno).lower()
    return str(e) or type(e).__name__


def _ssl_context(access: ClusterAccess) -> ssl.SSLContext:
    if access.insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif access.ca_data:
        ctx = ssl.create_default_context(cadata=access.ca_data.decode("ascii", "replace"))
    else:
        ctx = ssl.create_default_context()
    if access.client_cert and access.client_key:
        # the ssl module loads a certificate chain only from files
        with tempfile.TemporaryDirectory(prefix="tuik8s-tls-") as tmp:
            cert, key = Path(tmp) / "client.crt", Path(tmp) / "client.key"
            cert.write_bytes(access.client_cert)
            key.touch(mode=0o600)
            key.write_bytes(access.client_key)
            ctx.load_cert_chain(str(cert), str(key))
    return ctx


# --- inside the process ----------------------------------------------------------------------

Handler = Callable[
    [str, str, dict[str, str], dict[str, str], bytes],
    Awaitable[tuple[int, str, bytes, AsyncIterator[bytes] | None]],
]
"""`(method, path, query, headers, body) -> (status, content_type, body, stream)`."""


class InProcessTransport:
    """Calls the API server's handler directly, for components in the control-plane process.

    The handler is wired by the CLI (this package must not import the API server); it runs
    the same authentication, validation and watch code an HTTP request would.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        body: bytes | None,
    ) -> tuple[int, str, bytes, AsyncIterator[bytes] | None]:
        all_headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        try:
            return await self._handler(method, path, dict(query or {}), all_headers, body or b"")
        except StatusError as e:
            return e.code, "application/json", orjson.dumps(e.to_status()), None
        except Exception as e:  # noqa: BLE001 - the HTTP server would answer 500 here too
            log.exception("in-process %s %s failed", method, path)
            status = StatusError(
                500,
                "InternalError",
                f"an error on the server ({type(e).__name__}) has prevented the request from succeeding",
            ).to_status()
            return 500, "application/json", orjson.dumps(status), None

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> RawResponse:
        status, content_type, data, stream = await self._call(method, path, query, headers, body)
        if stream is not None:
            parts = [data]
            try:
                async for chunk in stream:
                    parts.append(chunk)
            finally:
                await _aclose(stream)
            data = b"".join(parts)
        return RawResponse(status, content_type, data)

    async def stream(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[bytes]:
        status, content_type, data, stream = await self._call(method, path, query, headers, None)
        try:
            if not 200 <= status < 300:
                raise ApiError.from_response(status, content_type, data)
            async for line in iter_lines(_chunks(data, stream)):
                yield line
        finally:
            if stream is not None:
                await _aclose(stream)

    async def close(self) -> None:
        return None


async def _chunks(first: bytes, rest: AsyncIterator[bytes] | None) -> AsyncIterator[bytes]:
    if first:
        yield first
    if rest is not None:
        async for chunk in rest:
            yield chunk


async def _aclose(stream: Any) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


__all__ = [
    "HttpTransport",
    "InProcessTransport",
    "RawResponse",
    "Transport",
    "iter_lines",
]
