"""Pods and nodes of the Kubernetes shape, for the scheduler's pure tests."""

from __future__ import annotations

from typing import Any

from tuik8s.scheduler.framework import NodeInfo, PodInfo, Snapshot

Obj = dict[str, Any]


def pod(
    name: str = "p",
    *,
    cpu: str | None = None,
    memory: str | None = None,
    namespace: str = "default",
    owner: str | None = None,
    priority: int | None = None,
    node_name: str | None = None,
    tolerations: list[Obj] | None = None,
    node_selector: dict[str, str] | None = None,
    affinity: Obj | None = None,
    host_port: int | None = None,
    init: list[Obj] | None = None,
    uid: str | None = None,
    extra_requests: dict[str, str] | None = None,
) -> Obj:
    requests: dict[str, str] = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    requests.update(extra_requests or {})
    container: Obj = {"name": "c", "image": "nginx"}
    if requests:
        container["resources"] = {"requests": requests}
    if host_port is not None:
        container["ports"] = [{"containerPort": 80, "hostPort": host_port, "protocol": "TCP"}]
    spec: Obj = {"containers": [container], "schedulerName": "default-scheduler"}
    if priority is not None:
        spec["priority"] = priority
    if node_name:
        spec["nodeName"] = node_name
    if tolerations is not None:
        spec["tolerations"] = tolerations
    if node_selector is not None:
        spec["nodeSelector"] = node_selector
    if affinity is not None:
        spec["affinity"] = affinity
    if init is not None:
        spec["initContainers"] = init
    meta: Obj = {"name": name, "namespace": namespace, "uid": uid or f"uid-{namespace}-{name}"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                    "uid": f"uid-{owner}", "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": {"phase": "Pending"}}


def node(
    name: str = "n",
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    unschedulable: bool = False,
) -> Obj:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods}
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {"allocatable": alloc, "capacity": alloc,
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }


def info(p: Obj) -> PodInfo:
    return PodInfo(p)


def node_info(n: Obj, *pods_on_it: Obj) -> NodeInfo:
    ni = NodeInfo(n["metadata"]["name"], n)
    for p in pods_on_it:
        ni.add_pod(PodInfo(p))
    return ni


def snapshot(*nodes: NodeInfo) -> Snapshot:
    return Snapshot(list(nodes))
