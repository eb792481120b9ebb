"""The cluster DNS as a component of the control-plane process.

It reads Services and Endpoints through the shared informers of the controller manager
(one watch each, shared with the endpoints controller), adds the indexes its answers need
(by namespace, by ClusterIP, by endpoint IP), empties the server's response cache on
every change of either, and binds only once both caches have synced: an answer from a half-filled cache would be a false NXDOMAIN that resolvers cache.
The `kube-dns` Service and its Endpoints are a controller of their own (`kubedns`).
"""

from __future__ import annotations

import asyncio

from tuik8s.controllers.runner import ControllerContext, ControllerManager
from tuik8s.dns import CLUSTER_DOMAIN, DNS_SERVICE_IP
from tuik8s.dns.kubedns import KubeDNSController
from tuik8s.dns.records import ENDPOINT_INDEXES, SERVICE_INDEXES, ClusterRecords
from tuik8s.dns.server import DnsServer, ResponseCache, parse_listen


class ClusterDNS:
    """The DNS server over the informers' caches, and the kube-dns Service controller."""

    name = "cluster-dns"

    def __init__(
        self, ctx: ControllerContext, listen: str, *, domain: str = CLUSTER_DOMAIN, service_ip: str = DNS_SERVICE_IP,
    ) -> None:
        host, port = parse_listen(listen)
        self.services = ctx.informers.informer("services")
        self.endpoints = ctx.informers.informer("endpoints")
        for name, fn in SERVICE_INDEXES.items():
            self.services.add_index(name, fn)
        for name, fn in ENDPOINT_INDEXES.items():
            self.endpoints.add_index(name, fn)
        self.records = ClusterRecords(self.services, self.endpoints, domain=domain, dns_ip=service_ip)
        self.cache = ResponseCache()
        for inf in (self.services, self.endpoints):
            # handlers run right after the informer updates its cache, before any answer
            inf.add_handler(self.cache.clear, self.cache.clear, self.cache.clear)
        self.server = DnsServer(self.records, host, port, self.cache)
        self.kube_dns = KubeDNSController(ctx, host, port, service_ip)

    def add_to(self, manager: ControllerManager) -> None:
        manager.add(self.name, self.run)
        manager.add_controller(self.kube_dns)

    async def run(self) -> None:
        await asyncio.gather(self.services.wait_synced(), self.endpoints.wait_synced())
        await self.server.serve()
