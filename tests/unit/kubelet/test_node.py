"""The Node a kubelet registers and when it posts its status (tuik8s.kubelet.node)."""

from __future__ import annotations

from tuik8s.kubelet.node import (
    KUBELET_VERSION,
    NodeConfig,
    lease_age,
    lease_object,
    node_conditions,
    node_object,
    node_ref,
    status_needs_post,
    transitions,
)
from tuik8s.kubelet.status import parse_time

T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T10:05:00Z"


def cfg(**kw):
    return NodeConfig(name="n1", internal_ip="10.200.0.1", pod_cidr="10.244.1.0/24", **kw)


def test_a_registered_node_looks_like_a_kubelets():
    node = node_object(cfg(labels={"tuik8s.io/hollow": "true"}), T0)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "n1"
    assert labels["kubernetes.io/os"] == labels["beta.kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"] == labels["beta.kubernetes.io/arch"] == "amd64"
    assert labels["tuik8s.io/hollow"] == "true"
    assert node["spec"] == {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}
    status = node["status"]
    assert status["capacity"] == status["allocatable"]
    assert status["capacity"]["cpu"] == "4" and status["capacity"]["memory"] == "16Gi"
    assert status["capacity"]["pods"] == "110"
    assert status["addresses"] == [{"type": "InternalIP", "address": "10.200.0.1"}, {"type": "Hostname", "address": "n1"}]
    info = status["nodeInfo"]
    assert info["kubeletVersion"] == KUBELET_VERSION == "v1.32.0-tuik8s"
    assert info["operatingSystem"] == "linux" and info["architecture"] == "amd64"
    assert info["containerRuntimeVersion"] and info["osImage"] and info["kernelVersion"]
    assert [c["type"] for c in status["conditions"]] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    ready = status["conditions"][-1]
    assert (ready["status"], ready["reason"], ready["message"]) == ("True", "KubeletReady", "kubelet is posting ready status")
    assert ready["lastHeartbeatTime"] == ready["lastTransitionTime"] == T0


def test_machine_ids_are_stable_per_node_name():
    a, b = node_object(cfg()), node_object(cfg())
    assert a["status"]["nodeInfo"]["machineID"] == b["status"]["nodeInfo"]["machineID"]
    assert a["status"]["nodeInfo"]["systemUUID"] == b["status"]["nodeInfo"]["systemUUID"]


def test_heartbeats_keep_transition_times_but_a_recovery_moves_them():
    first = node_conditions(T0)
    again = node_conditions(T1, first)
    assert all(c["lastTransitionTime"] == T0 and c["lastHeartbeatTime"] == T1 for c in again)
    unknown = [{**c, "status": "Unknown"} for c in first]
    back = node_conditions(T1, unknown)
    assert all(c["lastTransitionTime"] == T1 for c in back)
    assert [r for r, _ in transitions(unknown, back)] == [
        "NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID", "NodeReady",
    ]
    assert transitions(first, again) == []


def test_status_is_posted_when_it_differs_or_when_the_report_is_due():
    c = cfg(status_report_frequency=300)
    node = node_object(c, T0)
    assert not status_needs_post(c, node, last_post=100.0, now=200.0)
    assert status_needs_post(c, node, last_post=100.0, now=400.0)
    assert status_needs_post(c, None, last_post=100.0, now=101.0)
    node["status"]["conditions"][-1]["status"] = "Unknown"  # the controller gave up on us
    assert status_needs_post(c, node, last_post=100.0, now=101.0)
    node = node_object(c, T0)
    node["status"]["capacity"]["cpu"] = "2"
    assert status_needs_post(c, node, last_post=100.0, now=101.0)


def test_the_lease_is_owned_by_the_node_and_renews_a_quarter_of_its_duration():
    c = cfg(lease_duration=40)
    assert c.renew_interval == 10
    lease = lease_object(c, {"metadata": {"uid": "node-uid"}}, "2024-05-01T10:00:00.000000Z")
    assert lease["metadata"] == {
        "name": "n1", "namespace": "kube-node-lease",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "node-uid"}],
    }
    assert lease["spec"] == {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "2024-05-01T10:00:00.000000Z"}
    renewed = parse_time(lease["spec"]["renewTime"])
    assert lease_age(lease, now=renewed + 5) == 5
    assert lease_age({"spec": {}}) is None


def test_node_events_name_the_node_as_uid_as_kubectl_describe_expects():
    assert node_ref("n1") == {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "n1"}
