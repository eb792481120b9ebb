"""The real Docker-in-Docker lab: images built once per session, a real `tuik8s server`
listening where nodes reach it, and `tuik8s lab` run as a user runs it.

Nodes run the real kubelet. Where it cannot run (a checkout without it), they run the
stand-in of lab/node-agent.py (the kubelet's NodeAgent: Node registration and Lease, no
pods), so Ready is still tested; `KUBELET_RUNNABLE` tells the tests that need pods.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tuik8s.nodes.docker import ImageBuilder, LabNetwork

STAND_IN_KUBELET = "exec python /opt/tuik8s/lab/node-agent.py"


def _engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def _kubelet_runnable() -> bool:
    """`tuik8s kubelet`, or its module's own entry point until the CLI has it (what the
    node entrypoint runs)."""
    for cmd in (["tuik8s.cli", "kubelet", "--help"], ["tuik8s.kubelet.cli", "--help"]):
        if subprocess.run([sys.executable, "-m", *cmd], capture_output=True, timeout=60).returncode == 0:
            return True
    return False


KUBELET_RUNNABLE = _kubelet_runnable()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "the lab needs root (host routes, a firewall rule, debootstrap)"
    elif not _engine_answers():
        reason = "no Docker engine answers (start one with scripts/docker-engine)"
    if reason is None:
        return
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sh(*cmd: str, check: bool = True, timeout: float = 120, env: dict[str, str] | None = None,
       input: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=env, input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


@dataclass
class LabServer:
    """A control plane for a lab cluster, and the `tuik8s lab` command bound to it."""

    cluster: str
    data_dir: Path
    home: Path
    port: int
    net: LabNetwork
    proc: subprocess.Popen[str]

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig), **extra}
        if not KUBELET_RUNNABLE:
            env.setdefault("TUIK8S_KUBELET_COMMAND", STAND_IN_KUBELET)
        return env

    def lab(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "tuik8s.nodes.lab", *args]
        if args[0] != "build":
            cmd += ["--cluster", self.cluster, "--data-dir", str(self.data_dir)]
        return sh(*cmd, check=check, timeout=timeout, env=self.env())

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return sh("kubectl", "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.home / "kcache"), *args,
                  check=check, env=self.env(), input=input, timeout=60)

    def nodes(self) -> dict[str, dict]:
        items = json.loads(self.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        return {n["metadata"]["name"]: n for n in items}

    def container(self, node: str) -> str:
        return f"tuik8s-{self.cluster}-{node}"

    def in_node(self, node: str, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return sh("docker", "exec", self.container(node), *cmd, check=check, timeout=timeout)


def start_lab_server(base: Path, cluster: str, *, host: str = "0.0.0.0", advertise: bool = True) -> LabServer:
    """`tuik8s server` for `cluster`, listening on `host`, naming the lab's gateway in its cert.

    The lab's addresses are allocated first (as `lab up` would), so the server can be
    started with the right `--advertise`."""
    from tuik8s.nodes.docker import DockerNodeProvider

    data_dir, home = base / "data", base / "home"
    home.mkdir(parents=True, exist_ok=True)
    net = asyncio.run(DockerNodeProvider(cluster, data_dir).network(allocate=True))
    assert net is not None
    port = free_port()
    cmd = [sys.executable, "-m", "tuik8s.cli", "server", "--cluster", cluster, "--data-dir", str(data_dir),
           "--port", str(port), "--host", host, "--no-user-kubeconfig"]
    if advertise:
        cmd += ["--advertise", net.gateway]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HOME": str(home)})
    line = proc.stdout.readline() if proc.stdout else ""
    if "ready" not in line:
        proc.kill()
        raise RuntimeError(f"server did not start: {line} {proc.stderr.read() if proc.stderr else ''}")
    assert yaml.safe_load((data_dir / "kubeconfig").read_text())["users"][0]["user"]["token"]
    return LabServer(cluster, data_dir, home, port, net, proc)


def stop_lab_server(server: LabServer) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture(scope="session")
def lab_images() -> None:
    """Every lab image, built once per session (skipped where they exist already)."""
    asyncio.run(ImageBuilder(say=lambda line: print(line, file=sys.stderr)).build())


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory, lab_images: None) -> Iterator[LabServer]:
    server = start_lab_server(tmp_path_factory.mktemp("lab"), "e2e")
    try:
        yield server
    finally:
        server.lab("down", check=False)
        stop_lab_server(server)
