"""Hollow nodes for integration tests: `tuik8s hollow` as a subprocess against a test server.

Use the module-scoped `hollow` fixture for three Ready nodes on the module's `server`::

    from tests.integration import hollow_fixtures

    hollow = hollow_fixtures.hollow  # the fixture, under the name tests ask for

    def test_something(server, hollow):
        ...  # hollow.names == ["hollow-0", "hollow-1", "hollow-2"], all Ready

or `start_hollow(server, nodes=1, prefix="victim-")` for nodes of your own: `pause()`
(SIGSTOP: the kubelet freezes, its Lease goes stale), `resume()`, `stop()` (SIGTERM: the
Nodes stay and go NotReady, as a stopped kubelet's).

Pods are bound to hollow nodes by a scheduler, or through the API (`bind`): give a pod a
`schedulerName` no scheduler serves and POST its binding, so the test does not depend on
whether the scheduler runs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import RunningServer, wait_for

NO_SCHEDULER = "tuik8s-test-no-scheduler"


@dataclass
class HollowProcess:
    """One `tuik8s hollow` process and the nodes it runs."""

    proc: subprocess.Popen
    names: list[str]
    server: RunningServer
    log: Path

    def pause(self) -> None:
        """Freeze every kubelet of this process (SIGSTOP): no Lease, no status, no pod work."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Stop the process (SIGCONT first, so a paused one can hear SIGTERM)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(lambda: set(self.names) <= ready_nodes(self.server), timeout=timeout)


def start_hollow(
    server: RunningServer,
    nodes: int = 3,
    prefix: str = "hollow-",
    *extra: str,
    start_delay: float = 0.05,
    wait: bool = True,
    timeout: float = 30,
) -> HollowProcess:
    """Run `python -m tuik8s.nodes.hollow` against `server`; by default wait until Ready."""
    cmd = [
        sys.executable, "-m", "tuik8s.nodes.hollow", "--kubeconfig", str(server.kubeconfig),
        "--nodes", str(nodes), "--name-prefix", prefix, "--start-delay", str(start_delay), *extra,
    ]
    # its log goes to a file: a pipe nobody reads would block it once full
    log = server.home / f"hollow-{prefix.rstrip('-') or 'nodes'}.log"
    with log.open("a") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    hollow = HollowProcess(proc, [f"{prefix}{i}" for i in range(nodes)], server, log)
    if wait:
        line = proc.stdout.readline() if proc.stdout else ""
        if "registered" not in line:
            hollow.stop()
            raise RuntimeError(f"tuik8s hollow did not start: {line!r} {log.read_text()[-2000:]}")
        hollow.wait_ready(timeout)
    return hollow


def ready_nodes(server: RunningServer) -> set[str]:
    """Names of the Nodes whose Ready condition is True."""
    ready = set()
    for n in server.kubectl_json("get", "nodes")["items"]:
        conds = {c["type"]: c["status"] for c in (n.get("status") or {}).get("conditions") or []}
        if conds.get("Ready") == "True":
            ready.add(n["metadata"]["name"])
    return ready


def bind(server: RunningServer, namespace: str, pod: str, node: str) -> None:
    """POST pods/NAME/binding, as the scheduler does."""
    body = json.dumps({
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    })
    result = server.kubectl(
        "create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}/binding", "-f", "-", input=body
    )
    if result.returncode != 0:
        raise AssertionError(f"binding {namespace}/{pod} to {node} failed: {result.stderr}")


@pytest.fixture(scope="module")
def hollow(server: RunningServer) -> Iterator[HollowProcess]:
    """Three Ready hollow nodes (hollow-0..2) on the module's server."""
    proc = start_hollow(server, 3)
    try:
        yield proc
    finally:
        proc.stop()
