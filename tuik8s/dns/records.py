"""What the cluster DNS answers: kubernetes/dns specification.md, over Services and Endpoints.

Pure: `ClusterRecords.resolve(name, type)` reads two stores (the informers' caches, or
anything with `get` and `by_index`) and returns the records, never doing I/O, so every
rule is a unit test. The records (schema 1.1.0):

- `<svc>.<ns>.svc.<zone>` A/AAAA: the ClusterIP; for a headless Service (`clusterIP:
  None`) every *ready* endpoint address (`addresses`, plus `notReadyAddresses` when the
  Service carries `service.alpha.kubernetes.io/tolerate-unready-endpoints: "true"`); an
  ExternalName Service is a CNAME to its `externalName`.
- `<hostname>.<svc>.<ns>.svc.<zone>` A: a headless Service's ready endpoint by its
  `hostname` (a StatefulSet pod's, set by the endpoints controller from the pod's
  hostname and subdomain), else by its dashed IP (`10-244-1-5`), as CoreDNS names them.
- `_<port>._<proto>.<svc>.<ns>.svc.<zone>` SRV for each *named* port: to the Service
  name and its port, or for a headless Service to each ready endpoint and its port; the
  targets' addresses ride in the additional section.
- PTR for ClusterIPs and for headless endpoints; `dns-version.<zone>` TXT; the zone's
  SOA and NS (`ns.dns.<zone>`, the DNS Service's address); `<a-b-c-d>.<ns>.pod.<zone>`
  A, CoreDNS's `pods insecure` that kubeadm configures.

A name that exists with no record of the asked type (AAAA of an IPv4 Service, a headless
Service with no ready endpoint, an empty non-terminal such as `svc.<zone>`) is NOERROR
with no answer, never NXDOMAIN: musl and glibc ask A and AAAA together, and an NXDOMAIN
for either would fail the name. Negative answers carry the zone's SOA so resolvers can
cache them (RFC 2308). Names outside the cluster zone and the reverse zones are REFUSED:
nothing is forwarded.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dnslib import AAAA, CNAME, NS, PTR, QTYPE, RCODE, RR, SOA, SRV, TXT, A, DNSLabel

from tuik8s.client.informer import NAMESPACE_INDEX, namespace_index
from tuik8s.dns import CLUSTER_DOMAIN, DNS_SERVICE_IP

Obj = dict[str, Any]

TTL = 5  # CoreDNS's kubernetes plugin default: a change is seen within seconds
SCHEMA_VERSION = "1.1.0"
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"
SERVICE_IP_INDEX = "cluster-dns/cluster-ips"
ENDPOINT_IP_INDEX = "cluster-dns/endpoint-ips"
REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")
MAX_CHASE = 8


class Store(Protocol):
    """A read-only cache of one resource: what an `Informer` offers."""

    def get(self, key: str) -> Obj | None: ...

    def by_index(self, name: str, value: str) -> list[Obj]: ...


# ---- index functions the stores must carry ------------------------------------------------


def service_ips(svc: Obj) -> list[str]:
    """`SERVICE_IP_INDEX`: a Service's cluster IPs, none for a headless one."""
    spec = svc.get("spec") or {}
    ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
    return [str(ip) for ip in ips if ip and ip != "None"]


def endpoint_ips(ep: Obj) -> list[str]:
    """`ENDPOINT_IP_INDEX`: every address of an Endpoints, ready or not."""
    ips: list[str] = []
    for subset in ep.get("subsets") or []:
        for key in ("addresses", "notReadyAddresses"):
            ips += [str(a["ip"]) for a in subset.get(key) or [] if isinstance(a, Mapping) and a.get("ip")]
    return ips


SERVICE_INDEXES: dict[str, Callable[[Obj], list[str]]] = {
    NAMESPACE_INDEX: namespace_index,
    SERVICE_IP_INDEX: service_ips,
}
ENDPOINT_INDEXES: dict[str, Callable[[Obj], list[str]]] = {ENDPOINT_IP_INDEX: endpoint_ips}


# ---- Services and their endpoints ------------------------------------------------------------


def is_headless(svc: Obj) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def dashed(ip: str) -> str:
    """An endpoint's name when it has no hostname: `10.244.1.5` -> `10-244-1-5`."""
    return ip.replace(".", "-").replace(":", "-")


def endpoint_hostname(address: Mapping[str, Any]) -> str:
    return str(address.get("hostname") or dashed(str(address["ip"])))


def ready_subsets(svc: Obj, ep: Obj | None) -> list[tuple[list[Obj], list[Obj]]]:
    """(ready addresses, ports) per subset: the spec's _ready_ endpoints."""
    if ep is None:
        return []
    tolerate = ((svc.get("metadata") or {}).get("annotations") or {}).get(TOLERATE_UNREADY) == "true"
    out = []
    for subset in ep.get("subsets") or []:
        addresses: list[Obj] = [a for a in subset.get("addresses") or [] if isinstance(a, dict) and a.get("ip")]
        if tolerate:
            addresses += [a for a in subset.get("notReadyAddresses") or [] if isinstance(a, dict) and a.get("ip")]
        ports: list[Obj] = [p for p in subset.get("ports") or [] if isinstance(p, dict)]
        out.append((addresses, ports))
    return out


def ready_addresses(svc: Obj, ep: Obj | None) -> list[Obj]:
    """Every ready address once (an address sits in one subset per port set)."""
    seen: dict[str, Obj] = {}
    for addresses, _ports in ready_subsets(svc, ep):
        for a in addresses:
            seen.setdefault(str(a["ip"]), a)
    return list(seen.values())


def address_record(name: DNSLabel | str, ip: str, ttl: int) -> RR:
    if ":" in ip:
        return RR(name, QTYPE.AAAA, ttl=ttl, rdata=AAAA(ip))
    return RR(name, QTYPE.A, ttl=ttl, rdata=A(ip))


def reverse_ip(labels: list[str]) -> str | None:
    """The address a reverse name stands for (`4.3.2.1.in-addr.arpa` -> 1.2.3.4), if whole."""
    if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
        text = ".".join(reversed(labels[:4]))
    elif labels[-2:] == ["ip6", "arpa"] and len(labels) == 34:
        nibbles = "".join(reversed(labels[:32]))
        text = ":".join(nibbles[i:i + 4] for i in range(0, 32, 4))
    else:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


# ---- the answers ---------------------------------------------------------------------------------


@dataclass
class Answer:
    """The sections of a response and its code (`dnslib.RCODE`)."""

    rcode: int = RCODE.NOERROR
    answer: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)


class ClusterRecords:
    """The records of one cluster's zone and of the reverse zones, from two stores."""

    def __init__(
        self, services: Store, endpoints: Store, *, domain: str = CLUSTER_DOMAIN,
        dns_ip: str = DNS_SERVICE_IP, ttl: int = TTL, serial: int | None = None,
    ) -> None:
        self.services = services
        self.endpoints = endpoints
        self.domain = domain.strip(".").lower()
        self.zone_labels = self.domain.split(".")
        self.dns_ip = dns_ip
        self.ttl = ttl
        self.serial = serial if serial is not None else int(time.time()) & 0xFFFFFFFF

    # ---- entry point ------------------------------------------------------------------

    def resolve(self, qname: DNSLabel | str, qtype: int) -> Answer:
        qname = DNSLabel(qname)
        labels = _labels(qname)
        zone = self._zone_of(labels)
        if zone is None:
            return Answer(RCODE.REFUSED)
        records = self._records(qname, labels)
        if records is None:
            return Answer(RCODE.NXDOMAIN, authority=[self._soa(zone)])
        answer = self._select(records, qtype, MAX_CHASE)
        if not answer:
            return Answer(RCODE.NOERROR, authority=[self._soa(zone)])
        return Answer(RCODE.NOERROR, answer, additional=self._additional(answer))

    def _zone_of(self, labels: list[str]) -> str | None:
        n = len(self.zone_labels)
        if labels[-n:] == self.zone_labels:
            return self.domain
        for zone in REVERSE_ZONES:
            if labels[-2:] == zone.split("."):
                return zone
        return None

    def _select(self, records: list[RR], qtype: int, depth: int) -> list[RR]:
        """The records of the asked type; for a CNAME'd name the CNAME and, when its
        target is one of ours, the target's records (clients need not ask again)."""
        if qtype == QTYPE.ANY:
            return records
        chosen = [r for r in records if r.rtype == qtype]
        if chosen or qtype == QTYPE.CNAME:
            return chosen
        cnames = [r for r in records if r.rtype == QTYPE.CNAME]
        if not cnames or depth <= 0:
            return cnames
        target = DNSLabel(str(cnames[0].rdata.label))
        labels = _labels(target)
        if labels[-len(self.zone_labels):] != self.zone_labels:
            return cnames
        more = self._records(target, labels) or []
        return cnames + self._select(more, qtype, depth - 1)

    def _additional(self, answer: list[RR]) -> list[RR]:
        """Addresses of SRV targets and of the name server, so clients need not ask again."""
        extra: list[RR] = []
        seen: set[str] = set()
        for rr in answer:
            if rr.rtype not in (QTYPE.SRV, QTYPE.NS):
                continue
            target = DNSLabel(str(rr.rdata.target if rr.rtype == QTYPE.SRV else rr.rdata.label))
            if str(target) in seen:
                continue
            seen.add(str(target))
            extra += [r for r in self._records(target, _labels(target)) or [] if r.rtype in (QTYPE.A, QTYPE.AAAA)]
        return extra

    def _soa(self, zone: str) -> RR:
        return RR(
            f"{zone}.", QTYPE.SOA, ttl=self.ttl,
            rdata=SOA(f"ns.dns.{self.domain}.", f"hostmaster.{self.domain}.",
                      (self.serial, 7200, 1800, 86400, self.ttl)),
        )

    # ---- names -> every record they hold; None: no such name ------------------------

    def _records(self, qname: DNSLabel, labels: list[str]) -> list[RR] | None:
        n = len(self.zone_labels)
        if labels[-n:] != self.zone_labels:
            ip = reverse_ip(labels)
            if ip is not None:
                return self._reverse(qname, ip)
            # a partial reverse name (`96.10.in-addr.arpa`) is an empty non-terminal
            return [] if len(labels) < (6 if labels[-2] == "in-addr" else 34) else None
        rel = labels[:-n]
        ttl = self.ttl
        if not rel:
            return [self._soa(self.domain),
                    RR(qname, QTYPE.NS, ttl=ttl, rdata=NS(f"ns.dns.{self.domain}."))]
        if rel == ["dns-version"]:
            return [RR(qname, QTYPE.TXT, ttl=ttl, rdata=TXT(SCHEMA_VERSION))]
        if rel == ["ns", "dns"]:
            return [address_record(qname, self.dns_ip, ttl)]
        if rel == ["dns"]:
            return []
        if rel[-1] == "svc":
            return self._service_records(qname, rel[:-1])
        if rel[-1] == "pod":
            return self._pod_records(qname, rel[:-1])
        return None

    def _service_records(self, qname: DNSLabel, rel: list[str]) -> list[RR] | None:
        """`rel` is what stands before `svc.<zone>`: [..., service, namespace]."""
        if not rel:
            return []
        ns = rel[-1]
        if len(rel) == 1:
            return [] if self.services.by_index(NAMESPACE_INDEX, ns) else None
        svc = self.services.get(f"{ns}/{rel[-2]}")
        if svc is None:
            return None
        ep = self.endpoints.get(f"{ns}/{rel[-2]}")
        head = rel[:-2]
        if not head:
            return self._service_address(qname, svc, ep)
        if len(head) == 1:
            if head[0].startswith("_"):
                # `_tcp.<svc>...`: the empty non-terminal above the SRV names
                return [] if self._has_protocol(svc, head[0][1:]) else None
            return self._endpoint_address(qname, svc, ep, head[0])
        if len(head) == 2 and head[0].startswith("_") and head[1].startswith("_"):
            return self._srv(qname, svc, ep, head[0][1:], head[1][1:])
        return None

    def _service_address(self, qname: DNSLabel, svc: Obj, ep: Obj | None) -> list[RR]:
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            target = str(spec.get("externalName") or "").rstrip(".")
            return [RR(qname, QTYPE.CNAME, ttl=self.ttl, rdata=CNAME(f"{target}."))] if target else []
        if is_headless(svc):
            return [address_record(qname, str(a["ip"]), self.ttl) for a in ready_addresses(svc, ep)]
        return [address_record(qname, ip, self.ttl) for ip in service_ips(svc)]

    def _endpoint_address(self, qname: DNSLabel, svc: Obj, ep: Obj | None, host: str) -> list[RR] | None:
        if not is_headless(svc):
            return None
        found = [a for a in ready_addresses(svc, ep) if endpoint_hostname(a).lower() == host]
        return [address_record(qname, str(a["ip"]), self.ttl) for a in found] or None

    @staticmethod
    def _has_protocol(svc: Obj, proto: str) -> bool:
        return any(str(p.get("protocol") or "TCP").lower() == proto and p.get("name")
                   for p in (svc.get("spec") or {}).get("ports") or [] if isinstance(p, Mapping))

    def _srv(self, qname: DNSLabel, svc: Obj, ep: Obj | None, port_name: str, proto: str) -> list[RR] | None:
        meta = svc.get("metadata") or {}
        base = f"{meta.get('name')}.{meta.get('namespace')}.svc.{self.domain}."

        def matches(p: Mapping[str, Any]) -> bool:
            return str(p.get("name") or "").lower() == port_name and str(p.get("protocol") or "TCP").lower() == proto

        ports = [p for p in (svc.get("spec") or {}).get("ports") or [] if isinstance(p, Mapping) and matches(p)]
        if not ports:
            return None
        if not is_headless(svc):
            return [RR(qname, QTYPE.SRV, ttl=self.ttl, rdata=SRV(0, 100, int(p["port"]), base)) for p in ports]
        records: list[RR] = []
        for addresses, subset_ports in ready_subsets(svc, ep):
            for p in subset_ports:
                if matches(p) and p.get("port"):
                    records += [RR(qname, QTYPE.SRV, ttl=self.ttl,
                                   rdata=SRV(0, 100, int(p["port"]), f"{endpoint_hostname(a)}.{base}"))
                                for a in addresses]
        return records

    def _pod_records(self, qname: DNSLabel, rel: list[str]) -> list[RR] | None:
        """`<a-b-c-d>.<ns>.pod.<zone>`: the address the name spells, for any namespace."""
        if len(rel) < 2:
            return []
        if len(rel) != 2:
            return None
        try:
            ip = ipaddress.IPv4Address(rel[0].replace("-", "."))
        except ValueError:
            return None
        return [address_record(qname, str(ip), self.ttl)]

    def _reverse(self, qname: DNSLabel, ip: str) -> list[RR] | None:
        names: list[str] = []
        for svc in self.services.by_index(SERVICE_IP_INDEX, ip):
            meta = svc.get("metadata") or {}
            names.append(f"{meta.get('name')}.{meta.get('namespace')}.svc.{self.domain}.")
        for ep in self.endpoints.by_index(ENDPOINT_IP_INDEX, ip):
            meta = ep.get("metadata") or {}
            owner = self.services.get(f"{meta.get('namespace')}/{meta.get('name')}")
            if owner is None or not is_headless(owner):
                continue
            for a in ready_addresses(owner, ep):
                if str(a["ip"]) == ip:
                    names.append(f"{endpoint_hostname(a)}.{meta.get('name')}.{meta.get('namespace')}.svc.{self.domain}.")
        return [RR(qname, QTYPE.PTR, ttl=self.ttl, rdata=PTR(n)) for n in dict.fromkeys(names)] or None


def _labels(name: DNSLabel) -> list[str]:
    return [label.decode("utf-8", "replace").lower() for label in name.label]

