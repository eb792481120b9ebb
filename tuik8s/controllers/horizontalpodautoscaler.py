"""The HorizontalPodAutoscaler controller (autoscaling/v2), as upstream's podautoscaler.

Every HPA is looked at once per sync period (`Timings.hpa_sync_period`; upstream 15 s)
and whenever its spec changes. A sync:

1. reads the target's scale subresource (`AbleToScale` False `FailedGetScale` if it
   cannot), and its selector (`ScalingActive` False `InvalidSelector` without one);
2. computes a replica count for each metric, the highest winning: Resource and
   ContainerResource metrics (cpu, memory; Utilization of the request or AverageValue)
   from `metrics.k8s.io` — asked through the API like any client, so the controller works
   against whatever serves that group — and the pods the selector picks
   (replicacalculator.py holds the arithmetic); Pods, Object and External metrics need
   custom/external metrics APIs this cluster does not serve, so they are invalid metrics
   with upstream's reasons;
3. stabilizes and limits the count (`behavior`, or the scale-down stabilization window
   without one; `Timings.hpa_downscale_stabilization`, upstream 300 s), and min/max;
4. scales through the scale subresource if the count changed (Event `SuccessfulRescale`
   "New size: N; reason: ..."), then writes status (current/desired replicas, current
   metrics, lastScaleTime, conditions) only if it changed.

The recommendation and scale-event history lives in memory, as upstream's: a restarted
controller starts afresh, which can only make it scale down later, never sooner.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from tuik8s.api import registry
from tuik8s.api.quantity import format_cpu
from tuik8s.api.selectors import SelectorError, parse_label_selector
from tuik8s.client.errors import ApiError, ClientError
from tuik8s.client.informer import NAMESPACE_INDEX, namespace_index
from tuik8s.controllers import replicacalculator as calc
from tuik8s.controllers.podutil import format_time, now, parse_time
from tuik8s.controllers.runner import Controller

log = logging.getLogger(__name__)

Obj = dict[str, Any]
METRICS_PATH = "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"


class MetricFailure(Exception):
    """One metric gave no proposal: the condition reason and upstream's error text."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def metric_name(metric: Obj) -> str:
    """How upstream names a metric in events and conditions."""
    mtype = metric.get("type")
    if mtype in ("Resource", "ContainerResource"):
        src = metric.get("resource" if mtype == "Resource" else "containerResource") or {}
        kind = "resource" if mtype == "Resource" else "container resource"
        if (src.get("target") or {}).get("type") == "Utilization":
            return f"{src.get('name')} {kind} utilization (percentage of request)"
        return f"{src.get('name')} {kind}"
    source = metric.get({"Pods": "pods", "Object": "object", "External": "external"}.get(str(mtype), "")) or {}
    return f"{(source.get('metric') or {}).get('name', '')} {str(mtype or '').lower()} metric"


def _value_text(resource: str, value: float) -> str:
    return format_cpu(int(round(value))) if resource == "cpu" else str(int(round(value)))


def set_condition(conditions: list[Obj], ctype: str, status: str, reason: str, message: str, at: str) -> None:
    """Set one condition; its lastTransitionTime moves only when its status does."""
    for cond in conditions:
        if cond.get("type") == ctype:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = at
            cond.update(status=status, reason=reason, message=message)
            return
    conditions.append({"type": ctype, "status": status, "lastTransitionTime": at, "reason": reason, "message": message})


class HorizontalPodAutoscalerController(Controller):
    """See the module docstring."""

    name = "horizontal-pod-autoscaler"
    workers = 2

    def setup(self) -> None:
        self.hpas = self.informer("horizontalpodautoscalers")
        self.pods = self.informer("pods")
        self.pods.add_index(NAMESPACE_INDEX, namespace_index)
        self.history: dict[str, calc.History] = {}
        self.hpas.add_handler(self.enqueue, self._updated, self._deleted)

    async def event(self, obj: Obj, reason: str, message: str, type: str = "Normal") -> None:
        await self.ctx.event(obj, reason, message, type, "horizontal-pod-autoscaler")  # upstream's source

    def _updated(self, old: Obj, new: Obj) -> None:
        # our own status writes come back as updates: only a spec change needs a look now
        if (old.get("metadata") or {}).get("generation") != (new.get("metadata") or {}).get("generation"):
            self.enqueue(new)

    def _deleted(self, obj: Obj) -> None:
        self.history.pop(f"{(obj.get('metadata') or {}).get('namespace')}/{(obj.get('metadata') or {}).get('name')}", None)

    async def reconcile(self, key: str) -> float | None:
        hpa = self.hpas.get(key)
        if hpa is None:
            self.history.pop(key, None)
            return None
        await self.sync(key, copy.deepcopy(hpa))
        return self.ctx.timings.hpa_sync_period

    # ---- one sync ---------------------------------------------------------------------

    async def sync(self, key: str, hpa: Obj) -> None:
        timings = self.ctx.timings
        meta, spec = hpa["metadata"], hpa.get("spec") or {}
        namespace = meta.get("namespace") or "default"
        original_status = copy.deepcopy(hpa.get("status") or {})
        status = hpa.setdefault("status", {})
        conditions: list[Obj] = status.setdefault("conditions", [])
        stamp = format_time(now())
        ref = spec.get("scaleTargetRef") or {}
        reference = f"{ref.get('kind')}/{ref.get('name')}"
        min_replicas = int(spec.get("minReplicas") or 1)
        max_replicas = int(spec.get("maxReplicas") or 0)

        if max_replicas < 1 or min_replicas > max_replicas:
            # upstream's validation refuses such an HPA; never act on one that got in
            log.warning("hpa %s: minReplicas %d / maxReplicas %d make no range; not scaling", key, min_replicas, max_replicas)
            return
        info = registry.by_kind(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
        try:
            if info is None or info.subresource("scale") is None:
                group = str(ref.get("apiVersion") or "").rpartition("/")[0]
                raise MetricFailure("FailedGetScale", f'no matches for kind "{ref.get("kind")}" in group "{group}"')
            scale = await self.client.get_scale(info, str(ref.get("name")), namespace)
        except (ClientError, MetricFailure) as e:
            message = e.message if isinstance(e, MetricFailure) else str(e)
            set_condition(conditions, "AbleToScale", "False", "FailedGetScale",
                          f"the HPA controller was unable to get the target's current scale: {message}", stamp)
            await self.event(hpa, "FailedGetScale", message, "Warning")
            await self._write_status(hpa, original_status)
            return
        set_condition(conditions, "AbleToScale", "True", "SucceededGetScale",
                      "the HPA controller was able to get the target's current scale", stamp)
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        rescale_reason = ""
        metric_statuses: list[Obj] = []  # none unless metrics were computed, as upstream
        if current == 0 and min_replicas != 0:
            desired = 0
            set_condition(conditions, "ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero", stamp)
        elif current > max_replicas:
            rescale_reason, desired = "Current number of replicas above Spec.MaxReplicas", max_replicas
        elif current < min_replicas:
            rescale_reason, desired = "Current number of replicas below Spec.MinReplicas", min_replicas
        else:
            proposal, metric_statuses = await self._compute(hpa, scale, namespace, current, conditions, stamp)
            if proposal is None:  # setCurrentReplicasAndMetricsInStatus
                status["currentReplicas"] = current
                if metric_statuses:
                    status["currentMetrics"] = metric_statuses
                else:
                    status.pop("currentMetrics", None)
                await self._write_status(hpa, original_status)
                return
            desired, rescale_metric = proposal
            if desired > current:
                rescale_reason = f"{rescale_metric} above target"
            elif desired < current:
                rescale_reason = "All metrics below target"
            history = self.history.setdefault(key, calc.History())
            behavior = spec.get("behavior")
            at = time.time()
            if behavior is None:
                limited = calc.normalize(history, current, desired, min_replicas, max_replicas,
                                         at, timings.hpa_downscale_stabilization)
            else:
                limited = calc.normalize_with_behavior(history, current, desired, min_replicas, max_replicas,
                                                       behavior, at, timings.hpa_downscale_stabilization)
            set_condition(conditions, "AbleToScale", "True", limited.able_reason, limited.able_message, stamp)
            set_condition(conditions, "ScalingLimited", "True" if limited.limited else "False",
                          limited.limit_reason, limited.limit_message, stamp)
            desired = limited.replicas
        rescale = desired != current
        if rescale:
            assert info is not None
            try:
                await self.client.scale(info, str(ref.get("name")), namespace, desired)
            except ClientError as e:
                await self.event(hpa, "FailedRescale", f"New size: {desired}; reason: {rescale_reason}; error: {e}", "Warning")
                set_condition(conditions, "AbleToScale", "False", "FailedUpdateScale",
                              f"the HPA controller was unable to update the target scale: {e}", stamp)
                status.update(currentReplicas=current, desiredReplicas=desired, currentMetrics=metric_statuses)
                await self._write_status(hpa, original_status)
                return
            set_condition(conditions, "AbleToScale", "True", "SucceededRescale",
                          f"the HPA controller was able to update the target scale to {desired}", stamp)
            await self.event(hpa, "SuccessfulRescale", f"New size: {desired}; reason: {rescale_reason}")
            calc.record_scale(self.history.setdefault(key, calc.History()), spec.get("behavior"), current, desired, time.time())
            log.info("hpa %s: %s scaled from %d to %d (%s)", key, reference, current, desired, rescale_reason)
            status["lastScaleTime"] = stamp
        status.update(currentReplicas=current, desiredReplicas=desired)
        if metric_statuses:
            status["currentMetrics"] = metric_statuses
        else:
            status.pop("currentMetrics", None)
        await self._write_status(hpa, original_status)

    async def _write_status(self, hpa: Obj, original: Obj) -> None:
        status = hpa.setdefault("status", {})
        status.setdefault("desiredReplicas", 0)  # required in the API (Go's zero value is written)
        if not status.get("conditions"):
            status.pop("conditions", None)
        if status == original:
            return
        try:
            await self.client.update_status("horizontalpodautoscalers", hpa)
        except ApiError:
            raise  # a 409: the next try reads the newer object

    # ---- metrics ----------------------------------------------------------------------

    async def _compute(
        self, hpa: Obj, scale: Obj, namespace: str, current: int, conditions: list[Obj], stamp: str,
    ) -> tuple[tuple[int, str] | None, list[Obj]]:
        """computeReplicasForMetrics: ((replicas, metric name) or None when no metric gave a
        count: the conditions and an Event say why, and the metrics' statuses)."""
        metrics = (hpa.get("spec") or {}).get("metrics") or []
        selector_text = str((scale.get("status") or {}).get("selector") or "")
        if not selector_text:
            await self.event(hpa, "SelectorRequired", "selector is required", "Warning")
            set_condition(conditions, "ScalingActive", "False", "InvalidSelector",
                          "the HPA target's scale is missing a selector", stamp)
            return None, []
        try:
            selector = parse_label_selector(selector_text)
        except SelectorError as e:
            await self.event(hpa, "InvalidSelector", f"couldn't convert selector into a corresponding internal selector object: {e}", "Warning")
            set_condition(conditions, "ScalingActive", "False", "InvalidSelector",
                          f"the HPA target's scale has an invalid selector: {e}", stamp)
            return None, []
        pods = [p for p in self.pods.by_index(NAMESPACE_INDEX, namespace)
                if selector.matches((p.get("metadata") or {}).get("labels") or {})]
        statuses: list[Obj] = []
        best, best_name = -1, ""
        invalid = 0
        first_failure: MetricFailure | None = None
        usage_cache: dict[str, Any] = {}
        for metric in metrics:
            try:
                replicas, status = await self._one_metric(metric, namespace, selector_text, pods, current, usage_cache)
            except MetricFailure as e:
                await self.event(hpa, e.reason, e.message, "Warning")
                if first_failure is None:
                    first_failure = e
                invalid += 1
                statuses.append({"type": ""})
                continue
            statuses.append(status)
            if best < 0 or replicas > best:
                best, best_name = replicas, metric_name(metric)
        if first_failure is not None and (invalid >= len(metrics) or best < current):
            set_condition(conditions, "ScalingActive", "False", first_failure.reason,
                          f"the HPA was unable to compute the replica count: {first_failure.message}", stamp)
            await self.event(hpa, "FailedComputeMetricsReplicas",
                             f"invalid metrics ({invalid} invalid out of {len(metrics)}), first error is: {first_failure.message}",
                             "Warning")
            return None, statuses
        set_condition(conditions, "ScalingActive", "True", "ValidMetricFound",
                      f"the HPA was able to successfully calculate a replica count from {best_name}", stamp)
        return (best, best_name), statuses

    async def _pod_metrics(self, namespace: str, selector: str, resource: str, container: str,
                           cache: dict[str, Any]) -> dict[str, calc.PodMetric]:
        """PodMetricsInfo from metrics.k8s.io: a pod's containers summed; a pod missing
        the resource in any container (or the named container) is left out."""
        if "items" not in cache:
            try:
                doc = await self.client.request(
                    "GET", METRICS_PATH.format(namespace=namespace), query={"labelSelector": selector}
                )
            except ClientError as e:
                cache["error"] = str(e)
                doc = {}
            cache["items"] = doc.get("items") or []
        if cache.get("error"):
            raise MetricFailure("FailedGetResourceMetric", (
                f"unable to get metrics for resource {resource}: unable to fetch metrics from resource metrics API: {cache['error']}"
            ))
        out: dict[str, calc.PodMetric] = {}
        for item in cache["items"]:
            total, found = 0.0, True
            containers = item.get("containers") or []
            matched = False
            for c in containers:
                if container and c.get("name") != container:
                    continue
                matched = True
                usage = (c.get("usage") or {}).get(resource)
                if usage is None:
                    found = False
                    break
                total += calc.quantity(resource, usage)
            if not found or (container and not matched):
                continue
            ts = parse_time(item.get("timestamp"))
            out[str((item.get("metadata") or {}).get("name"))] = calc.PodMetric(
                total, ts.timestamp() if ts else 0.0, _seconds(item.get("window")),
            )
        if not out:
            raise MetricFailure("FailedGetResourceMetric",
                                f"unable to get metrics for resource {resource}: no metrics returned from resource metrics API")
        return out

    async def _one_metric(
        self, metric: Obj, namespace: str, selector: str, pods: list[Obj], current: int, cache: dict[str, Any],
    ) -> tuple[int, Obj]:
        timings = self.ctx.timings
        mtype = metric.get("type")
        if mtype not in ("Resource", "ContainerResource"):
            reason = {"Pods": "FailedGetPodsMetric", "Object": "FailedGetObjectMetric",
                      "External": "FailedGetExternalMetric"}.get(str(mtype), "InvalidMetricSourceType")
            api = "external metrics API (external.metrics.k8s.io)" if mtype == "External" else "custom metrics API (custom.metrics.k8s.io)"
            if reason == "InvalidMetricSourceType":
                raise MetricFailure(reason, f'unknown metric source type "{mtype}"')
            raise MetricFailure(reason, f"unable to get metric {metric_name(metric).rsplit(' ', 2)[0]}: no {api} registered")
        key = "resource" if mtype == "Resource" else "containerResource"
        src = metric.get(key) or {}
        resource = str(src.get("name") or "")
        container = str(src.get("container") or "") if mtype == "ContainerResource" else ""
        target = src.get("target") or {}
        failure = "FailedGetResourceMetric" if mtype == "Resource" else "FailedGetContainerResourceMetric"
        try:
            usage = await self._pod_metrics(namespace, selector, resource, container, cache)
            at = time.time()
            knobs = {
                "tolerance": timings.hpa_tolerance,
                "cpu_initialization": timings.hpa_cpu_initialization,
                "delay_of_initial_readiness": timings.hpa_initial_readiness_delay,
            }
            if target.get("type") == "Utilization" and target.get("averageUtilization") is not None:
                replicas, utilization, raw = calc.resource_replicas(
                    current, int(target["averageUtilization"]), resource, pods, usage, at, container=container, **knobs,
                )
                current_value: Obj = {"averageUtilization": utilization, "averageValue": _value_text(resource, raw)}
            elif target.get("type") == "AverageValue" and target.get("averageValue") is not None:
                replicas, average = calc.value_replicas(
                    current, calc.quantity(resource, target["averageValue"]), resource, pods, usage, at, **knobs,
                )
                current_value = {"averageValue": _value_text(resource, average)}
            else:
                raise calc.MetricError(f"invalid {key} metric source: neither a utilization target nor a value target was set")
        except MetricFailure as e:
            raise MetricFailure(failure, e.message) from None
        except calc.MetricError as e:
            raise MetricFailure(failure, str(e)) from None
        status_src: Obj = {"name": resource, "current": current_value}
        if container:
            status_src["container"] = container
        return replicas, {"type": mtype, key: status_src}


def _seconds(window: Any) -> float:
    """A Go duration string (`15.002s`, `1m0s`) in seconds; 0 if unreadable."""
    text = str(window or "")
    total, number = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if text[i:i + 2] == "ms" else ch
        i += len(unit)
        try:
            total += float(number) * units.get(unit, 0.0)
        except ValueError:
            return 0.0
        number = ""
    return total
