"""DaemonSetController: one pod of each DaemonSet on every node that should run it.

As upstream's daemon controller (1.12 and later), it decides which nodes need a daemon
pod and leaves placing it to the scheduler: each pod is created with a required node
affinity `matchFields metadata.name In [node]`, so the default scheduler can bind it
nowhere else, and it carries the tolerations every daemon pod gets (not-ready and
unreachable NoExecute without a time limit, the node-pressure and unschedulable
NoSchedule taints), so a node's trouble does not evict its daemons.

A node should run a daemon pod when it passes the template's `nodeName`, `nodeSelector`
and required node affinity and every NoSchedule/NoExecute taint is tolerated. A pod
already there may stay as long as no NoExecute taint is untolerated (`shouldRun` and
`shouldContinueRunning`, as upstream). Nodes that join get a pod, pods on nodes that
stop qualifying are deleted, and so are pods still waiting for a node that left (pods
bound to a vanished node are the pod garbage collector's, in the node lifecycle
controller).

Every template revision is a `ControllerRevision` named `<ds>-<hash>`, the hash of the
template (and `status.collisionCount`), which is also the pods' `controller-revision-hash`
label: that is how a pod is known to be of the current template, and what `kubectl
rollout history/undo ds` read. RollingUpdate replaces old pods node by node within
`maxUnavailable` (or surges a new pod next to the old within `maxSurge`); OnDelete only
creates pods of the new template where the user deleted the old ones.

Races: the pod cache lags the controller's own writes. A reconcile running between a
create and its watch event would see the node still empty and create a second pod, so,
like upstream, a DaemonSet with creations or deletions not yet seen in the cache only
gets its status written (`Expectations`).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tuik8s.api.selectors import (
    LabelSelector,
    SelectorError,
    node_selector_term_matches,
    selector_from_spec,
)
from tuik8s.api.taints import tolerated
from tuik8s.client.errors import ApiError, ClientError, is_already_exists, is_not_found
from tuik8s.client.informer import NAMESPACE_INDEX, namespace_index, object_key
from tuik8s.controllers.podutil import (
    CONTROLLER_UID_INDEX,
    claim,
    compute_hash,
    controller_ref,
    controller_uid_index,
    is_deleting,
    is_pod_available,
    is_pod_ready,
    meta,
    new_controller_ref,
    owners_selecting,
    pod_key,
)
from tuik8s.controllers.runner import Controller

log = logging.getLogger(__name__)

Obj = dict[str, Any]

CONTROLLER_REVISION_HASH_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"

BURST_REPLICAS = 250  # upstream's cap on creations or deletions in one sync
EXPECTATIONS_TTL = 300.0  # upstream ExpectationsTimeout: after this, stop waiting for the cache
FAILED_POD_BACKOFF = (1.0, 900.0)  # upstream: 1 s doubling to 15 min per (DaemonSet, node)
MAX_REVISION_NAME_PREFIX = 223

# AddOrUpdateDaemonPodTolerations: what every daemon pod tolerates.
DAEMON_TOLERATIONS: tuple[Obj, ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
HOST_NETWORK_TOLERATION: Obj = {
    "key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule",
}


# ---- small readers --------------------------------------------------------------------------


def _spec(obj: Mapping[str, Any]) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _status(obj: Mapping[str, Any]) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def creation_sort_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    m = meta(obj)
    return str(m.get("creationTimestamp") or ""), str(m.get("name") or "")


class Expectations:
    """Pod creations and deletions a controller issued that its cache has not shown yet.

    upstream's UIDTrackingControllerExpectations, keyed by the owner's key: creations are
    a count (a generated name is unknown until the server answers), deletions the keys of
    the pods, so a pod seen going twice (deletionTimestamp set, then gone) counts once.
    `satisfied` is true once everything was seen, or `ttl` seconds after the writes (a
    watch event lost for good must not stall the owner forever).
    """

    def __init__(self, ttl: float = EXPECTATIONS_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._adds: dict[str, int] = {}
        self._deletes: dict[str, set[str]] = {}
        self._since: dict[str, float] = {}

    def expect(self, key: str, adds: int = 0, deletes: Iterable[str] = ()) -> None:
        """Replace `key`'s expectations: `adds` pods to appear, the `deletes` pod keys to go."""
        self._adds[key] = adds
        self._deletes[key] = set(deletes)
        self._since[key] = self.clock()

    def creation_observed(self, key: str, count: int = 1) -> None:
        if key in self._adds:
            self._adds[key] -= count

    def deletion_observed(self, key: str, pod_key: str) -> None:
        deletes = self._deletes.get(key)
        if deletes is not None:
            deletes.discard(pod_key)

    def satisfied(self, key: str) -> bool:
        if key not in self._since:
            return True
        done = self._adds.get(key, 0) <= 0 and not self._deletes.get(key)
        return done or self.clock() - self._since[key] > self.ttl

    def time_left(self, key: str) -> float | None:
        """Seconds until `key`'s unmet expectations expire; None when there are none."""
        if self.satisfied(key):
            return None
        return max(0.0, self.ttl - (self.clock() - self._since[key]))

    def forget(self, key: str) -> None:
        for table in (self._adds, self._deletes, self._since):
            table.pop(key, None)


class Backoff:
    """Per-key doubling delays (client-go's flowcontrol.Backoff), for hot loops only."""

    def __init__(self, base: float, cap: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.base, self.cap, self.clock = base, cap, clock
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (delay, last update)

    def in_backoff(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and self.clock() - entry[1] < entry[0]

    def get(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry[0] if entry is not None else 0.0

    def next(self, key: str) -> None:
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or now - entry[1] > 2 * self.cap:
            self._entries[key] = (self.base, now)
        else:
            self._entries[key] = (min(entry[0] * 2, self.cap), now)

    def gc(self) -> None:
        now = self.clock()
        for key, (_, last) in list(self._entries.items()):
            if now - last > 2 * self.cap:
                del self._entries[key]


# ---- taints, tolerations, node affinity -----------------------------------------------------


def untolerated_taint(
    taints: Iterable[Mapping[str, Any]], tolerations: Iterable[Mapping[str, Any]], effects: tuple[str, ...]
) -> Mapping[str, Any] | None:
    """The first taint with one of `effects` that no toleration tolerates."""
    tolerations = [t for t in tolerations if isinstance(t, Mapping)]
    for taint in taints:
        if not isinstance(taint, Mapping) or taint.get("effect") not in effects:
            continue
        if not tolerated(taint, tolerations):
            return taint
    return None


def _same_toleration(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """v1.Toleration.MatchToleration: same key, operator, value and effect."""
    return all((a.get(k) or "") == (b.get(k) or "") for k in ("key", "operator", "value", "effect"))


def add_daemon_tolerations(pod_spec: Obj) -> None:
    """Give a pod spec the tolerations every daemon pod has, replacing look-alikes in place."""
    wanted = list(DAEMON_TOLERATIONS)
    if pod_spec.get("hostNetwork") is True:
        wanted.append(HOST_NETWORK_TOLERATION)
    tolerations = [t for t in pod_spec.get("tolerations") or () if isinstance(t, dict)]
    for toleration in wanted:
        for i, existing in enumerate(tolerations):
            if _same_toleration(existing, toleration):
                tolerations[i] = dict(toleration)
                break
        else:
            tolerations.append(dict(toleration))
    pod_spec["tolerations"] = tolerations


def fits_node_affinity(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """The pod's nodeSelector and required node affinity (GetRequiredNodeAffinity.Match)."""
    labels = meta(node).get("labels") or {}
    selector = pod_spec.get("nodeSelector") or {}
    if isinstance(selector, Mapping) and any(labels.get(k) != v for k, v in selector.items()):
        return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    terms = required.get("nodeSelectorTerms") if isinstance(required, Mapping) else None
    fields = {"metadata.name": str(meta(node).get("name") or "")}
    return any(node_selector_term_matches(term, labels, fields) for term in terms or ())


def node_should_run_daemon_pod(node: Mapping[str, Any], ds: Mapping[str, Any]) -> tuple[bool, bool]:
    """(shouldRun, shouldContinueRunning) of upstream's NodeShouldRunDaemonPod.

    shouldRun: a node without the pod should get one. shouldContinueRunning: a pod
    already there may stay (only an untolerated NoExecute taint evicts it).
    """
    pod_spec = copy.deepcopy(_spec(_spec(ds).get("template") or {}))
    node_name = meta(node).get("name")
    if pod_spec.get("nodeName") and pod_spec["nodeName"] != node_name:
        return False, False
    add_daemon_tolerations(pod_spec)
    if not fits_node_affinity(pod_spec, node):
        return False, False
    taints = _spec(node).get("taints") or ()
    tolerations = pod_spec["tolerations"]
    if untolerated_taint(taints, tolerations, ("NoSchedule", "NoExecute")) is not None:
        return False, untolerated_taint(taints, tolerations, ("NoExecute",)) is None
    return True, True


def node_name_affinity(affinity: Obj | None, node_name: str) -> Obj:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: required affinity to exactly `node_name`.

    The controller already checked the template's required terms against the node, so
    they are replaced; preferred terms and pod (anti-)affinity stay.
    """
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
    affinity = copy.deepcopy(affinity) if isinstance(affinity, dict) else {}
    node_affinity = affinity.get("nodeAffinity")
    if not isinstance(node_affinity, dict):
        node_affinity = affinity["nodeAffinity"] = {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not isinstance(required, dict):
        required = node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {}
    required["nodeSelectorTerms"] = [term]
    return affinity


def target_node_name(pod: Mapping[str, Any]) -> str | None:
    """The node a daemon pod is for: `spec.nodeName`, or its `metadata.name` affinity."""
    spec = _spec(pod)
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or ():
        for expr in (term or {}).get("matchFields") or ():
            if expr.get("key") == "metadata.name" and expr.get("operator") == "In":
                values = expr.get("values") or []
                return str(values[0]) if len(values) == 1 else None
    return None


# ---- revisions ------------------------------------------------------------------------------


def revision_data(ds: Mapping[str, Any]) -> Obj:
    """What a ControllerRevision of `ds` stores: a patch that puts its template back."""
    template = copy.deepcopy(_spec(ds).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_matches(ds: Mapping[str, Any], revision: Mapping[str, Any]) -> bool:
    return revision.get("data") == revision_data(ds)


def revision_name(ds_name: str, hash_: str) -> str:
    return f"{ds_name[:MAX_REVISION_NAME_PREFIX]}-{hash_}"


def template_generation(ds: Mapping[str, Any]) -> int | None:
    """`spec.templateGeneration`, which apps/v1 carries in an annotation."""
    value = (meta(ds).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def is_pod_updated(pod: Mapping[str, Any], hash_: str, generation: int | None) -> bool:
    """Whether a pod is of the current template: by revision hash or template generation."""
    labels = meta(pod).get("labels") or {}
    if generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == str(generation):
        return True
    return bool(hash_) and labels.get(CONTROLLER_REVISION_HASH_LABEL) == hash_


# ---- what each node needs -------------------------------------------------------------------


def daemon_pod_order(pod: Mapping[str, Any]) -> tuple[bool, str, str]:
    """podByCreationTimestampAndPhase: scheduled pods first, then the oldest, then by name."""
    return (not _spec(pod).get("nodeName"), *creation_sort_key(pod))


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent; ValueError for a malformed value."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = int(value[:-1])
        except ValueError:
            raise ValueError(f"invalid value for IntOrString: invalid value {value!r}") from None
        scaled = percent * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    raise ValueError(f"invalid type: string is not a percentage: {value!r}")


def rolling_update_params(ds: Mapping[str, Any]) -> Obj:
    strategy = _spec(ds).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return {}
    return strategy.get("rollingUpdate") or {}


def surge_count(ds: Mapping[str, Any], number_to_schedule: int) -> int:
    return scaled_value(rolling_update_params(ds).get("maxSurge"), number_to_schedule, True)


def unavailable_count(ds: Mapping[str, Any], number_to_schedule: int) -> int:
    return scaled_value(rolling_update_params(ds).get("maxUnavailable"), number_to_schedule, True)


def allows_surge(ds: Mapping[str, Any]) -> bool:
    try:
        return surge_count(ds, 1) > 0
    except ValueError:
        return False


@dataclass
class NodePlan:
    """What one node needs: a new pod, pods deleted, and failed pods to delete after backoff."""

    create: bool = False
    delete: list[str] = field(default_factory=list)
    failed: list[Obj] = field(default_factory=list)
    succeeded: list[Obj] = field(default_factory=list)


def plan_node(
    node: Mapping[str, Any], pods: list[Obj], ds: Mapping[str, Any], hash_: str, now: datetime
) -> NodePlan:
    """upstream podsShouldBeOnNode for one node and the daemon pods meant for it."""
    plan = NodePlan()
    should_run, should_continue = node_should_run_daemon_pod(node, ds)
    if should_run and not pods:
        plan.create = True
        return plan
    if not should_continue:
        plan.delete = [_name(p) for p in pods if not is_deleting(p)]
        return plan
    running: list[Obj] = []
    for pod in pods:
        if is_deleting(pod):
            continue
        phase = _status(pod).get("phase")
        if phase == "Failed":
            plan.failed.append(pod)
        elif phase == "Succeeded":
            plan.succeeded.append(pod)
            plan.delete.append(_name(pod))
        else:
            running.append(pod)
    running.sort(key=daemon_pod_order)
    if not allows_surge(ds):
        plan.delete.extend(_name(p) for p in running[1:])
        # a node whose only pods failed gets a new one once they are gone
        return plan
    if len(running) <= 1:
        if not running and should_run:
            plan.create = True  # surging: a node keeps at least one pod not being deleted
        return plan
    # With surge, two pods may share a node only while the new one is not yet available.
    oldest_new: Obj | None = None
    oldest_old: Obj | None = None
    for pod in running:
        if (meta(pod).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL) == hash_:
            if oldest_new is None:
                oldest_new = pod
                continue
        elif oldest_old is None:
            oldest_old = pod
            continue
        plan.delete.append(_name(pod))
    if oldest_new is not None and oldest_old is not None:
        min_ready = int(_spec(ds).get("minReadySeconds") or 0)
        if not is_pod_ready(oldest_old) or is_pod_available(oldest_new, min_ready, now):
            plan.delete.append(_name(oldest_old))
    return plan


def unscheduled_pods_without_node(nodes: Iterable[Mapping[str, Any]], node_to_pods: Mapping[str, list[Obj]]) -> list[str]:
    """Pods waiting for a node that no longer exists: nobody else will ever delete them."""
    names = {meta(n).get("name") for n in nodes}
    return [
        _name(p)
        for node, pods in node_to_pods.items() if node not in names
        for p in pods if not _spec(p).get("nodeName")
    ]


def _updated_pods_on_node(
    pods: list[Obj], hash_: str, generation: int | None
) -> tuple[Obj | None, Obj | None, bool]:
    """(new pod, old pod, ok) of a node; not ok when it holds two of either kind."""
    new = old = None
    for pod in pods:
        if is_deleting(pod):
            continue
        if is_pod_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def rolling_update_plan(
    ds: Mapping[str, Any],
    nodes: list[Obj],
    node_to_pods: Mapping[str, list[Obj]],
    hash_: str,
    generation: int | None,
    now: datetime,
) -> tuple[list[str], list[str]]:
    """Old pods to delete and nodes to surge onto now, within maxUnavailable/maxSurge.

    upstream rollingUpdate: without surge, an old pod is deleted (and replaced by the
    manage loop) while fewer than `maxUnavailable` nodes lack an available pod, old pods
    that are not available first; with surge, a new pod is started next to an old one on
    up to `maxSurge` nodes, and the old one goes once the new one is available.
    """
    by_node = {k: list(v) for k, v in node_to_pods.items()}
    desired = 0
    should_run: dict[str, bool] = {}
    for node in nodes:
        name = _name(node)
        run, _ = node_should_run_daemon_pod(node, ds)
        should_run[name] = run
        if run:
            desired += 1
            by_node.setdefault(name, [])
    max_unavailable = unavailable_count(ds, desired)
    max_surge = surge_count(ds, desired)
    if desired > 0 and max_unavailable == 0 and max_surge == 0:
        max_unavailable = 1  # an impossible configuration: accept unavailability, as upstream
    min_ready = int(_spec(ds).get("minReadySeconds") or 0)

    def available(pod: Obj) -> bool:
        return is_pod_available(pod, min_ready, now)

    if max_surge == 0:
        unavailable = 0
        replace: list[str] = []
        candidates: list[str] = []
        for name in sorted(by_node):
            new, old, ok = _updated_pods_on_node(by_node[name], hash_, generation)
            if not ok or (new is None) == (old is None):
                unavailable += 1  # the manage loop creates or prunes here
            elif new is not None:
                if not available(new):
                    unavailable += 1
            elif old is not None:
                if not available(old):
                    replace.append(_name(old))
                elif unavailable < max_unavailable:
                    candidates.append(_name(old))
        room = max(0, min(max_unavailable - unavailable, len(candidates)))
        return replace + candidates[:room], []

    surging = 0
    to_delete: list[str] = []
    allowed: list[str] = []
    candidate_nodes: list[str] = []
    for name in sorted(by_node):
        new, old, ok = _updated_pods_on_node(by_node[name], hash_, generation)
        if not ok:
            surging += 1
            continue
        if old is None:
            continue
        if new is None:
            if not should_run.get(name, False):
                to_delete.append(_name(old))
            elif not available(old):
                allowed.append(name)
            elif surging < max_surge:
                candidate_nodes.append(name)
        elif not available(new):
            surging += 1
        else:
            to_delete.append(_name(old))
    room = max(0, min(max_surge - surging, len(candidate_nodes)))
    return to_delete, allowed + candidate_nodes[:room]


def daemonset_status(
    ds: Mapping[str, Any],
    nodes: list[Obj],
    node_to_pods: Mapping[str, list[Obj]],
    hash_: str,
    generation: int | None,
    now: datetime,
) -> dict[str, int]:
    """The counters of DaemonSetStatus, as upstream's updateDaemonSetStatus counts them."""
    desired = current = misscheduled = ready = updated = available = 0
    min_ready = int(_spec(ds).get("minReadySeconds") or 0)
    for node in nodes:
        should_run, _ = node_should_run_daemon_pod(node, ds)
        pods = node_to_pods.get(_name(node)) or []
        if not should_run:
            if pods:
                misscheduled += 1
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        pod = sorted(pods, key=daemon_pod_order)[0]
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
        if is_pod_updated(pod, hash_, generation):
            updated += 1
    return {
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
    }


# Fields of DaemonSetStatus without omitempty: written even when zero.
_REQUIRED_STATUS = ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady")


def daemon_pod(ds: Mapping[str, Any], node_name: str, hash_: str, generation: int | None) -> Obj:
    """The pod to create for `node_name` (CreatePodTemplate plus the node affinity)."""
    template = copy.deepcopy(_spec(ds).get("template") or {})
    template_meta = meta(template)
    spec = _spec(template)
    add_daemon_tolerations(spec)
    spec["affinity"] = node_name_affinity(spec.get("affinity"), node_name)
    labels = dict(template_meta.get("labels") or {})
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = str(generation)
    if hash_:
        labels[CONTROLLER_REVISION_HASH_LABEL] = hash_
    ds_meta = meta(ds)
    pod_meta: Obj = {
        "generateName": f"{ds_meta.get('name')}-",
        "namespace": ds_meta.get("namespace"),
        "labels": labels,
        "ownerReferences": [new_controller_ref(ds, "apps/v1", "DaemonSet")],
    }
    for key in ("annotations", "finalizers"):
        if template_meta.get(key):
            pod_meta[key] = copy.deepcopy(template_meta[key])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def group_by_node(pods: Iterable[Obj]) -> dict[str, list[Obj]]:
    """Daemon pods by the node they are for (bound or not); pods for no node are left out."""
    grouped: dict[str, list[Obj]] = {}
    for pod in pods:
        node = target_node_name(pod)
        if node:
            grouped.setdefault(node, []).append(pod)
    return grouped


def _is_empty_selector(selector: Any) -> bool:
    return isinstance(selector, Mapping) and not selector.get("matchLabels") and not selector.get("matchExpressions")


# ---- the controller -------------------------------------------------------------------------


class DaemonSetController(Controller):
    """Keeps one pod of each DaemonSet on each eligible node, and rolls them to new templates."""

    name = "daemonset"
    workers = 2

    def setup(self) -> None:
        self.expectations = Expectations()
        self.failed_pods_backoff = Backoff(*FAILED_POD_BACKOFF)
        self.daemonsets = self.informer("daemonsets.apps")
        self.pods = self.informer("pods")
        self.nodes = self.informer("nodes")
        self.revisions = self.informer("controllerrevisions.apps")
        for inf in (self.pods, self.revisions, self.daemonsets):
            inf.add_index(NAMESPACE_INDEX, namespace_index)
        self.pods.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
        self.revisions.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
        self.enqueue_handlers(self.daemonsets)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_deleted)
        self.revisions.add_handler(
            self._enqueue_controller, lambda old, new: self._enqueue_controller(new), self._enqueue_controller
        )

    # ---- event handlers: only enqueue keys ------------------------------------------

    def _resolve(self, namespace: str | None, ref: Mapping[str, Any] | None) -> Obj | None:
        if ref is None or ref.get("kind") != "DaemonSet" or not namespace:
            return None
        ds = self.daemonsets.get(f"{namespace}/{ref.get('name')}")
        if ds is None or meta(ds).get("uid") != ref.get("uid"):
            return None
        return ds

    def _selecting(self, obj: Obj) -> list[Obj]:
        """DaemonSets in the object's namespace whose selector picks it (orphan adoption)."""
        return owners_selecting(self.daemonsets, obj, lambda ds: selector_from_spec(_spec(ds).get("selector")))

    def _enqueue_controller(self, obj: Obj) -> None:
        ds = self._resolve(meta(obj).get("namespace"), controller_ref(obj))
        if ds is not None:
            self.enqueue(ds)

    def _pod_added(self, pod: Obj) -> None:
        if is_deleting(pod):
            self._pod_deleted(pod)
            return
        ds = self._resolve(meta(pod).get("namespace"), controller_ref(pod))
        if ds is not None:
            key = object_key(ds)
            self.expectations.creation_observed(key)
            self.queue.add(key)
            return
        if controller_ref(pod) is None:
            for ds in self._selecting(pod):
                self.enqueue(ds)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        if is_deleting(new):
            # a graceful deletion began: the node may get its replacement now, not when
            # the kubelet finally removes the pod
            self._pod_deleted(new)
            return
        namespace = meta(new).get("namespace")
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref != new_ref and old_ref is not None:
            gone = self._resolve(namespace, old_ref)
            if gone is not None:
                self.enqueue(gone)
        if new_ref is not None:
            ds = self._resolve(namespace, new_ref)
            if ds is None:
                return
            self.enqueue(ds)
            min_ready = int(_spec(ds).get("minReadySeconds") or 0)
            if min_ready and not is_pod_ready(old) and is_pod_ready(new):
                # look again when the pod becomes available (plus a second of clock skew)
                self.queue.add_after(object_key(ds), min_ready + 1)
            return
        if old_ref != new_ref or meta(old).get("labels") != meta(new).get("labels"):
            for ds in self._selecting(new):
                self.enqueue(ds)

    def _pod_deleted(self, pod: Obj) -> None:
        ds = self._resolve(meta(pod).get("namespace"), controller_ref(pod))
        if ds is None:
            return
        key = object_key(ds)
        self.expectations.deletion_observed(key, pod_key(pod))
        self.queue.add(key)

    def _node_added(self, node: Obj) -> None:
        for ds in self.daemonsets.list():
            if node_should_run_daemon_pod(node, ds)[0]:
                self.enqueue(ds)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if _spec(old) == _spec(new) and meta(old).get("labels") == meta(new).get("labels"):
            return  # a heartbeat: nothing that decides eligibility changed
        for ds in self.daemonsets.list():
            if node_should_run_daemon_pod(old, ds) != node_should_run_daemon_pod(new, ds):
                self.enqueue(ds)

    def _node_deleted(self, node: Obj) -> None:
        # pods still waiting to be scheduled there will never be: ours to delete
        for ds in self.daemonsets.list():
            self.enqueue(ds)

    # ---- reconcile ------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        ds = self.daemonsets.get(key)
        if ds is None:
            self.expectations.forget(key)
            return None
        spec = _spec(ds)
        if _is_empty_selector(spec.get("selector")):
            await self.event(ds, "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.", "Warning")
            return None
        if is_deleting(ds):
            # its revisions may already be gone: no status we could compute is trustworthy
            return None
        try:
            selector = selector_from_spec(spec.get("selector"))
        except SelectorError as e:
            log.info("daemonset %s: invalid selector: %s", key, e)
            return None
        nodes = self.nodes.list()
        current, old = await self._construct_history(ds, selector)
        hash_ = (meta(current).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL, "")
        generation = template_generation(ds)
        if generation is None:
            # upstream's API server keeps spec.templateGeneration; ours does not, and the
            # current revision's number moves exactly when the template does
            generation = int(current.get("revision") or 0) or None

        again: list[float] = []
        error: ClientError | None = None
        observed = self.expectations.satisfied(key)
        if not observed:
            left = self.expectations.time_left(key)
            if left is not None:
                again.append(left)
        else:
            try:
                node_to_pods = group_by_node(await self._claim_pods(ds, selector))
                wrote, delay = await self._manage(ds, nodes, node_to_pods, hash_, generation)
                if delay is not None:
                    again.append(delay)
                if not wrote and rolling_update_params(ds):
                    await self._rolling_update(ds, nodes, node_to_pods, hash_, generation)
                await self._cleanup_history(ds, old, node_to_pods)
            except ClientError as e:
                error = e  # still write the status, as upstream does, then retry
        # pods that finished and are being deleted no longer stand for their node
        counted = [p for p in self._owned_pods(ds) if not (is_deleting(p) and _status(p).get("phase") in ("Succeeded", "Failed"))]
        delay = await self._update_status(ds, nodes, group_by_node(counted), hash_, generation, observed)
        if delay is not None:
            again.append(delay)
        if error is not None:
            raise error
        return min(again) if again else None

    # ---- pods -----------------------------------------------------------------------

    def _owned_pods(self, ds: Obj) -> list[Obj]:
        return self.pods.by_index(CONTROLLER_UID_INDEX, str(meta(ds).get("uid")))

    async def _claim_pods(self, ds: Obj, selector: LabelSelector) -> list[Obj]:
        """Its pods, after adopting matching orphans and releasing those it stopped selecting."""
        candidates = self.pods.by_index(NAMESPACE_INDEX, meta(ds).get("namespace") or "")
        return await claim(
            self.client, "pods", ds, new_controller_ref(ds, "apps/v1", "DaemonSet"), selector,
            candidates, lambda: self._recheck_not_deleted(ds),
        )

    async def _recheck_not_deleted(self, ds: Obj) -> None:
        """Before adopting, a live read: a DaemonSet being deleted must not adopt (upstream #42639)."""
        m = meta(ds)
        fresh = await self.client.get("daemonsets.apps", m["name"], m.get("namespace"))
        if meta(fresh).get("uid") != m.get("uid") or is_deleting(fresh):
            raise _Stale(f"daemonset {m.get('namespace')}/{m['name']} is gone or being deleted; not adopting")

    async def _manage(
        self, ds: Obj, nodes: list[Obj], node_to_pods: dict[str, list[Obj]], hash_: str, generation: int | None
    ) -> tuple[bool, float | None]:
        """Create missing daemon pods and delete those that must go; (wrote anything, look again in)."""
        now = datetime.now(UTC)
        needing: list[str] = []
        to_delete: list[str] = []
        delays: list[float] = []
        observed_generation = _status(ds).get("observedGeneration") or 0
        for node in nodes:
            name = _name(node)
            plan = plan_node(node, node_to_pods.get(name) or [], ds, hash_, now)
            if plan.create:
                needing.append(name)
            to_delete.extend(plan.delete)
            for pod in plan.failed:
                # The kubelet may reject a pod over and over: back off per node, not hot-loop.
                backoff_key = f"{meta(ds).get('uid')}/{observed_generation}/{name}"
                if self.failed_pods_backoff.in_backoff(backoff_key):
                    delays.append(self.failed_pods_backoff.get(backoff_key))
                    continue
                self.failed_pods_backoff.next(backoff_key)
                await self.event(
                    ds, "FailedDaemonPod",
                    f"Found failed daemon pod {pod_key(pod)} on node {name}, will try to kill it", "Warning",
                )
                to_delete.append(_name(pod))
            for pod in plan.succeeded:
                await self.event(
                    ds, "SucceededDaemonPod",
                    f"Found succeeded daemon pod {pod_key(pod)} on node {name}, will try to delete it",
                )
        to_delete.extend(unscheduled_pods_without_node(nodes, node_to_pods))
        self.failed_pods_backoff.gc()
        if needing or to_delete:
            await self._sync_nodes(ds, to_delete, needing, hash_, generation)
        return bool(needing or to_delete), min(delays) if delays else None

    async def _rolling_update(
        self, ds: Obj, nodes: list[Obj], node_to_pods: dict[str, list[Obj]], hash_: str, generation: int | None
    ) -> None:
        try:
            to_delete, surge_onto = rolling_update_plan(ds, nodes, node_to_pods, hash_, generation, datetime.now(UTC))
        except ValueError as e:
            log.info("daemonset %s: %s", object_key(ds), e)
            return
        if to_delete or surge_onto:
            await self._sync_nodes(ds, to_delete, surge_onto, hash_, generation)

    async def _sync_nodes(
        self, ds: Obj, to_delete: list[str], needing: list[str], hash_: str, generation: int | None
    ) -> None:
        """Create pods on `needing` and delete `to_delete`, at most BURST_REPLICAS of each.

        Creations go in slow-start batches (1, 2, 4, ...): when one fails (a quota, a
        terminating namespace), the rest are not even tried, so one bad template costs
        one failed request rather than a storm of them and their events.
        """
        key = object_key(ds)
        namespace = meta(ds).get("namespace")
        creates = needing[:BURST_REPLICAS]
        deletes = list(dict.fromkeys(to_delete))[:BURST_REPLICAS]
        self.expectations.expect(key, len(creates), [f"{namespace}/{name}" for name in deletes])
        errors: list[BaseException] = []
        pos, batch = 0, min(len(creates), 1)
        while pos < len(creates):
            chunk = creates[pos:pos + batch]
            pos += len(chunk)
            results = await asyncio.gather(
                *(self._create_pod(ds, node, hash_, generation) for node in chunk), return_exceptions=True
            )
            failed = [r for r in results if isinstance(r, BaseException)]
            self.expectations.creation_observed(key, len(failed))
            errors.extend(f for f in failed if not _namespace_terminating(f))
            if failed:
                self.expectations.creation_observed(key, len(creates) - pos)  # never tried
                break
            batch = min(2 * batch, len(creates) - pos)
        results = await asyncio.gather(*(self._delete_pod(ds, name) for name in deletes), return_exceptions=True)
        for name, result in zip(deletes, results, strict=True):
            if isinstance(result, BaseException):
                self.expectations.deletion_observed(key, f"{namespace}/{name}")
                if not (isinstance(result, ApiError) and is_not_found(result)):
                    errors.append(result)
        if errors:
            raise errors[0]

    async def _create_pod(self, ds: Obj, node_name: str, hash_: str, generation: int | None) -> None:
        pod = daemon_pod(ds, node_name, hash_, generation)
        try:
            created = await self.client.create("pods", pod, meta(ds).get("namespace"))
        except ApiError as e:
            if not _namespace_terminating(e):
                await self.event(ds, "FailedCreate", f"Error creating: {e}", "Warning")
            raise
        await self.event(ds, "SuccessfulCreate", f"Created pod: {_name(created)}")

    async def _delete_pod(self, ds: Obj, name: str) -> None:
        try:
            await self.client.delete("pods", name, meta(ds).get("namespace"))
        except ApiError as e:
            if not is_not_found(e):
                await self.event(ds, "FailedDelete", f"Error deleting: {e}", "Warning")
            raise
        await self.event(ds, "SuccessfulDelete", f"Deleted pod: {name}")

    # ---- revisions ------------------------------------------------------------------

    async def _construct_history(self, ds: Obj, selector: LabelSelector) -> tuple[Obj, list[Obj]]:
        """The revision of the current template (created if new) and the older ones.

        As upstream constructHistory: a revision without the hash label gets its name as
        one, duplicates of the current template are folded into the newest, and a template
        that comes back (a rollback) gets its old revision renumbered as the newest.
        """
        candidates = self.revisions.by_index(NAMESPACE_INDEX, meta(ds).get("namespace") or "")
        revisions = await claim(
            self.client, "controllerrevisions.apps", ds, new_controller_ref(ds, "apps/v1", "DaemonSet"),
            selector, candidates, lambda: self._recheck_not_deleted(ds),
        )
        current: list[Obj] = []
        old: list[Obj] = []
        for rev in revisions:
            if CONTROLLER_REVISION_HASH_LABEL not in (meta(rev).get("labels") or {}):
                rev = copy.deepcopy(rev)
                rev["metadata"].setdefault("labels", {})[CONTROLLER_REVISION_HASH_LABEL] = _name(rev)
                rev = await self.client.update("controllerrevisions.apps", rev)
            (current if revision_matches(ds, rev) else old).append(rev)
        next_revision = max((int(r.get("revision") or 0) for r in old), default=0) + 1
        if not current:
            return await self._snapshot(ds, next_revision), old
        cur = await self._dedup_revisions(ds, current)
        if int(cur.get("revision") or 0) < next_revision:
            cur = copy.deepcopy(cur)
            cur["revision"] = next_revision
            cur = await self.client.update("controllerrevisions.apps", cur)
        return cur, old

    async def _snapshot(self, ds: Obj, revision: int) -> Obj:
        m = meta(ds)
        collision_count = _status(ds).get("collisionCount")
        template = _spec(ds).get("template") or {}
        hash_ = compute_hash(template, collision_count)
        name = revision_name(m["name"], hash_)
        labels = dict(meta(template).get("labels") or {})
        labels[CONTROLLER_REVISION_HASH_LABEL] = hash_
        body: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": name,
                "namespace": m.get("namespace"),
                "labels": labels,
                "ownerReferences": [new_controller_ref(ds, "apps/v1", "DaemonSet")],
            },
            "data": revision_data(ds),
            "revision": revision,
        }
        if m.get("annotations"):
            body["metadata"]["annotations"] = dict(m["annotations"])
        try:
            return await self.client.create("controllerrevisions.apps", body, m.get("namespace"))
        except ApiError as e:
            if not is_already_exists(e):
                raise
        existing = await self.client.get("controllerrevisions.apps", name, m.get("namespace"))
        if revision_matches(ds, existing):
            return existing
        # A different template hashed to the same name: bump collisionCount and retry.
        fresh = await self.client.get("daemonsets.apps", m["name"], m.get("namespace"))
        if _status(fresh).get("collisionCount") != collision_count:
            raise _Stale(f"daemonset {object_key(ds)}: stale collisionCount; retrying")
        fresh.setdefault("status", {})["collisionCount"] = int(collision_count or 0) + 1
        await self.client.update_status("daemonsets.apps", fresh)
        raise _Stale(f"daemonset {object_key(ds)}: revision name {name} collides; collisionCount bumped")

    async def _dedup_revisions(self, ds: Obj, current: list[Obj]) -> Obj:
        keep = max(current, key=lambda r: int(r.get("revision") or 0))
        if len(current) == 1:
            return keep
        keep_hash = (meta(keep).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL)
        for rev in current:
            if rev is keep:
                continue
            for pod in self._owned_pods(ds):
                if (meta(pod).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL) != keep_hash:
                    await self.client.patch(
                        "pods", _name(pod), {"metadata": {"labels": {CONTROLLER_REVISION_HASH_LABEL: keep_hash}}},
                        namespace=meta(pod).get("namespace"),
                    )
            await self._delete_revision(rev)
        return keep

    async def _delete_revision(self, rev: Obj) -> None:
        try:
            await self.client.delete("controllerrevisions.apps", _name(rev), meta(rev).get("namespace"))
        except ApiError as e:
            if not is_not_found(e):
                raise

    async def _cleanup_history(self, ds: Obj, old: list[Obj], node_to_pods: Mapping[str, list[Obj]]) -> None:
        """Delete the oldest revisions beyond revisionHistoryLimit that no pod still runs."""
        limit = _spec(ds).get("revisionHistoryLimit")
        to_kill = len(old) - int(limit if limit is not None else 10)
        if to_kill <= 0:
            return
        live = {
            (meta(p).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL)
            for pods in node_to_pods.values() for p in pods
        }
        for rev in sorted(old, key=lambda r: int(r.get("revision") or 0)):
            if to_kill <= 0:
                break
            if (meta(rev).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL) in live:
                continue
            await self._delete_revision(rev)
            to_kill -= 1

    # ---- status ---------------------------------------------------------------------

    async def _update_status(
        self,
        ds: Obj,
        nodes: list[Obj],
        node_to_pods: Mapping[str, list[Obj]],
        hash_: str,
        generation: int | None,
        observed: bool,
    ) -> float | None:
        """Write the counters (status last, and only when they changed); when to look again."""
        counts = daemonset_status(ds, nodes, node_to_pods, hash_, generation, datetime.now(UTC))
        status = _status(ds)
        meta_generation = int(meta(ds).get("generation") or 0)
        unchanged = all(int(status.get(k) or 0) == v for k, v in counts.items())
        if not (unchanged and int(status.get("observedGeneration") or 0) >= meta_generation):
            new = copy.deepcopy(ds)
            new_status = new.setdefault("status", {})
            for k, v in counts.items():
                if v or k in _REQUIRED_STATUS:
                    new_status[k] = v
                else:
                    new_status.pop(k, None)
            if observed:
                # not raised while the cache lags our writes: this generation is not handled yet
                new_status["observedGeneration"] = meta_generation
            await self.client.update_status("daemonsets.apps", new)
        min_ready = int(_spec(ds).get("minReadySeconds") or 0)
        if min_ready and counts["numberReady"] != counts["numberAvailable"]:
            return float(min_ready)
        return None


class _Stale(ClientError):
    """The cache or a count was behind; the key is retried with backoff."""


def _namespace_terminating(err: BaseException) -> bool:
    return isinstance(err, ApiError) and err.code == 403 and "being terminated" in str(err)
