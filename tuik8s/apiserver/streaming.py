"""`pods/exec`, `pods/attach` and `pods/portforward`: kubectl's streams, relayed to kubelets.

What kubectl 1.32 sends (seen on the wire):

- exec/attach: `GET .../pods/NAME/exec?command=..&container=..&stdin=&stdout=&stderr=&tty=`
  upgrading to a WebSocket with subprotocol `v5.channel.k8s.io` (other clients may offer
  `v4.channel.k8s.io`). If that upgrade is refused it retries the same with a SPDY
  `POST`, and prints the retry's error: `unable to upgrade connection: <body>` for a
  plain-text body, `Error from server (<reason>): <message>` for a Status.
- port-forward: `GET .../pods/NAME/portforward` (no query) upgrading to a WebSocket with
  subprotocol `SPDY/3.1+portforward.k8s.io`, a SPDY/3.1 connection tunnelled in binary
  messages (see `spdy`). Per forwarded connection kubectl opens an `error` and a `data`
  stream with headers `streamtype`, `port`, `requestid`.

The API server checks what upstream's checks here (the pod exists, names the container,
is bound to a node), then opens a WebSocket to the pod's kubelet (the same HTTPS server
and token as `pods/log`, see `kubelets`) and only upgrades kubectl's connection once the
kubelet said the stream is ready, so a kubelet's refusal (`container not found ("c")`)
becomes kubectl's upgrade error as upstream's. Exec/attach frames are relayed verbatim
(the kubelet speaks the same channel protocol); port-forward terminates SPDY here and opens
one kubelet WebSocket per stream pair.

kubectl's SPDY fallback (and SPDY-only clients) are served too (see `spdyupgrade`), with the
same checks, so a refusal reads the same whichever way kubectl asked last. The official
Python client's port-forward (`v4.channel.k8s.io`, `?ports=`) is served as upstream's
channel flavour.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import WSMsgType, web

from tuik8s.api import errors
from tuik8s.apiserver.kubelets import KubeletClient
from tuik8s.apiserver.spdy import SpdySession, SpdyStream
from tuik8s.apiserver.spdyupgrade import (
    expected_streams,
    offered_versions,
    serve_exec,
    upgrade,
    wants_spdy,
)
from tuik8s.store.base import Store
from tuik8s.store.sqlite import decode

log = logging.getLogger(__name__)

CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
KUBELET_PORTFORWARD_PROTOCOL = "tuik8s.portforward.v1"
SPDY_CHANNEL_PROTOCOL = "v4.channel.k8s.io"
SPDY_PORTFORWARD_PROTOCOL = "portforward.k8s.io"
STREAM_PARAMS = ("command", "stdin", "stdout", "stderr", "tty")


class Refusal(Exception):
    """The stream cannot open: an HTTP status and a plain-text body, as a kubelet's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def offered(request: web.Request) -> list[str]:
    return [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]


def is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def choose_container(pod: Mapping[str, Any], name: str) -> str:
    """The container a stream is for, or upstream's BadRequest."""
    spec = pod.get("spec") or {}
    pod_name = (pod.get("metadata") or {}).get("name", "")
    containers = [str(c.get("name")) for c in spec.get("containers") or []]
    others = [str(c.get("name")) for c in [*(spec.get("initContainers") or []), *(spec.get("ephemeralContainers") or [])]]
    if not name:
        if len(containers) == 1:
            return containers[0]
        raise errors.bad_request(
            f"a container name must be specified for pod {pod_name}, choose one of: [{' '.join(containers)}]"
            + (f" or one of the init containers: [{' '.join(others)}]" if others else "")
        )
    if name not in containers and name not in others:
        raise errors.bad_request(f"container {name} is not valid for pod {pod_name}")
    return name


class PodStreams:
    """aiohttp handlers for the three streaming subresources of pods."""

    def __init__(self, store: Store, kubelets: KubeletClient) -> None:
        self.store = store
        self.kubelets = kubelets

    def add_routes(self, app: web.Application) -> None:
        base = "/api/v1/namespaces/{namespace}/pods/{name}/"
        app.router.add_route("*", base + "exec", self.exec)
        app.router.add_route("*", base + "attach", self.attach)
        app.router.add_route("*", base + "portforward", self.port_forward)

    # ---- shared -------------------------------------------------------------------------

    def _pod(self, request: web.Request) -> dict[str, Any]:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        stored = self.store.get("pods", ns, name)
        if stored is None:
            raise errors.not_found("pods", name, "", "pods")
        return decode(stored)

    @staticmethod
    def _placed(pod: dict[str, Any]) -> dict[str, Any]:
        if not (pod.get("spec") or {}).get("nodeName"):
            raise errors.bad_request(f"pod {pod['metadata']['name']} does not have a host assigned")
        return pod

    @staticmethod
    def _no_upgrade(sub: str) -> errors.StatusError:
        return errors.bad_request(
            f"pods/{sub} streams over an upgraded connection: a WebSocket ({CHANNEL_PROTOCOLS[0]}"
            f" or {TUNNEL_PROTOCOL}) or SPDY/3.1"
        )

    async def _dial(self, pod: dict[str, Any], path: str, query: list[tuple[str, str]], protocol: str, what: str) -> aiohttp.ClientWebSocketResponse:
        """A ready kubelet stream, or `Refusal` with the kubelet's reason."""
        host, port = self.kubelets.endpoint(pod, what)
        node = (pod.get("spec") or {}).get("nodeName")
        try:
            ws = await self.kubelets.session().ws_connect(
                f"https://{host}:{port}{path}", params=query, protocols=(protocol,), max_msg_size=0,
                headers={"Authorization": f"Bearer {self.kubelets.token}"}, autoping=True,
            )
        except aiohttp.WSServerHandshakeError as e:
            if e.status in (401, 403):
                raise Refusal(500, f'the kubelet of node "{node}" refused the API server\'s credentials ({e.status})') from None
            raise Refusal(500, f'the kubelet of node "{node}" cannot stream {what} ({e.status} {e.message})') from None
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise Refusal(503, f'cannot reach the kubelet of node "{node}" at {host}:{port}: {e or type(e).__name__}') from None
        msg = await ws.receive()
        if msg.type == WSMsgType.TEXT and msg.data == "":
            return ws
        await ws.close()
        try:
            doc = json.loads(msg.data) if msg.type == WSMsgType.TEXT else {}
        except ValueError:
            doc = {}
        raise Refusal(int(doc.get("code") or 500), str(doc.get("message") or f'the kubelet of node "{node}" closed the stream'))

    # ---- exec / attach ------------------------------------------------------------------

    async def exec(self, request: web.Request) -> web.StreamResponse:
        return await self._channels(request, "exec")

    async def attach(self, request: web.Request) -> web.StreamResponse:
        return await self._channels(request, "attach")

    async def _channels(self, request: web.Request, sub: str) -> web.StreamResponse:
        if request.method not in ("GET", "POST"):
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        pod = self._pod(request)
        container = choose_container(pod, request.query.get("container", ""))
        self._placed(pod)
        spdy = not is_websocket(request) and wants_spdy(request)
        if spdy:
            if SPDY_CHANNEL_PROTOCOL not in offered_versions(request):
                raise errors.bad_request(f"pods/{sub} over SPDY needs the stream protocol {SPDY_CHANNEL_PROTOCOL}")
            protocol = CHANNEL_PROTOCOLS[0]  # to the kubelet: v5 passes the end of stdin on
        elif is_websocket(request):
            found = next((p for p in offered(request) if p in CHANNEL_PROTOCOLS), None)
            if found is None:
                raise errors.bad_request(f"pods/{sub} needs one of the WebSocket protocols {', '.join(CHANNEL_PROTOCOLS)}")
            protocol = found
        else:
            raise self._no_upgrade(sub)
        meta = pod["metadata"]
        query = [(k, v) for k, v in request.query.items() if k in STREAM_PARAMS]
        path = f"/{sub}/{quote(meta['namespace'])}/{quote(meta['name'])}/{quote(container)}"
        try:
            upstream = await self._dial(pod, path, query, protocol, sub)
        except Refusal as e:
            return web.Response(status=e.status, text=e.message)
        try:
            if spdy:
                link = await upgrade(request, SPDY_CHANNEL_PROTOCOL)
                await serve_exec(link, upstream, expected_streams(request.query))
                return link.response
            ws = web.WebSocketResponse(protocols=(protocol,), max_msg_size=0, autoping=True)
            await ws.prepare(request)
            await relay_messages(ws, upstream)
            return ws
        finally:
            await upstream.close()

    # ---- port-forward -------------------------------------------------------------------

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "POST"):
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        pod = self._placed(self._pod(request))
        if not is_websocket(request):
            if not wants_spdy(request):
                raise self._no_upgrade("portforward")
            if SPDY_PORTFORWARD_PROTOCOL not in offered_versions(request):
                raise errors.bad_request(f"pods/portforward over SPDY needs the stream protocol {SPDY_PORTFORWARD_PROTOCOL}")
            link = await upgrade(request, SPDY_PORTFORWARD_PROTOCOL)
            await PortForwardSession(self, pod, link).run()
            return link.response
        protocols = offered(request)
        if TUNNEL_PROTOCOL in protocols:
            ws = web.WebSocketResponse(protocols=(TUNNEL_PROTOCOL,), max_msg_size=0, autoping=True)
            await ws.prepare(request)
            await PortForwardSession(self, pod, WebSocketLink(ws)).run()
            return ws
        if not protocols or CHANNEL_PROTOCOLS[1] in protocols:
            return await self._channel_port_forward(request, pod, protocols)
        raise errors.bad_request(f"pods/portforward needs the WebSocket protocol {TUNNEL_PROTOCOL} or {CHANNEL_PROTOCOLS[1]}")

    async def _channel_port_forward(self, request: web.Request, pod: dict[str, Any], protocols: list[str]) -> web.StreamResponse:
        """The channel flavour other clients (the official Python client) use: `?ports=A,B`,
        one connection per port, channel 2i carrying port i's bytes and 2i+1 its errors,
        each channel opening with its port as two little-endian bytes."""
        ports: list[int] = []
        for value in request.query.getall("ports", []):
            for part in value.split(","):
                if not part.strip().isdigit() or not 0 < int(part) < 65536:
                    raise errors.bad_request(f'invalid port "{part.strip()}": give ports between 1 and 65535')
                ports.append(int(part))
        if not ports:
            raise errors.bad_request("query parameter ports is required: ?ports=8080")
        meta = pod["metadata"]
        path = f"/portForward/{quote(meta['namespace'])}/{quote(meta['name'])}"
        ws = web.WebSocketResponse(protocols=(CHANNEL_PROTOCOLS[1],) if protocols else (), max_msg_size=0, autoping=True)
        await ws.prepare(request)
        kubelets: list[aiohttp.ClientWebSocketResponse | None] = []
        for i, port in enumerate(ports):
            for channel in (2 * i, 2 * i + 1):
                await ws.send_bytes(bytes([channel]) + port.to_bytes(2, "little"))
            try:
                kubelets.append(await self._dial(pod, path, [("port", str(port))], KUBELET_PORTFORWARD_PROTOCOL, "port-forward"))
            except (Refusal, errors.StatusError) as e:
                kubelets.append(None)
                await ws.send_bytes(bytes([2 * i + 1]) + str(getattr(e, "message", e)).encode())

        async def down(i: int, kubelet: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in kubelet:
                if msg.type == WSMsgType.BINARY:
                    if not msg.data:
                        return  # the pod closed: this protocol has no half-close, so the port is done
                    await ws.send_bytes(bytes([2 * i]) + msg.data)

        tasks = [asyncio.create_task(down(i, k)) for i, k in enumerate(kubelets) if k is not None]
        try:
            if tasks:
                ups = asyncio.create_task(self._channel_ups(ws, kubelets))
                # until every port's pod side ended, or the client went away
                await asyncio.wait([*tasks, ups], return_when=asyncio.FIRST_COMPLETED)
                while not ups.done() and not all(t.done() for t in tasks):
                    await asyncio.wait([*tasks, ups], return_when=asyncio.FIRST_COMPLETED)
                ups.cancel()
        finally:
            for task in tasks:
                task.cancel()
            for kubelet in kubelets:
                if kubelet is not None:
                    await kubelet.close()
            if not ws.closed:
                await ws.close()
        return ws

    @staticmethod
    async def _channel_ups(ws: web.WebSocketResponse, kubelets: list[aiohttp.ClientWebSocketResponse | None]) -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or len(msg.data) < 2:
                continue
            channel, i = msg.data[0], msg.data[0] // 2
            if channel % 2 == 0 and i < len(kubelets) and (kubelet := kubelets[i]) is not None:
                await kubelet.send_bytes(msg.data[1:])


async def relay_messages(client: web.WebSocketResponse, kubelet: aiohttp.ClientWebSocketResponse) -> None:
    """Binary messages both ways until either side closes; then close the other."""

    async def up() -> None:
        async for msg in client:
            if msg.type == WSMsgType.BINARY:
                await kubelet.send_bytes(msg.data)
        await kubelet.close()

    sending = asyncio.create_task(up())
    try:
        async for msg in kubelet:
            if msg.type == WSMsgType.BINARY:
                await client.send_bytes(msg.data)
    except ConnectionError:
        pass
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sending
        if not client.closed:
            await client.close()


class WebSocketLink:
    """A byte stream carried in a WebSocket's binary messages (kubectl's SPDY tunnel)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._buffer = bytearray()

    async def read_exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.BINARY:
                self._buffer += msg.data
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                raise ConnectionError("the client closed the connection")
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def write(self, data: bytes) -> None:
        if self.ws.closed:
            raise ConnectionError("the client closed the connection")
        await self.ws.send_bytes(data)

    async def close(self) -> None:
        if not self.ws.closed:
            await self.ws.close()


class PortForwardSession:
    """One `kubectl port-forward`: a SPDY connection (in kubectl's WebSocket, or a plain SPDY
    upgrade), and a kubelet WebSocket per forwarded connection (a pair of `error` + `data`
    streams)."""

    def __init__(self, streams: PodStreams, pod: dict[str, Any], link: Any) -> None:
        self.streams = streams
        self.pod = pod
        self.link = link
        self._pairs: dict[str, dict[str, SpdyStream]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _on_stream(self, stream: SpdyStream) -> None:
        request_id = stream.headers.get("requestid", "")
        pair = self._pairs.setdefault(request_id, {})
        pair[stream.headers.get("streamtype", "")] = stream
        if "error" in pair and "data" in pair:
            del self._pairs[request_id]
            task = asyncio.create_task(self._forward(pair["error"], pair["data"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        self.session = SpdySession(self.link.read_exactly, self.link.write, self._on_stream)
        try:
            await self.session.run()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as e:  # noqa: BLE001 - a broken peer ends its own session only
            log.info("port-forward session ended: %s", e)
        finally:
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.link.close()

    async def _forward(self, error: SpdyStream, data: SpdyStream) -> None:
        meta = self.pod["metadata"]
        port = data.headers.get("port", "")
        path = f"/portForward/{quote(meta['namespace'])}/{quote(meta['name'])}"
        try:
            try:
                if not port.isdigit() or not 0 < int(port) < 65536:
                    raise Refusal(400, f'invalid port "{port}": give a port between 1 and 65535')
                kubelet = await self.streams._dial(self.pod, path, [("port", port)], KUBELET_PORTFORWARD_PROTOCOL, "port-forward")
            except (Refusal, errors.StatusError) as e:
                await error.write(str(getattr(e, "message", e)).encode())
                return
            try:
                await relay_stream(data, kubelet)
            finally:
                await kubelet.close()
        finally:
            await error.close()
            await data.close()
            self.session.forget(error)
            self.session.forget(data)


async def relay_stream(stream: SpdyStream, kubelet: aiohttp.ClientWebSocketResponse) -> None:
    """A data stream to a kubelet WebSocket and back, keeping half-closes: the client's
    FIN becomes an empty message, the kubelet's empty message our FIN."""

    async def up() -> None:
        while True:
            chunk = await stream.read()
            if not chunk:
                if not stream.reset:
                    await kubelet.send_bytes(b"")
                    return
                await kubelet.close()
                return
            await kubelet.send_bytes(chunk)

    sending = asyncio.create_task(up())
    try:
        async for msg in kubelet:
            if msg.type != WSMsgType.BINARY:
                continue
            if not msg.data:
                await stream.close()
                continue
            await stream.write(msg.data)
    except ConnectionError:
        pass
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sending


__all__ = ["PodStreams", "choose_container"]
