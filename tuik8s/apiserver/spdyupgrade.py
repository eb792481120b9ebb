"""The SPDY fallback: `Upgrade: SPDY/3.1` for exec, attach and port-forward.

kubectl tries a WebSocket first and falls back to a plain SPDY upgrade (a `POST` with
`Upgrade: SPDY/3.1` and one `X-Stream-Protocol-Version` per protocol it speaks); other
client-go programs (and kubectl with `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false` or
`KUBECTL_PORT_FORWARD_WEBSOCKETS=false`) use SPDY only. After the `101`, the connection
carries SPDY/3.1 (see `spdy`); for exec and attach (`v4.channel.k8s.io`) the client opens
one stream per standard stream, named by the `streamtype` header (`error`, `stdin`,
`stdout`, `stderr`, `resize`), and the final Status arrives on `error`.

aiohttp speaks HTTP/1.1 and WebSocket only, so the upgraded connection is taken over the
way its own WebSocket response does it: a `101` response with no body, then a parser of our
own handed the bytes that follow (`protocol.set_parser`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from tuik8s.apiserver.spdy import SpdySession, SpdyStream

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
STREAMS_TIMEOUT = 30.0  # upstream's streamCreationTimeout


class _Bytes:
    """Stands in for aiohttp's payload parser: the upgraded connection's bytes go to a reader."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


class RawLink:
    """The byte stream of an upgraded HTTP connection."""

    def __init__(self, response: web.StreamResponse, reader: asyncio.StreamReader) -> None:
        self.response = response
        self.reader = reader
        self.closed = False

    async def read_exactly(self, n: int) -> bytes:
        return await self.reader.readexactly(n)

    async def write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionError("the client closed the connection")
        await self.response.write(data)

    async def close(self) -> None:
        self.closed = True


def wants_spdy(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower().startswith("spdy/3")


def offered_versions(request: web.Request) -> list[str]:
    return [v.strip() for h in request.headers.getall("X-Stream-Protocol-Version", []) for v in h.split(",") if v.strip()]


async def upgrade(request: web.Request, version: str) -> RawLink:
    """Answer `101 Switching Protocols` and take the connection over."""
    response = web.StreamResponse(status=101, reason="Switching Protocols", headers={
        "Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": version,
    })
    response.force_close()
    await response.prepare(request)
    reader = asyncio.StreamReader()
    request.protocol.set_parser(_Bytes(reader))  # type: ignore[arg-type]
    request.protocol.keep_alive(False)
    return RawLink(response, reader)


async def serve_exec(link: RawLink, kubelet: aiohttp.ClientWebSocketResponse, expected: set[str]) -> None:
    """Exec or attach over SPDY: wait for the client's streams, then relay them to the
    kubelet's channels (and back) until the kubelet ends the command."""
    streams: dict[str, SpdyStream] = {}
    arrived = asyncio.Event()

    def on_stream(stream: SpdyStream) -> None:
        streams[stream.headers.get("streamtype", "")] = stream
        if expected <= streams.keys():
            arrived.set()

    session = SpdySession(link.read_exactly, link.write, on_stream)
    serving = asyncio.create_task(session.run())
    tasks: list[asyncio.Task[None]] = []
    try:
        waiting = asyncio.create_task(arrived.wait())
        await asyncio.wait([waiting, serving], timeout=STREAMS_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if not arrived.is_set():
            return
        if "stdin" in streams:
            tasks.append(asyncio.create_task(_stdin(streams["stdin"], kubelet)))
        if "resize" in streams:
            tasks.append(asyncio.create_task(_resize(streams["resize"], kubelet)))
        outputs = {STDOUT: streams.get("stdout"), STDERR: streams.get("stderr"), ERROR: streams.get("error")}
        async for msg in kubelet:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            target = outputs.get(msg.data[0])
            if target is not None:
                await target.write(msg.data[1:])
        for stream in streams.values():
            await stream.close()
        # the client hangs up once it has read the streams to their end
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(serving), 5)
    except ConnectionError:
        pass
    finally:
        for task in [*tasks, serving]:
            task.cancel()
        for task in [*tasks, serving]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _stdin(stream: SpdyStream, kubelet: aiohttp.ClientWebSocketResponse) -> None:
    while chunk := await stream.read():
        await kubelet.send_bytes(bytes([STDIN]) + chunk)
    if not stream.reset:
        await kubelet.send_bytes(bytes([CLOSE, STDIN]))


async def _resize(stream: SpdyStream, kubelet: aiohttp.ClientWebSocketResponse) -> None:
    """The resize stream is a sequence of JSON objects ({"Width":W,"Height":H})."""
    decoder, buffer = json.JSONDecoder(), ""
    while chunk := await stream.read():
        buffer += chunk.decode(errors="replace")
        while buffer.strip():
            try:
                size, end = decoder.raw_decode(buffer.lstrip())
            except ValueError:
                break
            buffer = buffer.lstrip()[end:]
            if isinstance(size, dict):
                await kubelet.send_bytes(bytes([RESIZE]) + json.dumps(size).encode())


def expected_streams(query: Any) -> set[str]:
    """The streams a client opens for these options (upstream's expected stream set)."""
    def on(key: str) -> bool:
        return str(query.get(key, "")).lower() in ("true", "1")

    tty = on("tty")
    wanted = {"error"}
    wanted |= {name for name in ("stdin", "stdout") if on(name)}
    if on("stderr") and not tty:
        wanted.add("stderr")
    if tty:
        wanted.add("resize")
    return wanted


__all__ = ["RawLink", "expected_streams", "offered_versions", "serve_exec", "upgrade", "wants_spdy"]
