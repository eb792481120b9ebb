"""EndpointsController: every Service with a selector gets an Endpoints of its pods.

As upstream's endpoints controller: for each Service with a selector (and not of type
ExternalName), an Endpoints object of the same name lists the addresses of the pods the
selector picks, grouped into subsets by the ports they serve. Ready pods go to
`addresses`, the others to `notReadyAddresses` (all of them to `addresses` when the
Service sets `publishNotReadyAddresses`); pods without an IP, finished pods and pods
being deleted are left out, so a terminating pod stops receiving traffic at once. A
named `targetPort` is resolved per pod, so pods that name the port differently land in
different subsets. Services without a selector are the user's: their Endpoints are
never touched. The Endpoints of a deleted Service is deleted.

The work is keyed by Service. Pods reach the queue through two indexes so that a pod
change costs a lookup, not a scan of every Service (10,000 pods, hundreds of Services):
Services are indexed by `namespace/key=value` for each pair of their selector, pods by
`namespace/key=value` for each of their labels. A pod change enqueues the Services
indexed under one of its pairs whose whole selector matches; a sync reads the pods of
the rarest pair of the selector and filters them.

Writes happen only when the computed subsets or labels differ from the cached
Endpoints (upstream compares the same way), so a pod annotation change costs nothing.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tuik8s.client.errors import ApiError, is_not_found
from tuik8s.client.informer import Informer, object_key, split_key
from tuik8s.controllers.runner import Controller

log = logging.getLogger(__name__)

Obj = dict[str, Any]

HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
MAX_CAPACITY = 1000

SERVICE_SELECTOR_INDEX = "endpoints-controller/selector-pairs"
POD_LABEL_INDEX = "endpoints-controller/label-pairs"


# ---- pure helpers: which pods, which addresses, which ports -------------------------


def service_selector(svc: Obj) -> dict[str, str] | None:
    """The Service's selector, or None for a Service whose endpoints the user manages.

    An empty selector is no selector: upstream's API drops an empty map on the wire.
    """
    selector = (svc.get("spec") or {}).get("selector")
    if not isinstance(selector, Mapping) or not selector:
        return None
    return {str(k): str(v) for k, v in selector.items()}


def selects(selector: Mapping[str, str], labels: Mapping[str, str] | None) -> bool:
    have = labels or {}
    return all(have.get(k) == v for k, v in selector.items())


def pair_values(namespace: str, pairs: Mapping[str, str] | None) -> list[str]:
    """Index values `namespace/key=value`, one per pair."""
    return [f"{namespace}/{k}={v}" for k, v in (pairs or {}).items()]


def is_pod_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    ips = [p.get("ip") for p in status.get("podIPs") or [] if isinstance(p, dict) and p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return [str(ip) for ip in ips]


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """Upstream's ShouldPodBeInEndpoints: not finished, has an IP, not being deleted."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    if not pod_ips(pod):
        return False
    if not include_terminating and (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return True


def service_ipv6(svc: Obj, pod: Obj) -> bool:
    spec = svc.get("spec") or {}
    families = spec.get("ipFamilies") or []
    if families:
        return families[0] == "IPv6"
    cluster_ip = spec.get("clusterIP") or ""
    if cluster_ip and cluster_ip != "None":
        return ":" in cluster_ip
    return ":" in ((pod.get("status") or {}).get("podIP") or "")


def endpoint_address(svc: Obj, pod: Obj) -> Obj | None:
    """The pod's address of the Service's IP family, with its node and a reference to it."""
    v6 = service_ipv6(svc, pod)
    ip = next((ip for ip in pod_ips(pod) if (":" in ip) == v6), None)
    if ip is None:
        return None
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    svc_meta = svc.get("metadata") or {}
    address: Obj = {"ip": ip}
    # upstream ShouldSetHostname: the pod names this Service as its subdomain
    if spec.get("hostname") and spec.get("subdomain") == svc_meta.get("name") and meta.get("namespace") == svc_meta.get("namespace"):
        address["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        address["nodeName"] = spec["nodeName"]
    address["targetRef"] = {
        "kind": "Pod",
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
    }
    return address


def find_port(pod: Obj, svc_port: Obj) -> int | None:
    """The pod's port for a Service port: the number, or the named container port."""
    target = svc_port.get("targetPort")
    if target is None or target == "" or target == 0:
        target = svc_port.get("port")
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = svc_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    # sidecars (restartable init containers) serve ports too
    containers += [c for c in spec.get("initContainers") or [] if isinstance(c, dict) and c.get("restartPolicy") == "Always"]
    for container in containers:
        for port in (container or {}).get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port.get("containerPort") or 0) or None
    return None


def endpoint_port(svc_port: Obj, number: int) -> Obj:
    port: Obj = {"port": number, "protocol": svc_port.get("protocol") or "TCP"}
    if svc_port.get("name"):
        port["name"] = svc_port["name"]
    if svc_port.get("appProtocol"):
        port["appProtocol"] = svc_port["appProtocol"]
    return port


def build_subsets(svc: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The Endpoints subsets for `svc` from the pods its selector picks (upstream's syncService)."""
    spec = svc.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    svc_ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    headless = spec.get("clusterIP") == "None"
    # (address, ready, port or None), one per pod and port
    entries: list[tuple[Obj, bool, Obj | None]] = []
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, publish_not_ready):
            continue
        address = endpoint_address(svc, pod)
        if address is None:
            continue
        ready = publish_not_ready or is_pod_ready(pod)
        if not svc_ports:
            if headless:  # a headless Service may have no ports
                entries.append((address, ready, None))
            continue
        for svc_port in svc_ports:
            number = find_port(pod, svc_port)
            if number is None:
                continue
            entries.append((address, ready, endpoint_port(svc_port, number)))
    return repack_subsets(entries)


def _address_key(address: Obj) -> tuple[str, str]:
    return (address.get("ip") or "", (address.get("targetRef") or {}).get("uid") or "")


def _port_key(port: Obj | None) -> tuple[str, int, str, str]:
    if port is None:
        return ("", -1, "", "")
    return (port.get("name") or "", int(port.get("port") or 0), port.get("protocol") or "", port.get("appProtocol") or "")


def repack_subsets(entries: Iterable[tuple[Obj, bool, Obj | None]]) -> list[Obj]:
    """Group (address, ready, port) into the fewest subsets, as upstream's RepackSubsets.

    Ports offered by exactly the same addresses (with the same readiness) share a
    subset; a port number a pod resolves differently makes a subset of its own. The
    result is sorted, so the same input always gives the same object and an unchanged
    Endpoints is recognised as such.
    """
    addresses: dict[tuple[str, str], Obj] = {}
    ports: dict[tuple[str, int, str, str], Obj | None] = {}
    by_port: dict[tuple[str, int, str, str], dict[tuple[str, str], bool]] = {}
    for address, ready, port in entries:
        akey, pkey = _address_key(address), _port_key(port)
        addresses.setdefault(akey, address)
        ports.setdefault(pkey, port)
        members = by_port.setdefault(pkey, {})
        # an address ready for a port stays ready even if listed again as not ready
        members[akey] = members.get(akey, False) or ready
    groups: dict[tuple[tuple[tuple[str, str], bool], ...], list[tuple[str, int, str, str]]] = {}
    for pkey, members in by_port.items():
        groups.setdefault(tuple(sorted(members.items())), []).append(pkey)
    subsets: list[Obj] = []
    for members_key, pkeys in groups.items():
        subset: Obj = {}
        ready_addresses = [addresses[a] for a, r in members_key if r]
        not_ready_addresses = [addresses[a] for a, r in members_key if not r]
        if ready_addresses:
            subset["addresses"] = ready_addresses
        if not_ready_addresses:
            subset["notReadyAddresses"] = not_ready_addresses
        real_ports = [ports[p] for p in sorted(pkeys) if ports[p] is not None]
        if real_ports:
            subset["ports"] = real_ports
        subsets.append(subset)
    subsets.sort(key=lambda s: (
        [_port_key(p) for p in s.get("ports") or []],
        [_address_key(a) for a in s.get("addresses") or []],
        [_address_key(a) for a in s.get("notReadyAddresses") or []],
    ))
    return subsets


def count_addresses(subsets: Iterable[Obj]) -> int:
    return sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or []) for s in subsets)


def truncate_subsets(subsets: list[Obj], capacity: int = MAX_CAPACITY) -> bool:
    """Cut the subsets to `capacity` addresses, ready ones first, proportionally per subset.

    Returns whether anything was cut (upstream's truncateEndpoints).
    """
    total_ready = sum(len(s.get("addresses") or []) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if total_ready + total_not_ready <= capacity:
        return False
    truncate_ready = total_ready > capacity
    limit = capacity if truncate_ready else capacity - total_ready
    total = total_ready if truncate_ready else total_not_ready
    room = limit
    for subset in subsets:
        field = "addresses" if truncate_ready else "notReadyAddresses"
        members = subset.get(field) or []
        share = min(-(-len(members) * limit // total) if total else 0, room)
        kept = members[:share]
        if kept:
            subset[field] = kept
        else:
            subset.pop(field, None)
        if truncate_ready:
            subset.pop("notReadyAddresses", None)
        room -= len(kept)
    subsets[:] = [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")]
    return True


def _normalized(subsets: Any) -> list[Obj]:
    """Subsets without empty fields and pod resourceVersions, for comparison."""
    out: list[Obj] = []
    for subset in subsets or []:
        clean: Obj = {}
        for field in ("addresses", "notReadyAddresses"):
            items = []
            for address in subset.get(field) or []:
                address = {k: v for k, v in address.items() if v not in (None, "", [], {})}
                if isinstance(address.get("targetRef"), dict):
                    address["targetRef"] = {
                        k: v for k, v in address["targetRef"].items() if k != "resourceVersion" and v not in (None, "")
                    }
                items.append(address)
            if items:
                clean[field] = items
        ports = [{k: v for k, v in p.items() if v not in (None, "")} for p in subset.get("ports") or []]
        if ports:
            clean["ports"] = ports
        out.append(clean)
    return out


def subsets_equal(a: Any, b: Any) -> bool:
    return _normalized(a) == _normalized(b)


def desired_endpoints(svc: Obj, subsets: list[Obj], current: Obj | None, trigger_time: str | None) -> Obj | None:
    """The Endpoints to write for `svc`, or None when `current` already says the same.

    Labels are the Service's, plus `service.kubernetes.io/headless` for a headless
    Service; the trigger-time annotation changes only along with a write.
    """
    svc_meta = svc.get("metadata") or {}
    svc_labels = dict(svc_meta.get("labels") or {})
    final = copy.deepcopy(subsets)
    truncated = truncate_subsets(final)
    if current is not None:
        current_meta = current.get("metadata") or {}
        compare_labels = dict(current_meta.get("labels") or {})
        compare_labels.pop(HEADLESS_LABEL, None)
        marked = OVER_CAPACITY_ANNOTATION in (current_meta.get("annotations") or {})
        if subsets_equal(current.get("subsets"), final) and compare_labels == svc_labels and marked == truncated:
            return None
        new = copy.deepcopy(current)
    else:
        new = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": svc_meta.get("name"), "namespace": svc_meta.get("namespace")},
        }
    meta = new.setdefault("metadata", {})
    new["subsets"] = final
    annotations = dict(meta.get("annotations") or {})
    if trigger_time:
        annotations[TRIGGER_TIME_ANNOTATION] = trigger_time
    else:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    if truncated:
        annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY_ANNOTATION, None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    labels = svc_labels
    if (svc.get("spec") or {}).get("clusterIP") in (None, "", "None"):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    if labels:
        meta["labels"] = labels
    else:
        meta.pop("labels", None)
    return new


# ---- last-change-trigger-time --------------------------------------------------------


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def format_rfc3339_nano(when: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: fractional seconds only when there are any."""
    when = when.astimezone(UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    return text + "Z"


def _pod_trigger_time(pod: Obj) -> datetime | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return parse_time(cond.get("lastTransitionTime"))
    return None


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class TriggerTimeTracker:
    """When did the change that an Endpoints write reflects happen? (upstream's tracker)

    For each Service it remembers the Ready-transition time of every selected pod and
    the Service's creation time as last seen. A sync reports the earliest of those that
    moved since the previous sync (the change that has waited longest), or the Service's
    creation time on its first sync; None when nothing moved. The state is updated even
    when the sync writes nothing, so a later write does not report a stale change.
    """

    def __init__(self) -> None:
        self._pods: dict[str, dict[str, datetime]] = {}
        self._service: dict[str, datetime | None] = {}

    def compute(self, key: str, svc: Obj, pods: Iterable[Obj]) -> datetime | None:
        known = key in self._service
        before = self._pods.get(key, {})
        now: dict[str, datetime] = {}
        earliest: datetime | None = None
        for pod in pods:
            when = _pod_trigger_time(pod)
            if when is None:
                continue
            name = str((pod.get("metadata") or {}).get("name"))
            now[name] = when
            seen = before.get(name)
            if seen is None or when > seen:
                earliest = _earliest(earliest, when)
        created = parse_time((svc.get("metadata") or {}).get("creationTimestamp"))
        seen_svc = self._service.get(key)
        if created is not None and (seen_svc is None or created > seen_svc):
            earliest = _earliest(earliest, created)
        self._pods[key] = now
        self._service[key] = created
        if not known:
            return created
        return earliest

    def forget(self, key: str) -> None:
        self._pods.pop(key, None)
        self._service.pop(key, None)


# ---- the controller -----------------------------------------------------------------


def _service_index(svc: Obj) -> list[str]:
    selector = service_selector(svc)
    if selector is None:
        return []
    return pair_values((svc.get("metadata") or {}).get("namespace") or "", selector)


def _pod_index(pod: Obj) -> list[str]:
    meta = pod.get("metadata") or {}
    return pair_values(meta.get("namespace") or "", meta.get("labels"))


def pod_view(pod: Obj) -> tuple[Any, ...]:
    """What of a pod can change its Endpoints; an update that keeps it enqueues nothing."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ready = next(
        (
            (c.get("status"), c.get("lastTransitionTime"))
            for c in status.get("conditions") or []
            if isinstance(c, dict) and c.get("type") == "Ready"
        ),
        None,
    )
    return (
        meta.get("labels"), bool(meta.get("deletionTimestamp")), spec.get("nodeName"),
        spec.get("hostname"), spec.get("subdomain"), status.get("phase"), tuple(pod_ips(pod)), ready,
    )


def index_services_and_pods(services: Informer, pods: Informer) -> None:
    """The two indexes `services_for` and `pods_for` read (shared by the EndpointSlice controller)."""
    services.add_index(SERVICE_SELECTOR_INDEX, _service_index)
    pods.add_index(POD_LABEL_INDEX, _pod_index)


def services_for(services: Informer, pod: Obj) -> set[str]:
    """Keys of the Services whose selector picks `pod`, through the selector index."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    keys: set[str] = set()
    for value in pair_values(meta.get("namespace") or "", labels):
        for svc in services.by_index(SERVICE_SELECTOR_INDEX, value):
            selector = service_selector(svc)
            if selector is not None and selects(selector, labels):
                keys.add(object_key(svc))
    return keys


def pods_for(pods: Informer, namespace: str, selector: Mapping[str, str]) -> list[Obj]:
    """The cached pods `selector` picks, read through the rarest of its pairs."""
    candidates: list[str] | None = None
    for value in pair_values(namespace, selector):
        keys = pods.index_keys(POD_LABEL_INDEX, value)
        if candidates is None or len(keys) < len(candidates):
            candidates = keys
        if not candidates:
            break
    found = []
    for key in candidates or []:
        pod = pods.get(key)
        if pod is not None and selects(selector, (pod.get("metadata") or {}).get("labels")):
            found.append(pod)
    return found


class EndpointsController(Controller):
    """Keeps one Endpoints per selector-bearing Service in line with its pods."""

    name = "endpoints"
    workers = 5

    def setup(self) -> None:
        self.tracker = TriggerTimeTracker()
        self.services = self.informer("services")
        self.pods = self.informer("pods")
        self.endpoints = self.informer("endpoints")
        index_services_and_pods(self.services, self.pods)
        self.enqueue_handlers(self.services)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_added)
        self.endpoints.add_handler(on_delete=self.enqueue)

    async def run(self) -> None:
        await self.ctx.informers.wait_synced()
        self._check_leftover_endpoints()
        await super().run()

    def _check_leftover_endpoints(self) -> None:
        """Endpoints whose Service went while we were not running: sync them (to delete).

        Done once per start, as upstream: in steady state a Service's deletion event
        does it, and an Endpoints created ahead of its selector-less Service must live.
        """
        for ep in self.endpoints.list():
            if LEADER_ANNOTATION in ((ep.get("metadata") or {}).get("annotations") or {}):
                continue
            key = object_key(ep)
            if self.services.get(key) is None:
                self.queue.add(key)

    # ---- pods to services -------------------------------------------------------

    def services_for(self, pod: Obj) -> set[str]:
        return services_for(self.services, pod)

    def _pod_added(self, pod: Obj) -> None:
        for key in self.services_for(pod):
            self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if pod_view(old) == pod_view(new):
            return
        for key in self.services_for(old) | self.services_for(new):
            self.queue.add(key)

    def pods_for(self, namespace: str, selector: Mapping[str, str]) -> list[Obj]:
        return pods_for(self.pods, namespace, selector)

    # ---- reconcile --------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        svc = self.services.get(key)
        if svc is None:
            self.tracker.forget(key)
            try:
                await self.client.delete("endpoints", name, namespace)
            except ApiError as e:
                if not is_not_found(e):
                    raise
            return None
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            return None  # ExternalName Services get no endpoints (upstream issue 105986)
        selector = service_selector(svc)
        if selector is None:
            return None  # the user manages this Service's Endpoints
        pods = self.pods_for(namespace or "", selector)
        trigger = self.tracker.compute(key, svc, pods)
        subsets = build_subsets(svc, pods)
        current = self.endpoints.get(key)
        new = desired_endpoints(svc, subsets, current, format_rfc3339_nano(trigger) if trigger else None)
        if new is None:
            return None
        try:
            if current is None:
                await self.client.create("endpoints", new, namespace)
            else:
                await self.client.update("endpoints", new)
        except ApiError as e:
            if current is None and e.code == 403 and "being terminated" in e.message:
                return None  # the namespace is going away: nothing to create
            if e.code != 409:  # a conflict only means the cache was behind: retry quietly
                if current is None:
                    await self.event(
                        new, "FailedToCreateEndpoint",
                        f"Failed to create endpoint for service {namespace}/{name}: {e}", "Warning",
                    )
                else:
                    await self.event(
                        new, "FailedToUpdateEndpoint", f"Failed to update endpoint {namespace}/{name}: {e}", "Warning"
                    )
            raise
        return None
