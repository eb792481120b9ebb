"""Node lifecycle: heartbeats → NotReady → taints → eviction, and pods of vanished nodes.

Three upstream controllers in one, as kube-controller-manager runs them side by side:

**Node health** (upstream's node lifecycle controller). Every `node_monitor_period` the
controller looks at every Node: a kubelet proves it lives by renewing its Lease (or by
posting its Ready condition). The controller notes *on its own clock* when it last saw
either move — never trusting the kubelet's clock — and once that is older than
`node_monitor_grace`, it sets Ready, MemoryPressure, DiskPressure and PIDPressure to
Unknown ("Kubelet stopped posting node status."), records NodeNotReady and marks the
node's pods not Ready. A node seen for the first time gets a full grace period from
that moment, so a controller restart never condemns a healthy node.

**Taints.** Conditions become NoSchedule taints at once (Ready False → not-ready, Ready
Unknown → unreachable, pressures, spec.unschedulable). The matching NoExecute taints are
added through a per-zone rate-limited queue (`node_eviction_rate` nodes per second, 0.1
upstream): a network partition that takes out a zone must not evict everything at once.
Zones are judged as upstream does: in *partial disruption* (≥ 55 % and more than two
nodes not Ready) eviction slows down (or stops in a small cluster); when *every* zone is
fully disrupted the fault is more likely the control plane's own network, so NoExecute
taints are removed and nothing is evicted until some node is Ready again.

**Taint eviction** (upstream's taint manager). A pod on a node with NoExecute taints is
deleted once its tolerations run out: at once if it tolerates them not at all, after the
smallest `tolerationSeconds` of the tolerations used, never if those tolerate forever.
Upstream's DefaultTolerationSeconds admission gives every pod 300 s tolerations for
not-ready and unreachable; this API server does not, so pods without one are treated as
if they had `default_toleration_seconds`. The clock starts when the taint was added
(`timeAdded`), so a controller restart does not give pods a fresh toleration.

**Pod GC** (upstream's podgc, orphan part). A pod bound to a Node that no longer exists is
marked Failed with a DisruptionTarget condition and force-deleted, after a quarantine and
a live read of the Node, so a pod bound to a Node the cache has not seen yet survives.

Timings come from `Timings` (node_monitor_grace, node_monitor_period,
default_toleration_seconds); `Timings.extra` may set node_startup_grace (60 s),
node_eviction_rate (0.1/s), secondary_node_eviction_rate (0.01/s),
large_cluster_size_threshold (50), unhealthy_zone_threshold (0.55), pod_gc_period (half
the grace; upstream 20 s) and pod_gc_quarantine (the grace; upstream 40 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tuik8s.api.taints import tolerates
from tuik8s.client.errors import ApiError, ClientError, is_conflict, is_not_found
from tuik8s.client.informer import object_key
from tuik8s.controllers.runner import Controller

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_INDEX = "spec.nodeName"

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
# {condition type: {status: taint key}} (upstream nodeConditionToTaintKeyStatusMap)
CONDITION_TAINTS: dict[str, dict[str, str]] = {
    "Ready": {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
_CONDITION_TAINT_KEYS = {key for by_status in CONDITION_TAINTS.values() for key in by_status.values()}
# conditions set to Unknown when the kubelet goes quiet (NetworkUnavailable is not the kubelet's)
_KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
EXCLUDE_DISRUPTION_LABEL = "node.kubernetes.io/exclude-disruption"

# upstream defaults: --node-startup-grace-period, --node-eviction-rate,
# --secondary-node-eviction-rate, --large-cluster-size-threshold, --unhealthy-zone-threshold
NODE_STARTUP_GRACE = 60.0
NODE_EVICTION_RATE = 0.1
SECONDARY_NODE_EVICTION_RATE = 0.01
LARGE_CLUSTER_SIZE = 50
UNHEALTHY_ZONE_THRESHOLD = 0.55
TAINTING_PERIOD = 0.1  # upstream NodeEvictionPeriod
MONITOR_PARALLELISM = 8

INITIAL, NORMAL, PARTIAL, FULL = "Initial", "Normal", "PartialDisruption", "FullDisruption"

NODE_COMPONENT = "node-controller"
TAINT_COMPONENT = "taint-eviction-controller"


# --- pure helpers ------------------------------------------------------------------------------


def _now() -> float:
    return time.time()


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def condition(obj: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == ctype:
            return c
    return None


def ready_status(node: Mapping[str, Any]) -> str | None:
    """The Ready condition's status (True/False/Unknown), None when never posted."""
    cond = condition(node, "Ready")
    return str(cond.get("status")) if cond is not None else None


def taints_of(node: Mapping[str, Any]) -> list[Obj]:
    return [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]


def has_taint(node: Mapping[str, Any], key: str, effect: str) -> bool:
    return any(t.get("key") == key and t.get("effect") == effect for t in taints_of(node))


def zone_key(node: Mapping[str, Any]) -> str:
    """Upstream GetZoneKey: region and zone from the topology labels, "" without them."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    region = labels.get("topology.kubernetes.io/region") or labels.get("failure-domain.beta.kubernetes.io/region") or ""
    zone = labels.get("topology.kubernetes.io/zone") or labels.get("failure-domain.beta.kubernetes.io/zone") or ""
    return f"{region}:\x00:{zone}" if region or zone else ""


def wanted_noschedule_taints(node: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, NoSchedule) taints the node's conditions and spec.unschedulable call for."""
    out = []
    for c in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TAINTS.get(str(c.get("type")), {}).get(str(c.get("status")))
        if key:
            out.append((key, "NoSchedule"))
    if (node.get("spec") or {}).get("unschedulable"):
        out.append((TAINT_UNSCHEDULABLE, "NoSchedule"))
    return out


def effective_tolerations(pod: Mapping[str, Any], default_seconds: int) -> list[Mapping[str, Any]]:
    """The pod's tolerations plus what DefaultTolerationSeconds admission would add: a
    `default_seconds` toleration for not-ready and unreachable NoExecute unless the pod
    already tolerates that taint."""
    own = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if isinstance(t, Mapping)]
    out = list(own)
    for key in (TAINT_NOT_READY, TAINT_UNREACHABLE):
        probe = {"key": key, "effect": "NoExecute"}
        if not any(tolerates(t, probe) for t in own):
            out.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": default_seconds})
    return out


def min_toleration_seconds(taints: Iterable[Mapping[str, Any]], tolerations: list[Mapping[str, Any]]) -> float | None:
    """Seconds the pod may stay: 0 if some taint is not tolerated, None if forever.

    As upstream: each taint uses the first toleration that tolerates it; the pod goes
    when the shortest of those runs out (negative counts as 0).
    """
    shortest: float | None = None
    for taint in taints:
        used = next((t for t in tolerations if tolerates(t, taint)), None)
        if used is None:
            return 0.0
        seconds = used.get("tolerationSeconds")
        if seconds is None:
            continue
        value = max(0.0, float(seconds))
        shortest = value if shortest is None else min(shortest, value)
    return shortest


def zone_state(ready: list[str | None], threshold: float = UNHEALTHY_ZONE_THRESHOLD) -> tuple[int, str]:
    """(not-ready count, state) of a zone from its nodes' Ready statuses (ComputeZoneState)."""
    ready_nodes = sum(1 for r in ready if r == "True")
    not_ready = len(ready) - ready_nodes
    if ready_nodes == 0 and not_ready > 0:
        return not_ready, FULL
    if not_ready > 2 and not_ready / (not_ready + ready_nodes) >= threshold:
        return not_ready, PARTIAL
    return not_ready, NORMAL


def node_event_ref(node: Mapping[str, Any]) -> Obj:
    """Node events carry the node's name as UID: that is what `kubectl describe node` finds."""
    name = (node.get("metadata") or {}).get("name")
    return {"apiVersion": "v1", "kind": "Node", "name": name, "uid": name}


class TokenBucket:
    """`qps` tokens a second, burst 1: upstream's eviction limiter. qps 0 never allows."""

    def __init__(self, qps: float) -> None:
        self.qps = qps
        self._tokens = 1.0
        self._at = time.monotonic()

    def try_take(self) -> bool:
        if self.qps <= 0:
            return False
        now = time.monotonic()
        self._tokens = min(1.0, self._tokens + (now - self._at) * self.qps)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass
class _Health:
    """What the controller saw of a node, on its own clock (upstream nodeHealthData)."""

    probe: float
    ready_heartbeat: Any = None
    lease_renew: float | None = None


@dataclass
class _Zone:
    state: str = INITIAL
    limiter: TokenBucket = field(default_factory=lambda: TokenBucket(NODE_EVICTION_RATE))
    pending: dict[str, None] = field(default_factory=dict)  # nodes to taint NoExecute, FIFO


# --- the controller ------------------------------------------------------------------------------


class NodeLifecycleController(Controller):
    """Node health, condition taints, taint-based eviction and orphan pod GC."""

    name = "nodelifecycle"
    workers = 4

    def setup(self) -> None:
        t = self.ctx.timings
        self.grace = float(t.node_monitor_grace)
        self.period = float(t.node_monitor_period)
        self.default_toleration = int(t.default_toleration_seconds)
        self.startup_grace = float(t.extra.get("node_startup_grace", NODE_STARTUP_GRACE))
        self.eviction_qps = float(t.extra.get("node_eviction_rate", NODE_EVICTION_RATE))
        self.secondary_qps = float(t.extra.get("secondary_node_eviction_rate", SECONDARY_NODE_EVICTION_RATE))
        self.large_cluster = int(t.extra.get("large_cluster_size_threshold", LARGE_CLUSTER_SIZE))
        self.unhealthy_threshold = float(t.extra.get("unhealthy_zone_threshold", UNHEALTHY_ZONE_THRESHOLD))
        # upstream podgc: every 20 s, quarantine 40 s = the grace period; scaled with it here
        self.podgc_period = float(t.extra.get("pod_gc_period", self.grace / 2))
        self.podgc_quarantine = float(t.extra.get("pod_gc_quarantine", self.grace))

        self.nodes = self.informer("nodes")
        self.leases = self.informer("leases", namespace=NODE_LEASE_NAMESPACE)
        self.pods = self.informer("pods")
        self.pods.add_index(NODE_INDEX, lambda p: [n] if (n := (p.get("spec") or {}).get("nodeName")) else [])

        self._health: dict[str, _Health] = {}
        self._known: dict[str, Obj] = {}
        self._zones: dict[str, _Zone] = {}
        self._retry_not_ready: set[str] = set()
        self._scheduled: dict[str, float] = {}  # pod key -> when its eviction clock started
        self._orphans: dict[str, float] = {}  # pod key -> when first seen without its node
        # Tainting waits for a whole health pass: a node queued early in a pass must not
        # be tainted before the pass ends and finds every zone down (no evictions then).
        self._pass_lock = asyncio.Lock()

        self.nodes.add_handler(self._node_added, self._node_updated, None)
        self.pods.add_handler(lambda p: self._pod_updated(None, p), self._pod_updated, self._pod_deleted)

    # ---- handlers: enqueue keys only ----------------------------------------------

    def _node_added(self, node: Obj) -> None:
        self.queue.add("node:" + object_key(node))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        self.queue.add("node:" + object_key(new))
        if _noexecute(old) != _noexecute(new):
            for key in self.pods.index_keys(NODE_INDEX, object_key(new)):
                self.queue.add("pod:" + key)

    def _pod_updated(self, old: Obj | None, new: Obj) -> None:
        node_name = (new.get("spec") or {}).get("nodeName")
        if not node_name:
            return
        key = object_key(new)
        node = self.nodes.get(node_name)
        if node is not None and (_noexecute(node) or key in self._scheduled):
            self.queue.add("pod:" + key)
        if old is None or (old.get("spec") or {}).get("nodeName") != node_name:
            # a pod newly bound to a node that is not Ready is not Ready either (processPod)
            self.queue.add("ready:" + key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = object_key(pod)
        self._scheduled.pop(key, None)
        self._orphans.pop(key, None)

    # ---- the loops ------------------------------------------------------------------

    async def run(self) -> None:
        await self.ctx.informers.wait_synced()
        loops = [
            asyncio.create_task(super().run(), name="nodelifecycle-workers"),
            asyncio.create_task(self._every(self.period, self.monitor_node_health), name="nodelifecycle-monitor"),
            asyncio.create_task(self._every(TAINTING_PERIOD, self.noexecute_tainting_pass), name="nodelifecycle-tainter"),
            asyncio.create_task(self._every(self.podgc_period, self.gc_orphaned_pods), name="podgc"),
        ]
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in loops:
                task.cancel()
            for task in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    @staticmethod
    async def _every(period: float, fn: Any) -> None:
        while True:
            started = time.monotonic()
            try:
                await fn()
            except ClientError as e:
                log.info("nodelifecycle: %s: %s", getattr(fn, "__name__", fn), e)
            except Exception:  # noqa: BLE001 - the loop must survive a bad pass
                log.exception("nodelifecycle: %s failed", getattr(fn, "__name__", fn))
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    # ---- reconcile: NoSchedule taints, eviction, pods not ready -------------------------

    async def reconcile(self, key: str) -> float | None:
        kind, _, rest = key.partition(":")
        if kind == "node":
            await self._sync_noschedule_taints(rest)
            return None
        if kind == "pod":
            return await self._sync_eviction(rest)
        if kind == "ready":
            await self._mark_pod_not_ready(rest)
        return None

    async def _sync_noschedule_taints(self, name: str) -> None:
        """Condition taints with effect NoSchedule follow the conditions at once."""
        node = self.nodes.get(name)
        if node is None:
            return
        wanted = set(wanted_noschedule_taints(node))
        have = {
            (str(t.get("key")), str(t.get("effect"))) for t in taints_of(node)
            if t.get("effect") == "NoSchedule" and (t.get("key") in _CONDITION_TAINT_KEYS or t.get("key") == TAINT_UNSCHEDULABLE)
        }
        if wanted != have:
            await self._swap_taints(name, add=sorted(wanted - have), remove=sorted(have - wanted))

    async def _swap_taints(
        self, name: str, *, add: Iterable[tuple[str, str]] = (), remove: Iterable[tuple[str, str]] = ()
    ) -> bool:
        """Add and remove taints in one write, against the Node's resourceVersion.

        Returns False when the Node is gone; raises on other failures (the caller retries).
        """
        add, remove = list(add), set(remove)
        node = self.nodes.get(name)
        for attempt in range(2):
            if node is None:
                return False
            current = taints_of(node)
            kept = [t for t in current if (t.get("key"), t.get("effect")) not in remove]
            present = {(t.get("key"), t.get("effect")) for t in kept}
            stamp = rfc3339(_now())
            kept += [{"key": k, "effect": e, "timeAdded": stamp} for k, e in add if (k, e) not in present]
            if kept == current:
                return True
            patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]}, "spec": {"taints": kept or None}}
            try:
                await self.client.patch("nodes", name, patch)
                return True
            except ApiError as e:
                if is_not_found(e):
                    return False
                if not is_conflict(e) or attempt:
                    raise
                node = await self.client.get("nodes", name)
        return False

    async def _sync_eviction(self, key: str) -> float | None:
        """Delete the pod once its tolerations for its node's NoExecute taints run out."""
        pod = self.pods.get(key)
        if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
            self._scheduled.pop(key, None)
            return None
        node = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        taints = _noexecute(node) if node is not None else []
        if not taints:
            await self._cancel_eviction(key, pod)
            return None
        seconds = min_toleration_seconds(taints, effective_tolerations(pod, self.default_toleration))
        if seconds is None:
            await self._cancel_eviction(key, pod)
            return None
        now = _now()
        if key not in self._scheduled:
            # the clock started when the pod first lay under a NoExecute taint: the taint's
            # timeAdded, or the pod's creation if it came later; never in the future
            added = [at for t in taints if (at := parse_time(t.get("timeAdded"))) is not None]
            start = min(added) if added else now
            created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
            if created is not None:
                start = max(start, created)
            self._scheduled[key] = min(start, now)
        due = self._scheduled[key] + seconds
        if now < due:
            return due - now
        await self._evict(key, pod)
        return None

    async def _cancel_eviction(self, key: str, pod: Obj) -> None:
        if self._scheduled.pop(key, None) is not None:
            await self.ctx.client.record_event(
                pod, "TaintManagerEviction", f"Cancelling deletion of Pod {key}", "Normal", TAINT_COMPONENT
            )

    async def _evict(self, key: str, pod: Obj) -> None:
        """Mark the pod a DisruptionTarget, then delete it as upstream's taint manager does."""
        meta = pod["metadata"]
        await self.ctx.client.record_event(
            pod, "TaintManagerEviction", f"Marking for deletion Pod {key}", "Normal", TAINT_COMPONENT
        )
        await self._set_pod_condition(pod, {
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
        })
        try:
            await self.client.delete("pods", meta["name"], meta["namespace"], preconditions={"uid": meta["uid"]})
        except ApiError as e:
            if not is_not_found(e):
                raise
        self._scheduled.pop(key, None)

    async def _set_pod_condition(self, pod: Obj, cond: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Obj | None:
        """Add or update one pod condition (and other status fields) with the pod's rv."""
        status = dict(pod.get("status") or {})
        conds = [dict(c) for c in status.get("conditions") or []]
        stamp = rfc3339(_now())
        for i, c in enumerate(conds):
            if c.get("type") == cond["type"]:
                new = {**c, **cond}
                if new == c and not extra:
                    return pod
                if c.get("status") != cond.get("status"):
                    new["lastTransitionTime"] = stamp
                conds[i] = new
                break
        else:
            conds.append({**cond, "lastProbeTime": None, "lastTransitionTime": stamp})
        status["conditions"] = conds
        status.update(extra or {})
        try:
            return await self.client.update_status("pods", {**pod, "status": status})
        except ApiError as e:
            if is_not_found(e):
                return None
            raise

    async def _mark_pod_not_ready(self, key: str) -> None:
        """MarkPodsNotReady for one pod: its node is not Ready, so neither is it."""
        pod = self.pods.get(key)
        if pod is None:
            return
        node = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if node is None or ready_status(node) in (None, "True"):
            return
        ready = condition(pod, "Ready")
        if ready is None or ready.get("status") == "False":
            return
        result = await self._set_pod_condition(pod, {"type": "Ready", "status": "False"})
        if result is not None:
            await self.ctx.client.record_event(pod, "NodeNotReady", "Node is not ready", "Warning", NODE_COMPONENT)

    # ---- node health ----------------------------------------------------------------

    async def monitor_node_health(self) -> None:
        """One pass of upstream's monitorNodeHealth over the cached Nodes."""
        async with self._pass_lock:
            await self._monitor_pass()

    async def _monitor_pass(self) -> None:
        nodes = self.nodes.list()
        names = {n["metadata"]["name"] for n in nodes}
        for node in nodes:
            name = node["metadata"]["name"]
            if name not in self._known:
                self._known[name] = node
                self._zone(node)
                await self._node_event(node, "RegisteredNode", f"Node {name} event: Registered Node {name} in Controller")
                await self._mark_reachable(node)
        for name in [n for n in self._known if n not in names]:
            gone = self._known.pop(name)
            self._health.pop(name, None)
            self._retry_not_ready.discard(name)
            for zone in self._zones.values():
                zone.pending.pop(name, None)
            await self._node_event(gone, "RemovingNode", f"Node {name} event: Removing Node {name} from Controller")

        sem = asyncio.Semaphore(MONITOR_PARALLELISM)
        zone_ready: dict[str, list[str | None]] = {}

        async def one(node: Obj) -> None:
            async with sem:
                try:
                    observed, current = await self._update_node_health(node)
                except ClientError as e:
                    log.info("nodelifecycle: updating the health of node %s: %s", node["metadata"]["name"], e)
                    return
            if EXCLUDE_DISRUPTION_LABEL not in (node["metadata"].get("labels") or {}):
                zone_ready.setdefault(zone_key(node), []).append(current)
            await self._after_health(node, observed, current)

        await asyncio.gather(*(one(n) for n in nodes))
        await self._handle_disruption(zone_ready, nodes)

    async def _update_node_health(self, node: Obj) -> tuple[str | None, str | None]:
        """(observed, current) Ready status; sets the conditions Unknown past the grace."""
        name = node["metadata"]["name"]
        now = _now()
        ready = condition(node, "Ready")
        observed = str(ready.get("status")) if ready is not None else None
        health = self._health.get(name)
        if health is None:
            probe = now
            if ready is None:
                probe = parse_time(node["metadata"].get("creationTimestamp")) or now
            health = self._health[name] = _Health(probe, (ready or {}).get("lastHeartbeatTime"))
        elif ready is not None and ready.get("lastHeartbeatTime") != health.ready_heartbeat:
            health.probe = now
            health.ready_heartbeat = ready.get("lastHeartbeatTime")
        lease = self.leases.get(f"{NODE_LEASE_NAMESPACE}/{name}")
        renewed = parse_time(((lease or {}).get("spec") or {}).get("renewTime"))
        if renewed is not None and (health.lease_renew is None or renewed > health.lease_renew):
            health.lease_renew = renewed
            health.probe = now

        grace = self.grace if ready is not None else self.startup_grace
        if now <= health.probe + grace:
            return observed, observed
        status = dict(node.get("status") or {})
        conds = [dict(c) for c in status.get("conditions") or []]
        stamp = rfc3339(now)
        changed = False
        for ctype in _KUBELET_CONDITIONS:
            cond = next((c for c in conds if c.get("type") == ctype), None)
            if cond is None:
                conds.append({
                    "type": ctype, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": node["metadata"].get("creationTimestamp"), "lastTransitionTime": stamp,
                })
                changed = True
            elif cond.get("status") != "Unknown":
                cond.update(status="Unknown", reason="NodeStatusUnknown",
                            message="Kubelet stopped posting node status.", lastTransitionTime=stamp)
                changed = True
        if not changed:
            return observed, observed
        status["conditions"] = conds
        try:
            await self.client.update_status("nodes", {**node, "status": status})
        except ApiError as e:
            if is_not_found(e):
                return observed, observed
            raise
        return observed, "Unknown"

    async def _after_health(self, node: Obj, observed: str | None, current: str | None) -> None:
        name = node["metadata"]["name"]
        if current is None:
            return
        await self._taint_based_eviction(node, observed)
        if current != "True" and observed == "True":
            await self._node_event(node, "NodeNotReady", f"Node {name} status is now: NodeNotReady")
            self._retry_not_ready.add(name)
        if name in self._retry_not_ready and current != "True":
            # in the same pass that found it NotReady, as upstream's monitorNodeHealth:
            # mark its pods not Ready; the queue retries each one until it succeeds
            for key in self.pods.index_keys(NODE_INDEX, name):
                self.queue.add("ready:" + key)
            self._retry_not_ready.discard(name)
        elif current == "True":
            self._retry_not_ready.discard(name)

    async def _taint_based_eviction(self, node: Obj, observed: str | None) -> None:
        """processTaintBaseEviction: queue the NoExecute taint, swap it, or clear it."""
        name = node["metadata"]["name"]
        zone = self._zone(node)
        if observed == "False":
            if has_taint(node, TAINT_UNREACHABLE, "NoExecute"):
                await self._swap_taints(name, add=[(TAINT_NOT_READY, "NoExecute")], remove=[(TAINT_UNREACHABLE, "NoExecute")])
            elif not has_taint(node, TAINT_NOT_READY, "NoExecute"):
                zone.pending.setdefault(name, None)
        elif observed == "Unknown":
            if has_taint(node, TAINT_NOT_READY, "NoExecute"):
                await self._swap_taints(name, add=[(TAINT_UNREACHABLE, "NoExecute")], remove=[(TAINT_NOT_READY, "NoExecute")])
            elif not has_taint(node, TAINT_UNREACHABLE, "NoExecute"):
                zone.pending.setdefault(name, None)
        elif observed == "True":
            await self._mark_reachable(node)

    async def _mark_reachable(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        self._zone(node).pending.pop(name, None)
        node = self.nodes.get(name) or node  # the pass's copy may predate a taint just added
        if has_taint(node, TAINT_UNREACHABLE, "NoExecute") or has_taint(node, TAINT_NOT_READY, "NoExecute"):
            await self._swap_taints(name, remove=[(TAINT_UNREACHABLE, "NoExecute"), (TAINT_NOT_READY, "NoExecute")])

    async def noexecute_tainting_pass(self) -> None:
        """doNoExecuteTaintingPass: taint queued nodes as fast as each zone's limiter allows."""
        if not any(zone.pending for zone in self._zones.values()):
            return
        async with self._pass_lock:
            await self._taint_pending()

    async def _taint_pending(self) -> None:
        for zone in list(self._zones.values()):
            while zone.pending:
                name = next(iter(zone.pending))
                node = self.nodes.get(name)
                status = ready_status(node) if node is not None else None
                if status not in ("False", "Unknown"):
                    del zone.pending[name]  # gone, or Ready again
                    continue
                if not zone.limiter.try_take():
                    break
                del zone.pending[name]
                add, opposite = (TAINT_NOT_READY, TAINT_UNREACHABLE) if status == "False" else (TAINT_UNREACHABLE, TAINT_NOT_READY)
                try:
                    await self._swap_taints(name, add=[(add, "NoExecute")], remove=[(opposite, "NoExecute")])
                except ClientError as e:
                    log.info("nodelifecycle: tainting node %s: %s; retrying", name, e)
                    zone.pending[name] = None

    def _zone(self, node: Mapping[str, Any]) -> _Zone:
        key = zone_key(node)
        zone = self._zones.get(key)
        if zone is None:
            zone = self._zones[key] = _Zone(limiter=TokenBucket(self.eviction_qps))
        return zone

    async def _handle_disruption(self, zone_ready: dict[str, list[str | None]], nodes: list[Obj]) -> None:
        """Zone states and eviction rates, and the all-zones-down stop (handleDisruption)."""
        new_states = {key: zone_state(ready, self.unhealthy_threshold)[1] for key, ready in zone_ready.items()}
        for key in new_states:
            self._zones.setdefault(key, _Zone(limiter=TokenBucket(self.eviction_qps)))
        all_are_full = all(state == FULL for state in new_states.values())
        all_were_full = True
        for key, zone in self._zones.items():
            if key not in new_states:
                zone.state = INITIAL  # no node there now: it starts over when one appears
                continue
            if zone.state != FULL:
                all_were_full = False
                break
        if all_are_full and all_were_full:
            # level-triggered: a taint that raced the switch to disruption mode goes too
            for node in nodes:
                if _noexecute(self.nodes.get(node["metadata"]["name"])):
                    await self._mark_reachable(node)
            return
        if all_are_full:
            log.warning("nodelifecycle: no node is Ready; entering master disruption mode: nothing is evicted")
            for node in nodes:
                try:
                    await self._mark_reachable(node)
                except ClientError as e:
                    log.info("nodelifecycle: removing NoExecute taints from %s: %s", node["metadata"]["name"], e)
            for key in new_states:
                self._zones[key].limiter = TokenBucket(0)
                self._zones[key].state = FULL
            return
        if all_were_full:
            log.warning("nodelifecycle: some nodes are Ready again; exiting master disruption mode")
            now = _now()
            for health in self._health.values():
                health.probe = now
            for key, state in new_states.items():
                self._set_zone_state(key, state, len(zone_ready[key]))
            return
        for key, state in new_states.items():
            if self._zones[key].state != state:
                self._set_zone_state(key, state, len(zone_ready[key]))

    def _set_zone_state(self, key: str, state: str, size: int) -> None:
        zone = self._zones[key]
        if zone.state != state:
            log.info("nodelifecycle: zone %r is now %s", key, state)
        zone.limiter = TokenBucket(self._zone_qps(state, size))
        zone.state = state

    def _zone_qps(self, state: str, size: int) -> float:
        if state == PARTIAL:
            return self.secondary_qps if size > self.large_cluster else 0.0
        return self.eviction_qps  # Normal, and a zone fully down while others are not

    async def _node_event(self, node: Obj, reason: str, message: str) -> None:
        await self.ctx.client.record_event(node_event_ref(node), reason, message, "Normal", NODE_COMPONENT)

    # ---- pod GC -----------------------------------------------------------------------

    async def gc_orphaned_pods(self) -> None:
        """Force-delete pods whose Node is gone (after the quarantine and a live check)."""
        now = _now()
        seen: set[str] = set()
        for pod in self.pods.list():
            node_name = (pod.get("spec") or {}).get("nodeName")
            if not node_name or self.nodes.get(node_name) is not None:
                continue
            key = object_key(pod)
            seen.add(key)
            first = self._orphans.setdefault(key, now)
            if now - first < self.podgc_quarantine:
                continue
            try:
                await self.client.get("nodes", node_name)
                continue  # the cache is behind: the node exists
            except ApiError as e:
                if not is_not_found(e):
                    raise
            await self._delete_orphan(pod, node_name)
            self._orphans.pop(key, None)
        for key in [k for k in self._orphans if k not in seen]:
            del self._orphans[key]

    async def _delete_orphan(self, pod: Obj, node_name: str) -> None:
        meta = pod["metadata"]
        log.info("podgc: deleting pod %s/%s: its node %s no longer exists", meta.get("namespace"), meta.get("name"), node_name)
        extra = {}
        if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            extra["phase"] = "Failed"
        await self._set_pod_condition(pod, {
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists",
        }, extra)
        try:
            await self.client.delete("pods", meta["name"], meta["namespace"], grace_period_seconds=0,
                                     preconditions={"uid": meta["uid"]})
        except ApiError as e:
            if not (is_not_found(e) or is_conflict(e)):
                raise


def _noexecute(node: Mapping[str, Any] | None) -> list[Obj]:
    return [t for t in taints_of(node or {}) if t.get("effect") == "NoExecute"]


__all__ = [
    "NodeLifecycleController",
    "effective_tolerations",
    "min_toleration_seconds",
    "wanted_noschedule_taints",
    "zone_state",
]
