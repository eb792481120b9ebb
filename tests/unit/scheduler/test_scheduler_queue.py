"""The scheduling queue: order, backoff, and which cluster events bring a pod back.

The queue reads time from a clock the test moves by hand, so backoffs of seconds and
flushes after minutes are checked exactly and instantly.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.scheduler.helpers import info, pod
from tuik8s.scheduler.framework import ClusterEvent
from tuik8s.scheduler.queue import QueueTimings, SchedulingQueue
from tuik8s.scheduler.runtime import Framework, Profile


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def q(clock: Clock) -> SchedulingQueue:
    fwk = Framework(Profile())
    return SchedulingQueue(QueueTimings(), clock=clock, plugins_for_event=fwk.plugins_for_event)


def keys(q: SchedulingQueue) -> list[str]:
    out = []
    while (qpi := q.pop_nowait()) is not None:
        out.append(qpi.key)
        q.done(qpi.key)
    return out


def test_higher_priority_first_then_first_come(q, clock):
    for name, prio in (("low", 0), ("high", 1000), ("low2", 0), ("mid", 10)):
        q.add(info(pod(name, priority=prio)))
        clock.now += 1
    assert keys(q) == ["default/high", "default/mid", "default/low", "default/low2"]


def test_a_pod_waits_in_the_queue_once(q):
    q.add(info(pod("a")))
    q.add(info(pod("a")))
    assert keys(q) == ["default/a"]


def test_backoff_doubles_from_1s_to_10s(q, clock):
    q.add(info(pod("a")))
    durations = []
    for _ in range(6):
        qpi = q.pop_nowait()
        q.add_backoff(qpi)
        durations.append(q.backoff_duration(qpi))
        assert q.where("default/a") == "backoff"
        clock.now += durations[-1] - 0.01
        q.flush_backoff_completed()
        assert q.where("default/a") == "backoff"
        clock.now += 0.01
        q.flush_backoff_completed()
        assert q.where("default/a") == "active"
    assert durations == [1, 2, 4, 8, 10, 10]


def test_unschedulable_pod_waits_for_an_event_its_plugin_cares_about(q, clock):
    q.add(info(pod("big", memory="100Gi")))
    qpi = q.pop_nowait()
    q.add_unschedulable(qpi, {"NodeResourcesFit"})
    assert q.where("default/big") == "unschedulable"
    assert q.move_all_on(ClusterEvent.NodeTaintChange) == 0  # taints do not make room
    assert q.where("default/big") == "unschedulable"
    clock.now += 5
    assert q.move_all_on(ClusterEvent.NodeAdd) == 1
    assert q.where("default/big") == "active"  # its 1 s backoff is over


def test_an_event_during_backoff_moves_the_pod_to_backoff(q, clock):
    q.add(info(pod("big")))
    q.add_unschedulable(q.pop_nowait(), {"NodeResourcesFit"})
    clock.now += 0.5
    q.move_all_on(ClusterEvent.AssignedPodDelete)
    assert q.where("default/big") == "backoff"
    clock.now += 0.5
    q.flush_backoff_completed()
    assert q.where("default/big") == "active"


def test_a_cordoned_node_uncordoned_brings_back_what_it_rejected(q, clock):
    q.add(info(pod("a")))
    q.add_unschedulable(q.pop_nowait(), {"NodeUnschedulable"})
    clock.now += 2
    q.move_all_on(ClusterEvent.NodeAllocatableChange)
    assert q.where("default/a") == "unschedulable"
    q.move_all_on(ClusterEvent.NodeSpecUnschedulableChange)
    assert q.where("default/a") == "active"


def test_a_pod_rejected_by_nothing_in_particular_moves_on_any_event(q, clock):
    q.add(info(pod("a")))
    q.add_unschedulable(q.pop_nowait(), set())  # e.g. there were no nodes at all
    clock.now += 2
    q.move_all_on(ClusterEvent.NodeConditionChange)
    assert q.where("default/a") == "active"


def test_an_event_while_the_pod_was_being_scheduled_is_not_lost(q, clock):
    q.add(info(pod("a")))
    qpi = q.pop_nowait()
    q.move_all_on(ClusterEvent.NodeAdd)  # arrives mid-cycle
    q.add_unschedulable(qpi, {"NodeResourcesFit"})
    assert q.where("default/a") == "backoff"


def test_an_update_of_the_pod_itself_brings_it_back(q, clock):
    q.add(info(pod("a")))
    q.add_unschedulable(q.pop_nowait(), {"TaintToleration"})
    clock.now += 2
    status_only = pod("a")
    status_only["status"]["conditions"] = [{"type": "PodScheduled", "status": "False"}]
    q.update(info(status_only))
    assert q.where("default/a") == "unschedulable"
    tolerating = pod("a", tolerations=[{"operator": "Exists"}])
    q.update(info(tolerating))
    assert q.where("default/a") == "active"
    assert q.pop_nowait().pod_info.pod is not None


def test_long_unschedulable_pods_are_flushed(q, clock):
    q.add(info(pod("a")))
    q.add_unschedulable(q.pop_nowait(), {"NodeAffinity"})
    clock.now += q.timings.max_in_unschedulable - 1
    assert q.flush_unschedulable_leftover() == 0
    clock.now += 2
    assert q.flush_unschedulable_leftover() == 1
    assert q.where("default/a") == "active"


def test_upstream_timings():
    t = QueueTimings.upstream()
    assert (t.initial_backoff, t.max_backoff, t.unschedulable_flush_period, t.max_in_unschedulable) == (1, 10, 30, 300)


def test_a_deleted_pod_leaves_every_queue(q):
    q.add(info(pod("a")))
    q.add(info(pod("b")))
    qpi = q.pop_nowait()
    q.delete("default/a")  # in flight
    q.delete("default/b")  # active
    q.add_unschedulable(qpi, set())
    assert q.where("default/a") is None and q.where("default/b") is None
    assert q.pop_nowait() is None


def test_stranded_in_flight_pods_are_requeued(q):
    q.add(info(pod("a")))
    q.pop_nowait()
    assert q.requeue_in_flight() == 1
    assert q.where("default/a") == "active"


async def test_pop_waits_for_a_pod(q):
    getter = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add(info(pod("a")))
    qpi = await asyncio.wait_for(getter, 1)
    assert qpi.key == "default/a" and qpi.attempts == 1


async def test_run_moves_pods_whose_backoff_ended():
    q = SchedulingQueue(QueueTimings(initial_backoff=0.05, max_backoff=0.1))
    runner = asyncio.create_task(q.run())
    try:
        q.add(info(pod("a")))
        q.add_backoff(q.pop_nowait())
        qpi = await asyncio.wait_for(q.pop(), 2)
        assert qpi.attempts == 2
    finally:
        runner.cancel()
