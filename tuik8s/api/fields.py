"""Field labels: the values `?fieldSelector=` can filter on, per resource.

Kubernetes supports a small fixed set of fields per kind (metadata.name and
metadata.namespace everywhere, plus e.g. spec.nodeName for pods); anything else is a
400 "field label not supported". The store extracts these once per write.
"""

from __future__ import annotations

from typing import Any

_COMMON = ("metadata.name", "metadata.namespace")

SUPPORTED: dict[str, tuple[str, ...]] = {
    "pods": _COMMON
    + (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "nodes": _COMMON + ("spec.unschedulable",),
    "namespaces": _COMMON + ("status.phase",),
    "secrets": _COMMON + ("type",),
    "events": _COMMON
    + (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "replicasets.apps": _COMMON + ("status.replicas",),
    "jobs.batch": _COMMON + ("status.successful",),
}


def supported(resource: str) -> tuple[str, ...]:
    return SUPPORTED.get(resource, _COMMON)


def _dig(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_set(resource: str, obj: dict[str, Any]) -> dict[str, str]:
    """The field labels of `obj`; absent fields are "" as upstream compares them."""
    meta = obj.get("metadata") or {}
    fields = {"metadata.name": _text(meta.get("name")), "metadata.namespace": _text(meta.get("namespace"))}
    for path in SUPPORTED.get(resource, ()):
        if path in fields:
            continue
        if resource == "events" and path == "source":
            fields[path] = _text(_dig(obj, "source.component"))
        else:
            fields[path] = _text(_dig(obj, path))
    return fields


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}
