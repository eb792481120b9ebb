"""The DaemonSet controller's decisions: which nodes, which pods go, what the status says."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tuik8s.api.taints import tolerates
from tuik8s.controllers.daemonset import (
    CONTROLLER_REVISION_HASH_LABEL,
    DAEMON_TOLERATIONS,
    TEMPLATE_GENERATION_LABEL,
    Backoff,
    Expectations,
    add_daemon_tolerations,
    daemon_pod,
    daemonset_status,
    group_by_node,
    is_pod_updated,
    node_name_affinity,
    node_should_run_daemon_pod,
    plan_node,
    revision_data,
    revision_matches,
    rolling_update_plan,
    scaled_value,
    target_node_name,
    template_generation,
    unscheduled_pods_without_node,
)

Obj = dict[str, Any]
NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    spec: Obj = {"taints": taints} if taints else {}
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}}, "spec": spec}


def daemonset(
    pod_spec: Obj | None = None, strategy: Obj | None = None, min_ready: int = 0, annotations: dict[str, str] | None = None
) -> Obj:
    spec: Obj = {
        "selector": {"matchLabels": {"app": "agent"}},
        "template": {
            "metadata": {"labels": {"app": "agent"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **(pod_spec or {})},
        },
        "updateStrategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        "minReadySeconds": min_ready,
    }
    meta: Obj = {"name": "agent", "namespace": "default", "uid": "ds-uid", "generation": 1}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": spec, "status": {}}


def pod(
    name: str, node_name: str, hash_: str = "new", *, bound: bool = True, ready_for: float | None = 600,
    phase: str = "Running", deleting: bool = False, age: float = 1000,
) -> Obj:
    meta: Obj = {
        "name": name, "namespace": "default", "uid": f"uid-{name}", "creationTimestamp": stamp(age),
        "labels": {"app": "agent", CONTROLLER_REVISION_HASH_LABEL: hash_},
    }
    if deleting:
        meta["deletionTimestamp"] = stamp(0)
    spec: Obj = {"affinity": node_name_affinity(None, node_name)}
    if bound:
        spec["nodeName"] = node_name
    conditions = []
    if ready_for is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": stamp(ready_for)})
    return {"metadata": meta, "spec": spec, "status": {"phase": phase, "conditions": conditions}}


# ---- eligibility -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
        ({"key": "k", "value": "v"}, {"key": "k", "value": "v", "effect": "NoExecute"}, True),
        ({"key": "k", "value": "other"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
        ({"key": "k", "operator": "Exists"}, {"key": "k", "value": "anything", "effect": "NoSchedule"}, True),
        ({"operator": "Exists"}, {"key": "any", "effect": "NoExecute"}, True),
        ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, {"key": "k", "effect": "NoSchedule"}, False),
        ({"key": "other", "operator": "Exists"}, {"key": "k", "effect": "NoSchedule"}, False),
    ],
    ids=["equal", "no-effect-matches-all", "wrong-value", "exists", "wildcard", "wrong-effect", "wrong-key"],
)
def test_tolerates(toleration: Obj, taint: Obj, expected: bool) -> None:
    assert tolerates(toleration, taint) is expected


@pytest.mark.parametrize(
    ("the_node", "pod_spec", "expected"),
    [
        (node("a"), {}, (True, True)),
        (node("a", {"disk": "ssd"}), {"nodeSelector": {"disk": "ssd"}}, (True, True)),
        (node("a"), {"nodeSelector": {"disk": "ssd"}}, (False, False)),
        (node("a"), {"nodeName": "b"}, (False, False)),
        (
            node("a", {"zone": "z1"}),
            {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]},
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]},
            ]}}}},
            (True, True),
        ),
        (
            node("a"),
            {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]},
            ]}}}},
            (False, False),
        ),
        (node("a", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]), {}, (False, True)),
        (node("a", taints=[{"key": "dedicated", "value": "db", "effect": "NoExecute"}]), {}, (False, False)),
        (node("a", taints=[{"key": "dedicated", "value": "db", "effect": "PreferNoSchedule"}]), {}, (True, True)),
        (
            node("a", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
            {"tolerations": [{"key": "dedicated", "operator": "Exists"}]},
            (True, True),
        ),
        (
            node("a", taints=[
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
                {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"},
            ]),
            {},
            (True, True),
        ),
        (node("a", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]), {}, (False, True)),
        (
            node("a", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
            {"hostNetwork": True},
            (True, True),
        ),
    ],
    ids=[
        "plain", "selector-match", "selector-miss", "other-nodename", "affinity-any-term", "affinity-field-miss",
        "noschedule-taint", "noexecute-taint", "prefer-ignored", "tolerated", "default-tolerations",
        "network-unavailable", "network-unavailable-hostnetwork",
    ],
)
def test_node_should_run_daemon_pod(the_node: Obj, pod_spec: Obj, expected: tuple[bool, bool]) -> None:
    assert node_should_run_daemon_pod(the_node, daemonset(pod_spec)) == expected


def test_default_tolerations_replace_a_lookalike_and_keep_the_rest() -> None:
    spec = {"tolerations": [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
        {"key": "mine", "operator": "Exists"},
    ]}
    add_daemon_tolerations(spec)
    assert spec["tolerations"][0] == DAEMON_TOLERATIONS[0]  # no tolerationSeconds: never evicted
    assert spec["tolerations"][1] == {"key": "mine", "operator": "Exists"}
    assert len(spec["tolerations"]) == 1 + len(DAEMON_TOLERATIONS)


def test_node_affinity_pins_the_node_and_keeps_preferences() -> None:
    affinity = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "x", "operator": "Exists"}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": []}}],
    }}
    pinned = node_name_affinity(affinity, "n1")
    required = pinned["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required == {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}
    assert pinned["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert "matchExpressions" in affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]


def test_target_node_from_binding_or_affinity() -> None:
    assert target_node_name(pod("p", "n1", bound=True)) == "n1"
    assert target_node_name(pod("p", "n2", bound=False)) == "n2"
    assert target_node_name({"spec": {}}) is None


def test_daemon_pod_shape() -> None:
    ds = daemonset({"tolerations": [{"key": "x", "operator": "Exists"}]})
    ds["spec"]["template"]["metadata"]["annotations"] = {"note": "hi"}
    p = daemon_pod(ds, "n1", "abc", 3)
    meta = p["metadata"]
    assert meta["generateName"] == "agent-"
    assert meta["labels"] == {"app": "agent", CONTROLLER_REVISION_HASH_LABEL: "abc", TEMPLATE_GENERATION_LABEL: "3"}
    assert meta["annotations"] == {"note": "hi"}
    assert meta["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "ds-uid",
        "controller": True, "blockOwnerDeletion": True,
    }]
    assert target_node_name(p) == "n1" and "nodeName" not in p["spec"]  # the scheduler binds it
    assert p["spec"]["tolerations"][0] == {"key": "x", "operator": "Exists"}
    assert ds["spec"]["template"]["spec"]["tolerations"] == [{"key": "x", "operator": "Exists"}]  # template untouched


# ---- what each node needs ----------------------------------------------------------------


def test_plan_creates_on_an_empty_node_and_deletes_where_it_may_not_run() -> None:
    ds = daemonset({"nodeSelector": {"role": "agent"}})
    assert plan_node(node("a", {"role": "agent"}), [], ds, "new", NOW).create
    stay = plan_node(node("b"), [pod("p1", "b"), pod("p2", "b", deleting=True)], ds, "new", NOW)
    assert not stay.create and stay.delete == ["p1"]


def test_plan_keeps_the_oldest_of_duplicates() -> None:
    pods = [pod("young", "a", age=10), pod("old", "a", age=100), pod("unbound", "a", bound=False, age=1000)]
    plan = plan_node(node("a"), pods, daemonset(), "new", NOW)
    assert not plan.create and sorted(plan.delete) == ["unbound", "young"]


def test_plan_reports_failed_pods_and_deletes_succeeded_ones() -> None:
    plan = plan_node(node("a"), [pod("f", "a", phase="Failed"), pod("s", "a", phase="Succeeded")], daemonset(), "new", NOW)
    assert [p["metadata"]["name"] for p in plan.failed] == ["f"]
    assert plan.delete == ["s"] and not plan.create


def test_plan_with_surge_keeps_old_until_new_is_available() -> None:
    ds = daemonset(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}, min_ready=30)
    waiting = plan_node(node("a"), [pod("old", "a", "old", age=100), pod("new", "a", "new", ready_for=5, age=10)], ds, "new", NOW)
    assert waiting.delete == []
    done = plan_node(node("a"), [pod("old", "a", "old", age=100), pod("new", "a", "new", ready_for=60, age=70)], ds, "new", NOW)
    assert done.delete == ["old"]
    broken = plan_node(node("a"), [pod("old", "a", "old", ready_for=None, age=100), pod("new", "a", "new", ready_for=None)], ds, "new", NOW)
    assert broken.delete == ["old"]


def test_unscheduled_pods_for_vanished_nodes_are_deleted() -> None:
    grouped = group_by_node([pod("gone", "x", bound=False), pod("bound", "x", bound=True), pod("here", "a", bound=False)])
    assert unscheduled_pods_without_node([node("a")], grouped) == ["gone"]


# ---- rolling updates ---------------------------------------------------------------------


def nodes_and_pods(specs: list[tuple[str, str, float | None]]) -> tuple[list[Obj], dict[str, list[Obj]]]:
    """(node, hash, ready_for) per node; ready_for None for a pod not ready."""
    nodes = [node(n) for n, _, _ in specs]
    grouped = {n: [pod(f"p-{n}", n, h, ready_for=r)] for n, h, r in specs}
    return nodes, grouped


def test_rolling_update_deletes_up_to_max_unavailable() -> None:
    nodes, grouped = nodes_and_pods([("a", "old", 600), ("b", "old", 600), ("c", "old", 600)])
    delete, create = rolling_update_plan(daemonset(), nodes, grouped, "new", None, NOW)
    assert delete == ["p-a"] and create == []


def test_rolling_update_waits_while_a_new_pod_is_unavailable() -> None:
    nodes, grouped = nodes_and_pods([("a", "new", None), ("b", "old", 600), ("c", "old", 600)])
    assert rolling_update_plan(daemonset(), nodes, grouped, "new", None, NOW) == ([], [])


def test_rolling_update_replaces_unavailable_old_pods_regardless() -> None:
    nodes, grouped = nodes_and_pods([("a", "new", None), ("b", "old", None), ("c", "old", 600)])
    assert rolling_update_plan(daemonset(), nodes, grouped, "new", None, NOW) == (["p-b"], [])


def test_rolling_update_counts_an_empty_node_as_unavailable() -> None:
    nodes, grouped = nodes_and_pods([("b", "old", 600)])
    nodes.append(node("a"))
    assert rolling_update_plan(daemonset(), nodes, grouped, "new", None, NOW) == ([], [])


def test_rolling_update_percentage_rounds_up() -> None:
    ds = daemonset(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%", "maxSurge": 0}})
    nodes, grouped = nodes_and_pods([("a", "old", 600), ("b", "old", 600), ("c", "old", 600)])
    delete, _ = rolling_update_plan(ds, nodes, grouped, "new", None, NOW)
    assert delete == ["p-a", "p-b"]


def test_rolling_update_by_template_generation() -> None:
    nodes, grouped = nodes_and_pods([("a", "whatever", 600)])
    grouped["a"][0]["metadata"]["labels"][TEMPLATE_GENERATION_LABEL] = "2"
    assert rolling_update_plan(daemonset(), nodes, grouped, "new", 2, NOW) == ([], [])


def test_rolling_update_with_surge() -> None:
    ds = daemonset(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    nodes, grouped = nodes_and_pods([("a", "old", 600), ("b", "old", 600)])
    assert rolling_update_plan(ds, nodes, grouped, "new", None, NOW) == ([], ["a"])
    grouped["a"].append(pod("p-a2", "a", "new", ready_for=600, age=10))
    assert rolling_update_plan(ds, nodes, grouped, "new", None, NOW) == (["p-a"], ["b"])


@pytest.mark.parametrize(
    ("value", "total", "up", "expected"),
    [(2, 10, True, 2), ("25%", 10, True, 3), ("25%", 10, False, 2), ("0%", 5, True, 0), (None, 5, True, 0)],
)
def test_scaled_value(value: Any, total: int, up: bool, expected: int) -> None:
    assert scaled_value(value, total, up) == expected


def test_scaled_value_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        scaled_value("many", 3, True)


# ---- status and revisions ----------------------------------------------------------------


def test_status_counts() -> None:
    ds = daemonset({"nodeSelector": {"role": "agent"}}, min_ready=60)
    nodes = [node("a", {"role": "agent"}), node("b", {"role": "agent"}), node("c", {"role": "agent"}), node("d")]
    grouped = {
        "a": [pod("pa", "a", "new", ready_for=600)],
        "b": [pod("pb", "b", "old", ready_for=10)],  # ready, not yet available
        "d": [pod("pd", "d", "new")],  # misscheduled
    }
    assert daemonset_status(ds, nodes, grouped, "new", None, NOW) == {
        "desiredNumberScheduled": 3,
        "currentNumberScheduled": 2,
        "numberMisscheduled": 1,
        "numberReady": 2,
        "updatedNumberScheduled": 1,
        "numberAvailable": 1,
        "numberUnavailable": 2,
    }


def test_revision_data_restores_the_template() -> None:
    ds = daemonset()
    data = revision_data(ds)
    assert data["spec"]["template"]["$patch"] == "replace"
    assert data["spec"]["template"]["spec"] == ds["spec"]["template"]["spec"]
    assert revision_matches(ds, {"data": data})
    changed = copy.deepcopy(ds)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    assert not revision_matches(changed, {"data": data})


def test_template_generation_and_updated_pods() -> None:
    assert template_generation(daemonset(annotations={"deprecated.daemonset.template.generation": "4"})) == 4
    assert template_generation(daemonset()) is None
    p = pod("p", "a", "h1")
    assert is_pod_updated(p, "h1", None)
    assert not is_pod_updated(p, "h2", 1)
    p["metadata"]["labels"][TEMPLATE_GENERATION_LABEL] = "1"
    assert is_pod_updated(p, "h2", 1)


# ---- expectations and backoff ------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_expectations_wait_for_the_cache() -> None:
    clock = Clock()
    exp = Expectations(ttl=300, clock=clock)
    assert exp.satisfied("ns/ds")
    exp.expect("ns/ds", 2, ["ns/a"])
    exp.creation_observed("ns/ds")
    assert not exp.satisfied("ns/ds")
    exp.creation_observed("ns/ds")
    exp.deletion_observed("ns/ds", "ns/a")
    exp.deletion_observed("ns/ds", "ns/a")  # seen twice (deletionTimestamp, then gone): counts once
    assert exp.satisfied("ns/ds")


def test_expectations_expire() -> None:
    clock = Clock()
    exp = Expectations(ttl=300, clock=clock)
    exp.expect("k", 1)
    assert exp.time_left("k") == 300
    clock.now += 301
    assert exp.satisfied("k") and exp.time_left("k") is None


def test_failed_pod_backoff_doubles_and_caps() -> None:
    clock = Clock()
    backoff = Backoff(1.0, 4.0, clock=clock)
    assert not backoff.in_backoff("k")
    delays = []
    for _ in range(4):
        backoff.next("k")
        delays.append(backoff.get("k"))
    assert delays == [1.0, 2.0, 4.0, 4.0]
    assert backoff.in_backoff("k")
    clock.now += 4.5
    assert not backoff.in_backoff("k")
