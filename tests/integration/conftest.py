"""A real `tuik8s server` on a temporary data dir, and the real clients to drive it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    kubeconfig: Path
    token: str
    ca_file: Path
    port: int
    proc: subprocess.Popen
    home: Path

    def kubectl(self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run the real kubectl against this server, with a cache of its own."""
        cmd = ["kubectl", "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.home / "kcache"), *args]
        env = {**os.environ, "HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig)}
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json", check=True).stdout)


def start_server(data_dir: Path, home: Path, port: int | None = None, extra: tuple[str, ...] = ()) -> RunningServer:
    port = port or free_port()
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(home / ".kube" / "config")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuik8s.cli", "server", "--data-dir", str(data_dir), "--port", str(port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if "ready" not in line:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"server did not start: {line} {err}")
    kubeconfig = data_dir / "kubeconfig"
    cfg = yaml.safe_load(kubeconfig.read_text())
    token = cfg["users"][0]["user"]["token"]
    return RunningServer(f"https://127.0.0.1:{port}", data_dir, kubeconfig, token, data_dir / "pki" / "ca.crt", port, proc, home)


def stop_server(server: RunningServer, sig: int = signal.SIGTERM) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(sig)
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("tuik8s")
    home = base / "home"
    home.mkdir()
    srv = start_server(base / "data", home)
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture
def ns(server: RunningServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test's own (on the module's `server`), so no controller adopts
    another test's leftovers."""
    name = request.node.name.replace("_", "-")[5:40].strip("-").lower()
    server.kubectl("create", "namespace", name, check=True)
    yield name
    # pods on a node go only once a kubelet finishes them: no kubelet here finishes these
    server.kubectl("delete", "pods", "--all", "-n", name, "--grace-period=0", "--force", "--wait=false")
    server.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def ready_node(name: str, taints: list[dict] | None = None) -> dict:
    """A Node that reports Ready with room for pods, as a kubelet would register it."""
    node: dict = {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
            "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"},
        },
    }
    if taints:
        node["spec"] = {"taints": taints}
    return node


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)
