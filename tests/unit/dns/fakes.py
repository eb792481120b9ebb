"""In-memory stand-ins for the informers' caches the cluster DNS reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tuik8s.dns.records import ENDPOINT_INDEXES, SERVICE_INDEXES, ClusterRecords

Obj = dict[str, Any]


class FakeStore:
    """`get` by `namespace/name` and `by_index`, computed from a list like an Informer's."""

    def __init__(self, objects: list[Obj], indexes: dict[str, Callable[[Obj], list[str]]]) -> None:
        self.objects = {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o for o in objects}
        self.indexes = indexes

    def get(self, key: str) -> Obj | None:
        return self.objects.get(key)

    def by_index(self, name: str, value: str) -> list[Obj]:
        fn = self.indexes[name]
        return [o for _, o in sorted(self.objects.items()) if value in fn(o)]


def records(services: list[Obj], endpoints: list[Obj] = (), **kwargs: Any) -> ClusterRecords:
    return ClusterRecords(FakeStore(services, SERVICE_INDEXES), FakeStore(list(endpoints), ENDPOINT_INDEXES),
                          serial=1, **kwargs)


def service(name: str, ns: str = "default", ip: str | None = "10.96.5.5", ports: list[Obj] | None = None,
            annotations: dict[str, str] | None = None, **spec: Any) -> Obj:
    body: Obj = {"type": "ClusterIP", "ports": ports or [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}
    if ip is not None:
        body["clusterIP"] = ip
        body["clusterIPs"] = [ip]
    meta: Obj = {"name": name, "namespace": ns}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": body}


def headless(name: str, ns: str = "default", **kwargs: Any) -> Obj:
    return service(name, ns, ip="None", **kwargs)


def endpoints(name: str, ns: str = "default", ready: list[Obj] = (), not_ready: list[Obj] = (),
              ports: list[Obj] | None = None) -> Obj:
    subset: Obj = {"ports": ports or [{"name": "http", "port": 8080, "protocol": "TCP"}]}
    if ready:
        subset["addresses"] = list(ready)
    if not_ready:
        subset["notReadyAddresses"] = list(not_ready)
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns}, "subsets": [subset]}
