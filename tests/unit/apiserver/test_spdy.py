"""SPDY/3.1 framing as kubectl's port-forward speaks it, driven through a real `SpdySession`."""

from __future__ import annotations

import asyncio
import struct
import zlib

from tuik8s.apiserver.spdy import (
    FLAG_FIN,
    HEADER_DICTIONARY,
    PING,
    RST_STREAM,
    SYN_REPLY,
    SYN_STREAM,
    SpdySession,
    SpdyStream,
    control_frame,
    data_frame,
    decode_headers,
    encode_headers,
)

# the first SYN_STREAM header block kubectl 1.32 sent (streamtype=error, port=80, requestid=0)
KUBECTL_BLOCK = (b"x\xf9\xe3\xc6\xa7\xc2\x02%:p:+)JM\xcc\x85\x16%\xac\xa9\xa0\x80\x86\x14\xcbE\xa0$\xccda"
                 b"\xc0\xc0\xc0\xc0Y\x04\x89\xc4LP\xe2f4\x00\x00\x00\x00\xff\xff")


def test_dictionary_is_spdy3s():
    # zlib names a preset dictionary by its Adler-32: kubectl's header blocks carry E3C6A7C2
    assert zlib.adler32(HEADER_DICTIONARY) == 0xE3C6A7C2
    assert decode_headers(zlib.decompressobj(zdict=HEADER_DICTIONARY).decompress(KUBECTL_BLOCK)) == {
        "streamtype": "error", "port": "80", "requestid": "0"}


def test_headers_round_trip():
    block = encode_headers({"StreamType": "data", "port": "8080"})
    assert decode_headers(block) == {"streamtype": "data", "port": "8080"}


class Peer:
    """The client side: frames in, frames out, over an in-memory byte pipe."""

    def __init__(self) -> None:
        self.to_server = asyncio.StreamReader()
        self.from_server = bytearray()
        self.deflate = zlib.compressobj(zdict=HEADER_DICTIONARY)
        self.inflate = zlib.decompressobj(zdict=HEADER_DICTIONARY)
        self.streams: list[SpdyStream] = []

    async def write(self, frame: bytes) -> None:
        self.from_server += frame

    def syn(self, stream_id: int, headers: dict[str, str], fin: bool = False) -> None:
        block = self.deflate.compress(encode_headers(headers)) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        payload = struct.pack(">IIH", stream_id, 0, 0) + block
        self.to_server.feed_data(control_frame(SYN_STREAM, FLAG_FIN if fin else 0, payload))

    def frames(self) -> list[tuple[bool, int, int, bytes]]:
        """(control, type-or-stream, flags, payload) of everything the server wrote."""
        out, buf = [], bytes(self.from_server)
        while buf:
            first, second = struct.unpack(">II", buf[:8])
            length = second & 0xFFFFFF
            control = bool(first & 0x80000000)
            out.append((control, (first & 0xFFFF) if control else first, second >> 24, buf[8:8 + length]))
            buf = buf[8 + length:]
        return out


async def test_streams_replies_data_fin_ping_and_reset():
    peer = Peer()
    session = SpdySession(peer.to_server.readexactly, peer.write, peer.streams.append)
    running = asyncio.create_task(session.run())
    peer.syn(1, {"streamtype": "error", "port": "80", "requestid": "0"}, fin=True)
    peer.syn(3, {"streamtype": "data", "port": "80", "requestid": "0"})
    peer.to_server.feed_data(data_frame(3, b"GET / HTTP/1.0\r\n\r\n"))
    peer.to_server.feed_data(data_frame(3, b"", fin=True))
    peer.to_server.feed_data(control_frame(PING, 0, struct.pack(">I", 7)))
    await asyncio.sleep(0.05)
    error, data = peer.streams
    assert (error.id, error.headers["streamtype"], data.id, data.headers["streamtype"]) == (1, "error", 3, "data")
    assert await error.read() == b""  # opened with FIN: nothing to read
    assert await data.read() == b"GET / HTTP/1.0\r\n\r\n"
    assert await data.read() == b""
    await data.write(b"HTTP/1.0 200 OK\r\n\r\nhi")
    await data.close()
    frames = peer.frames()
    replies = [f for f in frames if f[0] and f[1] == SYN_REPLY]
    assert [struct.unpack(">I", f[3][:4])[0] for f in replies] == [1, 3]
    assert decode_headers(peer.inflate.decompress(replies[0][3][4:])) == {}
    assert (True, PING, 0, struct.pack(">I", 7)) in frames
    assert (False, 3, 0, b"HTTP/1.0 200 OK\r\n\r\nhi") in frames
    assert frames[-1] == (False, 3, FLAG_FIN, b"")
    # a reset ends the stream's reads; the peer going away ends the session
    peer.syn(5, {"streamtype": "data", "port": "80", "requestid": "1"})
    peer.to_server.feed_data(control_frame(RST_STREAM, 0, struct.pack(">II", 5, 5)))
    await asyncio.sleep(0.05)
    assert await peer.streams[-1].read() == b"" and peer.streams[-1].reset
    peer.to_server.feed_eof()
    try:
        await asyncio.wait_for(running, 1)
    except asyncio.IncompleteReadError:
        pass
    assert session.closed


def test_expected_exec_streams_as_client_go_opens_them():
    from tuik8s.apiserver.spdyupgrade import expected_streams

    assert expected_streams({"stdout": "true", "stderr": "true"}) == {"error", "stdout", "stderr"}
    assert expected_streams({"stdin": "true", "stdout": "true", "stderr": "true", "tty": "true"}) == {
        "error", "stdin", "stdout", "resize"}
