"""EndpointSliceController: every Service with a selector gets EndpointSlices of its pods.

As upstream's endpointslice controller: the pods a Service's selector picks (not finished,
with an IP; terminating ones included, marked `terminating`) become endpoints with their
address, `ready`/`serving`/`terminating` conditions, node, zone and a reference to the
pod. Endpoints are grouped by the ports they resolve to (a named `targetPort` may resolve
differently per pod), and each group is spread over slices of at most 100 endpoints,
named `<service>-<random>`, labelled `kubernetes.io/service-name` and
`endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, and owned by
the Service, so the garbage collector removes them with it. A Service with nothing to
point at keeps one empty placeholder slice, as upstream.

The pod/port resolution and the pod-to-Service indexes are the Endpoints controller's
(`tuik8s.controllers.endpoints`); only the slicing is here. `plan_slices` keeps endpoints
in the slice that already holds them, refills slices it has to write anyway before it
creates new ones, and writes nothing when every slice already says what it should, so a
steady cluster costs no writes. Slices this controller did not create (another manager, or
the API server's own `kubernetes` slice) are never touched.

A write is seen by the next sync only once the slice informer has caught up; a sync that
ran on a cache older than its own last writes would create duplicates, so each Service
remembers the resourceVersions it wrote (upstream's EndpointSliceTracker) and waits for
the cache to show them.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tuik8s.client.errors import ApiError, is_not_found
from tuik8s.client.informer import split_key
from tuik8s.controllers.endpoints import (
    TRIGGER_TIME_ANNOTATION,
    TriggerTimeTracker,
    endpoint_address,
    endpoint_port,
    find_port,
    format_rfc3339_nano,
    index_services_and_pods,
    is_pod_ready,
    pod_view,
    pods_for,
    service_ipv6,
    service_selector,
    services_for,
    should_pod_be_in_endpoints,
)
from tuik8s.controllers.runner import Controller

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100

PortsKey = tuple[tuple[str, int, str, str], ...]


# ---- pure: what the slices should hold ------------------------------------------------


def address_type(svc: Obj) -> str:
    """The slices' addressType: the Service's primary IP family."""
    return "IPv6" if service_ipv6(svc, {}) else "IPv4"


def slice_ports(svc: Obj, pod: Obj) -> list[Obj]:
    """The Service's ports as `pod` serves them (upstream's getEndpointPorts).

    A port the pod does not resolve (a named targetPort it lacks) is left out; the name
    is always there, "" when the Service port has none, as the API defaults it.
    """
    spec = svc.get("spec") or {}
    ports: list[Obj] = []
    for svc_port in spec.get("ports") or []:
        if not isinstance(svc_port, dict):
            continue
        number = find_port(pod, svc_port)
        if number is None:
            continue
        port = endpoint_port(svc_port, number)
        port.setdefault("name", "")
        ports.append(port)
    return ports


def ports_key(ports: Iterable[Obj] | None) -> PortsKey:
    """Order-free identity of a port list: slices are grouped by it."""
    return tuple(sorted(
        (p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "TCP", p.get("appProtocol") or "")
        for p in ports or ()
    ))


def pod_endpoint(svc: Obj, pod: Obj, zone: str | None = None) -> Obj | None:
    """The endpoint for `pod` (upstream's podToEndpoint), None when it has no address of the family.

    `ready` is never true for a terminating pod unless the Service publishes not-ready
    addresses; `serving` is the pod's readiness whatever its termination.
    """
    address = endpoint_address(svc, pod)
    if address is None:
        return None
    serving = is_pod_ready(pod)
    terminating = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    publish_not_ready = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    endpoint: Obj = {
        "addresses": [address["ip"]],
        "conditions": {"ready": publish_not_ready or (serving and not terminating), "serving": serving, "terminating": terminating},
    }
    if address.get("hostname"):
        endpoint["hostname"] = address["hostname"]
    if address.get("nodeName"):
        endpoint["nodeName"] = address["nodeName"]
    if zone:
        endpoint["zone"] = zone
    endpoint["targetRef"] = address["targetRef"]
    return endpoint


def desired_endpoints(svc: Obj, pods: Iterable[Obj], zones: dict[str, str] | None = None) -> dict[PortsKey, tuple[list[Obj], list[Obj]]]:
    """(ports, endpoints) per port set, endpoints in pod-name order."""
    zones = zones or {}
    out: dict[PortsKey, tuple[list[Obj], list[Obj]]] = {}
    for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name") or "")):
        if not should_pod_be_in_endpoints(pod, include_terminating=True):
            continue
        endpoint = pod_endpoint(svc, pod, zones.get((pod.get("spec") or {}).get("nodeName") or ""))
        if endpoint is None:
            continue
        ports = slice_ports(svc, pod)
        out.setdefault(ports_key(ports), (ports, []))[1].append(endpoint)
    return out


def slice_labels(svc: Obj) -> dict[str, str]:
    """The Service's labels, the headless mark, and the two labels that say whose slice it is."""
    reserved = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)
    meta = svc.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in reserved}
    if (svc.get("spec") or {}).get("clusterIP") in (None, "", "None"):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    labels[SERVICE_NAME_LABEL] = str(meta.get("name"))
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def owner_reference(svc: Obj) -> Obj:
    meta = svc.get("metadata") or {}
    return {
        "apiVersion": "v1", "kind": "Service", "name": meta.get("name"), "uid": meta.get("uid"),
        "controller": True, "blockOwnerDeletion": True,
    }


def is_managed(eps: Obj) -> bool:
    return ((eps.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == CONTROLLER_NAME


def _owned_by(eps: Obj, svc: Obj) -> bool:
    uid = (svc.get("metadata") or {}).get("uid")
    return any(
        ref.get("kind") == "Service" and ref.get("uid") == uid
        for ref in (eps.get("metadata") or {}).get("ownerReferences") or [] if isinstance(ref, dict)
    )


def _clean(value: Any) -> Any:
    """A value without empty fields, for comparing what we want with what is stored."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def endpoint_key(endpoint: Obj) -> tuple[Any, ...]:
    """What makes an endpoint the same endpoint (upstream hashes the same fields)."""
    ref = endpoint.get("targetRef") or {}
    return (ref.get("namespace"), ref.get("name"), tuple(endpoint.get("addresses") or ()), endpoint.get("hostname"))


def new_slice(svc: Obj, kind: str, ports: list[Obj], endpoints: list[Obj] | None) -> Obj:
    meta = svc.get("metadata") or {}
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": f"{meta.get('name')}-",
            "namespace": meta.get("namespace"),
            "labels": slice_labels(svc),
            "ownerReferences": [owner_reference(svc)],
        },
        "addressType": kind,
        # a placeholder's list is null, as upstream stores it
        "endpoints": endpoints or None,
        **({"ports": ports} if ports else {}),
    }


@dataclass
class SlicePlan:
    """The writes that bring a Service's slices to what they should be; empty when none."""

    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.delete)


def plan_slices(
    svc: Obj,
    desired: dict[PortsKey, tuple[list[Obj], list[Obj]]],
    existing: list[Obj],
    max_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
) -> SlicePlan:
    """Upstream's reconcile of one Service's slices, as a pure function.

    `existing` are the slices this controller manages for the Service. Slices of another
    address type, of another owner or of a port set no longer wanted are deleted. Per port
    set: each slice keeps the wanted endpoints it has (updated in place), drops the rest
    (and is deleted when none is left); new endpoints fill the slices being written anyway,
    fullest first, then an unchanged slice that can take them all, then new slices.
    """
    kind = address_type(svc)
    labels = slice_labels(svc)
    plan = SlicePlan()
    by_ports: dict[PortsKey, list[Obj]] = {}
    for eps in sorted(existing, key=lambda e: str((e.get("metadata") or {}).get("name"))):
        key = ports_key(eps.get("ports"))
        if eps.get("addressType") != kind or not _owned_by(eps, svc) or key not in desired:
            plan.delete.append(eps)
        else:
            by_ports.setdefault(key, []).append(eps)
    for key, (ports, endpoints) in desired.items():
        _plan_port_set(svc, kind, labels, ports, endpoints, by_ports.get(key, []), max_per_slice, plan)
    if len(plan.delete) == len(existing) and not plan.create:
        placeholder = new_slice(svc, kind, [], None)
        kept = next((e for e in plan.delete if _is_placeholder(e, kind)), None) if len(plan.delete) == 1 else None
        if kept is None:
            plan.create.append(placeholder)
        else:
            plan.delete.remove(kept)
            if ((kept.get("metadata") or {}).get("labels") or {}) != labels:
                plan.update.append(_rewritten(kept, labels, [], None))
    return plan


def _is_placeholder(eps: Obj, kind: str) -> bool:
    return eps.get("addressType") == kind and not eps.get("endpoints") and not eps.get("ports")


def _rewritten(eps: Obj, labels: dict[str, str], ports: list[Obj], endpoints: list[Obj] | None) -> Obj:
    new = copy.deepcopy(eps)
    new.setdefault("metadata", {})["labels"] = dict(labels)
    new["endpoints"] = endpoints or None
    if ports:
        new["ports"] = ports
    else:
        new.pop("ports", None)
    return new


def _plan_port_set(
    svc: Obj, kind: str, labels: dict[str, str], ports: list[Obj], endpoints: list[Obj],
    slices: list[Obj], max_per_slice: int, plan: SlicePlan,
) -> None:
    wanted = {endpoint_key(e): e for e in endpoints}
    to_update: list[tuple[Obj, list[Obj]]] = []
    unchanged: list[tuple[Obj, list[Obj]]] = []
    for eps in slices:
        kept: list[Obj] = []
        changed = ((eps.get("metadata") or {}).get("labels") or {}) != labels
        for endpoint in eps.get("endpoints") or []:
            want = wanted.pop(endpoint_key(endpoint), None)
            if want is None:
                changed = True
                continue
            if _clean(want) != _clean(endpoint):
                changed = True
            kept.append(want)
        if not kept:
            plan.delete.append(eps)
        elif changed:
            to_update.append((eps, kept))
        else:
            unchanged.append((eps, kept))
    remaining = list(wanted.values())
    to_update.sort(key=lambda pair: -len(pair[1]))
    for _, kept in to_update:
        room = max_per_slice - len(kept)
        if room > 0 and remaining:
            kept.extend(remaining[:room])
            del remaining[:room]
    if remaining and unchanged:
        for pair in sorted(unchanged, key=lambda pair: -len(pair[1])):
            if len(pair[1]) + len(remaining) <= max_per_slice:
                pair[1].extend(remaining)
                remaining = []
                unchanged.remove(pair)
                to_update.append(pair)
                break
    for eps, kept in to_update:
        plan.update.append(_rewritten(eps, labels, ports, kept))
    for start in range(0, len(remaining), max_per_slice):
        plan.create.append(new_slice(svc, kind, ports, remaining[start:start + max_per_slice]))


def with_trigger_time(eps: Obj, trigger_time: str | None) -> Obj:
    """Upstream's addTriggerTimeAnnotation: set on every slice written, cleared without one."""
    meta = eps.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    if trigger_time:
        annotations[TRIGGER_TIME_ANNOTATION] = trigger_time
    else:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return eps


# ---- the controller --------------------------------------------------------------------


def _slice_service_key(eps: Obj) -> str | None:
    """`namespace/service` of a slice this controller manages; None for anyone else's."""
    meta = eps.get("metadata") or {}
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not is_managed(eps) or not service:
        return None
    return f"{meta.get('namespace')}/{service}"


def _rv(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


SLICE_SERVICE_INDEX = "endpointslice-controller/service"
WRITE_VISIBLE_WITHIN = 10.0


class EndpointSliceController(Controller):
    """Keeps the EndpointSlices of each selector-bearing Service in line with its pods."""

    name = "endpointslice"
    workers = 5

    def setup(self) -> None:
        self.tracker = TriggerTimeTracker()
        # per Service: slice name -> (the resourceVersion we wrote or None for a delete, when)
        self.written: dict[str, dict[str, tuple[int | None, float]]] = {}
        self.services = self.informer("services")
        self.pods = self.informer("pods")
        self.nodes = self.informer("nodes")
        self.slices = self.informer("endpointslices.discovery.k8s.io")
        index_services_and_pods(self.services, self.pods)
        self.slices.add_index(SLICE_SERVICE_INDEX, lambda eps: [k] if (k := _slice_service_key(eps)) else [])
        self.enqueue_handlers(self.services)
        self.slices.add_handler(self._slice_seen, lambda old, new: self._slice_seen(new), self._slice_gone)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_added)

    def _slice_seen(self, eps: Obj, deleted: bool = False) -> None:
        """A managed slice changed: its write (if ours) is now in the cache; sync its Service."""
        key = _slice_service_key(eps)
        if key is None:
            return
        written = self.written.get(key) or {}
        name = str((eps.get("metadata") or {}).get("name"))
        if name in written:
            rv, _ = written[name]
            if deleted or (rv is not None and _rv(eps) >= rv):
                del written[name]
        self.queue.add(key)

    def _slice_gone(self, eps: Obj) -> None:
        self._slice_seen(eps, deleted=True)

    def _pod_added(self, pod: Obj) -> None:
        for key in services_for(self.services, pod):
            self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if pod_view(old) == pod_view(new):
            return
        for key in services_for(self.services, old) | services_for(self.services, new):
            self.queue.add(key)

    def _cache_is_behind(self, key: str) -> bool:
        """Whether the slice cache does not show this Service's own last writes yet.

        A write the cache never shows (the slice was deleted by someone else before we saw
        it) stops counting after WRITE_VISIBLE_WITHIN seconds.
        """
        written = self.written.get(key)
        if not written:
            return False
        namespace, _ = split_key(key)
        now = time.monotonic()
        for name, (rv, at) in list(written.items()):
            cached = self.slices.get(f"{namespace}/{name}")
            shown = cached is None if rv is None else cached is not None and _rv(cached) >= rv
            if shown or now - at > WRITE_VISIBLE_WITHIN:
                del written[name]
        if not written:
            del self.written[key]
            return False
        return True

    def _zones(self, pods: Iterable[Obj]) -> dict[str, str]:
        """The zone label of each node the pods run on (a lookup per node, not a scan)."""
        zones: dict[str, str] = {}
        for name in {(p.get("spec") or {}).get("nodeName") for p in pods} - {None, ""}:
            node = self.nodes.get(str(name))
            zone = (((node or {}).get("metadata") or {}).get("labels") or {}).get(ZONE_LABEL)
            if zone:
                zones[str(name)] = zone
        return zones

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        svc = self.services.get(key)
        if svc is None:
            # the garbage collector deletes its slices through their ownerReferences
            self.tracker.forget(key)
            self.written.pop(key, None)
            return None
        if self._cache_is_behind(key):
            return 0.5  # the informer's event for our write will bring us back sooner
        existing = self.slices.by_index(SLICE_SERVICE_INDEX, key)
        selector = service_selector(svc)
        spec = svc.get("spec") or {}
        if selector is None or spec.get("type") == "ExternalName":
            # not (or no longer) ours to fill: remove the slices we made for it
            plan = SlicePlan(delete=existing)
            trigger = None
        else:
            pods = pods_for(self.pods, namespace or "", selector)
            when = self.tracker.compute(key, svc, pods)
            trigger = format_rfc3339_nano(when) if when else None
            plan = plan_slices(svc, desired_endpoints(svc, pods, self._zones(pods)), existing)
        if plan:
            await self._apply(key, svc, plan, trigger)
        return None

    async def _apply(self, key: str, svc: Obj, plan: SlicePlan, trigger: str | None) -> None:
        namespace, name = split_key(key)
        written = self.written.setdefault(key, {})
        try:
            if not (svc.get("metadata") or {}).get("deletionTimestamp"):
                for eps in plan.create:
                    try:
                        created = await self.client.create("endpointslices.discovery.k8s.io", with_trigger_time(eps, trigger), namespace)
                    except ApiError as e:
                        if e.code == 403 and "being terminated" in e.message:
                            return  # the namespace is going away: nothing to create
                        raise
                    written[created["metadata"]["name"]] = (_rv(created), time.monotonic())
            for eps in plan.update:
                updated = await self.client.update("endpointslices.discovery.k8s.io", with_trigger_time(eps, trigger))
                written[updated["metadata"]["name"]] = (_rv(updated), time.monotonic())
            for eps in plan.delete:
                gone = str((eps.get("metadata") or {}).get("name"))
                try:
                    await self.client.delete("endpointslices.discovery.k8s.io", gone, namespace)
                except ApiError as e:
                    if not is_not_found(e):
                        raise
                written[gone] = (None, time.monotonic())
        except ApiError as e:
            if e.code != 409:  # a conflict only means the cache was behind: retry quietly
                await self.event(
                    svc, "FailedToUpdateEndpointSlices",
                    f"Error updating Endpoint Slices for Service {namespace}/{name}: {e}", "Warning",
                )
            raise
