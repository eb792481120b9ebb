"""The pure parts of the ReplicaSet controller: expectations, slow start, deletion ranking, status."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tuik8s.controllers import podutil
from tuik8s.controllers.replicaset import (
    Expectations,
    _pod_from_template,
    calculate_status,
    next_availability_check,
    pods_to_delete,
    rank_for_deletion,
    slow_start_batch,
)

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def ts(seconds_ago: float) -> str:
    return podutil.format_time(NOW - timedelta(seconds=seconds_ago))


def pod(
    name: str,
    *,
    node: str = "n1",
    phase: str = "Running",
    ready_for: float | None = 600,
    age: float = 3600,
    restarts: int = 0,
    cost: int | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    conditions = []
    if ready_for is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": ts(ready_for)})
    else:
        conditions.append({"type": "Ready", "status": "False", "lastTransitionTime": ts(age)})
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "creationTimestamp": ts(age), "labels": labels or {"app": "web"}}
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    return {
        "metadata": meta,
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conditions, "containerStatuses": [{"name": "c", "restartCount": restarts}]},
    }


# ---- expectations -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_expectations_wait_for_every_create_and_delete_to_be_seen() -> None:
    clock = Clock()
    exp = Expectations(clock=clock, timeout=300)
    assert exp.satisfied("ns/rs")  # never synced: go ahead
    exp.expect_creations("ns/rs", 2)
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")

    exp.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    exp.deletion_observed("ns/rs", "ns/a")
    exp.deletion_observed("ns/rs", "ns/a")  # deletionTimestamp, then gone: one pod
    assert not exp.satisfied("ns/rs")
    exp.deletion_observed("ns/rs", "ns/b")
    assert exp.satisfied("ns/rs")


def test_expectations_expire_so_a_lost_event_cannot_stall_a_replica_set_forever() -> None:
    clock = Clock()
    exp = Expectations(clock=clock, timeout=300)
    exp.expect_creations("ns/rs", 1)
    clock.t = 299
    assert not exp.satisfied("ns/rs")
    clock.t = 301
    assert exp.satisfied("ns/rs")
    exp.forget("ns/rs")
    assert exp.satisfied("ns/rs")


# ---- slow start ---------------------------------------------------------------------------


async def test_slow_start_doubles_batches_and_stops_after_a_failing_one() -> None:
    calls: list[int] = []

    async def create() -> None:
        calls.append(len(calls))
        if len(calls) == 5:
            raise RuntimeError("quota exceeded")

    created, error = await slow_start_batch(20, 1, create)
    # batches of 1, 2, 4: the third holds the failure, so nothing after it is tried
    assert len(calls) == 7
    assert created == 6
    assert isinstance(error, RuntimeError)

    calls.clear()

    async def fine() -> None:
        calls.append(1)
        await asyncio.sleep(0)

    assert await slow_start_batch(10, 1, fine) == (10, None)
    assert len(calls) == 10  # 1 + 2 + 4 + 3


# ---- which pods go first ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(pod("a", node=""), pod("b"), id="unscheduled-before-scheduled"),
        pytest.param(pod("a", phase="Pending", ready_for=None), pod("b"), id="pending-before-running"),
        pytest.param(pod("a", phase="Unknown"), pod("b"), id="unknown-before-running"),
        pytest.param(pod("a", ready_for=None), pod("b"), id="not-ready-before-ready"),
        pytest.param(pod("a", cost=-5), pod("b"), id="lower-deletion-cost-first"),
        pytest.param(pod("a", ready_for=10), pod("b", ready_for=3600), id="ready-for-less-time-first"),
        pytest.param(pod("a", restarts=3), pod("b"), id="more-restarts-first"),
        pytest.param(pod("a", age=10), pod("b", age=86400), id="newer-first"),
    ],
)
def test_ranking_follows_upstreams_active_pods_order(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert rank_for_deletion([second, first], [], NOW) == [first, second]
    assert rank_for_deletion([first, second], [], NOW) == [first, second]


def test_a_pod_doubled_up_with_its_siblings_goes_before_one_alone_on_its_node() -> None:
    alone, crowded = pod("alone", node="n1"), pod("crowded", node="n2")
    sibling = pod("sibling", node="n2")  # a pod of another ReplicaSet of the same Deployment
    assert pods_to_delete([alone, crowded], [alone, crowded, sibling], 1, NOW) == [crowded]


def test_ready_times_in_the_same_log2_bucket_are_a_coin_toss_by_uid() -> None:
    # ready 1100 s and 1200 s ago: the same power-of-two bucket (2**40 ns), so the uid
    # decides (upstream's LogarithmicScaleDown), not the restarts of the next rule
    a, b = pod("a", ready_for=1100, restarts=0), pod("b", ready_for=1200, restarts=2)
    assert rank_for_deletion([b, a], [], NOW) == [a, b]


def test_pods_to_delete_takes_all_without_ranking_when_all_go() -> None:
    pods = [pod("a"), pod("b")]
    assert pods_to_delete(pods, [], 5, NOW) == pods


# ---- status -------------------------------------------------------------------------------


def replica_set(replicas: int = 3, min_ready: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "ns", "uid": "rs-uid", "generation": 2},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}, "annotations": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
        "status": {},
    }


def test_status_counts_labeled_ready_and_available_replicas() -> None:
    rs = replica_set(min_ready=30)
    pods = [
        pod("a", ready_for=60, labels={"app": "web", "tier": "fe"}),
        pod("b", ready_for=10, labels={"app": "web", "tier": "fe"}),
        pod("c", ready_for=None),
    ]
    status = calculate_status(rs, pods, None, NOW)
    assert status == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 1}
    # b has been ready 10 s of the 30 it needs: look again in about 20 s
    assert next_availability_check(rs, pods, NOW) == pytest.approx(20.1)
    assert next_availability_check(replica_set(), pods, NOW) is None


def test_a_failed_create_sets_replica_failure_until_a_pass_succeeds() -> None:
    rs = replica_set(replicas=3)
    status = calculate_status(rs, [pod("a")], RuntimeError('pods "web-x" is forbidden: exceeded quota'), NOW)
    (cond,) = status["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("ReplicaFailure", "True", "FailedCreate")
    assert cond["message"] == 'pods "web-x" is forbidden: exceeded quota'
    rs["status"] = status
    assert "conditions" not in calculate_status(rs, [pod("a")], None, NOW)


def test_pods_are_made_from_the_template_with_a_controller_reference() -> None:
    made = _pod_from_template(replica_set())
    assert made["metadata"]["generateName"] == "web-"
    assert made["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    assert made["metadata"]["annotations"] == {"a": "b"}
    assert made["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-uid", "controller": True, "blockOwnerDeletion": True}
    ]
    assert made["spec"]["containers"][0]["image"] == "nginx"


def test_availability_needs_strictly_more_than_min_ready_seconds() -> None:
    p = pod("a", ready_for=30)
    assert not podutil.is_pod_available(p, 30, NOW)
    assert podutil.is_pod_available(p, 29, NOW)
    assert podutil.available_in(p, 40, NOW) == 10
    assert podutil.available_in(pod("b", ready_for=None), 40, NOW) is None
