"""OpenAPI v3 documents: the `/openapi/v3` index and one document per group version.

kubectl's `apply` and `edit` read the document of an object's group version to learn that
the server validates fields itself (a `fieldValidation` query parameter on the kind's PATCH
operation), and compute client-side apply patches from its component schemas; `explain`
finds the kind through the operations' `x-kubernetes-group-version-kind` and prints from
the schemas. Documents are built from the registry and `tuik8s.api.schema` once, serialized
once, and served as bytes; each URL in the index carries the document's hash, so kubectl
caches a document until the hash changes, and a hashed URL may be cached forever.

The first build takes about a second (most of it importing the `kubernetes` models):
`build()` is meant for `asyncio.to_thread` at server start, and the aiohttp handlers here
wait for it off the event loop when a request comes first.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import orjson
from aiohttp import web

from tuik8s.api import registry, schema
from tuik8s.api.registry import ResourceInfo, Subresource

_lock = threading.Lock()
_documents: dict[str, dict[str, Any]] | None = None
_bytes: dict[str, bytes] = {}
_hashes: dict[str, str] = {}
_index: dict[str, Any] = {}
_index_bytes: bytes = b""
_followers: list[tuple[Callable[[], bool], Callable[[], None]]] = []

_CONNECT = ("exec", "attach", "portforward", "proxy")
_JSON = "application/json"


# --- public surface ------------------------------------------------------------------------


def build() -> None:
    """Build, serialize and hash every document once; safe from several threads."""
    global _documents, _index_bytes
    if _documents is not None:
        return
    with _lock:
        if _documents is not None:
            return
        schema.build()
        docs = {path: _document(path) for path in _paths()}
        for path, doc in docs.items():
            body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
            _bytes[path] = body
            _hashes[path] = hashlib.sha512(body).hexdigest().upper()
        _index.update({"paths": {
            path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hashes[path]}"}
            for path in docs
        }})
        _index_bytes = orjson.dumps(_index)
        _documents = docs


def is_built() -> bool:
    return _documents is not None


async def ensure_built() -> None:
    """Build in a worker thread, so the event loop never waits for the model import.

    Builders registered with `also_build` (the `/openapi/v2` document, derived from these)
    run in the same thread right after, so the server's warm-up covers them too.
    """
    if _documents is None or any(not ready() for ready, _ in _followers):
        await asyncio.to_thread(_build_all)


def also_build(is_ready: Callable[[], bool], builder: Callable[[], None]) -> None:
    """Register a document derived from these, built by `ensure_built` after them."""
    if (is_ready, builder) not in _followers:
        _followers.append((is_ready, builder))


def _build_all() -> None:
    build()
    for _, builder in list(_followers):
        builder()


def v3_index() -> dict[str, Any]:
    """`{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}, ...}}`."""
    build()
    return _index


def v3_index_bytes() -> bytes:
    build()
    return _index_bytes


def v3_group_version(path: str) -> dict[str, Any] | None:
    """The document for `api/v1`, `apis/apps/v1` (or `api`, `apis`, `apis/apps`); None if
    the server has no such document. Shared and cached: do not mutate it."""
    build()
    assert _documents is not None
    return _documents.get(path.strip("/"))


def v3_group_version_bytes(path: str) -> bytes | None:
    """`v3_group_version` serialized (keys sorted, compact): what the server sends."""
    build()
    return _bytes.get(path.strip("/"))


def document_hash(path: str) -> str:
    """The stable hex digest (SHA-512, upper case, as upstream) of a document's bytes."""
    build()
    return _hashes[path.strip("/")]


def response_headers(path: str, requested_hash: str | None) -> dict[str, str]:
    """Caching headers for a document response, as upstream sets them.

    A URL whose hash matches may be cached for good (`public, immutable`, a year's Expires);
    without a hash the document can change, so it is not cached.
    """
    headers = {"Content-Type": _JSON, "Etag": f'"{document_hash(path)}"', "Vary": "Accept"}
    if requested_hash:
        headers["Cache-Control"] = "public, immutable"
        headers["Expires"] = formatdate(_year_from_now(), usegmt=True)
    else:
        headers["Cache-Control"] = "no-cache, private"
    return headers


async def handle_index(request: web.Request) -> web.Response:
    """GET /openapi/v3."""
    await ensure_built()
    return web.Response(body=_index_bytes, headers={
        "Content-Type": _JSON, "Cache-Control": "no-cache, private"})


async def handle_document(request: web.Request) -> web.StreamResponse:
    """GET /openapi/v3/{path}: 404 if unknown, 301 to the current hash if a stale one."""
    await ensure_built()
    path = request.match_info["path"].strip("/")
    body = _bytes.get(path)
    if body is None:
        return web.json_response({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "the server could not find the requested resource",
            "reason": "NotFound", "details": {}, "code": 404,
        }, status=404)
    requested = request.query.get("hash")
    if requested and requested != _hashes[path]:
        raise web.HTTPMovedPermanently(_index["paths"][path]["serverRelativeURL"])
    headers = response_headers(path, requested)
    if request.headers.get("If-None-Match") == headers["Etag"]:
        return web.Response(status=304, headers={k: v for k, v in headers.items()
                                                 if k != "Content-Type"})
    return web.Response(body=body, headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi/v3", handle_index)
    app.router.add_get("/openapi/v3/{path:.+}", handle_document)


# --- documents -----------------------------------------------------------------------------


def _year_from_now() -> float:
    return time.time() + 365 * 24 * 3600


def _paths() -> list[str]:
    """Every document the index lists: discovery roots, groups, then group versions."""
    paths = ["api", "apis"]
    for group, _ in registry.group_versions():
        if group and f"apis/{group}" not in paths:
            paths.append(f"apis/{group}")
    for group, version in registry.group_versions():
        paths.append(f"apis/{group}/{version}" if group else f"api/{version}")
    return paths


def _document(path: str) -> dict[str, Any]:
    parts = path.split("/")
    if path == "api":
        paths = {"/api/": _discovery_path("getCoreAPIVersions", "get available API versions",
                                          "APIVersions", "core")}
    elif path == "apis":
        paths = {"/apis/": _discovery_path("getAPIVersions", "get available API versions",
                                           "APIGroupList", "apis")}
    elif parts[0] == "apis" and len(parts) == 2:
        group = parts[1]
        paths = {f"/apis/{group}/": _discovery_path(
            f"get{_pascal(group)}APIGroup", "get information of a group", "APIGroup",
            group.split(".")[0])}
    else:
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        paths = {}
        for info in registry.resources_in(group, version):
            paths.update(_resource_paths(info))
        paths = dict(sorted(paths.items()))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": _referenced_schemas(paths)},
    }


def _referenced_schemas(paths: dict[str, Any]) -> dict[str, Any]:
    all_schemas = schema.schemas()
    wanted: set[str] = set()
    stack = list(_refs_in(paths))
    while stack:
        name = stack.pop()
        if name in wanted or name not in all_schemas:
            continue
        wanted.add(name)
        stack.extend(_refs_in(all_schemas[name]))
    return {name: all_schemas[name] for name in sorted(wanted)}


def _refs_in(value: Any) -> list[str]:
    found: list[str] = []
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            target = current.get("$ref")
            if isinstance(target, str) and target.startswith(schema.REF_PREFIX):
                found.append(target[len(schema.REF_PREFIX):])
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return found


def _discovery_path(operation_id: str, description: str, kind: str, tag: str) -> dict[str, Any]:
    return {"get": {
        "description": description,
        "operationId": operation_id,
        "responses": {"200": _content(_meta_ref(kind), "OK"),
                      "401": {"description": "Unauthorized"}},
        "tags": [tag],
    }}


def _meta_ref(kind: str) -> dict[str, str]:
    return schema.ref(f"{schema.META}.{kind}")


def _pascal(group: str) -> str:
    return "".join(part.capitalize() for part in group.split(".")[0].split("-")) or "Core"


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


def _content(body_schema: dict[str, Any], description: str,
             types: tuple[str, ...] = (_JSON, "application/yaml")) -> dict[str, Any]:
    return {"content": {t: {"schema": body_schema} for t in types}, "description": description}


def _kind_ref(group: str, version: str, kind: str) -> dict[str, Any]:
    name = schema.schema_name(group, version, kind)
    return schema.ref(name) if name else {"type": "object"}


def _param(name: str, description: str, kind: str = "string", where: str = "query",
           required: bool = False) -> dict[str, Any]:
    param: dict[str, Any] = {"description": description, "in": where, "name": name,
                             "schema": {"type": kind, "uniqueItems": True}}
    if required:
        param["required"] = True
    return param


_PRETTY = _param("pretty", "If 'true', the output is pretty printed.")
_NAMESPACE = _param("namespace", "object name and auth scope, such as for teams and projects",
                    where="path", required=True)

_DRY_RUN = _param("dryRun", "When present, the request is validated and processed but not "
                  "persisted. The only valid value is All.")
_FIELD_MANAGER = _param("fieldManager", "A name for the actor or entity making these changes, "
                        "recorded in managedFields. Required for apply patches.")
_FIELD_VALIDATION = _param(
    "fieldValidation",
    "How the server treats unknown or duplicate fields in the request body (POST, PUT, "
    "PATCH). Ignore: drop them silently. Warn (the default): drop them and report each in "
    "a Warning response header. Strict: reject the request with a BadRequest error that "
    "names every such field.")
_FORCE = _param("force", "Force an apply patch: take over the fields other managers own. "
                "Must be unset for other patch types.", kind="boolean")

_LIST_PARAMS = [
    _param("allowWatchBookmarks", "Ask for BOOKMARK events in a watch.", kind="boolean"),
    _param("continue", "The continue token of the previous page of a chunked list."),
    _param("fieldSelector", "Only return objects whose fields match, e.g. "
           "metadata.name=web or spec.nodeName=node1."),
    _param("labelSelector", "Only return objects whose labels match, e.g. app=web,tier!=db."),
    _param("limit", "The most objects to return in one page.", kind="integer"),
    _param("resourceVersion", "Which version of the data to serve or to watch from."),
    _param("resourceVersionMatch", "How resourceVersion applies to a list: Exact or "
           "NotOlderThan."),
    _param("sendInitialEvents", "Start a watch with synthetic ADDED events for the current "
           "state.", kind="boolean"),
    _param("timeoutSeconds", "End a list or watch call after this many seconds.",
           kind="integer"),
    _param("watch", "Watch for changes to the described objects instead of listing them.",
           kind="boolean"),
]
_DELETE_PARAMS = [
    _DRY_RUN,
    _param("gracePeriodSeconds", "Seconds before the object is deleted; 0 deletes at once.",
           kind="integer"),
    _param("ignoreStoreReadErrorWithClusterBreakingPotential", "Delete an object that can "
           "not be read from storage. Dangerous.", kind="boolean"),
    _param("orphanDependents", "Deprecated: use propagationPolicy.", kind="boolean"),
    _param("propagationPolicy", "How dependents are garbage collected: Orphan, Background "
           "or Foreground."),
]
_LOG_PARAMS = [
    _param("container", "The container to stream logs from; needed when the pod has "
           "several."),
    _param("follow", "Follow the log stream.", kind="boolean"),
    _param("insecureSkipTLSVerifyBackend", "Do not verify the serving certificate of the "
           "kubelet.", kind="boolean"),
    _param("limitBytes", "Stop after this many bytes.", kind="integer"),
    _param("previous", "The logs of the previous, terminated, container.", kind="boolean"),
    _param("sinceSeconds", "Only logs newer than this many seconds.", kind="integer"),
    _param("stream", "Which stream to return: All, Stdout or Stderr."),
    _param("tailLines", "Only this many lines from the end of the log.", kind="integer"),
    _param("timestamps", "Prefix every line with an RFC 3339 timestamp.", kind="boolean"),
]
_CONNECT_PARAMS = {
    "exec": [
        _param("command", "The command to run, one argument per parameter."),
        _param("container", "The container to run the command in."),
        _param("stderr", "Redirect the standard error stream.", kind="boolean"),
        _param("stdin", "Redirect the standard input stream.", kind="boolean"),
        _param("stdout", "Redirect the standard output stream.", kind="boolean"),
        _param("tty", "Allocate a terminal.", kind="boolean"),
    ],
    "attach": [
        _param("container", "The container to attach to."),
        _param("stderr", "Stream standard error.", kind="boolean"),
        _param("stdin", "Stream standard input.", kind="boolean"),
        _param("stdout", "Stream standard output.", kind="boolean"),
        _param("tty", "The attached process has a terminal.", kind="boolean"),
    ],
    "portforward": [_param("ports", "The pod ports to forward.", kind="integer")],
}
_CONNECT_KINDS = {"exec": "PodExecOptions", "attach": "PodAttachOptions",
                  "portforward": "PodPortForwardOptions", "proxy": "PodProxyOptions"}

_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
                "application/merge-patch+json", "application/strategic-merge-patch+json")


class _Ops:
    """Operation builder for one resource: ids, tags and GVK as upstream spells them."""

    def __init__(self, info: ResourceInfo) -> None:
        self.info = info
        self.gv = f"{_pascal(info.group)}{info.version[:1].upper()}{info.version[1:]}"
        self.tag = f"{(info.group.split('.')[0] or 'core')}_{info.version}"
        self.body = _kind_ref(info.group, info.version, info.kind)
        self.list_body = _kind_ref(info.group, info.version, info.list_kind)
        self.gvk = _gvk(info.group, info.version, info.kind)

    def op_id(self, verb: str, suffix: str = "", namespaced: bool | None = None,
              all_namespaces: bool = False) -> str:
        ns = self.info.namespaced if namespaced is None else namespaced
        scope = "Namespaced" if ns and not all_namespaces else ""
        tail = "ForAllNamespaces" if all_namespaces else ""
        return f"{verb}{self.gv}{scope}{self.info.kind}{suffix}{tail}"

    def op(self, action: str, op_id: str, description: str, responses: dict[str, Any], *,
           params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None,
           gvk: dict[str, str] | None = None) -> dict[str, Any]:
        operation: dict[str, Any] = {"description": description, "operationId": op_id}
        if params:
            operation["parameters"] = params
        if body is not None:
            operation["requestBody"] = body
        responses = dict(responses)
        responses["401"] = {"description": "Unauthorized"}
        operation["responses"] = responses
        operation["tags"] = [self.tag]
        operation["x-kubernetes-action"] = action
        operation["x-kubernetes-group-version-kind"] = gvk or self.gvk
        return operation


def _write_body(body_schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"*/*": {"schema": body_schema}}, "required": True}


def _patch_body() -> dict[str, Any]:
    return {"content": {t: {"schema": schema.ref(schema.PATCH)} for t in _PATCH_TYPES},
            "required": True}


def _resource_paths(info: ResourceInfo) -> dict[str, Any]:
    ops = _Ops(info)
    prefix = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    scoped = f"{prefix}/namespaces/{{namespace}}" if info.namespaced else prefix
    collection = f"{scoped}/{info.plural}"
    item = f"{collection}/{{name}}"
    verbs = set(info.verbs)
    kind = info.kind
    status_ref = _meta_ref("Status")
    scope_params = [_NAMESPACE] if info.namespaced else []
    name_param = _param("name", f"name of the {kind}", where="path", required=True)
    out: dict[str, Any] = {}

    coll: dict[str, Any] = {}
    if "list" in verbs:
        coll["get"] = ops.op("list", ops.op_id("list"), f"list or watch objects of kind {kind}",
                             {"200": _content(ops.list_body, "OK", (
                                 _JSON, "application/yaml", "application/json;stream=watch"))},
                             params=_LIST_PARAMS)
    if "create" in verbs:
        coll["post"] = ops.op("post", ops.op_id("create"), f"create a {kind}", {
            "200": _content(ops.body, "OK"), "201": _content(ops.body, "Created"),
            "202": _content(ops.body, "Accepted")},
            params=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION], body=_write_body(ops.body))
    if "deletecollection" in verbs:
        coll["delete"] = ops.op(
            "deletecollection", f"delete{ops.gv}Collection{'Namespaced' if info.namespaced else ''}{kind}",
            f"delete collection of {kind}", {"200": _content(status_ref, "OK")},
            params=_DELETE_PARAMS + _LIST_PARAMS,
            body={"content": {"*/*": {"schema": _meta_ref("DeleteOptions")}}})
    if coll:
        coll["parameters"] = scope_params + [_PRETTY]
        out[collection] = coll

    if info.namespaced and "list" in verbs:
        out[f"{prefix}/{info.plural}"] = {
            "get": ops.op("list", ops.op_id("list", all_namespaces=True),
                          f"list or watch objects of kind {kind}",
                          {"200": _content(ops.list_body, "OK", (
                              _JSON, "application/yaml", "application/json;stream=watch"))}),
            "parameters": _LIST_PARAMS + [_PRETTY],
        }

    one: dict[str, Any] = {}
    if "get" in verbs:
        one["get"] = ops.op("get", ops.op_id("read"), f"read the specified {kind}",
                            {"200": _content(ops.body, "OK")})
    if "update" in verbs:
        one["put"] = ops.op("put", ops.op_id("replace"), f"replace the specified {kind}", {
            "200": _content(ops.body, "OK"), "201": _content(ops.body, "Created")},
            params=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION], body=_write_body(ops.body))
    if "patch" in verbs:
        one["patch"] = ops.op("patch", ops.op_id("patch"),
                              f"partially update the specified {kind}", {
            "200": _content(ops.body, "OK"), "201": _content(ops.body, "Created")},
            params=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _FORCE], body=_patch_body())
    if "delete" in verbs:
        one["delete"] = ops.op("delete", ops.op_id("delete"), f"delete a {kind}", {
            "200": _content(status_ref, "OK"), "202": _content(status_ref, "Accepted")},
            params=_DELETE_PARAMS,
            body={"content": {"*/*": {"schema": _meta_ref("DeleteOptions")}}})
    if one:
        one["parameters"] = [name_param] + scope_params + [_PRETTY]
        out[item] = one

    for sub in info.subresources:
        ops_for_sub = _subresource_ops(ops, sub)
        if ops_for_sub:
            ops_for_sub["parameters"] = [name_param] + scope_params + [_PRETTY]
            out[f"{item}/{sub.name}"] = ops_for_sub
    return out


def _subresource_ops(ops: _Ops, sub: Subresource) -> dict[str, Any]:
    kind = ops.info.kind
    suffix = "".join(p.capitalize() for p in sub.name.split("-"))
    if sub.name == "portforward":
        suffix = "Portforward"
    out: dict[str, Any] = {}
    if sub.name in _CONNECT:
        gvk = _gvk(sub.group, sub.version, _CONNECT_KINDS.get(sub.name, sub.kind))
        text = {"200": _content({"type": "string"}, "OK", ("*/*",))}
        params = _CONNECT_PARAMS.get(sub.name, [])
        for verb, method in (("get", "Get"), ("create", "Post")):
            if verb in sub.verbs:
                scope = "Namespaced" if ops.info.namespaced else ""
                out[method.lower()] = ops.op(
                    "connect", f"connect{ops.gv}{method}{scope}{kind}{suffix}",
                    f"connect {method.upper()} requests to {sub.name} of {kind}", text,
                    params=params, gvk=gvk)
        return out
    if sub.name == "log":
        out["get"] = ops.op("get", ops.op_id("read", "Log"), f"read log of the specified {kind}",
                            {"200": _content({"type": "string"}, "OK", ("text/plain",))},
                            params=_LOG_PARAMS)
        return out
    gvk = _gvk(sub.group, sub.version, sub.kind)
    body = _kind_ref(sub.group, sub.version, sub.kind)
    what = f"{sub.name} of the specified {kind}"
    if "get" in sub.verbs:
        out["get"] = ops.op("get", ops.op_id("read", suffix), f"read {what}",
                            {"200": _content(body, "OK")}, gvk=gvk)
    if "update" in sub.verbs:
        out["put"] = ops.op("put", ops.op_id("replace", suffix), f"replace {what}", {
            "200": _content(body, "OK"), "201": _content(body, "Created")},
            params=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION], body=_write_body(body),
            gvk=gvk)
    if "patch" in sub.verbs:
        out["patch"] = ops.op("patch", ops.op_id("patch", suffix), f"partially update {what}", {
            "200": _content(body, "OK"), "201": _content(body, "Created")},
            params=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _FORCE], body=_patch_body(),
            gvk=gvk)
    if "create" in sub.verbs:
        out["post"] = ops.op("post", ops.op_id("create", suffix), f"create {sub.kind} of a {kind}", {
            "200": _content(body, "OK"), "201": _content(body, "Created"),
            "202": _content(body, "Accepted")},
            params=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION], body=_write_body(body),
            gvk=gvk)
    return out
