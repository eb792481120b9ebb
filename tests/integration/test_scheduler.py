"""The scheduler against a real `tuik8s server` and three hollow nodes, seen through kubectl.

The nodes are hollow kubelets (`python -m tuik8s.nodes.hollow`): real Node objects with
Leases and status, 4 cpu / 16Gi / 110 pods each, that run the pods bound to them. What a
user sees is asserted: where `kubectl get pods -o wide` puts the pods, the PodScheduled
condition, and what `kubectl describe pod` prints under Events.

The tests share one cluster and run in order; each cleans up its cordons, labels and
taints so the next starts from three equal, schedulable nodes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.integration.conftest import RunningServer, wait_for

NODES = ("hollow-0", "hollow-1", "hollow-2")


def start_hollow(server: RunningServer, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tuik8s.nodes.hollow", "--kubeconfig", str(server.kubeconfig),
         "--start-delay", "0.05", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def stop_hollow(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ready_nodes(server: RunningServer) -> set[str]:
    ready = set()
    for n in server.kubectl_json("get", "nodes")["items"]:
        conds = {c["type"]: c["status"] for c in n["status"].get("conditions") or []}
        taints = [t for t in n["spec"].get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")]
        if conds.get("Ready") == "True" and not taints and not n["spec"].get("unschedulable"):
            ready.add(n["metadata"]["name"])
    return ready


@pytest.fixture(scope="module")
def cluster(server: RunningServer) -> Iterator[RunningServer]:
    proc = start_hollow(server, "--nodes", "3")
    try:
        wait_for(lambda: set(NODES) <= ready_nodes(server), timeout=30)
        yield server
    finally:
        stop_hollow(proc)


def kubectl(server: RunningServer, *args: str, input: str | None = None) -> str:
    return server.kubectl(*args, input=input, check=True).stdout


def pods(server: RunningServer, ns: str) -> list[dict]:
    return server.kubectl_json("get", "pods", "-n", ns)["items"]


def pod(server: RunningServer, ns: str, name: str) -> dict:
    return server.kubectl_json("get", "pod", name, "-n", ns)


def node_of(server: RunningServer, ns: str, name: str) -> str:
    return pod(server, ns, name)["spec"].get("nodeName") or ""


def scheduled_condition(p: dict) -> dict:
    return next((c for c in p["status"].get("conditions") or [] if c["type"] == "PodScheduled"), {})


def unschedulable_message(server: RunningServer, ns: str, name: str) -> str:
    cond = scheduled_condition(pod(server, ns, name))
    return cond.get("message", "") if cond.get("status") == "False" and cond.get("reason") == "Unschedulable" else ""


def bound_pods(server: RunningServer, ns: str, want: int) -> list[dict]:
    items = [p for p in pods(server, ns) if p["spec"].get("nodeName")]
    return items if len(items) >= want else []


def pod_manifest(name: str, ns: str, **spec: object) -> str:
    body = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec},
    }
    return json.dumps(body)


def with_memory(manifest: str, memory: str) -> str:
    body = json.loads(manifest)
    body["spec"]["containers"][0]["resources"] = {"requests": {"memory": memory}}
    return json.dumps(body)


def test_a_deployment_spreads_over_the_nodes(cluster: RunningServer) -> None:
    kubectl(cluster, "create", "namespace", "spread")
    kubectl(cluster, "create", "deployment", "web", "--image=nginx", "--replicas=6", "-n", "spread")
    items = wait_for(lambda: bound_pods(cluster, "spread", 6), timeout=20)
    assert sorted(Counter(p["spec"]["nodeName"] for p in items).values()) == [2, 2, 2]
    assert all(scheduled_condition(p).get("status") == "True" for p in items)
    name = items[0]["metadata"]["name"]
    described = kubectl(cluster, "describe", "pod", name, "-n", "spread")
    assert "Scheduled" in described and "default-scheduler" in described
    assert f"Successfully assigned spread/{name} to {items[0]['spec']['nodeName']}" in described
    # the hollow kubelets run what was bound
    wait_for(lambda: all(p["status"].get("phase") == "Running" for p in pods(cluster, "spread")), timeout=20)


def test_a_pod_too_big_for_every_node_waits_for_a_big_node(cluster: RunningServer) -> None:
    kubectl(cluster, "create", "namespace", "big")
    kubectl(cluster, "apply", "-f", "-", input=with_memory(pod_manifest("huge", "big"), "64Gi"))
    want = "0/3 nodes are available: 3 Insufficient memory."
    wait_for(lambda: unschedulable_message(cluster, "big", "huge") == want, timeout=15)
    described = kubectl(cluster, "describe", "pod", "huge", "-n", "big")
    assert "FailedScheduling" in described and want in described and "default-scheduler" in described
    events = cluster.kubectl_json("get", "events", "-n", "big", "--field-selector", "involvedObject.name=huge")["items"]
    failed = [e for e in events if e["reason"] == "FailedScheduling"]
    assert len(failed) == 1 and failed[0]["type"] == "Warning" and failed[0]["message"] == want
    assert node_of(cluster, "big", "huge") == ""

    big = start_hollow(cluster, "--nodes", "1", "--name-prefix", "big-", "--memory", "128Gi", "--delete-on-exit")
    try:
        assert wait_for(lambda: node_of(cluster, "big", "huge"), timeout=20) == "big-0"
        assert scheduled_condition(pod(cluster, "big", "huge"))["status"] == "True"
        kubectl(cluster, "delete", "namespace", "big", "--wait=false")
    finally:
        stop_hollow(big)
    wait_for(lambda: "big-0" not in {n["metadata"]["name"] for n in cluster.kubectl_json("get", "nodes")["items"]}, timeout=20)


def test_a_deleted_pod_makes_room_for_a_waiting_one(cluster: RunningServer) -> None:
    kubectl(cluster, "create", "namespace", "room")
    for i in range(3):
        kubectl(cluster, "apply", "-f", "-", input=with_memory(pod_manifest(f"fat-{i}", "room"), "10Gi"))
    items = wait_for(lambda: bound_pods(cluster, "room", 3), timeout=15)
    assert len({p["spec"]["nodeName"] for p in items}) == 3  # 10Gi + 10Gi > 16Gi
    kubectl(cluster, "apply", "-f", "-", input=with_memory(pod_manifest("waiting", "room"), "10Gi"))
    wait_for(lambda: unschedulable_message(cluster, "room", "waiting") == "0/3 nodes are available: 3 Insufficient memory.", timeout=15)
    freed = node_of(cluster, "room", "fat-1")
    kubectl(cluster, "delete", "pod", "fat-1", "-n", "room", "--wait=false")
    assert wait_for(lambda: node_of(cluster, "room", "waiting"), timeout=20) == freed
    kubectl(cluster, "delete", "namespace", "room", "--wait=false")


def test_a_cordoned_node_gets_no_new_pods(cluster: RunningServer) -> None:
    kubectl(cluster, "cordon", "hollow-0")
    try:
        kubectl(cluster, "create", "namespace", "cordon")
        kubectl(cluster, "create", "deployment", "web", "--image=nginx", "--replicas=4", "-n", "cordon")
        items = wait_for(lambda: bound_pods(cluster, "cordon", 4), timeout=20)
        assert {p["spec"]["nodeName"] for p in items} == {"hollow-1", "hollow-2"}
        kubectl(cluster, "apply", "-f", "-", input=pod_manifest(
            "pinned", "cordon", nodeSelector={"kubernetes.io/hostname": "hollow-0"}))
        wait_for(lambda: unschedulable_message(cluster, "cordon", "pinned") == (
            "0/3 nodes are available: 1 node(s) were unschedulable, "
            "2 node(s) didn't match Pod's node affinity/selector."), timeout=15)
    finally:
        kubectl(cluster, "uncordon", "hollow-0")
    # uncordoned, the pinned pod is scheduled without waiting for a periodic retry
    assert wait_for(lambda: node_of(cluster, "cordon", "pinned"), timeout=15) == "hollow-0"
    kubectl(cluster, "delete", "namespace", "cordon", "--wait=false")


def test_node_selector_is_respected(cluster: RunningServer) -> None:
    kubectl(cluster, "create", "namespace", "selector")
    kubectl(cluster, "label", "node", "hollow-1", "disk=ssd")
    try:
        kubectl(cluster, "apply", "-f", "-", input=pod_manifest("on-ssd", "selector", nodeSelector={"disk": "ssd"}))
        kubectl(cluster, "apply", "-f", "-", input=pod_manifest("on-nvme", "selector", nodeSelector={"disk": "nvme"}))
        assert wait_for(lambda: node_of(cluster, "selector", "on-ssd"), timeout=15) == "hollow-1"
        wait_for(lambda: unschedulable_message(cluster, "selector", "on-nvme") == (
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."), timeout=15)
        kubectl(cluster, "label", "node", "hollow-2", "disk=nvme")
        assert wait_for(lambda: node_of(cluster, "selector", "on-nvme"), timeout=15) == "hollow-2"
    finally:
        kubectl(cluster, "label", "node", "hollow-1", "disk-")
        kubectl(cluster, "label", "node", "hollow-2", "disk-")
    kubectl(cluster, "delete", "namespace", "selector", "--wait=false")


def test_taints_are_respected(cluster: RunningServer) -> None:
    kubectl(cluster, "create", "namespace", "taints")
    kubectl(cluster, "taint", "node", "hollow-0", "dedicated=infra:NoSchedule")
    kubectl(cluster, "taint", "node", "hollow-1", "dedicated=infra:NoSchedule")
    try:
        kubectl(cluster, "create", "deployment", "web", "--image=nginx", "--replicas=3", "-n", "taints")
        items = wait_for(lambda: bound_pods(cluster, "taints", 3), timeout=20)
        assert {p["spec"]["nodeName"] for p in items} == {"hollow-2"}
        tolerations = [{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}]
        kubectl(cluster, "apply", "-f", "-", input=pod_manifest(
            "infra", "taints", tolerations=tolerations, nodeSelector={"kubernetes.io/hostname": "hollow-0"}))
        assert wait_for(lambda: node_of(cluster, "taints", "infra"), timeout=15) == "hollow-0"
        kubectl(cluster, "apply", "-f", "-", input=pod_manifest(
            "intruder", "taints", nodeSelector={"kubernetes.io/hostname": "hollow-1"}))
        wait_for(lambda: unschedulable_message(cluster, "taints", "intruder") == (
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
            "2 node(s) had untolerated taint {dedicated: infra}."), timeout=15)
        kubectl(cluster, "taint", "node", "hollow-1", "dedicated-")
        assert wait_for(lambda: node_of(cluster, "taints", "intruder"), timeout=15) == "hollow-1"
    finally:
        for n in ("hollow-0", "hollow-1"):
            cluster.kubectl("taint", "node", n, "dedicated-")
    kubectl(cluster, "delete", "namespace", "taints", "--wait=false")


def test_pods_for_another_scheduler_are_left_alone(cluster: RunningServer) -> None:
    kubectl(cluster, "create", "namespace", "other")
    kubectl(cluster, "apply", "-f", "-", input=pod_manifest("theirs", "other", schedulerName="my-scheduler"))
    kubectl(cluster, "apply", "-f", "-", input=pod_manifest("ours", "other"))
    # once a pod created after it is bound, the scheduler has seen the other one too
    wait_for(lambda: node_of(cluster, "other", "ours"), timeout=15)
    theirs = pod(cluster, "other", "theirs")
    assert not theirs["spec"].get("nodeName") and scheduled_condition(theirs) == {}
    events = cluster.kubectl_json("get", "events", "-n", "other", "--field-selector", "involvedObject.name=theirs")
    assert events["items"] == []
    kubectl(cluster, "delete", "namespace", "other", "--wait=false")
