"""The scheduler's cycle and its writes, with the API and the informers faked.

Each test feeds objects through fake informers (calling the scheduler's handlers as the
real informer would), runs cycles by hand, and checks what would have been written: the
binding, the PodScheduled condition, the events.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from tests.unit.scheduler.helpers import node, pod
from tuik8s.client.errors import ApiError
from tuik8s.client.informer import object_key
from tuik8s.controllers.runner import ControllerContext, Timings
from tuik8s.scheduler.events import EventSink
from tuik8s.scheduler.scheduler import Scheduler, queue_timings


class FakeClient:
    def __init__(self) -> None:
        self.binds: list[tuple[str, str, str]] = []
        self.patches: list[tuple[str, dict]] = []
        self.events: list[tuple[str, str, str, str]] = []
        self.bind_error: Exception | None = None
        self.bind_gate: asyncio.Event | None = None

    async def bind(self, namespace: str, name: str, node_name: str, uid: str | None = None) -> dict:
        if self.bind_gate is not None:
            await self.bind_gate.wait()
        if self.bind_error is not None:
            raise self.bind_error
        self.binds.append((namespace, name, node_name))
        return {}

    async def patch(self, res: str, name: str, patch: Any, **kw: Any) -> dict:
        assert kw["subresource"] == "status" and kw["patch_type"] == "strategic"
        self.patches.append((name, patch))
        return {}

    async def record_event(self, involved: dict, reason: str, message: str, type: str = "Normal",
                           component: str = "", **kw: Any) -> dict:
        self.events.append((reason, message, type, component))
        return {}


class FakeInformer:
    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.handlers: list[tuple[Any, Any, Any]] = []

    def add_handler(self, on_add: Any, on_update: Any, on_delete: Any) -> None:
        self.handlers.append((on_add, on_update, on_delete))

    def get(self, key: str) -> dict | None:
        return self.objects.get(key)

    async def wait_synced(self) -> None:
        return None

    def put(self, obj: dict) -> None:
        key = object_key(obj)
        old = self.objects.get(key)
        self.objects[key] = obj
        for on_add, on_update, _ in self.handlers:
            on_add(obj) if old is None else on_update(old, obj)

    def remove(self, obj: dict) -> None:
        self.objects.pop(object_key(obj), None)
        for _, _, on_delete in self.handlers:
            on_delete(obj)


class FakeInformers:
    def __init__(self) -> None:
        self.by_name = {"pods": FakeInformer(), "nodes": FakeInformer()}

    def informer(self, res: str, **kw: Any) -> FakeInformer:
        return self.by_name[res]


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def env():
    client, informers, clock = FakeClient(), FakeInformers(), Clock()
    sched = Scheduler(ControllerContext(client, informers, Timings()), rng=random.Random(3))  # type: ignore[arg-type]
    sched.queue.clock = clock
    return sched, client, informers.by_name["pods"], informers.by_name["nodes"], clock


async def settle(sched: Scheduler) -> None:
    while sched._tasks:
        await asyncio.gather(*list(sched._tasks))


def cycle(sched: Scheduler) -> bool:
    qpi = sched.queue.pop_nowait()
    assert qpi is not None
    return sched.schedule_one(qpi)


def bound(p: dict, node_name: str) -> dict:
    return {**p, "spec": {**p["spec"], "nodeName": node_name}, "status": {"phase": "Pending"}}


async def test_binds_and_says_so(env):
    sched, client, pods, nodes, _ = env
    nodes.put(node("a"))
    pods.put(pod("web"))
    assert sched.queue.where("default/web") == "active"
    assert cycle(sched) is True
    assert sched.cache.is_assumed("uid-default-web")
    await settle(sched)
    assert client.binds == [("default", "web", "a")]
    assert sched.events.pending() == [("Scheduled", "Successfully assigned default/web to a", "Normal")]
    pods.put(bound(pod("web"), "a"))  # the watch shows it bound
    assert not sched.cache.is_assumed("uid-default-web") and sched.cache.knows("uid-default-web")
    assert sched.queue.where("default/web") is None


async def test_unschedulable_pod_is_told_once(env):
    sched, client, pods, nodes, clock = env
    nodes.put(node("a", memory="1Gi"))
    pods.put(pod("huge", memory="2Gi"))
    assert cycle(sched) is False
    await settle(sched)
    want = "0/1 nodes are available: 1 Insufficient memory."
    assert sched.events.pending() == [("FailedScheduling", want, "Warning")]
    (name, patch), = client.patches
    cond = patch["status"]["conditions"][0]
    assert (name, cond["type"], cond["status"], cond["reason"], cond["message"]) == (
        "huge", "PodScheduled", "False", "Unschedulable", want)
    assert sched.queue.where("default/huge") == "unschedulable"
    # tried again (the periodic flush), failing the same way: nothing new is written
    clock.now += 60
    sched.queue.flush_unschedulable_leftover()
    assert cycle(sched) is False
    await settle(sched)
    assert len(client.patches) == 1 and len(sched.events.pending()) == 1


async def test_a_node_added_brings_the_pod_back(env):
    sched, client, pods, nodes, clock = env
    nodes.put(node("a", memory="1Gi"))
    pods.put(pod("huge", memory="2Gi"))
    cycle(sched)
    clock.now += 2
    nodes.put(node("big", memory="8Gi"))
    assert sched.queue.where("default/huge") == "active"
    assert cycle(sched) is True
    await settle(sched)
    assert client.binds == [("default", "huge", "big")]


async def test_a_failed_bind_gives_the_room_back_and_retries_after_backoff(env):
    sched, client, pods, nodes, _ = env
    nodes.put(node("a"))
    pods.put(pod("web", cpu="1"))
    client.bind_error = ApiError(500, "InternalError", "the store is on fire")
    assert cycle(sched) is True
    await settle(sched)
    assert not sched.cache.knows("uid-default-web")
    assert sched.cache.node_info("a").requested_cpu == 0
    assert sched.queue.where("default/web") == "backoff"
    reason, message, kind = sched.events.pending()[0]
    assert (reason, kind) == ("FailedScheduling", "Warning")
    assert message == 'running Bind plugin "DefaultBinder": the store is on fire'
    assert client.patches[0][1]["status"]["conditions"][0]["reason"] == "SchedulerError"


async def test_a_pod_deleted_before_its_bind_is_dropped(env):
    sched, client, pods, nodes, _ = env
    nodes.put(node("a"))
    p = pod("web", cpu="1")
    pods.put(p)
    client.bind_gate = asyncio.Event()
    client.bind_error = ApiError(404, "NotFound", 'pods "web" not found')
    assert cycle(sched) is True
    pods.remove(p)
    assert sched.cache.node_info("a").requested_cpu == 0  # deleting frees the assumed room
    client.bind_gate.set()
    await settle(sched)
    assert sched.queue.where("default/web") is None and not client.patches


async def test_updates_of_an_assumed_pod_do_not_requeue_it(env):
    sched, client, pods, nodes, _ = env
    nodes.put(node("a"))
    p = pod("web")
    pods.put(p)
    client.bind_gate = asyncio.Event()
    cycle(sched)
    labelled = {**p, "metadata": {**p["metadata"], "labels": {"x": "y"}}}
    pods.put(labelled)
    assert sched.queue.where("default/web") is None
    client.bind_gate.set()
    await settle(sched)
    assert client.binds == [("default", "web", "a")]


async def test_pods_that_are_not_ours(env):
    sched, _, pods, nodes, _ = env
    nodes.put(node("a"))
    other = pod("theirs")
    other["spec"]["schedulerName"] = "my-scheduler"
    pods.put(other)
    leaving = pod("leaving")
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    pods.put(leaving)
    assert sched.queue.pending()["active"] == 0
    queued = pod("mine")
    pods.put(queued)
    assert sched.queue.where("default/mine") == "active"
    gone = {**queued, "metadata": {**queued["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    pods.put(gone)
    assert sched.queue.where("default/mine") is None


async def test_no_nodes_at_all(env):
    sched, client, pods, _, _ = env
    pods.put(pod("web"))
    cycle(sched)
    await settle(sched)
    assert sched.events.pending() == [("FailedScheduling", "no nodes available to schedule pods", "Warning")]


def test_queue_timings_come_from_the_context():
    t = Timings()
    assert queue_timings(t).max_in_unschedulable == 30
    t.extra["pod_max_in_unschedulable"] = 300.0
    assert queue_timings(t).max_in_unschedulable == 300


async def test_event_sink_defers_while_busy_and_drops_when_full():
    written: list[str] = []
    busy = True

    async def write(involved: dict, reason: str, message: str, type: str) -> None:
        written.append(message)

    sink = EventSink(write, buffer=3, busy=lambda: busy, busy_rate=20)
    for i in range(5):
        sink.record({}, "Scheduled", str(i))
    assert sink.dropped == 2 and len(sink) == 3
    runner = asyncio.create_task(sink.run())
    try:
        await asyncio.sleep(0.02)
        assert len(written) <= 1  # at most 20/s while busy
        busy = False
        for _ in range(100):
            if len(written) == 3:
                break
            await asyncio.sleep(0.01)
        assert written == ["0", "1", "2"]
    finally:
        runner.cancel()
