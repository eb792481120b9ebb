"""`ApiClient.record_event` decides like upstream's EventCorrelator: combine, count, drop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from tuik8s.client.client import COMBINED_PREFIX, SPAM_BURST, ApiClient, EventCorrelator
from tuik8s.client.transport import RawResponse

RS = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "default", "uid": "u1"}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeTransport:
    """Answers creates and patches of Events; remembers what was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def request(
        self, method: str, path: str, *, query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None, body: bytes | None = None,
    ) -> RawResponse:
        obj = orjson.loads(body or b"{}")
        self.calls.append((method, path, obj))
        if method == "POST":
            return RawResponse(201, "application/json", orjson.dumps({**obj, "metadata": obj["metadata"]}))
        return RawResponse(200, "application/json", orjson.dumps({"metadata": {"name": path.rsplit("/", 1)[-1]}, **obj}))

    def stream(self, method: str, path: str, **kw: Any) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def test_the_tenth_distinct_message_starts_a_combined_event() -> None:
    c = EventCorrelator(clock=Clock())
    source = ("replicaset-controller", "", "ReplicaSet", "default", "web-1", "u1", "apps/v1")
    keys = [c.aggregate(source, "Normal", "SuccessfulCreate", f"Created pod: web-1-{i}") for i in range(12)]
    assert [m for _, m in keys[:9]] == [f"Created pod: web-1-{i}" for i in range(9)]
    assert len({k for k, _ in keys[:9]}) == 9
    assert keys[9][1] == COMBINED_PREFIX + "Created pod: web-1-9"
    assert keys[9][0] == keys[10][0] == keys[11][0]  # one combined event, counted up


def test_similar_events_are_combined_again_only_within_ten_minutes() -> None:
    clock = Clock()
    c = EventCorrelator(clock=clock)
    source = ("kubelet", "node-1", "Pod", "default", "p", "u", "v1")
    for i in range(10):
        c.aggregate(source, "Warning", "BackOff", f"m{i}")
    clock.now += 601
    assert c.aggregate(source, "Warning", "BackOff", "m10")[1] == "m10"


def test_a_source_may_burst_25_events_about_one_object_then_one_every_5_minutes() -> None:
    clock = Clock()
    c = EventCorrelator(clock=clock)
    rs = ("replicaset-controller", "", "ReplicaSet", "default", "web-1", "u1", "apps/v1")
    other = ("replicaset-controller", "", "ReplicaSet", "default", "web-2", "u2", "apps/v1")
    assert all(c.allow(rs) for _ in range(SPAM_BURST))
    assert not c.allow(rs)
    assert c.allow(other)  # per object
    clock.now += 300
    assert c.allow(rs) and not c.allow(rs)


async def test_a_replicaset_creating_200_pods_writes_25_events() -> None:
    transport = FakeTransport()
    api = ApiClient(transport)  # type: ignore[arg-type]
    for i in range(200):
        await api.record_event(RS, "SuccessfulCreate", f"Created pod: web-1-{i}", component="replicaset-controller")
    creates = [obj for method, _, obj in transport.calls if method == "POST"]
    patches = [obj for method, _, obj in transport.calls if method == "PATCH"]
    assert len(creates) == 10 and len(patches) == SPAM_BURST - 10
    assert creates[-1]["message"] == COMBINED_PREFIX + "Created pod: web-1-9"
    assert patches[-1]["count"] == SPAM_BURST - 9
    assert patches[-1]["message"].startswith(COMBINED_PREFIX)
    assert api.correlator.dropped == 200 - SPAM_BURST


async def test_a_repeat_is_a_count_bump_even_when_recorded_concurrently() -> None:
    import asyncio

    transport = FakeTransport()
    api = ApiClient(transport)  # type: ignore[arg-type]
    await asyncio.gather(*(api.record_event(RS, "ScalingReplicaSet", "same", component="c") for _ in range(3)))
    assert [method for method, _, _ in transport.calls] == ["POST", "PATCH", "PATCH"]
    assert [obj["count"] for method, _, obj in transport.calls if method == "PATCH"] == [2, 3]
