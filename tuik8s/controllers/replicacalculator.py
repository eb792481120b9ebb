"""The HPA's arithmetic, pure: upstream's replica_calculator.go and the normalization rules
of horizontal.go, as functions over pods, metrics and the clock.

**Resource metrics** (`GetResourceReplicas`): pods are grouped first. Failed pods and pods
being deleted are ignored; Pending pods are *unready*; a pod with no metric is *missing*;
for cpu, a pod still in its initialization period (`cpu_initialization`, upstream 5 min
from its start) counts as unready if it is not Ready or its sample may predate its
readiness, and after that period a pod that is not Ready and was never Ready counts as
unready. Then `ratio = utilization / target` over the ready pods with metrics, and

- with no unready pods on a scale-up and no missing pods: within the tolerance (10%) keep
  the current count, else `ceil(ratio * ready pods)`;
- otherwise the ratio is computed again with missing pods at 100% of their request (or of
  the target, if higher) on a scale-down and 0% on a scale-up, and unready pods at 0% on a
  scale-up; if that lands within the tolerance or flips direction, nothing changes, else
  `ceil(new ratio * pods counted)`, never against the direction of the first ratio.

**Normalization** (`normalizeDesiredReplicas[WithBehaviors]`): the recommendation is
stabilized (the highest of the recent recommendations within the scale-down window, and
with `behavior` the lowest within the scale-up window too), then limited by the scaling
policies (replicas added/removed within each policy's period, `selectPolicy`) and by
min/maxReplicas, each limit naming upstream's condition reason.

Quantities are plain numbers: cpu in millicores, memory in bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuik8s.api.quantity import cpu_millis, to_bytes
from tuik8s.controllers.podutil import parse_time

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = 300.0  # upstream --horizontal-pod-autoscaler-cpu-initialization-period
DELAY_OF_INITIAL_READINESS = 30.0  # upstream --horizontal-pod-autoscaler-initial-readiness-delay
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0

Obj = dict[str, Any]


class MetricError(Exception):
    """No replica count can be computed from this metric; the message is upstream's."""


@dataclass(frozen=True)
class PodMetric:
    """One pod's usage (millicores or bytes), when it was measured and over what window."""

    value: float
    timestamp: float = 0.0
    window: float = 0.0


def quantity(resource: str, value: Any) -> float:
    """cpu as millicores, anything else as its plain value (bytes for memory)."""
    return float(cpu_millis(value)) if resource == "cpu" else float(to_bytes(value))


# --- grouping pods ---------------------------------------------------------------------------


def _ts(value: Any) -> float | None:
    when = parse_time(value)
    return when.timestamp() if when is not None else None


def group_pods(
    pods: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, PodMetric],
    resource: str,
    now: float,
    cpu_initialization: float = CPU_INITIALIZATION_PERIOD,
    delay_of_initial_readiness: float = DELAY_OF_INITIAL_READINESS,
) -> tuple[int, set[str], set[str], set[str]]:
    """(ready pod count, unready, missing, ignored) pod names, as upstream's groupPods."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        meta = pod.get("metadata") or {}
        status = pod.get("status") or {}
        name = str(meta.get("name"))
        phase = status.get("phase")
        if phase == "Failed" or meta.get("deletionTimestamp"):
            ignored.add(name)
            continue
        if phase == "Pending" or not phase:
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu":
            condition = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
            start = _ts(status.get("startTime"))
            if condition is None or start is None:
                is_unready = True
            else:
                transition = _ts(condition.get("lastTransitionTime")) or start
                if start + cpu_initialization > now:
                    is_unready = condition.get("status") == "False" or metric.timestamp < transition + metric.window
                else:
                    is_unready = condition.get("status") == "False" and start + delay_of_initial_readiness > transition
            if is_unready:
                unready.add(name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def pod_requests(pods: Sequence[Mapping[str, Any]], resource: str, container: str = "") -> dict[str, float]:
    """Each pod's request of `resource` (of one container, or all but sidecar-less init
    containers); MetricError when a container has none, as upstream."""
    out: dict[str, float] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        containers = list(spec.get("containers") or [])
        containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        total = 0.0
        for c in containers:
            if container and c.get("name") != container:
                continue
            requests = (c.get("resources") or {}).get("requests") or {}
            if resource not in requests:
                raise MetricError(f"missing request for {resource} in container {c.get('name')} of Pod {meta.get('name')}")
            total += quantity(resource, requests[resource])
        out[str(meta.get("name"))] = total
    return out


def utilization_ratio(
    metrics: Mapping[str, PodMetric], requests: Mapping[str, float], target_utilization: int
) -> tuple[float, int, float]:
    """(usage ratio, utilization %, average raw value) over the pods with a request."""
    total = requested = 0.0
    counted = 0
    for name, metric in metrics.items():
        request = requests.get(name)
        if request is None:
            continue
        total += metric.value
        requested += request
        counted += 1
    if requested == 0:
        raise MetricError("no metrics returned matched known pods")
    utilization = int(total * 100 / requested)
    return utilization / target_utilization, utilization, total / counted


def metric_ratio(metrics: Mapping[str, PodMetric], target: float) -> tuple[float, float]:
    """(usage ratio, average value) for an AverageValue target."""
    total = sum(m.value for m in metrics.values())
    average = total / len(metrics)
    return average / target, average


def resource_replicas(
    current: int,
    target_utilization: int,
    resource: str,
    pods: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, PodMetric],
    now: float,
    *,
    tolerance: float = TOLERANCE,
    cpu_initialization: float = CPU_INITIALIZATION_PERIOD,
    delay_of_initial_readiness: float = DELAY_OF_INITIAL_READINESS,
    container: str = "",
) -> tuple[int, int, float]:
    """(replicas, utilization %, average usage) for a Utilization target (GetResourceReplicas)."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    metrics = dict(metrics)
    ready, unready, missing, ignored = group_pods(
        pods, metrics, resource, now, cpu_initialization, delay_of_initial_readiness
    )
    for name in ignored | unready:
        metrics.pop(name, None)
    requests = pod_requests(pods, resource, container)
    if not metrics:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    ratio, utilization, raw = utilization_ratio(metrics, requests, target_utilization)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return current, utilization, raw
        return math.ceil(ratio * ready), utilization, raw
    if missing:
        if ratio < 1.0:
            fallback = max(100, target_utilization)
            for name in missing:
                metrics[name] = PodMetric(requests.get(name, 0.0) * fallback / 100)
        elif ratio > 1.0:
            for name in missing:
                metrics[name] = PodMetric(0.0)
    if scale_up_with_unready:
        for name in unready:
            metrics[name] = PodMetric(0.0)
    new_ratio, _, _ = utilization_ratio(metrics, requests, target_utilization)
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, utilization, raw
    replicas = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current, utilization, raw
    return replicas, utilization, raw


def value_replicas(
    current: int,
    target_value: float,
    resource: str,
    pods: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, PodMetric],
    now: float,
    *,
    tolerance: float = TOLERANCE,
    cpu_initialization: float = CPU_INITIALIZATION_PERIOD,
    delay_of_initial_readiness: float = DELAY_OF_INITIAL_READINESS,
) -> tuple[int, float]:
    """(replicas, average usage) for an AverageValue target (calcPlainMetricReplicas)."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    metrics = dict(metrics)
    ready, unready, missing, ignored = group_pods(
        pods, metrics, resource, now, cpu_initialization, delay_of_initial_readiness
    )
    for name in ignored | unready:
        metrics.pop(name, None)
    if not metrics:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    ratio, average = metric_ratio(metrics, target_value)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return current, average
        return math.ceil(ratio * ready), average
    if missing:
        for name in missing:
            metrics[name] = PodMetric(target_value if ratio < 1.0 else 0.0)
    if scale_up_with_unready:
        for name in unready:
            metrics[name] = PodMetric(0.0)
    new_ratio, _ = metric_ratio(metrics, target_value)
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, average
    replicas = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current, average
    return replicas, average


# --- normalization -----------------------------------------------------------------------------


@dataclass
class Recommendation:
    replicas: int
    timestamp: float


@dataclass
class ScaleEvent:
    change: int
    timestamp: float
    outdated: bool = False


@dataclass
class History:
    """What the controller remembers of one HPA between syncs (upstream keeps it in memory
    too: a restarted controller starts with an empty history)."""

    recommendations: list[Recommendation] = field(default_factory=list)
    scale_up: list[ScaleEvent] = field(default_factory=list)
    scale_down: list[ScaleEvent] = field(default_factory=list)


@dataclass(frozen=True)
class Limited:
    """A normalized replica count and the conditions it sets."""

    replicas: int
    able_reason: str
    able_message: str
    limited: bool
    limit_reason: str
    limit_message: str


_READY = ("ReadyForNewScale", "recommended size matches current size")
_DOWN_STABILIZED = (
    "ScaleDownStabilized",
    "recent recommendations were higher than current one, applying the highest recent recommendation",
)
_UP_STABILIZED = (
    "ScaleUpStabilized",
    "recent recommendations were lower than current one, applying the lowest recent recommendation",
)
_TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
_TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
_UP_LIMIT = ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
_DOWN_LIMIT = ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")
_WITHIN = ("DesiredWithinRange", "the desired count is within the acceptable range")


def _record(history: History, replicas: int, now: float, window: float) -> None:
    """Keep the new recommendation, reusing the slot of one that left every window."""
    for rec in history.recommendations:
        if rec.timestamp < now - window:
            rec.replicas, rec.timestamp = replicas, now
            return
    history.recommendations.append(Recommendation(replicas, now))


def normalize(
    history: History, current: int, desired: int, min_replicas: int, max_replicas: int,
    now: float, downscale_window: float,
) -> Limited:
    """normalizeDesiredReplicas: an HPA without `behavior`."""
    stabilized = desired
    for rec in history.recommendations:
        if rec.timestamp > now - downscale_window:
            stabilized = max(stabilized, rec.replicas)
    _record(history, desired, now, downscale_window)
    able = _READY if stabilized == desired else _DOWN_STABILIZED
    scale_up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    maximum, limit = (scale_up_limit, _UP_LIMIT) if max_replicas > scale_up_limit else (max_replicas, _TOO_MANY)
    if stabilized < min_replicas:
        replicas, reason = min_replicas, _TOO_FEW
    elif stabilized > maximum:
        replicas, reason = maximum, limit
    else:
        replicas, reason = stabilized, _WITHIN
    return Limited(replicas, *able, replicas != stabilized, *reason)


def _int(value: Any, default: int) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _change_in_period(events: Sequence[ScaleEvent], period: float, now: float) -> int:
    return sum(e.change for e in events if e.timestamp > now - period)


def scale_up_limit(current: int, history: History, rules: Mapping[str, Any], now: float) -> int:
    """calculateScaleUpLimitWithScalingRules."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    result: int | None = None
    for policy in rules.get("policies") or []:
        period = _int(policy.get("periodSeconds"), 15)
        start = current - _change_in_period(history.scale_up, period, now) + _change_in_period(history.scale_down, period, now)
        value = _int(policy.get("value"), 0)
        if policy.get("type") == "Pods":
            proposed = start + value
        else:
            proposed = math.ceil(start * (1 + value / 100))
        result = proposed if result is None else (min if select == "Min" else max)(result, proposed)
    return current if result is None else result


def scale_down_limit(current: int, history: History, rules: Mapping[str, Any], now: float) -> int:
    """calculateScaleDownLimitWithBehaviors."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    result: int | None = None
    for policy in rules.get("policies") or []:
        period = _int(policy.get("periodSeconds"), 15)
        start = current - _change_in_period(history.scale_up, period, now) + _change_in_period(history.scale_down, period, now)
        value = _int(policy.get("value"), 0)
        if policy.get("type") == "Pods":
            proposed = start - value
        else:
            proposed = int(start * (1 - value / 100))
        result = proposed if result is None else (max if select == "Min" else min)(result, proposed)
    return current if result is None else result


def normalize_with_behavior(
    history: History, current: int, desired: int, min_replicas: int, max_replicas: int,
    behavior: Mapping[str, Any], now: float, downscale_window: float,
) -> Limited:
    """normalizeDesiredReplicasWithBehaviors: stabilize both ways, then the policies' rates."""
    up = behavior.get("scaleUp") or {}
    down = behavior.get("scaleDown") or {}
    up_window = _int(up.get("stabilizationWindowSeconds"), 0)
    down_window = _int(down.get("stabilizationWindowSeconds"), int(downscale_window))
    up_rec = down_rec = desired
    for rec in history.recommendations:
        if rec.timestamp > now - up_window:
            up_rec = min(up_rec, rec.replicas)
        if rec.timestamp > now - down_window:
            down_rec = max(down_rec, rec.replicas)
    _record(history, desired, now, max(up_window, down_window))
    stabilized = min(max(current, up_rec), down_rec)
    if stabilized == desired:
        able = _READY
    else:
        able = _UP_STABILIZED if desired >= current else _DOWN_STABILIZED
    replicas, reason = stabilized, _WITHIN
    if stabilized > current:
        limit = max(scale_up_limit(current, history, up, now), current)
        maximum, why = (limit, _UP_LIMIT) if max_replicas > limit else (max_replicas, _TOO_MANY)
        if stabilized > maximum:
            replicas, reason = maximum, why
    elif stabilized < current:
        limit = min(scale_down_limit(current, history, down, now), current)
        minimum, why = (limit, _DOWN_LIMIT) if min_replicas < limit else (min_replicas, _TOO_FEW)
        if stabilized < minimum:
            replicas, reason = minimum, why
    return Limited(replicas, *able, replicas != stabilized, *reason)


def record_scale(history: History, behavior: Mapping[str, Any] | None, previous: int, new: int, now: float) -> None:
    """storeScaleEvent: remember a rescale for the policies' periods (only with behavior)."""
    if behavior is None or new == previous:
        return
    up = new > previous
    rules = (behavior.get("scaleUp") if up else behavior.get("scaleDown")) or {}
    longest = max((_int(p.get("periodSeconds"), 15) for p in rules.get("policies") or []), default=0)
    events = history.scale_up if up else history.scale_down
    for event in events:
        if event.timestamp <= now - longest:
            event.outdated = True
    change = abs(new - previous)
    for event in events:
        if event.outdated:
            event.change, event.timestamp, event.outdated = change, now, False
            return
    events.append(ScaleEvent(change, now))
