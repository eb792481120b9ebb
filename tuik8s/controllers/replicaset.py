"""The ReplicaSet controller: keep `spec.replicas` pods of a template running.

One reconcile, as upstream's `syncReplicaSet`:

1. Claim pods: the active pods of the namespace the ReplicaSet controls, after adopting
   matching orphans and releasing owned pods whose labels no longer match.
2. If its expectations are met, create or delete the difference (at most `BURST_REPLICAS`
   per pass). Creates go in slow-start batches (1, 2, 4, ...), so a template every create
   of which fails (a quota, a bad field) costs one failed request, not a hundred. Deletes
   take the pods ranked cheapest to lose first (`pods_to_delete`).
3. Write the status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
   observedGeneration, and a ReplicaFailure condition while creates or deletes fail.

Expectations close the one race a level-triggered loop cannot see: between a create that
succeeded and the informer delivering the new pod, the cache still shows too few pods, and
a second pass would create them again. So a pass that creates N pods expects N pod adds
(and a pass that deletes expects those very pods to go); until the informer has shown them
all, later passes only refresh the status. Expectations that are never met (an event lost
to a relist) expire after five minutes, as upstream's do.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tuik8s.api.selectors import LabelSelector, SelectorError
from tuik8s.client.errors import ApiError, ClientError, is_not_found
from tuik8s.client.informer import NAMESPACE_INDEX, namespace_index, object_key
from tuik8s.controllers import podutil
from tuik8s.controllers.podutil import CONTROLLER_UID_INDEX, Obj, controller_uid_index, meta
from tuik8s.controllers.runner import Controller

log = logging.getLogger(__name__)

BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1
EXPECTATIONS_TIMEOUT = 300.0
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}
_TERMINAL = ("Succeeded", "Failed")


# ---- expectations -----------------------------------------------------------------------


@dataclass
class _Expectation:
    adds: int
    deletes: set[str]
    since: float = field(default=0.0)


class Expectations:
    """Creates and deletes a controller has made and not yet seen in its cache.

    upstream's UIDTrackingControllerExpectations: creations are a count (a created pod's
    name is not known before the server answers), deletions are the pod keys, so seeing
    the same pod go twice (deletionTimestamp set, then gone) counts once.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self._clock = clock
        self._timeout = timeout
        self._items: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        e = self._items.get(key)
        if e is None:
            return True
        if e.adds <= 0 and not e.deletes:
            return True
        return self._clock() - e.since > self._timeout

    def expect_creations(self, key: str, count: int) -> None:
        self._items[key] = _Expectation(count, set(), self._clock())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._items[key] = _Expectation(0, set(pod_keys), self._clock())

    def creation_observed(self, key: str) -> None:
        e = self._items.get(key)
        if e is not None:
            e.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        e = self._items.get(key)
        if e is not None:
            e.deletes.discard(pod_key)

    def forget(self, key: str) -> None:
        self._items.pop(key, None)


# ---- which pods to delete ---------------------------------------------------------------


def _deletion_cost(pod: Obj) -> int:
    raw = (meta(pod).get("annotations") or {}).get(DELETION_COST_ANNOTATION)
    try:
        cost = int(raw) if raw is not None else 0
    except ValueError:
        return 0
    return cost if -(2**31) <= cost < 2**31 else 0


def _max_restarts(pod: Obj) -> tuple[int, int]:
    status = pod.get("status") or {}
    regular = max((int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or []), default=0)
    sidecars = {
        c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or [] if c.get("restartPolicy") == "Always"
    }
    sidecar = max(
        (int(c.get("restartCount") or 0) for c in status.get("initContainerStatuses") or [] if c.get("name") in sidecars),
        default=0,
    )
    return regular, sidecar


def _log_rank_diff(t1: datetime, t2: datetime, at: datetime) -> int:
    """Compare two ages on a log2 scale, so pods of about the same age tie (and go by uid)."""

    def rank(t: datetime) -> int:
        age_ns = (at - t).total_seconds() * 1e9
        return int(math.log2(age_ns)) if age_ns > 0 else -1

    return rank(t1) - rank(t2)


def _newer_first(t1: datetime | None, t2: datetime | None, uid1: str, uid2: str, at: datetime) -> bool:
    """afterOrZero with LogarithmicScaleDown: the unset or younger (by log bucket) one first."""
    if t1 is None or t2 is None:
        return t1 is None
    diff = _log_rank_diff(t1, t2, at)
    if diff == 0:
        return uid1 < uid2
    return diff < 0


def _less(a: Obj, b: Obj, rank_a: int, rank_b: int, at: datetime) -> bool:
    """upstream's ActivePodsWithRanks.Less: whether `a` should go before `b`."""
    node_a = (a.get("spec") or {}).get("nodeName") or ""
    node_b = (b.get("spec") or {}).get("nodeName") or ""
    # 1. unassigned < assigned
    if node_a != node_b and (not node_a or not node_b):
        return not node_a
    # 2. Pending < Unknown < Running
    phase_a = _PHASE_ORDINAL.get(podutil.pod_phase(a), 0)
    phase_b = _PHASE_ORDINAL.get(podutil.pod_phase(b), 0)
    if phase_a != phase_b:
        return phase_a < phase_b
    # 3. not ready < ready
    ready_a, ready_b = podutil.is_pod_ready(a), podutil.is_pod_ready(b)
    if ready_a != ready_b:
        return not ready_a
    # 4. lower pod-deletion-cost < higher
    cost_a, cost_b = _deletion_cost(a), _deletion_cost(b)
    if cost_a != cost_b:
        return cost_a < cost_b
    # 5. doubled up on a node with more related pods < less doubled up
    if rank_a != rank_b:
        return rank_a > rank_b
    uid_a, uid_b = str(meta(a).get("uid") or ""), str(meta(b).get("uid") or "")
    # 6. ready for less time < ready for longer
    if ready_a and ready_b:
        since_a, since_b = podutil.ready_since(a), podutil.ready_since(b)
        if since_a != since_b:
            return _newer_first(since_a, since_b, uid_a, uid_b, at)
    # 7. more container restarts < fewer
    restarts_a, restarts_b = _max_restarts(a), _max_restarts(b)
    if restarts_a[0] != restarts_b[0]:
        return restarts_a[0] > restarts_b[0]
    if restarts_a[1] != restarts_b[1]:
        return restarts_a[1] > restarts_b[1]
    # 8. newer < older
    created_a = podutil.parse_time(meta(a).get("creationTimestamp"))
    created_b = podutil.parse_time(meta(b).get("creationTimestamp"))
    if created_a != created_b:
        return _newer_first(created_a, created_b, uid_a, uid_b, at)
    return False


def rank_for_deletion(pods: Sequence[Obj], related: Iterable[Obj], at: datetime) -> list[Obj]:
    """`pods` in the order they should be deleted, by upstream's ActivePods ranking.

    `related` are the active and inactive pods of every ReplicaSet that shares this one's
    owner (a Deployment's old and new ReplicaSets): a pod on a node crowded with its
    siblings goes before one that is alone on its node.
    """
    on_node: dict[str, int] = {}
    for pod in related:
        if podutil.is_pod_active(pod):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [(pod, on_node.get((pod.get("spec") or {}).get("nodeName") or "", 0)) for pod in pods]

    def compare(x: tuple[Obj, int], y: tuple[Obj, int]) -> int:
        if _less(x[0], y[0], x[1], y[1], at):
            return -1
        if _less(y[0], x[0], y[1], x[1], at):
            return 1
        return 0

    return [pod for pod, _ in sorted(ranked, key=functools.cmp_to_key(compare))]


def pods_to_delete(pods: Sequence[Obj], related: Iterable[Obj], count: int, at: datetime) -> list[Obj]:
    """The `count` pods to delete; no ranking needed when all of them go."""
    if count >= len(pods):
        return list(pods)
    return rank_for_deletion(pods, related, at)[:count]


# ---- status -------------------------------------------------------------------------------


def calculate_status(rs: Obj, pods: Sequence[Obj], error: Exception | None, at: datetime) -> Obj:
    """The ReplicaSet's status for its claimed active `pods` (and a failed create/delete)."""
    spec = rs.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    wanted = template_labels.items()
    fully_labeled = ready = available = 0
    # one pass, few calls: this runs over every pod of the ReplicaSet on every sync
    for pod in pods:
        if podutil.labels_of(pod).items() >= wanted:
            fully_labeled += 1
        cond = podutil.pod_ready_condition(pod)
        if cond is not None and cond.get("status") == "True":
            ready += 1
            if min_ready <= 0 or podutil.is_pod_available(pod, min_ready, at):
                available += 1
    status = copy.deepcopy(rs.get("status") or {})
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    failure = next((c for c in conditions if c.get("type") == "ReplicaFailure"), None)
    if error is not None and failure is None:
        diff = len(pods) - int(spec.get("replicas", 1))
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        conditions.append({
            "type": "ReplicaFailure",
            "status": "True",
            "lastTransitionTime": podutil.format_time(at),
            "reason": reason,
            "message": str(error),
        })
    elif error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
    status["replicas"] = len(pods)
    for name, value in (("fullyLabeledReplicas", fully_labeled), ("readyReplicas", ready), ("availableReplicas", available)):
        if value:
            status[name] = value
        else:
            status.pop(name, None)
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    return status


def next_availability_check(rs: Obj, pods: Sequence[Obj], at: datetime) -> float | None:
    """Seconds until the next Ready pod becomes available under minReadySeconds, if any."""
    min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
    if min_ready <= 0:
        return None
    waits = [w for pod in pods if (w := podutil.available_in(pod, min_ready, at))]
    # timestamps have whole seconds and availability needs strictly more than minReadySeconds
    return min(waits) + 0.1 if waits else None


async def slow_start_batch(count: int, initial: int, fn: Callable[[], Awaitable[Any]]) -> tuple[int, Exception | None]:
    """Call `fn` `count` times in concurrent batches of 1, 2, 4, ...; stop after a failing batch.

    Returns how many calls succeeded and the first error.
    """
    remaining, successes = count, 0
    size = min(remaining, initial)
    while size > 0:
        results = await asyncio.gather(*(fn() for _ in range(size)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for r in errors:
            if not isinstance(r, Exception):
                raise r  # cancellation: not a failed create
        successes += size - len(errors)
        if errors:
            first = errors[0]
            assert isinstance(first, Exception)
            return successes, first
        remaining -= size
        size = min(2 * size, remaining)
    return successes, None


def _pod_from_template(rs: Obj) -> Obj:
    """A pod for `rs`: its template, `generateName: <rs>-` and a controller reference.

    The pod shares the template's structures rather than copying them (10,000 deep copies
    were 1% of the control plane's CPU): it is only serialized, and `rs` is the
    reconcile's own copy. Do not change the pod in place.
    """
    template = (rs.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    rs_meta = meta(rs)
    pod_meta: Obj = {
        "generateName": f"{rs_meta.get('name')}-",
        "namespace": rs_meta.get("namespace"),
        "ownerReferences": [podutil.new_controller_ref(rs, "apps/v1", "ReplicaSet")],
    }
    for name in ("labels", "annotations", "finalizers"):
        if tmeta.get(name):
            pod_meta[name] = tmeta[name]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template.get("spec") or {}}


def _counted_as(pod: Obj) -> tuple[str, str | None, str | None]:
    """What of a pod its ReplicaSet's sync counts, beyond labels and owner: its phase (active
    or not) and its Ready condition (ready, available since). An update that changes none
    of it (a bind, a restart count) changes neither the status nor how many pods to create
    or delete, so it is not worth a pass over the ReplicaSet's pods: at 10,000 pods that
    pass was a tenth of the control plane's CPU. (Which pod goes first at the next
    scale-down is read then, from the cache.)"""
    cond = podutil.pod_ready_condition(pod)
    if cond is None:
        return podutil.pod_phase(pod), None, None
    return podutil.pod_phase(pod), cond.get("status"), cond.get("lastTransitionTime")


def _namespace_terminating(e: ApiError) -> bool:
    causes = e.details.get("causes") or []
    if any(isinstance(c, dict) and c.get("type") == "NamespaceTerminating" for c in causes):
        return True
    return e.code == 403 and "because it is being terminated" in e.message


# ---- the controller -----------------------------------------------------------------------


class ReplicaSetController(Controller):
    """Creates and deletes pods so each ReplicaSet has `spec.replicas` of them."""

    name = "replicaset"
    workers = 5

    def setup(self) -> None:
        timeout = self.ctx.timings.extra.get("expectations_timeout", EXPECTATIONS_TIMEOUT)
        self.expectations = Expectations(timeout=timeout)
        self.replicasets = self.informer("replicasets.apps")
        self.pods = self.informer("pods")
        for inf in (self.replicasets, self.pods):
            inf.add_index(NAMESPACE_INDEX, namespace_index)
            inf.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
        self.pods.add_index(podutil.ORPHAN_INDEX, podutil.orphan_index)
        self.replicasets.add_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # ---- events: keys only ------------------------------------------------------------

    def _rs_added(self, rs: Obj) -> None:
        self.enqueue(rs)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        self.enqueue(new)

    def _rs_deleted(self, rs: Obj) -> None:
        key = object_key(rs)
        self.expectations.forget(key)
        self.queue.add(key)

    def _owner_of(self, pod: Obj, ref: Obj | None = None) -> Obj | None:
        """The ReplicaSet a pod's controller reference names, if it is in the cache."""
        ref = ref if ref is not None else podutil.controller_ref(pod)
        if not podutil.refers_to(ref, "apps", "ReplicaSet"):
            return None
        assert ref is not None
        rs = self.replicasets.get(f"{meta(pod).get('namespace')}/{ref.get('name')}")
        if rs is None or meta(rs).get("uid") != ref.get("uid"):
            return None
        return rs

    def _matching(self, pod: Obj) -> list[Obj]:
        """ReplicaSets of the pod's namespace whose selector picks it (adoption candidates)."""
        return podutil.owners_selecting(self.replicasets, pod)

    def _pod_added(self, pod: Obj) -> None:
        if podutil.is_deleting(pod):
            # after a restart a pod may first show up already on its way out
            self._pod_deleted(pod)
            return
        ref = podutil.controller_ref(pod)
        if ref is not None:
            rs = self._owner_of(pod, ref)
            if rs is not None:
                key = object_key(rs)
                self.expectations.creation_observed(key)
                self.queue.add(key)
            return
        for rs in self._matching(pod):
            self.enqueue(rs)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        labels_changed = podutil.labels_of(old) != podutil.labels_of(new)
        if podutil.is_deleting(new):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        old_ref, new_ref = podutil.controller_ref(old), podutil.controller_ref(new)
        ref_changed = (old_ref or {}).get("uid") != (new_ref or {}).get("uid")
        if ref_changed and old_ref is not None:
            rs = self._owner_of(old, old_ref)
            if rs is not None:
                self.enqueue(rs)
        if new_ref is not None:
            rs = self._owner_of(new, new_ref)
            if rs is not None and (labels_changed or ref_changed or _counted_as(old) != _counted_as(new)):
                self.enqueue(rs)
            return
        if labels_changed or ref_changed:
            for rs in self._matching(new):
                self.enqueue(rs)

    def _pod_deleted(self, pod: Obj) -> None:
        rs = self._owner_of(pod)
        if rs is None:
            return
        key = object_key(rs)
        self.expectations.deletion_observed(key, podutil.pod_key(pod))
        self.queue.add(key)

    # ---- reconcile ------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        cached = self.replicasets.get(key)
        if cached is None:
            self.expectations.forget(key)
            return None
        rs = copy.deepcopy(cached)
        needs_sync = self.expectations.satisfied(key)
        try:
            selector = podutil.selector_of(rs)
        except SelectorError as e:
            log.warning("replicaset %s has an invalid selector: %s", key, e)
            return None
        pods = await self._claim(rs, selector)
        error: ClientError | None = None
        if needs_sync and not podutil.is_deleting(rs):
            try:
                await self._manage_replicas(key, rs, pods)
            except ClientError as e:
                error = e
        at = podutil.now()
        status = calculate_status(rs, pods, error, at)
        updated = await self._write_status(rs, status)
        if error is not None:
            raise error
        if int((updated.get("spec") or {}).get("minReadySeconds") or 0) > 0:
            return next_availability_check(updated, pods, at)
        return None

    async def _claim(self, rs: Obj, selector: LabelSelector) -> list[Obj]:
        """The active pods `rs` controls, after adopting orphans and releasing strays.

        The usual case -- no orphan in the namespace, every owned pod still matching --
        needs no write and is one quick pass over the owned pods; anything else goes
        through `podutil.claim`.
        """
        m = meta(rs)
        owned = self.pods.by_index(CONTROLLER_UID_INDEX, str(m.get("uid")))
        orphans = self.pods.by_index(podutil.ORPHAN_INDEX, str(m.get("namespace")))
        active: list[Obj] = []
        strays = False
        for pod in owned:
            if (pod.get("status") or {}).get("phase") in _TERMINAL or (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            active.append(pod)
            if not strays and not selector.matches(podutil.labels_of(pod)):
                strays = True
        if not strays and not any(podutil.is_pod_active(p) for p in orphans):
            return active
        return await podutil.claim(
            self.client, "pods", rs, podutil.new_controller_ref(rs, "apps/v1", "ReplicaSet"),
            selector, [*active, *(p for p in orphans if podutil.is_pod_active(p))], lambda: self._can_adopt(rs),
        )

    async def _can_adopt(self, rs: Obj) -> None:
        """Adopt only for a ReplicaSet that still exists, as this one, and is not going away."""
        m = meta(rs)
        fresh = await self.client.get("replicasets.apps", str(m.get("name")), m.get("namespace"))
        fm = meta(fresh)
        if fm.get("uid") != m.get("uid"):
            raise ClientError(f"original ReplicaSet {m.get('namespace')}/{m.get('name')} is gone: got uid {fm.get('uid')}, wanted {m.get('uid')}")
        if fm.get("deletionTimestamp"):
            raise ClientError(f"{m.get('namespace')}/{m.get('name')} has just been deleted at {fm.get('deletionTimestamp')}")

    async def _manage_replicas(self, key: str, rs: Obj, pods: list[Obj]) -> None:
        diff = len(pods) - int((rs.get("spec") or {}).get("replicas", 1))
        if diff < 0:
            count = min(-diff, BURST_REPLICAS)
            self.expectations.expect_creations(key, count)
            created, error = await slow_start_batch(count, SLOW_START_INITIAL_BATCH, lambda: self._create_pod(rs))
            # the pods never attempted will not show up in the informer: stop waiting for them
            for _ in range(count - created):
                self.expectations.creation_observed(key)
            if error is not None:
                raise error
        elif diff > 0:
            count = min(diff, BURST_REPLICAS)
            victims = pods_to_delete(pods, self._related_pods(rs), count, podutil.now())
            self.expectations.expect_deletions(key, [podutil.pod_key(p) for p in victims])
            results = await asyncio.gather(*(self._delete_pod(rs, p) for p in victims), return_exceptions=True)
            first: BaseException | None = None
            for pod, result in zip(victims, results, strict=True):
                if isinstance(result, BaseException):
                    # a delete that failed will not show up in the informer
                    self.expectations.deletion_observed(key, podutil.pod_key(pod))
                    if not is_not_found(result) and first is None:
                        first = result
            if first is not None:
                raise first

    def _related_pods(self, rs: Obj) -> list[Obj]:
        """The pods of every ReplicaSet controlled by this one's controller (itself included)."""
        ref = podutil.controller_ref(rs)
        siblings = self.replicasets.by_index(CONTROLLER_UID_INDEX, str(ref["uid"])) if ref and ref.get("uid") else [rs]
        related: list[Obj] = []
        for sibling in siblings:
            related.extend(self.pods.by_index(CONTROLLER_UID_INDEX, str(meta(sibling).get("uid"))))
        return related

    async def _create_pod(self, rs: Obj) -> None:
        namespace = meta(rs).get("namespace")
        try:
            pod = await self.client.create("pods", _pod_from_template(rs), namespace)
        except ApiError as e:
            if _namespace_terminating(e):
                return  # every create will fail; the namespace controller cleans up
            await self.event(rs, "FailedCreate", f"Error creating: {e}", "Warning")
            raise
        await self.event(rs, "SuccessfulCreate", f"Created pod: {meta(pod).get('name')}")

    async def _delete_pod(self, rs: Obj, pod: Obj) -> None:
        m = meta(pod)
        try:
            await self.client.delete("pods", str(m.get("name")), m.get("namespace"))
        except ApiError as e:
            if not is_not_found(e):
                await self.event(rs, "FailedDelete", f"Error deleting: {e}", "Warning")
            raise
        await self.event(rs, "SuccessfulDelete", f"Deleted pod: {m.get('name')}")

    async def _write_status(self, rs: Obj, status: Obj) -> Obj:
        """Write `status` with observedGeneration, unless nothing would change."""
        generation = meta(rs).get("generation")
        if generation:
            status["observedGeneration"] = generation
        if (rs.get("status") or {}) == status:
            return rs
        rs["status"] = status
        try:
            return await self.client.update_status("replicasets.apps", rs)
        except ApiError as e:
            if e.code != 409:
                raise
        # stale cache: the status is computed from pods, not from the ReplicaSet, so it
        # belongs on the current object as it is (observedGeneration stays what we acted on)
        m = meta(rs)
        fresh = await self.client.get("replicasets.apps", str(m.get("name")), m.get("namespace"))
        if meta(fresh).get("uid") != m.get("uid"):
            return rs
        fresh["status"] = status
        return await self.client.update_status("replicasets.apps", fresh)
