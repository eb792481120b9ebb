"""The kubelet's streaming endpoints: exec, attach and port-forward into its pods.

Mounted on the kubelet's HTTPS server (logserver) and guarded by the same bearer tokens,
so only the API server (which holds `kubelet-client-token`) can open a shell in a pod:
anyone else on the lab network gets a 401 before anything runs.

- `/exec/{ns}/{pod}/{container}?command=..&stdin=&stdout=&stderr=&tty=` and
  `/attach/{ns}/{pod}/{container}?...`: a WebSocket with upstream's channel protocol
  (`v5.channel.k8s.io` or `v4.channel.k8s.io`): every binary message starts with its
  channel, 0 stdin, 1 stdout, 2 stderr, 3 the final `metav1.Status`, 4 a terminal resize
  (`{"Width":W,"Height":H}`), and in v5 255 "close a channel" (`[255, 0]` ends stdin).
  The command runs through the node's dockerd Engine API (`runtime.engine.EngineClient`,
  the runtime's own client): exec create, a hijacked `exec start` stream (8-byte
  multiplexed frames without a tty, raw bytes with one), resize, and the exit code from
  exec inspect. Talking to the engine directly, not via the docker CLI, keeps a round
  trip near `docker exec`'s own.
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
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from tuik8s.kubelet.logserver import TokenFile
from tuik8s.kubelet.runtime.engine import EngineClient, EngineError, docker_host_of, split_frames

log = logging.getLogger(__name__)

CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PORTFORWARD_PROTOCOL = "tuik8s.portforward.v1"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
OCI_FAILURE = b"OCI runtime exec failed"
# an interactive command's exit code: asked for up to two seconds after its stream ends
EXIT_CODE_WAITS = (0.0,) + (0.02,) * 99
READ_CHUNK = 64 * 1024

PodLookup = Callable[[str], Mapping[str, Any] | None]
"""`namespace/name` -> the pod as the kubelet's informer has it (or None)."""


class StreamLookupError(Exception):
    """Nothing to stream to: an HTTP status and upstream's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- the node's Docker engine ----------------------------------------------------------------------


async def resize_soon(engine: EngineClient, kind: str, ident: str, width: int, height: int) -> None:
    """Resize a tty. The first size arrives as the command starts, and dockerd refuses to
    resize a process not running yet ("cannot resize a stopped container"): retry for a
    moment so the size is not lost; an engine that does not answer ends it."""
    for _ in range(50):
        try:
            await engine.resize(kind, ident, width, height)
            return
        except EngineError as e:
            if e.status == 0:
                return
            await asyncio.sleep(0.02)


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


# the engine's stream numbers are the channel protocol's (1 stdout, 2 stderr)
demux = split_frames


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
                 engine: EngineClient | None = None, connect: Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] | None = None) -> None:
        self.pods = pods
        self.tokens = TokenFile(token_file)
        self.engine = engine or EngineClient(docker_host)
        self.connect = connect or (lambda host, port: asyncio.open_connection(host, port))

    def add_routes(self, app: web.Application) -> None:
        for verb in ("GET", "POST"):
            app.router.add_route(verb, "/exec/{namespace}/{pod}/{container}", self.exec)
            app.router.add_route(verb, "/attach/{namespace}/{pod}/{container}", self.attach)
            app.router.add_route(verb, "/portForward/{namespace}/{pod}", self.port_forward)
        app.on_cleanup.append(self._close)

    async def _close(self, _app: web.Application) -> None:
        await self.engine.close()

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
                tty = bool((await self.engine.inspect_container(cid)).get("Config", {}).get("Tty"))
                reader, writer = await self.engine.attach_stream(cid, stdin=stdin, stdout=stdout, stderr=stderr)
                resize: Callable[[int, int], Coroutine[Any, Any, None]] = lambda w, h: resize_soon(self.engine, "containers", cid, w, h)  # noqa: E731
                exit_code: Callable[[], Awaitable[int | None]] | None = None
            else:
                exec_id = await self.engine.exec_create(cid, argv, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
                reader, writer = await self.engine.exec_stream(exec_id, tty)
                resize = lambda w, h: resize_soon(self.engine, "exec", exec_id, w, h)  # noqa: E731
                exit_code = lambda: self.engine.exec_exit_code(exec_id, EXIT_CODE_WAITS)  # noqa: E731
        except StreamLookupError as e:
            return await self._fail(ws, e.status, e.message)
        except EngineError as e:
            if e.status in (404, 409):  # gone, or not running any more
                return await self._fail(ws, 404, f'container not found ("{container}")')
            if e.status == 0:
                return await self._fail(ws, 500, f"cannot reach the node's container runtime: {e}")
            return await self._fail(ws, 500, f"error executing command in container: {e}")
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


__all__ = [
    "CHANNEL_PROTOCOLS",
    "PORTFORWARD_PROTOCOL",
    "StreamLookupError",
    "StreamingServer",
    "demux",
    "docker_host_of",
    "running_container",
    "status_of",
]
