"""The HPA's arithmetic against upstream's examples.

Resource cases are upstream's replica_calculator_test.go (TestReplicaCalc*), with one
container per pod and 1-core requests, so usage levels are millicores; "hot" pods started
now, "cool" ones three minutes ago, with upstream's testing periods (cpu initialization
2 min, initial readiness delay 10 s). Normalization cases follow horizontal.go's rules.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tuik8s.controllers import replicacalculator as calc

NOW = 1_800_000_000.0
HOT = NOW
COOL = NOW - 180
KNOBS = {"cpu_initialization": 120.0, "delay_of_initial_readiness": 10.0}


def _t(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(i: int, request: str = "1", phase: str = "Running", ready: str = "True", start: float = COOL,
        deleting: bool = False) -> dict:
    meta: dict = {"name": f"pod-{i}", "namespace": "ns"}
    if deleting:
        meta["deletionTimestamp"] = _t(NOW)
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": request, "memory": "100Mi"}}}]},
        "status": {
            "phase": phase, "startTime": _t(start),
            "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": _t(start)}],
        },
    }


def case(current: int, levels: list[float], target: int, *, n: int | None = None, readiness=None, phases=None,
         starts=None, deleting=None, requests=None) -> tuple[int, int]:
    n = n or len(levels)
    pods = [
        pod(i, request=(requests or ["1"] * n)[i], phase=(phases or ["Running"] * n)[i],
            ready=(readiness or ["True"] * n)[i], start=(starts or [COOL] * n)[i],
            deleting=(deleting or [False] * n)[i])
        for i in range(n)
    ]
    metrics = {f"pod-{i}": calc.PodMetric(level, NOW, 30.0) for i, level in enumerate(levels)}
    replicas, utilization, _ = calc.resource_replicas(current, target, "cpu", pods, metrics, NOW, **KNOBS)
    return replicas, utilization


T, F = "True", "False"


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        pytest.param((3, [300, 500, 700], 30), {}, (5, 50), id="ScaleUp"),
        pytest.param((3, [300, 500, 700], 30), {"readiness": [F, T, T]}, (4, 60), id="ScaleUpUnreadyLessScale"),
        pytest.param((3, [300, 500, 700], 30), {"starts": [HOT, COOL, COOL]}, (4, 60), id="ScaleUpHotCpuLessScale"),
        pytest.param((3, [400, 500, 700], 30), {"readiness": [T, F, F]}, (3, 40), id="ScaleUpUnreadyNoScale"),
        pytest.param((3, [400, 500, 700], 30), {"readiness": [T, F, F], "starts": [COOL, HOT, HOT]}, (3, 40),
                     id="ScaleHotCpuNoScale"),
        pytest.param((2, [500, 700], 30), {"n": 4, "readiness": [T, T, F, F],
                                            "phases": ["Running", "Running", "Failed", "Failed"]}, (4, 60),
                     id="ScaleUpIgnoresFailedPods"),
        pytest.param((2, [500, 700], 30), {"n": 4, "readiness": [T, T, F, F], "deleting": [False, False, True, True]},
                     (4, 60), id="ScaleUpIgnoresDeletionPods"),
        pytest.param((5, [100, 300, 500, 250, 250], 50), {}, (3, 28), id="ScaleDown"),
        pytest.param((5, [100, 300, 500, 250, 250], 50), {"readiness": [T, T, T, F, F]}, (2, 30),
                     id="ScaleDownIncludeUnreadyPods"),
        pytest.param((5, [100], 50), {"n": 5, "readiness": [T, F, F, F, F],
                                       "phases": ["Running", "Pending", "Pending", "Pending", "Pending"]}, (1, 10),
                     id="ScaleDownExcludeUnscheduledPods"),
        pytest.param((5, [100, 300, 500, 250, 250], 50), {"starts": [COOL, COOL, COOL, HOT, HOT]}, (2, 30),
                     id="ScaleDownIgnoreHotCpuPods"),
        pytest.param((5, [100, 300, 500, 250, 250], 50), {"n": 7, "readiness": [T, T, T, T, T, F, F],
                                                           "phases": ["Running"] * 5 + ["Failed"] * 2}, (3, 28),
                     id="ScaleDownIgnoresFailedPods"),
        pytest.param((3, [1010, 1030, 1020], 100), {"requests": ["900m", "1", "1100m"]}, (3, 102), id="Tolerance"),
        pytest.param((2, [1000], 100), {"n": 2}, (2, 100), id="MissingMetricsNoChangeEq"),
        pytest.param((2, [1900], 100), {"n": 2}, (2, 190), id="MissingMetricsNoChangeGt"),
        pytest.param((2, [600], 100), {"n": 2}, (2, 60), id="MissingMetricsNoChangeLt"),
        pytest.param((3, [100, 450], 50), {"n": 3, "readiness": [F, T, T]}, (3, 45), id="MissingMetricsUnreadyChange"),
        pytest.param((3, [100, 2000], 50), {"n": 3, "readiness": [F, T, T]}, (4, 200), id="MissingMetricsUnreadyScaleUp"),
        pytest.param((4, [100, 100, 100], 50), {"n": 4, "readiness": [F, T, T, T]}, (3, 10),
                     id="MissingMetricsUnreadyScaleDown"),
    ],
)
def test_resource_replicas_as_upstream(args, kwargs, expected) -> None:
    assert case(*args, **kwargs) == expected


def test_plain_metric_average_value_scales_up_as_upstream() -> None:
    # TestReplicaCalcScaleUpCM: an AverageValue target, no readiness rules outside cpu
    pods = [pod(i) for i in range(3)]
    metrics = {f"pod-{i}": calc.PodMetric(v, NOW, 30) for i, v in enumerate([20000, 10000, 30000])}
    assert calc.value_replicas(3, 15000, "memory", pods, metrics, NOW)[0] == 4
    # TestReplicaCalcScaleDownCM
    pods = [pod(i) for i in range(5)]
    metrics = {f"pod-{i}": calc.PodMetric(12000, NOW, 30) for i in range(5)}
    assert calc.value_replicas(5, 20000, "memory", pods, metrics, NOW)[0] == 3


@pytest.mark.parametrize(
    ("pods", "metrics", "message"),
    [
        pytest.param([], {}, "no pods returned by selector while calculating replica count", id="no-pods"),
        pytest.param([pod(0, phase="Pending")], {"pod-0": calc.PodMetric(100)},
                     "did not receive metrics for targeted pods (pods might be unready)", id="all-unready"),
    ],
)
def test_errors_carry_upstream_messages(pods, metrics, message) -> None:
    with pytest.raises(calc.MetricError, match=message.replace("(", r"\(").replace(")", r"\)")):
        calc.resource_replicas(1, 50, "cpu", pods, metrics, NOW, **KNOBS)


def test_a_container_without_a_request_is_an_error() -> None:
    p = pod(0)
    del p["spec"]["containers"][0]["resources"]["requests"]["cpu"]
    with pytest.raises(calc.MetricError, match="missing request for cpu in container c of Pod pod-0"):
        calc.resource_replicas(1, 50, "cpu", [p], {"pod-0": calc.PodMetric(100, NOW, 30)}, NOW, **KNOBS)


# --- normalization -----------------------------------------------------------------------------

DEFAULT_BEHAVIOR = {
    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]},
    "scaleDown": {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
}


@pytest.mark.parametrize(
    ("current", "desired", "bounds", "expected", "reason"),
    [
        pytest.param(1, 10, (1, 20), 4, "ScaleUpLimit", id="at-most-4-from-1"),
        pytest.param(3, 10, (1, 8), 6, "ScaleUpLimit", id="at-most-double"),
        pytest.param(3, 10, (1, 5), 5, "TooManyReplicas", id="max"),
        pytest.param(3, 0, (2, 5), 2, "TooFewReplicas", id="min"),
        pytest.param(3, 4, (1, 5), 4, "DesiredWithinRange", id="within"),
    ],
)
def test_normalize_without_behavior_limits_rate_and_bounds(current, desired, bounds, expected, reason) -> None:
    out = calc.normalize(calc.History(), current, desired, *bounds, NOW, 300)
    assert (out.replicas, out.limit_reason, out.limited) == (expected, reason, expected != desired)


def test_scale_down_waits_for_the_stabilization_window() -> None:
    history = calc.History()
    assert calc.normalize(history, 5, 5, 1, 10, NOW - 20, 30).replicas == 5
    held = calc.normalize(history, 5, 2, 1, 10, NOW, 30)
    assert (held.replicas, held.able_reason) == (5, "ScaleDownStabilized")
    later = calc.normalize(history, 5, 2, 1, 10, NOW + 15, 30)  # the 5 is 35 s old now
    assert (later.replicas, later.able_reason) == (2, "ReadyForNewScale")


def test_behavior_default_scale_up_rate() -> None:
    # 4 pods or 100% per 15 s, the larger: from 1, at most 5 (Pods wins); from 10, at most 20
    assert calc.normalize_with_behavior(calc.History(), 1, 10, 1, 50, DEFAULT_BEHAVIOR, NOW, 300).replicas == 5
    out = calc.normalize_with_behavior(calc.History(), 10, 50, 1, 50, DEFAULT_BEHAVIOR, NOW, 300)
    assert (out.replicas, out.limit_reason) == (20, "ScaleUpLimit")


def test_behavior_counts_recent_scale_events_against_a_policy() -> None:
    behavior = {**DEFAULT_BEHAVIOR, "scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                                                  "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}
    history = calc.History()
    calc.record_scale(history, behavior, 5, 4, NOW - 30)  # one pod removed 30 s ago
    out = calc.normalize_with_behavior(history, 4, 1, 1, 10, behavior, NOW, 300)
    assert (out.replicas, out.limit_reason) == (4, "ScaleDownLimit")
    later = calc.normalize_with_behavior(history, 4, 1, 1, 10, behavior, NOW + 31, 300)
    assert later.replicas == 3


def test_behavior_select_policy_min_and_disabled() -> None:
    minimal = {"scaleUp": {**DEFAULT_BEHAVIOR["scaleUp"], "selectPolicy": "Min"}, "scaleDown": DEFAULT_BEHAVIOR["scaleDown"]}
    assert calc.normalize_with_behavior(calc.History(), 10, 50, 1, 50, minimal, NOW, 300).replicas == 14
    disabled = {"scaleUp": DEFAULT_BEHAVIOR["scaleUp"], "scaleDown": {"selectPolicy": "Disabled", "stabilizationWindowSeconds": 0}}
    assert calc.normalize_with_behavior(calc.History(), 10, 2, 1, 50, disabled, NOW, 300).replicas == 10


def test_behavior_scale_up_stabilization_takes_the_lowest_recent() -> None:
    behavior = {"scaleUp": {**DEFAULT_BEHAVIOR["scaleUp"], "stabilizationWindowSeconds": 60},
                "scaleDown": {**DEFAULT_BEHAVIOR["scaleDown"], "stabilizationWindowSeconds": 0}}
    history = calc.History()
    calc.normalize_with_behavior(history, 2, 3, 1, 10, behavior, NOW - 30, 300)
    out = calc.normalize_with_behavior(history, 2, 8, 1, 10, behavior, NOW, 300)
    assert (out.replicas, out.able_reason) == (3, "ScaleUpStabilized")
