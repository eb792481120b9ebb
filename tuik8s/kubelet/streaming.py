"""The kubelet's streaming endpoints: exec, attach and port-forward into its pods.

Mounted on the kubelet's HTTPS server (logserver) and guarded by the same bearer tokens,
so only the API server (which holds `kubelet-client-token`) can open a shell in a pod:
anyone else on the lab network gets a 401 before anything runs.

- `/exec/{ns}/{pod}/{container}?command=..&stdin=&stdout=&stderr=&tty=` and
  `/attach/{ns}/{pod}/{container}?...`: a WebSocket with upstream's channel protocol
  (`v5.channel.k8s.io` or `v4.channel.k8s.io`): every binary message starts with its
  channel, 0 stdin, 1 stdout, 2 stderr, 3 the final `metav1.Status`, 4 a terminal resize
  (`{"Width":W,"Height":H}`), and in v5 255 "close a channel" (`[255, 0]` ends stdin).
  The command runs through the node's dockerd Engine API on its unix socket: exec
  create, a hijacked `exec start` stream (8-byte multiplexed frames without a tty, raw
  bytes with one), resize, and the exit code from exec inspect. Talking to the socket
  directly, not via the docker CLI, keeps a round trip near `docker exec`'s own.
- `/portForward/{ns}/{pod}?port=N`: one WebSocket per forwarded connection, carrying
  raw bytes to the pod IP and port (the pod's network namespace answers on its IP from
  the node); an empty binary message means the client finished sending (half-close).
  The API server speaks kubectl's SPDY-in-WebSocket protocol and opens one of these per
  SPDY stream pair; this hop stays simple on purpose.

Lookups fail before anything runs. Because the API server must answer kubectl's HTTP
upgrade with the kubelet's error, the kubelet upgrades first and then sends one text
message: empty when the stream is ready, or `{"code": C, "message": M}` when it is not
(`pod does not exist`, `container not found ("c")`, as upstream's kubelet words them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import struct
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import WSMsgType, web

from tuik8s.kubelet.logserver import TokenFile

log = logging.getLogger(__name__)

CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PORTFORWARD_PROTOCOL = "tuik8s.portforward.v1"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"
OCI_FAILURE = b"OCI runtime exec failed"
READ_CHUNK = 64 * 1024

PodLookup = Callable[[str], Mapping[str, Any] | None]
"""`namespace/name` -> the pod as the kubelet's informer has it (or None)."""


class StreamLookupError(Exception):
    """Nothing to stream to: an HTTP status and upstream's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- the node's Docker engine over its unix socket -----------------------------------------------


class DockerEngineError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def docker_socket(host: str | None) -> str:
    """The unix socket path of a docker host (`unix:///...`), else the default one."""
    host = host or os.environ.get("DOCKER_HOST") or ""
    if host.startswith("unix://"):
        return urlsplit(host).path or DEFAULT_DOCKER_SOCKET
    return DEFAULT_DOCKER_SOCKET


class DockerEngine:
    """The few Engine API calls exec and attach need; one connection per call.

    aiohttp cannot hand over a hijacked (`Upgrade: tcp`) connection, so requests are
    written by hand: a request line, headers, a JSON body, and `Connection: close` for
    the plain calls so their body simply ends with the connection.
    """

    def __init__(self, socket_path: str = DEFAULT_DOCKER_SOCKET) -> None:
        self.socket_path = socket_path

    async def _open(self, method: str, path: str, body: Any, upgrade: bool) -> tuple[int, dict[str, str], asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_unix_connection(self.socket_path, limit=READ_CHUNK * 4)
        data = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {path} HTTP/1.1", "Host: docker", f"Content-Length: {len(data)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        head += ["Connection: Upgrade", "Upgrade: tcp"] if upgrade else ["Connection: close"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        status_line = await reader.readline()
        parts = status_line.split(None, 2)
        status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        return status, headers, reader, writer

    async def _body(self, headers: dict[str, str], reader: asyncio.StreamReader) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    break
                out += await reader.readexactly(size)
                await reader.readline()
            return bytes(out)
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        return await reader.read()

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        status, headers, reader, writer = await self._open(method, path, body, upgrade=False)
        try:
            data = await self._body(headers, reader)
        finally:
            writer.close()
        if status >= 400:
            try:
                message = str(json.loads(data).get("message") or "")
            except (ValueError, AttributeError):
                message = data.decode(errors="replace").strip()
            raise DockerEngineError(status, message or f"the Docker engine answered {status}")
        return json.loads(data) if data.strip() else None

    async def hijack(self, path: str, body: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        status, headers, reader, writer = await self._open("POST", path, body, upgrade=True)
        if status not in (101, 200):
            data = await self._body(headers, reader)
            writer.close()
            try:
                message = str(json.loads(data).get("message") or "")
            except (ValueError, AttributeError):
                message = data.decode(errors="replace").strip()
            raise DockerEngineError(status, message)
        return reader, writer

    async def exec_create(self, container_id: str, argv: Sequence[str], *, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> str:
        created = await self.call("POST", f"/containers/{quote(container_id)}/exec", {
            "AttachStdin": stdin, "AttachStdout": stdout, "AttachStderr": stderr, "Tty": tty, "Cmd": list(argv),
        })
        return str(created["Id"])

    async def exec_start(self, exec_id: str, tty: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await self.hijack(f"/exec/{exec_id}/start", {"Detach": False, "Tty": tty})

    async def exec_exit_code(self, exec_id: str) -> int | None:
        """The command's exit code; its stream can end a moment before dockerd records it."""
        for _ in range(100):
            info = await self.call("GET", f"/exec/{exec_id}/json")
            if not info.get("Running"):
                code = info.get("ExitCode")
                return int(code) if code is not None else None
            await asyncio.sleep(0.02)
        return None

    async def container(self, container_id: str) -> dict[str, Any]:
        return dict(await self.call("GET", f"/containers/{quote(container_id)}/json"))

    async def attach(self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        query = f"stream=1&stdin={int(stdin)}&stdout={int(stdout)}&stderr={int(stderr)}"
        return await self.hijack(f"/containers/{quote(container_id)}/attach?{query}", None)

    async def resize(self, kind: str, ident: str, width: int, height: int) -> None:
        """Resize a tty. The first size arrives as the command starts, and dockerd refuses
        to resize a process not running yet ("cannot resize a stopped container"): retry
        for a moment so the size is not lost."""
        for _ in range(50):
            try:
                await self.call("POST", f"/{kind}/{ident}/resize?h={height}&w={width}")
                return
            except DockerEngineError:
                await asyncio.sleep(0.02)
            except OSError:
                return


# --- pure helpers --------------------------------------------------------------------------------


def status_of(exit_code: int | None, argv: Sequence[str]) -> dict[str, Any]:
    """The `metav1.Status` upstream's kubelet writes on the error channel at the end."""
    if not exit_code:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command [{' '.join(argv)}], exit code {exit_code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
    }


def internal_error(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {message}", "reason": "InternalError",
            "details": {"causes": [{"message": message}]}, "code": 500}


def demux(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Whole frames of Docker's multiplexed stream (`[stream,0,0,0,size32]payload`), consumed
    from the front of `buffer`; a partial frame stays for the next read."""
    frames: list[tuple[int, bytes]] = []
    while len(buffer) >= 8:
        stream, size = buffer[0], struct.unpack(">I", buffer[4:8])[0]
        if len(buffer) < 8 + size:
            break
        frames.append((STDERR if stream == 2 else STDOUT, bytes(buffer[8:8 + size])))
        del buffer[:8 + size]
    return frames


def _flag(query: Mapping[str, str], key: str) -> bool:
    return query.get(key, "").lower() in ("true", "1")


def _container_id(value: Any) -> str:
    return str(value or "").split("://", 1)[-1]


def running_container(pod: Mapping[str, Any] | None, container: str) -> str:
    """The id of the running container `container` of `pod`, or upstream's kubelet error."""
    if pod is None:
        raise StreamLookupError(404, "pod does not exist")
    status = pod.get("status") or {}
    for s in [*(status.get("containerStatuses") or []), *(status.get("initContainerStatuses") or []),
              *(status.get("ephemeralContainerStatuses") or [])]:
        if s.get("name") == container and "running" in (s.get("state") or {}):
            cid = _container_id(s.get("containerID"))
            if cid:
                return cid
    raise StreamLookupError(404, f'container not found ("{container}")')


# --- the server ----------------------------------------------------------------------------------


class StreamingServer:
    """exec / attach / portForward handlers; `add_routes` mounts them on an aiohttp app."""

    def __init__(self, pods: PodLookup, *, token_file: Path | None, docker_host: str | None = None,
                 engine: DockerEngine | None = None, connect: Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] | None = None) -> None:
        self.pods = pods
        self.tokens = TokenFile(token_file)
        self.engine = engine or DockerEngine(docker_socket(docker_host))
        self.connect = connect or (lambda host, port: asyncio.open_connection(host, port))

    def add_routes(self, app: web.Application) -> None:
        for verb in ("GET", "POST"):
            app.router.add_route(verb, "/exec/{namespace}/{pod}/{container}", self.exec)
            app.router.add_route(verb, "/attach/{namespace}/{pod}/{container}", self.attach)
            app.router.add_route(verb, "/portForward/{namespace}/{pod}", self.port_forward)

    # ---- exec / attach ----------------------------------------------------------------------

    def _refuse(self, request: web.Request, protocols: Sequence[str]) -> web.Response | None:
        if not self.tokens.accepts(request.headers.get("Authorization")):
            return web.Response(status=401, text="Unauthorized\n")
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        if request.headers.get("Upgrade", "").lower() != "websocket" or not set(offered) & set(protocols):
            return web.Response(status=400, text=f"this endpoint needs a WebSocket with one of the protocols {', '.join(protocols)}\n")
        return None

    async def _open(self, request: web.Request, protocols: Sequence[str]) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=tuple(protocols), max_msg_size=0, autoping=True)
        await ws.prepare(request)
        return ws

    async def _fail(self, ws: web.WebSocketResponse, status: int, message: str) -> web.WebSocketResponse:
        await ws.send_str(json.dumps({"code": status, "message": message}))
        await ws.close()
        return ws

    async def exec(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, attach=False)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, attach=True)

    async def _stream(self, request: web.Request, attach: bool) -> web.StreamResponse:
        refused = self._refuse(request, CHANNEL_PROTOCOLS)
        if refused is not None:
            return refused
        ns, pod_name, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        query = request.query
        argv = query.getall("command", [])
        stdin, stdout, stderr, tty = (_flag(query, k) for k in ("stdin", "stdout", "stderr", "tty"))
        ws = await self._open(request, CHANNEL_PROTOCOLS)
        v5 = ws.ws_protocol == CHANNEL_PROTOCOLS[0]
        if not (stdin or stdout or stderr):
            return await self._fail(ws, 400, "you must specify at least one of stdin, stdout, stderr")
        if not attach and not argv:
            return await self._fail(ws, 400, "you must specify at least 1 command")
        try:
            cid = running_container(self.pods(f"{ns}/{pod_name}"), container)
            if attach:
                tty = bool((await self.engine.container(cid)).get("Config", {}).get("Tty"))
                reader, writer = await self.engine.attach(cid, stdin=stdin, stdout=stdout, stderr=stderr)
                resize: Callable[[int, int], Coroutine[Any, Any, None]] = lambda w, h: self.engine.resize("containers", cid, w, h)  # noqa: E731
                exit_code: Callable[[], Awaitable[int | None]] | None = None
            else:
                exec_id = await self.engine.exec_create(cid, argv, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
                reader, writer = await self.engine.exec_start(exec_id, tty)
                resize = lambda w, h: self.engine.resize("exec", exec_id, w, h)  # noqa: E731
                exit_code = lambda: self.engine.exec_exit_code(exec_id)  # noqa: E731
        except StreamLookupError as e:
            return await self._fail(ws, e.status, e.message)
        except DockerEngineError as e:
            if e.status in (404, 409):  # gone, or not running any more
                return await self._fail(ws, 404, f'container not found ("{container}")')
            return await self._fail(ws, 500, f"error executing command in container: {e}")
        except OSError as e:
            return await self._fail(ws, 500, f"cannot reach the node's container runtime: {e.strerror or e}")
        await ws.send_str("")
        try:
            await self._pump(ws, reader, writer, tty=tty, v5=v5, resize=resize, exit_code=exit_code, argv=argv)
        finally:
            writer.close()
            if not ws.closed:
                await ws.close()
        return ws

    async def _pump(self, ws: web.WebSocketResponse, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                    tty: bool, v5: bool, resize: Callable[[int, int], Coroutine[Any, Any, None]],
                    exit_code: Callable[[], Awaitable[int | None]] | None, argv: Sequence[str]) -> None:
        resizing: asyncio.Task[None] | None = None

        async def inbound() -> None:
            nonlocal resizing
            async for msg in ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    continue
                channel, payload = msg.data[0], msg.data[1:]
                if channel == STDIN and payload:
                    writer.write(payload)
                    await writer.drain()
                elif channel == RESIZE:
                    with contextlib.suppress(ValueError, TypeError, AttributeError):
                        size = json.loads(payload)
                        if resizing is not None:
                            resizing.cancel()  # the newest size wins
                        resizing = asyncio.create_task(resize(int(size.get("Width") or 0), int(size.get("Height") or 0)))
                elif channel == CLOSE and v5 and payload[:1] == bytes([STDIN]) and exit_code is not None and writer.can_write_eof():
                    # exec only: dockerd closes the command's stdin and keeps its output
                    # flowing; an attach's output would end with its stdin (the container's
                    # stdin stays open unless it is StdinOnce, which dockerd is not told)
                    writer.write_eof()
            # the client went away: closing the hijacked stream ends the command's stdin
            writer.close()

        async def outbound() -> bytes:
            held = b""  # a first chunk that may be dockerd's "OCI runtime exec failed" message
            first = True
            buffer = bytearray()
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    return held
                if tty:
                    frames = [(STDOUT, data)]
                else:
                    buffer += data
                    frames = demux(buffer)
                for channel, payload in frames:
                    if first and exit_code is not None and payload.startswith(OCI_FAILURE):
                        held = payload
                    else:
                        if held:
                            await ws.send_bytes(bytes([STDOUT]) + held)
                            held = b""
                        await ws.send_bytes(bytes([channel]) + payload)
                    first = False

        reading = asyncio.create_task(inbound())
        try:
            held = await outbound()
        except (ConnectionError, asyncio.IncompleteReadError):
            held = b""
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
            if resizing is not None:
                resizing.cancel()
        if ws.closed:
            return
        code = await exit_code() if exit_code is not None else 0
        if held and code in (126, 127):
            status = internal_error(f"error executing command in container: failed to exec in container: {held.decode(errors='replace').strip()}")
        else:
            if held:
                await ws.send_bytes(bytes([STDOUT]) + held)
            status = status_of(code, argv)
        await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())

    # ---- port-forward -----------------------------------------------------------------------

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        refused = self._refuse(request, (PORTFORWARD_PROTOCOL,))
        if refused is not None:
            return refused
        ns, pod_name = request.match_info["namespace"], request.match_info["pod"]
        ws = await self._open(request, (PORTFORWARD_PROTOCOL,))
        try:
            port = int(request.query.get("port", ""))
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            return await self._fail(ws, 400, f"invalid port {request.query.get('port', '')!r}: give a port between 1 and 65535")
        pod = self.pods(f"{ns}/{pod_name}")
        if pod is None:
            return await self._fail(ws, 404, "pod does not exist")
        ip = (pod.get("status") or {}).get("podIP") or ""
        uid = (pod.get("metadata") or {}).get("uid") or ""
        if not ip:
            return await self._fail(ws, 400, f"error forwarding port {port} to pod {pod_name}_{ns}, uid {uid}: the pod has no IP yet")
        host_ip = (pod.get("spec") or {}).get("hostNetwork") and "127.0.0.1" or ip
        try:
            reader, writer = await asyncio.wait_for(self.connect(host_ip, port), 10)
        except (OSError, TimeoutError) as e:
            why = "connect: connection refused" if isinstance(e, ConnectionRefusedError) else (getattr(e, "strerror", None) or str(e) or "timed out")
            return await self._fail(ws, 500, f"error forwarding port {port} to pod {pod_name}_{ns}, uid {uid}: dial tcp {ip}:{port}: {why}")
        await ws.send_str("")
        try:
            await relay_bytes(ws, reader, writer)
        finally:
            writer.close()
            if not ws.closed:
                await ws.close()
        return ws


async def relay_bytes(ws: web.WebSocketResponse, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Bytes both ways between a WebSocket and a TCP connection: an empty message from the
    WebSocket is the client's FIN (passed on as a half-close); the pod's FIN ends it all."""

    async def inbound() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                continue
            if not msg.data:
                if writer.can_write_eof():
                    writer.write_eof()
                continue
            writer.write(msg.data)
            await writer.drain()
        writer.close()  # the client went away: so does the pod's connection

    reading = asyncio.create_task(inbound())
    try:
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                break
            await ws.send_bytes(data)
        # the pod finished (closed or half-closed): so is this connection, as upstream's
        # kubelet ends a forwarded connection when the pod's side ends
        await ws.send_bytes(b"")
    except ConnectionError:
        pass
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reading


def docker_host_of(runtime: object) -> str | None:
    """The docker host a python-on-whales based runtime talks to, if it says."""
    config = getattr(getattr(runtime, "docker", None), "client_config", None)
    host = getattr(config, "host", None)
    return str(host) if host else None


__all__ = [
    "CHANNEL_PROTOCOLS",
    "PORTFORWARD_PROTOCOL",
    "DockerEngine",
    "StreamLookupError",
    "StreamingServer",
    "demux",
    "docker_host_of",
    "running_container",
    "status_of",
]
