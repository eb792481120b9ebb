"""Node faults on the real Docker-in-Docker lab (cluster `faults`, three nodes, each
kubelet with its own `system:node:<name>` token).

- kill -9 of a kubelet: its containers keep running, the restarted kubelet adopts them
  with no restart and no duplicate.
- a node cut off the lab network: NotReady, its pods evicted and replaced on the other
  nodes; reconnected, it removes the stale containers of the pods evicted meanwhile and
  no pod name ever runs on two nodes at once.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import defaultdict

import pytest
import yaml

from tests.e2e.conftest import KUBELET_RUNNABLE, LabServer, sh, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.skipif(not KUBELET_RUNNABLE, reason="needs the real kubelet")]

NS = "default"


def pods(lab: LabServer, selector: str) -> list[dict]:
    return json.loads(lab.kubectl("get", "pods", "-n", NS, "-l", selector, "-o", "json").stdout)["items"]


def running_ready(pod: dict) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])


def node_ready(lab: LabServer, node: str) -> bool:
    conditions = lab.nodes()[node].get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def pod_containers(lab: LabServer, node: str) -> dict[str, list[str]]:
    """{pod name: [container ids]} of every container the node's engine has (running or not)."""
    out = lab.in_node(node, "docker", "ps", "-a", "--filter", "label=io.kubernetes.pod.name",
                      "--format", '{{.ID}} {{.Label "io.kubernetes.pod.name"}} {{.State}}').stdout
    found: dict[str, list[str]] = defaultdict(list)
    for line in out.splitlines():
        cid, name, state = line.split()
        found[name].append(f"{cid}:{state}")
    return dict(found)


def deployment(name: str, replicas: int, node_selector: dict | None = None) -> str:
    spec: dict = {"containers": [{"name": "web", "image": "tuik8s/blog:latest", "imagePullPolicy": "IfNotPresent",
                                  "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}}],
                  "terminationGracePeriodSeconds": 2}
    if node_selector:
        spec["nodeSelector"] = node_selector
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS},
                       "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                                "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}})


def test_kubelets_run_with_their_own_node_identity(fault_lab: LabServer) -> None:
    token = (fault_lab.data_dir / "lab" / "nodes" / "node1" / "token").read_text().strip()
    admin = yaml.safe_load(fault_lab.kubeconfig.read_text())["users"][0]["user"]["token"]
    assert token != admin
    listed = sh(sys.executable, "-m", "tuik8s.cli", "token", "list", "--data-dir", str(fault_lab.data_dir)).stdout
    assert "system:node:node1" in listed and "system:nodes" in listed
    wait_for(lambda: all(node_ready(fault_lab, n) for n in ("node1", "node2", "node3")), timeout=120)


def test_killed_kubelet_adopts_its_containers(fault_lab: LabServer) -> None:
    fault_lab.kubectl("apply", "-f", "-", input=deployment("adopt", 2, {"kubernetes.io/hostname": "node1"}))
    try:
        wait_for(lambda: len([p for p in pods(fault_lab, "app=adopt") if running_ready(p)]) == 2, timeout=180)
        before = {p["metadata"]["name"]: p for p in pods(fault_lab, "app=adopt")}
        containers = {k: v for k, v in pod_containers(fault_lab, "node1").items() if k in before}
        pid_before = fault_lab.in_node("node1", "pgrep", "-f", "tuik8s.*kubelet").stdout.split()
        fault_lab.in_node("node1", "pkill", "-9", "-f", "tuik8s.*kubelet")
        # the containers do not notice
        assert {k: v for k, v in pod_containers(fault_lab, "node1").items() if k in before} == containers
        wait_for(lambda: (p := fault_lab.in_node("node1", "pgrep", "-f", "tuik8s.*kubelet", check=False).stdout.split())
                 and p != pid_before, timeout=60)
        # it is back: it renews its Lease again, and has re-synced its pods
        lease = json.loads(fault_lab.kubectl("get", "lease", "node1", "-n", "kube-node-lease", "-o", "json").stdout)
        renewed = lease["spec"]["renewTime"]
        wait_for(lambda: json.loads(fault_lab.kubectl("get", "lease", "node1", "-n", "kube-node-lease", "-o", "json")
                                    .stdout)["spec"]["renewTime"] != renewed, timeout=60)
        time.sleep(5)  # several sync loops of the new kubelet: a duplicate or a restart would show by now
        after = {p["metadata"]["name"]: p for p in pods(fault_lab, "app=adopt")}
        assert set(after) == set(before)
        for name, pod in after.items():
            assert running_ready(pod)
            assert [c["restartCount"] for c in pod["status"]["containerStatuses"]] == [0]
            assert pod["metadata"]["uid"] == before[name]["metadata"]["uid"]
        assert {k: v for k, v in pod_containers(fault_lab, "node1").items() if k in before} == containers
    finally:
        fault_lab.kubectl("delete", "deployment", "adopt", "-n", NS, "--wait=false", check=False)


class NameWatch:
    """Polls which node each pod name runs on (per the nodes' own engines): a name running
    on two nodes at the same moment is a split brain."""

    def __init__(self, lab: LabServer, prefix: str) -> None:
        self.lab, self.prefix = lab, prefix
        self.doubles: list[tuple[str, list[str]]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            where: dict[str, list[str]] = defaultdict(list)
            for node in ("node1", "node2", "node3"):
                out = self.lab.in_node(node, "docker", "ps", "--filter", "label=io.kubernetes.pod.name", "--format",
                                       '{{.Label "io.kubernetes.pod.name"}} {{.Label "io.kubernetes.container.name"}}',
                                       check=False, timeout=20).stdout
                for line in out.splitlines():
                    pod, container = (line.split() + [""])[:2]
                    if pod.startswith(self.prefix) and container == "web":
                        where[pod].append(node)
            self.doubles += [(pod, nodes) for pod, nodes in where.items() if len(set(nodes)) > 1]
            self.stop.wait(1.0)


@pytest.mark.parametrize("how", ["disconnect", "pause"])
def test_a_node_cut_off_is_evicted_and_cleaned_up_when_it_returns(fault_lab: LabServer, how: str) -> None:
    """`disconnect`: off the lab network (kubelet and containers run on, unheard);
    `pause`: the whole node frozen (docker pause), kubelet, engine and containers."""
    lab = fault_lab
    net, container = lab.net.name, lab.container("node2")
    ip = lab.net.node_ip(2)

    def cut() -> None:
        if how == "pause":
            sh("docker", "pause", container)
        else:
            sh("docker", "network", "disconnect", net, container)

    def restore(check: bool = True) -> None:
        if how == "pause":
            sh("docker", "unpause", container, check=check)
        else:
            sh("docker", "network", "connect", "--ip", ip, "--alias", "node2", net, container, check=check)
            lab.in_node("node2", "tuik8s-node-entrypoint", "routes", check=False)

    lab.kubectl("apply", "-f", "-", input=deployment("cutoff", 6))
    names = NameWatch(lab, "cutoff-")
    disconnected = False
    try:
        wait_for(lambda: len([p for p in pods(lab, "app=cutoff") if running_ready(p)]) == 6, timeout=240)
        on_node2 = {p["metadata"]["name"] for p in pods(lab, "app=cutoff") if p["spec"].get("nodeName") == "node2"}
        if not on_node2:
            pytest.skip("the scheduler put no replica on node2")
        names.thread.start()
        cut()
        disconnected = True
        t0 = time.monotonic()
        wait_for(lambda: not node_ready(lab, "node2"), timeout=90)
        not_ready_after = time.monotonic() - t0
        # evicted (Terminating: the kubelet that would confirm is unreachable) and replaced elsewhere
        def replaced() -> bool:
            current = pods(lab, "app=cutoff")
            fresh = [p for p in current if p["metadata"]["name"] not in on_node2 and not p["metadata"].get("deletionTimestamp")]
            return len([p for p in fresh if running_ready(p) and p["spec"].get("nodeName") != "node2"]) == 6
        wait_for(replaced, timeout=180)
        replaced_after = time.monotonic() - t0
        if how == "disconnect":
            # the stale containers still run on the cut-off node: it cannot know yet
            assert on_node2 & set(pod_containers(lab, "node2"))
        # one of them is force-deleted meanwhile: its object is gone before the node returns
        forced = sorted(on_node2)[0]
        lab.kubectl("delete", "pod", forced, "-n", NS, "--grace-period=0", "--force")

        restore()
        disconnected = False
        wait_for(lambda: node_ready(lab, "node2"), timeout=120)
        # the kubelet learns its pods were deleted, stops and removes their containers, and
        # confirms the deletions: the Terminating pod objects go away
        wait_for(lambda: not (on_node2 & set(pod_containers(lab, "node2"))), timeout=120)
        wait_for(lambda: not (on_node2 & {p["metadata"]["name"] for p in pods(lab, "app=cutoff")}), timeout=120)
        assert len([p for p in pods(lab, "app=cutoff") if running_ready(p)]) == 6
        print(f"{how}: node2 NotReady after {not_ready_after:.0f} s, 6 replicas Ready elsewhere after {replaced_after:.0f} s")
    finally:
        names.stop.set()
        if names.thread.is_alive():
            names.thread.join(30)
        if disconnected:
            restore(check=False)
        lab.kubectl("delete", "deployment", "cutoff", "-n", NS, "--wait=false", check=False)
        wait_for(lambda: not pods(lab, "app=cutoff"), timeout=120)
    assert not names.doubles, f"a pod name ran on two nodes at once: {names.doubles[:5]}"


def test_no_node_request_was_forbidden(fault_lab: LabServer) -> None:
    """Every call the kubelets (and whatever else runs with a node's token) made in this
    module was allowed by the Node authorizer: a 403 would be logged as Forbidden."""
    for node in ("node1", "node2", "node3"):
        logs = sh("docker", "logs", fault_lab.container(node), timeout=60)
        text = logs.stdout + logs.stderr
        assert "forbidden" not in text.lower(), [line for line in text.splitlines() if "orbidden" in line][:5]
