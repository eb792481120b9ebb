"""Generic REST storage: the verbs of every resource, written once.

`Resources.handle` takes an `ApiRequest` for `/api/v1/...` or `/apis/<g>/<v>/...`,
works out resource, namespace, name and subresource as kube-apiserver's RequestInfo
does, and runs the verb. Every write is a function run inside the store's writer (see
tuik8s/store/sqlite.py), so preconditions, allocation and validation happen against
the latest committed object and can never race another write.
"""

from __future__ import annotations

import base64
import copy
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tuik8s.api import errors, registry
from tuik8s.api.defaults import apply_defaults
from tuik8s.api.errors import FieldError, StatusError
from tuik8s.api.fields import supported as supported_fields
from tuik8s.api.patch import APPLY_PATCH, apply_patch
from tuik8s.api.registry import ResourceInfo
from tuik8s.api.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from tuik8s.api.validation import validate_create, validate_status_update, validate_update
from tuik8s.apiserver import codec, watch
from tuik8s.apiserver.request import ApiRequest, ApiResponse, json_response, success_status
from tuik8s.apiserver.strategy import Strategy, check_kind, now_rfc3339
from tuik8s.apiserver.tables import to_table
from tuik8s.store.base import DELETE, DELETED, UNCHANGED, UNCHANGED_OBJECT, Expired, Store, Stored
from tuik8s.store.sqlite import decode

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_TERMINAL_PHASES = ("Succeeded", "Failed")


class Target:
    """What a resource path names (kube-apiserver's RequestInfo)."""

    __slots__ = ("info", "namespace", "name", "subresource")

    def __init__(self, info: ResourceInfo, namespace: str, name: str, subresource: str) -> None:
        self.info = info
        self.namespace = namespace
        self.name = name
        self.subresource = subresource


def parse_path(path: str) -> Target:
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise _not_found_path()
    namespace = ""
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and (info := registry.lookup(group, version, rest[2])) is not None
        and info.namespaced
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest:
        raise _not_found_path()
    info = registry.lookup(group, version, rest[0])
    if info is None or len(rest) > 3:
        raise _not_found_path()
    name = rest[1] if len(rest) >= 2 else ""
    sub = rest[2] if len(rest) == 3 else ""
    if sub and info.subresource(sub) is None:
        raise _not_found_path()
    return Target(info, namespace, name, sub)


def _not_found_path() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource")


def _bool(query: dict[str, str] | Any, key: str) -> bool:
    return str(query.get(key, "")).lower() in ("true", "1")


class Resources:
    """The REST verbs over a Store."""

    def __init__(self, store: Store, strategy: Strategy | None = None) -> None:
        self.store = store
        self.strategy = strategy or Strategy()
        self.kubelet_logs: Callable[..., Any] | None = None
        # path prefix -> handler, for the APIs not kept in the store (registry.EXTRA_RESOURCES)
        self.delegates: dict[str, Callable[[ApiRequest], Awaitable[ApiResponse]]] = {}

    # ---- dispatch ---------------------------------------------------------------

    async def handle(self, req: ApiRequest) -> ApiResponse:
        for prefix, delegate in self.delegates.items():
            if req.path.startswith(prefix):
                return await delegate(req)
        t = parse_path(req.path)
        if t.info.namespaced and not t.namespace and t.name and t.info.plural != "namespaces":
            # /api/v1/pods/NAME: a namespaced object needs its namespace
            raise _not_found_path()
        method = req.method
        if t.subresource:
            return await self._subresource(req, t)
        if not t.name:
            if method == "GET":
                if _bool(req.query, "watch"):
                    return await self.watch(req, t)
                return self.list(req, t)
            if method == "POST":
                return await self.create(req, t)
            if method == "DELETE":
                return await self.delete_collection(req, t)
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        if method == "GET":
            if _bool(req.query, "watch"):
                return await self.watch(req, t)
            return self.get(req, t)
        if method == "PUT":
            return await self.update(req, t)
        if method == "PATCH":
            return await self.patch(req, t)
        if method == "DELETE":
            return await self.delete(req, t)
        if method == "POST" and t.info.plural == "bindings":
            return await self.bind(req, t, t.name)
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")

    async def _subresource(self, req: ApiRequest, t: Target) -> ApiResponse:
        sub, method = t.subresource, req.method
        if sub in ("status",):
            if method == "GET":
                return self.get(req, t)
            if method == "PUT":
                return await self.update(req, t)
            if method == "PATCH":
                return await self.patch(req, t)
        elif sub == "scale":
            if method == "GET":
                return json_response(_scale_of(t.info, self._get_obj(t)))
            if method in ("PUT", "PATCH"):
                return await self.update_scale(req, t)
        elif sub == "binding" and method == "POST":
            return await self.bind(req, t, t.name)
        elif sub == "eviction" and method == "POST":
            return await self.evict(req, t)
        elif sub == "finalize" and method == "PUT":
            return await self.update(req, t)
        elif sub == "log" and method == "GET":
            return await self.logs(req, t)
        elif sub in ("exec", "attach", "portforward"):
            raise errors.bad_request(
                f"pods/{sub} needs a node agent: this cluster's nodes do not serve it yet"
            )
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")

    # ---- reads ------------------------------------------------------------------

    def _get_stored(self, t: Target) -> Stored:
        stored = self.store.get(t.info.key, t.namespace, t.name)
        if stored is None:
            raise errors.not_found(t.info.group_resource, t.name, t.info.group, t.info.plural)
        return stored

    def _get_obj(self, t: Target) -> dict[str, Any]:
        return decode(self._get_stored(t))

    def get(self, req: ApiRequest, t: Target) -> ApiResponse:
        stored = self._get_stored(t)
        table = codec.wants_table(req)
        if table:
            return json_response(self._table(t.info, [decode(stored)], req, self.store.revision))
        return ApiResponse(200, stored.data)

    def _selectors(self, req: ApiRequest, info: ResourceInfo) -> tuple[LabelSelector | None, FieldSelector | None]:
        try:
            label_sel = parse_label_selector(req.query["labelSelector"]) if req.query.get("labelSelector") else None
            field_sel = parse_field_selector(req.query["fieldSelector"]) if req.query.get("fieldSelector") else None
        except SelectorError as e:
            raise errors.bad_request(f"unable to parse requirement: {e}") from None
        if label_sel is not None and label_sel.empty():
            label_sel = None
        if field_sel is not None:
            allowed = supported_fields(info.key)
            for field_name, _, _ in field_sel.requirements:
                if field_name not in allowed:
                    raise errors.bad_request(f'field label not supported: {field_name}')
            if field_sel.empty():
                field_sel = None
        return label_sel, field_sel

    def list(self, req: ApiRequest, t: Target) -> ApiResponse:
        label_sel, field_sel = self._selectors(req, t.info)
        namespace = t.namespace or None
        items = self.store.list(t.info.key, namespace)
        revision = self.store.revision
        cont = req.query.get("continue")
        start_key = ""
        if cont:
            try:
                token = orjson.loads(base64.urlsafe_b64decode(cont.encode()))
                start_key = str(token["start"])
                revision = int(token["rv"])
            except Exception:  # noqa: BLE001 - any garbage is the client's mistake
                raise errors.bad_request("continue key is not valid: decode the token given by the previous list") from None
        try:
            limit = int(req.query.get("limit") or 0)
        except ValueError:
            raise errors.bad_request("limit must be an integer") from None
        if label_sel is not None or field_sel is not None or start_key:
            items = [
                s for s in items
                if (not start_key or f"{s.namespace}/{s.name}" > start_key)
                and (label_sel is None or label_sel.matches(s.labels))
                and (field_sel is None or field_sel.matches(s.fields))
            ]
        next_token = None
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]
            items = items[:limit]
            next_token = base64.urlsafe_b64encode(
                orjson.dumps({"rv": revision, "start": f"{last.namespace}/{last.name}"})
            ).decode()
        if codec.wants_table(req):
            table = self._table(t.info, [decode(s) for s in items], req, revision)
            if next_token:
                table["metadata"]["continue"] = next_token
            return json_response(table)
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if next_token:
            meta["continue"] = next_token
        head = orjson.dumps({"kind": t.info.list_kind, "apiVersion": t.info.api_version, "metadata": meta})
        body = head[:-1] + b',"items":[' + b",".join(s.data for s in items) + b"]}"
        return ApiResponse(200, body)

    def _table(self, info: ResourceInfo, objs: list[dict[str, Any]], req: ApiRequest, revision: int) -> dict[str, Any]:
        include = req.query.get("includeObject") or "Metadata"
        table = to_table(info, objs, include_object=include)
        table["metadata"] = {"resourceVersion": str(revision)}
        return table

    async def watch(self, req: ApiRequest, t: Target) -> ApiResponse:
        label_sel, field_sel = self._selectors(req, t.info)
        if t.name:
            extra = parse_field_selector(f"metadata.name={t.name}")
            field_sel = extra if field_sel is None else parse_field_selector(f"{field_sel},metadata.name={t.name}")
        rv_text = req.query.get("resourceVersion") or ""
        try:
            since = int(rv_text) if rv_text else 0
        except ValueError:
            raise errors.bad_request(f'invalid resource version "{rv_text}": must be an integer') from None
        try:
            timeout = float(req.query.get("timeoutSeconds") or 0) or random.uniform(1800, 3600)
        except ValueError:
            raise errors.bad_request("timeoutSeconds must be a number") from None
        spec = watch.WatchSpec(
            info=t.info,
            namespace=t.namespace or None,
            labels=label_sel,
            fields=field_sel,
            table=codec.wants_table(req),
            include_object=req.query.get("includeObject") or "Metadata",
            bookmarks=_bool(req.query, "allowWatchBookmarks"),
            timeout=timeout,
        )
        initial: list[Stored] = []
        if since == 0:
            # "0" or unset: the current state as ADDED events, then changes
            since = self.store.revision
            initial = self.store.list(t.info.key, t.namespace or None)
        try:
            stream = self.store.watch(t.info.key, since)
        except Expired as e:
            return ApiResponse(200, b"", stream=watch.expired_stream(str(e)), content_type="application/json")
        return ApiResponse(200, b"", stream=watch.stream(spec, stream, initial, self.store), content_type="application/json")

    # ---- create -----------------------------------------------------------------

    def _check_namespace(self, info: ResourceInfo, namespace: str) -> None:
        if not info.namespaced:
            return
        ns = self.store.get("namespaces", "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", namespace, "", "namespaces")
        if b'"deletionTimestamp"' in ns.data and decode(ns).get("metadata", {}).get("deletionTimestamp"):
            message = f"unable to create new content in namespace {namespace} because it is being terminated"
            err = errors.forbidden(f'{info.plural} "" is forbidden: {message}')
            err.details = {"kind": info.plural, "causes": [
                {"reason": "NamespaceTerminating", "message": message, "field": "metadata.namespace"}
            ]}
            raise err

    async def create(self, req: ApiRequest, t: Target) -> ApiResponse:
        info = t.info
        obj = codec.decode_body(req)
        check_kind(info, obj)
        meta = obj["metadata"]
        if info.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and t.namespace and body_ns != t.namespace:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
            namespace = t.namespace or body_ns or ""
            if not namespace:
                raise errors.bad_request("a namespaced object needs a namespace: create it under /namespaces/NAME/")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = ""
        warnings = codec.check_field_validation(req, info, obj)
        self._check_namespace(info, namespace)
        if not meta.get("name") and isinstance(meta.get("generateName"), str) and meta["generateName"]:
            for _ in range(8):
                name = meta["generateName"] + "".join(random.choice(_NAME_CHARS) for _ in range(5))
                if self.store.get(info.key, namespace, name) is None:
                    meta["name"] = name
                    break
        Strategy.assign_uid(obj)
        apply_defaults(info, obj)
        problems = validate_create(info, obj)
        name = meta.get("name") if isinstance(meta.get("name"), str) else ""
        if problems:
            raise errors.invalid(info.kind, name or "", problems, info.group)
        dry_run = bool(req.query.get("dryRun"))
        body = await self._create_obj(info, namespace, name, obj, dry_run)
        resp = ApiResponse(201, body)
        resp.headers.update(codec.warning_headers(warnings))
        return resp

    async def _create_obj(self, info: ResourceInfo, namespace: str, name: str, obj: dict[str, Any], dry_run: bool) -> bytes:
        """Create; the answer is the committed object's stored bytes, never re-encoded."""
        strategy = self.strategy
        taken: list[Any] = []

        def mutate(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is not None:
                raise errors.already_exists(info.group_resource, name, info.group)
            strategy.prepare_create(info, obj)
            if info.key == "services":
                taken.extend(strategy.allocate_service(obj))
            return obj

        if dry_run:
            current = self.store.get(info.key, namespace, name)
            result = mutate(decode(current) if current else None)
            strategy.release(taken)
            return orjson.dumps(result)
        try:
            event = await self.store.write(info.key, namespace, name, mutate)
        except BaseException:
            strategy.release(taken)
            raise
        return event.obj.data

    # ---- update / patch ---------------------------------------------------------

    async def update(self, req: ApiRequest, t: Target) -> ApiResponse:
        obj = codec.decode_body(req)
        check_kind(t.info, obj)
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != t.name:
            raise errors.bad_request(f'the name of the object ({meta["name"]}) does not match the name on the URL ({t.name})')
        if t.info.namespaced and meta.get("namespace") and meta["namespace"] != t.namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        warnings = codec.check_field_validation(req, t.info, obj, verb="update")
        rv = meta.get("resourceVersion")

        uid = meta.get("uid")

        def transform(current: dict[str, Any]) -> dict[str, Any]:
            if uid and uid != current["metadata"].get("uid"):
                raise errors.conflict(
                    t.info.group_resource, t.name,
                    f'Precondition failed: UID in precondition: {uid}, UID in object meta: {current["metadata"].get("uid")}',
                    t.info.group,
                )
            if rv and str(rv) != current["metadata"].get("resourceVersion"):
                raise errors.conflict(
                    t.info.group_resource, t.name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                    t.info.group,
                )
            return obj

        body, _ = await self._update(req, t, transform)
        resp = ApiResponse(200, body)
        resp.headers.update(codec.warning_headers(warnings))
        return resp

    async def patch(self, req: ApiRequest, t: Target) -> ApiResponse:
        content_type = req.header("Content-Type").split(";")[0].strip()
        patch_body = codec.decode_patch(req, content_type)
        # no managed fields are tracked, so server-side apply never reports conflicts
        # and ?force= changes nothing
        warnings: list[str] = []

        def transform(current: dict[str, Any]) -> dict[str, Any]:
            patched = apply_patch(content_type, current, patch_body)
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch turned the object into something that is not an object")
            check_kind(t.info, patched)
            pmeta = patched["metadata"]
            if pmeta.get("name") != t.name:
                raise errors.bad_request("the patch may not change metadata.name")
            if pmeta.get("uid") != current["metadata"].get("uid"):
                raise errors.invalid(t.info.kind, t.name, [FieldError(
                    "metadata.uid", f'Invalid value: "{pmeta.get("uid")}": field is immutable'
                )], t.info.group)
            want_rv = _patch_rv(patch_body)
            if want_rv and want_rv != current["metadata"].get("resourceVersion"):
                raise errors.conflict(
                    t.info.group_resource, t.name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                    t.info.group,
                )
            warnings[:] = codec.check_field_validation(
                req, t.info, patched, verb="patch", patch=patch_body, patch_type=content_type
            )
            return patched

        create_from = None
        if content_type == APPLY_PATCH and not t.subresource:
            create_from = patch_body
        body, created = await self._update(req, t, transform, apply_create=create_from)
        resp = ApiResponse(201 if created else 200, body)
        resp.headers.update(codec.warning_headers(warnings))
        return resp

    async def _update(
        self,
        req: ApiRequest,
        t: Target,
        transform: Callable[[dict[str, Any]], dict[str, Any]],
        apply_create: Any = None,
    ) -> tuple[bytes, bool]:
        """Read-modify-write inside the store's writer, with the verb's checks.

        Returns the stored object's bytes and whether it was created (server-side apply)."""
        info, strategy = t.info, self.strategy
        sub = t.subresource
        taken: list[Any] = []
        created = False

        def mutate(current: dict[str, Any] | None) -> Any:
            nonlocal created
            if current is None:
                if apply_create is None:
                    raise errors.not_found(info.group_resource, t.name, info.group, info.plural)
                obj = copy.deepcopy(apply_create)
                check_kind(info, obj)
                obj["metadata"].setdefault("name", t.name)
                if info.namespaced:
                    obj["metadata"]["namespace"] = t.namespace
                self._check_namespace(info, t.namespace)
                Strategy.assign_uid(obj)
                apply_defaults(info, obj)
                problems = validate_create(info, obj)
                if problems:
                    raise errors.invalid(info.kind, t.name, problems, info.group)
                strategy.prepare_create(info, obj)
                if info.key == "services":
                    taken.extend(strategy.allocate_service(obj))
                created = True
                return obj
            new = transform(copy.deepcopy(current))
            if info.namespaced:
                new["metadata"]["namespace"] = t.namespace
            new["metadata"]["name"] = t.name
            if sub == "status":
                strategy.prepare_status_update(info, new, current)
                problems = validate_status_update(info, new, current)
            elif sub == "finalize":
                finalizers = (new.get("spec") or {}).get("finalizers")
                new = copy.deepcopy(current)
                new.setdefault("spec", {})["finalizers"] = finalizers or []
                problems = []
            else:
                strategy.prepare_update(info, new, current)
                apply_defaults(info, new)
                problems = validate_update(info, new, current)
                if info.key == "services" and not problems:
                    taken.extend(strategy.allocate_service(new, current))
            if problems:
                raise errors.invalid(info.kind, t.name, problems, info.group)
            new["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
            if new == current:
                return UNCHANGED_OBJECT
            if _ready_to_delete(info, new):
                return DELETE
            return new

        if _bool(req.query, "dryRun") or req.query.get("dryRun"):
            stored = self.store.get(info.key, t.namespace, t.name)
            result = mutate(decode(stored) if stored else None)
            strategy.release(taken)
            if result is UNCHANGED_OBJECT or result is DELETE:
                return (stored.data if stored else b"{}"), False
            return orjson.dumps(result), created
        try:
            event = await self.store.write(info.key, t.namespace, t.name, mutate)
        except BaseException:
            strategy.release(taken)
            raise
        if info.key == "services" and event.prev is not None and event.type != UNCHANGED:
            strategy.release_service(decode(event.prev), None if event.type == DELETED else decode(event.obj))
        return event.obj.data, created

    async def update_scale(self, req: ApiRequest, t: Target) -> ApiResponse:
        info = t.info
        content_type = req.header("Content-Type").split(";")[0].strip()
        body = codec.decode_body(req) if req.method == "PUT" else codec.decode_patch(req, content_type)

        def transform(current: dict[str, Any]) -> dict[str, Any]:
            scale = _scale_of(info, current)
            if req.method == "PUT":
                new_scale = body
                rv = ((new_scale or {}).get("metadata") or {}).get("resourceVersion") if isinstance(new_scale, dict) else None
                if rv and rv != current["metadata"].get("resourceVersion"):
                    raise errors.conflict(
                        info.group_resource, t.name,
                        "the object has been modified; please apply your changes to the latest version and try again",
                        info.group,
                    )
            else:
                new_scale = apply_patch(content_type, scale, body)
            replicas = ((new_scale or {}).get("spec") or {}).get("replicas") if isinstance(new_scale, dict) else None
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise errors.invalid(
                    "Scale", t.name,
                    [FieldError("spec.replicas", f"Invalid value: {orjson.dumps(replicas).decode()}: must be greater than or equal to 0")],
                    "autoscaling",
                )
            current.setdefault("spec", {})["replicas"] = replicas
            return current

        inner = Target(info, t.namespace, t.name, "")
        body, _ = await self._update(req, inner, transform)
        return json_response(_scale_of(info, orjson.loads(body)))

    # ---- delete -----------------------------------------------------------------

    async def delete(self, req: ApiRequest, t: Target) -> ApiResponse:
        opts = codec.decode_delete_options(req)
        result = await self._delete(t.info, t.namespace, t.name, opts, dry_run=bool(req.query.get("dryRun")))
        return json_response(result)

    async def _delete(self, info: ResourceInfo, namespace: str, name: str, opts: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        preconditions = opts.get("preconditions") or {}
        policy = opts.get("propagationPolicy")
        if opts.get("orphanDependents") is True and not policy:
            policy = "Orphan"
        grace = opts.get("gracePeriodSeconds")
        if info.key == "namespaces" and name in registry.SYSTEM_NAMESPACES:
            raise errors.forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted')

        def mutate(current: dict[str, Any] | None) -> Any:
            if current is None:
                raise errors.not_found(info.group_resource, name, info.group, info.plural)
            meta = current["metadata"]
            if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
                raise errors.conflict(
                    info.group_resource, name,
                    f'Precondition failed: UID in precondition: {preconditions["uid"]}, UID in object meta: {meta.get("uid")}',
                    info.group,
                )
            if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != meta.get("resourceVersion"):
                raise errors.conflict(
                    info.group_resource, name,
                    f'Precondition failed: ResourceVersion in precondition: {preconditions["resourceVersion"]}, ResourceVersion in object meta: {meta.get("resourceVersion")}',
                    info.group,
                )
            finalizers = list(meta.get("finalizers") or [])
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            already = bool(meta.get("deletionTimestamp"))
            if info.key == "namespaces":
                if not already:
                    meta["deletionTimestamp"] = now_rfc3339()
                    current.setdefault("status", {})["phase"] = "Terminating"
                if (current.get("spec") or {}).get("finalizers") or finalizers:
                    meta["finalizers"] = finalizers or meta.get("finalizers")
                    if not meta.get("finalizers"):
                        meta.pop("finalizers", None)
                    return current if not already else UNCHANGED_OBJECT
                return DELETE
            if info.key == "pods" and _graceful(current, grace):
                seconds = int(grace if grace is not None else (current.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
                if already and seconds >= int(meta.get("deletionGracePeriodSeconds") or 0):
                    return UNCHANGED_OBJECT
                meta["deletionTimestamp"] = _rfc3339_in(seconds)
                meta["deletionGracePeriodSeconds"] = seconds
                if finalizers:
                    meta["finalizers"] = finalizers
                return current
            if finalizers:
                # nothing left to wait for but the finalizers: grace is over
                changed = (
                    finalizers != (meta.get("finalizers") or [])
                    or not already
                    or meta.get("deletionGracePeriodSeconds") != 0
                )
                meta["finalizers"] = finalizers
                if not already:
                    meta["deletionTimestamp"] = now_rfc3339()
                meta["deletionGracePeriodSeconds"] = 0
                return current if changed else UNCHANGED_OBJECT
            return DELETE

        if dry_run:
            stored = self.store.get(info.key, namespace, name)
            mutate(decode(stored) if stored else None)
            return decode(stored) if stored else {}
        event = await self.store.write(info.key, namespace, name, mutate)
        if event.type == DELETED:
            if info.key == "services":
                self.strategy.release_service(decode(event.obj))
            details: dict[str, Any] = {"name": name, "kind": info.plural}
            if info.group:
                details["group"] = info.group
            obj = decode(event.obj)
            uid = (obj.get("metadata") or {}).get("uid")
            if uid:
                details["uid"] = uid
            return success_status(details)
        return decode(event.obj)

    async def delete_collection(self, req: ApiRequest, t: Target) -> ApiResponse:
        label_sel, field_sel = self._selectors(req, t.info)
        opts = codec.decode_delete_options(req)
        items = [
            s for s in self.store.list(t.info.key, t.namespace or None)
            if (label_sel is None or label_sel.matches(s.labels)) and (field_sel is None or field_sel.matches(s.fields))
        ]
        deleted = []
        for s in items:
            try:
                deleted.append(await self._delete(t.info, s.namespace, s.name, opts, dry_run=bool(req.query.get("dryRun"))))
            except StatusError as e:
                if e.code != 404:
                    raise
        return json_response({
            "kind": t.info.list_kind, "apiVersion": t.info.api_version,
            "metadata": {"resourceVersion": str(self.store.revision)},
            "items": [d for d in deleted if d.get("kind") != "Status"],
        })

    # ---- pod subresources -------------------------------------------------------

    async def bind(self, req: ApiRequest, t: Target, pod_name: str) -> ApiResponse:
        binding = codec.decode_body(req)
        if not isinstance(binding, dict):
            raise errors.bad_request("the body must be a Binding")
        name = pod_name or ((binding.get("metadata") or {}).get("name") or "")
        node = ((binding.get("target") or {}).get("name")) if isinstance(binding.get("target"), dict) else None
        if not node:
            raise errors.invalid("Binding", name, [FieldError("target.name", "Required value")])
        pods = registry.by_key("pods")

        def mutate(current: dict[str, Any] | None) -> Any:
            if current is None:
                raise errors.not_found("pods", name, "", "pods")
            meta = current["metadata"]
            uid = (binding.get("metadata") or {}).get("uid")
            if uid and uid != meta.get("uid"):
                raise errors.conflict("pods", name, "the UID in the binding does not match the pod", "")
            if meta.get("deletionTimestamp"):
                raise errors.conflict("pods", name, "pod is being deleted, cannot be assigned to a host", "")
            spec = current.setdefault("spec", {})
            if spec.get("nodeName"):
                raise errors.conflict("pods", name, f"pod {name} is already assigned to node \"{spec['nodeName']}\"", "")
            spec["nodeName"] = node
            status = current.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now_rfc3339()})
            status["conditions"] = conditions
            return current

        await self.store.write(pods.key, t.namespace, name, mutate)
        return json_response(success_status(), 201)

    async def evict(self, req: ApiRequest, t: Target) -> ApiResponse:
        eviction = codec.decode_body(req)
        opts = (eviction.get("deleteOptions") or {}) if isinstance(eviction, dict) else {}
        # PodDisruptionBudgets are not served, so every eviction is allowed.
        await self._delete(t.info, t.namespace, t.name, opts)
        return json_response(success_status(), 201)

    async def logs(self, req: ApiRequest, t: Target) -> ApiResponse:
        pod = self._get_obj(t)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = req.query.get("container") or (containers[0] if len(containers) == 1 else "")
        if not container:
            raise errors.bad_request(
                f"a container name must be specified for pod {t.name}, choose one of: [{' '.join(str(c) for c in containers)}]"
            )
        if container not in containers and container not in [
            c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []
        ]:
            raise errors.bad_request(f"container {container} is not valid for pod {t.name}")
        if self.kubelet_logs is None or not (pod.get("spec") or {}).get("nodeName"):
            raise errors.bad_request(f'container "{container}" in pod "{t.name}" is waiting to start: no node runs it yet')
        return await self.kubelet_logs(pod, container, req)


def _graceful(pod: dict[str, Any], grace: Any) -> bool:
    """Pods on a node are deleted gracefully: the kubelet stops them, then deletes."""
    if grace is not None and int(grace) == 0:
        return False
    spec = pod.get("spec") or {}
    phase = (pod.get("status") or {}).get("phase")
    return bool(spec.get("nodeName")) and phase not in _TERMINAL_PHASES


def _ready_to_delete(info: ResourceInfo, obj: dict[str, Any]) -> bool:
    meta = obj.get("metadata") or {}
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if info.key == "namespaces":
        return not (obj.get("spec") or {}).get("finalizers")
    if info.key == "pods":
        # a pod still in its grace period goes only when its kubelet deletes it with
        # grace 0; once grace is over, the last finalizer leaving deletes it
        return int(meta.get("deletionGracePeriodSeconds") or 0) == 0
    return True


def _rfc3339_in(seconds: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _patch_rv(patch: Any) -> str | None:
    if isinstance(patch, dict):
        meta = patch.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("resourceVersion"), str):
            return meta["resourceVersion"]
    return None


def _scale_of(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = spec.get("selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op = expr.get("operator", "")
        key = expr.get("key", "")
        values = ",".join(sorted(expr.get("values") or []))
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key, "DoesNotExist": f"!{key}"}.get(op, key))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {"replicas": status.get("replicas", 0), "selector": ",".join(parts)},
    }


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(_NAME_CHARS) for _ in range(n))


