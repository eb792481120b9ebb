"""The pure parts of the Deployment controller: surge arithmetic, proportional scaling,
rolling steps, revisions, template hashes, conditions."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest

from tuik8s.controllers import podutil
from tuik8s.controllers.deployment import (
    DESIRED_REPLICAS,
    LAST_APPLIED,
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
    _round_half_away,
    calculate_status,
    cleanup_unhealthy_plan,
    deployment_complete,
    deployment_progressing,
    deployment_timed_out,
    find_active_or_latest,
    find_new_rs,
    max_surge,
    max_unavailable,
    new_condition,
    new_replica_set,
    new_rs_new_replicas,
    resolve_fenceposts,
    rolling_scale_down_plan,
    scale_targets,
    set_condition,
    set_new_rs_annotations,
)

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}


def deployment(replicas: int = 10, surge: Any = "25%", unavailable: Any = "25%", strategy: str = "RollingUpdate", **spec: Any) -> dict[str, Any]:
    strat: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate":
        strat["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {
        "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": 1, "annotations": {}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "strategy": strat, "template": copy.deepcopy(TEMPLATE), **spec},
        "status": {},
    }


def rs(name: str, replicas: int, *, available: int | None = None, age: int = 100, ann: dict[str, str] | None = None, template: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 1, "annotations": dict(ann or {}),
            "creationTimestamp": podutil.format_time(NOW - timedelta(seconds=age)),
        },
        "spec": {"replicas": replicas, "template": copy.deepcopy(template or TEMPLATE)},
        "status": {"replicas": replicas, "readyReplicas": replicas if available is None else available, "availableReplicas": replicas if available is None else available, "observedGeneration": 1},
    }


# ---- surge and unavailability ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        pytest.param("25%", "25%", 10, (3, 2), id="percent-surge-rounds-up-unavailable-down"),
        pytest.param("25%", "25%", 6, (2, 1), id="halves"),
        pytest.param("25%", "25%", 1, (1, 0), id="one-replica"),
        pytest.param(0, 0, 5, (0, 1), id="never-both-zero"),
        pytest.param("0%", "0%", 5, (0, 1), id="never-both-zero-percent"),
        pytest.param(2, "50%", 5, (2, 2), id="mixed"),
        pytest.param("10%", 0, 3, (1, 0), id="tiny-percent-surges-one"),
        pytest.param(None, None, 4, (0, 1), id="unset"),
    ],
)
def test_resolve_fenceposts(surge: Any, unavailable: Any, desired: int, expected: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected


def test_max_unavailable_never_exceeds_replicas_and_recreate_has_no_surge() -> None:
    assert max_unavailable(deployment(replicas=2, surge=0, unavailable=5)) == 2
    assert max_unavailable(deployment(replicas=0)) == 0
    recreate = deployment(strategy="Recreate")
    assert (max_surge(recreate), max_unavailable(recreate)) == (0, 0)


def test_invalid_int_or_string_is_an_error() -> None:
    with pytest.raises(ValueError):
        resolve_fenceposts("lots", 0, 3)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(10, 0, 3, id="surge-from-nothing"),
        pytest.param(8, 5, 5, id="at-the-surge-limit"),
        pytest.param(2, 7, 10, id="capped-by-replicas"),
        pytest.param(0, 10, 10, id="done"),
    ],
)
def test_new_replica_set_grows_within_replicas_plus_surge(old: int, new: int, expected: int) -> None:
    d = deployment(replicas=10)
    new_rs = rs("new", new)
    assert new_rs_new_replicas(d, [rs("old", old), new_rs], new_rs) == expected
    assert new_rs_new_replicas(deployment(replicas=10, strategy="Recreate"), [rs("old", old), new_rs], new_rs) == 10


# ---- proportional scaling ---------------------------------------------------------------


def test_scaling_up_mid_rollout_shares_the_new_replicas_in_proportion() -> None:
    ann = {MAX_REPLICAS: "13", DESIRED_REPLICAS: "10"}
    old, new = rs("old", 8, age=200, ann=ann), rs("new", 5, available=0, age=100, ann=ann)
    targets, operation = scale_targets(deployment(replicas=20), new, [old])
    assert operation == "up"
    assert [(r["metadata"]["name"], size) for r, size in targets] == [("old", 15), ("new", 10)]


def test_scaling_down_mid_rollout_takes_from_the_largest_first() -> None:
    ann = {MAX_REPLICAS: "25", DESIRED_REPLICAS: "20"}
    old, new = rs("old", 15, age=200, ann=ann), rs("new", 10, available=0, age=100, ann=ann)
    targets, operation = scale_targets(deployment(replicas=10), new, [old])
    assert operation == "down"
    assert [(r["metadata"]["name"], size) for r, size in targets] == [("old", 8), ("new", 5)]


def test_what_rounding_leaves_goes_to_the_newest_of_equals_when_scaling_up() -> None:
    ann = {MAX_REPLICAS: "3"}
    a, b, c = rs("a", 1, age=300, ann=ann), rs("b", 1, age=200, ann=ann), rs("c", 1, age=100, ann=ann)
    d = deployment(replicas=4, surge=0, unavailable=1)
    targets, _ = scale_targets(d, c, [a, b])
    assert {r["metadata"]["name"]: size for r, size in targets} == {"c": 2, "b": 1, "a": 1}


def test_scaling_to_zero_empties_every_replica_set() -> None:
    old, new = rs("old", 4, age=200), rs("new", 3, age=100)
    targets, _ = scale_targets(deployment(replicas=0), new, [old])
    assert {r["metadata"]["name"]: size for r, size in targets} == {"old": 0, "new": 0}


def test_one_active_replica_set_takes_the_whole_size() -> None:
    new = rs("new", 3)
    assert scale_targets(deployment(replicas=5), new, [rs("old", 0)]) == ([(new, 5)], None)
    assert find_active_or_latest(None, [rs("a", 0, age=5), rs("b", 0, age=1)])["metadata"]["name"] == "b"
    assert find_active_or_latest(rs("n", 1), [rs("o", 1)]) is None


def test_a_saturated_new_replica_set_scales_adopted_old_ones_to_zero() -> None:
    new = rs("new", 5, ann={DESIRED_REPLICAS: "5"})
    old = rs("old", 2)
    assert scale_targets(deployment(replicas=5), new, [old]) == ([(old, 0)], None)


def test_round_half_away_from_zero_as_go_math_round() -> None:
    assert [_round_half_away(Fraction(n, 2)) for n in (5, -5, 3, -3)] == [3, -3, 2, -2]
    assert _round_half_away(Fraction(12, 5)) == 2


# ---- rolling steps ----------------------------------------------------------------------


def test_unavailable_old_replicas_are_cleaned_up_first_oldest_first() -> None:
    a, b = rs("a", 3, available=1, age=300), rs("b", 2, available=2, age=200)
    assert cleanup_unhealthy_plan([b, a], 3) == [(a, 1)]
    assert cleanup_unhealthy_plan([b, a], 1) == [(a, 2)]


def test_old_replicas_go_only_as_far_as_the_availability_floor_allows() -> None:
    d = deployment(replicas=6, surge=2, unavailable=0)
    old, new = rs("old", 6, age=200), rs("new", 2, age=100)
    assert rolling_scale_down_plan([old, new], [old], d) == [(old, 4)]
    not_yet = rs("new", 2, available=0, age=100)
    assert rolling_scale_down_plan([old, not_yet], [old], d) == []


# ---- revisions and annotations ----------------------------------------------------------


def test_a_new_replica_set_gets_the_next_revision_and_the_deployments_annotations() -> None:
    d = deployment(replicas=4)
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "bump", LAST_APPLIED: "{}", REVISION: "2"}
    new = new_replica_set(d, None)
    assert set_new_rs_annotations(d, new, 3, exists=False)
    assert new["metadata"]["annotations"] == {
        "kubernetes.io/change-cause": "bump", REVISION: "3", DESIRED_REPLICAS: "4", MAX_REPLICAS: "5",
    }
    assert not set_new_rs_annotations(d, new, 3, exists=True)  # nothing left to change


def test_a_template_that_comes_back_keeps_its_old_revisions_in_history() -> None:
    d = deployment()
    back = rs("back", 0, ann={REVISION: "1"})
    assert set_new_rs_annotations(d, back, 4, exists=True)
    assert (back["metadata"]["annotations"][REVISION], back["metadata"]["annotations"][REVISION_HISTORY]) == ("4", "1")
    set_new_rs_annotations(d, back, 6, exists=True)
    assert (back["metadata"]["annotations"][REVISION], back["metadata"]["annotations"][REVISION_HISTORY]) == ("6", "1,4")


def test_the_replica_set_is_named_and_selected_by_the_template_hash() -> None:
    d = deployment()
    new = new_replica_set(d, None)
    pod_hash = podutil.compute_hash(TEMPLATE)
    assert new["metadata"]["name"] == f"web-{pod_hash}"
    assert new["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": pod_hash}}
    assert new["spec"]["template"]["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert new["metadata"]["ownerReferences"][0]["uid"] == "d-uid"
    assert d["spec"]["template"] == TEMPLATE  # the Deployment's own template is untouched


def test_template_hash_is_stable_and_changes_with_the_template_or_collisions() -> None:
    # pinned: a changed hash would roll every Deployment of an upgraded cluster
    assert podutil.compute_hash(TEMPLATE) == "6c8d7489d5"
    reordered = {"spec": {"containers": [{"image": "nginx:1.27", "name": "web"}]}, "metadata": {"labels": {"app": "web"}}}
    assert podutil.compute_hash(reordered) == "6c8d7489d5"
    assert podutil.compute_hash(TEMPLATE, 1) == "5fccbbddbd"
    changed = copy.deepcopy(TEMPLATE)
    changed["spec"]["containers"][0]["image"] = "nginx:1.29"
    assert podutil.compute_hash(changed) != "6c8d7489d5"
    assert set(podutil.compute_hash(changed)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_the_new_replica_set_is_the_oldest_with_the_same_template_but_for_the_hash() -> None:
    d = deployment()
    hashed = copy.deepcopy(TEMPLATE)
    hashed["metadata"]["labels"]["pod-template-hash"] = "abc"
    other = copy.deepcopy(TEMPLATE)
    other["spec"]["containers"][0]["image"] = "nginx:1.29"
    older, newer, different = rs("older", 1, age=300, template=hashed), rs("newer", 1, age=100, template=hashed), rs("x", 1, template=other)
    assert find_new_rs(d, [newer, different, older]) is older
    assert podutil.equal_ignore_hash({"metadata": {}, "spec": {"a": 1}}, {"metadata": {"labels": {}}, "spec": {"a": 1, "b": None}})


# ---- status and conditions --------------------------------------------------------------


def test_status_sums_the_replica_sets_and_judges_availability() -> None:
    d = deployment(replicas=4)  # maxUnavailable 1: 3 available is enough
    old, new = rs("old", 1, age=200), rs("new", 3, available=2, age=100)
    status = calculate_status([old, new], new, d, NOW)
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 1, "replicas": 4, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3, "unavailableReplicas": 1,
    }
    (available,) = status["conditions"]
    assert (available["type"], available["status"], available["reason"]) == ("Available", "True", "MinimumReplicasAvailable")
    worse = calculate_status([old, rs("new", 3, available=1)], new, d, NOW)
    assert worse["conditions"][0]["reason"] == "MinimumReplicasUnavailable"


def test_set_condition_keeps_the_transition_time_while_the_status_holds() -> None:
    status: dict[str, Any] = {}
    set_condition(status, new_condition("Progressing", "True", "NewReplicaSetCreated", "a", NOW - timedelta(minutes=5)))
    set_condition(status, new_condition("Progressing", "True", "NewReplicaSetCreated", "b", NOW))
    assert status["conditions"][0]["message"] == "a"  # same status and reason: unchanged
    set_condition(status, new_condition("Progressing", "True", "ReplicaSetUpdated", "c", NOW))
    cond = status["conditions"][0]
    assert cond["message"] == "c" and cond["lastUpdateTime"] == podutil.format_time(NOW)
    assert cond["lastTransitionTime"] == podutil.format_time(NOW - timedelta(minutes=5))


def test_progress_completion_and_deadline() -> None:
    d = deployment(replicas=3, progressDeadlineSeconds=60)
    d["status"] = {"replicas": 3, "updatedReplicas": 1}
    assert deployment_progressing(d, {"replicas": 3, "updatedReplicas": 2})
    assert deployment_progressing(d, {"replicas": 2, "updatedReplicas": 1})  # an old one went
    assert not deployment_progressing(d, {"replicas": 3, "updatedReplicas": 1})
    assert deployment_complete(d, {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3, "observedGeneration": 1})
    assert not deployment_complete(d, {"replicas": 4, "updatedReplicas": 3, "availableReplicas": 3, "observedGeneration": 1})

    def progressing(reason: str, seconds_ago: int) -> dict[str, Any]:
        return {"conditions": [new_condition("Progressing", "True", reason, "", NOW - timedelta(seconds=seconds_ago))]}

    assert deployment_timed_out(d, progressing("ReplicaSetUpdated", 61), NOW)
    assert not deployment_timed_out(d, progressing("ReplicaSetUpdated", 59), NOW)
    assert not deployment_timed_out(d, progressing("NewReplicaSetAvailable", 3600), NOW)
    assert not deployment_timed_out(deployment(progressDeadlineSeconds=2**31 - 1), progressing("ReplicaSetUpdated", 10**6), NOW)
