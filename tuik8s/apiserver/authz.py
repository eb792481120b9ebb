"""Who may do what: the authorizer every HTTP request passes after authentication.

Three kinds of caller, as a cluster without RBAC objects would have them:

- `system:masters` (the admin token, the control plane's own components): everything.
- `tuik8s:readers` (`tuik8s token create --read-only`): get, list and watch everything
  except Secrets, and read pod logs, as upstream's `view` ClusterRole.
- `system:nodes` with user `system:node:<name>` (each lab node's kubelet and kube-proxy):
  upstream's Node authorizer and NodeRestriction admission in one place. A node reads
  what a kubelet and a kube-proxy need (nodes, pods, services, endpoints, endpointslices),
  writes only its own Node (and its status) and its own Lease in `kube-node-lease`, the
  status of pods bound to it, deletes pods bound to it (the kubelet finishes every
  deletion with grace 0), records events, and gets a Secret or ConfigMap only when a pod
  bound to it refers to that object. On its own Node it may not change taints nor set
  labels that would steer workloads to it (NodeRestriction's label rules). "Bound to it" is read from the store at the time of
  the request, as the Node authorizer's graph would answer it.

Anyone else authenticated is refused everything but discovery, as upstream without a
binding. Denials are a 403 `Forbidden` Status with upstream's message shape, e.g.
`nodes "node2" is forbidden: node "node1" is not allowed to modify node "node2"`.

Discovery, OpenAPI and health (non-resource paths) are open to every authenticated user,
as upstream's `system:discovery` role; `/metrics` to admins and readers.

Exec, attach and port-forward over a WebSocket start with a GET (verb `get`), where SPDY
posts (verb `create`). As upstream with AuthorizePodWebsocketUpgradeCreatePermission (on
by default), a `pods/exec|attach|portforward` request by any other verb must be allowed
`create` too, so being allowed to read a subresource never opens a shell. That denial is
upstream's `pods "NAME" is forbidden: <why>`, `why` naming the `create` that is missing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from tuik8s.api import errors
from tuik8s.api.patch import APPLY_PATCH, apply_patch
from tuik8s.apiserver import codec
from tuik8s.apiserver.request import User
from tuik8s.store.base import Store

MASTERS = "system:masters"
READERS = "tuik8s:readers"
NODES = "system:nodes"
NODE_PREFIX = "system:node:"
NODE_LEASE_NAMESPACE = "kube-node-lease"
READ_VERBS = frozenset({"get", "list", "watch"})
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"

# (group, resource) a node may get/list/watch: the kubelet's and kube-proxy's informers
_NODE_READABLE = frozenset({
    ("", "nodes"), ("", "pods"), ("", "services"), ("", "endpoints"),
    ("discovery.k8s.io", "endpointslices"),
})
_EVENTS = frozenset({("", "events"), ("events.k8s.io", "events")})
# the pod subresources a stream is opened on: `create` is needed whatever the method
CONNECT_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do, as upstream's authorizer.Attributes."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


def attributes(method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """Parse a request the way kube-apiserver's RequestInfoFactory does."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return Attributes(verb=method.lower(), path=path)
    namespace = ""
    # /api/v1/namespaces/NAME[/status|/finalize] is the Namespace itself
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    sub = "/".join(rest[2:])
    watching = str(query.get("watch", "")).lower() in ("true", "1")
    verb = {
        "POST": "create", "PUT": "update", "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }.get(method, "")
    if method == "GET":
        verb = "watch" if watching else ("get" if name else "list")
    if not verb:
        verb = method.lower()
    return Attributes(verb, group, resource, sub, namespace, name, path)


def needs_create_too(attrs: Attributes) -> bool:
    """A `pods/exec|attach|portforward` request not already authorized as `create` (a
    WebSocket's GET): upstream asks the authorizer for `create` as well."""
    return (attrs.verb != "create" and (attrs.group, attrs.resource) == ("", "pods")
            and attrs.subresource in CONNECT_SUBRESOURCES)


class Denied(Exception):
    """The request is refused; `message` is what follows `is forbidden: `."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.name = name  # the object's name when the path has none (a create)


def forbidden(attrs: Attributes, why: str) -> errors.StatusError:
    """The 403 Status upstream sends: `<resource> "<name>" is forbidden: <why>`."""
    if not attrs.is_resource:
        return errors.forbidden(f'forbidden: {why}')
    what = attrs.resource + (f".{attrs.group}" if attrs.group else "")
    err = errors.forbidden(f'{what} "{attrs.name}" is forbidden: {why}' if attrs.name else f"{what} is forbidden: {why}")
    details: dict[str, Any] = {"kind": attrs.resource}
    if attrs.name:
        details["name"] = attrs.name
    if attrs.group:
        details["group"] = attrs.group
    err.details = details
    return err


def rbac_denial(user: User, attrs: Attributes, reason: str = "") -> str:
    """Upstream's wording when no rule allows a request."""
    if not attrs.is_resource:
        text = f'User "{user.name}" cannot {attrs.verb} path "{attrs.path}"'
    else:
        resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        text = f'User "{user.name}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.group}"'
        text += f' in the namespace "{attrs.namespace}"' if attrs.namespace else " at the cluster scope"
    return f"{text}: {reason}" if reason else text


BodyReader = Callable[[], Awaitable[bytes]]


class Authorizer:
    """Decides every request; reads the store only to answer "is this bound to that node"."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def unrestricted(user: User) -> bool:
        """Admins may do anything: the hot path skips parsing the request for them."""
        return MASTERS in user.groups

    async def authorize(self, user: User, attrs: Attributes, read_body: BodyReader, content_type: str = "") -> None:
        """Return if `user` may do `attrs`; raise a 403 `StatusError` if not. `read_body`
        and `content_type` are read only for a node's writes that depend on the body."""
        groups = set(user.groups)
        if MASTERS in groups:
            return
        try:
            await self._decide(user, groups, attrs, read_body, content_type)
            if needs_create_too(attrs):
                # upstream's ensureAuthorizedForVerb: the same request, asked again as `create`
                await self._decide(user, groups, replace(attrs, verb="create"), read_body, content_type)
        except Denied as e:
            if e.name and not attrs.name:
                attrs = replace(attrs, name=e.name)
            raise forbidden(attrs, e.message) from None

    async def _decide(
        self, user: User, groups: set[str], attrs: Attributes, read_body: BodyReader, content_type: str,
    ) -> None:
        if not attrs.is_resource:
            self._non_resource(user, groups, attrs)
        elif NODES in groups and user.name.startswith(NODE_PREFIX):
            await self._node(user.name[len(NODE_PREFIX):], user, attrs, read_body, content_type)
        elif READERS in groups:
            self._reader(user, attrs)
        else:
            raise Denied(rbac_denial(user, attrs))

    # ---- readers and the rest --------------------------------------------------------

    @staticmethod
    def _non_resource(user: User, groups: set[str], attrs: Attributes) -> None:
        if attrs.path.rstrip("/") == "/metrics" and not groups & {READERS}:
            raise Denied(rbac_denial(user, attrs))
        if attrs.verb not in ("get", "head"):
            raise Denied(rbac_denial(user, attrs))

    @staticmethod
    def _reader(user: User, attrs: Attributes) -> None:
        """Upstream's `view`: read everything but Secrets; pod logs too."""
        if attrs.verb not in READ_VERBS or (attrs.group, attrs.resource) == ("", "secrets"):
            raise Denied(rbac_denial(user, attrs))
        if attrs.subresource and attrs.subresource not in ("status", "log", "scale"):
            raise Denied(rbac_denial(user, attrs))

    # ---- nodes -------------------------------------------------------------------------

    async def _node(self, node: str, user: User, attrs: Attributes, read_body: BodyReader, content_type: str) -> None:
        if not node:
            raise Denied(f'could not determine node from user "{user.name}"')
        key = (attrs.group, attrs.resource)
        verb, sub = attrs.verb, attrs.subresource
        if verb in READ_VERBS and sub == "status" and key in (("", "nodes"), ("", "pods")):
            return  # the same data as the object itself (kubectl patch --subresource reads it first)
        if key == ("", "nodes"):
            if verb in READ_VERBS and not sub:
                return
            if verb in ("create", "update", "patch", "delete") and sub in ("", "status"):
                name = attrs.name or (await _body_name(read_body) if verb == "create" else "")
                if name != node:
                    raise Denied(f'node "{node}" is not allowed to modify node "{name}"', name)
                if not sub and verb in ("create", "update", "patch"):
                    await self._own_node_change(node, verb, read_body, content_type)
                return
        elif key == ("", "pods"):
            if verb in READ_VERBS and not sub:
                return
            if sub == "status" and verb in ("update", "patch"):
                if self._bound_to(attrs.namespace, attrs.name) != node:
                    raise Denied(f'node "{node}" can only update pod status for pods with spec.nodeName set to itself')
                return
            if not sub and verb == "delete":
                if self._bound_to(attrs.namespace, attrs.name) != node:
                    raise Denied(f'node "{node}" can only delete pods with spec.nodeName set to itself')
                return
            if sub == "eviction" and verb == "create":
                if self._bound_to(attrs.namespace, attrs.name) != node:
                    raise Denied(f"node {node} can only evict pods with spec.nodeName set to itself")
                return
            if not sub and verb == "create":
                # static pods are not run here, so there is never a mirror pod to create
                raise Denied(
                    f'pod does not have "{MIRROR_POD_ANNOTATION}" annotation, node "{node}" can only create mirror pods'
                )
        elif key in _NODE_READABLE:
            if verb in READ_VERBS and not sub:
                return
        elif key in _EVENTS:
            if verb in ("create", "update", "patch"):
                return
        elif key == ("coordination.k8s.io", "leases"):
            if verb in ("get", "create", "update", "patch", "delete"):
                if attrs.namespace != NODE_LEASE_NAMESPACE:
                    raise Denied(f'can only access leases in the "{NODE_LEASE_NAMESPACE}" namespace')
                name = attrs.name or (await _body_name(read_body) if verb == "create" else "")
                if name != node:
                    raise Denied("can only access node lease with the same name as the requesting node", name)
                return
        elif key in (("", "secrets"), ("", "configmaps")):
            if verb == "get" and not sub:
                if self._referenced_by_pod_on(node, attrs.namespace, attrs.resource, attrs.name):
                    return
                raise Denied(rbac_denial(user, attrs, f"no relationship found between node '{node}' and this object"))
        raise Denied(rbac_denial(user, attrs))

    async def _own_node_change(self, node: str, verb: str, read_body: BodyReader, content_type: str) -> None:
        """NodeRestriction: a node may not change its taints, nor set labels that steer
        workloads (node-restriction.kubernetes.io/*, or kubernetes.io / k8s.io labels that
        are not the kubelet's own). A body that does not decode passes here: the REST
        layer refuses it with a 400 that says why."""
        stored = self.store.get("nodes", "", node)
        old = orjson.loads(stored.data) if stored is not None else None
        patch_type = content_type.split(";")[0].strip()
        try:
            if verb == "patch":
                if old is None:
                    return
                body = codec.decode(await read_body(), "application/yaml" if patch_type == APPLY_PATCH else "application/json")
                new = apply_patch(patch_type, old, body)
            else:
                new = codec.decode(await read_body(), content_type or "application/json")
        except (ValueError, errors.StatusError):
            return
        if not isinstance(new, dict):
            return
        new_labels = _labels(new)
        if verb == "create" or old is None:
            bad = sorted(k for k in new_labels if _restriction_label(k))
            if bad:
                raise Denied(f'node "{node}" is not allowed to set the following labels: {", ".join(bad)}')
            return
        if (new.get("spec") or {}).get("taints") != (old.get("spec") or {}).get("taints"):
            raise Denied(f'node "{node}" is not allowed to modify taints')
        old_labels = _labels(old)
        changed = {k for k in set(new_labels) | set(old_labels) if new_labels.get(k) != old_labels.get(k)}
        bad = sorted(k for k in changed if _restriction_label(k) or (_kubernetes_label(k) and not _kubelet_label(k)))
        if bad:
            raise Denied(f'is not allowed to modify labels: {", ".join(bad)}')

    def _bound_to(self, namespace: str, name: str) -> str | None:
        stored = self.store.get("pods", namespace, name)
        if stored is None:
            return None
        return stored.fields.get("spec.nodeName") or None

    def _referenced_by_pod_on(self, node: str, namespace: str, resource: str, name: str) -> bool:
        for stored in self.store.list("pods", namespace):
            if stored.fields.get("spec.nodeName") != node:
                continue
            if (resource, name) in pod_references(orjson.loads(stored.data)):
                return True
        return False


def pod_references(pod: Mapping[str, Any]) -> set[tuple[str, str]]:
    """Every (resource, name) of a Secret or ConfigMap a pod spec names, as upstream's
    VisitPodSecretNames / VisitPodConfigmapNames."""
    spec = pod.get("spec") or {}
    refs: set[tuple[str, str]] = set()
    for ps in spec.get("imagePullSecrets") or []:
        if isinstance(ps, dict) and ps.get("name"):
            refs.add(("secrets", str(ps["name"])))
    containers: Iterable[Any] = [
        *(spec.get("initContainers") or []), *(spec.get("containers") or []), *(spec.get("ephemeralContainers") or []),
    ]
    for c in containers:
        if not isinstance(c, dict):
            continue
        for src in c.get("envFrom") or []:
            if not isinstance(src, dict):
                continue
            if isinstance(src.get("configMapRef"), dict):
                refs.add(("configmaps", str(src["configMapRef"].get("name") or "")))
            if isinstance(src.get("secretRef"), dict):
                refs.add(("secrets", str(src["secretRef"].get("name") or "")))
        for env in c.get("env") or []:
            vf = (env.get("valueFrom") or {}) if isinstance(env, dict) else {}
            if isinstance(vf.get("configMapKeyRef"), dict):
                refs.add(("configmaps", str(vf["configMapKeyRef"].get("name") or "")))
            if isinstance(vf.get("secretKeyRef"), dict):
                refs.add(("secrets", str(vf["secretKeyRef"].get("name") or "")))
    for vol in spec.get("volumes") or []:
        if not isinstance(vol, dict):
            continue
        if isinstance(vol.get("configMap"), dict):
            refs.add(("configmaps", str(vol["configMap"].get("name") or "")))
        if isinstance(vol.get("secret"), dict):
            refs.add(("secrets", str(vol["secret"].get("secretName") or "")))
        for src in (vol.get("projected") or {}).get("sources") or [] if isinstance(vol.get("projected"), dict) else []:
            if isinstance(src, dict) and isinstance(src.get("configMap"), dict):
                refs.add(("configmaps", str(src["configMap"].get("name") or "")))
            if isinstance(src, dict) and isinstance(src.get("secret"), dict):
                refs.add(("secrets", str(src["secret"].get("name") or "")))
    return refs


# upstream's kubeletapis.IsKubeletLabel: what a kubelet may set on its own Node
_KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch", "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/zone", "topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
})
_KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


def _labels(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return labels if isinstance(labels, dict) else {}


def _label_namespace(key: str) -> str:
    prefix, slash, _ = key.partition("/")
    return prefix if slash else ""


def _in(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def _restriction_label(key: str) -> bool:
    return _in(_label_namespace(key), "node-restriction.kubernetes.io")


def _kubernetes_label(key: str) -> bool:
    ns = _label_namespace(key)
    return _in(ns, "kubernetes.io") or _in(ns, "k8s.io")


def _kubelet_label(key: str) -> bool:
    return key in _KUBELET_LABELS or any(_in(_label_namespace(key), d) for d in _KUBELET_LABEL_NAMESPACES)


async def _body_name(read_body: BodyReader) -> str:
    """metadata.name of a JSON request body ("" when there is none to read)."""
    try:
        obj = orjson.loads(await read_body())
    except (orjson.JSONDecodeError, ValueError):
        return ""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""
