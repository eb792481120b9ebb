"""autoscaling/v1 HorizontalPodAutoscalers, served by conversion to the stored autoscaling/v2.

The store keeps one version of a kind (upstream's storage version; v2 here). `kubectl
autoscale` (1.32) still creates autoscaling/v1 objects, so every v1 request is turned
into the v2 request it means and the answer converted back, as kube-apiserver converts
between versions. The conversion is upstream's: `targetCPUUtilizationPercentage` is the
v2 cpu Utilization metric, and whatever v1 cannot say (other metrics, `behavior`,
conditions, the current values of other metrics) rides in the
`autoscaling.alpha.kubernetes.io/*` annotations, so a v1 read-modify-write loses nothing.

A patch is applied to the v1 form of the live object (a patch is written against the
version it is sent to), then written back as a v2 update carrying the resourceVersion it
was computed from: a concurrent write makes it a 409 and it is retried on the new object.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import orjson

from tuik8s.api import errors
from tuik8s.api.patch import apply_patch
from tuik8s.apiserver import codec
from tuik8s.apiserver.request import ApiRequest, ApiResponse, json_response
from tuik8s.apiserver.rest import Resources

PREFIX = "/apis/autoscaling/v1/"
V2_PREFIX = "/apis/autoscaling/v2/"
KIND = "HorizontalPodAutoscaler"

METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
_ALPHA = (METRICS_ANNOTATION, CURRENT_METRICS_ANNOTATION, CONDITIONS_ANNOTATION, BEHAVIOR_ANNOTATION)
_PATCH_RETRIES = 5

Obj = dict[str, Any]


# --- conversion (pure) ---------------------------------------------------------------------------


def _is_cpu_utilization(metric: Any) -> bool:
    if not isinstance(metric, dict) or metric.get("type") != "Resource":
        return False
    resource = metric.get("resource") or {}
    target = resource.get("target") or {}
    return resource.get("name") == "cpu" and target.get("type") == "Utilization" and target.get("averageUtilization") is not None


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _loads(text: Any) -> Any:
    try:
        return orjson.loads(text) if isinstance(text, str) and text else None
    except orjson.JSONDecodeError:
        return None


def to_v1(obj: Obj) -> Obj:
    """An autoscaling/v2 HPA as autoscaling/v1."""
    meta = copy.deepcopy(obj.get("metadata") or {})
    spec2 = obj.get("spec") or {}
    status2 = obj.get("status") or {}
    annotations = dict(meta.get("annotations") or {})
    for key in _ALPHA:
        annotations.pop(key, None)
    spec: Obj = {}
    for key in ("scaleTargetRef", "minReplicas", "maxReplicas"):
        if key in spec2:
            spec[key] = copy.deepcopy(spec2[key])
    others = []
    for metric in spec2.get("metrics") or []:
        if "targetCPUUtilizationPercentage" not in spec and _is_cpu_utilization(metric):
            spec["targetCPUUtilizationPercentage"] = metric["resource"]["target"]["averageUtilization"]
        else:
            others.append(metric)
    if others:
        annotations[METRICS_ANNOTATION] = _dumps(others)
    if spec2.get("behavior") is not None:
        annotations[BEHAVIOR_ANNOTATION] = _dumps(spec2["behavior"])
    status: Obj = {
        "currentReplicas": status2.get("currentReplicas", 0),
        "desiredReplicas": status2.get("desiredReplicas", 0),
    }
    for key in ("observedGeneration", "lastScaleTime"):
        if status2.get(key) is not None:
            status[key] = status2[key]
    other_current = []
    for metric in status2.get("currentMetrics") or []:
        resource = (metric or {}).get("resource") or {}
        current = resource.get("current") or {}
        if (
            "currentCPUUtilizationPercentage" not in status and metric.get("type") == "Resource"
            and resource.get("name") == "cpu" and current.get("averageUtilization") is not None
        ):
            status["currentCPUUtilizationPercentage"] = current["averageUtilization"]
        else:
            other_current.append(metric)
    if other_current:
        annotations[CURRENT_METRICS_ANNOTATION] = _dumps(other_current)
    if status2.get("conditions"):
        annotations[CONDITIONS_ANNOTATION] = _dumps(status2["conditions"])
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return {"apiVersion": "autoscaling/v1", "kind": KIND, "metadata": meta, "spec": spec, "status": status}


def to_v2(obj: Obj) -> Obj:
    """An autoscaling/v1 HPA (as sent by a client) as autoscaling/v2."""
    meta = copy.deepcopy(obj.get("metadata") or {})
    spec1 = obj.get("spec") or {}
    status1 = obj.get("status") or {}
    annotations = dict(meta.get("annotations") or {})
    extra_metrics = _loads(annotations.pop(METRICS_ANNOTATION, None))
    behavior = _loads(annotations.pop(BEHAVIOR_ANNOTATION, None))
    current_extra = _loads(annotations.pop(CURRENT_METRICS_ANNOTATION, None))
    conditions = _loads(annotations.pop(CONDITIONS_ANNOTATION, None))
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    spec: Obj = {}
    for key in ("scaleTargetRef", "minReplicas", "maxReplicas"):
        if key in spec1:
            spec[key] = copy.deepcopy(spec1[key])
    metrics: list[Any] = []
    if spec1.get("targetCPUUtilizationPercentage") is not None:
        metrics.append({"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": spec1["targetCPUUtilizationPercentage"]},
        }})
    if isinstance(extra_metrics, list):
        metrics.extend(extra_metrics)
    if metrics:
        spec["metrics"] = metrics
    if isinstance(behavior, dict):
        spec["behavior"] = behavior
    out: Obj = {"apiVersion": "autoscaling/v2", "kind": KIND, "metadata": meta, "spec": spec}
    if status1:
        status: Obj = {k: status1[k] for k in ("currentReplicas", "desiredReplicas", "observedGeneration", "lastScaleTime") if k in status1}
        current: list[Any] = []
        if status1.get("currentCPUUtilizationPercentage") is not None:
            current.append({"type": "Resource", "resource": {
                "name": "cpu", "current": {"averageUtilization": status1["currentCPUUtilizationPercentage"]},
            }})
        if isinstance(current_extra, list):
            current.extend(current_extra)
        if current:
            status["currentMetrics"] = current
        if isinstance(conditions, list):
            status["conditions"] = conditions
        out["status"] = status
    return out


def _convert_doc(doc: Any) -> Any:
    """A v2 answer (object, list, deleted object, Status) as the v1 client expects it."""
    if not isinstance(doc, dict):
        return doc
    if doc.get("kind") == KIND:
        return to_v1(doc)
    if doc.get("kind") == KIND + "List":
        return {**doc, "apiVersion": "autoscaling/v1", "items": [to_v1(i) for i in doc.get("items") or []]}
    return doc


# --- the handler ---------------------------------------------------------------------------------


class AutoscalingV1:
    """The `Resources` delegate for `/apis/autoscaling/v1/...`."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def handle(self, req: ApiRequest) -> ApiResponse:
        tail = req.path[len(PREFIX):]
        parts = [p for p in tail.split("/") if p]
        if len(parts) >= 3 and parts[0] == "namespaces":
            rest = parts[2:]
        else:
            rest = parts
        if not rest or rest[0] != "horizontalpodautoscalers" or len(rest) > 3 or (len(rest) == 3 and rest[2] != "status"):
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        v2_path = V2_PREFIX + tail
        if req.method == "PATCH":
            return await self._patch(req, v2_path, len(rest) == 3)
        body = req.body
        if req.method in ("POST", "PUT") and body:
            doc = codec.decode_body(req)
            if not isinstance(doc, dict):
                raise errors.bad_request("the body must be a HorizontalPodAutoscaler object")
            if doc.get("apiVersion") not in (None, "autoscaling/v1") or doc.get("kind") not in (None, KIND):
                raise errors.bad_request(
                    f'the body is {doc.get("apiVersion")}, Kind={doc.get("kind")}: '
                    "expected autoscaling/v1, Kind=HorizontalPodAutoscaler"
                )
            body = orjson.dumps(to_v2(doc))
        headers = {k: v for k, v in req.headers.items() if k.lower() != "content-type"}
        if body:
            headers["Content-Type"] = "application/json"
        inner = ApiRequest(req.method, v2_path, req.query, headers, body, req.user)
        resp = await self.resources.handle(inner)
        if resp.stream is not None:
            return ApiResponse(resp.status, b"", resp.content_type, dict(resp.headers), _convert_stream(resp.stream))
        if codec.wants_table(req) or not resp.body:
            return resp
        try:
            doc = orjson.loads(resp.body)
        except orjson.JSONDecodeError:
            return resp
        out = json_response(_convert_doc(doc), resp.status)
        out.headers.update(resp.headers)
        return out

    async def _patch(self, req: ApiRequest, v2_path: str, status: bool) -> ApiResponse:
        content_type = req.header("Content-Type").split(";")[0].strip()
        patch = codec.decode_patch(req, content_type)
        get_path = v2_path.removesuffix("/status")
        for attempt in range(_PATCH_RETRIES):
            current = orjson.loads((await self.resources.handle(
                ApiRequest("GET", get_path, {}, {"Accept": "application/json"}, b"", req.user)
            )).body)
            patched = apply_patch(content_type, to_v1(current), patch)
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch turned the object into something that is not an object")
            want_rv = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
            updated = to_v2(patched)
            updated["metadata"]["resourceVersion"] = want_rv or current["metadata"].get("resourceVersion")
            query = {k: v for k, v in req.query.items() if k in ("dryRun", "fieldManager")}
            try:
                resp = await self.resources.handle(ApiRequest(
                    "PUT", v2_path, query, {"Content-Type": "application/json"}, orjson.dumps(updated), req.user,
                ))
            except errors.StatusError as e:
                if e.code == 409 and not want_rv and attempt < _PATCH_RETRIES - 1:
                    continue
                raise
            return json_response(_convert_doc(orjson.loads(resp.body)), resp.status)
        raise errors.internal("the HorizontalPodAutoscaler kept changing while the patch was applied")


async def _convert_stream(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Watch events, one JSON document a line, with v2 objects converted to v1."""
    buffer = b""
    try:
        async for chunk in stream:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            out = []
            for line in lines:
                if not line.strip():
                    continue
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    out.append(line + b"\n")
                    continue
                if isinstance(event, dict) and isinstance(event.get("object"), dict):
                    event["object"] = _convert_doc(event["object"])
                out.append(orjson.dumps(event) + b"\n")
            if out:
                yield b"".join(out)
        if buffer.strip():
            yield buffer
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
