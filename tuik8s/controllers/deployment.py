"""The Deployment controller: roll a pod template out through ReplicaSets.

A Deployment owns one ReplicaSet per template it has had, named `<deployment>-<hash>` where
the hash is the template's `pod-template-hash` (also added to the ReplicaSet's selector,
its template's labels, hence its pods, so ReplicaSets of one Deployment never fight over
pods). The *new* ReplicaSet is the one whose template equals the Deployment's; every other
is *old*. Each reconcile, as upstream's `syncDeployment`, does one step and writes status:

- paused, or only `spec.replicas` changed (a ReplicaSet's desired-replicas annotation
  differs): `sync` scales the ReplicaSets, proportionally to their sizes when a rollout is
  under way, and progress is not judged;
- RollingUpdate: scale the new ReplicaSet up within `replicas + maxSurge`, else scale old
  ones down while `replicas - maxUnavailable` pods stay available;
- Recreate: scale old ReplicaSets to 0, wait until none of their pods runs, then create or
  scale up the new one.

Revisions: the new ReplicaSet carries `deployment.kubernetes.io/revision` = the highest of
the old ones + 1 (a template that comes back, as after `kubectl rollout undo`, moves its
old revision into `revision-history`), and the Deployment carries its new ReplicaSet's.
`kubectl rollout undo` and `rollout history` read those annotations client-side.

Each ReplicaSet also carries `desired-replicas` and `max-replicas` (replicas + maxSurge at
its last scaling): a desired-replicas that differs from the Deployment's is how a scaling
event is recognised, and max-replicas is the base for proportional scaling.

Progress (`progressDeadlineSeconds`): the Progressing condition's lastUpdateTime moves on
whenever the rollout makes progress; no progress for the deadline gives Progressing=False,
ProgressDeadlineExceeded. The controller asks its queue to look again at the deadline
rather than relying on some resync to notice.

Every write carries the resourceVersion of what was read, so a decision made on a stale
cache fails with a conflict and is made again on fresh data (DESIGN rule 4).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from tuik8s.api.selectors import SelectorError
from tuik8s.client.errors import ApiError, ClientError, is_already_exists, is_not_found
from tuik8s.client.informer import NAMESPACE_INDEX, namespace_index, object_key
from tuik8s.controllers import podutil
from tuik8s.controllers.podutil import (
    CONTROLLER_UID_INDEX,
    HASH_LABEL,
    Obj,
    controller_uid_index,
    meta,
)
from tuik8s.controllers.runner import Controller

log = logging.getLogger(__name__)

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# never copied from a Deployment to its ReplicaSets
ANNOTATIONS_TO_SKIP = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO})
MAX_REV_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1

# condition reasons (deploymentutil)
REPLICASET_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


# ---- small accessors ------------------------------------------------------------------------


def spec_of(obj: Mapping[str, Any]) -> Obj:
    return obj.get("spec") or {}


def replicas(obj: Mapping[str, Any] | None) -> int:
    """`spec.replicas` (1 when unset, as the API defaults it)."""
    if obj is None:
        return 0
    value = spec_of(obj).get("replicas")
    return 1 if value is None else int(value)


def status_count(obj: Mapping[str, Any] | None, name: str) -> int:
    if obj is None:
        return 0
    return int((obj.get("status") or {}).get(name) or 0)


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def revision_of(rs: Mapping[str, Any]) -> int:
    try:
        return int(annotations_of(rs).get(REVISION, ""))
    except ValueError:
        return 0


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision_of(rs) for rs in rss), default=0)


def _created(obj: Mapping[str, Any]) -> datetime:
    return podutil.parse_time(meta(obj).get("creationTimestamp")) or datetime.min.replace(tzinfo=UTC)


def by_creation(rss: Iterable[Obj]) -> list[Obj]:
    """Oldest first; the name breaks ties (ReplicaSetsByCreationTimestamp)."""
    return sorted(rss, key=lambda rs: (_created(rs), str(meta(rs).get("name"))))


def by_size_newer(rss: Iterable[Obj]) -> list[Obj]:
    """Largest first; among equals the newest first (ReplicaSetsBySizeNewer)."""
    ordered = sorted(rss, key=lambda rs: (_created(rs), str(meta(rs).get("name"))), reverse=True)
    return sorted(ordered, key=lambda rs: -replicas(rs))


def by_size_older(rss: Iterable[Obj]) -> list[Obj]:
    """Largest first; among equals the oldest first (ReplicaSetsBySizeOlder)."""
    return sorted(by_creation(rss), key=lambda rs: -replicas(rs))


def by_revision(rss: Iterable[Obj]) -> list[Obj]:
    return sorted(by_creation(rss), key=revision_of)


def active(rss: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def total_replicas(rss: Iterable[Obj | None]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def total_status(rss: Iterable[Obj | None], name: str) -> int:
    return sum(status_count(rs, name) for rs in rss if rs is not None)


# ---- surge and unavailability -----------------------------------------------------------


def is_rolling(d: Mapping[str, Any]) -> bool:
    return (spec_of(d).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """An IntOrString against `total`: a number as is, "25%" of total rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage: {text!r}")
    try:
        percent = int(text[:-1])
    except ValueError:
        raise ValueError(f"invalid value {text!r}: not a percentage") from None
    scaled = percent * total
    return -(-scaled // 100) if round_up else scaled // 100


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None, desired: int) -> tuple[int, int]:
    """(surge, unavailable) for `desired` replicas: surge rounds up, unavailable down.

    Both 0 would deadlock a rollout (no room to add, none allowed to go), so unavailable
    becomes 1 then, as upstream's ResolveFenceposts.
    """
    surge = scaled_value(max_surge if max_surge is not None else 0, desired, True)
    unavailable = scaled_value(max_unavailable if max_unavailable is not None else 0, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling_params(d: Mapping[str, Any]) -> Obj:
    return (spec_of(d).get("strategy") or {}).get("rollingUpdate") or {}


def max_surge(d: Mapping[str, Any]) -> int:
    if not is_rolling(d):
        return 0
    params = _rolling_params(d)
    return resolve_fenceposts(params.get("maxSurge"), params.get("maxUnavailable"), replicas(d))[0]


def max_unavailable(d: Mapping[str, Any]) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    params = _rolling_params(d)
    unavailable = resolve_fenceposts(params.get("maxSurge"), params.get("maxUnavailable"), replicas(d))[1]
    return min(unavailable, replicas(d))


def new_rs_new_replicas(d: Obj, all_rss: Sequence[Obj | None], new_rs: Obj) -> int:
    """How big the new ReplicaSet may be now (NewRSNewReplicas)."""
    if not is_rolling(d):
        return replicas(d)
    max_total = replicas(d) + max_surge(d)
    current = total_replicas(all_rss)
    if current >= max_total:
        return replicas(new_rs)  # no room to surge
    scale_up = min(max_total - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + scale_up


# ---- proportional scaling ---------------------------------------------------------------


def _max_replicas_annotation(rs: Mapping[str, Any]) -> int | None:
    try:
        return int(annotations_of(rs)[MAX_REPLICAS])
    except (KeyError, ValueError):
        return None


def _round_half_away(value: Fraction) -> int:
    whole = abs(value.numerator) * 2 + value.denominator
    magnitude = whole // (2 * value.denominator)
    return magnitude if value >= 0 else -magnitude


def rs_fraction(rs: Obj, d: Obj) -> int:
    """How many replicas `rs` gains (or loses) if the Deployment's new size is shared out
    in proportion to the size it had when last scaled (getReplicaSetFraction)."""
    if replicas(d) == 0:
        return -replicas(rs)
    deployment_replicas = replicas(d) + max_surge(d)
    annotated = _max_replicas_annotation(rs)
    if annotated is None:
        annotated = status_count(d, "replicas")
    if annotated == 0:
        return 0
    new_size = Fraction(replicas(rs) * deployment_replicas, annotated)
    return _round_half_away(new_size) - replicas(rs)


def get_proportion(rs: Obj | None, d: Obj, to_add: int, added: int) -> int:
    """The share of `to_add` for `rs`, never beyond what is left of it (getProportion)."""
    if rs is None or replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = rs_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def find_active_or_latest(new_rs: Obj | None, old_rss: Sequence[Obj]) -> Obj | None:
    """The only active ReplicaSet, or the newest when none is active; None if several are."""
    if new_rs is None and not old_rss:
        return None
    newest_first = list(reversed(by_creation(old_rss)))
    candidates = active([*newest_first, new_rs])
    if not candidates:
        return new_rs if new_rs is not None else newest_first[0]
    if len(candidates) == 1:
        return candidates[0]
    return None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """The ReplicaSet runs, available, every replica the Deployment wants."""
    if rs is None:
        return False
    try:
        desired = int(annotations_of(rs).get(DESIRED_REPLICAS, ""))
    except ValueError:
        return False
    return replicas(rs) == replicas(d) and desired == replicas(d) and status_count(rs, "availableReplicas") == replicas(d)


def scale_targets(d: Obj, new_rs: Obj | None, old_rss: Sequence[Obj]) -> tuple[list[tuple[Obj, int]], str | None]:
    """The sizes `sync` gives the ReplicaSets after a scaling event (upstream's `scale`).

    Returns (ReplicaSet, new size) pairs, and for proportional scaling the direction ("up",
    "down", or "" when the total stays): those pairs are all written when only their
    replica annotations are out of date, so the scaling event is over. None: plain resizes.
    One active ReplicaSet (or none) takes the whole size; a saturated new one leaves the
    old ones 0; otherwise the difference to `replicas + maxSurge` is shared out in
    proportion, the largest ReplicaSet first, with what rounding leaves going to the first.
    """
    only = find_active_or_latest(new_rs, old_rss)
    if only is not None:
        if replicas(only) == replicas(d):
            return [], None
        return [(only, replicas(d))], None
    if is_saturated(d, new_rs):
        return [(old, 0) for old in active(old_rss)], None
    if not is_rolling(d):
        return [], None
    all_rss = active([*old_rss, new_rs])
    allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = allowed - total_replicas(all_rss)
    operation = ""
    if to_add > 0:
        all_rss = by_size_newer(all_rss)
        operation = "up"
    elif to_add < 0:
        all_rss = by_size_older(all_rss)
        operation = "down"
    added = 0
    sizes: list[int] = []
    for rs in all_rss:
        if to_add != 0:
            proportion = get_proportion(rs, d, to_add, added)
            sizes.append(replicas(rs) + proportion)
            added += proportion
        else:
            sizes.append(replicas(rs))
    if all_rss and to_add != 0:
        sizes[0] = max(0, sizes[0] + to_add - added)
    return list(zip(all_rss, sizes, strict=True)), operation


# ---- rolling update steps ---------------------------------------------------------------


def max_scaled_down(all_rss: Sequence[Obj], new_rs: Obj, d: Obj) -> int:
    """How many old replicas may go now without breaking the availability floor."""
    min_available = replicas(d) - max_unavailable(d)
    new_unavailable = replicas(new_rs) - status_count(new_rs, "availableReplicas")
    return total_replicas(all_rss) - min_available - new_unavailable


def cleanup_unhealthy_plan(old_rss: Sequence[Obj], max_cleanup: int) -> list[tuple[Obj, int]]:
    """Old replicas that are not available go first, oldest ReplicaSet first: they serve
    nobody, so removing them costs no availability (cleanupUnhealthyReplicas)."""
    plan: list[tuple[Obj, int]] = []
    done = 0
    for rs in by_creation(old_rss):
        if done >= max_cleanup:
            break
        size, available = replicas(rs), status_count(rs, "availableReplicas")
        if size == 0 or size == available:
            continue
        count = min(max_cleanup - done, size - available)
        plan.append((rs, size - count))
        done += count
    return plan


def rolling_scale_down_plan(all_rss: Sequence[Obj], old_rss: Sequence[Obj], d: Obj) -> list[tuple[Obj, int]]:
    """Scale old ReplicaSets down, oldest first, by what is available beyond the floor
    (scaleDownOldReplicaSetsForRollingUpdate)."""
    min_available = replicas(d) - max_unavailable(d)
    available = total_status(all_rss, "availableReplicas")
    if available <= min_available:
        return []
    budget = available - min_available
    plan: list[tuple[Obj, int]] = []
    done = 0
    for rs in by_creation(old_rss):
        if done >= budget:
            break
        if replicas(rs) == 0:
            continue
        count = min(replicas(rs), budget - done)
        plan.append((rs, replicas(rs) - count))
        done += count
    return plan


# ---- conditions and status --------------------------------------------------------------


def get_condition(status: Mapping[str, Any] | None, ctype: str) -> Obj | None:
    for cond in (status or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == ctype:
            return cond
    return None


def new_condition(ctype: str, status: str, reason: str, message: str, at: datetime) -> Obj:
    stamp = podutil.format_time(at)
    return {"type": ctype, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp, "reason": reason, "message": message}


def set_condition(status: Obj, cond: Obj) -> None:
    """Add or replace a condition; same status and reason: keep the old one as it is."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    cond = dict(cond)
    if current is not None and current.get("status") == cond["status"]:
        cond["lastTransitionTime"] = current.get("lastTransitionTime")
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: Obj, ctype: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def has_progress_deadline(d: Mapping[str, Any]) -> bool:
    value = spec_of(d).get("progressDeadlineSeconds")
    return value is not None and int(value) != MAX_INT32


def calculate_status(all_rss: Sequence[Obj | None], new_rs: Obj | None, d: Obj, at: datetime) -> Obj:
    """Counts summed over the ReplicaSets, and the Available condition (calculateStatus)."""
    old_status = d.get("status") or {}
    available = total_status(all_rss, "availableReplicas")
    unavailable = max(0, total_replicas(all_rss) - available)
    status: Obj = {}
    counts = {
        "observedGeneration": meta(d).get("generation") or 0,
        "replicas": total_status(all_rss, "replicas"),
        "updatedReplicas": status_count(new_rs, "replicas"),
        "readyReplicas": total_status(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    }
    status.update({k: v for k, v in counts.items() if v})
    if "collisionCount" in old_status:
        status["collisionCount"] = old_status["collisionCount"]
    conditions = copy.deepcopy(old_status.get("conditions") or [])
    if conditions:
        status["conditions"] = conditions
    if available >= replicas(d) - max_unavailable(d):
        cond = new_condition("Available", "True", MIN_AVAILABLE, "Deployment has minimum availability.", at)
    else:
        cond = new_condition("Available", "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability.", at)
    set_condition(status, cond)
    return status


def deployment_complete(d: Obj, status: Mapping[str, Any]) -> bool:
    want = replicas(d)
    return (
        int(status.get("updatedReplicas") or 0) == want
        and int(status.get("replicas") or 0) == want
        and int(status.get("availableReplicas") or 0) == want
        and int(status.get("observedGeneration") or 0) >= int(meta(d).get("generation") or 0)
    )


def deployment_progressing(d: Obj, status: Mapping[str, Any]) -> bool:
    """More updated, ready or available replicas, or fewer old ones, than last written."""
    old = d.get("status") or {}

    def n(s: Mapping[str, Any], k: str) -> int:
        return int(s.get(k) or 0)

    old_old = n(old, "replicas") - n(old, "updatedReplicas")
    new_old = n(status, "replicas") - n(status, "updatedReplicas")
    return (
        n(status, "updatedReplicas") > n(old, "updatedReplicas")
        or new_old < old_old
        or n(status, "readyReplicas") > n(old, "readyReplicas")
        or n(status, "availableReplicas") > n(old, "availableReplicas")
    )


def deployment_timed_out(d: Obj, status: Mapping[str, Any], at: datetime) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = podutil.parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return since + timedelta(seconds=int(spec_of(d)["progressDeadlineSeconds"])) < at


# ---- finding the new ReplicaSet ---------------------------------------------------------


def find_new_rs(d: Obj, rss: Iterable[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (but for the hash label)."""
    template = spec_of(d).get("template")
    for rs in by_creation(rss):
        if podutil.equal_ignore_hash(spec_of(rs).get("template"), template):
            return rs
    return None


def find_old_rss(d: Obj, rss: Sequence[Obj]) -> list[Obj]:
    new_rs = find_new_rs(d, rss)
    new_uid = meta(new_rs).get("uid") if new_rs is not None else None
    return [rs for rs in rss if new_rs is None or meta(rs).get("uid") != new_uid]


def replicas_annotations_need_update(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = annotations_of(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """Copy the Deployment's annotations and raise the revision (SetNewReplicaSetAnnotations).

    A ReplicaSet whose revision goes up while it had one is an old template coming back:
    its previous revision is kept in revision-history (at most 2000 characters of it).
    """
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for key, value in annotations_of(d).items():
        if key in ANNOTATIONS_TO_SKIP or ann.get(key) == value:
            continue
        ann[key] = value
        changed = True
    had = REVISION in ann
    old_text = ann.get(REVISION, "")
    try:
        old_revision = int(old_text) if old_text else 0
    except ValueError:
        return changed
    if old_revision < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if had:
            history = ann.get(REVISION_HISTORY, "")
            entries = history.split(",") if history else []
            total = len(history) + len(old_text) + 1
            start = 0
            while total > MAX_REV_HISTORY_CHARS and start < len(entries):
                total -= len(entries[start]) + 1
                start += 1
            if not entries:
                ann[REVISION_HISTORY] = old_text
            elif total <= MAX_REV_HISTORY_CHARS:
                ann[REVISION_HISTORY] = ",".join([*entries[start:], old_text])
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


def new_replica_set(d: Obj, collision_count: int | None) -> Obj:
    """The ReplicaSet for the Deployment's current template (not yet sized or annotated)."""
    dmeta, spec = meta(d), spec_of(d)
    template = copy.deepcopy(spec.get("template") or {})
    pod_hash = podutil.compute_hash(template, collision_count)
    tmeta = template.setdefault("metadata", {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: pod_hash}
    selector = copy.deepcopy(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{dmeta.get('name')}-{pod_hash}",
            "namespace": dmeta.get("namespace"),
            "ownerReferences": [podutil.new_controller_ref(d, "apps/v1", "Deployment")],
            "labels": dict(tmeta["labels"]),
        },
        "spec": {
            "replicas": 0,
            "minReadySeconds": int(spec.get("minReadySeconds") or 0),
            "selector": selector,
            "template": template,
        },
    }


# ---- the controller -----------------------------------------------------------------------


class DeploymentController(Controller):
    """Rolls Deployments out through ReplicaSets and reports their progress."""

    name = "deployment"
    workers = 5

    def setup(self) -> None:
        self.deployments = self.informer("deployments.apps")
        self.replicasets = self.informer("replicasets.apps")
        self.pods = self.informer("pods")
        for inf in (self.deployments, self.replicasets, self.pods):
            inf.add_index(NAMESPACE_INDEX, namespace_index)
        for inf in (self.replicasets, self.pods):
            inf.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
        self.replicasets.add_index(podutil.ORPHAN_INDEX, podutil.orphan_index)
        self.enqueue_handlers(self.deployments)
        self.replicasets.add_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pods.add_handler(on_delete=self._pod_deleted)

    # ---- events: keys only ------------------------------------------------------------

    def _owner_of(self, rs: Obj, ref: Obj | None = None) -> Obj | None:
        ref = ref if ref is not None else podutil.controller_ref(rs)
        if not podutil.refers_to(ref, "apps", "Deployment"):
            return None
        assert ref is not None
        d = self.deployments.get(f"{meta(rs).get('namespace')}/{ref.get('name')}")
        if d is None or meta(d).get("uid") != ref.get("uid"):
            return None
        return d

    def _matching(self, rs: Obj) -> list[Obj]:
        """Deployments whose selector picks an orphan ReplicaSet (they may adopt it)."""
        return podutil.owners_selecting(self.deployments, rs)

    def _rs_added(self, rs: Obj) -> None:
        if podutil.is_deleting(rs):
            self._rs_deleted(rs)
            return
        ref = podutil.controller_ref(rs)
        if ref is not None:
            d = self._owner_of(rs, ref)
            if d is not None:
                self.enqueue(d)
            return
        for d in self._matching(rs):
            self.enqueue(d)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        old_ref, new_ref = podutil.controller_ref(old), podutil.controller_ref(new)
        ref_changed = (old_ref or {}).get("uid") != (new_ref or {}).get("uid")
        if ref_changed and old_ref is not None:
            d = self._owner_of(old, old_ref)
            if d is not None:
                self.enqueue(d)
        if new_ref is not None:
            d = self._owner_of(new, new_ref)
            if d is not None:
                self.enqueue(d)
            return
        if ref_changed or podutil.labels_of(old) != podutil.labels_of(new):
            for d in self._matching(new):
                self.enqueue(d)

    def _rs_deleted(self, rs: Obj) -> None:
        d = self._owner_of(rs)
        if d is not None:
            self.enqueue(d)

    def _pod_deleted(self, pod: Obj) -> None:
        """Recreate waits for the old pods to be gone, which no ReplicaSet change reports."""
        ref = podutil.controller_ref(pod)
        if not podutil.refers_to(ref, "apps", "ReplicaSet"):
            return
        assert ref is not None
        rs = self.replicasets.get(f"{meta(pod).get('namespace')}/{ref.get('name')}")
        d = self._owner_of(rs) if rs is not None else None
        if d is not None and not is_rolling(d):
            self.enqueue(d)

    # ---- reconcile ------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        cached = self.deployments.get(key)
        if cached is None:
            return None
        return await _Sync(self, copy.deepcopy(cached)).run()


class _Sync:
    """One reconcile of one Deployment: `d` is always the latest version written or read."""

    def __init__(self, controller: DeploymentController, d: Obj) -> None:
        self.c = controller
        self.client = controller.client
        self.d = d
        self.at = podutil.now()

    # ---- writes to the Deployment -------------------------------------------------------

    async def write_status(self, status: Obj) -> None:
        body = copy.deepcopy(self.d)
        body["status"] = status
        self.d = await self.client.update_status("deployments.apps", body)

    async def set_revision(self, revision: str) -> None:
        """The Deployment's revision annotation: that of its new ReplicaSet.

        A metadata patch of the main resource (not a status write, which upstream would
        also take, but which this API server keeps to status alone); annotations are not
        spec, so the generation does not move.
        """
        if annotations_of(self.d).get(REVISION) == revision:
            return
        m = meta(self.d)
        patch = {"metadata": {"resourceVersion": m.get("resourceVersion"), "annotations": {REVISION: revision}}}
        self.d = await self.client.patch("deployments.apps", str(m.get("name")), patch, namespace=m.get("namespace"))

    async def event(self, reason: str, message: str, type: str = "Normal") -> None:
        await self.c.event(self.d, reason, message, type)

    # ---- the steps --------------------------------------------------------------------

    async def run(self) -> float | None:
        d = self.d
        selector_spec = spec_of(d).get("selector")
        if isinstance(selector_spec, dict) and not selector_spec.get("matchLabels") and not selector_spec.get("matchExpressions"):
            await self.event("SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.", "Warning")
            if status_count(d, "observedGeneration") < int(meta(d).get("generation") or 0):
                status = copy.deepcopy(d.get("status") or {})
                status["observedGeneration"] = meta(d).get("generation")
                await self.write_status(status)
            return None
        try:
            selector = podutil.selector_of(d)
        except SelectorError as e:
            log.warning("deployment %s has an invalid selector: %s", object_key(d), e)
            return None
        candidates = podutil.claim_candidates(self.c.replicasets, d)
        rs_list = await podutil.claim(
            self.client, "replicasets.apps", d, podutil.new_controller_ref(d, "apps/v1", "Deployment"),
            selector, candidates, self.can_adopt,
        )
        rs_list = [copy.deepcopy(rs) for rs in rs_list]
        if podutil.is_deleting(d):
            await self.sync_status_only(rs_list)
            return None
        await self.check_paused_conditions()
        if spec_of(self.d).get("paused"):
            await self.sync(rs_list)
            return None
        if await self.is_scaling_event(rs_list):
            await self.sync(rs_list)
            return None
        if is_rolling(self.d):
            return await self.rollout_rolling(rs_list)
        return await self.rollout_recreate(rs_list)

    async def can_adopt(self) -> None:
        m = meta(self.d)
        fresh = await self.client.get("deployments.apps", str(m.get("name")), m.get("namespace"))
        fm = meta(fresh)
        if fm.get("uid") != m.get("uid"):
            raise ClientError(f"original Deployment {m.get('namespace')}/{m.get('name')} is gone: got uid {fm.get('uid')}, wanted {m.get('uid')}")
        if fm.get("deletionTimestamp"):
            raise ClientError(f"{m.get('namespace')}/{m.get('name')} has just been deleted at {fm.get('deletionTimestamp')}")

    async def check_paused_conditions(self) -> None:
        """Progressing=Unknown while paused, so the pause is not mistaken for no progress."""
        if not has_progress_deadline(self.d):
            return
        cond = get_condition(self.d.get("status"), "Progressing")
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return
        paused = bool(spec_of(self.d).get("paused"))
        has_paused = cond is not None and cond.get("reason") == PAUSED
        status = copy.deepcopy(self.d.get("status") or {})
        if paused and not has_paused:
            set_condition(status, new_condition("Progressing", "Unknown", PAUSED, "Deployment is paused", self.at))
        elif not paused and has_paused:
            set_condition(status, new_condition("Progressing", "Unknown", RESUMED, "Deployment is resumed", self.at))
        else:
            return
        await self.write_status(status)

    async def get_all_rss(self, rs_list: list[Obj], create: bool) -> tuple[Obj | None, list[Obj]]:
        """The new ReplicaSet (created if asked and missing) and all old ones, revisions synced."""
        old_rss = find_old_rss(self.d, rs_list)
        new_rs = await self.get_new_rs(rs_list, old_rss, create)
        return new_rs, old_rss

    async def get_new_rs(self, rs_list: list[Obj], old_rss: list[Obj], create: bool) -> Obj | None:
        existing = find_new_rs(self.d, rs_list)
        new_revision = max_revision(old_rss) + 1
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = set_new_rs_annotations(self.d, rs, new_revision, exists=True)
            min_ready = int(spec_of(self.d).get("minReadySeconds") or 0)
            if changed or int(spec_of(rs).get("minReadySeconds") or 0) != min_ready:
                rs["spec"]["minReadySeconds"] = min_ready
                updated = await self.client.update("replicasets.apps", rs)
                # later steps of this pass must write on top of this version, not the cache's
                rs_list[:] = [updated if r is existing else r for r in rs_list]
                return updated
            await self.set_revision(annotations_of(rs).get(REVISION, ""))
            if has_progress_deadline(self.d) and get_condition(self.d.get("status"), "Progressing") is None:
                status = copy.deepcopy(self.d.get("status") or {})
                msg = f'Found new replica set "{meta(rs).get("name")}"'
                set_condition(status, new_condition("Progressing", "True", FOUND_NEW_RS, msg, self.at))
                await self.write_status(status)
            return rs
        if not create:
            return None
        return await self.create_new_rs(old_rss, new_revision)

    async def create_new_rs(self, old_rss: list[Obj], new_revision: int) -> Obj:
        d = self.d
        collision_count = (d.get("status") or {}).get("collisionCount")
        rs = new_replica_set(d, collision_count)
        size = new_rs_new_replicas(d, [*old_rss, rs], rs)
        rs["spec"]["replicas"] = size
        set_new_rs_annotations(d, rs, new_revision, exists=False)
        namespace = meta(d).get("namespace")
        name = str(meta(rs)["name"])
        already_existed = False
        try:
            created = await self.client.create("replicasets.apps", rs, namespace)
        except ApiError as e:
            if is_already_exists(e):
                # a slow cache, or a hash collision with a ReplicaSet that is not ours
                found = await self.client.get("replicasets.apps", name, namespace)
                ref = podutil.controller_ref(found)
                if ref is not None and ref.get("uid") == meta(d).get("uid") and podutil.equal_ignore_hash(
                    spec_of(d).get("template"), spec_of(found).get("template")
                ):
                    created, already_existed = found, True
                else:
                    status = copy.deepcopy(d.get("status") or {})
                    status["collisionCount"] = int(collision_count or 0) + 1
                    await self.write_status(status)
                    raise
            elif e.code == 403 and "being terminated" in e.message:
                raise
            else:
                msg = f'Failed to create new replica set "{name}": {e}'
                if has_progress_deadline(d):
                    status = copy.deepcopy(d.get("status") or {})
                    set_condition(status, new_condition("Progressing", "False", FAILED_RS_CREATE, msg, self.at))
                    try:
                        await self.write_status(status)
                    except ClientError:
                        pass  # the failure below is the story to tell
                await self.event(FAILED_RS_CREATE, msg, "Warning")
                raise
        if not already_existed and size > 0:
            await self.event("ScalingReplicaSet", f"Scaled up replica set {meta(created).get('name')} from 0 to {size}")
        await self.set_revision(str(new_revision))
        if not already_existed and has_progress_deadline(self.d):
            status = copy.deepcopy(self.d.get("status") or {})
            msg = f'Created new replica set "{meta(created).get("name")}"'
            set_condition(status, new_condition("Progressing", "True", NEW_RS_CREATED, msg, self.at))
            await self.write_status(status)
        return created

    async def is_scaling_event(self, rs_list: list[Obj]) -> bool:
        """Some active ReplicaSet was sized for another `spec.replicas` than the current one."""
        new_rs, old_rss = await self.get_all_rss(rs_list, create=False)
        for rs in active([*old_rss, new_rs]):
            try:
                desired = int(annotations_of(rs)[DESIRED_REPLICAS])
            except (KeyError, ValueError):
                continue
            if desired != replicas(self.d):
                return True
        return False

    # ---- scaling --------------------------------------------------------------------

    async def scale_and_record(self, rs: Obj, size: int) -> tuple[bool, Obj]:
        if replicas(rs) == size:
            return False, rs
        return await self.scale_rs(rs, size, "up" if replicas(rs) < size else "down")

    async def scale_rs(self, rs: Obj, size: int, operation: str) -> tuple[bool, Obj]:
        """Set a ReplicaSet's size and replica annotations; an Event if the size changed."""
        d = self.d
        desired, max_total = replicas(d), replicas(d) + max_surge(d)
        size_changed = replicas(rs) != size
        if not size_changed and not replicas_annotations_need_update(rs, desired, max_total):
            return False, rs
        old_size = replicas(rs)
        body = copy.deepcopy(rs)
        body["spec"]["replicas"] = size
        set_replicas_annotations(body, desired, max_total)
        updated = await self.client.update("replicasets.apps", body)
        if size_changed:
            await self.event("ScalingReplicaSet", f"Scaled {operation} replica set {meta(rs).get('name')} from {old_size} to {size}")
        return size_changed, updated

    async def scale(self, new_rs: Obj | None, old_rss: list[Obj]) -> None:
        targets, operation = scale_targets(self.d, new_rs, old_rss)
        for rs, size in targets:
            if operation is not None:
                await self.scale_rs(rs, size, operation)
            else:
                await self.scale_and_record(rs, size)

    async def sync(self, rs_list: list[Obj]) -> None:
        """A scaling event or a paused Deployment: resize, no rollout progress."""
        new_rs, old_rss = await self.get_all_rss(rs_list, create=False)
        await self.scale(new_rs, old_rss)
        if spec_of(self.d).get("paused"):
            await self.cleanup(old_rss)
        await self.sync_deployment_status([*old_rss, new_rs], new_rs)

    async def sync_status_only(self, rs_list: list[Obj]) -> None:
        new_rs, old_rss = await self.get_all_rss(rs_list, create=False)
        await self.sync_deployment_status([*old_rss, new_rs], new_rs)

    async def sync_deployment_status(self, all_rss: list[Obj | None], new_rs: Obj | None) -> None:
        status = calculate_status(all_rss, new_rs, self.d, self.at)
        if status != (self.d.get("status") or {}):
            await self.write_status(status)

    async def cleanup(self, old_rss: list[Obj]) -> None:
        """Delete the oldest unused ReplicaSets beyond `revisionHistoryLimit`."""
        limit = spec_of(self.d).get("revisionHistoryLimit")
        if limit is None or int(limit) == MAX_INT32:
            return
        alive = [rs for rs in old_rss if not podutil.is_deleting(rs)]
        excess = len(alive) - int(limit)
        if excess <= 0:
            return
        for rs in by_revision(alive)[:excess]:
            m = meta(rs)
            if (
                status_count(rs, "replicas") != 0
                or replicas(rs) != 0
                or int(m.get("generation") or 0) > status_count(rs, "observedGeneration")
            ):
                continue
            try:
                await self.client.delete("replicasets.apps", str(m.get("name")), m.get("namespace"))
            except ApiError as e:
                if not is_not_found(e):
                    raise

    # ---- rollouts -------------------------------------------------------------------

    async def rollout_rolling(self, rs_list: list[Obj]) -> float | None:
        new_rs, old_rss = await self.get_all_rss(rs_list, create=True)
        assert new_rs is not None
        all_rss: list[Obj] = [*old_rss, new_rs]
        if await self.reconcile_new_rs(all_rss, new_rs):
            return await self.sync_rollout_status(all_rss, new_rs)
        if await self.reconcile_old_rss(all_rss, active(old_rss), new_rs):
            return await self.sync_rollout_status(all_rss, new_rs)
        if deployment_complete(self.d, self.d.get("status") or {}):
            await self.cleanup(old_rss)
        return await self.sync_rollout_status(all_rss, new_rs)

    async def reconcile_new_rs(self, all_rss: list[Obj], new_rs: Obj) -> bool:
        want = replicas(self.d)
        if replicas(new_rs) == want:
            return False
        if replicas(new_rs) > want:
            return (await self.scale_and_record(new_rs, want))[0]
        return (await self.scale_and_record(new_rs, new_rs_new_replicas(self.d, all_rss, new_rs)))[0]

    async def reconcile_old_rss(self, all_rss: list[Obj], old_rss: list[Obj], new_rs: Obj) -> bool:
        if total_replicas(old_rss) == 0:
            return False  # nothing to scale down
        budget = max_scaled_down(all_rss, new_rs, self.d)
        if budget <= 0:
            return False
        updated = {id(rs): rs for rs in old_rss}
        cleaned = 0
        for rs, size in cleanup_unhealthy_plan(old_rss, budget):
            cleaned += replicas(rs) - size
            _, updated[id(rs)] = await self.scale_and_record(rs, size)
        old_rss = [updated[id(rs)] for rs in old_rss]
        scaled = 0
        for rs, size in rolling_scale_down_plan([*old_rss, new_rs], old_rss, self.d):
            scaled += replicas(rs) - size
            await self.scale_and_record(rs, size)
        return cleaned + scaled > 0

    async def rollout_recreate(self, rs_list: list[Obj]) -> float | None:
        new_rs, old_rss = await self.get_all_rss(rs_list, create=False)
        all_rss: list[Obj | None] = [*old_rss, new_rs]
        scaled_down = False
        for rs in active(old_rss):
            if (await self.scale_and_record(rs, 0))[0]:
                scaled_down = True
        if scaled_down or self.old_pods_running(new_rs, old_rss, rs_list):
            return await self.sync_rollout_status(all_rss, new_rs)
        if new_rs is None:
            new_rs, old_rss = await self.get_all_rss(rs_list, create=True)
            all_rss = [*old_rss, new_rs]
        assert new_rs is not None
        await self.scale_and_record(new_rs, replicas(self.d))
        if deployment_complete(self.d, self.d.get("status") or {}):
            await self.cleanup(old_rss)
        return await self.sync_rollout_status(all_rss, new_rs)

    def old_pods_running(self, new_rs: Obj | None, old_rss: list[Obj], rs_list: list[Obj]) -> bool:
        """Some pod of an old ReplicaSet still exists and has not finished (oldPodsRunning)."""
        if total_status(old_rss, "replicas") > 0:
            return True
        new_uid = meta(new_rs).get("uid") if new_rs is not None else None
        for rs in rs_list:
            uid = str(meta(rs).get("uid"))
            if uid == new_uid:
                continue
            for pod in self.c.pods.by_index(CONTROLLER_UID_INDEX, uid):
                if podutil.pod_phase(pod) not in ("Failed", "Succeeded"):
                    return True
        return False

    # ---- progress -------------------------------------------------------------------

    async def sync_rollout_status(self, all_rss: Sequence[Obj | None], new_rs: Obj | None) -> float | None:
        """Write the status with the Progressing condition; return when to check the deadline."""
        d = self.d
        status = calculate_status(all_rss, new_rs, d, self.at)
        if not has_progress_deadline(d):
            remove_condition(status, "Progressing")
        current = get_condition(d.get("status"), "Progressing")
        complete_before = (
            int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
            and current is not None
            and current.get("reason") == NEW_RS_AVAILABLE
        )
        rs_name = meta(new_rs).get("name") if new_rs is not None else None
        if has_progress_deadline(d) and not complete_before:
            if deployment_complete(d, status):
                msg = f'ReplicaSet "{rs_name}" has successfully progressed.' if rs_name else f'Deployment "{meta(d).get("name")}" has successfully progressed.'
                set_condition(status, new_condition("Progressing", "True", NEW_RS_AVAILABLE, msg, self.at))
            elif deployment_progressing(d, status):
                msg = f'ReplicaSet "{rs_name}" is progressing.' if rs_name else f'Deployment "{meta(d).get("name")}" is progressing.'
                cond = new_condition("Progressing", "True", REPLICASET_UPDATED, msg, self.at)
                if current is not None:
                    if current.get("status") == "True":
                        cond["lastTransitionTime"] = current.get("lastTransitionTime")
                    remove_condition(status, "Progressing")
                set_condition(status, cond)
            elif deployment_timed_out(d, status, self.at):
                msg = f'ReplicaSet "{rs_name}" has timed out progressing.' if rs_name else f'Deployment "{meta(d).get("name")}" has timed out progressing.'
                set_condition(status, new_condition("Progressing", "False", TIMED_OUT, msg, self.at))
        failure = self.replica_failure(all_rss, new_rs)
        if failure is not None:
            set_condition(status, failure)
        else:
            remove_condition(status, "ReplicaFailure")
        if status == (d.get("status") or {}):
            return self.stuck_recheck(status)
        await self.write_status(status)
        return None

    def replica_failure(self, all_rss: Sequence[Obj | None], new_rs: Obj | None) -> Obj | None:
        """A ReplicaSet's ReplicaFailure condition, the new ReplicaSet's first."""
        ordered = [new_rs, *[rs for rs in all_rss if rs is not new_rs]]
        for rs in ordered:
            if rs is None:
                continue
            cond = get_condition(rs.get("status"), "ReplicaFailure")
            if cond is not None:
                return {
                    "type": "ReplicaFailure",
                    "status": cond.get("status"),
                    "lastUpdateTime": cond.get("lastTransitionTime"),
                    "lastTransitionTime": cond.get("lastTransitionTime"),
                    "reason": cond.get("reason"),
                    "message": cond.get("message"),
                }
        return None

    def stuck_recheck(self, status: Obj) -> float | None:
        """Seconds until the progress deadline of a rollout that is not moving (requeueStuckDeployment)."""
        d = self.d
        current = get_condition(d.get("status"), "Progressing")
        if not has_progress_deadline(d) or current is None:
            return None
        if deployment_complete(d, status) or current.get("reason") == TIMED_OUT:
            return None
        since = podutil.parse_time(current.get("lastUpdateTime"))
        if since is None:
            return None
        after = (since + timedelta(seconds=int(spec_of(d)["progressDeadlineSeconds"])) - self.at).total_seconds()
        if after < 1:
            return 0.5
        return after + 1
