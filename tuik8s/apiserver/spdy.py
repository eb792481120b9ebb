"""The server side of SPDY/3.1, as much as `kubectl port-forward` needs.

kubectl 1.32 port-forwards over a WebSocket with subprotocol `SPDY/3.1+portforward.k8s.io`:
the WebSocket's binary messages carry a SPDY/3.1 byte stream (messages do not align with
frames), in which kubectl opens two streams per forwarded connection. This module reads
and writes that framing over any byte transport:

- control frames `[1|version 15][type 16][flags 8][length 24]`, data frames
  `[0|stream id 31][flags 8][length 24]`; FIN (0x01) ends a direction of a stream;
- SYN_STREAM (headers zlib-compressed with SPDY/3's preset dictionary, one compression
  context per direction for the whole connection), answered at once by a SYN_REPLY with
  no headers, as upstream's spdystream server does; kubectl waits for that reply;
- PING echoed, RST_STREAM and GOAWAY honoured, SETTINGS/WINDOW_UPDATE/HEADERS ignored:
  kubectl's SPDY library (moby/spdystream) does no flow control, so neither does this.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import Awaitable, Callable

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
VERSION = 3
RST_CANCEL = 5
MAX_DATA = (1 << 24) - 1

_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age "
    "allow authorization cache-control connection content-base content-encoding content-language content-length "
    "content-location content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status 200_OK version HTTP/1.1 url public set-cookie "
    "keep-alive origin"
).split()
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# SPDY/3's zlib dictionary for header blocks (draft-mbelshe-httpbis-spdy-00, 2.6.10.1)
HEADER_DICTIONARY = b"".join(
    struct.pack(">I", len(w)) + w.encode() for w in (word.replace("_", " ") for word in _WORDS)
) + _TAIL.encode()


class SpdyProtocolError(Exception):
    pass


def encode_headers(headers: dict[str, str]) -> bytes:
    """An uncompressed SPDY/3 name/value block (names lowercased, as the wire wants)."""
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        n, v = name.lower().encode(), value.encode()
        out += [struct.pack(">I", len(n)), n, struct.pack(">I", len(v)), v]
    return b"".join(out)


def decode_headers(block: bytes) -> dict[str, str]:
    """A decompressed name/value block -> {name: value} (several values joined with NUL)."""
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        pos, headers = 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
            (v,) = struct.unpack_from(">I", block, pos)
            headers[name.lower()] = block[pos + 4:pos + 4 + v].decode()
            pos += 4 + v
        return headers
    except (struct.error, UnicodeDecodeError) as e:
        raise SpdyProtocolError(f"bad header block: {e}") from None


def control_frame(kind: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


class SpdyStream:
    """One stream opened by the client: its headers, what it sends, and our way back."""

    def __init__(self, session: SpdySession, stream_id: int, headers: dict[str, str]) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.remote_closed = False
        self.local_closed = False
        self.reset = False

    def _feed(self, data: bytes) -> None:
        if data:
            self._incoming.put_nowait(data)

    def _feed_eof(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            self._incoming.put_nowait(None)

    async def read(self) -> bytes:
        """The next bytes the client sent; b"" once it closed its side (or reset the stream)."""
        data = await self._incoming.get()
        if data is None:
            self._incoming.put_nowait(None)
            return b""
        return data

    async def write(self, data: bytes) -> None:
        if self.local_closed or self.reset or not data:
            return
        for i in range(0, len(data), MAX_DATA):
            await self.session.send(data_frame(self.id, data[i:i + MAX_DATA]))

    async def close(self) -> None:
        """Our side is done (FIN)."""
        if not self.local_closed and not self.reset:
            self.local_closed = True
            with contextlib.suppress(ConnectionError):
                await self.session.send(data_frame(self.id, b"", fin=True))


class SpdySession:
    """Serves one SPDY/3.1 connection: `run()` reads frames until the peer goes away and
    hands each new stream to `on_stream` (after replying to it)."""

    def __init__(self, read_exactly: Callable[[int], Awaitable[bytes]], write: Callable[[bytes], Awaitable[None]],
                 on_stream: Callable[[SpdyStream], None]) -> None:
        self.read_exactly = read_exactly
        self._write = write
        self.on_stream = on_stream
        self.streams: dict[int, SpdyStream] = {}
        self._inflate = zlib.decompressobj(zdict=HEADER_DICTIONARY)
        self._deflate = zlib.compressobj(zdict=HEADER_DICTIONARY)
        self._lock = asyncio.Lock()
        self.closed = False

    async def send(self, frame: bytes) -> None:
        if self.closed:
            raise ConnectionError("the SPDY connection is closed")
        async with self._lock:
            await self._write(frame)

    async def _reply(self, stream_id: int) -> None:
        async with self._lock:  # compress and send in one order: the context is shared
            block = self._deflate.compress(encode_headers({})) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            await self._write(control_frame(SYN_REPLY, 0, struct.pack(">I", stream_id) + block))

    async def run(self) -> None:
        try:
            while True:
                head = await self.read_exactly(8)
                first, second = struct.unpack(">II", head)
                flags, length = second >> 24, second & 0xFFFFFF
                payload = await self.read_exactly(length) if length else b""
                if first & 0x80000000:
                    if not await self._control((first >> 16) & 0x7FFF, first & 0xFFFF, flags, payload):
                        return
                else:
                    stream = self.streams.get(first & 0x7FFFFFFF)
                    if stream is not None:
                        stream._feed(payload)
                        if flags & FLAG_FIN:
                            stream._feed_eof()
        finally:
            self.closed = True
            for stream in self.streams.values():
                stream.reset = True
                stream._feed_eof()

    async def _control(self, version: int, kind: int, flags: int, payload: bytes) -> bool:
        if version != VERSION:
            raise SpdyProtocolError(f"SPDY version {version} is not served (only 3.1)")
        if kind == SYN_STREAM:
            stream_id = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
            headers = decode_headers(self._inflate.decompress(payload[10:]))
            stream = SpdyStream(self, stream_id, headers)
            self.streams[stream_id] = stream
            await self._reply(stream_id)
            if flags & FLAG_FIN:
                stream._feed_eof()
            self.on_stream(stream)
        elif kind == RST_STREAM:
            reset: SpdyStream | None = self.streams.pop(struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF, None)
            if reset is not None:
                reset.reset = True
                reset._feed_eof()
        elif kind == PING:
            await self.send(control_frame(PING, 0, payload[:4]))
        elif kind == GOAWAY:
            return False
        elif kind == HEADERS:
            self._inflate.decompress(payload[4:])  # keep the shared context in step
        return True

    def forget(self, stream: SpdyStream) -> None:
        self.streams.pop(stream.id, None)

    async def reset_stream(self, stream: SpdyStream, status: int = RST_CANCEL) -> None:
        if not stream.reset:
            stream.reset = True
            with contextlib.suppress(ConnectionError):
                await self.send(control_frame(RST_STREAM, 0, struct.pack(">II", stream.id, status)))


__all__ = ["HEADER_DICTIONARY", "SpdyProtocolError", "SpdySession", "SpdyStream", "data_frame", "decode_headers", "encode_headers"]
