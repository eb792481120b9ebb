"""`tuik8s ingress` passes a request on when its pod dies before answering, as ingress-nginx does.

Each Service has one healthy endpoint (test_ingress's aiohttp backend) and one "dying
pod": a server in this process that accepts the connection, reads the request, and
then resets (RST) or closes (FIN) it without a byte of response. GET and PUT are passed
to the healthy endpoint; a POST that reached the dying pod is not (it may have taken
effect), and the client gets a 502; a Service whose endpoints all die answers one plain
502 without hanging. The ingress runs one worker so round robin is predictable.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from tests.integration.conftest import RunningServer, free_port
from tests.integration.test_ingress import (  # noqa: F401 - `addresses` is a fixture
    Backend,
    Ingress,
    addresses,
    apply,
    endpoints,
    get,
    ingress,
    path,
    pytestmark,
    service,
    start_backend,
    start_ingress,
)


@dataclass
class DyingPod:
    """Accepts, reads a request, then drops the connection without answering.

    With `answer_first`, it answers the first request on each connection (keep-alive)
    and drops the connection when the next one comes: a pod closing an idle connection
    just as the proxy reuses it.
    """

    host: str
    reset: bool
    answer_first: bool = False
    sock: socket.socket = field(init=False)
    seen: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.create_server((self.host, 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed at the end of the module
            with conn:
                conn.settimeout(5)
                try:
                    method = self._read_request(conn)
                    if method and self.answer_first:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: keep-alive\r\n\r\nfirst\n")
                        method = self._read_request(conn)
                except OSError:
                    continue
                if self.reset:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _read_request(self, conn: socket.socket) -> str | None:
        """Read one whole request (so closing sends a FIN, not a RST); its method."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(rest) < length and (chunk := conn.recv(65536)):
            rest += chunk
        method = head.split(b" ", 1)[0].decode()
        self.seen.append(method)
        return method

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def pods(addresses: list[str]) -> Iterator[dict[str, DyingPod]]:  # noqa: F811 - the imported fixture
    made = {
        "gets": DyingPod(addresses[1], reset=True),
        "puts": DyingPod(addresses[1], reset=False),
        "posts": DyingPod(addresses[1], reset=True),
        "dead-a": DyingPod(addresses[1], reset=True),
        "dead-b": DyingPod(addresses[0], reset=False),
        "idle": DyingPod(addresses[1], reset=False, answer_first=True),
    }
    yield made
    for pod in made.values():
        pod.close()


@pytest.fixture(scope="module")
def good(addresses: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:  # noqa: F811
    backend = start_backend(tmp_path_factory.mktemp("good"), "good", addresses[0])
    yield backend
    backend.proc.terminate()
    backend.proc.wait(10)


@pytest.fixture(scope="module")
def ing(server: RunningServer, good: Backend, pods: dict[str, DyingPod]) -> Iterator[Ingress]:
    def ep(name: str) -> tuple[str, int]:
        return pods[name].host, pods[name].port

    ok = (good.host, good.port)
    apply(
        server,
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "tuik8s"},
         "spec": {"controller": "tuik8s.io/ingress"}},
        service("gets"), endpoints("gets", ep("gets"), ok),
        service("puts"), endpoints("puts", ep("puts"), ok),
        service("posts"), endpoints("posts", ep("posts"), ok),
        service("dead"), endpoints("dead", ep("dead-a"), ep("dead-b")),
        service("idle"), endpoints("idle", ep("idle")),
        ingress("retry", [{"host": f"{name}.local", "http": {"paths": [path("/", name)]}}
                          for name in ("gets", "puts", "posts", "dead", "idle")]),
    )
    http, https = free_port(), free_port()
    proc, line, err = start_ingress(
        server, "--listen", f"127.0.0.1:{http}", "--https-listen", f"127.0.0.1:{https}", "--workers", "1",
    )
    assert "ready" in line, f"the ingress did not start: {line} {err}"
    yield Ingress(proc, http, https)
    proc.terminate()
    assert proc.wait(15) == 0


def send(ing: Ingress, method: str, host: str, body: bytes | None = None) -> tuple[int, str]:
    """One request on a new connection, as curl sends it."""
    cmd = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "-H", f"Host: {host}"]
    if body is not None:
        cmd += ["--data-binary", "@-", "-H", "Content-Type: application/octet-stream"]
    out = subprocess.run([*cmd, ing.url("/x")], input=body, capture_output=True, timeout=20).stdout.decode()
    text, _, code = out.rpartition("\n")
    return int(code or 0), text


def test_gets_are_passed_on_when_a_pod_resets(ing: Ingress, pods: dict[str, DyingPod]) -> None:
    results = [get(ing, "gets.local", f"/{i}") for i in range(6)]
    assert [code for code, _ in results] == [200] * 6, results
    assert {json.loads(body)["backend"] for _, body in results} == {"good"}
    assert pods["gets"].seen[:1] == ["GET"]  # it did reach the dying pod (then out of rotation for a while)


def test_a_put_with_a_body_is_passed_on_when_a_pod_closes(ing: Ingress, pods: dict[str, DyingPod]) -> None:
    body = b"x" * 5000
    results = [send(ing, "PUT", "puts.local", body) for _ in range(2)]
    assert [code for code, _ in results] == [200, 200], results
    for _, text in results:
        answer = json.loads(text)
        assert answer["backend"] == "good"
        assert answer["headers"]["Content-Length"] == str(len(body))
    assert pods["puts"].seen[:1] == ["PUT"]


def test_a_post_a_pod_received_is_not_passed_on(ing: Ingress, pods: dict[str, DyingPod]) -> None:
    results = sorted(send(ing, "POST", "posts.local", b'{"order": 1}') for _ in range(2))
    assert [code for code, _ in results] == [200, 502], results
    assert json.loads(results[0][1])["backend"] == "good"
    assert pods["posts"].seen == ["POST"]  # it got there once, and was not sent again


def test_every_endpoint_failing_is_one_clear_502(ing: Ingress, pods: dict[str, DyingPod]) -> None:
    code, body = get(ing, "dead.local")
    assert code == 502
    assert body.startswith("502 Bad Gateway: service default/dead: endpoint "), body
    assert "failed before answering" in body and "after 2 tries" in body and body.count("\n") == 1, body
    assert sorted(pods["dead-a"].seen + pods["dead-b"].seen) == ["GET", "GET"]
    code, body = get(ing, "dead.local")  # both out of rotation now: still one clear answer, no hang
    assert code == 502 and body.startswith("502 Bad Gateway: service default/dead"), body


def test_a_kept_alive_connection_the_pod_dropped_is_tried_again_on_a_new_one(
    ing: Ingress, pods: dict[str, DyingPod]
) -> None:
    async def three() -> list[tuple[int, str]]:
        async with aiohttp.ClientSession() as s:  # one client connection: the ingress reuses its upstream one
            got = []
            for _ in range(3):
                async with s.get(ing.url(), headers={"Host": "idle.local"}) as r:
                    got.append((r.status, await r.text()))
            return got

    # the single endpoint drops every second request on a connection; each is sent
    # again on a new connection, and the endpoint stays in rotation
    assert asyncio.run(three()) == [(200, "first\n")] * 3
    assert pods["idle"].seen == ["GET"] * 5
