"""The scheduling queue: activeQ, backoffQ and the unschedulable pods (upstream's PriorityQueue).

- **activeQ** holds pods ready to be tried, highest `spec.priority` first, then the one
  that has waited longest.
- **backoffQ** holds pods that failed recently and must wait: 1 s after the first
  attempt, doubling per attempt up to 10 s (upstream's podInitialBackoffSeconds and
  podMaxBackoffSeconds). A pod leaves it for activeQ when its time is up.
- **unschedulable pods** failed because no node fits, and trying again is pointless until
  the cluster changes. A cluster event moves back the pods it may help: those rejected by
  a plugin that registered for the event (a node added helps NodeResourcesFit, a node's
  taints removed help TaintToleration, a pod deleted frees room...). A pod that has
  waited there for too long is moved back anyway (upstream: checked every 30 s, after
  5 min; the lab checks every 5 s, after 30 s).

The race this guards against is the event that arrives while the pod is being scheduled:
its cycle looked at the cluster before the change, so its failure says nothing about the
cluster after it. Every move request records the cycle it happened in, and a pod whose
cycle started before it goes to backoffQ rather than waiting among the unschedulable
for an event that has already passed. Likewise a pod updated while in flight.

The queue keeps its own clock (`clock`, monotonic seconds) so tests drive time by hand;
`run()` is the task that moves pods when their backoff ends and flushes old ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tuik8s.scheduler.framework import ClusterEvent, PodInfo

# upstream's defaults (KubeSchedulerConfiguration, pkg/scheduler/internal/queue)
POD_INITIAL_BACKOFF = 1.0
POD_MAX_BACKOFF = 10.0
UPSTREAM_UNSCHEDULABLE_FLUSH_PERIOD = 30.0
UPSTREAM_MAX_IN_UNSCHEDULABLE = 300.0
LAB_UNSCHEDULABLE_FLUSH_PERIOD = 5.0
LAB_MAX_IN_UNSCHEDULABLE = 30.0


@dataclass
class QueueTimings:
    initial_backoff: float = POD_INITIAL_BACKOFF
    max_backoff: float = POD_MAX_BACKOFF
    unschedulable_flush_period: float = LAB_UNSCHEDULABLE_FLUSH_PERIOD
    max_in_unschedulable: float = LAB_MAX_IN_UNSCHEDULABLE

    @classmethod
    def upstream(cls) -> QueueTimings:
        return cls(unschedulable_flush_period=UPSTREAM_UNSCHEDULABLE_FLUSH_PERIOD,
                   max_in_unschedulable=UPSTREAM_MAX_IN_UNSCHEDULABLE)


class QueuedPodInfo:
    """A pod in the queue and its scheduling history."""

    __slots__ = (
        "pod_info", "timestamp", "initial_attempt", "attempts", "unschedulable_plugins",
        "cycle", "updated_in_flight", "_token",
    )

    def __init__(self, pod_info: PodInfo, now: float) -> None:
        self.pod_info = pod_info
        self.timestamp = now  # when it last entered the queue
        self.initial_attempt: float | None = None
        self.attempts = 0
        self.unschedulable_plugins: set[str] = set()
        self.cycle = 0  # the scheduling cycle it was last popped in
        self.updated_in_flight = False
        self._token = 0  # the heap entry that is current; older ones are stale

    @property
    def key(self) -> str:
        return self.pod_info.key

    def __repr__(self) -> str:
        return f"<QueuedPodInfo {self.key} attempts={self.attempts}>"


def pod_spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether an update of an unscheduled pod may change where it fits (upstream's
    isPodUpdated: anything but status, resourceVersion and managed fields)."""
    if old.get("spec") != new.get("spec"):
        return True
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return om.get("labels") != nm.get("labels") or om.get("annotations") != nm.get("annotations")


class SchedulingQueue:
    """activeQ + backoffQ + unschedulable pods, keyed by `namespace/name`."""

    def __init__(
        self,
        timings: QueueTimings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        plugins_for_event: Callable[[ClusterEvent], set[str]] | None = None,
    ) -> None:
        self.timings = timings or QueueTimings()
        self.clock = clock
        self.plugins_for_event = plugins_for_event or (lambda event: set())
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self._seq = itertools.count()
        self._active: dict[str, QueuedPodInfo] = {}
        self._active_heap: list[tuple[int, float, int, str]] = []
        self._backoff: dict[str, QueuedPodInfo] = {}
        self._backoff_heap: list[tuple[float, int, str]] = []
        self._unschedulable: dict[str, QueuedPodInfo] = {}
        self._in_flight: dict[str, QueuedPodInfo] = {}
        self._getters: list[asyncio.Future[None]] = []
        self._wake: asyncio.Event | None = None

    # ---- what is where (for tests, logs and the scheduler) ------------------------------

    def where(self, key: str) -> str | None:
        """"active", "backoff", "unschedulable", "in-flight", or None."""
        for name, d in (("active", self._active), ("backoff", self._backoff),
                        ("unschedulable", self._unschedulable), ("in-flight", self._in_flight)):
            if key in d:
                return name
        return None

    def __len__(self) -> int:
        return len(self._active) + len(self._backoff) + len(self._unschedulable)

    def has_active(self) -> bool:
        """Pods are waiting to be scheduled right now."""
        return bool(self._active)

    def pending(self) -> dict[str, int]:
        return {"active": len(self._active), "backoff": len(self._backoff),
                "unschedulable": len(self._unschedulable), "in-flight": len(self._in_flight)}

    # ---- pods coming and going -------------------------------------------------------------

    def add(self, pod_info: PodInfo) -> None:
        """A new unscheduled pod: straight to activeQ (or an update, if it is known)."""
        if self.where(pod_info.key) is not None:
            self.update(pod_info)
            return
        self._push_active(QueuedPodInfo(pod_info, self.clock()))

    def update(self, pod_info: PodInfo) -> None:
        """A newer version of an unscheduled pod."""
        key = pod_info.key
        qpi = self._active.get(key)
        if qpi is not None:
            old_priority = qpi.pod_info.priority
            qpi.pod_info = pod_info
            if pod_info.priority != old_priority:
                self._push_active(qpi)
            return
        qpi = self._backoff.get(key)
        if qpi is not None:
            qpi.pod_info = pod_info
            return
        qpi = self._in_flight.get(key)
        if qpi is not None:
            if pod_spec_changed(qpi.pod_info.pod, pod_info.pod):
                qpi.updated_in_flight = True
            qpi.pod_info = pod_info
            return
        qpi = self._unschedulable.get(key)
        if qpi is not None:
            changed = pod_spec_changed(qpi.pod_info.pod, pod_info.pod)
            qpi.pod_info = pod_info
            if changed:
                del self._unschedulable[key]
                self._requeue(qpi)
            return
        self._push_active(QueuedPodInfo(pod_info, self.clock()))

    def delete(self, key: str) -> None:
        """The pod is gone, or no longer ours to schedule (bound, being deleted)."""
        for d in (self._active, self._backoff, self._unschedulable, self._in_flight):
            d.pop(key, None)  # heap entries of a removed key are skipped when popped

    # ---- popping ---------------------------------------------------------------------------

    def pop_nowait(self) -> QueuedPodInfo | None:
        while self._active_heap:
            _, _, token, key = heapq.heappop(self._active_heap)
            qpi = self._active.get(key)
            if qpi is None or qpi._token != token:
                continue
            del self._active[key]
            self.scheduling_cycle += 1
            qpi.cycle = self.scheduling_cycle
            qpi.attempts += 1
            qpi.updated_in_flight = False
            if qpi.initial_attempt is None:
                qpi.initial_attempt = self.clock()
            self._in_flight[key] = qpi
            return qpi
        return None

    async def pop(self) -> QueuedPodInfo:
        """The next pod to schedule; it is in flight until `done` or `add_unschedulable`."""
        while True:
            qpi = self.pop_nowait()
            if qpi is not None:
                return qpi
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            finally:
                with contextlib.suppress(ValueError):
                    self._getters.remove(fut)

    def done(self, key: str) -> None:
        """The pod's cycle ended in a decision (it is assumed now): it leaves the queue."""
        self._in_flight.pop(key, None)

    def requeue_in_flight(self) -> int:
        """Put pods whose cycle never ended (the scheduler loop died) back in activeQ."""
        stranded = list(self._in_flight.values())
        self._in_flight.clear()
        for qpi in stranded:
            self._push_active(qpi)
        return len(stranded)

    # ---- after a failed attempt -------------------------------------------------------------

    def add_unschedulable(self, qpi: QueuedPodInfo, plugins: Iterable[str] = ()) -> None:
        """No node fits `qpi` (rejected by `plugins`): wait for a cluster event, or back off
        at once if one came while it was being scheduled."""
        if self._in_flight.get(qpi.key) is not qpi:
            return  # deleted or replaced while in flight
        del self._in_flight[qpi.key]
        qpi.unschedulable_plugins = set(plugins)
        qpi.timestamp = self.clock()
        if self.move_request_cycle >= qpi.cycle or qpi.updated_in_flight:
            self._push_backoff(qpi)
        else:
            self._unschedulable[qpi.key] = qpi

    def add_backoff(self, qpi: QueuedPodInfo) -> None:
        """The attempt failed for another reason (an error, a rejected bind): retry after backoff."""
        if self._in_flight.get(qpi.key) is qpi:
            del self._in_flight[qpi.key]
        elif self.where(qpi.key) is not None:
            return
        qpi.timestamp = self.clock()
        self._push_backoff(qpi)

    def backoff_duration(self, qpi: QueuedPodInfo) -> float:
        duration = self.timings.initial_backoff
        for _ in range(1, qpi.attempts):
            if duration > self.timings.max_backoff - duration:
                return self.timings.max_backoff
            duration += duration
        return min(duration, self.timings.max_backoff)

    def backoff_expiry(self, qpi: QueuedPodInfo) -> float:
        return qpi.timestamp + self.backoff_duration(qpi)

    def is_backing_off(self, qpi: QueuedPodInfo) -> bool:
        return self.backoff_expiry(qpi) > self.clock()

    # ---- cluster events -----------------------------------------------------------------------

    def move_all_on(self, event: ClusterEvent) -> int:
        """`event` happened: move the unschedulable pods it may help; returns how many."""
        self.move_request_cycle = self.scheduling_cycle
        if not self._unschedulable:
            return 0
        interested = self.plugins_for_event(event)
        moving = [
            qpi for qpi in self._unschedulable.values()
            if not qpi.unschedulable_plugins or qpi.unschedulable_plugins & interested
        ]
        for qpi in moving:
            del self._unschedulable[qpi.key]
            self._requeue(qpi)
        return len(moving)

    def flush_backoff_completed(self) -> int:
        """Move the pods whose backoff has ended to activeQ."""
        now = self.clock()
        moved = 0
        while self._backoff_heap and self._backoff_heap[0][0] <= now:
            _, token, key = heapq.heappop(self._backoff_heap)
            qpi = self._backoff.get(key)
            if qpi is None or qpi._token != token:
                continue
            del self._backoff[key]
            self._push_active(qpi)
            moved += 1
        return moved

    def flush_unschedulable_leftover(self) -> int:
        """Move the pods that waited among the unschedulable longer than allowed."""
        now = self.clock()
        stale = [
            qpi for qpi in self._unschedulable.values()
            if now - qpi.timestamp > self.timings.max_in_unschedulable
        ]
        for qpi in stale:
            del self._unschedulable[qpi.key]
            self._requeue(qpi)
        return len(stale)

    def next_backoff_expiry(self) -> float | None:
        while self._backoff_heap:
            at, token, key = self._backoff_heap[0]
            qpi = self._backoff.get(key)
            if qpi is not None and qpi._token == token:
                return at
            heapq.heappop(self._backoff_heap)
        return None

    async def run(self) -> None:
        """Move pods whose backoff ended, and flush long-unschedulable ones, forever."""
        self._wake = asyncio.Event()
        next_flush = self.clock() + self.timings.unschedulable_flush_period
        while True:
            now = self.clock()
            if now >= next_flush:
                self.flush_unschedulable_leftover()
                next_flush = now + self.timings.unschedulable_flush_period
            self.flush_backoff_completed()
            wake_at = next_flush
            expiry = self.next_backoff_expiry()
            if expiry is not None:
                wake_at = min(wake_at, expiry)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, wake_at - self.clock()) + 0.001)

    # ---- internals ----------------------------------------------------------------------------

    def _requeue(self, qpi: QueuedPodInfo) -> None:
        if self.is_backing_off(qpi):
            self._push_backoff(qpi)
        else:
            self._push_active(qpi)

    def _push_active(self, qpi: QueuedPodInfo) -> None:
        qpi._token = next(self._seq)
        self._active[qpi.key] = qpi
        heapq.heappush(self._active_heap, (-qpi.pod_info.priority, qpi.timestamp, qpi._token, qpi.key))
        while self._getters:
            fut = self._getters.pop(0)
            if not fut.done():
                fut.set_result(None)
                break

    def _push_backoff(self, qpi: QueuedPodInfo) -> None:
        qpi._token = next(self._seq)
        self._backoff[qpi.key] = qpi
        expiry = self.backoff_expiry(qpi)
        heapq.heappush(self._backoff_heap, (expiry, qpi._token, qpi.key))
        if self._wake is not None:
            self._wake.set()
