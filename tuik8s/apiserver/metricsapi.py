"""`metrics.k8s.io/v1beta1`: NodeMetrics and PodMetrics, read-only, from the scraper's memory.

Upstream serves this group from metrics-server behind API aggregation; here the same
documents come from `MetricsStorage` inside the API server (see metricsscraper.py). The
shapes are metrics-server's: `timestamp`, `window` (a Go duration), usage as nanocores
(`"12345678n"`) and bytes (`"10240Ki"`), and the labels of the node or pod, so label
selectors work as upstream (they select on the Node's or Pod's labels). Only `get` and
`list` exist: there is no watch, and writes are 405 MethodNotAllowed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tuik8s.api import errors
from tuik8s.api.selectors import SelectorError, parse_field_selector, parse_label_selector
from tuik8s.apiserver.metricsscraper import MetricsStorage, Usage
from tuik8s.apiserver.request import ApiRequest, ApiResponse, json_response
from tuik8s.apiserver.strategy import now_rfc3339
from tuik8s.store.base import Store, Stored

GROUP_VERSION = "metrics.k8s.io/v1beta1"
PREFIX = f"/apis/{GROUP_VERSION}/"


def format_cpu(cores: float) -> str:
    return f"{max(0, round(cores * 1e9))}n"


def format_memory(nbytes: float) -> str:
    value = max(0, int(nbytes))
    return f"{value // 1024}Ki" if value % 1024 == 0 else str(value)


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration prints it (`15.002s`, `1m0.5s`), to the millisecond."""
    return _duration(round(seconds * 1000))


@lru_cache(maxsize=1024)
def _duration(millis: int) -> str:
    if millis == 0:
        return "0s"
    minutes, rest = divmod(millis, 60_000)
    hours, minutes = divmod(minutes, 60)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    if minutes:
        return f"{minutes}m{secs}"
    return secs


def _time(ts: float) -> str:
    return _second(int(ts))


@lru_cache(maxsize=256)
def _second(ts: int) -> str:
    # (strftime was half the cost of a list: a scrape's points share a few seconds)
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usage(u: Usage) -> dict[str, str]:
    return {"cpu": format_cpu(u.cpu), "memory": format_memory(u.memory)}


class MetricsApi:
    """The REST handler of `/apis/metrics.k8s.io/v1beta1/...` (a `Resources` delegate)."""

    def __init__(self, storage: MetricsStorage, store: Store) -> None:
        self.storage = storage
        self.store = store
        self._stamp = ""

    async def handle(self, req: ApiRequest) -> ApiResponse:
        parts = [p for p in req.path[len(PREFIX):].split("/") if p]
        namespace = ""
        if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] == "pods":
            namespace, parts = parts[1], parts[2:]
        if not parts or parts[0] not in ("nodes", "pods") or len(parts) > 2 or (parts[0] == "nodes" and namespace):
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        if req.method != "GET" or str(req.query.get("watch", "")).lower() in ("true", "1"):
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        resource, name = parts[0], parts[1] if len(parts) == 2 else ""
        self._stamp = now_rfc3339()  # one creationTimestamp per answer (no await below)
        if resource == "nodes":
            return self._node(name) if name else self._nodes(req)
        if name:
            if not namespace:
                raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
            return self._pod(namespace, name)
        return self._pods(req, namespace)

    # ---- selectors ----------------------------------------------------------------

    def _matcher(self, req: ApiRequest) -> Any:
        try:
            labels = parse_label_selector(req.query["labelSelector"]) if req.query.get("labelSelector") else None
            fields = parse_field_selector(req.query["fieldSelector"]) if req.query.get("fieldSelector") else None
        except SelectorError as e:
            raise errors.bad_request(f"unable to parse requirement: {e}") from None
        if fields is not None:
            for field_name, _, _ in fields.requirements:
                if field_name not in ("metadata.name", "metadata.namespace"):
                    raise errors.bad_request(f"field label not supported: {field_name}")

        def matches(stored: Stored) -> bool:
            if labels is not None and not labels.matches(stored.labels):
                return False
            return fields is None or fields.matches({"metadata.name": stored.name, "metadata.namespace": stored.namespace})

        return matches

    # ---- nodes --------------------------------------------------------------------

    def _node_doc(self, node: Stored, u: Usage) -> dict[str, Any]:
        return {
            "kind": "NodeMetrics",
            "apiVersion": GROUP_VERSION,
            "metadata": {"name": node.name, "creationTimestamp": self._stamp, "labels": dict(node.labels)},
            "timestamp": _time(u.timestamp),
            "window": go_duration(u.window),
            "usage": _usage(u),
        }

    def _node(self, name: str) -> ApiResponse:
        stored = self.store.get("nodes", "", name)
        usage = self.storage.nodes.get(name)
        if stored is None or usage is None:
            raise errors.not_found("nodemetrics.metrics.k8s.io", name, "metrics.k8s.io", "nodes")
        return json_response(self._node_doc(stored, usage))

    def _nodes(self, req: ApiRequest) -> ApiResponse:
        matches = self._matcher(req)
        items = []
        for stored in self.store.list("nodes"):
            usage = self.storage.nodes.get(stored.name)
            if usage is not None and matches(stored):
                items.append(self._node_doc(stored, usage))
        return json_response({"kind": "NodeMetricsList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})

    # ---- pods ---------------------------------------------------------------------

    def _pod_doc(self, pod: Stored, point: tuple[float, float, list[tuple[str, Usage]]]) -> dict[str, Any]:
        timestamp, window, containers = point
        return {
            "kind": "PodMetrics",
            "apiVersion": GROUP_VERSION,
            "metadata": {
                "name": pod.name, "namespace": pod.namespace,
                "creationTimestamp": self._stamp, "labels": dict(pod.labels),
            },
            "timestamp": _time(timestamp),
            "window": go_duration(window),
            "containers": [{"name": name, "usage": _usage(u)} for name, u in containers],
        }

    def _pod(self, namespace: str, name: str) -> ApiResponse:
        stored = self.store.get("pods", namespace, name)
        point = self.storage.pods.get((namespace, name))
        if stored is None or point is None:
            raise errors.not_found("podmetrics.metrics.k8s.io", f"{namespace}/{name}", "metrics.k8s.io", "pods")
        return json_response(self._pod_doc(stored, point))

    def _pods(self, req: ApiRequest, namespace: str) -> ApiResponse:
        matches = self._matcher(req)
        items = []
        for (ns, name), point in sorted(self.storage.pods.items()):
            if namespace and ns != namespace:
                continue
            stored = self.store.get("pods", ns, name)
            if stored is not None and matches(stored):
                items.append(self._pod_doc(stored, point))
        return json_response({"kind": "PodMetricsList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})
