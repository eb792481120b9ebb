"""`EngineClient`: the few Docker Engine API calls the kubelet's hot path makes, async.

Why not the docker CLI here: every CLI call is a new Go process (tens of milliseconds of
CPU before it sends its one HTTP request), so a pod start that made ten of them in a row
took seconds of the kubelet's time on a busy node (profiled: 8 s of a 21 s median start
was the kubelet's own, now under 1 s). The engine's API is plain HTTP + JSON on its unix
socket, so what a pod start needs (list, inspect, image check, create, start), stop,
kill, remove and exec (probes run it every period) go straight to it with aiohttp,
concurrently and without a thread. Pulls and log streaming stay with the CLI
(`runtime.docker`): they are not on a hot path, and the CLI brings the user's registry
credentials.

The host is a `DOCKER_HOST`-style URL: `unix:///var/run/docker.sock` (the default) or
`tcp://HOST:PORT` (TLS when `DOCKER_TLS_VERIFY` is set, with `DOCKER_CERT_PATH`'s files,
as the CLI does). Paths are unversioned: the engine answers in its own API version, and
the fields read here have been stable since long before engine 20.10 (API 1.41).
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Generous: a create or start waits for the engine's own locks, which on a loaded
# two-core machine with ten pods starting at once takes seconds, not minutes.
REQUEST_TIMEOUT = 120.0
EXIT_CODE_WAITS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


class EngineError(Exception):
    """The engine answered an error (`status`, its message), or could not be reached
    (`status` 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def missing(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def engine_host(host: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The engine's address: `host`, else `DOCKER_HOST`, else the default socket."""
    env = os.environ if environ is None else environ
    return host or env.get("DOCKER_HOST") or DEFAULT_HOST


def _tls_context(environ: Mapping[str, str]) -> ssl.SSLContext | None:
    """The CLI's TLS settings: `DOCKER_TLS_VERIFY` with `DOCKER_CERT_PATH` (ca.pem,
    cert.pem, key.pem; default ~/.docker)."""
    if not environ.get("DOCKER_TLS_VERIFY"):
        return None
    certs = Path(environ.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    ctx.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
    return ctx


class EngineClient:
    """An async client of one Docker engine; `close()` it when done.

    Its session is made on first use (in the running loop), so a runtime may be built
    outside one.
    """

    def __init__(self, host: str | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.host = engine_host(host, env)
        parts = urlsplit(self.host)
        self._tls: ssl.SSLContext | bool = False
        if parts.scheme == "unix":
            self._socket: str | None = parts.path or "/var/run/docker.sock"
            self._base = "http://docker"
        elif parts.scheme in ("tcp", "http", "https"):
            self._socket = None
            tls = _tls_context(env) if parts.scheme == "tcp" else None
            scheme = "https" if tls is not None or parts.scheme == "https" else "http"
            self._tls = tls if tls is not None else False
            self._base = f"{scheme}://{parts.netloc}"
        else:
            self._socket, self._base = None, ""
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector: aiohttp.BaseConnector
            if self._socket is not None:
                connector = aiohttp.UnixConnector(path=self._socket, limit=0)
            else:
                connector = aiohttp.TCPConnector(limit=0, ssl=self._tls)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        time_limit: float | None = REQUEST_TIMEOUT,
    ) -> Any:
        """One call; the decoded JSON answer (None when empty). Raises `EngineError`."""
        data = await self.send(method, path, params=params, body=body, time_limit=time_limit)
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        time_limit: float | None = REQUEST_TIMEOUT,
    ) -> bytes:
        """One call; the answer's bytes, read to its end. Raises `EngineError`."""
        if not self._base:
            raise EngineError(0, f"the kubelet cannot reach a Docker engine at {self.host!r}: give unix:// or tcp://")
        # a kept-alive connection the engine closed (it restarted) fails the next call on
        # it: a read is safe to send again, once, on a new connection
        attempts = 2 if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                async with self._client().request(
                    method, self._base + path, params=params, json=body,
                    timeout=aiohttp.ClientTimeout(total=time_limit, sock_connect=10),
                ) as resp:
                    data = await resp.read()
                    if resp.status >= 400:
                        raise EngineError(resp.status, _error_message(data, resp.status))
                    return data
            except aiohttp.ServerDisconnectedError as e:
                if attempt < attempts:
                    continue
                why = str(e) or type(e).__name__
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                why = str(e) or type(e).__name__
            break
        raise EngineError(0, f"the Docker engine at {self.host} does not answer: {why}")

    # ---- the calls --------------------------------------------------------------

    async def version(self) -> dict[str, Any]:
        return dict(await self.request("GET", "/version") or {})

    async def list_containers(self, labels: Sequence[str]) -> list[dict[str, Any]]:
        """Every container (any state) carrying all of `labels` (`key` or `key=value`)."""
        params = {"all": "1", "filters": json.dumps({"label": list(labels)})}
        return list(await self.request("GET", "/containers/json", params=params) or [])

    async def inspect_container(self, container_id: str) -> dict[str, Any]:
        return dict(await self.request("GET", f"/containers/{quote(container_id, safe='')}/json") or {})

    async def image_exists(self, image: str) -> bool:
        try:
            await self.request("GET", f"/images/{quote(image, safe='/:@')}/json")
        except EngineError as e:
            if e.missing:
                return False
            raise
        return True

    async def create_container(self, name: str, config: Mapping[str, Any]) -> str:
        answer = await self.request("POST", "/containers/create", params={"name": name}, body=dict(config))
        return str((answer or {}).get("Id") or "")

    async def start_container(self, container_id: str) -> None:
        """Start it; one already running is not an error (the engine answers 304)."""
        await self.request("POST", f"/containers/{quote(container_id, safe='')}/start")

    async def stop_container(self, container_id: str, seconds: int) -> None:
        """The stop signal, then SIGKILL after `seconds`; returns once it has exited."""
        await self.request(
            "POST", f"/containers/{quote(container_id, safe='')}/stop", params={"t": str(seconds)},
            time_limit=seconds + REQUEST_TIMEOUT,
        )

    async def kill_container(self, container_id: str, signal: str) -> None:
        await self.request("POST", f"/containers/{quote(container_id, safe='')}/kill", params={"signal": signal})

    async def remove_container(self, container_id: str) -> None:
        """Remove it forcibly, with its anonymous volumes."""
        await self.request(
            "DELETE", f"/containers/{quote(container_id, safe='')}", params={"force": "1", "v": "1"}
        )

    async def exec_run(self, container_id: str, argv: Sequence[str]) -> tuple[int, bytes]:
        """Run `argv` in the container to its end: (exit code, stdout and stderr as they
        came). Without a tty and a stdin, the engine streams the output as the answer to
        `exec start` and closes it at the end, which plain HTTP reads; cancelling leaves
        the command running, as `docker exec` does when it is interrupted."""
        created = await self.request(
            "POST", f"/containers/{quote(container_id, safe='')}/exec",
            body={"Cmd": list(argv), "AttachStdout": True, "AttachStderr": True, "Tty": False},
        )
        exec_id = quote(str((created or {}).get("Id") or ""), safe="")
        raw = await self.send("POST", f"/exec/{exec_id}/start", body={"Detach": False, "Tty": False}, time_limit=None)
        info: dict[str, Any] = {}
        for pause in EXIT_CODE_WAITS:  # the stream can end a moment before the engine records the exit
            await asyncio.sleep(pause)
            info = dict(await self.request("GET", f"/exec/{exec_id}/json") or {})
            if not info.get("Running"):
                break
        return int(info.get("ExitCode") or 0), demultiplex(raw)


def demultiplex(raw: bytes) -> bytes:
    """The payload of the engine's multiplexed stream (8-byte frame headers: the stream,
    three zero bytes, the big-endian length), in arrival order; anything else as it is."""
    out = bytearray()
    i = 0
    while i < len(raw):
        head = raw[i:i + 8]
        if len(head) < 8 or head[0] not in (0, 1, 2) or head[1:4] != b"\0\0\0":
            return raw if i == 0 else bytes(out + raw[i:])
        size = int.from_bytes(head[4:8], "big")
        out += raw[i + 8:i + 8 + size]
        i += 8 + size
    return bytes(out)


def _error_message(data: bytes, status: int) -> str:
    """The engine's `{"message": ...}`, one line."""
    try:
        message = str(json.loads(data).get("message") or "")
    except (ValueError, AttributeError):
        message = data.decode(errors="replace")
    return " ".join(message.split()) or f"the Docker engine answered {status}"


__all__ = ["DEFAULT_HOST", "EngineClient", "EngineError", "demultiplex", "engine_host"]
