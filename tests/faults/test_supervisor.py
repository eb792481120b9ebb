"""A control-plane component that crashes is restarted by its supervisor, says so in an
Event (reason ComponentRestarted, about Namespace kube-system) and in the log, and works afterwards.

The real `Scheduler` and `ReplicaSetController` run under a real `ControllerManager`,
talking HTTPS to a real `tuik8s server` that runs neither itself; each is made to crash
once (an exception from inside its running task, as a bug would), and must then bind a
pod / create a ReplicaSet's pods as if nothing happened.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RunningServer, start_server, stop_server
from tuik8s.client.client import ApiClient
from tuik8s.client.informer import SharedInformers
from tuik8s.client.kubeconfig import ClusterAccess
from tuik8s.client.transport import HttpTransport
from tuik8s.controllers.replicaset import ReplicaSetController
from tuik8s.controllers.runner import ControllerContext, ControllerManager
from tuik8s.scheduler.scheduler import Scheduler


class InjectedFault(RuntimeError):
    """The crash the test injects."""


def crash_once(run: Callable[[], Coroutine[Any, Any, None]], after: float, runs: list[str]) -> Callable[[], Any]:
    """`run`, except that its first life ends with an exception `after` seconds in."""

    async def supervised() -> None:
        runs.append("start")
        if len(runs) > 1:
            await run()
            return
        task = asyncio.ensure_future(run())
        try:
            await asyncio.sleep(after)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        raise InjectedFault("injected by the fault suite")

    return supervised


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("supervisor")
    (base / "home").mkdir()
    srv = start_server(base / "data", base / "home", extra=("--no-scheduler", "--no-controllers"))
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture
def ca_data(bare_server: RunningServer) -> bytes:
    return Path(bare_server.ca_file).read_bytes()


@pytest.fixture
async def client(bare_server: RunningServer, ca_data: bytes) -> AsyncIterator[ApiClient]:
    access = ClusterAccess(context="faults", server=bare_server.url, namespace="default",
                           ca_data=ca_data, insecure=False, token=bare_server.token,
                           client_cert=None, client_key=None)
    api = ApiClient(HttpTransport(access))
    try:
        yield api
    finally:
        await api.close()


async def eventually(check: Callable[[], Coroutine[Any, Any, Any]], within: float = 30.0) -> Any:
    async with asyncio.timeout(within):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.1)


async def restarted_events(api: ApiClient, name: str) -> list[dict[str, Any]]:
    # about Namespace kube-system; a cluster-scoped object's events live in `default`, as upstream
    events = (await api.list("events")).items
    return [e for e in events if e.get("reason") == "ComponentRestarted" and e["message"].startswith(f"{name} crashed")]


async def test_a_crashed_scheduler_is_restarted_says_so_and_binds(
    client: ApiClient, bare_server: RunningServer, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tuik8s.controllers.runner")
    ctx = ControllerContext(client, SharedInformers(client))
    manager = ControllerManager(ctx)
    runs: list[str] = []
    manager.add("scheduler", crash_once(Scheduler(ctx).run, after=0.5, runs=runs))
    manager.start()
    try:
        events = await eventually(lambda: restarted_events(client, "scheduler"))
        assert events[0]["type"] == "Warning"
        assert events[0]["message"] == "scheduler crashed (InjectedFault: injected by the fault suite) and was restarted"
        assert events[0]["source"]["component"] == "controller-manager"
        assert (events[0]["involvedObject"]["kind"], events[0]["involvedObject"]["name"]) == ("Namespace", "kube-system")
        assert any("scheduler crashed; restarting it in 1 s" in r.getMessage() and r.levelno == logging.ERROR
                   for r in caplog.records)
        await eventually(lambda: asyncio.sleep(0, len(runs) >= 2))
        assert manager.restarts == {"scheduler": 1}
        # the restarted scheduler works: a pod is bound to the one Ready node
        await client.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
        await client.patch("nodes", "n1", {"status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}, "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        }}, subresource="status")
        await client.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "after-crash"},
                                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, "default")

        async def bound() -> bool:
            return (await client.get("pods", "after-crash", "default"))["spec"].get("nodeName") == "n1"

        await eventually(bound)
    finally:
        await manager.stop()


async def test_a_crashed_controller_is_restarted_and_reconciles(client: ApiClient, bare_server: RunningServer) -> None:
    ctx = ControllerContext(client, SharedInformers(client))
    manager = ControllerManager(ctx)
    runs: list[str] = []
    controller = ReplicaSetController(ctx)
    manager.add(controller.name, crash_once(controller.run, after=0.5, runs=runs))
    manager.start()
    try:
        await eventually(lambda: restarted_events(client, controller.name))
        await eventually(lambda: asyncio.sleep(0, len(runs) >= 2))
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs1"}, "spec": {
            "replicas": 2, "selector": {"matchLabels": {"app": "rs1"}},
            "template": {"metadata": {"labels": {"app": "rs1"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
        await client.create("replicasets", rs, "default")

        async def two_pods() -> bool:
            pods = (await client.list("pods", namespace="default", label_selector="app=rs1")).items
            return len(pods) == 2

        await eventually(two_pods)
        out = bare_server.kubectl("get", "events", "-A", "-o", "json", check=True).stdout
        reasons = [e["reason"] for e in json.loads(out)["items"]]
        assert "ComponentRestarted" in reasons
    finally:
        await manager.stop()
