"""The cluster DNS on the wire: dnslib for the messages, asyncio for UDP and TCP.

`respond(data, records, udp)` turns one query message into one response message; the
sockets around it are thin. Answers come from in-memory caches, so each query is handled
synchronously in the loop's callback: no task per packet, no await between question and
answer.

Sizes, as RFC 1035 and RFC 6891 set them: a UDP response is at most 512 bytes, or what the
query's EDNS0 record offers (capped at 1232, the DNS flag day's safe size); a response that
does not fit goes back empty with TC set and the client asks again over TCP, where a
message can be 64 KiB. A headless Service of a few dozen pods needs that.

Most of a query's cost is dnslib's parsing and packing, and the server shares the
control plane's event loop with the API server: `ResponseCache` keeps packed responses by
query (less its ID), and the component empties it whenever a Service or an Endpoints
changes, so a cached answer is never older than the caches it came from.

The listen address may not exist yet: `tuik8s up` starts the control plane before the
lab's network, whose gateway is the address the nodes use. `DnsServer.serve` binds as
soon as it can, retrying quietly, and says once in the log that it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import struct
from typing import Any

from dnslib import CLASS, EDNS0, OPCODE, QTYPE, RCODE, DNSHeader, DNSRecord

from tuik8s.dns.records import ClusterRecords

log = logging.getLogger(__name__)

UDP_PLAIN_MAX = 512
UDP_EDNS_MAX = 1232
TCP_IDLE_TIMEOUT = 10.0  # RFC 7766 suggests seconds, not minutes, for an idle connection
BIND_RETRY = 0.5
BIND_RETRY_SLOW = 5.0
QCLASS_ANY = 255  # "*": dnslib has no attribute name for it


def respond(data: bytes, records: ClusterRecords, *, udp: bool) -> bytes | None:
    """The response to one query message, or None when there is nothing to answer to."""
    try:
        query = DNSRecord.parse(data)
    except Exception:  # noqa: BLE001 - dnslib raises several kinds (DNSError, struct, unicode) on garbage
        return _format_error(data)
    if query.header.qr:
        return None  # a response sent to us: never answer it (no loops)
    reply = DNSRecord(DNSHeader(id=query.header.id, qr=1, aa=1, ra=0, rd=query.header.rd,
                                opcode=query.header.opcode), questions=list(query.questions))
    edns = next((rr for rr in query.ar if rr.rtype == QTYPE.OPT), None)
    if query.header.opcode != OPCODE.QUERY:
        reply.header.rcode = RCODE.NOTIMP
    elif len(query.questions) != 1:
        reply.header.rcode = RCODE.FORMERR
    elif query.q.qclass not in (CLASS.IN, QCLASS_ANY):
        reply.header.rcode = RCODE.REFUSED
    else:
        answer = records.resolve(query.q.qname, query.q.qtype)
        reply.header.rcode = answer.rcode
        reply.rr, reply.auth, reply.ar = answer.answer, answer.authority, answer.additional
    if reply.header.rcode in (RCODE.REFUSED, RCODE.NOTIMP, RCODE.FORMERR):
        reply.header.aa = 0  # not a name of ours: we speak with no authority
    limit = UDP_PLAIN_MAX
    if edns is not None:
        limit = max(UDP_PLAIN_MAX, min(int(edns.rclass), UDP_EDNS_MAX))
        reply.add_ar(EDNS0(udp_len=UDP_EDNS_MAX))
    packed = reply.pack()
    if udp and len(packed) > limit:
        reply.rr, reply.auth, reply.ar = [], [], []
        if edns is not None:
            reply.add_ar(EDNS0(udp_len=UDP_EDNS_MAX))
        reply.header.tc = 1
        packed = reply.pack()
    return packed


def _format_error(data: bytes) -> bytes | None:
    """FORMERR for a message whose header at least parses, else silence."""
    if len(data) < 12:
        return None
    (ident, flags) = struct.unpack("!HH", data[:4])
    if flags & 0x8000:
        return None
    return DNSRecord(DNSHeader(id=ident, qr=1, rcode=RCODE.FORMERR)).pack()


class ResponseCache:
    """Packed responses by transport and query bytes less the ID; emptied on any change."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: dict[tuple[bool, bytes], bytes] = {}

    def get(self, data: bytes, udp: bool) -> bytes | None:
        hit = self._entries.get((udp, bytes(data[2:])))
        return None if hit is None else bytes(data[:2]) + hit

    def put(self, data: bytes, udp: bool, response: bytes) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[(udp, bytes(data[2:]))] = bytes(response[2:])

    def clear(self, *_changed: object) -> None:
        """Forget every response; takes (and ignores) informer handler arguments."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport, not a subclass of one

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            out = self.server.answer(data, udp=True)
        except Exception:  # noqa: BLE001 - one bad query must not stop the server
            log.exception("cluster DNS: answering %s failed", addr)
            return
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("cluster DNS: UDP error: %s", exc)


class DnsServer:
    """UDP and TCP on one address and port, answering from `records`."""

    def __init__(self, records: ClusterRecords, host: str, port: int, cache: ResponseCache | None = None) -> None:
        self.records = records
        self.host = host
        self.port = port
        self.cache = cache
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def answer(self, data: bytes, *, udp: bool) -> bytes | None:
        if self.cache is None:
            return respond(data, self.records, udp=udp)
        out = self.cache.get(data, udp)
        if out is None:
            out = respond(data, self.records, udp=udp)
            if out is not None:
                self.cache.put(data, udp, out)
        return out

    async def start(self) -> None:
        """Bind both sockets once (an OSError if the address or port is not usable)."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(self.host, self.port),
        )
        self._udp = transport
        try:
            if self.port == 0:  # a test asked for any port: TCP takes the one UDP got
                self.port = transport.get_extra_info("sockname")[1]
            self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port, reuse_address=True)
        except BaseException:
            transport.close()
            self._udp = None
            raise

    async def serve(self) -> None:
        """Bind (waiting for the address to exist if need be), then answer until cancelled."""
        waited = False
        while True:
            try:
                await self.start()
                break
            except OSError as e:
                missing = e.errno == errno.EADDRNOTAVAIL
                if not waited:
                    hint = {
                        errno.EADDRNOTAVAIL: "; binding when it appears (the lab network brings it)",
                        errno.EACCES: "; a port below 1024 needs root; retrying every 5 s",
                        errno.EADDRINUSE: "; something else holds that port; retrying every 5 s",
                    }.get(e.errno or 0, "; retrying every 5 s")
                    log.warning("cluster DNS cannot listen on %s yet (%s)%s", self.address, e.strerror or e, hint)
                    waited = True
                await asyncio.sleep(BIND_RETRY if missing else BIND_RETRY_SLOW)
        log.info("cluster DNS listening on %s (UDP and TCP)", self.address)
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()
            self._tcp = None

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Length-prefixed messages (RFC 1035 4.2.2), several per connection (RFC 7766)."""
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_TIMEOUT):
                    head = await reader.readexactly(2)
                    data = await reader.readexactly(struct.unpack("!H", head)[0])
                out = self.answer(data, udp=False)
                if out is None:
                    break
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        except Exception:  # noqa: BLE001 - one bad client must not stop the server
            log.exception("cluster DNS: a TCP client failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def parse_listen(text: str, default_port: int = 53) -> tuple[str, int]:
    """`ADDRESS[:PORT]` (`[v6]:PORT` for IPv6) -> (address, port), or ValueError saying why."""
    host, port_text = text.strip(), ""
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{text!r} is not ADDRESS:PORT")
        port_text = rest[1:]
    elif host.count(":") == 1:
        host, port_text = host.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host or 'the address'} is not an IP address (give ADDRESS:PORT, such as 172.30.0.1:53)") from None
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)
