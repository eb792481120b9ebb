"""The default scheduler: watch pods and nodes, decide one pod at a time, bind in the background.

The loop is kube-scheduler's scheduleOne:

1. pop the next pod from the scheduling queue (priority, then FIFO);
2. take the snapshot, filter, score, pick a node (`Algorithm`), all without awaiting;
3. *assume* the pod on that node in the cache, so the next cycle already sees the room
   taken, and start binding (POST pods/NAME/binding) in a task of its own;
4. go on with the next pod while up to `max_binds_in_flight` binds are under way.

A bind that fails gives the room back (the assumption is forgotten) and retries the pod
after its backoff. A pod no node fits gets `PodScheduled=False` (reason Unschedulable)
with upstream's `0/N nodes are available: ...` message and a FailedScheduling event --
both only when the message changes, so a pod retried every few seconds does not write
every few seconds -- and waits among the unschedulable pods until a change in the cluster
(a node added or uncordoned, a taint removed, a pod deleted...) may help it.

What the scheduler owns: unassigned pods whose `spec.schedulerName` is its profile's name
(`default-scheduler`) and that are not being deleted. Assigned pods only feed the cache.
Pods naming another scheduler are left alone.

Left out, compared with upstream: preemption (so the FailedScheduling message has no
`preemption: ...` part), inter-pod affinity, topology spread constraints written in the
pod spec, volumes, extenders, multiple profiles, and the QueueingHint callbacks (a
plugin's registered events move every pod it rejected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from tuik8s.client.errors import ApiError, ClientError, is_not_found
from tuik8s.client.informer import object_key
from tuik8s.controllers.runner import ControllerContext, Timings
from tuik8s.scheduler.algorithm import Algorithm, NoNodesAvailable, SchedulingError
from tuik8s.scheduler.cache import Cache
from tuik8s.scheduler.events import EventSink
from tuik8s.scheduler.framework import ClusterEvent, FitError, PodInfo, quantity, truncate_message
from tuik8s.scheduler.queue import QueuedPodInfo, QueueTimings, SchedulingQueue
from tuik8s.scheduler.runtime import Framework, Profile

log = logging.getLogger(__name__)

Obj = dict[str, Any]

COMPONENT = "default-scheduler"
REASON_UNSCHEDULABLE = "Unschedulable"  # v1.PodReasonUnschedulable
REASON_SCHEDULER_ERROR = "SchedulerError"  # v1.PodReasonSchedulerError
DEFAULT_BINDS_IN_FLIGHT = 64
STATUS_WRITES_IN_FLIGHT = 16


def queue_timings(timings: Timings) -> QueueTimings:
    """The queue's timings: the lab's, unless `timings.extra` carries others."""
    qt = QueueTimings()
    extra = timings.extra
    qt.initial_backoff = extra.get("pod_initial_backoff", qt.initial_backoff)
    qt.max_backoff = extra.get("pod_max_backoff", qt.max_backoff)
    qt.unschedulable_flush_period = extra.get("unschedulable_flush_period", qt.unschedulable_flush_period)
    qt.max_in_unschedulable = extra.get("pod_max_in_unschedulable", qt.max_in_unschedulable)
    return qt


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def is_assigned(pod: Obj) -> bool:
    return bool(_spec(pod).get("nodeName"))


def is_deleting(pod: Obj) -> bool:
    return bool(_meta(pod).get("deletionTimestamp"))


def _uid(pod: Obj) -> str:
    return str(_meta(pod).get("uid") or object_key(pod))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _allocatable(node: Obj) -> dict[str, int]:
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    return {name: quantity(name, value) for name, value in alloc.items()}


def _taint_keys(node: Obj) -> set[tuple[Any, Any, Any]]:
    return {(t.get("key"), t.get("value"), t.get("effect")) for t in _spec(node).get("taints") or ()}


def node_events(old: Obj, new: Obj) -> list[ClusterEvent]:
    """The changes between two versions of a Node that may let a rejected pod fit.

    Only changes for the better count: uncordoned, some allocatable resource grew, some
    taint removed, labels changed (either way: affinity can ask for a label's absence),
    a condition changed. Heartbeats and status churn are not events.
    """
    events = []
    os_, ns_ = _spec(old), _spec(new)
    if os_.get("unschedulable") and not ns_.get("unschedulable"):
        events.append(ClusterEvent.NodeSpecUnschedulableChange)
    ost, nst = old.get("status") or {}, new.get("status") or {}
    if ost.get("allocatable") != nst.get("allocatable") or ost.get("capacity") != nst.get("capacity"):
        before, after = _allocatable(old), _allocatable(new)
        if any(value > before.get(name, 0) for name, value in after.items()):
            events.append(ClusterEvent.NodeAllocatableChange)
    if _meta(old).get("labels") != _meta(new).get("labels"):
        events.append(ClusterEvent.NodeLabelChange)
    if _taint_keys(old) - _taint_keys(new):
        events.append(ClusterEvent.NodeTaintChange)

    def conditions(status: Obj) -> list[tuple[Any, Any]]:
        return sorted((c.get("type"), c.get("status")) for c in status.get("conditions") or ())

    if conditions(ost) != conditions(nst):
        events.append(ClusterEvent.NodeConditionChange)
    return events


class Scheduler:
    """Assigns pending pods to nodes; `run()` runs forever (the control plane supervises it)."""

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        profile: Profile | None = None,
        timings: QueueTimings | None = None,
        max_binds_in_flight: int = DEFAULT_BINDS_IN_FLIGHT,
        rng: Any = None,
    ) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.profile = profile or Profile()
        self.framework = Framework(self.profile)
        self.algorithm = Algorithm(self.framework, rng)
        self.cache = Cache()
        self._event_plugins = {ev: self.framework.plugins_for_event(ev) for ev in ClusterEvent}
        self.queue = SchedulingQueue(
            timings or queue_timings(ctx.timings), plugins_for_event=self._event_plugins.__getitem__
        )
        self.max_binds_in_flight = max_binds_in_flight
        self.events = EventSink(self._write_event, busy=self.queue.has_active)
        # per pod uid: the (reason, message) last reported, so a retry that fails the
        # same way writes nothing
        self._reported: dict[str, tuple[str, str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # a storm of unschedulable pods must not become a storm of concurrent patches
        self._status_slots = asyncio.Semaphore(STATUS_WRITES_IN_FLIGHT)
        self.scheduled = 0
        self.bound = 0
        self.failed_attempts = 0
        self.bind_errors = 0
        self.pods = ctx.informers.informer("pods")
        self.nodes = ctx.informers.informer("nodes")
        self.nodes.add_handler(self._on_node_add, self._on_node_update, self._on_node_delete)
        self.pods.add_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete)

    # ---- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        await asyncio.gather(self.pods.wait_synced(), self.nodes.wait_synced())
        self.queue.requeue_in_flight()  # after a crash of this loop
        slots = asyncio.Semaphore(self.max_binds_in_flight)
        helpers = [
            asyncio.create_task(self.queue.run(), name="scheduler-queue"),
            asyncio.create_task(self.events.run(), name="scheduler-events"),
        ]
        log.info("scheduler started: %d nodes, %d pods pending", self.cache.num_nodes, len(self.queue))
        try:
            while True:
                await slots.acquire()
                try:
                    qpi = await self.queue.pop()
                except BaseException:
                    slots.release()
                    raise
                binding = False
                try:
                    binding = self.schedule_one(qpi, slots)
                finally:
                    if not binding:
                        slots.release()
                # a cycle never awaits: let the API server and the informers run between two
                await asyncio.sleep(0)
        finally:
            for t in helpers:
                t.cancel()
            for t in helpers:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    def schedule_one(self, qpi: QueuedPodInfo, slots: asyncio.Semaphore | None = None) -> bool:
        """One scheduling cycle for `qpi`; True if a bind was started (it owns a slot)."""
        key = qpi.key
        current = self.pods.get(key)
        if current is None or _uid(current) != qpi.pod_info.uid or not self._ours(current) or self.cache.knows(_uid(current)):
            self.queue.done(key)  # gone, bound, deleting, or already assumed
            return False
        if current is not qpi.pod_info.pod:
            qpi.pod_info = PodInfo(current)
        pod = qpi.pod_info
        try:
            result = self.algorithm.schedule(pod, self.cache.snapshot())
        except FitError as e:
            self._failed(qpi, str(e), e.diagnosis.unschedulable_plugins, unschedulable=True)
            return False
        except NoNodesAvailable as e:
            self._failed(qpi, str(e), set(), unschedulable=True)
            return False
        except SchedulingError as e:
            self._failed(qpi, str(e), set(), unschedulable=False)
            return False
        except Exception as e:  # noqa: BLE001 - a plugin bug must cost one pod one retry, not the loop
            log.exception("scheduling %s failed", key)
            self._failed(qpi, f"{type(e).__name__}: {e}", set(), unschedulable=False)
            return False
        self.cache.assume(pod, result.node)
        self.queue.done(key)
        self.scheduled += 1
        self._spawn(self._bind(qpi, pod, result.node, slots))
        return True

    # ---- binding ---------------------------------------------------------------------------

    async def _bind(self, qpi: QueuedPodInfo, pod: PodInfo, node: str, slots: asyncio.Semaphore | None) -> None:
        try:
            await self.client.bind(pod.namespace, pod.name, node, pod.uid)
        except ClientError as e:
            self.bind_errors += 1
            self.cache.forget(pod)
            self.queue.move_all_on(ClusterEvent.AssignedPodDelete)  # the room it held is free
            current = self.pods.get(pod.key)
            if isinstance(e, ApiError) and is_not_found(e):
                return  # deleted meanwhile
            if current is None or is_assigned(current) or _uid(current) != pod.uid:
                return  # deleted, or bound by someone else: the watch has the truth
            log.info("binding %s to %s failed: %s", pod.key, node, e)
            message = f'running Bind plugin "DefaultBinder": {e}'
            self.queue.add_backoff(qpi)
            self._report_failure(pod, REASON_SCHEDULER_ERROR, message)
        else:
            self.bound += 1
            self._reported.pop(pod.uid, None)
            self.events.record(pod.pod, "Scheduled", f"Successfully assigned {pod.key} to {node}", "Normal")
        finally:
            if slots is not None:
                slots.release()

    # ---- failures --------------------------------------------------------------------------

    def _failed(self, qpi: QueuedPodInfo, message: str, plugins: set[str], *, unschedulable: bool) -> None:
        self.failed_attempts += 1
        if unschedulable:
            self.queue.add_unschedulable(qpi, plugins)
            reason = REASON_UNSCHEDULABLE
        else:
            self.queue.add_backoff(qpi)
            reason = REASON_SCHEDULER_ERROR
        log.debug("%s: %s", qpi.key, message)
        self._report_failure(qpi.pod_info, reason, message)

    def _report_failure(self, pod: PodInfo, reason: str, message: str) -> None:
        """FailedScheduling event and PodScheduled=False, once per distinct message."""
        if self._reported.get(pod.uid) == (reason, message):
            return
        self._reported[pod.uid] = (reason, message)
        self.events.record(pod.pod, "FailedScheduling", truncate_message(message), "Warning")
        self._spawn(self._set_unschedulable_condition(pod, reason, message))

    async def _set_unschedulable_condition(self, pod: PodInfo, reason: str, message: str) -> None:
        async with self._status_slots:
            await self._patch_unschedulable_condition(pod, reason, message)

    async def _patch_unschedulable_condition(self, pod: PodInfo, reason: str, message: str) -> None:
        # read when the write is due, not when it was asked for: the pod may be bound by now
        current = self.pods.get(pod.key) or pod.pod
        if _uid(current) != pod.uid or is_assigned(current) or self.cache.knows(pod.uid):
            return  # gone, or scheduled since: a late False must not hide the True
        conditions = (current.get("status") or {}).get("conditions") or []
        cond = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
        if cond is not None and cond.get("status") == "False" and cond.get("reason") == reason and cond.get("message") == message:
            return
        since = cond.get("lastTransitionTime") if cond is not None and cond.get("status") == "False" else None
        patch = {"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": since or _now(),
        }]}}
        try:
            await self.client.patch(
                "pods", pod.name, patch, namespace=pod.namespace, patch_type="strategic", subresource="status"
            )
        except ClientError as e:
            if not is_not_found(e):
                log.info("could not set PodScheduled=False on %s: %s", pod.key, e)

    async def _write_event(self, involved: Obj, reason: str, message: str, type: str) -> None:
        await self.client.record_event(involved, reason, message, type, COMPONENT)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- informer handlers -----------------------------------------------------------------

    def _ours(self, pod: Obj) -> bool:
        """An unassigned pod this profile schedules, not being deleted."""
        return (
            not is_assigned(pod)
            and (_spec(pod).get("schedulerName") or self.profile.scheduler_name) == self.profile.scheduler_name
            and not is_deleting(pod)
        )

    def _on_pod_add(self, pod: Obj) -> None:
        if is_assigned(pod):
            self.cache.add_pod(pod)
        elif self._ours(pod) and not self.cache.knows(_uid(pod)):
            self.queue.add(PodInfo(pod))

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        key = object_key(new)
        if is_assigned(new):
            if not is_assigned(old):
                self.queue.delete(key)
                self._reported.pop(_uid(new), None)
            if self.cache.update_pod(new):
                self.queue.move_all_on(ClusterEvent.AssignedPodDelete)
            return
        if not self._ours(new):
            self.queue.delete(key)
            return
        if self.cache.knows(_uid(new)):
            return  # assumed, the bind is under way: its outcome decides
        self.queue.update(PodInfo(new))

    def _on_pod_delete(self, pod: Obj) -> None:
        uid = _uid(pod)
        self._reported.pop(uid, None)
        if not is_assigned(pod):
            self.queue.delete(object_key(pod))
        if self.cache.remove_pod(pod):  # also an assumed pod whose bind is still under way
            self.queue.move_all_on(ClusterEvent.AssignedPodDelete)

    def _on_node_add(self, node: Obj) -> None:
        self.cache.add_node(node)
        self.queue.move_all_on(ClusterEvent.NodeAdd)

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        self.cache.update_node(new)
        for event in node_events(old, new):
            self.queue.move_all_on(event)

    def _on_node_delete(self, node: Obj) -> None:
        self.cache.remove_node(node)
