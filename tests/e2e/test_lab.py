"""`tuik8s lab` on the real Docker engine: nodes, their engines, the pod network, drills, down.

One lab (cluster "e2e", three nodes) serves the module; every test starts from
`lab up --nodes 3`, which is idempotent and brings back whatever an earlier test stopped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    KUBELET_RUNNABLE,
    LabServer,
    sh,
    start_lab_server,
    stop_lab_server,
    wait_for,
)
from tuik8s.nodes.docker import NODE_PRELOADED

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def first_up(lab_server: LabServer) -> subprocess.CompletedProcess[str]:
    return lab_server.lab("up", "--nodes", "3")


@pytest.fixture
def lab(lab_server: LabServer, first_up: subprocess.CompletedProcess[str]) -> LabServer:
    lab_server.lab("up", "--nodes", "3")
    return lab_server


def node_containers(lab: LabServer) -> dict[str, str]:
    """{container name: id} of the cluster's node containers."""
    out = sh("docker", "ps", "-a", "--filter", f"label=tuik8s.cluster={lab.cluster}",
             "--format", "{{.Names}} {{.ID}}").stdout
    return dict(line.split() for line in out.splitlines())


def inspect(ref: str) -> dict:
    return json.loads(sh("docker", "inspect", ref).stdout)[0]


def http_get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read().decode()


def ready(node: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))


class InnerContainers:
    """Containers started straight in nodes' dockerds (no kubelet involved), removed after."""

    def __init__(self, lab: LabServer) -> None:
        self.lab = lab
        self.started: list[tuple[str, str]] = []

    def run(self, node: str, name: str, *args: str) -> str:
        """Start one; its IP on the node's pod bridge."""
        self.lab.in_node(node, "docker", "run", "-d", "--name", name, "--hostname", name, *args)
        self.started.append((node, name))
        return self.lab.in_node(node, "docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", name).stdout.strip()

    def remove(self) -> None:
        for node, name in self.started:
            self.lab.in_node(node, "docker", "rm", "-f", name, check=False)


@pytest.fixture
def inner(lab: LabServer) -> Iterator[InnerContainers]:
    containers = InnerContainers(lab)
    try:
        yield containers
    finally:
        containers.remove()


def test_up_brings_nodes_ready(lab_server: LabServer, first_up: subprocess.CompletedProcess[str]) -> None:
    assert "3 nodes Ready" in first_up.stdout
    nodes = lab_server.nodes()
    net = lab_server.net
    for i in (1, 2, 3):
        node = nodes[f"node{i}"]
        assert ready(node)
        addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
        assert addresses["InternalIP"] == net.node_ip(i)
        assert node["spec"]["podCIDR"] == net.pod_cidr(i)


def test_nodes_are_docker_in_docker_containers(lab: LabServer) -> None:
    c = inspect(lab.container("node1"))
    assert c["State"]["Running"]
    assert c["Config"]["Hostname"] == "node1"
    assert c["Config"]["Labels"]["tuik8s.cluster"] == lab.cluster
    assert c["Config"]["Labels"]["tuik8s.node"] == "node1"
    assert not c["HostConfig"]["Privileged"]  # --privileged fails on these machines
    assert {"SYS_RESOURCE", "CAP_SYS_RESOURCE"} & set(c["HostConfig"]["CapDrop"])
    mounts = {m["Destination"]: m for m in c["Mounts"]}
    assert mounts["/var/lib/docker"]["Type"] == "volume"  # inner overlay2 not on overlayfs
    assert mounts["/opt/tuik8s/src/tuik8s"]["RW"] is False  # the checkout, read-only
    driver = lab.in_node("node1", "docker", "info", "--format", "{{.Driver}}").stdout.strip()
    assert driver == "overlay2"


def test_the_lab_talks_to_nothing_outside(lab: LabServer) -> None:
    net = lab.net
    network = inspect(f"tuik8s-{lab.cluster}")
    assert network["Internal"] is True
    assert network["IPAM"]["Config"][0]["Subnet"] == net.subnet
    bridge = "br-" + network["Id"][:12]
    rules = sh("iptables", "-S").stdout
    assert f"! -d {net.subnet} -i {bridge} -j DROP" in rules  # docker's: nothing leaves the lab
    assert inspect(lab.container("node1"))["HostConfig"]["Dns"] == [net.dns]
    resolv = lab.in_node("node1", "docker", "run", "--rm", "tuik8s/busybox", "cat", "/etc/resolv.conf").stdout
    nameservers = [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver")]
    assert nameservers == [net.dns]


def test_routes_to_every_pod_cidr(lab: LabServer) -> None:
    net = lab.net
    host = sh("ip", "-4", "route", "show", "root", net.cluster_cidr).stdout
    for i in (1, 2, 3):
        assert f"{net.pod_cidr(i)} via {net.node_ip(i)}" in host
    inside = lab.in_node("node1", "ip", "-4", "route").stdout
    assert f"{net.pod_cidr(2)} via {net.node_ip(2)}" in inside
    assert f"{net.pod_cidr(3)} via {net.node_ip(3)}" in inside
    assert f"{net.pod_cidr(1)} dev docker0" in inside


def test_pods_reach_each_other_across_nodes(lab: LabServer, inner: InnerContainers) -> None:
    net = lab.net
    web = inner.run("node1", "e2e-web1", "--tmpfs", "/var/log/app", "tuik8s/blog")
    assert web.startswith(net.pod_cidr(1).rsplit(".", 1)[0] + ".")

    # host -> a pod on node1
    status, body = wait_for(lambda: _try_get(f"http://{web}:8080/"), timeout=20)
    assert status == 200
    assert body == f"app: blog\npod: e2e-web1\nip: {web}\n"
    assert http_get(f"http://{web}:8080/healthz") == (200, "ok\n")

    # node2 itself -> the pod on node1
    got = lab.in_node("node2", "python3", "-c",
                      f"import urllib.request as u; print(u.urlopen('http://{web}:8080/', timeout=10).status)")
    assert got.stdout.strip() == "200"

    # a pod on node2 -> the pod on node1, keeping its own address (no masquerade between pods)
    client = inner.run("node2", "e2e-client2", "tuik8s/busybox", "sleep", "600")
    # (busybox 1.35's `wget -T` crashes: bound the time with `timeout` instead)
    out = lab.in_node("node2", "docker", "exec", "e2e-client2", "timeout", "10", "wget", "-qO-", f"http://{web}:8080/")
    assert "app: blog" in out.stdout
    log = lab.in_node("node1", "docker", "exec", "e2e-web1", "cat", "/var/log/app/access.log").stdout
    assert f" blog {client} GET /" in log.splitlines()[-1]

    # and the other way: a pod on node1 -> a pod on node2
    web2 = inner.run("node2", "e2e-web2", "--tmpfs", "/var/log/app", "tuik8s/shop")
    client1 = inner.run("node1", "e2e-client1", "tuik8s/busybox", "sleep", "600")
    out = lab.in_node("node1", "docker", "exec", "e2e-client1", "timeout", "10", "wget", "-qO-", f"http://{web2}:8080/")
    assert out.stdout == f"app: shop\npod: e2e-web2\nip: {web2}\n"
    log = lab.in_node("node2", "docker", "exec", "e2e-web2", "cat", "/var/log/app/access.log").stdout
    assert f" shop {client1} GET /" in log.splitlines()[-1]


def _try_get(url: str) -> tuple[int, str] | None:
    try:
        return http_get(url)
    except OSError:
        return None


def test_images_are_preloaded_and_load_skips_what_nodes_have(lab: LabServer) -> None:
    images = lab.in_node("node3", "docker", "images", "--format", "{{.Repository}}").stdout.split()
    assert set(NODE_PRELOADED) <= set(images)
    out = lab.lab("load", "tuik8s/blog").stdout
    assert out.strip() == "tuik8s/blog: already on node1, node2, node3"


def test_up_again_changes_nothing_and_adds_missing_nodes(lab: LabServer) -> None:
    before = node_containers(lab)
    assert sorted(before) == [lab.container(f"node{i}") for i in (1, 2, 3)]
    lab.lab("up", "--nodes", "3")
    assert node_containers(lab) == before

    out = lab.lab("up", "--nodes", "4").stdout
    assert "4 nodes Ready" in out
    after = node_containers(lab)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) == {lab.container("node4")}
    net = lab.net
    # the nodes that were there learnt the new node's pod CIDR
    assert f"{net.pod_cidr(4)} via {net.node_ip(4)}" in lab.in_node("node1", "ip", "-4", "route").stdout
    assert ready(lab.nodes()["node4"])


def test_kill_then_start_brings_a_node_back_whole(lab: LabServer, inner: InnerContainers) -> None:
    net = lab.net
    out = lab.lab("node", "kill", "node2").stdout
    assert out.strip() == "node2 killed"
    assert inspect(lab.container("node2"))["State"]["Status"] == "exited"
    status = lab.lab("status").stdout
    assert any(line.split()[:3] == ["node2", lab.container("node2"), "exited"] for line in status.splitlines())

    lab.lab("node", "start", "node2")
    assert lab.in_node("node2", "docker", "version", "--format", "{{.Server.Version}}").stdout.strip()
    # its routes were lost with its network namespace: the entrypoint put them back
    assert f"{net.pod_cidr(1)} via {net.node_ip(1)}" in lab.in_node("node2", "ip", "-4", "route").stdout
    web = inner.run("node2", "e2e-after-kill", "tuik8s/voice")
    status_code, body = wait_for(lambda: _try_get(f"http://{web}:8080/"), timeout=20)
    assert status_code == 200 and "app: voice" in body
    wait_for(lambda: ready(lab.nodes()["node2"]), timeout=60)


def test_stop_is_clean_and_up_starts_stopped_nodes(lab: LabServer) -> None:
    lab.lab("node", "stop", "node3")
    state = inspect(lab.container("node3"))["State"]
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 0  # the entrypoint stopped the kubelet and dockerd in order
    lab.lab("up", "--nodes", "3")
    assert inspect(lab.container("node3"))["State"]["Running"]


def test_status_shows_nodes_engines_and_readiness(lab: LabServer) -> None:
    out = lab.lab("status").stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:] if line.startswith("node")}
    for i in (1, 2, 3):
        row = rows[f"node{i}"]
        assert row[2] == "running" and row[3] == lab.net.node_ip(i) and row[5] == "yes" and row[6] == "Ready"


@pytest.mark.skipif(not KUBELET_RUNNABLE, reason="no tuik8s kubelet in this checkout")
def test_a_pod_with_a_log_sidecar_answers_at_its_ip(lab: LabServer) -> None:
    logs = {"name": "logs", "mountPath": "/var/log/app"}
    manifest = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "e2e-blog", "namespace": "default"},
        "spec": {
            "nodeName": "node1",
            "containers": [
                {"name": "blog", "image": "tuik8s/blog", "imagePullPolicy": "Never",
                 "ports": [{"containerPort": 8080}], "volumeMounts": [logs]},
                {"name": "log-collector", "image": "tuik8s/log-collector", "imagePullPolicy": "Never",
                 "volumeMounts": [logs]},
            ],
            "volumes": [{"name": "logs", "emptyDir": {}}],
        },
    }
    lab.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    try:
        def running() -> str | None:
            pod = json.loads(lab.kubectl("get", "pod", "e2e-blog", "-o", "json").stdout)
            return pod["status"].get("podIP") if pod["status"].get("phase") == "Running" else None

        ip = wait_for(running, timeout=60)
        assert ip.startswith(lab.net.pod_cidr(1).rsplit(".", 1)[0] + ".")
        status, body = wait_for(lambda: _try_get(f"http://{ip}:8080/blog/"), timeout=20)
        assert status == 200 and body == f"app: blog\npod: e2e-blog\nip: {ip}\n"

        # the sidecar prints what the app logs on their shared emptyDir
        def collected() -> bool:
            names = lab.in_node("node1", "docker", "ps", "-q", "--filter", "name=k8s_log-collector_e2e-blog_").stdout.split()
            out = lab.in_node("node1", "docker", "logs", names[0]).stdout if names else ""
            return f"blog {lab.net.gateway} GET /blog/" in out

        wait_for(collected, timeout=20)
    finally:
        lab.kubectl("delete", "pod", "e2e-blog", "--wait=false", check=False)


def test_down_leaves_nothing_behind(lab: LabServer) -> None:
    containers = node_containers(lab)
    volumes = [m["Name"] for c in containers for m in inspect(c)["Mounts"] if m["Type"] == "volume"]
    assert len(volumes) == len(containers)
    network = inspect(f"tuik8s-{lab.cluster}")
    bridge = "br-" + network["Id"][:12]

    out = lab.lab("down").stdout
    assert out.startswith(f"lab {lab.cluster} removed: {len(containers)} nodes")
    assert node_containers(lab) == {}
    for volume in volumes:
        assert sh("docker", "volume", "inspect", volume, check=False).returncode != 0
    assert sh("docker", "network", "inspect", f"tuik8s-{lab.cluster}", check=False).returncode != 0
    assert sh("ip", "-4", "route", "show", "root", lab.net.cluster_cidr).stdout.strip() == ""
    assert bridge not in sh("iptables", "-S").stdout
    assert f"tuik8s-{lab.cluster}" not in sh("iptables", "-S", "DOCKER-USER").stdout
    assert lab.nodes() == {}

    assert lab.lab("down").stdout.strip() == f"lab {lab.cluster}: nothing to remove"
    assert lab.lab("status").stdout.strip().startswith(f"no lab for cluster {lab.cluster}")


def _error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("tuik8s: error:")]


def test_up_against_a_loopback_server_fails_in_one_line_and_cleans_up(
    tmp_path: Path, lab_images: None,
) -> None:
    server = start_lab_server(tmp_path, "e2e-lo", host="127.0.0.1")
    try:
        started = time.monotonic()
        result = server.lab("up", "--nodes", "2", check=False)
        assert result.returncode == 1
        [line] = _error_lines(result)
        assert f"https://{server.net.gateway}:{server.port}" in line and "--host 0.0.0.0" in line
        assert time.monotonic() - started < 60
        assert sh("docker", "network", "inspect", "tuik8s-e2e-lo", check=False).returncode != 0
        assert node_containers(server) == {}
        assert "tuik8s-e2e-lo" not in sh("iptables", "-S", "DOCKER-USER").stdout
    finally:
        server.lab("down", check=False)
        stop_lab_server(server)


def test_up_without_a_control_plane_says_how_to_start_one(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "tuik8s.nodes.lab", "up", "--nodes", "1", "--cluster", "e2e-none",
           "--data-dir", str(tmp_path / "none")]
    result = sh(*cmd, check=False)
    assert result.returncode == 1
    [line] = _error_lines(result)
    assert "no control plane for cluster e2e-none" in line and "tuik8s server --cluster e2e-none" in line
