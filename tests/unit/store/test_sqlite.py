"""The SQLite store: revisions, atomic writes, watch resume, compaction, restart."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import pytest

from tuik8s.api import errors
from tuik8s.store.base import ADDED, DELETE, DELETED, MODIFIED, UNCHANGED_OBJECT, Expired
from tuik8s.store.sqlite import SqliteStore, decode


def pod(name: str, ns: str = "default", **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": {}}


def create(obj: dict):
    def mutate(current):
        if current is not None:
            raise errors.already_exists("pods", obj["metadata"]["name"])
        return obj

    return mutate


@pytest.fixture
async def store(tmp_path: Path):
    s = await SqliteStore.open(tmp_path / "state.db")
    yield s
    await s.close()


async def test_each_write_gets_the_next_revision_as_resource_version(store: SqliteStore) -> None:
    first = await store.write("pods", "default", "a", create(pod("a")))
    second = await store.write("pods", "default", "b", create(pod("b")))
    assert second.obj.rv == first.obj.rv + 1
    assert decode(second.obj)["metadata"]["resourceVersion"] == str(second.obj.rv)
    assert store.revision == second.obj.rv


async def test_a_failed_write_changes_nothing(store: SqliteStore) -> None:
    await store.write("pods", "default", "a", create(pod("a")))
    before = store.revision
    with pytest.raises(errors.StatusError) as e:
        await store.write("pods", "default", "a", create(pod("a")))
    assert e.value.code == 409
    assert store.revision == before
    assert len(store.list("pods")) == 1


async def test_concurrent_read_modify_writes_lose_no_update(store: SqliteStore) -> None:
    obj = pod("counter")
    obj["spec"]["n"] = 0
    await store.write("pods", "default", "counter", create(obj))

    def incr(current):
        current["spec"]["n"] += 1
        return current

    await asyncio.gather(*(store.write("pods", "default", "counter", incr) for _ in range(200)))
    assert decode(store.get("pods", "default", "counter"))["spec"]["n"] == 200


async def test_unchanged_write_does_not_advance_the_revision(store: SqliteStore) -> None:
    await store.write("pods", "default", "a", create(pod("a")))
    before = store.revision
    await store.write("pods", "default", "a", lambda cur: UNCHANGED_OBJECT)
    assert store.revision == before


async def test_list_is_sorted_and_scoped_by_namespace(store: SqliteStore) -> None:
    for ns, name in [("b", "z"), ("a", "y"), ("a", "x")]:
        await store.write("pods", ns, name, create(pod(name, ns)))
    assert [(s.namespace, s.name) for s in store.list("pods")] == [("a", "x"), ("a", "y"), ("b", "z")]
    assert [s.name for s in store.list("pods", "a")] == ["x", "y"]
    assert store.list("pods", "c") == []


async def test_watch_replays_from_a_revision_then_streams_live(store: SqliteStore) -> None:
    first = await store.write("pods", "default", "a", create(pod("a")))
    await store.write("pods", "default", "b", create(pod("b")))
    w = store.watch("pods", first.obj.rv)
    await store.write("pods", "default", "a", lambda cur: DELETE)
    got = [await asyncio.wait_for(w.get(), 1) for _ in range(2)]
    w.close()
    assert [(e.type, e.obj.name) for e in got] == [(ADDED, "b"), (DELETED, "a")]
    assert got[1].prev is not None and got[1].prev.name == "a"


async def test_watch_from_a_compacted_revision_is_expired(tmp_path: Path) -> None:
    s = await SqliteStore.open(tmp_path / "state.db", window=10)
    try:
        for i in range(40):
            await s.write("pods", "default", f"p{i}", create(pod(f"p{i}")))
        with pytest.raises(Expired):
            s.watch("pods", 1)
        w = s.watch("pods", s.revision - 5)
        w.close()
    finally:
        await s.close()


async def test_the_watch_log_keeps_at_most_a_tenth_more_than_its_window(tmp_path: Path) -> None:
    s = await SqliteStore.open(tmp_path / "state.db", window=100)
    try:
        for i in range(500):
            await s.write("configmaps", "default", f"c{i}", create(pod(f"c{i}")))
            assert s.revision - s.oldest_revision <= 110
        # every revision within the window can still be resumed from, older ones cannot
        w = s.watch("configmaps", s.revision - 100)
        assert len(w.drain()) == 100
        w.close()
        with pytest.raises(Expired):
            s.watch("configmaps", s.oldest_revision - 1)
    finally:
        await s.close()


async def test_each_write_holds_memory_near_its_own_size(tmp_path: Path) -> None:
    """Under sustained writes the objects and the watch log are what the server keeps: a
    750-byte object must not pin a buffer ten times its size (orjson's output did)."""
    s = await SqliteStore.open(tmp_path / "state.db")
    writes = 400
    try:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(writes):
            obj = {**pod(f"c{i}"), "kind": "ConfigMap", "data": {"pad": "x" * 512}}
            await s.write("configmaps", "default", f"c{i}", create(obj))
            if i >= 10:
                await s.write("configmaps", "default", f"c{i - 10}", lambda cur: DELETE)
        per_write = (tracemalloc.get_traced_memory()[0] - before) / (2 * writes - 10)
    finally:
        tracemalloc.stop()
        await s.close()
    assert per_write < 3000, f"{per_write:.0f} bytes held per write of a ~750-byte object"


async def test_everything_acknowledged_survives_a_restart(tmp_path: Path) -> None:
    s = await SqliteStore.open(tmp_path / "state.db")
    await asyncio.gather(*(s.write("pods", "default", f"p{i}", create(pod(f"p{i}", app="web"))) for i in range(100)))
    await s.write("pods", "default", "p0", lambda cur: DELETE)
    rv = s.revision
    await s.close()
    s = await SqliteStore.open(tmp_path / "state.db")
    try:
        assert s.revision == rv
        assert len(s.list("pods")) == 99
        assert s.get("pods", "default", "p1").labels == {"app": "web"}
        # a watch can resume across the restart
        w = s.watch("pods", rv - 1)
        event = await asyncio.wait_for(w.get(), 1)
        w.close()
        assert (event.type, event.obj.name) == (DELETED, "p0")
        modified = await s.write("pods", "default", "p1", lambda cur: {**cur, "spec": {"x": 1}})
        assert modified.type == MODIFIED and modified.obj.rv == rv + 1
    finally:
        await s.close()
