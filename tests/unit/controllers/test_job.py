"""The Job controller: failure backoff, which pods go, and counting finished pods exactly once."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tuik8s.client.informer import SharedInformers
from tuik8s.controllers.job import (
    COMPLETION_INDEX_ANNOTATION,
    COMPLETION_INDEX_ENV,
    COMPLETION_INDEX_LABEL,
    JOB_TRACKING_FINALIZER,
    JobController,
    active_pods_for_removal,
    clean_uncounted,
    ensure_condition,
    first_pending_indexes,
    format_indexes,
    is_pod_failed,
    job_pod,
    job_selector,
    new_finished_pods,
    parse_indexes,
    past_active_deadline,
    past_backoff_limit_on_failure,
    pod_failure_backoff,
)
from tuik8s.controllers.runner import ControllerContext

Obj = dict[str, Any]
NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(**spec: Any) -> Obj:
    base: Obj = {
        "parallelism": 1, "completions": 1, "backoffLimit": 6, "completionMode": "NonIndexed", "suspend": False,
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "job-uid"}},
        "template": {
            "metadata": {"labels": {"batch.kubernetes.io/controller-uid": "job-uid", "batch.kubernetes.io/job-name": "pi"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
        },
    }
    base.update(spec)
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "job-uid", "resourceVersion": "1", "generation": 1},
        "spec": base, "status": {},
    }


def pod(
    name: str, phase: str = "Running", *, finished_ago: float | None = None, finalizer: bool = True,
    deleting: bool = False, node: str = "n1", ready: bool = False, index: int | None = None, age: float = 100,
    restarts: int = 0,
) -> Obj:
    meta: Obj = {
        "name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "1",
        "creationTimestamp": stamp(age),
        "labels": {"batch.kubernetes.io/controller-uid": "job-uid"},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "pi", "uid": "job-uid", "controller": True}],
    }
    if finalizer:
        meta["finalizers"] = [JOB_TRACKING_FINALIZER]
    if deleting:
        meta["deletionTimestamp"] = stamp(0)
    if index is not None:
        meta["annotations"] = {COMPLETION_INDEX_ANNOTATION: str(index)}
    status: Obj = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": stamp(50)}]}
    state: Obj = {"running": {}}
    if finished_ago is not None:
        state = {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1, "finishedAt": stamp(finished_ago)}}
    status["containerStatuses"] = [{"name": "c", "state": state, "restartCount": restarts}]
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": status}


# ---- failure backoff ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        ([], 0.0),
        ([pod("a", "Failed", finished_ago=0)], 10.0),
        ([pod("a", "Failed", finished_ago=4)], 6.0),
        ([pod("a", "Failed", finished_ago=30), pod("b", "Failed", finished_ago=5)], 15.0),
        ([pod("a", "Failed", finished_ago=30), pod("b", "Failed", finished_ago=25)], 0.0),
        ([pod("a", "Failed", finished_ago=9), pod("s", "Succeeded", finished_ago=5)], 0.0),
        ([pod("s", "Succeeded", finished_ago=9), pod("a", "Failed", finished_ago=5)], 5.0),
        ([pod("a", "Running", ready=True, deleting=True)], 10.0),
        ([pod(f"f{i}", "Failed", finished_ago=1) for i in range(10)], 599.0),
    ],
    ids=["none", "just-failed", "failed-4s-ago", "two-failures", "backoff-over", "success-after",
         "failure-after-success", "deleted-counts", "capped"],
)
def test_pod_failure_backoff(pods: list[Obj], expected: float) -> None:
    assert pod_failure_backoff(pods, job(), NOW) == pytest.approx(expected)


def test_deleted_pods_are_not_failures_when_only_failed_pods_are_replaced() -> None:
    deleted = pod("a", "Running", deleting=True)
    assert is_pod_failed(deleted, job())
    assert not is_pod_failed(deleted, job(podReplacementPolicy="Failed"))
    assert not is_pod_failed(pod("b", "Succeeded", deleting=True), job())


def test_backoff_limit_on_failure_counts_restarts() -> None:
    on_failure = job(backoffLimit=3)
    on_failure["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert not past_backoff_limit_on_failure(on_failure, [pod("a", restarts=2)])
    assert past_backoff_limit_on_failure(on_failure, [pod("a", restarts=2), pod("b", restarts=1)])
    assert not past_backoff_limit_on_failure(job(backoffLimit=3), [pod("a", restarts=5)])  # Never: pods fail instead


def test_active_deadline() -> None:
    j = job(activeDeadlineSeconds=10)
    j["status"]["startTime"] = stamp(9)
    assert not past_active_deadline(j, NOW)
    j["status"]["startTime"] = stamp(10)
    assert past_active_deadline(j, NOW)
    j["spec"]["suspend"] = True
    assert not past_active_deadline(j, NOW)


# ---- which pods ---------------------------------------------------------------------------


def test_removal_order_prefers_the_cheapest_pods() -> None:
    unassigned = pod("unassigned", "Pending", node="")
    pending = pod("pending", "Pending")
    running = pod("running", "Running")
    ready_old = pod("ready-old", "Running", ready=True, age=500)
    picked = active_pods_for_removal(job(), [ready_old, running, pending, unassigned], 3)
    assert [p["metadata"]["name"] for p in picked] == ["unassigned", "pending", "running"]


def test_indexed_removal_drops_duplicates_and_strays_first() -> None:
    j = job(completionMode="Indexed", completions=3)
    pods = [pod("a0", index=0, ready=True), pod("b0", index=0), pod("c5", index=5), pod("d1", index=1)]
    picked = active_pods_for_removal(j, pods, 1)
    assert sorted(p["metadata"]["name"] for p in picked) == ["b0", "c5"]


def test_indexes_round_trip() -> None:
    assert format_indexes([0, 1, 2, 4, 6, 7]) == "0-2,4,6,7"
    assert parse_indexes("0-2,4,6,7", 10) == {0, 1, 2, 4, 6, 7}
    assert parse_indexes("1,3-9", 5) == {1, 3, 4}
    assert format_indexes([]) == ""


def test_first_pending_indexes_skip_done_and_running() -> None:
    assert first_pending_indexes(6, 3, {0, 2}, [pod("x", index=1)]) == [3, 4, 5]
    assert first_pending_indexes(3, 5, set(), []) == [0, 1, 2]


def test_job_pod_shape() -> None:
    j = job()
    p = job_pod(j)
    meta = p["metadata"]
    assert meta["generateName"] == "pi-"
    assert meta["finalizers"] == [JOB_TRACKING_FINALIZER]
    assert meta["ownerReferences"][0]["kind"] == "Job" and meta["ownerReferences"][0]["controller"] is True
    assert meta["labels"]["batch.kubernetes.io/controller-uid"] == "job-uid"
    assert meta["labels"]["job-name"] == "pi" and meta["labels"]["controller-uid"] == "job-uid"
    assert "annotations" not in meta and "hostname" not in p["spec"]


def test_indexed_job_pod_carries_its_index() -> None:
    p = job_pod(job(completionMode="Indexed", completions=3), 2)
    assert p["metadata"]["generateName"] == "pi-2-"
    assert p["metadata"]["annotations"][COMPLETION_INDEX_ANNOTATION] == "2"
    assert p["metadata"]["labels"][COMPLETION_INDEX_LABEL] == "2"
    assert p["spec"]["hostname"] == "pi-2"
    env = p["spec"]["containers"][0]["env"]
    assert env[0]["name"] == COMPLETION_INDEX_ENV
    assert "job-completion-index" in env[0]["valueFrom"]["fieldRef"]["fieldPath"]


def test_selector_generated_when_missing() -> None:
    j = job()
    del j["spec"]["selector"]
    assert j["spec"].get("manualSelector") is None
    assert job_selector(j).matches({"batch.kubernetes.io/controller-uid": "job-uid"})


# ---- counting -----------------------------------------------------------------------------


def test_new_finished_pods_skip_the_counted_ones() -> None:
    pods = [
        pod("s1", "Succeeded", finished_ago=1),
        pod("s2", "Succeeded", finished_ago=1),
        pod("s3", "Succeeded", finished_ago=1, finalizer=False),
        pod("f1", "Failed", finished_ago=1),
        pod("r1", "Running"),
    ]
    succeeded, failed = new_finished_pods(job(), pods, {"uid-s2"}, set(), {"uid-f1"})
    assert [p["metadata"]["name"] for p in succeeded] == ["s1"]
    assert failed == []


def test_clean_uncounted_moves_pods_without_finalizer() -> None:
    status: Obj = {"succeeded": 2, "uncountedTerminatedPods": {"succeeded": ["a", "b"], "failed": ["c"]}}
    assert clean_uncounted(status, {"b"})
    assert status == {"succeeded": 3, "failed": 1, "uncountedTerminatedPods": {"succeeded": ["b"]}}
    assert not clean_uncounted(status, {"b"})


def test_ensure_condition() -> None:
    status: Obj = {}
    assert not ensure_condition(status, "Suspended", "False", "JobResumed", "Job resumed", NOW)
    assert "conditions" not in status
    assert ensure_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", NOW)
    assert not ensure_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", NOW)
    assert ensure_condition(status, "Suspended", "False", "JobResumed", "Job resumed", NOW)
    assert [c["status"] for c in status["conditions"]] == ["False"]


class FakeApi:
    """Records writes; answers status writes with what was sent, as the server does."""

    def __init__(self) -> None:
        self.writes: list[tuple[Any, ...]] = []
        self.events: list[tuple[str, str]] = []
        self._rv = itertools.count(2)
        self._names = itertools.count()

    async def update_status(self, res: Any, obj: Obj) -> Obj:
        self.writes.append(("status", copy.deepcopy(obj["status"])))
        out = copy.deepcopy(obj)
        out["metadata"]["resourceVersion"] = str(next(self._rv))
        return out

    async def patch(self, res: Any, name: str, patch: Any, **kwargs: Any) -> Obj:
        self.writes.append(("patch", name, patch))
        return {}

    async def create(self, res: Any, obj: Obj, namespace: str | None = None) -> Obj:
        created = copy.deepcopy(obj)
        created["metadata"]["name"] = created["metadata"]["generateName"] + str(next(self._names))
        self.writes.append(("create", created["metadata"]["name"]))
        return created

    async def delete(self, res: Any, name: str, namespace: str | None = None, **kwargs: Any) -> Obj:
        self.writes.append(("delete", name))
        return {}

    async def record_event(self, involved: Any, reason: str, message: str, *args: Any, **kwargs: Any) -> None:
        self.events.append((reason, message))


def controller_with(j: Obj, pods: list[Obj]) -> tuple[JobController, FakeApi]:
    api = FakeApi()
    ctl = JobController(ControllerContext(api, SharedInformers(api)))  # type: ignore[arg-type]
    ctl.jobs._upsert(j)
    for p in pods:
        ctl.pods._upsert(p)
    return ctl, api


async def test_finished_pods_are_recorded_before_their_finalizers_go() -> None:
    j = job(completions=2, parallelism=2)
    j["status"] = {"startTime": stamp(60), "active": 2, "ready": 0, "terminating": 0}
    ctl, api = controller_with(j, [pod("a", "Succeeded", finished_ago=1), pod("b", "Running")])
    await ctl.reconcile("default/pi")
    kinds = [w[0] for w in api.writes]
    assert kinds == ["status", "patch", "status"]
    first, patch, last = api.writes
    assert first[1]["uncountedTerminatedPods"] == {"succeeded": ["uid-a"]}
    assert "succeeded" not in first[1]
    assert patch[1] == "a" and patch[2] == {"metadata": {"$deleteFromPrimitiveList/finalizers": [JOB_TRACKING_FINALIZER]}}
    assert last[1]["succeeded"] == 1 and last[1]["uncountedTerminatedPods"] == {} and last[1]["active"] == 1
    assert ctl.finalizer_expectations == {"default/pi": {"uid-a"}}


async def test_a_stale_cache_does_not_count_a_pod_twice() -> None:
    j = job(completions=2, parallelism=2)
    j["status"] = {"startTime": stamp(60), "active": 1, "ready": 0, "terminating": 0, "succeeded": 1, "uncountedTerminatedPods": {}}
    ctl, api = controller_with(j, [pod("a", "Succeeded", finished_ago=1), pod("b", "Running")])
    ctl.finalizer_expectations["default/pi"] = {"uid-a"}  # removed, not yet seen
    await ctl.reconcile("default/pi")
    assert api.writes == []


async def test_completion_writes_success_criteria_then_complete() -> None:
    j = job(completions=2, parallelism=2)
    j["status"] = {"startTime": stamp(60), "active": 1, "ready": 0, "terminating": 0, "succeeded": 1, "uncountedTerminatedPods": {}}
    ctl, api = controller_with(j, [pod("a", "Succeeded", finished_ago=9, finalizer=False), pod("b", "Succeeded", finished_ago=1)])
    await ctl.reconcile("default/pi")
    last = api.writes[-1][1]
    assert last["succeeded"] == 2
    assert [(c["type"], c["reason"]) for c in last["conditions"]] == [
        ("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached"),
    ]
    assert last["completionTime"] == last["conditions"][1]["lastTransitionTime"]
    assert ("Completed", "Job completed") in api.events


async def test_backoff_limit_fails_the_job_and_deletes_running_pods() -> None:
    j = job(completions=3, parallelism=2, backoffLimit=1)
    j["status"] = {"startTime": stamp(60), "active": 1, "ready": 1, "terminating": 0, "failed": 1, "uncountedTerminatedPods": {}}
    ctl, api = controller_with(j, [
        pod("old", "Failed", finished_ago=30, finalizer=False),
        pod("new", "Failed", finished_ago=1),
        pod("busy", "Running", ready=True),
    ])
    await ctl.reconcile("default/pi")
    assert ("delete", "busy") in api.writes
    statuses = [w[1] for w in api.writes if w[0] == "status"]
    target = statuses[0]["conditions"][0]
    assert (target["type"], target["reason"], target["message"]) == (
        "FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit",
    )
    assert statuses[-1]["failed"] == 3  # the killed running pod counts as failed too
    # the deleted pod is still terminating: Failed waits for it
    assert all(c["type"] != "Failed" for c in statuses[-1]["conditions"])
    assert statuses[-1]["terminating"] == 1


async def test_pods_wait_out_the_failure_backoff() -> None:
    j = job(completions=1, backoffLimit=6)
    j["status"] = {"startTime": stamp(60), "active": 0, "ready": 0, "terminating": 0, "failed": 1, "uncountedTerminatedPods": {}}
    failed = pod("f", "Failed", finalizer=False)
    just_now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    failed["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 1, "finishedAt": just_now}}
    ctl, api = controller_with(j, [failed])
    ctl.ctx.timings.job_pod_failure_backoff = 3600.0
    again = await ctl.reconcile("default/pi")
    assert not any(w[0] == "create" for w in api.writes)
    assert again is not None and again > 3000
    ctl.ctx.timings.job_pod_failure_backoff = 0.0
    await ctl.reconcile("default/pi")
    assert ("create", "pi-0") in api.writes
