"""The Vagrant lab on Vagrant's docker provider: the part of issue 7 a machine without a
hypervisor (CI) can run.

The checkout's Vagrantfile is driven by the real `vagrant`, as a user drives it, against a real
`tuik8s server` of a cluster of its own ("e2e-vagrant"): validate, up, the nodes turn Ready,
a Deployment runs across them, `vagrant halt node2` and its pods move, the TUI's node action
brings it back, `vagrant destroy -f` leaves nothing behind; then `tuik8s lab up --provider
vagrant` does the same in one command.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
from tuik8s.nodes.docker import REPO_ROOT, DockerNodeProvider
from tuik8s.nodes.vagrant import UP_ATTEMPTS, vagrant_dir, vagrant_docker_race

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(shutil.which("vagrant") is None,
                       reason="vagrant is not installed (scripts/dev test installs it: "
                              "apt-get install --no-install-recommends vagrant)"),
]

CLUSTER = "e2e-vagrant"
NODES = ("node1", "node2", "node3")
needs_kubelet = pytest.mark.skipif(not KUBELET_RUNNABLE, reason="no tuik8s kubelet in this checkout")


@dataclass
class VagrantLab:
    """The control plane and `vagrant` bound to its cluster, as lab/VAGRANT.md tells a user."""

    server: LabServer

    def env(self) -> dict[str, str]:
        return self.server.env(
            VAGRANT_CWD=str(REPO_ROOT), VAGRANT_DOTFILE_PATH=str(vagrant_dir(self.server.data_dir)),
            VAGRANT_CHECKPOINT_DISABLE="1", VAGRANT_NO_COLOR="1", TUIK8S_CLUSTER=CLUSTER,
            TUIK8S_DATA_DIR=str(self.server.data_dir), TUIK8S_PYTHON=sys.executable, TUIK8S_NODE_MEMORY="1024",
        )

    def vagrant(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return sh("vagrant", *args, check=check, timeout=timeout, env=self.env())

    def up(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`vagrant up`, run again (as `tuik8s lab up` does) when Vagrant's docker provider only
        lost the race with a container removed elsewhere on the host meanwhile."""
        for _ in range(UP_ATTEMPTS):
            result = self.vagrant("up", *args, check=False)
            if result.returncode == 0 or not vagrant_docker_race(result.stderr):
                break
            print(f"vagrant up {' '.join(args)}: a container elsewhere vanished while Vagrant listed them; again")
        assert result.returncode == 0, f"vagrant up failed: {result.stderr.strip()}\n{result.stdout[-2000:]}"
        return result

    def pods(self, selector: str) -> list[dict]:
        out = self.server.kubectl("get", "pods", "-l", selector, "-o", "json").stdout
        return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]


def containers(cluster: str) -> list[str]:
    out = sh("docker", "ps", "-a", "--filter", f"label=tuik8s.cluster={cluster}", "--format", "{{.Names}}").stdout
    return sorted(out.split())


def ready(node: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))


@pytest.fixture(scope="module")
def vlab(tmp_path_factory: pytest.TempPathFactory, lab_images: None) -> Iterator[VagrantLab]:
    server = start_lab_server(tmp_path_factory.mktemp("vagrant"), CLUSTER)
    lab = VagrantLab(server)
    try:
        # claim the lab's subnet now: other labs on this machine allocate theirs meanwhile
        # (the first `vagrant up` would create the same network)
        asyncio.run(DockerNodeProvider(CLUSTER, server.data_dir).ensure_network())
        yield lab
    finally:
        lab.vagrant("destroy", "-f", check=False)
        server.lab("down", check=False)
        stop_lab_server(server)


@pytest.fixture(scope="module")
def up(vlab: VagrantLab) -> float:
    """`vagrant up --provider=docker`, then every Node Ready: how long it all took."""
    started = time.monotonic()
    result = vlab.up("--provider=docker")
    assert "tuik8s: error" not in result.stdout + result.stderr
    wait_for(lambda: all(n in vlab.server.nodes() and ready(vlab.server.nodes()[n]) for n in NODES), timeout=120)
    took = time.monotonic() - started
    print(f"vagrant up --provider=docker: 3 nodes Ready in {took:.1f}s")
    return took


def test_the_vagrantfile_validates_before_anything_exists(vlab: VagrantLab) -> None:
    assert "Vagrantfile validated successfully." in vlab.vagrant("validate").stdout
    status = vlab.vagrant("status", "--machine-readable").stdout
    assert {line.split(",")[1] for line in status.splitlines() if ",state,not_created" in line} == set(NODES)


def test_up_brings_the_nodes_ready_at_the_lab_addresses(vlab: VagrantLab, up: float) -> None:
    net = vlab.server.net
    nodes = vlab.server.nodes()
    for i, name in enumerate(NODES, start=1):
        addresses = {a["type"]: a["address"] for a in nodes[name]["status"]["addresses"]}
        assert addresses["InternalIP"] == net.node_ip(i)
        assert nodes[name]["spec"]["podCIDR"] == net.pod_cidr(i)
    routes = sh("ip", "-4", "route", "show", "root", net.cluster_cidr).stdout
    for i in (1, 2, 3):
        assert f"{net.pod_cidr(i)} via {net.node_ip(i)}" in routes
    c = json.loads(sh("docker", "inspect", f"tuik8s-{CLUSTER}-node2").stdout)[0]
    assert list(c["NetworkSettings"]["Networks"]) == [f"tuik8s-{CLUSTER}"]  # the lab network only
    assert c["NetworkSettings"]["Networks"][f"tuik8s-{CLUSTER}"]["IPAddress"] == net.node_ip(2)
    assert not c["HostConfig"]["Privileged"]
    mounts = {m["Destination"]: m for m in c["Mounts"]}
    assert mounts["/opt/tuik8s/src/tuik8s"]["RW"] is False
    assert mounts["/var/lib/docker"]["Type"] == "volume"
    assert json.loads(sh("docker", "network", "inspect", f"tuik8s-{CLUSTER}").stdout)[0]["Internal"] is True


def test_join_config_hands_each_node_its_own_token(vlab: VagrantLab, up: float) -> None:
    config = json.loads(vlab.server.lab("join-config").stdout)
    assert config["server"] == f"https://{vlab.server.net.gateway}:{vlab.server.port}"
    assert [n["user"] for n in config["nodes"]] == [f"system:node:{n}" for n in NODES]
    tokens = [n["token"] for n in config["nodes"]]
    assert len(set(tokens)) == 3
    for node in config["nodes"]:  # what the running nodes use, kept across calls
        assert (Path(node["credentials"]) / "token").read_text().strip() == node["token"]
    env = dict(line.split("=", 1) for line in vlab.server.lab("join-config", "--format", "env", "--node", "node2")
               .stdout.splitlines())
    assert env["TUIK8S_TOKEN"] == tokens[1] and env["TUIK8S_POD_CIDR"] == vlab.server.net.pod_cidr(2)


@needs_kubelet
def test_a_deployment_runs_across_the_nodes(vlab: VagrantLab, up: float) -> None:
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "spread", "namespace": "default"},
        "spec": {
            "replicas": 6, "selector": {"matchLabels": {"app": "spread"}},
            "template": {"metadata": {"labels": {"app": "spread"}}, "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "tuik8s/busybox", "imagePullPolicy": "Never",
                                # a PID 1 that ends on TERM: halts and evictions need no kill timeout
                                "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}],
            }},
        },
    }
    vlab.server.kubectl("apply", "-f", "-", input=json.dumps(deployment))

    def running() -> list[dict] | None:
        pods = vlab.pods("app=spread")
        return pods if len(pods) == 6 and all(p["status"].get("phase") == "Running" for p in pods) else None

    pods = wait_for(running, timeout=120)
    assert {p["spec"]["nodeName"] for p in pods} == set(NODES)


@needs_kubelet
def test_halting_a_node_moves_its_pods(vlab: VagrantLab, up: float) -> None:
    on_node2 = {p["metadata"]["name"] for p in vlab.pods("app=spread") if p["spec"]["nodeName"] == "node2"}
    assert on_node2
    started = time.monotonic()
    vlab.vagrant("halt", "node2")
    assert containers(CLUSTER) == [f"tuik8s-{CLUSTER}-{n}" for n in NODES]  # halted, not gone
    wait_for(lambda: not ready(vlab.server.nodes()["node2"]), timeout=60)

    def moved() -> bool:
        pods = vlab.pods("app=spread")
        return (len(pods) == 6 and all(p["status"].get("phase") == "Running" for p in pods)
                and all(p["spec"].get("nodeName") != "node2" for p in pods)
                and not on_node2 & {p["metadata"]["name"] for p in pods})

    wait_for(moved, timeout=150, interval=1)
    print(f"pods of node2 Running elsewhere {time.monotonic() - started:.1f}s after `vagrant halt node2`")


def test_the_tui_node_key_brings_a_halted_node_back(vlab: VagrantLab, up: float) -> None:
    from tuik8s.nodes.lab import lab_provider
    from tuik8s.tui.actions import NodeActionError, ProviderNodeActions

    if ready(vlab.server.nodes()["node2"]):
        vlab.vagrant("halt", "node2")
    actions = ProviderNodeActions(lab_provider(CLUSTER, vlab.server.data_dir))
    line = asyncio.run(actions.start_node("node2"))
    assert line == "node/node2 started: it turns Ready when its kubelet reports"
    wait_for(lambda: ready(vlab.server.nodes()["node2"]), timeout=90)
    with pytest.raises(NodeActionError, match="node/node9 is not a lab node of this cluster"):
        asyncio.run(actions.stop_node("node9"))
    status = vlab.server.lab("status").stdout
    assert f"cluster {CLUSTER} (vagrant/docker)" in status
    assert status.count("Ready") == 3


def test_destroy_leaves_nothing_behind(vlab: VagrantLab, up: float) -> None:
    net = vlab.server.net
    network = json.loads(sh("docker", "network", "inspect", f"tuik8s-{CLUSTER}").stdout)[0]
    bridge = "br-" + network["Id"][:12]
    volumes = [m["Name"] for c in containers(CLUSTER)
               for m in json.loads(sh("docker", "inspect", c).stdout)[0]["Mounts"] if m["Type"] == "volume"]
    assert len(volumes) == 3

    vlab.vagrant("destroy", "-f")
    assert containers(CLUSTER) == []
    assert sh("docker", "network", "inspect", f"tuik8s-{CLUSTER}", check=False).returncode != 0
    for volume in volumes:
        assert sh("docker", "volume", "inspect", volume, check=False).returncode != 0
    assert sh("ip", "-4", "route", "show", "root", net.cluster_cidr).stdout.strip() == ""
    assert bridge not in sh("iptables", "-S").stdout
    assert vlab.server.nodes() == {}  # a machine that is gone takes its Node with it
    assert vlab.server.lab("status").stdout.startswith(f"no lab for cluster {CLUSTER}")


def test_lab_up_drives_vagrant_and_lab_down_destroys(vlab: VagrantLab) -> None:
    vlab.vagrant("destroy", "-f", check=False)
    result = vlab.server.lab("up", "--provider", "vagrant", "--vagrant-provider", "docker", "--nodes", "1")
    assert f"lab {CLUSTER} (vagrant/docker): 1 node Ready" in result.stdout
    assert containers(CLUSTER) == [f"tuik8s-{CLUSTER}-node1"]
    # the lab remembers how it was made: `lab node` needs no --provider
    assert vlab.server.lab("node", "stop", "node1").stdout.strip() == "node1 stopped"
    out = vlab.server.lab("down").stdout
    assert out.startswith(f"lab {CLUSTER} removed (vagrant destroy): 1 node")
    assert containers(CLUSTER) == []
    assert sh("docker", "network", "inspect", f"tuik8s-{CLUSTER}", check=False).returncode != 0
    assert sh("ip", "-4", "route", "show", "root", vlab.server.net.cluster_cidr).stdout.strip() == ""


def test_lab_up_without_a_control_plane_says_so_in_one_line(tmp_path: Path) -> None:
    result = sh(sys.executable, "-m", "tuik8s.nodes.lab", "up", "--provider", "vagrant", "--cluster", "e2e-vagrant-none",
                "--data-dir", str(tmp_path / "data"), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("tuik8s: error:")]
    assert "no control plane for cluster e2e-vagrant-none" in line and "tuik8s server" in line
    assert containers("e2e-vagrant-none") == []
