"""What the keys do to the cluster, as kubectl does it, over `ApiClient`.

Each function sends the requests kubectl sends for the same command (KUBECTL.md) and
returns one line saying what happened; failures are raised as `ClientError` (from the
server) or `OpError` (a refusal of our own), whose text is also one line. Nothing here
knows about Textual, so the screens stay thin and these are testable on their own.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tuik8s.api import registry
from tuik8s.client.client import ApiClient, resolve, resource_path
from tuik8s.client.errors import ApiError, ClientError, is_not_found

Obj = dict[str, Any]
FIELD_MANAGER = "tuik8s-tui"
EDIT_HEADER = (
    "# Please edit the object below. Lines beginning with a '#' will be ignored,\n"
    "# and an empty file will abort the edit. If an error occurs while saving this file will be\n"
    "# reopened with the relevant failures.\n#\n"
)


class OpError(Exception):
    """An action refused before any request (wrong kind of object, bad manifest)."""


def one_line(e: BaseException) -> str:
    """An exception as the one line the status bar shows (kubectl's wording for API errors)."""
    if isinstance(e, ApiError):
        return f"Error from server ({e.reason}): {e.message}"
    text = " ".join(str(e).split())
    if isinstance(e, (ClientError, OpError)):
        return text or type(e).__name__
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def ref(resource: str, name: str) -> str:
    """`deployment.apps/web`, as kubectl names an object in its output."""
    info = resolve(resource)
    kind = info.kind.lower()
    return f"{kind}.{info.group}/{name}" if info.group else f"{kind}/{name}"


def split_key(key: str) -> tuple[str | None, str]:
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- workloads --------------------------------------------------------------------------------


async def scale(client: ApiClient, resource: str, namespace: str | None, name: str, replicas: int) -> str:
    if replicas < 0:
        raise OpError("replicas must be 0 or more")
    await client.scale(resource, name, namespace, replicas)
    return f"{ref(resource, name)} scaled to {replicas}"


async def restart(client: ApiClient, resource: str, namespace: str | None, name: str) -> str:
    """`kubectl rollout restart` for workloads; a pod is deleted so its controller replaces it."""
    info = resolve(resource)
    if info.key == "pods":
        await client.delete("pods", name, namespace)
        return f"pod/{name} deleted (its controller re-creates it)"
    if info.key not in ("deployments.apps", "daemonsets.apps", "statefulsets.apps"):
        raise OpError(f"cannot restart a {info.kind}: restart works on Deployments, DaemonSets and Pods")
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now_rfc3339()}}}}}
    await client.patch(resource, name, patch, namespace=namespace, patch_type="strategic", field_manager="kubectl-rollout")
    return f"{ref(resource, name)} restarted"


async def delete(client: ApiClient, resource: str, namespace: str | None, name: str) -> str:
    await client.delete(resource, name, namespace, propagation_policy="Background")
    return f"{ref(resource, name)} deleted"


# ---- nodes ------------------------------------------------------------------------------------


async def cordon(client: ApiClient, node: str, unschedulable: bool = True) -> str:
    await client.patch("nodes", node, {"spec": {"unschedulable": unschedulable or None}}, patch_type="strategic")
    return f"node/{node} {'cordoned' if unschedulable else 'uncordoned'}"


def _controller(pod: Obj) -> Obj | None:
    for owner in (pod.get("metadata") or {}).get("ownerReferences") or ():
        if owner.get("controller"):
            return owner
    return None


async def drain(client: ApiClient, node: str) -> str:
    """`kubectl drain --ignore-daemonsets`: cordon, then evict every pod but DaemonSet ones.

    Mirror pods are left alone, as kubectl does. Pods no controller would re-create are
    evicted too (kubectl wants `--force` for them; the confirmation said so) and the
    result line counts them, since they are gone for good.
    """
    await cordon(client, node, True)
    pods = await client.list("pods", field_selector=f"spec.nodeName={node}", limit=500)
    evict: list[Obj] = []
    bare = 0
    for pod in pods:
        meta = pod.get("metadata") or {}
        if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}) or meta.get("deletionTimestamp"):
            continue
        owner = _controller(pod)
        if owner is not None and owner.get("kind") == "DaemonSet":
            continue
        if owner is None and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            bare += 1
        evict.append(pod)
    failed: list[str] = []
    for pod in evict:
        meta = pod["metadata"]
        try:
            await client.evict(meta.get("namespace") or "default", meta["name"])
        except ApiError as e:
            if not is_not_found(e):
                failed.append(f"{meta['name']} ({e.reason})")
    if failed:
        raise OpError(f"node/{node} cordoned; {len(evict) - len(failed)} evicted, failed: {', '.join(failed[:3])}")
    note = f"; {bare} had no controller and will not come back" if bare else ""
    return f"node/{node} drained: {len(evict)} pod{'s' if len(evict) != 1 else ''} evicted{note}"


# ---- YAML, edit, apply ------------------------------------------------------------------------


def clean(obj: Obj) -> Obj:
    """The object as `kubectl get -o yaml` shows it: without managedFields."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(obj: Obj) -> str:
    return yaml.dump(clean(obj), Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def merge_diff(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            if isinstance(old[key], dict) and isinstance(value, dict):
                patch[key] = merge_diff(old[key], value)
            else:
                patch[key] = value
    return patch


def apply_merge(target: Any, patch: Any) -> Any:
    """Apply a JSON merge patch locally (to rebase a kept edit on a fresh object)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge(out.get(key), value)
    return out


def parse_edit(text: str) -> Obj | None:
    """The edited object; None when the file is empty (the edit is aborted)."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    if not body.strip():
        return None
    try:
        obj = yaml.safe_load(body)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise OpError(f"the edited file is not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(obj, dict):
        raise OpError("the edited file must hold one object")
    return obj


def edit_text(obj: Obj, error: str | None = None) -> str:
    header = EDIT_HEADER
    if error:
        header += f"# {error}\n#\n"
    return header + to_yaml(obj)


async def save_edit(client: ApiClient, resource: str, original: Obj, edited: Obj) -> str | None:
    """PATCH the difference as a merge patch guarded by the original's resourceVersion.

    Returns None when nothing changed. A concurrent change answers 409 Conflict.
    """
    old, new = clean(original), clean(edited)
    patch = merge_diff(old, new)
    if not patch:
        return None
    meta = original.get("metadata") or {}
    if "name" in (patch.get("metadata") or {}):
        raise OpError("metadata.name cannot be changed by an edit")
    patch.setdefault("metadata", {})["resourceVersion"] = meta.get("resourceVersion")
    await client.patch(resource, meta["name"], patch, namespace=meta.get("namespace"), patch_type="merge",
                       field_manager="kubectl-edit")
    return f"{ref(resource, meta['name'])} edited"


def editor_command() -> list[str]:
    import shlex

    editor = os.environ.get("KUBE_EDITOR") or os.environ.get("EDITOR") or "vi"
    return shlex.split(editor)


def read_manifests(path: Path) -> list[Obj]:
    try:
        text = path.read_text()
    except OSError as e:
        raise OpError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise OpError(f"{path} is not a text file") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise OpError(f"{path} is not valid YAML: {getattr(e, 'problem', None) or e}") from None
    out: list[Obj] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
            out.extend(i for i in doc["items"] if isinstance(i, dict))
        elif isinstance(doc, dict):
            out.append(doc)
        else:
            raise OpError(f"{path}: every document must be an object")
    if not out:
        raise OpError(f"{path} holds no objects")
    return out


async def apply_file(client: ApiClient, path: Path, namespace: str) -> str:
    """Server-side apply of every document (created when absent, updated when present)."""
    docs = read_manifests(path)
    done: list[str] = []
    for doc in docs:
        api_version, kind = doc.get("apiVersion") or "", doc.get("kind") or ""
        info = registry.by_kind(api_version, kind)
        if info is None:
            raise OpError(f'{path}: no resource serves kind "{kind}" in "{api_version}"' + (
                f"; applied {', '.join(done)}" if done else ""))
        meta = doc.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise OpError(f"{path}: a {kind} has no metadata.name")
        ns = (meta.get("namespace") or namespace) if info.namespaced else None
        if info.namespaced:
            doc = {**doc, "metadata": {**meta, "namespace": ns}}
        await client.patch(info, name, doc, namespace=ns, patch_type="apply", field_manager=FIELD_MANAGER, force=True)
        done.append(ref(info.key, name))
    if len(done) <= 3:
        return f"applied {', '.join(done)}"
    return f"applied {len(done)} objects: {', '.join(done[:3])}, ..."


# ---- logs -------------------------------------------------------------------------------------


async def log_lines(
    client: ApiClient, namespace: str, pod: str, container: str | None, *,
    follow: bool = True, previous: bool = False, tail: int | None = 1000,
) -> AsyncIterator[str]:
    """A container's log lines, as `kubectl logs [-f] [-p]`."""
    if previous:
        query = {"previous": "true"}
        if container:
            query["container"] = container
        if tail is not None:
            query["tailLines"] = str(tail)
        path = resource_path(registry.by_key("pods"), namespace, pod, "log")
        stream = client.transport.stream("GET", path, query=query, headers={"Accept": "*/*"})
    else:
        stream = client.logs(namespace, pod, container, follow=follow, tail_lines=tail)
    async with aclosing(stream):  # type: ignore[type-var]
        async for line in stream:
            yield line.decode("utf-8", "replace").rstrip("\r")


def containers_of(pod: Obj) -> list[str]:
    spec = pod.get("spec") or {}
    return [c.get("name") or "" for c in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]
            if c.get("name")]


# ---- describe ---------------------------------------------------------------------------------


async def events_for(client: ApiClient, obj: Obj) -> list[Obj]:
    """The events about `obj`, by `involvedObject.uid` (and name, kind) as kubectl describe."""
    meta = obj.get("metadata") or {}
    uid, name, ns = meta.get("uid"), meta.get("name"), meta.get("namespace")
    selector = f"involvedObject.uid={uid},involvedObject.name={name}"
    if ns:
        selector += f",involvedObject.namespace={ns}"
    events = list(await client.list("events", ns or None, field_selector=selector, limit=500))
    if obj.get("kind") == "Node":
        # kubelets report node events with the node's name as its uid
        seen = {(e.get("metadata") or {}).get("uid") for e in events}
        more = await client.list("events", None, field_selector=f"involvedObject.kind=Node,involvedObject.name={name}", limit=500)
        events += [e for e in more if (e.get("metadata") or {}).get("uid") not in seen]
    events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or "")
    return events


def _kv(lines: list[str], key: str, value: Any, indent: int = 0) -> None:
    lines.append(f"{' ' * indent}{key + ':':<20}{value}")


def _map_lines(lines: list[str], key: str, mapping: Any, indent: int = 0) -> None:
    items = sorted((mapping or {}).items())
    if not items:
        _kv(lines, key, "<none>", indent)
        return
    first, *rest = items
    _kv(lines, key, f"{first[0]}={first[1]}", indent)
    for k, v in rest:
        lines.append(f"{' ' * indent}{'':<20}{k}={v}")


def _conditions(lines: list[str], conditions: Any) -> None:
    if not conditions:
        return
    lines.append("Conditions:")
    lines.append(f"  {'Type':<28}{'Status':<8}{'Reason':<28}Message")
    for c in conditions:
        lines.append(f"  {c.get('type', ''):<28}{c.get('status', ''):<8}{c.get('reason') or '':<28}{c.get('message') or ''}")


def _containers(lines: list[str], containers: Any, statuses: Any, title: str = "Containers") -> None:
    if not containers:
        return
    by_name = {s.get("name"): s for s in statuses or ()}
    lines.append(f"{title}:")
    for c in containers:
        lines.append(f"  {c.get('name')}:")
        _kv(lines, "Image", c.get("image") or "", 4)
        ports = ", ".join(f"{p.get('containerPort')}/{p.get('protocol') or 'TCP'}" for p in c.get("ports") or ())
        if ports:
            _kv(lines, "Ports", ports, 4)
        st = by_name.get(c.get("name"))
        if st is not None:
            state = st.get("state") or {}
            which = next(iter(state), "waiting")
            detail = state.get(which) or {}
            extra = detail.get("reason") or detail.get("startedAt") or ""
            _kv(lines, "State", f"{which.capitalize()}{'  ' + extra if extra else ''}", 4)
            _kv(lines, "Ready", st.get("ready", False), 4)
            _kv(lines, "Restart Count", st.get("restartCount", 0), 4)
        res = c.get("resources") or {}
        for part in ("limits", "requests"):
            if res.get(part):
                _kv(lines, part.capitalize(), ", ".join(f"{k}={v}" for k, v in res[part].items()), 4)


def describe_text(obj: Obj, events: list[Obj] | None, events_error: str | None = None) -> str:
    """The key fields of `obj` and its events, laid out like `kubectl describe`."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    kind = obj.get("kind") or ""
    lines: list[str] = []
    _kv(lines, "Name", meta.get("name", ""))
    if meta.get("namespace"):
        _kv(lines, "Namespace", meta["namespace"])
    _kv(lines, "Kind", f"{kind} ({obj.get('apiVersion', '')})")
    _map_lines(lines, "Labels", meta.get("labels"))
    annotations = {k: (v if len(v) < 80 else v[:77] + "...") for k, v in (meta.get("annotations") or {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
    _map_lines(lines, "Annotations", annotations)
    _kv(lines, "CreationTimestamp", meta.get("creationTimestamp", ""))
    if meta.get("deletionTimestamp"):
        _kv(lines, "DeletionTimestamp", meta["deletionTimestamp"])
    owner = _controller(obj)
    if owner is not None:
        _kv(lines, "Controlled By", f"{owner.get('kind')}/{owner.get('name')}")

    if kind == "Pod":
        _kv(lines, "Node", spec.get("nodeName") or "<none>")
        _kv(lines, "Start Time", status.get("startTime") or "<none>")
        _kv(lines, "Status", status.get("phase") or "")
        if status.get("reason") or status.get("message"):
            _kv(lines, "Reason", f"{status.get('reason') or ''} {status.get('message') or ''}".strip())
        _kv(lines, "IP", status.get("podIP") or "")
        _containers(lines, spec.get("initContainers"), status.get("initContainerStatuses"), "Init Containers")
        _containers(lines, spec.get("containers"), status.get("containerStatuses"))
        _conditions(lines, status.get("conditions"))
    elif kind in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job"):
        selector = (spec.get("selector") or {}).get("matchLabels")
        _map_lines(lines, "Selector", selector)
        if kind == "Deployment":
            want = spec.get("replicas", 1)
            _kv(lines, "Replicas", f"{want} desired | {status.get('updatedReplicas', 0)} updated | "
                f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
                f"{status.get('unavailableReplicas', 0)} unavailable")
            _kv(lines, "StrategyType", (spec.get("strategy") or {}).get("type") or "RollingUpdate")
        elif kind == "ReplicaSet":
            _kv(lines, "Replicas", f"{status.get('replicas', 0)} current / {spec.get('replicas', 1)} desired")
        elif kind == "DaemonSet":
            _kv(lines, "Desired Number", status.get("desiredNumberScheduled", 0))
            _kv(lines, "Current Number", status.get("currentNumberScheduled", 0))
            _kv(lines, "Number Ready", status.get("numberReady", 0))
        elif kind == "Job":
            _kv(lines, "Completions", spec.get("completions", "<unset>"))
            _kv(lines, "Parallelism", spec.get("parallelism", 1))
            _kv(lines, "Pods Statuses", f"{status.get('active', 0)} Active / {status.get('succeeded', 0)} Succeeded / {status.get('failed', 0)} Failed")
        template = spec.get("template") or {}
        restarted = ((template.get("metadata") or {}).get("annotations") or {}).get("kubectl.kubernetes.io/restartedAt")
        lines.append("Pod Template:")
        if restarted:
            _kv(lines, "Restarted At", restarted, 2)
        _containers(lines, (template.get("spec") or {}).get("containers"), None)
        _conditions(lines, status.get("conditions"))
    elif kind == "Node":
        _kv(lines, "Unschedulable", bool(spec.get("unschedulable")))
        taints = ", ".join(f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}" for t in spec.get("taints") or ())
        _kv(lines, "Taints", taints or "<none>")
        _kv(lines, "PodCIDR", spec.get("podCIDR") or "")
        addresses = ", ".join(f"{a.get('type')}={a.get('address')}" for a in status.get("addresses") or ())
        _kv(lines, "Addresses", addresses or "<none>")
        _map_lines(lines, "Capacity", status.get("capacity"))
        _map_lines(lines, "Allocatable", status.get("allocatable"))
        info = status.get("nodeInfo") or {}
        if info:
            _kv(lines, "Kubelet Version", info.get("kubeletVersion", ""))
            _kv(lines, "OS Image", info.get("osImage", ""))
        _conditions(lines, status.get("conditions"))
    elif kind == "Service":
        _kv(lines, "Type", spec.get("type") or "ClusterIP")
        _kv(lines, "IP", spec.get("clusterIP") or "")
        _map_lines(lines, "Selector", spec.get("selector"))
        for p in spec.get("ports") or ():
            _kv(lines, "Port", f"{p.get('name') or '<unset>'}  {p.get('port')}/{p.get('protocol') or 'TCP'} -> {p.get('targetPort', p.get('port'))}"
                + (f"  NodePort {p['nodePort']}" if p.get("nodePort") else ""))
    elif kind == "Ingress":
        _kv(lines, "Ingress Class", spec.get("ingressClassName") or "<none>")
        lines.append("Rules:")
        for rule in spec.get("rules") or ():
            for path in ((rule.get("http") or {}).get("paths") or ()):
                svc = ((path.get("backend") or {}).get("service") or {})
                port = (svc.get("port") or {})
                lines.append(f"  {rule.get('host') or '*'}{path.get('path') or '/'}  ->  {svc.get('name')}:{port.get('number') or port.get('name')}")
    elif kind == "ConfigMap":
        lines.append("Data:")
        for k, v in sorted((obj.get("data") or {}).items()):
            lines.append(f"  {k}: {len(v)} bytes")
    elif kind == "Secret":
        _kv(lines, "Type", obj.get("type") or "")
        lines.append("Data:")
        import base64
        import binascii

        for k, v in sorted((obj.get("data") or {}).items()):
            try:
                size = len(base64.b64decode(v))
            except (binascii.Error, ValueError):
                size = len(v)
            lines.append(f"  {k}: {size} bytes")
    elif kind == "Namespace":
        _kv(lines, "Status", status.get("phase") or "")
    elif kind == "Event":
        involved = obj.get("involvedObject") or {}
        _kv(lines, "Object", f"{involved.get('kind')}/{involved.get('name')}")
        _kv(lines, "Type", obj.get("type") or "")
        _kv(lines, "Reason", obj.get("reason") or "")
        _kv(lines, "Message", obj.get("message") or "")
        _kv(lines, "Count", obj.get("count") or 1)
    else:
        for key in spec:
            _kv(lines, key, _short(spec[key]))

    if kind != "Event":
        lines.append("Events:" + (f"  <unable to list: {events_error}>" if events_error else ""))
        if not events_error:
            if not events:
                lines[-1] += "  <none>"
            else:
                now = datetime.now(UTC).timestamp()
                from tuik8s.tui.views import age

                lines.append(f"  {'Type':<9}{'Reason':<24}{'Age':<8}{'From':<24}Message")
                lines.append(f"  {'----':<9}{'------':<24}{'---':<8}{'----':<24}-------")
                for e in events:
                    when = e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or ""
                    source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
                    count = e.get("count") or 1
                    seen = age(when, now) + (f" (x{count})" if count > 1 else "")
                    message = " ".join((e.get("message") or "").split())
                    lines.append(f"  {e.get('type', ''):<9}{e.get('reason', ''):<24}{seen:<8}{source:<24}{message}")
    return "\n".join(lines) + "\n"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else re.sub(r"\s+", " ", yaml.safe_dump(value, default_flow_style=True)).strip()
    return text if len(text) < 100 else text[:97] + "..."
