"""The wire: one query message in, one response out; UDP and TCP on real loopback sockets."""

from __future__ import annotations

import asyncio
import errno
import logging
import struct

import pytest
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from tests.unit.dns.fakes import endpoints, headless, records, service
from tuik8s.dns import server as dns_server
from tuik8s.dns.server import DnsServer, ResponseCache, parse_listen, respond

ZONE = "cluster.local"


@pytest.fixture
def recs():
    many = [{"ip": f"10.244.{i // 200}.{i % 200 + 2}"} for i in range(100)]
    return records([service("web", ip="10.96.5.5"), headless("big"), headless("mid")],
                   [endpoints("big", ready=many), endpoints("mid", ready=many[:50])])


def query(name: str, qtype: str = "A", **kw) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    for k, v in kw.items():
        setattr(q.header, k, v)
    return q


def test_an_answer_is_authoritative_and_echoes_id_question_and_rd(recs) -> None:
    q = query(f"web.default.svc.{ZONE}")
    r = DNSRecord.parse(respond(q.pack(), recs, udp=True))
    assert r.header.id == q.header.id and r.header.qr == 1 and r.header.aa == 1 and r.header.rd == 1
    assert r.header.ra == 0  # nothing is forwarded: no recursion on offer
    assert str(r.q.qname) == f"web.default.svc.{ZONE}." and [str(x.rdata) for x in r.rr] == ["10.96.5.5"]


def test_refused_is_not_authoritative(recs) -> None:
    r = DNSRecord.parse(respond(query("example.com").pack(), recs, udp=True))
    assert r.header.rcode == RCODE.REFUSED and r.header.aa == 0 and r.rr == []


def test_a_big_answer_over_udp_is_truncated_and_whole_over_tcp(recs) -> None:
    data = query(f"big.default.svc.{ZONE}").pack()
    small = DNSRecord.parse(respond(data, recs, udp=True))
    assert small.header.tc == 1 and small.rr == [] and str(small.q.qname) == f"big.default.svc.{ZONE}."
    whole = DNSRecord.parse(respond(data, recs, udp=False))
    assert whole.header.tc == 0 and len(whole.rr) == 100


def test_edns0_raises_the_udp_limit_and_is_answered_with_opt(recs) -> None:
    # 50 A records: 800 bytes or so, over plain DNS's 512, under EDNS0's 1232
    plain = DNSRecord.parse(respond(query(f"mid.default.svc.{ZONE}").pack(), recs, udp=True))
    assert plain.header.tc == 1
    q = query(f"mid.default.svc.{ZONE}")
    q.add_ar(EDNS0(udp_len=4096))
    r = DNSRecord.parse(respond(q.pack(), recs, udp=True))
    assert r.header.tc == 0 and len(r.rr) == 50
    assert [rr.rtype for rr in r.ar] == [QTYPE.OPT]


def test_garbage_gets_formerr_or_silence(recs) -> None:
    header = struct.pack("!HHHHHH", 4242, 0x0100, 1, 0, 0, 0)
    r = DNSRecord.parse(respond(header + b"\x07broken", recs, udp=True))
    assert r.header.id == 4242 and r.header.rcode == RCODE.FORMERR
    assert respond(b"\x01\x02", recs, udp=True) is None


def test_responses_and_other_opcodes(recs) -> None:
    assert respond(query("web.default.svc.cluster.local", qr=1).pack(), recs, udp=True) is None
    r = DNSRecord.parse(respond(query("web.default.svc.cluster.local", opcode=5).pack(), recs, udp=True))
    assert r.header.rcode == RCODE.NOTIMP


@pytest.mark.parametrize(("text", "want"), [
    ("172.30.0.1:53", ("172.30.0.1", 53)), ("172.30.0.1", ("172.30.0.1", 53)),
    ("127.0.0.1:5353", ("127.0.0.1", 5353)), ("[::1]:5353", ("::1", 5353)), ("::1", ("::1", 53)),
])
def test_parse_listen(text: str, want: tuple[str, int]) -> None:
    assert parse_listen(text) == want


@pytest.mark.parametrize("text", ["dns.local:53", "172.30.0.1:0", "172.30.0.1:x", "172.30.0.1:70000", ""])
def test_parse_listen_says_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError, match="IP address|port"):
        parse_listen(text)


async def test_udp_and_tcp_on_one_port(recs) -> None:
    srv = DnsServer(recs, "127.0.0.1", 0)
    await srv.start()
    try:
        q = query(f"web.default.svc.{ZONE}")
        for tcp in (False, True):
            raw = await asyncio.to_thread(q.send, "127.0.0.1", srv.port, tcp=tcp, timeout=5)
            assert [str(x.rdata) for x in DNSRecord.parse(raw).rr] == ["10.96.5.5"]
        # several queries on one TCP connection (RFC 7766), the big one whole
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        for name, count in ((f"web.default.svc.{ZONE}", 1), (f"big.default.svc.{ZONE}", 100)):
            msg = query(name).pack()
            writer.write(struct.pack("!H", len(msg)) + msg)
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            assert len(DNSRecord.parse(await reader.readexactly(size)).rr) == count
        writer.close()
        await writer.wait_closed()
    finally:
        await srv.close()


async def test_serve_waits_for_the_address_then_binds(recs, monkeypatch, caplog) -> None:
    monkeypatch.setattr(dns_server, "BIND_RETRY", 0.01)
    srv = DnsServer(recs, "127.0.0.1", 0)
    real_start, tries, bound = srv.start, [], asyncio.Event()

    async def start() -> None:
        tries.append(1)
        if len(tries) < 4:
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        await real_start()
        bound.set()

    srv.start = start  # type: ignore[method-assign]
    caplog.set_level(logging.INFO, logger="tuik8s.dns.server")
    task = asyncio.create_task(srv.serve())
    try:
        async with asyncio.timeout(5):
            await bound.wait()
        raw = await asyncio.to_thread(query(f"web.default.svc.{ZONE}").send, "127.0.0.1", srv.port, timeout=5)
        assert DNSRecord.parse(raw).rr
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    waits = [r for r in caplog.records if "cannot listen" in r.getMessage()]
    assert len(waits) == 1 and "binding when it appears" in waits[0].getMessage()
    assert srv._udp is None and srv._tcp is None  # closed on the way out


def test_the_response_cache_answers_repeats_until_cleared() -> None:
    recs = records([service("web", ip="10.96.5.5")])
    cache = ResponseCache()
    srv = DnsServer(recs, "127.0.0.1", 0, cache)
    first, again = query(f"web.default.svc.{ZONE}"), query(f"web.default.svc.{ZONE}")
    assert first.header.id != again.header.id
    a = DNSRecord.parse(srv.answer(first.pack(), udp=True))
    assert len(cache) == 1
    b = DNSRecord.parse(srv.answer(again.pack(), udp=True))
    assert b.header.id == again.header.id and [str(r.rdata) for r in b.rr] == [str(r.rdata) for r in a.rr]
    # the same question spelled otherwise, or over TCP, is another entry
    srv.answer(query(f"WEB.default.svc.{ZONE}").pack(), udp=True)
    srv.answer(first.pack(), udp=False)
    assert len(cache) == 3
    # a change in the stores clears it (the component wires the informers to `clear`)
    recs.services.objects["default/web"]["spec"]["clusterIP"] = "10.96.6.6"
    recs.services.objects["default/web"]["spec"]["clusterIPs"] = ["10.96.6.6"]
    cache.clear({"kind": "Service"})
    c = DNSRecord.parse(srv.answer(again.pack(), udp=True))
    assert [str(r.rdata) for r in c.rr] == ["10.96.6.6"]


def test_a_full_cache_starts_over() -> None:
    cache = ResponseCache(size=2)
    for i in range(3):
        cache.put(bytes([0, i, i]), True, b"\x00\x00resp")
    assert len(cache) == 1 and cache.get(b"\x12\x34\x02", True) == b"\x12\x34resp"


async def test_a_busy_port_is_said_once_and_retried(recs, monkeypatch, caplog) -> None:
    import socket

    monkeypatch.setattr(dns_server, "BIND_RETRY_SLOW", 0.01)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        srv = DnsServer(recs, "127.0.0.1", busy.getsockname()[1])
        tries: list[int] = []
        retried = asyncio.Event()
        real_start = srv.start

        async def start() -> None:
            tries.append(1)
            if len(tries) == 3:  # two retries seen: the loop goes on, quietly
                retried.set()
            await real_start()

        srv.start = start  # type: ignore[method-assign]
        task = asyncio.create_task(srv.serve())
        async with asyncio.timeout(10):
            await retried.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    said = [r.getMessage() for r in caplog.records if "cannot listen" in r.getMessage()]
    assert len(said) == 1 and "something else holds that port" in said[0]
