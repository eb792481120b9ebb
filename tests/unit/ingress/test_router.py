"""The router addon: what a request becomes, and how endpoints are taken in turn."""

from __future__ import annotations

import asyncio
import socket

import pytest
from mitmproxy import connection
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.test import tflow

from tuik8s.ingress.router import Router
from tuik8s.ingress.table import Backend, PathRule, RoutingTable

WEB = Backend("default", "web", "http", (("10.0.0.1", 8080), ("10.0.0.2", 8080), ("10.0.0.3", 8080)))
EMPTY = Backend("default", "empty", "http", (), "service default/empty has no ready endpoints for port http")
TABLE = RoutingTable(hosts={
    "web.local": (PathRule("", False, WEB, "default/web"),),
    "empty.local": (PathRule("", False, EMPTY, "default/web"),),
})


def request(host: str, path: str = "/", **headers: str):
    flow = tflow.tflow()
    flow.request.host = host
    flow.request.port = 80
    flow.request.path = path
    flow.request.headers["Host"] = host
    for k, v in headers.items():
        flow.request.headers[k.replace("_", "-")] = v
    flow.client_conn.peername = ("192.0.2.7", 50000)
    flow.client_conn.sockname = ("0.0.0.0", 8080)
    return flow


def test_request_goes_to_an_endpoint_with_host_kept_and_forwarded_headers() -> None:
    router = Router(TABLE)
    flow = request("web.local", "/a?b=c", X_Forwarded_For="6.6.6.6")
    router.requestheaders(flow)
    assert flow.response is None
    assert (flow.request.host, flow.request.port, flow.request.scheme) == ("10.0.0.1", 8080, "http")
    assert flow.request.path == "/a?b=c"
    h = flow.request.headers
    assert h["Host"] == "web.local"
    assert h.get_all("X-Forwarded-For") == ["192.0.2.7"]
    assert (h["X-Real-IP"], h["X-Forwarded-Host"], h["X-Forwarded-Proto"], h["X-Forwarded-Port"]) == (
        "192.0.2.7", "web.local", "http", "8080")


def test_round_robin_in_turn() -> None:
    router = Router(TABLE)
    seen = []
    for _ in range(6):
        flow = request("web.local")
        router.requestheaders(flow)
        seen.append(flow.request.host)
    assert seen == ["10.0.0.1", "10.0.0.2", "10.0.0.3"] * 2


def test_404_and_503_pages() -> None:
    router = Router(TABLE)
    flow = request("other.local", "/x?y")
    router.requestheaders(flow)
    assert flow.response.status_code == 404
    assert b'no Ingress rule matches host "other.local" and path "/x"' in flow.response.content
    flow = request("empty.local")
    router.requestheaders(flow)
    assert flow.response.status_code == 503
    assert b"service default/empty has no ready endpoints for port http" in flow.response.content


def test_connect_is_refused() -> None:
    router = Router(TABLE)
    flow = request("10.0.0.9")
    flow.request.method = "CONNECT"
    router.http_connect(flow)
    assert flow.response.status_code == 405


def test_endpoints_marked_down_are_skipped_until_all_are() -> None:
    router = Router(TABLE)
    router._down[("10.0.0.2", 8080)] = float("inf")
    assert [router.pick(WEB) for _ in range(4)] == [("10.0.0.1", 8080), ("10.0.0.3", 8080)] * 2
    for ep in WEB.endpoints:
        router._down[ep] = float("inf")
    assert router.pick(WEB) is not None  # all down: try them anyway
    assert router.pick(WEB, exclude=WEB.endpoints) is None


def test_a_new_table_keeps_the_turn() -> None:
    router = Router(TABLE)
    router.pick(WEB)
    router.set_table(TABLE)
    assert router.pick(WEB) == ("10.0.0.2", 8080)


def _listening() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("dead_first", [True, False], ids=["dead-first", "live-first"])
def test_server_connect_moves_a_refused_connection_to_another_endpoint(dead_first: bool) -> None:
    live = _listening()
    try:
        dead = ("127.0.0.1", _closed_port())
        alive = live.getsockname()
        backend = Backend("default", "web", "http", (dead, alive) if dead_first else (alive, dead))
        router = Router(RoutingTable(any_host=(PathRule("", False, backend, "default/web"),)))
        server = connection.Server(address=backend.endpoints[0])
        data = ServerConnectionHookData(server=server, client=tflow.tclient_conn())
        asyncio.run(router.server_connect(data))
        assert server.address == alive and server.error is None
        if dead_first:
            assert router.pick(backend) == alive  # the dead one sits out its time
    finally:
        live.close()


def test_server_connect_gives_up_with_the_service_named() -> None:
    backend = Backend("default", "web", "http", (("127.0.0.1", _closed_port()), ("127.0.0.1", _closed_port())))
    router = Router(RoutingTable(any_host=(PathRule("", False, backend, "default/web"),)))
    server = connection.Server(address=backend.endpoints[0])
    asyncio.run(router.server_connect(ServerConnectionHookData(server=server, client=tflow.tclient_conn())))
    assert server.error and server.error.startswith("no endpoint of service default/web accepts connections")


def test_a_slow_probe_takes_its_endpoint_out_of_rotation_meanwhile(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connect that hangs (a dead node's pod) sends the requests that come meanwhile to
    other endpoints; once it answers, the endpoint is back in turn."""
    hang = asyncio.Event()
    slow = ("10.0.0.1", 8080)

    async def connect(self, sock, address):  # noqa: ANN001 - the loop's own signature
        if address == slow:
            await hang.wait()

    monkeypatch.setattr(asyncio.selector_events.BaseSelectorEventLoop, "sock_connect", connect)
    router = Router(TABLE)

    async def scenario() -> None:
        probe = asyncio.create_task(router._accepts(slow))
        await asyncio.sleep(0.4)  # past SUSPECT_AFTER
        assert [router.pick(WEB) for _ in range(4)].count(slow) == 0
        hang.set()
        assert await probe is True
        assert slow in [router.pick(WEB) for _ in range(3)]

    asyncio.run(scenario())
