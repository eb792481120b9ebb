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
stop qualifying or leave are deleted (upstream leaves pods bound to a vanished node to
the pod garbage collector; we have none, so the DaemonSet deletes its own).

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
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tuik8s.api.selectors import (
    LabelSelector,
    SelectorError,
    node_selector_term_matches,
    selector_from_spec,
)
from tuik8s.client.errors import ApiError, ClientError, is_already_exists, is_not_found
from tuik8s.client.informer import NAMESPACE_INDEX, namespace_index, object_key
from tuik8s.controllers.runner import Controller

log = logging.getLogger(__name__)

Obj = dict[str, Any]

CONTROLLER_REVISION_HASH_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
OWNER_INDEX = "daemonset-controller/owner-uid"

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

# rand.SafeEncodeString's alphabet: no vowels, no look-alikes
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# ---- pods in general (shared with the Job controller) ---------------------------------------


def _meta(obj: Mapping[str, Any]) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(obj: Mapping[str, Any]) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _status(obj: Mapping[str, Any]) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp of the API (`2024-05-01T10:00:00Z`), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_condition(pod: Mapping[str, Any], kind: str) -> Obj | None:
    for cond in _status(pod).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    cond = pod_condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def is_pod_available(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime) -> bool:
    """Ready for at least `min_ready_seconds` (upstream podutil.IsPodAvailable)."""
    cond = pod_condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return False
    if not min_ready_seconds:
        return True
    since = parse_time(cond.get("lastTransitionTime"))
    return since is not None and since + timedelta(seconds=min_ready_seconds) <= now


def is_terminating(obj: Mapping[str, Any]) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def controller_ref(obj: Mapping[str, Any]) -> Obj | None:
    """The ownerReference with `controller: true`, if any."""
    for ref in _meta(obj).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def new_controller_ref(owner: Mapping[str, Any], api_version: str, kind: str) -> Obj:
    meta = _meta(owner)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owner_uid_index(api_version: str, kind: str) -> Callable[[Obj], list[str]]:
    """An index function: the uid of the object's controller when it is an `api_version/kind`."""

    def index(obj: Obj) -> list[str]:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != kind or ref.get("apiVersion") != api_version:
            return []
        return [str(ref.get("uid") or "")]

    return index


def creation_sort_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = _meta(obj)
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


class Expectations:
    """Pod creations and deletions a controller issued that its cache has not shown yet.

    Upstream's ControllerExpectations, keyed by the owner's key. `set` before writing;
    the pod informer's handlers call `creation_observed`/`deletion_observed`; a write
    that failed is lowered at once. `satisfied` is true when all were seen, or after
    `ttl` seconds (a watch event lost for good must not stall the owner forever).
    """

    def __init__(self, ttl: float = EXPECTATIONS_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._pending: dict[str, tuple[int, int, float]] = {}

    def set(self, key: str, adds: int, deletes: int) -> None:
        self._pending[key] = (adds, deletes, self.clock())

    def lower(self, key: str, adds: int, deletes: int) -> None:
        item = self._pending.get(key)
        if item is not None:
            self._pending[key] = (item[0] - adds, item[1] - deletes, item[2])

    def creation_observed(self, key: str) -> None:
        self.lower(key, 1, 0)

    def deletion_observed(self, key: str) -> None:
        self.lower(key, 0, 1)

    def satisfied(self, key: str) -> bool:
        item = self._pending.get(key)
        if item is None:
            return True
        adds, deletes, since = item
        return (adds <= 0 and deletes <= 0) or self.clock() - since > self.ttl

    def time_left(self, key: str) -> float | None:
        """Seconds until `key`'s expectations expire, if they are pending."""
        item = self._pending.get(key)
        if item is None or self.satisfied(key):
            return None
        return max(0.0, self.ttl - (self.clock() - item[2]))

    def delete(self, key: str) -> None:
        self._pending.pop(key, None)


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


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """v1.Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def untolerated_taint(
    taints: Iterable[Mapping[str, Any]], tolerations: Iterable[Mapping[str, Any]], effects: tuple[str, ...]
) -> Mapping[str, Any] | None:
    """The first taint with one of `effects` that no toleration tolerates."""
    tolerations = [t for t in tolerations if isinstance(t, Mapping)]
    for taint in taints:
        if not isinstance(taint, Mapping) or taint.get("effect") not in effects:
            continue
        if not any(tolerates(t, taint) for t in tolerations):
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
    labels = _meta(node).get("labels") or {}
    selector = pod_spec.get("nodeSelector") or {}
    if isinstance(selector, Mapping) and any(labels.get(k) != v for k, v in selector.items()):
        return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    terms = required.get("nodeSelectorTerms") if isinstance(required, Mapping) else None
    fields = {"metadata.name": str(_meta(node).get("name") or "")}
    return any(node_selector_term_matches(term, labels, fields) for term in terms or ())


def node_should_run_daemon_pod(node: Mapping[str, Any], ds: Mapping[str, Any]) -> tuple[bool, bool]:
    """(shouldRun, shouldContinueRunning) of upstream's NodeShouldRunDaemonPod.

    shouldRun: a node without the pod should get one. shouldContinueRunning: a pod
    already there may stay (only an untolerated NoExecute taint evicts it).
    """
    pod_spec = copy.deepcopy(_spec(_spec(ds).get("template") or {}))
    node_name = _meta(node).get("name")
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


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: a string of harmless characters (no vowels, no 0/1/3)."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def compute_hash(template: Any, collision_count: int | None = None) -> str:
    """The template's hash, as upstream's controller.ComputeHash shapes it.

    FNV-32a of the template (here its canonical JSON; upstream hashes Go's dump of the
    struct, so the values differ from a real cluster's) and of the collision count as
    four little-endian bytes, written in the safe alphabet.
    """
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += int(collision_count & 0xFFFFFFFF).to_bytes(4, "little")
    return safe_encode(str(_fnv32a(data)))


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
    value = (_meta(ds).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def is_pod_updated(pod: Mapping[str, Any], hash_: str, generation: int | None) -> bool:
    """Whether a pod is of the current template: by revision hash or template generation."""
    labels = _meta(pod).get("labels") or {}
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
        plan.delete = [_meta(p)["name"] for p in pods if not is_terminating(p)]
        return plan
    running: list[Obj] = []
    for pod in pods:
        if is_terminating(pod):
            continue
        phase = _status(pod).get("phase")
        if phase == "Failed":
            plan.failed.append(pod)
        elif phase == "Succeeded":
            plan.succeeded.append(pod)
            plan.delete.append(_meta(pod)["name"])
        else:
            running.append(pod)
    running.sort(key=daemon_pod_order)
    if not allows_surge(ds):
        plan.delete.extend(_meta(p)["name"] for p in running[1:])
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
        if (_meta(pod).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL) == hash_:
            if oldest_new is None:
                oldest_new = pod
                continue
        elif oldest_old is None:
            oldest_old = pod
            continue
        plan.delete.append(_meta(pod)["name"])
    if oldest_new is not None and oldest_old is not None:
        min_ready = int(_spec(ds).get("minReadySeconds") or 0)
        if not is_pod_ready(oldest_old) or is_pod_available(oldest_new, min_ready, now):
            plan.delete.append(_meta(oldest_old)["name"])
    return plan


def unscheduled_pods_without_node(nodes: Iterable[Mapping[str, Any]], node_to_pods: Mapping[str, list[Obj]]) -> list[str]:
    """Pods waiting for a node that no longer exists: nobody else will ever delete them."""
    names = {_meta(n).get("name") for n in nodes}
    return [
        _meta(p)["name"]
        for node, pods in node_to_pods.items() if node not in names
        for p in pods if not _spec(p).get("nodeName")
    ]


def bound_pods_without_node(nodes: Iterable[Mapping[str, Any]], node_to_pods: Mapping[str, list[Obj]]) -> list[str]:
    """Pods bound to a deleted node (upstream's pod GC deletes those; we have none)."""
    names = {_meta(n).get("name") for n in nodes}
    return [
        _meta(p)["name"]
        for node, pods in node_to_pods.items() if node not in names
        for p in pods if _spec(p).get("nodeName") and not is_terminating(p)
    ]


def _updated_pods_on_node(
    pods: list[Obj], hash_: str, generation: int | None
) -> tuple[Obj | None, Obj | None, bool]:
    """(new pod, old pod, ok) of a node; not ok when it holds two of either kind."""
    new = old = None
    for pod in pods:
        if is_terminating(pod):
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
        name = _meta(node)["name"]
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
                    replace.append(_meta(old)["name"])
                elif unavailable < max_unavailable:
                    candidates.append(_meta(old)["name"])
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
                to_delete.append(_meta(old)["name"])
            elif not available(old):
                allowed.append(name)
            elif surging < max_surge:
                candidate_nodes.append(name)
        elif not available(new):
            surging += 1
        else:
            to_delete.append(_meta(old)["name"])
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
        pods = node_to_pods.get(_meta(node)["name"]) or []
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
    template_meta = _meta(template)
    spec = _spec(template)
    add_daemon_tolerations(spec)
    spec["affinity"] = node_name_affinity(spec.get("affinity"), node_name)
    labels = dict(template_meta.get("labels") or {})
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = str(generation)
    if hash_:
        labels[CONTROLLER_REVISION_HASH_LABEL] = hash_
    ds_meta = _meta(ds)
    meta: Obj = {
        "generateName": f"{ds_meta.get('name')}-",
        "namespace": ds_meta.get("namespace"),
        "labels": labels,
        "ownerReferences": [new_controller_ref(ds, "apps/v1", "DaemonSet")],
    }
    for key in ("annotations", "finalizers"):
        if template_meta.get(key):
            meta[key] = copy.deepcopy(template_meta[key])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


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
        index = owner_uid_index("apps/v1", "DaemonSet")
        for inf in (self.pods, self.revisions, self.daemonsets):
            inf.add_index(NAMESPACE_INDEX, namespace_index)
        self.pods.add_index(OWNER_INDEX, index)
        self.revisions.add_index(OWNER_INDEX, index)
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
        if ds is None or _meta(ds).get("uid") != ref.get("uid"):
            return None
        return ds

    def _selecting(self, obj: Obj) -> list[Obj]:
        """DaemonSets in the object's namespace whose selector picks it (orphan adoption)."""
        meta = _meta(obj)
        labels = meta.get("labels") or {}
        found = []
        for ds in self.daemonsets.by_index(NAMESPACE_INDEX, meta.get("namespace") or ""):
            try:
                selector = selector_from_spec(_spec(ds).get("selector"))
            except SelectorError:
                continue
            if not selector.empty() and selector.matches(labels):
                found.append(ds)
        return found

    def _enqueue_controller(self, obj: Obj) -> None:
        ds = self._resolve(_meta(obj).get("namespace"), controller_ref(obj))
        if ds is not None:
            self.enqueue(ds)

    def _pod_added(self, pod: Obj) -> None:
        if is_terminating(pod):
            self._pod_deleted(pod)
            return
        ds = self._resolve(_meta(pod).get("namespace"), controller_ref(pod))
        if ds is not None:
            key = object_key(ds)
            self.expectations.creation_observed(key)
            self.queue.add(key)
            return
        if controller_ref(pod) is None:
            for ds in self._selecting(pod):
                self.enqueue(ds)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if _meta(old).get("resourceVersion") == _meta(new).get("resourceVersion"):
            return
        if is_terminating(new):
            self._pod_deleted(new)
            return
        namespace = _meta(new).get("namespace")
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
        if old_ref != new_ref or _meta(old).get("labels") != _meta(new).get("labels"):
            for ds in self._selecting(new):
                self.enqueue(ds)

    def _pod_deleted(self, pod: Obj) -> None:
        ds = self._resolve(_meta(pod).get("namespace"), controller_ref(pod))
        if ds is None:
            return
        key = object_key(ds)
        self.expectations.deletion_observed(key)
        self.queue.add(key)

    def _node_added(self, node: Obj) -> None:
        for ds in self.daemonsets.list():
            if node_should_run_daemon_pod(node, ds)[0]:
                self.enqueue(ds)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if _spec(old) == _spec(new) and _meta(old).get("labels") == _meta(new).get("labels"):
            return  # a heartbeat: what decides eligibility did not change
        for ds in self.daemonsets.list():
            if node_should_run_daemon_pod(old, ds) != node_should_run_daemon_pod(new, ds):
                self.enqueue(ds)

    def _node_deleted(self, node: Obj) -> None:
        for ds in self.daemonsets.list():
            self.enqueue(ds)

    # ---- reconcile ------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        ds = self.daemonsets.get(key)
        if ds is None:
            self.expectations.delete(key)
            return None
        spec = _spec(ds)
        if _is_empty_selector(spec.get("selector")):
            await self.event(ds, "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.", "Warning")
            return None
        if is_terminating(ds):
            # its revisions may already be gone: no status we could compute is trustworthy
            return None
        try:
            selector = selector_from_spec(spec.get("selector"))
        except SelectorError as e:
            log.info("daemonset %s: invalid selector: %s", key, e)
            return None
        nodes = self.nodes.list()
        current, old = await self._construct_history(ds, selector)
        hash_ = (_meta(current).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL, "")
        generation = template_generation(ds)
        if generation is None:
            # upstream's API server keeps spec.templateGeneration; ours does not, and the
            # current revision number moves exactly when the template does
            generation = int(current.get("revision") or 0) or None

        again: list[float] = []
        error: BaseException | None = None
        if not self.expectations.satisfied(key):
            left = self.expectations.time_left(key)
            if left is not None:
                again.append(left)
            observed = False
        else:
            observed = True
            try:
                node_to_pods = self._group_by_node(await self._claim_pods(ds, selector))
                wrote, delay = await self._manage(ds, nodes, node_to_pods, hash_, generation)
                if delay is not None:
                    again.append(delay)
                if not wrote and self.expectations.satisfied(key) and rolling_update_params(ds):
                    await self._rolling_update(ds, nodes, node_to_pods, hash_, generation)
                await self._cleanup_history(ds, old, node_to_pods)
            except ClientError as e:
                error = e
        node_to_pods = self._group_by_node(self._owned_pods(ds))
        delay = await self._update_status(ds, nodes, node_to_pods, hash_, generation, observed)
        if delay is not None:
            again.append(delay)
        if error is not None:
            raise error
        return min(again) if again else None

    # ---- pods -----------------------------------------------------------------------

    def _owned_pods(self, ds: Obj) -> list[Obj]:
        return self.pods.by_index(OWNER_INDEX, str(_meta(ds).get("uid")))

    async def _claim_pods(self, ds: Obj, selector: LabelSelector) -> list[Obj]:
        """The DaemonSet's pods: those it controls and still selects, plus orphans it adopts.

        Pods it controls but no longer selects are released (upstream ClaimPods).
        """
        uid = _meta(ds).get("uid")
        claimed: list[Obj] = []
        for pod in self.pods.by_index(NAMESPACE_INDEX, _meta(ds).get("namespace") or ""):
            ref = controller_ref(pod)
            labels = _meta(pod).get("labels") or {}
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if selector.matches(labels):
                    claimed.append(pod)
                else:
                    await self._patch_owner(ds, "pods", pod, adopt=False)
                continue
            if is_terminating(pod) or not selector.matches(labels):
                continue
            if await self._patch_owner(ds, "pods", pod, adopt=True):
                claimed.append(pod)
        return claimed

    async def _patch_owner(self, ds: Obj, resource: str, obj: Obj, adopt: bool) -> bool:
        """Adopt (add our controller reference) or release an object; False if it is gone."""
        meta = _meta(obj)
        if adopt:
            await self._recheck_not_deleted(ds)
            refs: list[Obj] = [new_controller_ref(ds, "apps/v1", "DaemonSet")]
        else:
            refs = [{"$patch": "delete", "uid": _meta(ds).get("uid")}]
        patch = {"metadata": {"ownerReferences": refs, "uid": meta.get("uid")}}
        try:
            await self.client.patch(resource, meta["name"], patch, namespace=meta.get("namespace"), patch_type="strategic")
        except ApiError as e:
            if is_not_found(e):
                return False
            raise
        return True

    async def _recheck_not_deleted(self, ds: Obj) -> None:
        """Before adopting, a live read: a DaemonSet being deleted must not adopt (upstream #42639)."""
        meta = _meta(ds)
        fresh = await self.client.get("daemonsets.apps", meta["name"], meta.get("namespace"))
        if _meta(fresh).get("uid") != meta.get("uid") or is_terminating(fresh):
            raise _Stale(f"daemonset {meta.get('namespace')}/{meta['name']} is gone or being deleted; not adopting")

    @staticmethod
    def _group_by_node(pods: list[Obj]) -> dict[str, list[Obj]]:
        grouped: dict[str, list[Obj]] = {}
        for pod in pods:
            node = target_node_name(pod)
            if node:
                grouped.setdefault(node, []).append(pod)
        return grouped

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
            name = _meta(node)["name"]
            plan = plan_node(node, node_to_pods.get(name) or [], ds, hash_, now)
            if plan.create:
                needing.append(name)
            to_delete.extend(plan.delete)
            for pod in plan.failed:
                # The kubelet may reject a pod over and over: back off per node, not hot-loop.
                backoff_key = f"{_meta(ds).get('uid')}/{observed_generation}/{name}"
                if self.failed_pods_backoff.in_backoff(backoff_key):
                    delays.append(self.failed_pods_backoff.get(backoff_key))
                    continue
                self.failed_pods_backoff.next(backoff_key)
                pod_meta = _meta(pod)
                await self.event(
                    ds, "FailedDaemonPod",
                    f"Found failed daemon pod {pod_meta.get('namespace')}/{pod_meta['name']} on node {name}, will try to kill it",
                    "Warning",
                )
                to_delete.append(pod_meta["name"])
            for pod in plan.succeeded:
                pod_meta = _meta(pod)
                await self.event(
                    ds, "SucceededDaemonPod",
                    f"Found succeeded daemon pod {pod_meta.get('namespace')}/{pod_meta['name']} on node {name}, will try to delete it",
                )
        to_delete.extend(unscheduled_pods_without_node(nodes, node_to_pods))
        to_delete.extend(bound_pods_without_node(nodes, node_to_pods))
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
        creates = needing[:BURST_REPLICAS]
        deletes = list(dict.fromkeys(to_delete))[:BURST_REPLICAS]
        self.expectations.set(key, len(creates), len(deletes))
        errors: list[BaseException] = []
        pos, batch = 0, min(len(creates), 1)
        while pos < len(creates):
            chunk = creates[pos:pos + batch]
            pos += len(chunk)
            results = await asyncio.gather(
                *(self._create_pod(ds, node, hash_, generation) for node in chunk), return_exceptions=True
            )
            failed = [r for r in results if isinstance(r, BaseException)]
            for failure in failed:
                self.expectations.creation_observed(key)
                if not _namespace_terminating(failure):
                    errors.append(failure)
            if failed:
                self.expectations.lower(key, len(creates) - pos, 0)
                break
            batch = min(2 * batch, len(creates) - pos)
        results = await asyncio.gather(*(self._delete_pod(ds, name) for name in deletes), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                self.expectations.deletion_observed(key)
                if not (isinstance(result, ApiError) and is_not_found(result)):
                    errors.append(result)
        if errors:
            raise errors[0]

    async def _create_pod(self, ds: Obj, node_name: str, hash_: str, generation: int | None) -> None:
        pod = daemon_pod(ds, node_name, hash_, generation)
        try:
            created = await self.client.create("pods", pod, _meta(ds).get("namespace"))
        except ApiError as e:
            if not _namespace_terminating(e):
                await self.event(ds, "FailedCreate", f"Error creating: {e}", "Warning")
            raise
        await self.event(ds, "SuccessfulCreate", f"Created pod: {_meta(created).get('name')}")

    async def _delete_pod(self, ds: Obj, name: str) -> None:
        try:
            await self.client.delete("pods", name, _meta(ds).get("namespace"))
        except ApiError as e:
            if not is_not_found(e):
                await self.event(ds, "FailedDelete", f"Error deleting: {e}", "Warning")
            raise
        await self.event(ds, "SuccessfulDelete", f"Deleted pod: {name}")

    # ---- revisions ------------------------------------------------------------------

    async def _claim_revisions(self, ds: Obj, selector: LabelSelector) -> list[Obj]:
        uid = _meta(ds).get("uid")
        claimed: list[Obj] = []
        for rev in self.revisions.by_index(NAMESPACE_INDEX, _meta(ds).get("namespace") or ""):
            ref = controller_ref(rev)
            labels = _meta(rev).get("labels") or {}
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if selector.matches(labels):
                    claimed.append(rev)
                else:
                    await self._patch_owner(ds, "controllerrevisions.apps", rev, adopt=False)
                continue
            if is_terminating(rev) or not selector.matches(labels):
                continue
            if await self._patch_owner(ds, "controllerrevisions.apps", rev, adopt=True):
                claimed.append(rev)
        return claimed

    async def _construct_history(self, ds: Obj, selector: LabelSelector) -> tuple[Obj, list[Obj]]:
        """The revision of the current template (created if new) and the older ones.

        As upstream constructHistory: a revision without the hash label gets its name as
        one, duplicates of the current template are folded into the newest, and a template
        that comes back (a rollback) gets its old revision renumbered as the newest.
        """
        current: list[Obj] = []
        old: list[Obj] = []
        for rev in await self._claim_revisions(ds, selector):
            labels = _meta(rev).get("labels") or {}
            if CONTROLLER_REVISION_HASH_LABEL not in labels:
                rev = copy.deepcopy(rev)
                rev["metadata"].setdefault("labels", {})[CONTROLLER_REVISION_HASH_LABEL] = rev["metadata"]["name"]
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
        meta = _meta(ds)
        collision_count = _status(ds).get("collisionCount")
        hash_ = compute_hash(_spec(ds).get("template") or {}, collision_count)
        name = revision_name(meta["name"], hash_)
        labels = dict(_meta(_spec(ds).get("template") or {}).get("labels") or {})
        labels[CONTROLLER_REVISION_HASH_LABEL] = hash_
        body: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": name,
                "namespace": meta.get("namespace"),
                "labels": labels,
                "ownerReferences": [new_controller_ref(ds, "apps/v1", "DaemonSet")],
            },
            "data": revision_data(ds),
            "revision": revision,
        }
        if meta.get("annotations"):
            body["metadata"]["annotations"] = dict(meta["annotations"])
        try:
            return await self.client.create("controllerrevisions.apps", body, meta.get("namespace"))
        except ApiError as e:
            if not is_already_exists(e):
                raise
        existing = await self.client.get("controllerrevisions.apps", name, meta.get("namespace"))
        if revision_matches(ds, existing):
            return existing
        # A different template hashed to the same name: bump collisionCount and retry.
        fresh = await self.client.get("daemonsets.apps", meta["name"], meta.get("namespace"))
        if _status(fresh).get("collisionCount") != collision_count:
            raise _Stale(f"daemonset {object_key(ds)}: stale collisionCount; retrying")
        fresh.setdefault("status", {})["collisionCount"] = int(collision_count or 0) + 1
        await self.client.update_status("daemonsets.apps", fresh)
        raise _Stale(f"daemonset {object_key(ds)}: revision name {name} collides; collisionCount bumped")

    async def _dedup_revisions(self, ds: Obj, current: list[Obj]) -> Obj:
        keep = max(current, key=lambda r: int(r.get("revision") or 0))
        if len(current) == 1:
            return keep
        keep_hash = (_meta(keep).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL)
        for rev in current:
            if rev is keep:
                continue
            for pod in self._owned_pods(ds):
                if (_meta(pod).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL) != keep_hash:
                    pod_meta = _meta(pod)
                    await self.client.patch(
                        "pods", pod_meta["name"], {"metadata": {"labels": {CONTROLLER_REVISION_HASH_LABEL: keep_hash}}},
                        namespace=pod_meta.get("namespace"),
                    )
            await self._delete_revision(rev)
        return keep

    async def _delete_revision(self, rev: Obj) -> None:
        meta = _meta(rev)
        try:
            await self.client.delete("controllerrevisions.apps", meta["name"], meta.get("namespace"))
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
            (_meta(p).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL)
            for pods in node_to_pods.values() for p in pods
        }
        for rev in sorted(old, key=lambda r: int(r.get("revision") or 0)):
            if to_kill <= 0:
                break
            if (_meta(rev).get("labels") or {}).get(CONTROLLER_REVISION_HASH_LABEL) in live:
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
        meta_generation = int(_meta(ds).get("generation") or 0)
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
