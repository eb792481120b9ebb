"""A fixed cluster behind the client's `Transport` protocol, for screens that must look the
same on every run (snapshots) and for clusters that lack a resource.

It answers GET of lists and objects from a dict of objects and holds watches open without
events; anything else is a 404 Status, as a server without that resource answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from tuik8s.client.client import ApiClient, resolve, resource_path
from tuik8s.client.transport import RawResponse
from tuik8s.tui.cluster import Session

T0 = "2025-01-01T00:00:00Z"
NOW = 1735689600.0 + 3 * 86400 + 3600  # three days and an hour after T0


def _not_found(path: str) -> RawResponse:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
              "message": "the server could not find the requested resource"}
    return RawResponse(404, "application/json", orjson.dumps(status))


class FakeTransport:
    def __init__(self, objects: dict[str, list[dict[str, Any]]], missing: tuple[str, ...] = ()) -> None:
        self.lists: dict[str, list[dict[str, Any]]] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        self.missing = missing
        self.requests: list[tuple[str, str]] = []
        for res, items in objects.items():
            info = resolve(res)
            self.lists[resource_path(info)] = items
            for obj in items:
                ns = obj["metadata"].get("namespace")
                if info.namespaced:
                    self.lists.setdefault(resource_path(info, ns), []).append(obj)
                self.objects[resource_path(info, ns, obj["metadata"]["name"])] = obj

    async def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                      headers: Mapping[str, str] | None = None, body: bytes | None = None) -> RawResponse:
        self.requests.append((method, path))
        if method != "GET" or any(m in path for m in self.missing):
            return _not_found(path)
        if path in self.lists:
            items = self.lists[path]
            return RawResponse(200, "application/json", orjson.dumps(
                {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "10"}, "items": items}))
        if path in self.objects:
            return RawResponse(200, "application/json", orjson.dumps(self.objects[path]))
        if path.endswith("/events"):
            return RawResponse(200, "application/json", b'{"kind":"EventList","metadata":{"resourceVersion":"10"},"items":[]}')
        return _not_found(path)

    async def stream(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                     headers: Mapping[str, str] | None = None) -> AsyncIterator[bytes]:
        if any(m in path for m in self.missing):
            from tuik8s.client.errors import ApiError

            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        await asyncio.Event().wait()  # a quiet watch
        yield b""

    async def close(self) -> None:
        return None


def pod(ns: str, name: str, node: str | None, *, phase: str = "Running", ready: bool = True,
        waiting: str | None = None, restarts: int = 0, deleting: bool = False) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {"startedAt": T0}} if waiting is None else {"waiting": {"reason": waiting}}
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{name}", "creationTimestamp": T0}
    if deleting:
        meta["deletionTimestamp"] = T0
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"nodeName": node, "containers": [
            {"name": "web", "image": "nginx:1.27", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]},
        "status": {"phase": phase, "podIP": f"10.1.0.{len(name)}" if node else None,
                   "containerStatuses": [{"name": "web", "ready": ready, "restartCount": restarts, "state": state}]
                   if node else []},
    }


def node(name: str, *, ready: bool = True, cordoned: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": T0,
                     "labels": {"node-role.kubernetes.io/worker": ""}},
        "spec": {"unschedulable": True} if cordoned else {},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}],
                   "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                   "addresses": [{"type": "InternalIP", "address": f"172.18.0.{len(name)}"}],
                   "nodeInfo": {"kubeletVersion": "v1.32.0"}},
    }


def small_cluster() -> dict[str, list[dict[str, Any]]]:
    pods = [
        pod("shop", "web-7d9f8c6b5-abcde", "node-a"),
        pod("shop", "web-7d9f8c6b5-fghij", "node-b"),
        pod("shop", "db-0", "node-a", waiting="CrashLoopBackOff", ready=False, restarts=7),
        pod("shop", "cache-1", "node-c", deleting=True),
        pod("blog", "blog-5f7c9-xyz12", "node-b", waiting="ContainerCreating", ready=False),
        pod("blog", "pending-one", None, phase="Pending", ready=False),
        pod("kube-system", "coredns-1", "node-a"),
    ]
    return {
        "pods": pods,
        "nodes": [node("node-a"), node("node-b", cordoned=True), node("node-c", ready=False)],
        "namespaces": [{"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": n, "uid": f"uid-{n}", "creationTimestamp": T0},
                        "status": {"phase": "Active"}} for n in ("blog", "default", "kube-system", "shop")],
    }


def fake_session(objects: dict[str, list[dict[str, Any]]] | None = None, missing: tuple[str, ...] = ()) -> Session:
    transport = FakeTransport(objects if objects is not None else small_cluster(), missing)
    return Session(ApiClient(transport), "fake-context", "https://fake.invalid")  # type: ignore[arg-type]
