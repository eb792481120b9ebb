"""The cluster DNS: names for Services, answered from the API (upstream's CoreDNS role).

- `records`: the answers, pure: a query name and type in, resource records out, over a
  read-only view of Services and Endpoints (kubernetes/dns specification.md).
- `server`: the wire (dnslib) and the sockets (asyncio UDP and TCP), binding once the
  listen address exists.
- `kubedns`: the `kube-dns` Service in kube-system and its Endpoints, kept as they should be.
- `component`: the two run as one component of the control-plane process, reading
  Services and Endpoints through informers like every other component.

Nothing is forwarded: names outside the cluster's zones are REFUSED, so no query ever
leaves the lab (LAB.md, network rules).

This module holds the well-known values only, so that node providers can name the DNS
Service's address without importing the wire library.
"""

from __future__ import annotations

CLUSTER_DOMAIN = "cluster.local"
# kubeadm's convention, kept by the API server's ClusterIP allocator: the tenth address
# of the service range (10.96.0.0/12), never handed out to another Service.
DNS_SERVICE_IP = "10.96.0.10"
DNS_SERVICE_NAME = "kube-dns"
DNS_NAMESPACE = "kube-system"
