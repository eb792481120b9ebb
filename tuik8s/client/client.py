"""`ApiClient`: the Kubernetes REST API as async methods over plain dicts.

Every component talks to the cluster through this class, so it speaks the API exactly as
kubectl and client-go do: the same paths, the same patch media types, DeleteOptions in
the body, watch events one per line. Objects stay dicts of the Kubernetes shape; a
resource is named by its `ResourceInfo` or by a string the registry knows (`"pods"`,
`"deployments.apps"`, also `"deploy"` or `"Deployment"`).

Writes never retry on their own: a 409 is the caller's cue to re-read and reconcile
(DESIGN rule 4), and only the caller knows whether its write still makes sense.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson

from tuik8s.api import registry
from tuik8s.api.patch import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH
from tuik8s.api.registry import ResourceInfo
from tuik8s.client.errors import ApiError, ClientError, TransportError, is_gone, is_not_found
from tuik8s.client.transport import HttpTransport, Transport

log = logging.getLogger(__name__)

Resource = ResourceInfo | str
Selector = str | Mapping[str, str] | None

PATCH_TYPES = {
    "merge": MERGE_PATCH,
    "strategic": STRATEGIC_MERGE_PATCH,
    "json": JSON_PATCH,
    "apply": APPLY_PATCH,
}
DEFAULT_FIELD_MANAGER = "tuik8s"
EVENT_CACHE_SIZE = 4096
# upstream's EventCorrelator: the same event but for its message 10 times within 10
# minutes is combined into one; a source may burst 25 events about one object, then
# one every 5 minutes
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL = 600.0
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0
COMBINED_PREFIX = "(combined from similar events): "


@dataclass
class ObjectList:
    """The items of a list and the resourceVersion to watch from after it."""

    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class WatchEvent:
    """One watch event: ADDED, MODIFIED, DELETED or BOOKMARK, and the object."""

    type: str
    object: dict[str, Any] = field(repr=False)

    @property
    def resource_version(self) -> str:
        return str((self.object.get("metadata") or {}).get("resourceVersion") or "")


def resolve(res: Resource) -> ResourceInfo:
    """The `ResourceInfo` for `res`: a registry key, plural, singular, short name or kind."""
    if isinstance(res, ResourceInfo):
        return res
    try:
        return registry.by_key(res)
    except KeyError:
        pass
    name, _, group = res.lower().partition(".")
    for info in registry.RESOURCES:
        if group and info.group != group:
            continue
        if name in (info.plural, info.singular, *info.short_names):
            return info
    raise ValueError(f'the server doesn\'t have a resource type "{res}"')


def resource_path(
    info: ResourceInfo,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The REST path: `/api/v1/namespaces/NS/pods/NAME/status`, `/apis/apps/v1/deployments`."""
    path = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    if info.namespaced and namespace:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{info.plural}"
    if name:
        path += f"/{quote(name, safe='')}"
    if subresource:
        path += f"/{subresource}"
    return path


def object_reference(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An ObjectReference to `obj`, which is either an object or already a reference."""
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        ref = {
            "kind": obj.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "apiVersion": obj.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
    else:
        keys = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
        ref = {k: obj.get(k) for k in keys}
    return {k: v for k, v in ref.items() if v}


def format_selector(selector: Selector) -> str | None:
    """`{"app": "web"}` as `app=web`; a string as it is."""
    if selector is None:
        return None
    if isinstance(selector, str):
        return selector or None
    return ",".join(f"{k}={v}" for k, v in selector.items()) or None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Lru(OrderedDict[Any, Any]):
    """A dict that forgets its least recently used entries beyond `size`."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_recent(self, key: Any) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class EventCorrelator:
    """What upstream's recorder decides before an Event reaches the API server.

    client-go's EventCorrelator, in its order:

    - aggregate: events that differ only by message (same source, object, type and
      reason) become, from the 10th distinct message within 10 minutes on, one event
      whose message is `(combined from similar events): <latest message>`;
    - dedup: an event already written (same key, message included) is a count bump;
    - spam filter: a source may write 25 events about one object, then one every 5
      minutes; the rest are dropped.

    A ReplicaSet that creates 200 pods thus writes about 25 Events, not 200 -- and
    `kubectl describe` shows what upstream's does.
    """

    def __init__(self, clock: Any = time.monotonic, size: int = EVENT_CACHE_SIZE) -> None:
        self._clock = clock
        self._aggregates = _Lru(size)  # aggregate key -> (messages, last seen)
        self._spam = _Lru(size)  # source + object -> [tokens, at]
        self.dropped = 0

    def aggregate(
        self, source: tuple[str, ...], type: str, reason: str, message: str, field_path: str = ""
    ) -> tuple[tuple[str, ...], str]:
        """The dedup key and the message to write (combined, past the threshold)."""
        now = self._clock()
        key = (*source, type, reason)
        record = self._aggregates.get_recent(key)
        if record is None or now - record[1] > AGGREGATE_INTERVAL:
            record = (set(), now)
        messages: set[str] = record[0]
        messages.add(message)
        self._aggregates.put(key, (messages, now))
        if len(messages) < AGGREGATE_MAX_EVENTS:
            return (*key, message, field_path), message
        messages.pop()  # never hold more than the threshold
        return (*key, "\0combined"), COMBINED_PREFIX + message

    def allow(self, source: tuple[str, ...]) -> bool:
        """Take a token of the source + object's bucket; False: drop the event."""
        now = self._clock()
        bucket = self._spam.get_recent(source)
        if bucket is None:
            bucket = [float(SPAM_BURST), now]
        else:
            bucket[0] = min(float(SPAM_BURST), bucket[0] + (now - bucket[1]) * SPAM_QPS)
            bucket[1] = now
        self._spam.put(source, bucket)
        if bucket[0] < 1.0:
            self.dropped += 1
            return False
        bucket[0] -= 1.0
        return True


class ApiClient:
    """Async access to one API server through a `Transport`.

    `default_namespace` is used where a namespaced object is named without a namespace
    (get, create, update, patch, delete); list and watch without one span all namespaces.

    `field_validation` is sent with every write. The default, Ignore, asks the server not
    to look for unknown fields: with Warn (the server's default) it would walk every
    object against its schema only to put warnings in a `Warning` header, which this
    client never reads. At 10,000 pods that walk is about 5% of the server's CPU. Pass
    "Strict" to have unknown fields refused, or None to send nothing, as client-go.
    """

    def __init__(
        self, transport: Transport, *, default_namespace: str = "default", field_validation: str | None = "Ignore"
    ) -> None:
        self.transport = transport
        self.default_namespace = default_namespace
        self.field_validation = field_validation
        # (source, involved object, type, reason, message) -> (namespace, event name, count)
        self._events = _Lru(EVENT_CACHE_SIZE)
        self._event_locks: dict[tuple[str, ...], tuple[asyncio.Lock, list[int]]] = {}
        self.correlator = EventCorrelator()

    @classmethod
    def from_kubeconfig(cls, context: str | None = None, *, timeout: float = 60.0) -> ApiClient:
        """A client over HTTPS for `context` (default: the current one) of `$KUBECONFIG`."""
        from tuik8s.client.kubeconfig import access_for

        access = access_for(context)
        return cls(HttpTransport(access, timeout=timeout), default_namespace=access.namespace)

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- plumbing ---------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | None] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """Any request, for paths the typed methods do not cover (discovery, `/version`).

        Returns the decoded JSON answer; raises `ApiError` on a non-2xx answer.
        """
        clean = {k: v for k, v in (query or {}).items() if v is not None}
        data: bytes | None = None
        headers: dict[str, str] = {}
        if body is not None:
            data = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else orjson.dumps(body)
            headers["Content-Type"] = content_type
        raw = await self.transport.request(method, path, query=clean, headers=headers, body=data)
        if not raw.ok:
            raise ApiError.from_response(raw.status, raw.content_type, raw.body)
        if not raw.body.strip():
            return {}
        try:
            return orjson.loads(raw.body)
        except orjson.JSONDecodeError:
            raise TransportError(
                f"the API server answered {method} {path} with something that is not JSON"
            ) from None

    def _namespace(self, info: ResourceInfo, namespace: str | None, obj: Mapping[str, Any] | None = None) -> str | None:
        if not info.namespaced:
            return None
        if namespace:
            return namespace
        if obj is not None:
            ns = (obj.get("metadata") or {}).get("namespace")
            if ns:
                return str(ns)
        return self.default_namespace

    def _write_query(self) -> dict[str, str | None]:
        return {"fieldValidation": self.field_validation}

    @staticmethod
    def _name_of(obj: Mapping[str, Any]) -> str:
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("the object has no metadata.name")
        return str(name)

    # ---- reads ------------------------------------------------------------------

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        info = resolve(res)
        result: dict[str, Any] = await self.request(
            "GET", resource_path(info, self._namespace(info, namespace), name)
        )
        return result

    async def list_page(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: Selector = None,
        field_selector: Selector = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> ObjectList:
        """One page of a list; `continue_token` of the result fetches the next."""
        info = resolve(res)
        query = {
            "labelSelector": format_selector(label_selector),
            "fieldSelector": format_selector(field_selector),
            "limit": str(limit) if limit else None,
            "continue": continue_token,
            "resourceVersion": resource_version,
        }
        body = await self.request("GET", resource_path(info, namespace), query=query)
        meta = body.get("metadata") or {}
        items = body.get("items") or []
        for item in items:
            # list items may come without their type, as kube-apiserver sends them
            item.setdefault("apiVersion", info.api_version)
            item.setdefault("kind", info.kind)
        return ObjectList(items, str(meta.get("resourceVersion") or ""), meta.get("continue") or None)

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: Selector = None,
        field_selector: Selector = None,
        limit: int | None = None,
    ) -> ObjectList:
        """Every matching object, fetched `limit` at a time when a limit is given.

        If the snapshot behind a continue token has been compacted (410), the list
        starts over unpaged, as client-go's pager does, rather than stitching pages
        from two different moments together.
        """
        info = resolve(res)
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            try:
                page = await self.list_page(
                    info, namespace, label_selector=label_selector,
                    field_selector=field_selector, limit=limit, continue_token=token,
                )
            except ApiError as e:
                if token is None or not is_gone(e):
                    raise
                return await self.list_page(
                    info, namespace, label_selector=label_selector, field_selector=field_selector
                )
            items.extend(page.items)
            if not page.continue_token:
                return ObjectList(items, page.resource_version)
            token = page.continue_token

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        name: str | None = None,
        resource_version: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        timeout_seconds: int | float | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncIterator[WatchEvent]:
        """Events after `resource_version` (or the current state as ADDED, then events).

        Ends when the server closes the watch; raises `ApiError` 410 when the server no
        longer has `resource_version` (relist then), `TransportError` if the connection
        breaks. Close it (`contextlib.aclosing`) to end the watch early.
        """
        info = resolve(res)
        if name:
            by_name = f"metadata.name={name}"
            field_selector = f"{format_selector(field_selector)},{by_name}" if format_selector(field_selector) else by_name
        query = {"watch": "true"}
        for key, value in (
            ("resourceVersion", resource_version),
            ("labelSelector", format_selector(label_selector)),
            ("fieldSelector", format_selector(field_selector)),
            ("timeoutSeconds", str(max(1, round(timeout_seconds))) if timeout_seconds else None),
            ("allowWatchBookmarks", "true" if allow_bookmarks else None),
        ):
            if value:
                query[key] = value
        lines = self.transport.stream("GET", resource_path(info, namespace), query=query)
        async with aclosing(lines):  # type: ignore[type-var]
            async for line in lines:
                if not line.strip():
                    continue
                try:
                    event = orjson.loads(line)
                    etype, obj = event["type"], event["object"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    raise TransportError(
                        f"the API server sent a malformed watch event: {line[:120]!r}"
                    ) from None
                if etype == "ERROR":
                    raise ApiError.from_status(obj if isinstance(obj, dict) else {}, 500)
                yield WatchEvent(str(etype), obj)

    # ---- writes -----------------------------------------------------------------

    async def create(self, res: Resource, obj: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        info = resolve(res)
        body = {"apiVersion": info.api_version, "kind": info.kind, **obj}
        result: dict[str, Any] = await self.request(
            "POST", resource_path(info, self._namespace(info, namespace, obj)), query=self._write_query(), body=body
        )
        return result

    async def update(self, res: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        """PUT `obj`; its `metadata.resourceVersion` makes a stale write a 409 Conflict."""
        return await self._put(resolve(res), obj, None)

    async def update_status(self, res: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        """PUT `obj` to the status subresource: only `status` changes."""
        return await self._put(resolve(res), obj, "status")

    async def _put(self, info: ResourceInfo, obj: Mapping[str, Any], sub: str | None) -> dict[str, Any]:
        body = {"apiVersion": info.api_version, "kind": info.kind, **obj}
        path = resource_path(info, self._namespace(info, None, obj), self._name_of(obj), sub)
        result: dict[str, Any] = await self.request("PUT", path, query=self._write_query(), body=body)
        return result

    async def patch(
        self,
        res: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: str = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> dict[str, Any]:
        """PATCH with `patch_type` merge, strategic, json or apply (or a media type).

        Server-side apply needs a field manager; `tuik8s` is used when none is given.
        """
        info = resolve(res)
        content_type = PATCH_TYPES.get(patch_type, patch_type)
        if content_type not in PATCH_TYPES.values():
            raise ValueError(f'unknown patch type "{patch_type}": use merge, strategic, json or apply')
        if content_type == APPLY_PATCH and not field_manager:
            field_manager = DEFAULT_FIELD_MANAGER
        query = {
            **self._write_query(),
            "fieldManager": field_manager,
            "force": ("true" if force else "false") if force is not None else None,
        }
        path = resource_path(info, self._namespace(info, namespace), name, subresource)
        result: dict[str, Any] = await self.request(
            "PATCH", path, query=query, body=patch, content_type=content_type
        )
        return result

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """DELETE; returns the Status, or the object when finalizers or grace keep it."""
        info = resolve(res)
        options = _delete_options(propagation_policy, grace_period_seconds, preconditions)
        path = resource_path(info, self._namespace(info, namespace), name)
        result: dict[str, Any] = await self.request("DELETE", path, body=options)
        return result

    async def delete_collection(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: Selector = None,
        field_selector: Selector = None,
        propagation_policy: str | None = None,
    ) -> dict[str, Any]:
        info = resolve(res)
        query = {
            "labelSelector": format_selector(label_selector),
            "fieldSelector": format_selector(field_selector),
        }
        options = _delete_options(propagation_policy, None, None)
        result: dict[str, Any] = await self.request(
            "DELETE", resource_path(info, self._namespace(info, namespace)), query=query, body=options
        )
        return result

    # ---- subresources -----------------------------------------------------------

    async def bind(
        self, namespace: str, pod_name: str, node_name: str, pod_uid: str | None = None
    ) -> dict[str, Any]:
        """Assign a pod to a node, as the scheduler does: POST pods/NAME/binding."""
        meta: dict[str, Any] = {"name": pod_name, "namespace": namespace}
        if pod_uid:
            meta["uid"] = pod_uid
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": meta,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        path = resource_path(registry.by_key("pods"), namespace, pod_name, "binding")
        result: dict[str, Any] = await self.request("POST", path, body=binding)
        return result

    async def evict(self, namespace: str, pod_name: str) -> dict[str, Any]:
        """Evict a pod (POST pods/NAME/eviction), as `kubectl drain` does."""
        eviction = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod_name, "namespace": namespace},
        }
        path = resource_path(registry.by_key("pods"), namespace, pod_name, "eviction")
        result: dict[str, Any] = await self.request("POST", path, body=eviction)
        return result

    async def get_scale(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        info = resolve(res)
        result: dict[str, Any] = await self.request(
            "GET", resource_path(info, self._namespace(info, namespace), name, "scale")
        )
        return result

    async def scale(self, res: Resource, name: str, namespace: str | None, replicas: int) -> dict[str, Any]:
        """Set `spec.replicas` through the scale subresource; returns the Scale."""
        return await self.patch(
            res, name, {"spec": {"replicas": replicas}}, namespace=namespace, subresource="scale"
        )

    async def logs(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
    ) -> AsyncIterator[bytes]:
        """A container's log, one line (without its newline) at a time."""
        query: dict[str, str] = {}
        if container:
            query["container"] = container
        if follow:
            query["follow"] = "true"
        if tail_lines is not None:
            query["tailLines"] = str(tail_lines)
        path = resource_path(registry.by_key("pods"), namespace, pod, "log")
        lines = self.transport.stream("GET", path, query=query, headers={"Accept": "*/*"})
        async with aclosing(lines):  # type: ignore[type-var]
            async for line in lines:
                yield line

    # ---- events -----------------------------------------------------------------

    async def record_event(
        self,
        involved: Mapping[str, Any],
        reason: str,
        message: str,
        type: str = "Normal",
        component: str = "tuik8s",
        *,
        host: str | None = None,
    ) -> dict[str, Any] | None:
        """Record a core/v1 Event about `involved` (an object or an ObjectReference).

        As upstream's recorder (see `EventCorrelator`): a repeat of the same event bumps
        `count` and `lastTimestamp` of the one already written instead of adding another;
        many events that differ only by message are combined into one; and a source that
        floods one object is cut to 25 events, then one every 5 minutes. Recording never
        fails the caller: an event that is dropped, or cannot be written (it is logged),
        returns None.
        """
        ref = object_reference(involved)
        namespace = ref.get("namespace") or "default"
        source = (
            component, host or "", ref.get("kind", ""), namespace, ref.get("name", ""),
            ref.get("uid", ""), ref.get("apiVersion", ""),
        )
        key, message = self.correlator.aggregate(source, type, reason, message, ref.get("fieldPath", ""))
        if not self.correlator.allow(source):
            log.debug("event %s on %s %s/%s dropped: too many from %s", reason, ref.get("kind"), namespace,
                      ref.get("name"), component)
            return None
        # one write at a time per key: two concurrent repeats must not both create the
        # event, nor both patch it to the same count
        entry = self._event_locks.get(key)
        if entry is None:
            entry = self._event_locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                return await self._write_event(key, ref, namespace, reason, message, type, component, host)
        except ClientError as e:
            log.warning("could not record event %s on %s %s/%s: %s", reason, ref.get("kind"), namespace, ref.get("name"), e)
            return None
        finally:
            users[0] -= 1
            if not users[0]:
                del self._event_locks[key]

    async def _write_event(
        self, key: tuple[str, ...], ref: dict[str, Any], namespace: str, reason: str, message: str, type: str,
        component: str, host: str | None,
    ) -> dict[str, Any]:
        now = _now()
        seen = self._events.get_recent(key)
        if seen is not None:
            ev_ns, ev_name, count = seen
            patch: dict[str, Any] = {"count": count + 1, "lastTimestamp": now}
            if message.startswith(COMBINED_PREFIX):
                patch["message"] = message
            try:
                event: dict[str, Any] = await self.patch("events", ev_name, patch, namespace=ev_ns)
            except ApiError as e:
                if not is_not_found(e):
                    raise
            else:
                self._events.put(key, (ev_ns, ev_name, count + 1))
                return event
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{ref.get('name', 'unknown')}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": type,
            "source": {"component": component, **({"host": host} if host else {})},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": host or "",
        }
        event = await self.create("events", body, namespace)
        self._events.put(key, (namespace, event["metadata"]["name"], 1))
        return event


def _delete_options(
    propagation_policy: str | None,
    grace_period_seconds: int | None,
    preconditions: Mapping[str, str] | None,
) -> dict[str, Any] | None:
    options: dict[str, Any] = {}
    if propagation_policy:
        options["propagationPolicy"] = propagation_policy
    if grace_period_seconds is not None:
        options["gracePeriodSeconds"] = grace_period_seconds
    if preconditions:
        options["preconditions"] = dict(preconditions)
    if not options:
        return None
    return {"apiVersion": "v1", "kind": "DeleteOptions", **options}
