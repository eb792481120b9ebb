"""The Node a kubelet registers and when it posts its status (tuik8s.kubelet.node)."""

from __future__ import annotations

import asyncio
import copy

from tuik8s.client.errors import ApiError
from tuik8s.kubelet.node import (
    KUBELET_VERSION,
    NodeAgent,
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


# ---- the agent against a fake API ------------------------------------------------------------


class FakeApi:
    """Just enough of ApiClient for NodeAgent: one Node and one Lease, with resourceVersions."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.rv = 0

    def _store(self, res: str, obj: dict) -> dict:
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        obj["metadata"].setdefault("uid", f"uid-{obj['metadata']['name']}")
        self.objects[(res, obj["metadata"]["name"])] = obj
        return copy.deepcopy(obj)

    def _get(self, res: str, name: str) -> dict:
        if (res, name) not in self.objects:
            raise ApiError(404, "NotFound", f'{res} "{name}" not found')
        return self.objects[(res, name)]

    async def create(self, res, obj, namespace=None):
        self.calls.append(("create", res))
        if (res, obj["metadata"]["name"]) in self.objects:
            raise ApiError(409, "AlreadyExists", "exists")
        return self._store(res, obj)

    async def get(self, res, name, namespace=None):
        self.calls.append(("get", res))
        return copy.deepcopy(self._get(res, name))

    async def update(self, res, obj):
        self.calls.append(("update", res))
        current = self._get(res, obj["metadata"]["name"])
        if obj["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        return self._store(res, obj)

    async def patch(self, res, name, patch, *, patch_type="merge", subresource=None, **kw):
        self.calls.append(("patch", res))
        current = copy.deepcopy(self._get(res, name))
        for key, value in patch.items():
            if key == "metadata":
                current["metadata"].setdefault("labels", {}).update(value.get("labels") or {})
            else:
                current[key] = value  # the agent always sends whole conditions lists
        return self._store(res, current)

    async def record_event(self, *args, **kwargs):
        self.calls.append(("event", args[1]))


async def test_the_agent_registers_leases_and_recovers_from_unknown_without_a_cache():
    api = FakeApi()
    agent = NodeAgent(api, cfg(lease_duration=8))  # type: ignore[arg-type]
    await agent.register()
    await agent.renew_lease()
    assert ("nodes", "n1") in api.objects and ("leases", "n1") in api.objects
    lease = api.objects[("leases", "n1")]
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "uid-n1"
    assert ("event", "NodeReady") in api.calls

    first = lease["spec"]["renewTime"]
    await asyncio.sleep(0.001)
    await agent.renew_lease()
    assert api.objects[("leases", "n1")]["spec"]["renewTime"] > first

    # nothing to say: a GET, no post
    api.calls.clear()
    assert not await agent.sync_status()
    assert api.calls == [("get", "nodes")]

    # the node lifecycle controller gave up on the node: the next check posts Ready again
    for c in api.objects[("nodes", "n1")]["status"]["conditions"]:
        c["status"] = "Unknown"
    assert await agent.sync_status()
    ready = api.objects[("nodes", "n1")]["status"]["conditions"][-1]
    assert ready["status"] == "True" and ready["reason"] == "KubeletReady"
    assert ("event", "NodeReady") in api.calls


async def test_a_restarted_agent_adopts_its_node_and_a_deleted_node_stays_deleted():
    api = FakeApi()
    await NodeAgent(api, cfg()).register()  # type: ignore[arg-type]
    api.objects[("nodes", "n1")]["metadata"]["labels"].pop("kubernetes.io/hostname")
    api.objects[("nodes", "n1")]["spec"]["taints"] = [{"key": "x", "effect": "NoSchedule"}]
    again = NodeAgent(api, cfg())  # type: ignore[arg-type]
    await again.register()
    node = api.objects[("nodes", "n1")]
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"  # put back
    assert node["spec"]["taints"] == [{"key": "x", "effect": "NoSchedule"}]  # not the kubelet's

    del api.objects[("nodes", "n1")]
    assert not await again.sync_status(force=True)
    assert ("nodes", "n1") not in api.objects  # not registered again behind the user's back
