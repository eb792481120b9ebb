"""What the API server does to an object besides defaulting and validation.

Upstream calls these "REST strategies": system metadata on create, status kept out of
main-resource writes and spec kept out of status writes, metadata.generation bumped on
spec changes, and the per-kind extras (a new Pod is Pending with its QoS class, a
Service gets its ClusterIP and NodePorts).
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from tuik8s.api import errors
from tuik8s.api.errors import FieldError
from tuik8s.api.registry import ResourceInfo
from tuik8s.apiserver.allocators import ClusterIPAllocator, NodePortAllocator

# Status is reset on create for these (the client's status is ignored, as upstream);
# nodes and namespaces keep theirs because kubelets register Nodes with status.
_RESET_STATUS_ON_CREATE = {
    "pods", "services", "deployments.apps", "replicasets.apps", "daemonsets.apps",
    "jobs.batch", "ingresses.networking.k8s.io", "horizontalpodautoscalers.autoscaling",
}
# Kinds whose metadata.generation tracks spec changes.
_GENERATION = {
    "deployments.apps", "replicasets.apps", "daemonsets.apps", "jobs.batch",
    "ingresses.networking.k8s.io", "horizontalpodautoscalers.autoscaling",
    "ingressclasses.networking.k8s.io", "controllerrevisions.apps", "endpointslices.discovery.k8s.io",
}
# Metadata that only the server sets; a client's values are replaced on update.
_SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "selfLink")


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Strategy:
    """Holds the allocators; everything else is a pure function of the objects."""

    def __init__(self) -> None:
        self.cluster_ips = ClusterIPAllocator()
        self.node_ports = NodePortAllocator()

    def restore(self, services: list[dict[str, Any]]) -> None:
        """Mark what stored Services hold, at start."""
        for svc in services:
            spec = svc.get("spec") or {}
            for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
                if ip and ip != "None":
                    self.cluster_ips.mark(ip)
            for port in spec.get("ports") or []:
                if isinstance(port, dict) and port.get("nodePort"):
                    self.node_ports.mark(int(port["nodePort"]))

    # ---- create -----------------------------------------------------------------

    @staticmethod
    def assign_uid(obj: dict[str, Any]) -> None:
        """A new object's uid, set before defaulting: a Job's generated selector needs it."""
        obj.setdefault("metadata", {})["uid"] = str(uuid.uuid4())

    def prepare_create(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        meta = obj.setdefault("metadata", {})
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"):
            meta.pop(key, None)
        meta["creationTimestamp"] = now_rfc3339()
        if info.key in _GENERATION:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        _drop_empty_meta(obj)
        if info.key == "daemonsets.apps":
            _annotate(obj, _DS_TEMPLATE_GENERATION, "1")
        if info.key in _RESET_STATUS_ON_CREATE:
            obj["status"] = {}
        if info.key == "pods":
            obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}
        elif info.key == "namespaces":
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}

    def allocate_service(self, svc: dict[str, Any], old: dict[str, Any] | None = None) -> list[Any]:
        """Give a Service its ClusterIP and NodePorts; returns what to release on failure."""
        spec = svc.setdefault("spec", {})
        taken: list[Any] = []
        old_spec = (old or {}).get("spec") or {}
        svc_type = spec.get("type", "ClusterIP")
        if svc_type != "ExternalName":
            if old is not None:
                if not spec.get("clusterIP") and old_spec.get("clusterIP"):
                    spec["clusterIP"] = old_spec["clusterIP"]
                    spec["clusterIPs"] = old_spec.get("clusterIPs") or [old_spec["clusterIP"]]
            elif spec.get("clusterIP") == "None":
                spec["clusterIPs"] = ["None"]
            elif spec.get("clusterIP"):
                self.cluster_ips.reserve(spec["clusterIP"])
                taken.append(("ip", spec["clusterIP"]))
                spec["clusterIPs"] = [spec["clusterIP"]]
            else:
                ip = self.cluster_ips.allocate()
                taken.append(("ip", ip))
                spec["clusterIP"] = ip
                spec["clusterIPs"] = [ip]
        old_ports = {
            (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
            for p in old_spec.get("ports") or [] if isinstance(p, dict)
        }
        wants_node_ports = svc_type in ("NodePort", "LoadBalancer")
        for i, port in enumerate(spec.get("ports") or []):
            if not isinstance(port, dict):
                continue
            if not wants_node_ports:
                port.pop("nodePort", None)
                continue
            previous = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
            requested = port.get("nodePort")
            if requested and requested == previous:
                continue
            if requested:
                self.node_ports.reserve(int(requested), f"spec.ports[{i}].nodePort")
                taken.append(("port", int(requested)))
            elif previous:
                port["nodePort"] = previous
            else:
                port["nodePort"] = self.node_ports.allocate()
                taken.append(("port", port["nodePort"]))
        return taken

    def release(self, taken: list[Any]) -> None:
        for what, value in taken:
            if what == "ip":
                self.cluster_ips.release(value)
            else:
                self.node_ports.release(value)

    def release_service(self, svc: dict[str, Any], keep: dict[str, Any] | None = None) -> None:
        """Free what `svc` held and `keep` (its successor) no longer holds."""
        spec = svc.get("spec") or {}
        kept_spec = (keep or {}).get("spec") or {}
        if spec.get("clusterIP") and spec.get("clusterIP") != kept_spec.get("clusterIP"):
            self.cluster_ips.release(spec["clusterIP"])
        kept_ports = {p.get("nodePort") for p in kept_spec.get("ports") or [] if isinstance(p, dict)}
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and port.get("nodePort") and port["nodePort"] not in kept_ports:
                self.node_ports.release(port["nodePort"])

    # ---- update -----------------------------------------------------------------

    def prepare_update(self, info: ResourceInfo, new: dict[str, Any], old: dict[str, Any]) -> None:
        """A write to the main resource: status and system metadata stay as stored."""
        _keep_system_meta(new, old)
        _drop_empty_meta(new)
        if info.has_status and info.key not in ("namespaces",):
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        elif info.key == "namespaces":
            new["status"] = copy.deepcopy(old.get("status") or {})
            # only /finalize may change a namespace's finalizers
            if not isinstance(new.get("spec"), dict):
                new["spec"] = {}
            spec = new["spec"]
            spec["finalizers"] = copy.deepcopy((old.get("spec") or {}).get("finalizers") or [])
            if not spec["finalizers"]:
                del spec["finalizers"]
        if info.key in _GENERATION:
            gen = int((old.get("metadata") or {}).get("generation") or 1)
            if any(new.get(f) != old.get(f) for f in info.spec_fields):
                gen += 1
            new["metadata"]["generation"] = gen
        if info.key == "daemonsets.apps":
            old_gen = ((old.get("metadata") or {}).get("annotations") or {}).get(_DS_TEMPLATE_GENERATION, "1")
            template_changed = (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template")
            _annotate(new, _DS_TEMPLATE_GENERATION, str(new["metadata"]["generation"]) if template_changed else old_gen)

    def prepare_status_update(self, info: ResourceInfo, new: dict[str, Any], old: dict[str, Any]) -> None:
        """A write to /status: only status changes (upstream ResetObjectMetaForStatus)."""
        status = new.get("status")
        result = copy.deepcopy(old)
        if status is None:
            result.pop("status", None)
        else:
            result["status"] = status
        if info.group == "apps" and isinstance(new.get("metadata"), dict):
            # apps' status strategies keep only spec and labels: their controllers write
            # annotations (deployment.kubernetes.io/revision) together with status
            annotations = new["metadata"].get("annotations")
            if isinstance(annotations, dict) and annotations:
                result["metadata"]["annotations"] = annotations
            else:
                result["metadata"].pop("annotations", None)
        # the client's resourceVersion stays the precondition
        rv = (new.get("metadata") or {}).get("resourceVersion")
        if rv is not None:
            result["metadata"]["resourceVersion"] = rv
        new.clear()
        new.update(result)


_DS_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def _annotate(obj: dict[str, Any], key: str, value: str) -> None:
    meta = obj["metadata"]
    if not isinstance(meta.get("annotations"), dict):
        meta["annotations"] = {}
    meta["annotations"][key] = value


def _drop_empty_meta(obj: dict[str, Any]) -> None:
    """Empty lists and maps in metadata are omitted, as Go's omitempty does upstream."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in ("finalizers", "ownerReferences", "labels", "annotations"):
            if key in meta and meta[key] in ([], {}, None):
                del meta[key]


def _keep_system_meta(new: dict[str, Any], old: dict[str, Any]) -> None:
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        meta = new["metadata"] = {}
    old_meta = old.get("metadata") or {}
    for key in _SYSTEM_META:
        if key in old_meta:
            meta[key] = old_meta[key]
        else:
            meta.pop(key, None)
    meta.pop("managedFields", None)


def qos_class(spec: dict[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' requests and limits."""
    containers = [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or []) if isinstance(c, dict)]
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req = res.get("requests") or {}
        lim = res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or str(req.get(r, lim[r])) != str(lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def check_kind(info: ResourceInfo, obj: Any) -> None:
    """The body must be an object of this resource's kind (kind/apiVersion may be omitted)."""
    if not isinstance(obj, dict):
        raise errors.bad_request(f"the body of the request must be a JSON object of kind {info.kind}")
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    if kind is not None and kind != info.kind:
        raise errors.bad_request(
            f"the kind of the body ({kind}) does not match the resource ({info.kind}); "
            f"post it to the {kind} endpoint instead"
        )
    if api_version is not None and api_version != info.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({info.api_version})"
        )
    obj["kind"] = info.kind
    obj["apiVersion"] = info.api_version
    meta = obj.get("metadata")
    if meta is None:
        obj["metadata"] = {}
    elif not isinstance(meta, dict):
        raise errors.invalid(info.kind, "", [FieldError("metadata", "Invalid value: must be an object")], info.group)
