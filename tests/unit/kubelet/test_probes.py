"""Probe thresholds, timing defaults and handlers (HTTP and TCP against loopback)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tuik8s.kubelet.probes import (
    LIVENESS,
    READINESS,
    STARTUP,
    ProbeSpec,
    ProbeWorker,
    Thresholds,
    initial_result,
    resolve_port,
    run_handler,
)
from tuik8s.kubelet.runtime import ExecResult


def test_probe_defaults_are_upstreams() -> None:
    spec = ProbeSpec.from_api({}, READINESS)
    assert (spec.initial_delay, spec.period, spec.timeout, spec.success_threshold, spec.failure_threshold) == (0, 10, 1, 1, 3)
    custom = ProbeSpec.from_api(
        {"initialDelaySeconds": 5, "periodSeconds": 2, "timeoutSeconds": 3, "successThreshold": 2, "failureThreshold": 1},
        READINESS,
    )
    assert (custom.initial_delay, custom.period, custom.timeout, custom.success_threshold, custom.failure_threshold) == (5, 2, 3, 2, 1)
    assert ProbeSpec.from_api({"successThreshold": 3}, LIVENESS).success_threshold == 1


def test_initial_results() -> None:
    assert initial_result(LIVENESS) is True
    assert initial_result(READINESS) is False
    assert initial_result(STARTUP) is False


@pytest.mark.parametrize(
    ("success", "failure", "observed", "published"),
    [
        (1, 3, [False, False, False], [None, None, False]),
        (1, 3, [False, False, True, False, False, False], [None, None, True, None, None, False]),
        (2, 1, [True, False, True, True], [None, False, None, True]),
        (1, 1, [True, True, False], [True, True, False]),
    ],
    ids=["three-failures", "a-success-resets-the-run", "two-successes-needed", "every-result"],
)
def test_thresholds(success: int, failure: int, observed: list[bool], published: list[bool | None]) -> None:
    t = Thresholds(ProbeSpec(success_threshold=success, failure_threshold=failure), initial=False)
    assert [t.observe(ok) for ok in observed] == published


def test_resolve_port_by_number_or_name() -> None:
    c = {"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port(80, c) == 80
    assert resolve_port("http", c) == 8080
    assert resolve_port("9090", c) == 9090
    with pytest.raises(ValueError, match="unknown port name 'metrics'"):
        resolve_port("metrics", c)


@pytest.fixture
async def http_target() -> AsyncIterator[int]:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("X-Probe", "fine"))

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down")

    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/elsewhere"})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/healthz", ok)
    app.router.add_get("/broken", broken)
    app.router.add_get("/moved", moved)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port
    finally:
        await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeRuntime:
    def __init__(self, result: ExecResult | None = None, delay: float = 0.0) -> None:
        self.result = result or ExecResult(0, "ok\n")
        self.delay = delay
        self.calls: list[Sequence[str]] = []

    async def exec(self, container_id: str, argv: Sequence[str], time_limit: float | None = None) -> ExecResult:
        self.calls.append(argv)
        async with asyncio.timeout(time_limit):
            await asyncio.sleep(self.delay)
        return self.result


async def run(handler: dict[str, Any], *, runtime: Any = None, container: dict[str, Any] | None = None,
              time_limit: float = 1.0) -> tuple[bool, str]:
    async with aiohttp.ClientSession() as session:
        return await run_handler(
            handler, runtime=runtime or FakeRuntime(), session=session, container=container or {"name": "c"},
            container_id="cid", pod_ip="127.0.0.1", time_limit=time_limit,
        )


async def test_http_probe_success_failure_and_redirect(http_target: int) -> None:
    assert await run({"httpGet": {"path": "/healthz", "port": http_target}}) == (True, "")
    assert await run({"httpGet": {"path": "/moved", "port": http_target}}) == (True, "")
    assert await run({"httpGet": {"path": "/broken", "port": http_target}}) == (
        False, "HTTP probe failed with statuscode: 503",
    )


async def test_http_probe_named_port_and_timeout(http_target: int) -> None:
    container = {"name": "c", "ports": [{"name": "http", "containerPort": http_target}]}
    assert (await run({"httpGet": {"path": "/healthz", "port": "http"}}, container=container))[0]
    ok, message = await run({"httpGet": {"path": "/slow", "port": http_target}}, time_limit=0.1)
    assert not ok
    assert message == f'Get "http://127.0.0.1:{http_target}/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'


async def test_http_probe_connection_refused_reads_like_upstream() -> None:
    port = closed_port()
    ok, message = await run({"httpGet": {"path": "/", "port": port}})
    assert not ok
    assert message == f'Get "http://127.0.0.1:{port}/": dial tcp 127.0.0.1:{port}: connect: connection refused'


async def test_tcp_probe(http_target: int) -> None:
    assert await run({"tcpSocket": {"port": http_target}}) == (True, "")
    port = closed_port()
    assert await run({"tcpSocket": {"port": port}}) == (False, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


async def test_exec_probe() -> None:
    assert await run({"exec": {"command": ["cat", "/tmp/healthy"]}}) == (True, "ok\n")
    failing = FakeRuntime(ExecResult(1, "cat: can't open '/tmp/healthy': No such file or directory\n"))
    assert await run({"exec": {"command": ["cat", "/tmp/healthy"]}}, runtime=failing) == (
        False, "cat: can't open '/tmp/healthy': No such file or directory\n",
    )
    slow = FakeRuntime(delay=5)
    ok, message = await run({"exec": {"command": ["sleep", "9"]}}, runtime=slow, time_limit=0.1)
    assert not ok and "timed out" in message


async def test_liveness_worker_goes_on_hold_after_failure_threshold() -> None:
    results: list[tuple[str, bool, bool]] = []
    runtime = FakeRuntime(ExecResult(1, "unhealthy"))
    async with aiohttp.ClientSession() as session:
        worker = ProbeWorker(
            LIVENESS, {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2},
            container={"name": "app"}, container_id="cid", started_at=None, pod_ip="127.0.0.1",
            runtime=runtime, session=session,  # type: ignore[arg-type]
            on_result=lambda kind, name, cid, ok, msg, changed: results.append((kind, ok, changed)),
        )
        worker.spec = ProbeSpec(period=0.01, failure_threshold=2)
        worker.thresholds.spec = worker.spec
        worker.start()
        assert worker.task is not None
        await asyncio.wait_for(worker.task, 2)
    assert worker.on_hold
    assert results == [(LIVENESS, False, False), (LIVENESS, False, True)]
    assert len(runtime.calls) == 2


async def test_startup_gates_and_ends_on_success() -> None:
    runtime = FakeRuntime(ExecResult(0, ""))
    async with aiohttp.ClientSession() as session:
        gate_open = False
        readiness = ProbeWorker(
            READINESS, {"exec": {"command": ["true"]}}, container={"name": "app"}, container_id="cid",
            started_at=None, pod_ip="127.0.0.1", runtime=runtime, session=session,  # type: ignore[arg-type]
            on_result=lambda *a: None, gate=lambda: gate_open,
        )
        readiness.spec = ProbeSpec(period=0.01)
        readiness.start()
        await asyncio.sleep(0.1)
        assert runtime.calls == [] and readiness.result is False
        gate_open = True
        await asyncio.sleep(0.1)
        assert readiness.result is True
        await readiness.stop()
        startup = ProbeWorker(
            STARTUP, {"exec": {"command": ["true"]}}, container={"name": "app"}, container_id="cid",
            started_at=None, pod_ip="127.0.0.1", runtime=runtime, session=session,  # type: ignore[arg-type]
            on_result=lambda *a: None,
        )
        startup.spec = ProbeSpec(period=0.01)
        startup.start()
        assert startup.task is not None
        await asyncio.wait_for(startup.task, 1)
        assert startup.result is True
