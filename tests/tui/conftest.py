"""A real `tuik8s server` with two hollow nodes and a small workload, for the UI tests.

The server runs the scheduler and the controllers, so a Deployment really makes pods that
hollow kubelets run; every UI test drives the real app (`run_test`) against it and checks
what the keys did through the API. A test that changes shared objects makes its own.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.integration.hollow_fixtures import HollowProcess, start_hollow
from tuik8s.client.client import ApiClient

NS = "tui"
SIZE = (160, 45)

SEED = """
apiVersion: v1
kind: Namespace
metadata: {name: tui}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: tui}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: nginx:1.27, resources: {requests: {cpu: 100m, memory: 64Mi}}}
---
apiVersion: v1
kind: Service
metadata: {name: web-svc, namespace: tui}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config, namespace: tui}
data: {mode: test}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("tui")
    home = base / "home"
    home.mkdir()
    srv = start_server(base / "data", home, extra=("--no-user-kubeconfig",))
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def cluster(server: RunningServer) -> Iterator[RunningServer]:
    """The server with two Ready hollow nodes, a Deployment of two Running pods, a Service,
    a ConfigMap and an Event about the Deployment, all in namespace `tui`."""
    nodes: HollowProcess = start_hollow(server, 2, "tui-node-")
    try:
        server.kubectl("apply", "-f", "-", input=SEED, check=True)
        server.kubectl("rollout", "status", "deployment/web", "-n", NS, "--timeout=60s", check=True)
        uid = server.kubectl_json("get", "deployment", "web", "-n", NS)["metadata"]["uid"]
        event = f"""
apiVersion: v1
kind: Event
metadata: {{name: web.tuitest, namespace: {NS}}}
involvedObject: {{kind: Deployment, apiVersion: apps/v1, name: web, namespace: {NS}, uid: {uid}}}
reason: TuiTestEvent
message: an event the describe screen must show
type: Normal
source: {{component: tui-tests}}
firstTimestamp: "2025-01-01T00:00:00Z"
lastTimestamp: "2025-01-01T00:00:00Z"
count: 1
"""
        server.kubectl("apply", "-f", "-", input=event, check=True)
        yield server
    finally:
        nodes.stop()


@pytest.fixture
def kubeconfig(cluster: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.delenv("KUBE_EDITOR", raising=False)
    return cluster.kubeconfig


@pytest.fixture
async def api(kubeconfig: Path) -> AsyncIterator[ApiClient]:
    async with ApiClient.from_kubeconfig() as client:
        yield client


# ---- helpers --------------------------------------------------------------------------------


def screen_text(app: Any) -> str:
    """The screen as plain text, as a terminal would show it."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system=None, record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


async def until(pilot: Any, predicate: Callable[[], Any], what: str, within: float = 15.0) -> Any:
    """Wait (letting the app run) until `predicate()` (sync or async) is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await pilot.pause(0.05)


async def rows_of(pilot: Any, app: Any, key: str) -> None:
    """Wait until the current list has the row `key` and put the cursor on it."""
    table = app.browser.table
    await until(pilot, lambda: table.model is not None and key in table.model.index, f"row {key}")
    await pilot.pause(0.05)
    assert table.select_key(key)


def status_text(app: Any) -> str:
    from tuik8s.tui.widgets.status_bar import StatusBar

    return app.screen.query_one("#status", StatusBar).message


def editor_script(tmp_path: Path, body: str) -> str:
    """An $EDITOR: a Python script given the file to edit as argv[1]."""
    script = tmp_path / "editor.py"
    script.write_text("import sys, yaml\npath = sys.argv[1]\n" + body)
    return f"{sys.executable} {script}"


__all__ = ["NS", "SIZE", "screen_text", "until", "rows_of", "status_text", "editor_script", "os"]
