"""The `kube-dns` Service in kube-system, and its Endpoints at the DNS server's address.

Pods find the cluster DNS as they do in Kubernetes: the kubelet writes the `kube-dns`
Service's ClusterIP (10.96.0.10, which the API server's allocator keeps for it) into their
resolv.conf, and kube-proxy sends that address on to the Service's endpoints. The DNS
server runs in the control-plane process, outside any pod, so the Service has no
selector and this controller writes its Endpoints: the address the server listens on,
like an apiserver's `kubernetes` Endpoints.

Level-triggered like every controller: the one key `kube-system/kube-dns` is reconciled
at start and whenever the Service or its Endpoints change, so a deleted or edited object
comes back as it should be. It never fights over what it cannot change: an existing
Service keeps its ClusterIP (immutable), only its ports and labels are put right.

Endpoints may not hold a loopback address (the API's validation, as upstream's), and an
unspecified one (0.0.0.0) names no host: listening there, the Service is made but its
Endpoints are not, and the log says why once.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
from typing import Any

from tuik8s.client.errors import ApiError, is_already_exists
from tuik8s.client.informer import object_key
from tuik8s.controllers.runner import Controller, ControllerContext
from tuik8s.dns import DNS_NAMESPACE, DNS_SERVICE_IP, DNS_SERVICE_NAME

log = logging.getLogger(__name__)

Obj = dict[str, Any]

KEY = f"{DNS_NAMESPACE}/{DNS_SERVICE_NAME}"
LABELS = {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "tuik8s-dns"}
DNS_PORT = 53


def desired_service(service_ip: str, target_port: int) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": DNS_SERVICE_NAME, "namespace": DNS_NAMESPACE, "labels": dict(LABELS)},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": service_ip,
            "ports": [
                {"name": "dns", "port": DNS_PORT, "protocol": "UDP", "targetPort": target_port},
                {"name": "dns-tcp", "port": DNS_PORT, "protocol": "TCP", "targetPort": target_port},
            ],
        },
    }


def desired_endpoints(ip: str, port: int) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": DNS_SERVICE_NAME, "namespace": DNS_NAMESPACE, "labels": dict(LABELS)},
        "subsets": [{
            "addresses": [{"ip": ip}],
            "ports": [
                {"name": "dns", "port": port, "protocol": "UDP"},
                {"name": "dns-tcp", "port": port, "protocol": "TCP"},
            ],
        }],
    }


def endpoints_ip(host: str) -> tuple[str | None, str]:
    """The address Endpoints can hold for a listen host, or None and why not."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None, f"{host} is not an IP address"
    if addr.is_loopback:
        return None, f"{host} is a loopback address, which Endpoints may not hold"
    if addr.is_unspecified:
        return None, f"{host} names no single address"
    return str(addr), ""


def _port_set(ports: Any) -> set[tuple[str, int, str, str]]:
    return {(str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or "TCP"),
             str(p.get("targetPort", p.get("port"))))
            for p in ports or [] if isinstance(p, dict)}


def _subset_set(subsets: Any) -> set[tuple[Any, ...]]:
    out: set[tuple[Any, ...]] = set()
    for s in subsets or []:
        ips = tuple(sorted(str(a.get("ip")) for a in s.get("addresses") or []))
        ports = tuple(sorted((str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or "TCP"))
                             for p in s.get("ports") or []))
        out.add((ips, ports, bool(s.get("notReadyAddresses"))))
    return out


class KubeDNSController(Controller):
    """Keeps the `kube-dns` Service and its Endpoints pointing at the cluster DNS."""

    name = "kube-dns"
    workers = 1

    def __init__(self, ctx: ControllerContext, host: str, port: int, service_ip: str = DNS_SERVICE_IP) -> None:
        self.host, self.port, self.service_ip = host, port, service_ip
        self.endpoints_ip, self._no_endpoints_why = endpoints_ip(host)
        self._said: set[str] = set()
        super().__init__(ctx)

    def setup(self) -> None:
        self.services = self.informer("services")
        self.endpoints = self.informer("endpoints")
        for inf in (self.services, self.endpoints):
            self.enqueue_handlers(inf, lambda obj: KEY if object_key(obj) == KEY else None)
        self.queue.add(KEY)

    def _say_once(self, what: str, message: str, level: int = logging.WARNING) -> None:
        if what not in self._said:
            self._said.add(what)
            log.log(level, "%s", message)

    async def reconcile(self, key: str) -> float | None:
        await self._ensure_service()
        await self._ensure_endpoints()
        return None

    async def _ensure_service(self) -> None:
        want = desired_service(self.service_ip, self.port)
        have = self.services.get(KEY)
        if have is None:
            try:
                await self.client.create("services", want, namespace=DNS_NAMESPACE)
            except ApiError as e:
                if is_already_exists(e):
                    raise  # the cache is behind: retry once it has the Service
                self._say_once("create", f"kube-dns: cannot create the Service {KEY} at {self.service_ip}: {e}; retrying")
                raise
            return
        spec = have.get("spec") or {}
        if spec.get("clusterIP") != self.service_ip:
            self._say_once("ip", f"kube-dns: the Service {KEY} has ClusterIP {spec.get('clusterIP')}, not "
                                 f"{self.service_ip}; kubelets given --cluster-dns {self.service_ip} will not reach it",
                           logging.WARNING)
        labels = (have.get("metadata") or {}).get("labels") or {}
        ports_ok = _port_set(spec.get("ports")) == _port_set(want["spec"]["ports"])
        if ports_ok and all(labels.get(k) == v for k, v in LABELS.items()):
            return
        new = copy.deepcopy(have)
        new["metadata"]["labels"] = {**labels, **LABELS}
        new["spec"]["ports"] = want["spec"]["ports"]
        await self.client.update("services", new)

    async def _ensure_endpoints(self) -> None:
        if self.endpoints_ip is None:
            self._say_once("endpoints", f"kube-dns: no Endpoints for {KEY}: {self._no_endpoints_why}", logging.INFO)
            return
        want = desired_endpoints(self.endpoints_ip, self.port)
        have = self.endpoints.get(KEY)
        if have is None:
            await self.client.create("endpoints", want, namespace=DNS_NAMESPACE)
            return
        labels = (have.get("metadata") or {}).get("labels") or {}
        if _subset_set(have.get("subsets")) == _subset_set(want["subsets"]) and all(
            labels.get(k) == v for k, v in LABELS.items()
        ):
            return
        new = copy.deepcopy(have)
        new["metadata"]["labels"] = {**labels, **LABELS}
        new["subsets"] = want["subsets"]
        await self.client.update("endpoints", new)
