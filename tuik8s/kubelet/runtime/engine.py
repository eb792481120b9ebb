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

The same client serves the kubelet's other engine users: one-shot container stats
(`stats`) and the exec / attach streams of `kubectl exec` (`streaming`). Those two
streams are hijacked connections (`Upgrade: tcp`: after the answer's headers the
connection carries the process's raw bytes both ways), which aiohttp cannot hand over, so
`exec_stream` / `attach_stream` write that one request by hand on a connection of their
own, to the same address.

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
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Generous: a create or start waits for the engine's own locks, which on a loaded
# two-core machine with ten pods starting at once takes seconds, not minutes.
REQUEST_TIMEOUT = 120.0
EXIT_CODE_WAITS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
STREAM_BUFFER = 256 * 1024  # a hijacked stream's read buffer
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


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


def docker_host_of(runtime: object) -> str | None:
    """The docker host a python-on-whales based runtime talks to, if it says."""
    config = getattr(getattr(runtime, "docker", None), "client_config", None)
    host = getattr(config, "host", None)
    return str(host) if host else None


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

    def _stream_tls(self) -> ssl.SSLContext | None:
        """TLS for a hand-made connection, as the session's connector does it (`ssl=False`
        on an https:// host: encrypted, unverified)."""
        if isinstance(self._tls, ssl.SSLContext):
            return self._tls
        if not self._base.startswith("https://"):
            return None
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        return ctx

    @property
    def addressable(self) -> bool:
        """False for a host this client cannot speak to (not unix:// or tcp://)."""
        return bool(self._base)

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

    async def hijack(self, path: str, *, params: Mapping[str, str] | None = None, body: Any = None) -> Stream:
        """`POST path` asking the engine to hijack the connection (`Upgrade: tcp`); the raw
        stream once it has answered 101 (or 200, as older engines do). Raises `EngineError`."""
        if not self._base:
            raise EngineError(0, f"the kubelet cannot reach a Docker engine at {self.host!r}: give unix:// or tcp://")
        try:
            if self._socket is not None:
                reader, writer = await asyncio.open_unix_connection(self._socket, limit=STREAM_BUFFER)
            else:
                parts = urlsplit(self._base)
                reader, writer = await asyncio.open_connection(
                    parts.hostname, parts.port or 2375, ssl=self._stream_tls(), limit=STREAM_BUFFER,
                )
        except (OSError, ValueError) as e:
            raise EngineError(0, f"the Docker engine at {self.host} does not answer: {e}") from None
        try:
            status, headers = await _hijack_request(reader, writer, path, params, body, urlsplit(self._base).netloc)
            if status not in (101, 200):
                raise EngineError(status, _error_message(await _read_body(headers, reader), status))
        except BaseException as e:
            writer.close()
            if isinstance(e, (OSError, asyncio.IncompleteReadError, ValueError)):
                raise EngineError(0, f"the Docker engine at {self.host} does not answer: {e}") from None
            raise
        return reader, writer

    # ---- the calls --------------------------------------------------------------

    async def version(self) -> dict[str, Any]:
        return dict(await self.request("GET", "/version") or {})

    async def list_containers(
        self, labels: Sequence[str], *, running_only: bool = False, time_limit: float | None = REQUEST_TIMEOUT,
    ) -> list[dict[str, Any]]:
        """Every container (any state, or only running ones) carrying all of `labels` (`key`
        or `key=value`)."""
        params = {"filters": json.dumps({"label": list(labels)})}
        if not running_only:
            params["all"] = "1"
        return list(await self.request("GET", "/containers/json", params=params, time_limit=time_limit) or [])

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

    async def container_stats(self, container_id: str, time_limit: float | None = REQUEST_TIMEOUT) -> dict[str, Any]:
        """One reading of the container's usage (`stream=false&one-shot=true`: no waiting
        for a second sample); empty figures for one that is not running."""
        return dict(await self.request(
            "GET", f"/containers/{quote(container_id, safe='')}/stats",
            params={"stream": "false", "one-shot": "true"}, time_limit=time_limit,
        ) or {})

    async def exec_create(
        self, container_id: str, argv: Sequence[str], *,
        stdin: bool = False, stdout: bool = True, stderr: bool = True, tty: bool = False,
    ) -> str:
        """A command ready to start in the container; its exec id."""
        created = await self.request("POST", f"/containers/{quote(container_id, safe='')}/exec", body={
            "Cmd": list(argv), "AttachStdin": stdin, "AttachStdout": stdout, "AttachStderr": stderr, "Tty": tty,
        })
        return str((created or {}).get("Id") or "")

    async def exec_exit_code(self, exec_id: str, waits: Sequence[float] = EXIT_CODE_WAITS) -> int | None:
        """The command's exit code, None while it still runs after `waits`: its stream can
        end a moment before the engine records the exit."""
        for pause in waits:
            await asyncio.sleep(pause)
            info = dict(await self.request("GET", f"/exec/{quote(exec_id, safe='')}/json") or {})
            if not info.get("Running"):
                code = info.get("ExitCode")
                return int(code) if code is not None else None
        return None

    async def exec_run(self, container_id: str, argv: Sequence[str]) -> tuple[int, bytes]:
        """Run `argv` in the container to its end: (exit code, stdout and stderr as they
        came). Without a tty and a stdin, the engine streams the output as the answer to
        `exec start` and closes it at the end, which plain HTTP reads; cancelling leaves
        the command running, as `docker exec` does when it is interrupted."""
        exec_id = await self.exec_create(container_id, argv)
        raw = await self.send("POST", f"/exec/{quote(exec_id, safe='')}/start", body={"Detach": False, "Tty": False}, time_limit=None)
        return await self.exec_exit_code(exec_id) or 0, demultiplex(raw)

    async def exec_stream(self, exec_id: str, tty: bool) -> Stream:
        """Start a created command with its stdio on a hijacked stream: raw bytes with a
        tty, else the multiplexed frames (`split_frames`)."""
        return await self.hijack(f"/exec/{quote(exec_id, safe='')}/start", body={"Detach": False, "Tty": tty})

    async def attach_stream(self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool) -> Stream:
        """The running container's stdio on a hijacked stream (as `docker attach`)."""
        params = {"stream": "1", "stdin": str(int(stdin)), "stdout": str(int(stdout)), "stderr": str(int(stderr))}
        return await self.hijack(f"/containers/{quote(container_id, safe='')}/attach", params=params)

    async def resize(self, kind: str, ident: str, width: int, height: int) -> None:
        """Resize the tty of an `exec` or of a `containers`' process."""
        await self.request("POST", f"/{kind}/{quote(ident, safe='')}/resize", params={"h": str(height), "w": str(width)})


async def _hijack_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str,
    params: Mapping[str, str] | None, body: Any, host: str,
) -> tuple[int, dict[str, str]]:
    """Write the upgrade request; the answer's status and headers (lower-case names)."""
    data = json.dumps(body).encode() if body is not None else b""
    target = path + ("?" + urlencode(dict(params)) if params else "")
    head = [f"POST {target} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(data)}",
            "Connection: Upgrade", "Upgrade: tcp"]
    if body is not None:
        head.append("Content-Type: application/json")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
    parts = (await reader.readline()).split(None, 2)
    status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return status, headers
        key, _, value = line.decode("latin-1").partition(":")
        headers[key.strip().lower()] = value.strip()


async def _read_body(headers: Mapping[str, str], reader: asyncio.StreamReader) -> bytes:
    """An error answer's body on a connection read by hand (chunked, sized or to its end)."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out = bytearray()
        while size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16):
            out += await reader.readexactly(size)
            await reader.readline()
        return bytes(out)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read()


def split_frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Whole frames of the engine's multiplexed stream (`[stream,0,0,0,size32]payload`) as
    (stream, payload), consumed from the front of `buffer`; a partial frame stays there for
    the next read. Stream 2 is stderr; 0 and 1 are stdout."""
    frames: list[tuple[int, bytes]] = []
    while len(buffer) >= 8:
        stream, size = buffer[0], struct.unpack(">I", buffer[4:8])[0]
        if len(buffer) < 8 + size:
            break
        frames.append((2 if stream == 2 else 1, bytes(buffer[8:8 + size])))
        del buffer[:8 + size]
    return frames


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


__all__ = ["DEFAULT_HOST", "EngineClient", "EngineError", "demultiplex", "docker_host_of", "engine_host", "split_frames"]
