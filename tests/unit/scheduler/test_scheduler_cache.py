"""The cache: assumed pods hold room at once; the watch confirms them, a failed bind frees it."""

from __future__ import annotations

from tests.unit.scheduler.helpers import info, node, pod
from tuik8s.scheduler.cache import Cache
from tuik8s.scheduler.framework import ClusterEvent
from tuik8s.scheduler.scheduler import node_events


def bound(p: dict, node_name: str, phase: str = "Running") -> dict:
    p = {**p, "spec": {**p["spec"], "nodeName": node_name}, "status": {"phase": phase}}
    return p


def test_assumed_pod_counts_at_once_and_is_confirmed_by_the_watch():
    c = Cache()
    c.add_node(node("a"))
    p = pod("x", cpu="1")
    c.assume(info(p), "a")
    ni = c.node_info("a")
    assert ni.requested_cpu == 1000 and c.is_assumed("uid-default-x")
    assert c.update_pod(bound(p, "a")) is False
    assert ni.requested_cpu == 1000 and not c.is_assumed("uid-default-x")
    c.forget(info(p))  # too late: it is bound, nothing to give back
    assert ni.requested_cpu == 1000


def test_a_failed_bind_gives_the_room_back():
    c = Cache()
    c.add_node(node("a"))
    p = info(pod("x", cpu="1"))
    c.assume(p, "a")
    c.forget(p)
    assert c.node_info("a").requested_cpu == 0 and not c.knows(p.uid)


def test_finished_and_deleted_pods_free_their_room():
    c = Cache()
    c.add_node(node("a"))
    p = bound(pod("x", cpu="1"), "a")
    assert c.add_pod(p) is False
    assert c.node_info("a").requested_cpu == 1000
    assert c.update_pod(bound(pod("x", cpu="1"), "a", phase="Succeeded")) is True
    assert c.node_info("a").requested_cpu == 0
    c.add_pod(bound(pod("y", cpu="1"), "a"))
    assert c.remove_pod(bound(pod("y", cpu="1"), "a")) is True
    assert c.node_info("a").requested_cpu == 0
    assert c.remove_pod(pod("never-seen")) is False


def test_pods_on_a_node_not_seen_yet_are_counted_when_it_comes():
    c = Cache()
    c.add_pod(bound(pod("x", cpu="1"), "late"))
    assert c.node_info("late") is None and c.num_nodes == 0
    c.add_node(node("late"))
    assert c.node_info("late").requested_cpu == 1000
    assert [ni.name for ni in c.snapshot().nodes] == ["late"]


def test_a_removed_node_leaves_the_snapshot():
    c = Cache()
    c.add_node(node("a"))
    c.add_node(node("b"))
    assert [ni.name for ni in c.snapshot().nodes] == ["a", "b"]
    c.remove_node(node("a"))
    assert [ni.name for ni in c.snapshot().nodes] == ["b"]


def test_snapshot_interleaves_zones():
    c = Cache()
    for name, zone in (("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("b2", "b")):
        c.add_node(node(name, labels={"topology.kubernetes.io/zone": zone}))
    assert [ni.name for ni in c.snapshot().nodes] == ["a1", "b1", "a2", "b2", "a3"]


def test_snapshot_knows_cordoned_and_tainted_nodes():
    c = Cache()
    c.add_node(node("a"))
    snap = c.snapshot()
    assert not snap.unschedulable and not snap.tainted
    c.update_node(node("a", unschedulable=True, taints=[{"key": "k", "effect": "NoSchedule"}]))
    assert snap.unschedulable == {"a"} and snap.tainted == {"a"}
    c.update_node(node("a"))
    assert not snap.unschedulable and not snap.tainted


def test_node_events_are_changes_for_the_better():
    base = node("a", cpu="4")
    assert node_events(base, node("a", cpu="4")) == []
    assert node_events(base, node("a", cpu="8")) == [ClusterEvent.NodeAllocatableChange]
    assert node_events(base, node("a", cpu="2")) == []
    assert node_events(node("a", unschedulable=True), base) == [ClusterEvent.NodeSpecUnschedulableChange]
    assert node_events(base, node("a", unschedulable=True)) == []
    tainted = node("a", taints=[{"key": "k", "effect": "NoSchedule"}])
    assert node_events(tainted, base) == [ClusterEvent.NodeTaintChange]
    assert node_events(base, tainted) == []
    assert node_events(base, node("a", labels={"disk": "ssd"})) == [ClusterEvent.NodeLabelChange]
    heartbeat = node("a", cpu="4")
    heartbeat["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-01-01T00:00:00Z"
    assert node_events(base, heartbeat) == []
    not_ready = node("a", cpu="4")
    not_ready["status"]["conditions"][0]["status"] = "False"
    assert node_events(base, not_ready) == [ClusterEvent.NodeConditionChange]
