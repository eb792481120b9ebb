"""JobController: runs a Job's pods until enough of them succeed, or the Job gives up.

As upstream's job controller (1.32, with its default feature gates):

- Pods are created `<job>-` (Indexed: `<job>-<index>-`, with the completion index in an
  annotation, a label, the hostname and `JOB_COMPLETION_INDEX`), never more active than
  `parallelism` nor than the completions still missing; none while `suspend` is set.
- Finished pods are counted through the `batch.kubernetes.io/job-tracking` finalizer, so
  a pod is counted exactly once even when it is deleted right after it finishes or the
  controller restarts midway: its uid is first written to `status.uncountedTerminatedPods`,
  then its finalizer is removed, then it moves to `succeeded`/`failed` in a last status
  write. A crash between any two steps leaves enough in the status to finish the count.
- A pod that failed is replaced after a backoff of 10 s doubling per failure since the
  last success (capped at 10 min); upstream keeps that count in memory, here it is read
  off the finished pods, so it survives a restart.
- More failures than `backoffLimit` (or, with restartPolicy OnFailure, that many container
  restarts), or running past `activeDeadlineSeconds`, ends the Job: the interim condition
  `FailureTarget` is written, the active pods are deleted, and `Failed` follows once no
  pod is left terminating. Success is announced the same way: `SuccessCriteriaMet`, then
  `Complete` with `completionTime`.

The selector: upstream's API server generates it from the Job's uid (unless
`manualSelector`) and labels the template to match. Where a stored Job lacks it, the
controller uses the selector the server would have generated and labels its pods so.

Races: a reconcile that runs before the informer shows the pods it just created would
create them again, and one that sees a pod whose finalizer it just removed would count it
twice; `Expectations` and the expected finalizer removals hold the Job back until the
cache has caught up with its own writes.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tuik8s.api.defaults import (
    JOB_CONTROLLER_UID_LABEL,
    JOB_NAME_LABEL,
    LEGACY_JOB_CONTROLLER_UID_LABEL,
    LEGACY_JOB_NAME_LABEL,
)
from tuik8s.api.selectors import LabelSelector, SelectorError, selector_from_spec
from tuik8s.client.errors import ApiError, ClientError, is_not_found
from tuik8s.client.informer import NAMESPACE_INDEX, namespace_index, object_key, split_key
from tuik8s.controllers.daemonset import Expectations
from tuik8s.controllers.podutil import (
    CONTROLLER_UID_INDEX,
    claim,
    controller_ref,
    controller_uid_index,
    format_time,
    is_deleting,
    is_pod_ready,
    meta,
    new_controller_ref,
    owners_selecting,
    parse_time,
    pod_key,
)
from tuik8s.controllers.runner import Controller

log = logging.getLogger(__name__)

Obj = dict[str, Any]

JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
JOB_CONTROLLER_NAME = "kubernetes.io/job-controller"
ORPHAN_KEY_PREFIX = "orphan-pod:"  # queue keys of pods that only need their finalizer removed

MAX_UNCOUNTED_PODS = 500
MAX_POD_CREATE_DELETE_PER_SYNC = 500
MAX_GENERATED_NAME_LENGTH = 58
DEFAULT_POD_FAILURE_BACKOFF = 10.0  # upstream DefaultJobPodFailureBackOff
MAX_POD_FAILURE_BACKOFF = 600.0  # upstream MaxJobPodFailureBackOff

BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


# ---- reading a Job --------------------------------------------------------------------------


def _spec(obj: Mapping[str, Any]) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _status(obj: Mapping[str, Any]) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def job_condition(job: Mapping[str, Any], kind: str) -> Obj | None:
    for cond in _status(job).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def _condition_true(job: Mapping[str, Any], kind: str) -> Obj | None:
    cond = job_condition(job, kind)
    return cond if cond is not None and cond.get("status") == "True" else None


def is_job_finished(job: Mapping[str, Any]) -> bool:
    return _condition_true(job, "Complete") is not None or _condition_true(job, "Failed") is not None


def is_suspended(job: Mapping[str, Any]) -> bool:
    return _spec(job).get("suspend") is True


def is_indexed(job: Mapping[str, Any]) -> bool:
    return _spec(job).get("completionMode") == "Indexed"


def only_replace_failed_pods(job: Mapping[str, Any]) -> bool:
    """Wait for a deleted pod to be gone before replacing it (podReplacementPolicy Failed)."""
    spec = _spec(job)
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def job_selector(job: Mapping[str, Any]) -> LabelSelector:
    """The Job's selector; the one the API server generates when the Job has none."""
    spec = _spec(job)
    raw = spec.get("selector")
    if raw is None and spec.get("manualSelector") is not True:
        raw = {"matchLabels": {JOB_CONTROLLER_UID_LABEL: str(meta(job).get("uid") or "")}}
    return selector_from_spec(raw)


def new_condition(kind: str, reason: str, message: str, now: datetime, status: str = "True") -> Obj:
    stamp = format_time(now)
    return {
        "type": kind, "status": status, "lastProbeTime": stamp, "lastTransitionTime": stamp,
        "reason": reason, "message": message,
    }


def ensure_condition(status: Obj, kind: str, value: str, reason: str, message: str, now: datetime) -> bool:
    """upstream ensureJobConditionStatus: set or add the condition; whether anything changed."""
    conditions = status.setdefault("conditions", [])
    for i, cond in enumerate(conditions):
        if isinstance(cond, dict) and cond.get("type") == kind:
            if (cond.get("status"), cond.get("reason"), cond.get("message")) != (value, reason, message):
                conditions[i] = new_condition(kind, reason, message, now, value)
                return True
            return False
    if value == "False":
        if not conditions:
            status.pop("conditions", None)
        return False
    conditions.append(new_condition(kind, reason, message, now, value))
    return True


# ---- reading pods ---------------------------------------------------------------------------


def has_tracking_finalizer(pod: Mapping[str, Any]) -> bool:
    return JOB_TRACKING_FINALIZER in (meta(pod).get("finalizers") or ())


def _phase(pod: Mapping[str, Any]) -> str:
    return str(_status(pod).get("phase") or "")


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    return _phase(pod) not in ("Succeeded", "Failed") and not is_deleting(pod)


def is_pod_failed(pod: Mapping[str, Any], job: Mapping[str, Any]) -> bool:
    """A failure to count: phase Failed, or deleted before it could finish.

    A deleted pod counts as failed (unless only failed pods are replaced) because an
    orphaned or evicted pod may never reach the Failed phase.
    """
    if _phase(pod) == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    return is_deleting(pod) and _phase(pod) != "Succeeded"


def count_terminating(pods: Iterable[Mapping[str, Any]]) -> int:
    return sum(1 for p in pods if is_deleting(p) and _phase(p) not in ("Succeeded", "Failed"))


def completion_index(pod: Mapping[str, Any]) -> int | None:
    value = (meta(pod).get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION)
    if not isinstance(value, str) or not value.isdigit():
        return None
    return int(value)


def _container_statuses(pod: Mapping[str, Any]) -> list[Obj]:
    status = _status(pod)
    return [c for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []) if isinstance(c, dict)]


def finished_time(pod: Mapping[str, Any]) -> datetime:
    """When a pod finished: its containers' last finishedAt, else the Ready=False transition,
    else its deletion, else (no kubelet ever reported) its creation."""
    latest: datetime | None = None
    statuses = [c for c in _status(pod).get("containerStatuses") or () if isinstance(c, dict)]
    for cs in statuses:
        finished = parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if finished is None:
            latest = None
            break
        latest = finished if latest is None or finished > latest else latest
    if latest is not None:
        return latest
    for cond in _status(pod).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == "Ready" and cond.get("status") == "False":
            when = parse_time(cond.get("lastTransitionTime"))
            if when is not None:
                return when
    m = meta(pod)
    return parse_time(m.get("deletionTimestamp")) or parse_time(m.get("creationTimestamp")) or datetime.min.replace(tzinfo=UTC)


def pod_failure_backoff(
    pods: Iterable[Mapping[str, Any]], job: Mapping[str, Any], now: datetime,
    base: float = DEFAULT_POD_FAILURE_BACKOFF, cap: float = MAX_POD_FAILURE_BACKOFF,
) -> float:
    """Seconds to wait before creating pods again: `base` doubling per failure since the last success.

    upstream's backoffRecord (failuresAfterLastSuccess, lastFailureTime), derived from
    the finished pods rather than kept in memory.
    """
    last_success: datetime | None = None
    failures: list[datetime] = []
    for pod in pods:
        if _phase(pod) == "Succeeded":
            when = finished_time(pod)
            last_success = when if last_success is None or when > last_success else last_success
        elif is_pod_failed(pod, job):
            failures.append(finished_time(pod))
    if last_success is not None:
        failures = [f for f in failures if f > last_success]
    if not failures:
        return 0.0
    delay = base
    for _ in range(1, len(failures)):
        delay *= 2
        if delay >= cap:
            delay = cap
            break
    elapsed = (now - max(failures)).total_seconds()
    return max(0.0, delay - elapsed)


def past_backoff_limit_on_failure(job: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> bool:
    """restartPolicy OnFailure: container restarts of running pods count against backoffLimit."""
    template_spec = _spec(_spec(job).get("template") or {})
    if template_spec.get("restartPolicy") != "OnFailure":
        return False
    restarts = sum(
        _int(cs.get("restartCount"))
        for pod in pods if _phase(pod) in ("Running", "Pending")
        for cs in _container_statuses(pod)
    )
    limit = _int(_spec(job).get("backoffLimit"), 6)
    return restarts > 0 if limit == 0 else restarts >= limit


def past_active_deadline(job: Mapping[str, Any], now: datetime) -> bool:
    deadline = _spec(job).get("activeDeadlineSeconds")
    start = parse_time(_status(job).get("startTime"))
    if deadline is None or start is None or is_suspended(job):
        return False
    return now - start >= timedelta(seconds=_int(deadline))


def _ready_since(pod: Mapping[str, Any]) -> datetime | None:
    for cond in _status(pod).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == "Ready" and cond.get("status") == "True":
            return parse_time(cond.get("lastTransitionTime"))
    return None


def _newer_first(when: datetime | None) -> tuple[int, float]:
    """Sort key: no time < newer < older (upstream's afterOrZero)."""
    return (0, 0.0) if when is None else (1, -when.timestamp())


def active_pod_rank(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """controller.ActivePods order: the pods cheapest to lose sort first.

    Unassigned < assigned; Pending < Unknown < Running; not ready < ready; ready more
    recently < longer; more restarts < fewer; newer < older.
    """
    ready = is_pod_ready(pod)
    restarts = max((_int(cs.get("restartCount")) for cs in _container_statuses(pod)), default=0)
    return (
        bool(_spec(pod).get("nodeName")),
        _PHASE_ORDINAL.get(_phase(pod), 0),
        ready,
        _newer_first(_ready_since(pod)) if ready else (0, 0.0),
        -restarts,
        _newer_first(parse_time(meta(pod).get("creationTimestamp"))),
    )


def active_pods_for_removal(job: Mapping[str, Any], active: list[Obj], at_least: int) -> list[Obj]:
    """Which active pods to delete: Indexed duplicates and strays first, then the cheapest."""
    remove: list[Obj] = []
    left = list(active)
    if is_indexed(job):
        completions = _int(_spec(job).get("completions"))
        remove, left = [], []
        by_index: dict[int, list[Obj]] = {}
        for pod in active:
            ix = completion_index(pod)
            if ix is None or ix >= completions:
                remove.append(pod)
            else:
                by_index.setdefault(ix, []).append(pod)
        for ix in sorted(by_index):
            group = sorted(by_index[ix], key=active_pod_rank)
            remove.extend(group[:-1])
            left.append(group[-1])
    if len(remove) < at_least:
        left.sort(key=active_pod_rank)
        remove.extend(left[: at_least - len(remove)])
    return remove


# ---- indexes --------------------------------------------------------------------------------


def parse_indexes(text: Any, completions: int) -> set[int]:
    """`status.completedIndexes` ("1,3-5,7") as a set, ignoring anything out of range."""
    found: set[int] = set()
    if not isinstance(text, str):
        return found
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            continue
        lo, hi = int(first), int(last or first)
        found.update(range(lo, min(hi, completions - 1) + 1))
    return found


def format_indexes(indexes: Iterable[int]) -> str:
    """The compressed form upstream writes: runs of three or more as `a-b`, pairs as `a,b`."""
    parts: list[str] = []
    ordered = sorted(set(indexes))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        first, last = ordered[i], ordered[j]
        if last == first:
            parts.append(str(first))
        elif last == first + 1:
            parts.append(f"{first},{last}")
        else:
            parts.append(f"{first}-{last}")
        i = j + 1
    return ",".join(parts)


def first_pending_indexes(
    completions: int, count: int, succeeded: set[int], active: Iterable[Mapping[str, Any]]
) -> list[int]:
    """The lowest `count` indexes neither succeeded nor being worked on."""
    busy = set(succeeded) | {ix for ix in (completion_index(p) for p in active) if ix is not None}
    return [ix for ix in range(completions) if ix not in busy][:count]


def pod_generate_name(job_name: str, index: int | None) -> str:
    if index is None:
        return f"{job_name}-"
    suffix = f"-{index}-"
    if len(job_name) + len(suffix) > MAX_GENERATED_NAME_LENGTH:
        job_name = job_name[: MAX_GENERATED_NAME_LENGTH - len(suffix)]
    return f"{job_name}{suffix}"


def job_pod(job: Mapping[str, Any], index: int | None = None) -> Obj:
    """A pod of `job` (of completion `index` for an Indexed Job), with the tracking finalizer."""
    job_meta = meta(job)
    template = copy.deepcopy(_spec(job).get("template") or {})
    template_meta = meta(template)
    spec = _spec(template)
    labels = dict(template_meta.get("labels") or {})
    if _spec(job).get("manualSelector") is not True:
        # what the API server adds to the template when it generates the selector
        for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
            labels.setdefault(key, str(job_meta.get("name")))
        for key in (LEGACY_JOB_CONTROLLER_UID_LABEL, JOB_CONTROLLER_UID_LABEL):
            labels.setdefault(key, str(job_meta.get("uid")))
    annotations = dict(template_meta.get("annotations") or {})
    if index is not None:
        annotations[COMPLETION_INDEX_ANNOTATION] = str(index)
        labels[COMPLETION_INDEX_LABEL] = str(index)
        spec["hostname"] = f"{job_meta.get('name')}-{index}"
        _add_completion_index_env(spec)
    finalizers = list(template_meta.get("finalizers") or [])
    if JOB_TRACKING_FINALIZER not in finalizers:
        finalizers.append(JOB_TRACKING_FINALIZER)
    pod_meta: Obj = {
        "generateName": pod_generate_name(str(job_meta.get("name")), index),
        "namespace": job_meta.get("namespace"),
        "labels": labels,
        "finalizers": finalizers,
        "ownerReferences": [new_controller_ref(job, "batch/v1", "Job")],
    }
    if annotations:
        pod_meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def _add_completion_index_env(spec: Obj) -> None:
    env_var = {
        "name": COMPLETION_INDEX_ENV,
        "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}},
    }
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or ():
            env = container.setdefault("env", [])
            if not any(isinstance(e, dict) and e.get("name") == COMPLETION_INDEX_ENV for e in env):
                env.append(copy.deepcopy(env_var))


# ---- one sync -------------------------------------------------------------------------------


@dataclass
class _SyncState:
    """What one sync of a Job learned and decided (upstream's syncJobCtx)."""

    job: Obj
    pods: list[Obj]
    active_pods: list[Obj]
    expected_rm: set[str]
    uncounted_succeeded: set[str]
    uncounted_failed: set[str]
    succeeded: int = 0
    failed: int = 0
    ready: int = 0
    terminating: int = 0
    finished: Obj | None = None
    prev_indexes: set[int] = field(default_factory=set)
    succeeded_indexes: set[int] = field(default_factory=set)


def new_finished_pods(
    job: Mapping[str, Any], pods: Iterable[Obj], uncounted_succeeded: set[str],
    uncounted_failed: set[str], expected_rm: set[str],
) -> tuple[list[Obj], list[Obj]]:
    """Finished pods not yet counted anywhere: still with the finalizer, not yet uncounted."""
    succeeded: list[Obj] = []
    failed: list[Obj] = []
    completions = _int(_spec(job).get("completions"))
    for pod in pods:
        uid = str(meta(pod).get("uid"))
        if not has_tracking_finalizer(pod) or uid in expected_rm:
            continue
        if is_indexed(job):
            ix = completion_index(pod)
            if ix is None or ix >= completions:
                continue
        if _phase(pod) == "Succeeded" and uid not in uncounted_succeeded:
            succeeded.append(pod)
        elif is_pod_failed(pod, job) and uid not in uncounted_failed:
            failed.append(pod)
    return succeeded, failed


def clean_uncounted(status: Obj, uids_with_finalizer: set[str]) -> bool:
    """Move uncounted pods whose finalizer is gone into the counters; whether any moved."""
    uncounted = status.setdefault("uncountedTerminatedPods", {})
    changed = False
    for kind, counter in (("succeeded", "succeeded"), ("failed", "failed")):
        uids = list(uncounted.get(kind) or [])
        keep = [u for u in uids if u in uids_with_finalizer]
        if len(keep) != len(uids):
            changed = True
            status[counter] = _int(status.get(counter)) + len(uids) - len(keep)
            if keep:
                uncounted[kind] = keep
            else:
                uncounted.pop(kind, None)
    return changed


def _normalize_status(status: Obj) -> None:
    """Omit what upstream's JSON omits when empty; keep `ready`, `terminating` and `{}`."""
    for key in ("active", "succeeded", "failed"):
        if not status.get(key):
            status.pop(key, None)
    uncounted = status.setdefault("uncountedTerminatedPods", {})
    for key in ("succeeded", "failed"):
        if not uncounted.get(key):
            uncounted.pop(key, None)


# ---- the controller -------------------------------------------------------------------------


class JobController(Controller):
    """Creates a Job's pods, counts the finished ones, and finishes the Job."""

    name = "job"
    workers = 5

    def setup(self) -> None:
        self.expectations = Expectations()
        # job key -> uids whose finalizer we removed but the cache still shows
        self.finalizer_expectations: dict[str, set[str]] = {}
        self.jobs = self.informer("jobs.batch")
        self.pods = self.informer("pods")
        self.jobs.add_index(NAMESPACE_INDEX, namespace_index)
        self.pods.add_index(NAMESPACE_INDEX, namespace_index)
        self.pods.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
        self.jobs.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self._job_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    @property
    def pod_failure_backoff_base(self) -> float:
        """10 s as upstream, unless the lab's timings shorten it."""
        return float(self.ctx.timings.job_pod_failure_backoff)

    # ---- event handlers: only enqueue keys ------------------------------------------

    def _resolve(self, namespace: str | None, ref: Mapping[str, Any] | None) -> Obj | None:
        if ref is None or ref.get("kind") != "Job" or not namespace:
            return None
        job = self.jobs.get(f"{namespace}/{ref.get('name')}")
        if job is None or meta(job).get("uid") != ref.get("uid"):
            return None
        return job

    def _jobs_selecting(self, pod: Obj) -> list[Obj]:
        return owners_selecting(self.jobs, pod, job_selector)

    def _enqueue_orphan(self, pod: Obj) -> None:
        self.queue.add(ORPHAN_KEY_PREFIX + object_key(pod))

    def _finalizer_removal_observed(self, pod: Obj) -> None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "Job":
            return
        key = f"{meta(pod).get('namespace')}/{ref.get('name')}"
        uids = self.finalizer_expectations.get(key)
        if uids is not None:
            uids.discard(str(meta(pod).get("uid")))
            if not uids:
                del self.finalizer_expectations[key]

    def _pod_added(self, pod: Obj) -> None:
        if is_deleting(pod):
            self._pod_gone(pod, final=False)
            return
        ref = controller_ref(pod)
        job = self._resolve(meta(pod).get("namespace"), ref)
        if job is not None:
            key = object_key(job)
            self.expectations.creation_observed(key)
            self.queue.add(key)
            return
        if has_tracking_finalizer(pod) and (ref is None or ref.get("kind") == "Job"):
            self._enqueue_orphan(pod)
        if ref is None:
            for job in self._jobs_selecting(pod):
                self.enqueue(job)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        if is_deleting(new):
            self._pod_gone(new, final=False)
        if not has_tracking_finalizer(new):
            self._finalizer_removal_observed(new)
        namespace = meta(new).get("namespace")
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref != new_ref and old_ref is not None:
            gone = self._resolve(namespace, old_ref)
            if gone is not None:
                self.enqueue(gone)
        job = self._resolve(namespace, new_ref)
        if job is not None:
            self.enqueue(job)
            return
        if has_tracking_finalizer(new) and (new_ref is None or new_ref.get("kind") == "Job"):
            self._enqueue_orphan(new)
        if new_ref is None and (old_ref != new_ref or meta(old).get("labels") != meta(new).get("labels")):
            for job in self._jobs_selecting(new):
                self.enqueue(job)

    def _pod_deleted(self, pod: Obj) -> None:
        self._pod_gone(pod, final=True)

    def _pod_gone(self, pod: Obj, final: bool) -> None:
        """A pod got its deletionTimestamp (final=False) or left the store (final=True)."""
        job = self._resolve(meta(pod).get("namespace"), controller_ref(pod))
        if job is None:
            if not final and has_tracking_finalizer(pod):
                self._enqueue_orphan(pod)
            return
        key = object_key(job)
        self.expectations.deletion_observed(key, pod_key(pod))
        if final:
            self._finalizer_removal_observed(pod)
        self.queue.add(key)

    def _job_deleted(self, job: Obj) -> None:
        self.enqueue(job)
        # its pods keep their finalizer until someone removes it: that is us
        for pod in self.pods.by_index(CONTROLLER_UID_INDEX, str(meta(job).get("uid"))):
            if has_tracking_finalizer(pod):
                self._enqueue_orphan(pod)

    # ---- reconcile ------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        if key.startswith(ORPHAN_KEY_PREFIX):
            await self._sync_orphan_pod(key[len(ORPHAN_KEY_PREFIX):])
            return None
        cached = self.jobs.get(key)
        if cached is None:
            self.expectations.forget(key)
            self.finalizer_expectations.pop(key, None)
            return None
        managed_by = _spec(cached).get("managedBy")
        if managed_by and managed_by != JOB_CONTROLLER_NAME:
            return None
        try:
            selector = job_selector(cached)
        except SelectorError as e:
            log.info("job %s: invalid selector: %s", key, e)
            return None
        if is_job_finished(cached):
            await self._remove_leftover_finalizers(key, cached)
            return None
        return await self._sync_job(key, copy.deepcopy(cached), selector)

    async def _sync_job(self, key: str, job: Obj, selector: LabelSelector) -> float | None:
        now = datetime.now(UTC)
        spec, status = _spec(job), job.setdefault("status", {})
        pods = await self._claim_pods(job, selector)
        satisfied = self.expectations.satisfied(key)
        uncounted = status.get("uncountedTerminatedPods") or {}
        state = _SyncState(
            job=job,
            pods=pods,
            active_pods=[p for p in pods if is_pod_active(p)],
            expected_rm=set(self.finalizer_expectations.get(key, ())),
            uncounted_succeeded=set(uncounted.get("succeeded") or ()),
            uncounted_failed=set(uncounted.get("failed") or ()),
            terminating=count_terminating(pods),
        )
        new_succeeded, new_failed = new_finished_pods(
            job, pods, state.uncounted_succeeded, state.uncounted_failed, state.expected_rm
        )
        state.succeeded = _int(status.get("succeeded")) + len(new_succeeded) + len(state.uncounted_succeeded)
        state.failed = _int(status.get("failed")) + len(new_failed) + len(state.uncounted_failed)
        state.ready = sum(1 for p in state.active_pods if is_pod_ready(p))
        needs_flush = False
        if not status.get("startTime") and not is_suspended(job):
            status["startTime"] = format_time(now)
            needs_flush = True
        again: list[float] = []
        left = self.expectations.time_left(key)
        if left is not None:
            again.append(left)

        met = _condition_true(job, "SuccessCriteriaMet")
        if met is not None:
            state.finished = dict(met)
        else:
            target = _condition_true(job, "FailureTarget")
            if target is not None:
                state.finished = new_condition("Failed", target.get("reason") or "", target.get("message") or "", now)
        if state.finished is None:
            if state.failed > _int(spec.get("backoffLimit"), 6) or past_backoff_limit_on_failure(job, pods):
                state.finished = new_condition("FailureTarget", *BACKOFF_LIMIT_EXCEEDED, now)
            elif past_active_deadline(job, now):
                state.finished = new_condition("FailureTarget", *DEADLINE_EXCEEDED, now)
            elif spec.get("activeDeadlineSeconds") is not None and not is_suspended(job):
                start = parse_time(status.get("startTime")) or now
                deadline = start + timedelta(seconds=_int(spec.get("activeDeadlineSeconds")))
                again.append(max(0.0, (deadline - now).total_seconds()))
        if is_indexed(job):
            completions = _int(spec.get("completions"))
            state.prev_indexes = parse_indexes(status.get("completedIndexes"), completions)
            state.succeeded_indexes = state.prev_indexes | {
                ix for p in pods
                if _phase(p) == "Succeeded" and has_tracking_finalizer(p)
                and (ix := completion_index(p)) is not None and ix < completions
            }
            state.succeeded = len(state.succeeded_indexes)

        active = len(state.active_pods)
        manage_error: BaseException | None = None
        suspend_changed = False
        if state.finished is not None:
            deleted_ready, deleted, manage_error = await self._delete_pods(job, key, state.active_pods, expect=False)
            if deleted != active or not satisfied:
                # pods still to go or not yet in the cache: finish on a later sync
                state.finished = None
            active -= deleted
            state.terminating += deleted
            state.ready -= deleted_ready
        else:
            manage_called = False
            if satisfied and not is_deleting(job):
                active, manage_error, delay = await self._manage_job(key, state, now)
                manage_called = True
                if delay is not None:
                    again.append(delay)
            if spec.get("completions") is None:
                complete = state.succeeded > 0 and active == 0
            else:
                complete = state.succeeded >= _int(spec.get("completions")) and active == 0
            if complete:
                state.finished = new_condition("SuccessCriteriaMet", *COMPLETIONS_REACHED, now)
            elif manage_called:
                suspend_changed = await self._suspend_conditions(job, now)

        needs_flush = (
            needs_flush or suspend_changed
            or active != _int(status.get("active"))
            or status.get("ready") != state.ready
            or status.get("terminating") != state.terminating
        )
        status["active"] = active
        status["ready"] = state.ready
        status["terminating"] = state.terminating
        await self._track_status(key, state, needs_flush, now)
        if manage_error is not None:
            raise manage_error
        return min(again) if again else None

    async def _suspend_conditions(self, job: Obj, now: datetime) -> bool:
        status = job["status"]
        if is_suspended(job):
            if ensure_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", now):
                await self.event(job, "Suspended", "Job suspended")
                return True
            return False
        if ensure_condition(status, "Suspended", "False", "JobResumed", "Job resumed", now):
            await self.event(job, "Resumed", "Job resumed")
            # activeDeadlineSeconds counts time continuously active: start again
            status["startTime"] = format_time(now)
            return True
        return False

    # ---- pods -----------------------------------------------------------------------

    async def _claim_pods(self, job: Obj, selector: LabelSelector) -> list[Obj]:
        """Pods the Job controls and selects, plus orphans it adopts; strays are released.

        A released pod keeps its tracking finalizer for a moment: as an orphan with the
        finalizer it comes back through `_sync_orphan_pod`, which removes it.
        """
        candidates = self.pods.by_index(NAMESPACE_INDEX, meta(job).get("namespace") or "")
        return await claim(
            self.client, "pods", job, new_controller_ref(job, "batch/v1", "Job"), selector,
            candidates, lambda: self._recheck_not_deleted(job),
        )

    async def _recheck_not_deleted(self, job: Obj) -> None:
        """Before adopting, a live read: a Job being deleted must not adopt (upstream #42639)."""
        m = meta(job)
        fresh = await self.client.get("jobs.batch", m["name"], m.get("namespace"))
        if meta(fresh).get("uid") != m.get("uid") or is_deleting(fresh):
            raise _Stale(f"job {object_key(job)} is gone or being deleted; not adopting")

    async def _manage_job(self, key: str, state: _SyncState, now: datetime) -> tuple[int, BaseException | None, float | None]:
        """Create or delete pods toward the wanted number of active ones.

        Returns the number active afterwards, an error to raise after the status is
        written, and when to look again (the failure backoff).
        """
        job = state.job
        spec = _spec(job)
        active = len(state.active_pods)
        parallelism = _int(spec.get("parallelism"), 1)
        if is_suspended(job):
            to_delete = active_pods_for_removal(job, state.active_pods, active)
            ready, removed, err = await self._delete_pods(job, key, to_delete, expect=True)
            state.terminating += removed
            state.ready -= ready
            return active - removed, err, None

        if spec.get("completions") is None:
            want = active if state.succeeded > 0 else parallelism
        else:
            want = max(0, min(_int(spec.get("completions")) - state.succeeded, parallelism))
        to_delete = active_pods_for_removal(job, state.active_pods, max(0, active - want))
        to_delete = to_delete[:MAX_POD_CREATE_DELETE_PER_SYNC]
        if to_delete:
            # deletions and creations never in one sync; deletions first
            ready, removed, err = await self._delete_pods(job, key, to_delete, expect=True)
            state.terminating += removed
            state.ready -= ready
            return active - removed, err, None

        waiting = state.terminating if only_replace_failed_pods(job) else 0
        diff = want - waiting - active
        if diff <= 0:
            return active, None, None
        remaining = pod_failure_backoff(state.pods, job, now, self.pod_failure_backoff_base, MAX_POD_FAILURE_BACKOFF)
        if remaining > 0:
            return active, None, remaining
        diff = min(diff, MAX_POD_CREATE_DELETE_PER_SYNC)
        indexes: list[int | None] = [None] * diff
        if is_indexed(job):
            indexes = list(first_pending_indexes(
                _int(spec.get("completions")), diff, state.succeeded_indexes, state.active_pods
            ))
            diff = len(indexes)
        if diff == 0:
            return active, None, None
        self.expectations.expect(key, diff)
        active += diff
        error: BaseException | None = None
        # slow start: batches of 1, 2, 4, ...; a failed batch stops the rest
        pos, batch = 0, 1
        while pos < diff:
            chunk = indexes[pos:pos + batch]
            pos += len(chunk)
            results = await asyncio.gather(*(self._create_pod(job, ix) for ix in chunk), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            for failure in failed:
                self.expectations.creation_observed(key)
                active -= 1
                if error is None and not _namespace_terminating(failure):
                    error = failure
            if failed:
                skipped = diff - pos
                self.expectations.creation_observed(key, skipped)  # never tried
                active -= skipped
                break
            batch = min(2 * batch, diff - pos)
        return active, error, None

    async def _create_pod(self, job: Obj, index: int | None) -> None:
        try:
            created = await self.client.create("pods", job_pod(job, index), meta(job).get("namespace"))
        except ApiError as e:
            if not _namespace_terminating(e):
                await self.event(job, "FailedCreate", f"Error creating: {e}", "Warning")
            raise
        await self.event(job, "SuccessfulCreate", f"Created pod: {meta(created).get('name')}")

    async def _delete_pods(
        self, job: Obj, key: str, pods: list[Obj], expect: bool
    ) -> tuple[int, int, BaseException | None]:
        """Delete pods, keeping their finalizers (the count removes them); (ready, deleted, error)."""
        if not pods:
            return 0, 0, None
        if expect:
            self.expectations.expect(key, 0, [pod_key(p) for p in pods])
        results = await asyncio.gather(*(self._delete_pod(job, p) for p in pods), return_exceptions=True)
        deleted = ready = 0
        error: BaseException | None = None
        for pod, result in zip(pods, results, strict=True):
            if isinstance(result, BaseException):
                if expect:
                    self.expectations.deletion_observed(key, pod_key(pod))
                if not (isinstance(result, ApiError) and is_not_found(result)):
                    error = error or result
                    continue
            deleted += 1
            if is_pod_ready(pod):
                ready += 1
        return ready, deleted, error

    async def _delete_pod(self, job: Obj, pod: Obj) -> None:
        m = meta(pod)
        try:
            await self.client.delete("pods", m["name"], m.get("namespace"))
        except ApiError as e:
            if not is_not_found(e):
                await self.event(job, "FailedDelete", f"Error deleting: {e}", "Warning")
            raise
        await self.event(job, "SuccessfulDelete", f"Deleted pod: {m['name']}")

    # ---- counting finished pods ------------------------------------------------------

    async def _track_status(self, key: str, state: _SyncState, needs_flush: bool, now: datetime) -> None:
        """Count finished pods through the status, remove their finalizers, finish the Job.

        upstream trackJobStatusAndRemoveFinalizers: (1) new finished pods go into
        uncountedTerminatedPods (written), (2) their finalizers are removed, (3) the ones
        without a finalizer move to succeeded/failed (written), (4) the Job gets its final
        condition once nothing is left uncounted or terminating.
        """
        job = state.job
        status = job["status"]
        indexed = is_indexed(job)
        completions = _int(_spec(job).get("completions"))
        with_finalizer = {
            str(meta(p).get("uid")) for p in state.pods
            if has_tracking_finalizer(p) and str(meta(p).get("uid")) not in state.expected_rm
        }
        if clean_uncounted(status, with_finalizer):
            needs_flush = True
        uncounted = status.setdefault("uncountedTerminatedPods", {})
        to_remove: list[Obj] = []
        new_indexes: list[int] = []
        reached_max = False
        finishing_failed = state.finished is not None and state.finished["type"] != "SuccessCriteriaMet"
        for pod in state.pods:
            uid = str(meta(pod).get("uid"))
            if not has_tracking_finalizer(pod) or uid in state.expected_rm:
                continue  # counted in an earlier sync
            failed = is_pod_failed(pod, job)
            if not (is_deleting(job) or state.finished is not None or _phase(pod) == "Succeeded" or failed):
                continue  # still running: keep counting it later
            to_remove.append(pod)
            ix = completion_index(pod)
            if _phase(pod) == "Succeeded" and uid not in state.uncounted_failed:
                if indexed:
                    if ix is not None and ix < completions and ix not in state.prev_indexes:
                        new_indexes.append(ix)
                        needs_flush = True
                elif uid not in state.uncounted_succeeded:
                    uncounted.setdefault("succeeded", []).append(uid)
                    needs_flush = True
            elif failed or finishing_failed:
                # when the Job is failing, every pod not yet finished counts as failed
                if uid not in state.uncounted_failed and (not indexed or (ix is not None and ix < completions)):
                    uncounted.setdefault("failed", []).append(uid)
                    needs_flush = True
            pending = len(new_indexes) + len(uncounted.get("succeeded") or ()) + len(uncounted.get("failed") or ())
            if pending >= MAX_UNCOUNTED_PODS:
                reached_max = True  # the rest on the next sync, which our own writes trigger
                break
        if indexed:
            state.succeeded_indexes |= set(new_indexes)
            text = format_indexes(state.succeeded_indexes)
            if text != (status.get("completedIndexes") or ""):
                needs_flush = True
            status["succeeded"] = len(state.succeeded_indexes)
            if text:
                status["completedIndexes"] = text
            else:
                status.pop("completedIndexes", None)
        finished = state.finished
        if finished is not None and finished["type"] == "FailureTarget":
            status.setdefault("conditions", []).append(finished)
            needs_flush = True
            finished = new_condition("Failed", finished["reason"], finished["message"], now)
        elif finished is not None and finished["type"] == "SuccessCriteriaMet":
            if _condition_true(job, "SuccessCriteriaMet") is None:
                status.setdefault("conditions", []).append(finished)
                needs_flush = True
            finished = new_condition("Complete", finished["reason"], finished["message"], now)

        job, needs_flush = await self._flush_and_remove_finalizers(key, job, to_remove, with_finalizer, needs_flush)
        done = not reached_max and self._enact_finished(job, finished, now)
        if done or needs_flush:
            job = await self._write_status(job)
        if done and finished is not None:
            if finished["type"] == "Complete":
                await self.event(job, "Completed", "Job completed")
            else:
                await self.event(job, finished["reason"], finished["message"], "Warning")

    async def _flush_and_remove_finalizers(
        self, key: str, job: Obj, to_remove: list[Obj], with_finalizer: set[str], needs_flush: bool
    ) -> tuple[Obj, bool]:
        """Write the uncounted uids first, then remove finalizers, then count what went."""
        if needs_flush:
            job = await self._write_status(job)
            needs_flush = False
        removed, error = await self._remove_finalizers(key, to_remove)
        with_finalizer -= removed
        if clean_uncounted(job.setdefault("status", {}), with_finalizer):
            needs_flush = True
        if error is not None:
            if needs_flush:
                await self._write_status(job)  # keep the partial progress
            raise error
        return job, needs_flush

    def _enact_finished(self, job: Obj, finished: Obj | None, now: datetime) -> bool:
        """Add the final condition once nothing is uncounted or still terminating."""
        if finished is None:
            return False
        status = job.setdefault("status", {})
        uncounted = status.get("uncountedTerminatedPods") or {}
        if uncounted.get("succeeded") or uncounted.get("failed"):
            return False
        if _int(status.get("terminating")) > 0:
            return False
        ensure_condition(status, finished["type"], "True", finished["reason"], finished["message"], now)
        if finished["type"] == "Complete":
            status["completionTime"] = finished["lastTransitionTime"]
        return True

    async def _remove_finalizers(self, key: str, pods: list[Obj]) -> tuple[set[str], BaseException | None]:
        """Remove the tracking finalizer; the uids it is gone from, and the first error."""
        if not pods:
            return set(), None
        expected = self.finalizer_expectations.setdefault(key, set())
        uids = [str(meta(p).get("uid")) for p in pods]
        expected.update(uids)
        results = await asyncio.gather(*(self._remove_finalizer(p) for p in pods), return_exceptions=True)
        removed: set[str] = set()
        error: BaseException | None = None
        for uid, result in zip(uids, results, strict=True):
            if isinstance(result, BaseException):
                expected.discard(uid)
                if not (isinstance(result, ApiError) and is_not_found(result)):
                    error = error or result
                    continue
            removed.add(uid)
        if not expected:
            self.finalizer_expectations.pop(key, None)
        return removed, error

    async def _remove_finalizer(self, pod: Obj) -> None:
        m = meta(pod)
        patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": [JOB_TRACKING_FINALIZER]}}
        await self.client.patch("pods", m["name"], patch, namespace=m.get("namespace"), patch_type="strategic")

    async def _write_status(self, job: Obj) -> Obj:
        _normalize_status(job.setdefault("status", {}))
        return await self.client.update_status("jobs.batch", job)

    async def _remove_leftover_finalizers(self, key: str, job: Obj) -> None:
        """A finished Job counts nothing more: no pod of it may keep the finalizer."""
        pods = [p for p in self.pods.by_index(CONTROLLER_UID_INDEX, str(meta(job).get("uid"))) if has_tracking_finalizer(p)]
        _, error = await self._remove_finalizers(key, pods)
        if error is not None:
            raise error

    async def _sync_orphan_pod(self, pod_key: str) -> None:
        """Remove the finalizer of a pod no running Job of ours will count."""
        pod = self.pods.get(pod_key)
        if pod is None or not has_tracking_finalizer(pod):
            return
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
                return  # not ours to touch
            job = self._resolve(split_key(pod_key)[0], ref)
            if job is not None:
                managed_by = _spec(job).get("managedBy")
                if (managed_by and managed_by != JOB_CONTROLLER_NAME) or not is_job_finished(job):
                    return  # its Job will count it
        try:
            await self._remove_finalizer(pod)
        except ApiError as e:
            if not is_not_found(e):
                raise


class _Stale(ClientError):
    """The cache was behind; the key is retried with backoff."""


def _namespace_terminating(err: BaseException) -> bool:
    return isinstance(err, ApiError) and err.code == 403 and "being terminated" in str(err)
