"""Services + Endpoints → the iptables-restore text of upstream's iptables proxier. Pure.

The rules have the shape kube-proxy's iptables mode writes, chain names included (the same
hashes: `KUBE-SVC-TCOU7JCQXEZGVUNU` is kube-dns's UDP port here as everywhere), so anyone
who has read `iptables-save` on a Kubernetes node reads ours:

    nat    PREROUTING, OUTPUT -> KUBE-SERVICES      a ClusterIP / external IP rule per port,
                                                    last: local destinations -> KUBE-NODEPORTS
           KUBE-SVC-*   masquerade what does not come from a pod, then one rule per READY
                        endpoint, `-m statistic --mode random --probability 1/(n-i)`
           KUBE-SEP-*   hairpin: the endpoint talking to itself is masqueraded; DNAT
           KUBE-EXT-*   external traffic (NodePort, external IPs) is masqueraded, then SVC
           POSTROUTING -> KUBE-POSTROUTING  masquerades what KUBE-MARK-MASQ marked (0x4000)
    filter INPUT/FORWARD/OUTPUT (new connections) -> KUBE-SERVICES / KUBE-EXTERNAL-SERVICES:
                        REJECT for a port with no endpoints, so a client is refused at once
                        instead of waiting for a timeout (and, ours, for every other service
                        address too: only a packet that missed the DNAT meets it, see below)
           FORWARD -> KUBE-FORWARD  accepts marked and established traffic (NodePort traffic
                        forwarded to another node's pod)

Why nat before filter: iptables-restore commits each table on its own, so between the two
commits of a sync one table is new and the other old. Written filter-first, a service that
just got endpoints loses its REJECT before it gets its DNAT, and a connection made in that
moment leaves for the default route and hangs (seen in the lab: a 0.5 s connect timeout).
Nat-first plus a REJECT that stays for every service address closes both directions.

Why whole chains: the text declares every KUBE chain it owns (`:CHAIN - [0:0]` flushes it)
and refills it, so one `iptables-restore --noflush` replaces our rules atomically and
touches nothing of dockerd's; chains of services that are gone are flushed and deleted
(`-X`) in the same transaction. The jumps from the built-in chains cannot be written that
way without flushing dockerd's rules, so `JUMPS` lists them for the runner to check and
insert (`iptables -C || -I`), as upstream does.

Only ready endpoints (`subsets[].addresses`, never `notReadyAddresses`) get rules: a pod
that is being deleted or fails its readiness probe gets no new connections, while the
connections it has keep their conntrack entry.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

MASQ_MARK = "0x4000"
PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"

# chains whose names carry a hash: ours to delete when their service goes
HASHED_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-", "KUBE-FW-")
NAT_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")
FILTER_CHAINS = ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD")


@dataclass(frozen=True)
class Jump:
    """A rule in a built-in chain that leads into ours: checked and inserted first."""

    table: str
    chain: str
    args: tuple[str, ...]


# upstream's iptablesJumpChains (the health-check KUBE-NODEPORTS of filter left out)
JUMPS = (
    Jump("filter", "INPUT", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                             "kubernetes externally-visible service portals", "-j", "KUBE-EXTERNAL-SERVICES")),
    Jump("filter", "FORWARD", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                               "kubernetes service portals", "-j", "KUBE-SERVICES")),
    Jump("filter", "FORWARD", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                               "kubernetes externally-visible service portals", "-j", "KUBE-EXTERNAL-SERVICES")),
    Jump("filter", "OUTPUT", ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                              "kubernetes service portals", "-j", "KUBE-SERVICES")),
    Jump("filter", "FORWARD", ("-m", "comment", "--comment", "kubernetes forwarding rules", "-j", "KUBE-FORWARD")),
    Jump("nat", "OUTPUT", ("-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES")),
    Jump("nat", "PREROUTING", ("-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES")),
    # first in POSTROUTING: before the node's "pod to pod keeps its address" RETURN, so a
    # pod reaching itself through its Service (hairpin) is still masqueraded
    Jump("nat", "POSTROUTING", ("-m", "comment", "--comment", "kubernetes postrouting rules", "-j", "KUBE-POSTROUTING")),
)


# ---- the model: service ports and their endpoints -------------------------------------


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    node_name: str | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service, as the proxier sees it (upstream's ServicePort)."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # TCP, UDP, SCTP
    cluster_ip: str
    port: int
    node_port: int | None = None
    external_ips: tuple[str, ...] = ()
    affinity_seconds: int | None = None  # sessionAffinity ClientIP
    external_local: bool = False  # externalTrafficPolicy: Local
    internal_local: bool = False  # internalTrafficPolicy: Local

    @property
    def key(self) -> str:
        """upstream's ServicePortName.String(): ns/name, plus :port-name when it has one."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port_name}" if self.port_name else base

    @property
    def proto(self) -> str:
        return self.protocol.lower()

    @property
    def svc_chain(self) -> str:
        return "KUBE-SVC-" + _hash(self.key + self.proto)

    @property
    def local_chain(self) -> str:
        return "KUBE-SVL-" + _hash(self.key + self.proto)

    @property
    def ext_chain(self) -> str:
        return "KUBE-EXT-" + _hash(self.key + self.proto)

    def sep_chain(self, ep: Endpoint) -> str:
        return "KUBE-SEP-" + _hash(self.key + self.proto + ep.address)

    @property
    def has_external(self) -> bool:
        return self.node_port is not None or bool(self.external_ips)


def _hash(text: str) -> str:
    """upstream's portProtoHash: the first 16 characters of base32(sha256(text))."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest())[:16].decode()


@dataclass
class ProxyState:
    """Every service port this node proxies, with its ready endpoints, in a stable order."""

    ports: list[ServicePort] = field(default_factory=list)
    endpoints: dict[ServicePort, list[Endpoint]] = field(default_factory=dict)

    def ready(self, sp: ServicePort) -> list[Endpoint]:
        return self.endpoints.get(sp, [])


def _is_ipv4(text: Any) -> bool:
    try:
        return isinstance(text, str) and ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def service_ports(svc: Obj) -> list[ServicePort]:
    """The ports to proxy of one Service: none for headless, ExternalName, IPv6-only or
    another proxy's Services (upstream's service-proxy-name label)."""
    meta = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    labels = meta.get("labels") or {}
    if PROXY_NAME_LABEL in labels:
        return []
    svc_type = spec.get("type") or "ClusterIP"
    cluster_ip = spec.get("clusterIP")
    if svc_type == "ExternalName" or not _is_ipv4(cluster_ip):
        return []
    affinity = None
    if spec.get("sessionAffinity") == "ClientIP":
        config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        affinity = int(config.get("timeoutSeconds") or 10800)
    external_ips = [ip for ip in spec.get("externalIPs") or [] if _is_ipv4(ip)]
    for ingress in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if svc_type == "LoadBalancer" and _is_ipv4((ingress or {}).get("ip")):
            external_ips.append(ingress["ip"])
    out = []
    for p in spec.get("ports") or []:
        if not isinstance(p, dict) or not p.get("port"):
            continue
        node_port = p.get("nodePort") if svc_type in ("NodePort", "LoadBalancer") else None
        out.append(ServicePort(
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta.get("name") or ""),
            port_name=str(p.get("name") or ""),
            protocol=str(p.get("protocol") or "TCP"),
            cluster_ip=str(cluster_ip),
            port=int(p["port"]),
            node_port=int(node_port) if node_port else None,
            external_ips=tuple(dict.fromkeys(external_ips)),
            affinity_seconds=affinity,
            external_local=spec.get("externalTrafficPolicy") == "Local" and svc_type in ("NodePort", "LoadBalancer"),
            internal_local=spec.get("internalTrafficPolicy") == "Local",
        ))
    return out


def ready_endpoints(sp: ServicePort, endpoints: Obj | None) -> list[Endpoint]:
    """The ready addresses of the Endpoints subsets whose port has this port's name and
    protocol (Endpoints name their ports after the Service's), sorted and deduplicated."""
    found: dict[str, Endpoint] = {}
    for subset in (endpoints or {}).get("subsets") or []:
        for port in subset.get("ports") or []:
            if (port.get("name") or "") != sp.port_name or (port.get("protocol") or "TCP") != sp.protocol:
                continue
            number = port.get("port")
            if not isinstance(number, int) or number <= 0:
                continue
            for address in subset.get("addresses") or []:
                ip = address.get("ip")
                if _is_ipv4(ip):
                    ep = Endpoint(str(ip), number, address.get("nodeName"))
                    found.setdefault(ep.address, ep)
    return sorted(found.values(), key=lambda e: (ipaddress.ip_address(e.ip), e.port))


def build_state(services: Iterable[Obj], endpoints: Mapping[str, Obj]) -> ProxyState:
    """`endpoints` is keyed `namespace/name`, as the Service it belongs to."""
    state = ProxyState()
    for svc in services:
        meta = svc.get("metadata") or {}
        eps = endpoints.get(f"{meta.get('namespace') or 'default'}/{meta.get('name')}")
        for sp in service_ports(svc):
            state.ports.append(sp)
            state.endpoints[sp] = ready_endpoints(sp, eps)
    state.ports.sort(key=lambda sp: (sp.namespace, sp.name, sp.port_name, sp.protocol, sp.port))
    return state


# ---- rendering ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyOptions:
    """What of the node the rules depend on."""

    node_name: str
    cluster_cidr: str | None = None  # traffic from outside it to a ClusterIP is masqueraded
    masquerade_all: bool = False


def _q(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def _comment(text: str) -> list[str]:
    return ["-m", "comment", "--comment", _q(text) if " " in text else text]


def _proto(sp: ServicePort) -> list[str]:
    return ["-p", sp.proto, "-m", sp.proto]


def _probability(n: int) -> str:
    return f"{1.0 / n:0.10f}"


@dataclass
class Rendered:
    """The restore text and what it leaves in place: the nat and filter chains it owns."""

    text: str
    chains: frozenset[str]
    rules: int
    stale: tuple[str, ...] = ()  # chains the text deletes

    @property
    def steady(self) -> str:
        """The text without the deletions: equal for equal states, whatever was left over."""
        if not self.stale:
            return self.text
        drop = {f":{c} - [0:0]" for c in self.stale} | {f"-X {c}" for c in self.stale}
        return "\n".join(line for line in self.text.split("\n") if line not in drop)


def render(state: ProxyState, options: ProxyOptions, existing: Iterable[str] = ()) -> Rendered:
    """The whole iptables-restore input for `state`; `existing` are the hashed KUBE chains
    now in the nat table (from `iptables-save`), those not written again are deleted."""
    nat_chains: list[str] = []
    nat: list[list[str]] = []
    filt: list[list[str]] = []
    masq = ["-j", "KUBE-MARK-MASQ"]

    def chain(name: str) -> None:
        if name not in nat_chains:
            nat_chains.append(name)

    for sp in state.ports:
        eps = state.ready(sp)
        local_eps = [e for e in eps if e.node_name == options.node_name]
        dst = ["-d", f"{sp.cluster_ip}/32"]
        dport = ["--dport", str(sp.port)]
        # --- cluster IP
        internal_eps = local_eps if sp.internal_local else eps
        why, target = _refusal(sp.internal_local, eps, internal_eps, "cluster IP")
        filt.append(["-A", "KUBE-SERVICES", *_comment(f"{sp.key} {why}"), *_proto(sp), *dst, *dport, *target])
        if internal_eps:
            to = sp.local_chain if sp.internal_local else sp.svc_chain
            nat.append(["-A", "KUBE-SERVICES", *_comment(f"{sp.key} cluster IP"), *_proto(sp), *dst, *dport, "-j", to])
        # --- external: node ports and external IPs
        if sp.has_external:
            external_eps = local_eps if sp.external_local else eps
            if sp.node_port is not None:
                why, target = _refusal(sp.external_local, eps, external_eps, "node port")
                filt.append(["-A", "KUBE-EXTERNAL-SERVICES", *_comment(f"{sp.key} {why}"),
                             "-m", "addrtype", "--dst-type", "LOCAL", *_proto(sp), "--dport", str(sp.node_port), *target])
            for ip in sp.external_ips:
                why, target = _refusal(sp.external_local, eps, external_eps, "external IP")
                filt.append(["-A", "KUBE-EXTERNAL-SERVICES", *_comment(f"{sp.key} {why}"),
                             *_proto(sp), "-d", f"{ip}/32", *dport, *target])
            if eps:
                chain(sp.ext_chain)
                if sp.node_port is not None:
                    nat.append(["-A", "KUBE-NODEPORTS", *_comment(sp.key), *_proto(sp), "--dport", str(sp.node_port),
                                "-j", sp.ext_chain])
                for ip in sp.external_ips:
                    nat.append(["-A", "KUBE-SERVICES", *_comment(f"{sp.key} external IP"), *_proto(sp),
                                "-d", f"{ip}/32", *dport, "-j", sp.ext_chain])
                ext = sp.ext_chain
                if sp.external_local:
                    if options.cluster_cidr:
                        nat.append(["-A", ext, *_comment(f"pod traffic for {sp.key} external destinations"),
                                    "-s", options.cluster_cidr, "-j", sp.svc_chain])
                    nat.append(["-A", ext, *_comment(f"masquerade LOCAL traffic for {sp.key} external destinations"),
                                "-m", "addrtype", "--src-type", "LOCAL", *masq])
                    nat.append(["-A", ext, *_comment(f"route LOCAL traffic for {sp.key} external destinations"),
                                "-m", "addrtype", "--src-type", "LOCAL", "-j", sp.svc_chain])
                    if local_eps:
                        nat.append(["-A", ext, "-j", sp.local_chain])
                else:
                    nat.append(["-A", ext, *_comment(f"masquerade traffic for {sp.key} external destinations"), *masq])
                    nat.append(["-A", ext, "-j", sp.svc_chain])
        # --- the service chains and the endpoint chains
        # the cluster-wide chain serves the ClusterIP, and external traffic unless it is
        # Local (then still pods' and the node's own traffic, as upstream)
        needs_svc = bool(eps) and (not sp.internal_local or sp.has_external)
        if needs_svc:
            chain(sp.svc_chain)
            if options.masquerade_all:
                nat.append(["-A", sp.svc_chain, *_comment(f"{sp.key} cluster IP"), *_proto(sp), *dst, *dport, *masq])
            elif options.cluster_cidr:
                nat.append(["-A", sp.svc_chain, *_comment(f"{sp.key} cluster IP"), *_proto(sp), *dst, *dport,
                            "!", "-s", options.cluster_cidr, *masq])
            nat.extend(_balance(sp, sp.svc_chain, eps))
        needs_local = bool(local_eps) and (sp.internal_local or sp.external_local)
        if needs_local:
            chain(sp.local_chain)
            if sp.internal_local and (options.masquerade_all or options.cluster_cidr):
                src = [] if options.masquerade_all else ["!", "-s", str(options.cluster_cidr)]
                nat.append(["-A", sp.local_chain, *_comment(f"{sp.key} cluster IP"), *_proto(sp), *dst, *dport, *src, *masq])
            nat.extend(_balance(sp, sp.local_chain, local_eps))
        if needs_svc or needs_local:
            for ep in (eps if needs_svc else local_eps):
                sep = sp.sep_chain(ep)
                chain(sep)
                nat.append(["-A", sep, *_comment(sp.key), "-s", f"{ep.ip}/32", *masq])
                recent = ["-m", "recent", "--name", sep, "--set"] if sp.affinity_seconds else []
                nat.append(["-A", sep, *_comment(sp.key), *_proto(sp), *recent, "-j", "DNAT",
                            "--to-destination", ep.address])

    nat.append(["-A", "KUBE-SERVICES", *_comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain"),
                "-m", "addrtype", "--dst-type", "LOCAL", "!", "-d", "127.0.0.0/8", "-j", "KUBE-NODEPORTS"])

    keep = set(nat_chains)
    stale = sorted({c for c in existing if c.startswith(HASHED_PREFIXES)} - keep)
    # nat first: iptables-restore commits table by table, and a DNAT in place before its
    # filter REJECT goes (and gone only after it is there) leaves no moment where a
    # connection to a service address is neither redirected nor refused
    lines = ["*nat"]
    lines += [f":{c} - [0:0]" for c in (*NAT_CHAINS, *nat_chains, *stale)]
    lines += [
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
        f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}",
    ]
    lines += [" ".join(r) for r in nat]
    lines += [f"-X {c}" for c in stale]
    lines += ["COMMIT", "*filter"]
    lines += [f":{c} - [0:0]" for c in FILTER_CHAINS]
    lines += [" ".join(r) for r in filt]
    lines += [
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" '
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "COMMIT",
    ]
    return Rendered("\n".join(lines) + "\n", frozenset(keep), len(filt) + len(nat), tuple(stale))


REJECT = ("-j", "REJECT", "--reject-with", "icmp-port-unreachable")


def _refusal(local_only: bool, eps: list[Endpoint], serving: list[Endpoint], what: str) -> tuple[str, tuple[str, ...]]:
    """The filter rule for a service address: REJECT without endpoints and DROP without
    local ones (as upstream); with endpoints a REJECT too, which only a packet that missed
    the DNAT can meet (a DNATed one no longer has this destination). That one is ours: the
    two tables commit one after the other, nat first, so a connection made in between is
    refused instead of leaking to the default route and hanging."""
    if not serving:
        if local_only and eps:
            return "has no local endpoints", ("-j", "DROP")
        return "has no endpoints", REJECT
    return f"{what} not DNATed", REJECT


def _balance(sp: ServicePort, chain: str, eps: list[Endpoint]) -> list[list[str]]:
    """One jump per endpoint: endpoint i of n with probability 1/(n-i), the last always,
    which makes every endpoint equally likely; with ClientIP affinity, a client seen
    within the timeout goes back to its endpoint first (`-m recent`)."""
    rules: list[list[str]] = []
    if sp.affinity_seconds:
        for ep in eps:
            sep = sp.sep_chain(ep)
            rules.append(["-A", chain, *_comment(f"{sp.key} -> {ep.address}"), "-m", "recent", "--name", sep,
                          "--mask", "255.255.255.255", "--rcheck", "--seconds", str(sp.affinity_seconds), "--reap",
                          "-j", sep])
    n = len(eps)
    for i, ep in enumerate(eps):
        stat = ["-m", "statistic", "--mode", "random", "--probability", _probability(n - i)] if i < n - 1 else []
        rules.append(["-A", chain, *_comment(f"{sp.key} -> {ep.address}"), *stat, "-j", sp.sep_chain(ep)])
    return rules


def missing_jumps(save_output: str, jumps: Iterable[Jump] = JUMPS) -> list[Jump]:
    """The jumps an `iptables-save` (all tables) lacks: one dump instead of an `iptables -C`
    process per jump. A jump counts as present when its chain has a rule with its comment
    and its target (iptables-save may print the matches in another order)."""
    table = ""
    present: set[tuple[str, str, str, str]] = set()
    for line in save_output.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith("-A "):
            chain = line.split(" ", 2)[1]
            target = line.rsplit("-j ", 1)[-1].strip()
            comment = line.split('--comment "', 1)[1].split('"', 1)[0] if '--comment "' in line else ""
            present.add((table, chain, comment, target))
    out = []
    for jump in jumps:
        comment = jump.args[jump.args.index("--comment") + 1]
        if (jump.table, jump.chain, comment, jump.args[-1]) not in present:
            out.append(jump)
    return out


def hashed_chains(save_output: str) -> set[str]:
    """The hashed KUBE chains of the nat table an `iptables-save` shows (ours, maybe of an
    earlier run)."""
    out = set()
    table = "nat"
    for line in save_output.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":") and table == "nat":
            name = line[1:].split(" ", 1)[0]
            if name.startswith(HASHED_PREFIXES):
                out.add(name)
    return out


# ---- conntrack: UDP flows to endpoints that went away ------------------------------------


def stale_udp_flows(old: ProxyState, new: ProxyState) -> list[list[str]]:
    """`conntrack -D` argument lists for UDP: a removed endpoint's flows keep sending to it
    (UDP has no connection to break), and a port that had no endpoints may have flows
    stuck on the REJECT; upstream deletes both, so do we."""
    by_key = {(sp.key, sp.protocol): sp for sp in new.ports}
    out: list[list[str]] = []
    for sp in old.ports:
        if sp.protocol != "UDP":
            continue
        now = by_key.get((sp.key, sp.protocol))
        still = {e.ip for e in new.ready(now)} if now is not None else set()
        for ep in old.ready(sp):
            if ep.ip in still:
                continue
            out.append(["-D", "-p", "udp", "--orig-dst", sp.cluster_ip, "--dst-nat", ep.ip])
            if sp.node_port is not None:
                out.append(["-D", "-p", "udp", "--orig-port-dst", str(sp.node_port), "--dst-nat", ep.ip])
            for ip in sp.external_ips:
                out.append(["-D", "-p", "udp", "--orig-dst", ip, "--dst-nat", ep.ip])
    old_by_key = {(sp.key, sp.protocol): sp for sp in old.ports}
    for sp in new.ports:
        if sp.protocol != "UDP" or not new.ready(sp):
            continue
        before = old_by_key.get((sp.key, sp.protocol))
        if before is None or not old.ready(before):
            out.append(["-D", "-p", "udp", "--orig-dst", sp.cluster_ip])
            if sp.node_port is not None:
                out.append(["-D", "-p", "udp", "--orig-port-dst", str(sp.node_port)])
    return out
